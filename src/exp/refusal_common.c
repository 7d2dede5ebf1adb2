/* refusal_common.c — what the refusal kinds do alike (see refusal_common.h). */
#include "exp/refusal_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/directions.h"
#include "mechdiff/exp_batch.h"
#include "mechdiff/exp_output.h"
#include "mechdiff/exp_prompt.h"
#include "mechdiff/exp_units.h"
#include "mechdiff/exp_util.h"
#include "mechdiff/model.h"
#include "mechdiff/tokenizer.h"

static const char *const SET_NAMES[2] = {"harmful", "harmless"};

const char *md_refusal_set_name(int set)
{
    return SET_NAMES[set];
}

/* The shared keys alone (offsets of md_refusal_opts as a struct's `c`). */
typedef struct rc_opts {
    md_refusal_opts c;
} rc_opts;
static const md_opt_bind REFUSAL_SHARED_OPTS[] = {MD_REFUSAL_OPTS_BIND(rc_opts), {0}};

int md_refusal_init_sets(const md_kind_ctx *ctx, const char *where, md_refusal_sets *s, md_error *err)
{
    rc_opts o;
    md_params_bind(&ctx->exp->params, REFUSAL_SHARED_OPTS, &o);
    s->opt = o.c;
    if (md_exp_resolve_roles(ctx, where, s->roles, MD_REFUSAL_MAX_ROLES, &s->n_roles, err) != MD_OK) return MD_ERR;
    s->n_train = (int)s->opt.n_train;
    s->n_test = (int)s->opt.n_test;
    s->batch = (int)s->opt.batch;
    s->hook = md_hook_point_parse(s->opt.hook);
    return MD_OK;
}

int md_refusal_load_sets(const md_kind_ctx *ctx, const char *where, md_refusal_sets *s, md_error *err)
{
    const md_refusal_opts *o = &s->opt;
    for (int k = 0; k < 2; k++) {
        const char *key = SET_NAMES[k], *name = k == MD_REFUSAL_HARMFUL ? o->harmful : o->harmless;
        const char *path = md_exp_find_dataset(ctx, where, key, name, err);
        if (!path) return MD_ERR;
        if (md_csv_read(&s->csv[k], path, err) != MD_OK ||
            (s->col[k] = md_csv_column(s->csv[k], o->column, err)) < 0)
            return md_error_prefix(err, "%s: key '%s'", where, key);
        s->train[k] = malloc((size_t)s->n_train * sizeof(int));
        s->test[k] = malloc((size_t)s->n_test * sizeof(int));
        if (!s->train[k] || !s->test[k]) return md_error_set(err, "out of memory");
        if (md_dir_split(s->csv[k]->n_rows, o->test_fraction, (uint64_t)o->split_seed, s->n_train, s->n_test, s->train[k], s->test[k],
                         err) != MD_OK)
            return md_error_prefix(err, "%s: key '%s' (%s)", where, key, path);
    }
    return MD_OK;
}

void md_refusal_free_sets(md_refusal_sets *s)
{
    for (int k = 0; k < 2; k++) {
        md_csv_free(s->csv[k]);
        free(s->train[k]);
        free(s->test[k]);
        s->csv[k] = NULL, s->train[k] = NULL, s->test[k] = NULL;
    }
}

int md_refusal_check_role(const md_kind_ctx *ctx, const char *where, const md_refusal_sets *s, int i, md_config *c0,
                          md_config *c, md_error *err)
{
    md_tokenizer *tok = NULL;
    if (md_exp_load_role(ctx, where, s->roles[i], c, &tok, err) != MD_OK) {
        md_tokenizer_free(tok);
        return MD_ERR;
    }
    const char *jt = md_tokenizer_chat_template(tok);
    md_chat_kind kind;
    const char *fmt;
    int rc = md_exp_instruction_template(ctx, s->roles[i], jt ? md_chat_detect(jt) : MD_CHAT_UNKNOWN, &kind, &fmt, err);
    if (rc == MD_OK) { /* render once now, so a template mechdiff cannot render stops the job before it runs */
        int *ids = NULL;
        size_t n = 0;
        rc = md_chat_encode(tok, kind, fmt, "Is the sky blue?", &ids, &n, err);
        if (rc != MD_OK) md_error_prefix(err, "%s: model '%s'", where, s->roles[i]);
        free(ids);
    }
    md_tokenizer_free(tok);
    if (rc != MD_OK) return MD_ERR;
    if (i == 0) {
        *c0 = *c;
        return MD_OK;
    }
    return md_exp_check_widths(where, s->roles[0], c0, s->roles[i], c, err);
}

