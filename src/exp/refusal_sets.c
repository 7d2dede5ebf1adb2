/* refusal_sets.c — the instruction sets of the refusal kind: their split,
 * templated prompts, activations and generations (see refusal.h). */
#include "exp/refusal.h"

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
#include "mechdiff/tokcache.h"
#include "mechdiff/tokenizer.h"

static const char *const SET_NAMES[2] = {"harmful", "harmless"};

const char *md_refusal_set_name(int set)
{
    return SET_NAMES[set];
}

int md_refusal_load_sets(const md_kind_ctx *ctx, const char *where, md_refusal_state *s, md_error *err)
{
    const md_refusal_opts *o = &s->opt;
    for (int k = 0; k < 2; k++) {
        const char *key = SET_NAMES[k], *name = k == MD_REFUSAL_HARMFUL ? o->harmful : o->harmless;
        const char *path = md_exp_find_dataset(ctx, where, key, name, err);
        if (!path) return MD_ERR;
        if (md_csv_read(&s->csv[k], path, err) != MD_OK) return md_error_prefix(err, "%s: key '%s'", where, key);
        if ((s->col[k] = md_csv_column(s->csv[k], o->column, err)) < 0) {
            md_error what = *err;
            return md_error_set(err, "%s: key '%s': %.1700s: set the experiment's `column` key to the one that holds "
                                "the instructions (AdvBench's harmful_behaviors.csv: goal), or rename it in the CSV's "
                                "first line", where, key, what.msg);
        }
        s->train[k] = malloc((size_t)s->n_train * sizeof(int));
        s->test[k] = malloc((size_t)s->n_test * sizeof(int));
        if (!s->train[k] || !s->test[k]) return md_error_set(err, "out of memory");
        if (md_dir_split(s->csv[k]->n_rows, o->test_fraction, (uint64_t)o->split_seed, s->n_train, s->n_test, s->train[k], s->test[k],
                         err) != MD_OK)
            return md_error_prefix(err, "%s: key '%s' (%s)", where, key, path);
    }
    return MD_OK;
}

void md_refusal_free_sets(md_refusal_state *s)
{
    for (int k = 0; k < 2; k++) {
        md_csv_free(s->csv[k]);
        free(s->train[k]);
        free(s->test[k]);
        s->csv[k] = NULL, s->train[k] = NULL, s->test[k] = NULL;
    }
}

/* An instruction in a role's template, for md_exp_check_fits. */
typedef struct rf_prompt {
    const md_tokenizer *tok;
    md_chat_kind kind;
    const char *fmt, *text;
} rf_prompt;

static int rf_count(void *arg, size_t *n, md_error *err)
{
    const rf_prompt *p = arg;
    int *ids = NULL;
    int rc = md_chat_encode(p->tok, p->kind, p->fmt, p->text, &ids, n, err);
    free(ids);
    return rc;
}

/* Every prompt of the role fits the model's context (md_exp_check_fits): a
 * train prompt's tokens, a generated test prompt's plus max_new_tokens - 1
 * (generate.c feeds all but the last new token); the sweep runs no harmless
 * test prompt: not checked there. `overhead` (the tokens of a rendered
 * sample instruction) + 2 + the bytes of an instruction bound its prompt. */
static int rf_check_context(const char *where, const md_refusal_state *s, int i, const md_tokenizer *tok,
                            md_chat_kind kind, const char *fmt, size_t overhead, const md_config *c, md_error *err)
{
    md_exp_fit train = {.cfg = c, .where = where, .role = s->roles[i],
                        .advice = "leave such long instructions out of the CSV", .count = rf_count};
    md_exp_fit test = train; /* every test prompt left is generated */
    test.key = "max_new_tokens", test.extra = (int)s->opt.max_new_tokens - 1;
    test.advice = "lower max_new_tokens, or leave such long instructions out of the CSV";
    for (int k = 0; k < 2; k++) {
        train.key = SET_NAMES[k];
        for (int r = 0; r < s->n_train + s->n_test; r++) {
            int is_test = r >= s->n_train, row = is_test ? s->test[k][r - s->n_train] : s->train[k][r];
            if (is_test && s->sweep && k != MD_REFUSAL_HARMFUL) continue; /* the sweep never runs these */
            rf_prompt p = {tok, kind, fmt, md_csv_cell(s->csv[k], row, s->col[k])};
            if (md_exp_check_fits(is_test ? &test : &train, &p, overhead + strlen(p.text) + 2, err,
                                  "the %s prompt of the %s CSV's row %d (0-based)", is_test ? "test" : "train",
                                  SET_NAMES[k], row) != MD_OK)
                return MD_ERR;
        }
    }
    return MD_OK;
}