/* split/<set>/instruction and split/<set>/csv_row. */
static int plan_split(md_plan *plan, const md_refusal_sets *s, const md_output *outputs, int set, md_error *err)
{
    char path[MD_PATH_MAX], val[32];
    int64_t n = s->n_train + s->n_test;
    const char *args[] = {SET_NAMES[set]};
    snprintf(path, sizeof path, "split/%s/instruction", SET_NAMES[set]);
    snprintf(val, sizeof val, "%d", s->n_train);
    if (md_plan_output(plan, &outputs[MD_REFUSAL_OUT_INSTRUCTION], args, &n, err) != MD_OK ||
        md_exp_put_csv_strings(plan, path, s->csv[set], s->col[set], s->train[set], s->n_train, 0, err) != MD_OK ||
        md_exp_put_csv_strings(plan, path, s->csv[set], s->col[set], s->test[set], s->n_test, s->n_train, err) !=
            MD_OK ||
        md_plan_attr(plan, path, "n_train", val, err) != MD_OK)
        return MD_ERR;
    snprintf(path, sizeof path, "split/%s/csv_row", SET_NAMES[set]);
    int64_t o = 0, cn = s->n_train, ot = s->n_train, ct = s->n_test;
    if (md_plan_output(plan, &outputs[MD_REFUSAL_OUT_CSV_ROW], args, &n, err) != MD_OK ||
        md_plan_put(plan, path, &o, &cn, s->train[set], (size_t)s->n_train * sizeof(int), err) != MD_OK ||
        md_plan_put(plan, path, &ot, &ct, s->test[set], (size_t)s->n_test * sizeof(int), err) != MD_OK)
        return MD_ERR;
    return MD_OK;
}

int md_refusal_plan_acts(md_plan *plan, const md_kind_ctx *ctx, const md_refusal_sets *s, const md_output *outputs,
                         int rank, int n_layers, int n_pos, md_config *c, md_error *err)
{
    char val[1024];
    if (md_hf_config_load_dir(c, md_params_map_get(&ctx->job->top, "models", s->roles[0]), err) != MD_OK) return MD_ERR;
    int64_t dims[4] = {s->n_train, n_layers, n_pos, c->d_model};
    if (rank == 2) dims[1] = c->d_model;
    for (int k = 0; k < 2; k++) {
        if (plan_split(plan, s, outputs, k, err) != MD_OK) return MD_ERR;
        for (int m = 0; m < s->n_roles; m++)
            if (md_plan_output(plan, &outputs[MD_REFUSAL_OUT_ACTS], (const char *const[]){s->roles[m], SET_NAMES[k]},
                               dims, err) != MD_OK)
                return MD_ERR;
    }
    md_exp_join_names(val, sizeof val, s->roles, s->n_roles);
    if (md_plan_attr(plan, "", "models", val, err) != MD_OK ||
        md_plan_attr(plan, "", "hook", s->opt.hook, err) != MD_OK)
        return MD_ERR;
    return MD_OK;
}

int64_t md_refusal_count_act_units(const md_refusal_sets *s)
{
    return (int64_t)s->n_roles * 2 * md_exp_count_batches(s->n_train, s->batch);
}

int md_refusal_act_role(const md_refusal_sets *s, int64_t unit)
{
    return (int)(unit / (2 * md_exp_count_batches(s->n_train, s->batch)));
}