int md_refusal_check_role(const md_kind_ctx *ctx, const char *where, const md_refusal_state *s, int i, md_config *c,
                          md_error *err)
{
    md_tokenizer *tok = NULL; /* ctx->toks's, or owned here without one */
    md_error one;
    if (md_exp_load_role(ctx, where, s->roles[i], c, &tok, &one) != MD_OK) return md_error_add(err, &one);
    const char *jt = md_tokenizer_chat_template(tok);
    md_chat_kind kind;
    const char *fmt;
    int rc =
        md_exp_instruction_template(ctx, s->roles[i], jt ? md_chat_detect(jt) : MD_CHAT_UNKNOWN, &kind, &fmt, &one);
    if (rc == MD_OK && kind == MD_CHAT_LLAMA3) { /* its markers are special tokens of Llama-3 vocabularies only */
        int *ids = NULL;
        size_t n = 0;
        rc = md_tokenizer_encode(tok, "<|start_header_id|>", 0, &ids, &n, &one);
        free(ids);
        if (rc == MD_OK && n != 1)
            rc = md_error_set(&one,
                              "%s: key 'templates': 'llama3' for role '%s': '<|start_header_id|>' is %zu tokens of "
                              "this model's tokenizer, not a special token: the Llama-3 template does not fit this "
                              "model; use 'chat' (its own template) or 'base'",
                              where, s->roles[i], n);
    }
    if (rc == MD_OK) { /* render once now, so a template mechdiff cannot render stops the job before it runs */
        int *ids = NULL;
        size_t n = 0;
        rc = md_chat_encode(tok, kind, fmt, "Is the sky blue?", &ids, &n, &one);
        if (rc != MD_OK) md_error_prefix(&one, "%s: model '%s'", where, s->roles[i]);
        free(ids);
        if (rc == MD_OK) rc = rf_check_context(where, s, i, tok, kind, fmt, n, c, &one);
    }
    md_tokcache_release(ctx->toks, tok);
    if (rc != MD_OK) md_error_add(err, &one);
    return MD_OK;
}

/* len[i] = the tokens of rows idx[0..n) of set k in role r's template. */
static int count_tokens(const md_kind_ctx *ctx, const md_tokenizer *tok, md_chat_kind chat, const md_refusal_state *s,
                        int r, int k, const int *idx, int n, int *len, md_error *err)
{
    int **ids = calloc((size_t)(n > 0 ? n : 1), sizeof(int *));
    if (!ids) return md_error_set(err, "out of memory");
    int rc = md_exp_encode_instructions_with(ctx, tok, chat, s->roles[r], s->csv[k], s->col[k], idx, n, ids, len, err);
    md_exp_free_ids(ids, n);
    return rc;
}

int md_refusal_load_tokenizer(const md_kind_ctx *ctx, const md_refusal_state *s, int r, md_tokenizer **tok,
                              md_error *err)
{
    *tok = NULL;
    if (md_tokcache_acquire(ctx->toks, md_params_map_get(&ctx->job->top, "models", s->roles[r]), tok, err) == MD_OK)
        return MD_OK;
    char where[MD_EXP_WHERE_MAX];
    md_exp_format_where(ctx, where, sizeof where);
    return md_error_prefix(err, "%s: model '%s'", where, s->roles[r]);
}