int md_refusal_compute_acts(const md_kind_ctx *ctx, md_worker *w, const md_refusal_sets *s, int64_t unit,
                            const int *layers, int n_layers, const int *positions, int n_pos, int rank,
                            const char *kind, md_result *out, md_error *err)
{
    int nb = md_exp_count_batches(s->n_train, s->batch), L = n_layers, P = n_pos;
    int m = (int)(unit / (2 * nb)), k = (int)(unit / nb % 2), b = (int)(unit % nb), r0;
    int n = md_exp_slice_batch(s->n_train, s->batch, b, &r0);
    if (!(rank == 4 || (rank == 2 && L == 1 && P == 1)))
        return md_error_set(err, "%s activations: rank %d with %d x %d candidates (2 needs one, else 4)", kind, rank,
                            L, P);
    md_model *M = NULL;
    if (md_worker_model(w, s->roles[m], &M, err) != MD_OK) return MD_ERR;
    int d = md_model_hook_width(M, s->hook), rc = MD_ERR;
    int **ids = calloc((size_t)n, sizeof(int *)), *len = calloc((size_t)n, sizeof(int));
    /* grid [L][P][n][d] as read, acts [n][L][P][d] as stored */
    float *grid = malloc((size_t)n * L * P * d * sizeof(float)), *acts = malloc((size_t)n * L * P * d * sizeof(float));
    if (!ids || !len || !grid || !acts) {
        md_error_set(err, "out of memory");
        goto done;
    }
    if (md_exp_encode_instructions(ctx, M, s->roles[m], s->csv[k], s->col[k], s->train[k] + r0, n, ids, len, err) !=
        MD_OK)
        goto done;
    for (int pi = 0; pi < P; pi++)
        for (int i = 0; i < n; i++)
            if (len[i] < -positions[pi]) {
                md_error_set(err, "prompt of %s train row %d has %d tokens; position %d is before its start",
                             SET_NAMES[k], r0 + i, len[i], positions[pi]);
                goto done;
            }
    /* one forward reads every candidate (layer, position) */
    if (md_exp_read_acts_grid(M, ids, len, n, s->hook, layers, L, positions, P, grid, err) != MD_OK) goto done;
    for (int li = 0; li < L; li++)
        for (int pi = 0; pi < P; pi++)
            for (int i = 0; i < n; i++)
                memcpy(acts + (((size_t)i * L + li) * P + pi) * d, grid + (((size_t)li * P + pi) * n + i) * d,
                       (size_t)d * sizeof(float));
    char path[MD_PATH_MAX];
    snprintf(path, sizeof path, "acts/%s/%s", s->roles[m], SET_NAMES[k]);
    int64_t o[4] = {r0, 0, 0, 0}, c[4] = {n, L, P, d};
    if (rank == 2) c[1] = d;
    rc = md_result_put(out, path, rank, o, c, acts, (size_t)n * L * P * d * sizeof(float), err);
done:
    if (rc != MD_OK) md_error_prefix(err, "%s activations (%s, %s, rows %d..)", kind, s->roles[m], SET_NAMES[k], r0);
    md_exp_free_ids(ids, n);
    free(len), free(grid), free(acts);
    return rc;
}

int md_refusal_ablation_hooks(const float *vec, md_hook hk[3])
{
    const md_hook_point pts[3] = {MD_HOOK_RESID_PRE, MD_HOOK_RESID_MID, MD_HOOK_RESID_POST};
    for (int q = 0; q < 3; q++)
        hk[q] = (md_hook){.point = pts[q], .op = MD_HOOK_ABLATE, .layer = MD_ALL, .seq = MD_ALL, .pos = MD_ALL,
                          .vec = vec};
    return 3;
}

int md_refusal_generate(const md_kind_ctx *ctx, struct md_model *m, const md_refusal_sets *s, int role, int set,
                        int r0, int n, const md_hook *hooks, int n_hooks, const char *text_path, int32_t *refused,
                        md_result *out, md_error *err)
{
    int **ids = calloc((size_t)n, sizeof(int *)), *len = calloc((size_t)n, sizeof(int)), rc = MD_ERR;
    char *joined = NULL; /* the n texts back to back (owned here) */
    size_t total = 0;
    if (!ids || !len) {
        md_error_set(err, "out of memory");
        goto done;
    }
    if (md_exp_encode_instructions(ctx, m, s->roles[role], s->csv[set], s->col[set], s->test[set] + r0, n, ids, len,
                                   err) != MD_OK)
        goto done;
    if (md_exp_generate_refusals(m, ids, len, n, (int)s->opt.max_new_tokens,
                                 n_hooks ? hooks : NULL, n_hooks, refused, &joined, &total, err) != MD_OK)
        goto done;
    int64_t o = r0, c = n;
    rc = md_result_put(out, text_path, 1, &o, &c, joined, total, err);
done:
    md_exp_free_ids(ids, n);
    free(len), free(joined);
    return rc;
}