int md_refusal_price_role(const md_kind_ctx *ctx, md_refusal_state *s, int r, const md_tokenizer *tok,
                          md_error *err)
{
    int per = s->n_train + s->n_test, rc = MD_OK;
    if (!s->prompt_tokens && !(s->prompt_tokens = malloc((size_t)s->n_roles * 2 * (size_t)per * sizeof(int))))
        return md_error_set(err, "out of memory");
    const char *jt = md_tokenizer_chat_template(tok);
    md_chat_kind chat = jt ? md_chat_detect(jt) : MD_CHAT_UNKNOWN;
    for (int k = 0; k < 2 && rc == MD_OK; k++) {
        int *len = md_refusal_prompt_tokens(s, r, k, 0);
        rc = count_tokens(ctx, tok, chat, s, r, k, s->train[k], s->n_train, len, err);
        if (rc == MD_OK) rc = count_tokens(ctx, tok, chat, s, r, k, s->test[k], s->n_test, len + s->n_train, err);
    }
    return rc;
}

int md_refusal_price(const md_kind_ctx *ctx, void *state, md_error *err)
{
    md_refusal_state *s = state;
    int rc = MD_OK;
    free(s->prompt_tokens);
    s->prompt_tokens = NULL;
    for (int r = 0; r < s->n_roles && rc == MD_OK; r++) {
        md_tokenizer *tok = NULL;
        rc = md_refusal_load_tokenizer(ctx, s, r, &tok, err);
        if (rc == MD_OK) rc = md_refusal_price_role(ctx, s, r, tok, err);
        md_tokcache_release(ctx->toks, tok);
    }
    if (rc != MD_OK) {
        free(s->prompt_tokens);
        s->prompt_tokens = NULL;
    }
    return rc;
}

int *md_refusal_prompt_tokens(const md_refusal_state *s, int role, int set, int test)
{
    if (!s->prompt_tokens) return NULL;
    return s->prompt_tokens + ((size_t)role * 2 + (size_t)set) * (size_t)(s->n_train + s->n_test) +
           (test ? s->n_train : 0);
}

int md_refusal_collect(const md_kind_ctx *ctx, md_model *m, const md_refusal_state *s, int64_t unit,
                       const md_dirseq_at *at, md_result *out, md_error *err)
{
    const int *key = s->acts.key[unit];
    int role = key[0], k = key[1], r0, n = md_exp_slice_batch(s->n_train, s->batch, key[2], &r0), rc = MD_ERR;
    int **ids = calloc((size_t)n, sizeof(int *)), *len = calloc((size_t)n, sizeof(int));
    char path[MD_PATH_MAX];
    snprintf(path, sizeof path, "acts/%s/%s", s->roles[role], SET_NAMES[k]);
    if (!ids || !len) md_error_set(err, "out of memory");
    else if (md_exp_encode_instructions(ctx, m, s->roles[role], s->csv[k], s->col[k], s->train[k] + r0, n, ids, len,
                                        err) == MD_OK)
        rc = md_dirseq_put_acts(m, ids, len, n, at, path, r0, out, err);
    if (rc != MD_OK) md_error_prefix(err, "refusal activations (%s, %s, rows %d..)", s->roles[role], SET_NAMES[k], r0);
    md_exp_free_ids(ids, n);
    free(len);
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

int md_refusal_generate(const md_kind_ctx *ctx, struct md_model *m, const md_refusal_state *s, int role, int set,
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

/* mean(harmful) − mean(harmless) of the train activations of role m into
 * r[d]: rows [0, n_train) of acts/<role>/<set>, at candidate (li, pi) in
 * sweep mode. */
static int read_mean_diff(md_reader *rd, const md_refusal_state *s, int m, int li, int pi, int d, double *r,
                          md_error *err)
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
    if (s->sweep) o[1] = li, o[2] = pi, c[1] = 1, c[2] = 1, c[3] = d;
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

int md_refusal_direction(md_reader *rd, const md_refusal_state *s, int m, int li, int pi, int d, double *raw,
                         double *dir, double *norm, int zero_ok, md_error *err)
{
    if (read_mean_diff(rd, s, m, li, pi, d, raw, err) != MD_OK) return MD_ERR;
    *norm = md_dir_norm(raw, d);
    if (dir != raw) memcpy(dir, raw, (size_t)d * sizeof(double));
    if (*norm == 0 && zero_ok) { /* no direction: stays 0 (ablation a no-op) */
        memset(dir, 0, (size_t)d * sizeof(double));
        return MD_OK;
    }
    return md_dir_normalise(dir, d, err);
}