int md_refusal_read_mean_diff(md_reader *rd, const md_refusal_sets *s, int m, int rank, int li, int pi, int d,
                              double *r, md_error *err)
{
    int n = s->n_train, rc = MD_ERR;
    float *x = malloc((size_t)2 * n * d * sizeof(float));
    int *lab = malloc((size_t)2 * n * sizeof(int));
    if (!x || !lab) {
        md_error_set(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < 2 * n; i++) lab[i] = i < n; /* harmful rows first */
    int64_t o[4] = {0, 0, 0, 0}, c[4] = {n, d, 0, 0};
    if (rank == 4) o[1] = li, o[2] = pi, c[1] = 1, c[2] = 1, c[3] = d;
    for (int k = 0; k < 2; k++) {
        char path[MD_PATH_MAX];
        snprintf(path, sizeof path, "acts/%s/%s", s->roles[m], SET_NAMES[k]);
        if (md_reader_f32(rd, path, o, c, x + (size_t)k * n * d, err) != MD_OK) goto done;
    }
    rc = md_dir_mass_mean(x, lab, 2 * n, d, r, err);
done:
    free(x), free(lab);
    return rc;
}

int md_refusal_read_rate(md_reader *rd, const char *path, const int64_t *offset, const int64_t *count, int n,
                         double *rate, md_error *err)
{
    double *buf = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (!buf) return md_error_set(err, "out of memory");
    int rc = md_reader_f64(rd, path, offset, count, buf, err);
    if (rc == MD_OK) {
        double sum = 0;
        for (int i = 0; i < n; i++) sum += buf[i];
        *rate = sum / n;
    }
    free(buf);
    return rc;
}

void md_refusal_free_state(void *state)
{
    md_refusal_state *s = state;
    if (!s) return;
    md_refusal_free_sets(&s->sets);
    free(s->layers), free(s->positions);
    md_exp_free_units(&s->gen);
    free(s);
}

int md_refusal_build_state(const md_kind_ctx *ctx, const md_refusal_variant *v, md_refusal_state **out,
                           md_error *err)
{
    char where[MD_EXP_WHERE_MAX];
    md_exp_format_where(ctx, where, sizeof where);
    md_refusal_state *s = calloc(1, sizeof *s);
    if (!s) return md_error_set(err, "out of memory");
    if (md_refusal_init_sets(ctx, where, &s->sets, err) != MD_OK ||
        (v->candidates && v->candidates(ctx, where, s, err) != MD_OK) ||
        md_refusal_load_sets(ctx, where, &s->sets, err) != MD_OK || v->gen_units(s, err) != MD_OK) {
        md_refusal_free_state(s);
        return MD_ERR;
    }
    *out = s;
    return MD_OK;
}

/* The variant of the experiment's kind. */
static const md_refusal_variant *variant_of(const md_kind_ctx *ctx)
{
    return ctx->exp->impl->data;
}

int md_refusal_prepare(const md_kind_ctx *ctx, md_worker *w, int stage, const md_blob *input, void **state,
                       md_error *err)
{
    (void)w, (void)stage, (void)input;
    return md_refusal_build_state(ctx, variant_of(ctx), (md_refusal_state **)state, err);
}

int64_t md_refusal_estimate_units(const md_kind_ctx *ctx, int stage)
{
    md_refusal_state *s = NULL;
    md_error err;
    if (stage > 2) return 0;
    if (md_refusal_build_state(ctx, variant_of(ctx), &s, &err) != MD_OK) return -1;
    int64_t n = stage == 0 ? md_refusal_count_act_units(&s->sets) : stage == 1 ? s->gen.n : 1;
    md_refusal_free_state(s);
    return n;
}

int md_refusal_compute(const md_kind_ctx *ctx, md_worker *w, void *state, int stage, const md_blob *input,
                       int64_t unit, md_result *out, md_error *err)
{
    const md_refusal_variant *v = variant_of(ctx);
    if (stage == 0) return v->acts(ctx, w, state, unit, out, err);
    if (stage == 1) return v->gen(ctx, w, state, input, unit, out, err);
    return MD_OK; /* stage 2: the plan wrote the scores */
}

int md_refusal_finish(const md_kind_ctx *ctx, int stage, const md_blob *input, md_reader *rd, md_blob *next, int *done,
                      md_error *err)
{
    const md_refusal_variant *v = variant_of(ctx);
    *done = stage >= 2;
    if (*done) return MD_OK;
    md_refusal_state *s = NULL;
    if (md_refusal_build_state(ctx, v, &s, err) != MD_OK) return MD_ERR;
    int rc = stage == 0 ? v->directions(s, rd, next, err) : v->scores(s, input, rd, next, err);
    md_refusal_free_state(s);
    return rc;
}

int md_refusal_direction(md_reader *rd, const md_refusal_sets *s, int m, int rank, int li, int pi, int d, double *raw,
                         double *dir, double *norm, int zero_ok, md_error *err)
{
    if (md_refusal_read_mean_diff(rd, s, m, rank, li, pi, d, raw, err) != MD_OK) return MD_ERR;
    *norm = md_dir_norm(raw, d);
    if (dir != raw) memcpy(dir, raw, (size_t)d * sizeof(double));
    if (*norm == 0 && zero_ok) { /* no direction: stays 0 (ablation a no-op) */
        memset(dir, 0, (size_t)d * sizeof(double));
        return MD_OK;
    }
    return md_dir_normalise(dir, d, err);
}
