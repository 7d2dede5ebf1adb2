/* refusal.c — the `refusal` kind (docs/methods.md, "Refusal"): a refusal
 * direction per model, its cosine across models, and its effect on greedy
 * generation within and across models.
 *
 * Stages and units (all defined by the job, never by ranks):
 *   0  activations   unit = (model, set ∈ {harmful, harmless}, batch of train rows):
 *                    the hook point at (layer, position) of each templated prompt
 *   1  generations   unit = (target model, intervention, set, batch of test rows):
 *                    interventions: none; ablate_<src> (x -= (x·r̂)r̂ at resid_pre,
 *                    resid_mid, resid_post of every layer and position); add_<src>
 *                    (x += c·v at one layer, every position; harmless set only)
 *   2  summary       one unit; the plan writes the refusal scores read back
 * finish_stage(0) reads the activations back and computes the directions
 * (mean(harmful) − mean(harmless), normalised), finish_stage(1) the scores.
 * What the refusal_sweep kind does alike (split, activations, generation,
 * mean difference, rates) is in refusal_common.c.
 *
 * Output (/<name>/...):
 *   split/<set>/instruction [row] str, split/<set>/csv_row [row] i32   (train rows, then test)
 *   acts/<model>/<set> [row, hidden] f32                                stage 0
 *   direction [model, hidden] f64 (unit), mean_diff [model, hidden] f64,
 *   mean_diff_norm [model] f64, cosine [model, model] f64               stage 1 plan
 *   gen/<set>/<target>/<intervention>/text [row] str, refused [row] i32 stage 1
 *   refusal_score [target, intervention, set] f64 (NaN = not run)       stage 2 plan */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp/refusal_common.h"
#include "mechdiff/directions.h"
#include "mechdiff/exp_util.h"
#include "mechdiff/experiment.h"
#include "mechdiff/forward.h"
#include "mechdiff/hf_config.h"
#include "mechdiff/model.h"

static const md_key REFUSAL_KEYS[] = {
    {.name = "models", .type = MD_KEY_STRLIST, .def = "", .doc = "Roles compared (empty = every role in `models`)."},
    {.name = "harmful", .type = MD_KEY_STRING, .def = "harmful",
     .doc = "Name (top-level datasets map) of the harmful instruction CSV (column `instruction`)."},
    {.name = "harmless", .type = MD_KEY_STRING, .def = "harmless",
     .doc = "Name (top-level datasets map) of the harmless instruction CSV (column `instruction`)."},
    {.name = "column", .type = MD_KEY_STRING, .def = "instruction",
     .doc = "CSV column holding the instruction (AdvBench harmful_behaviors.csv: goal)."},
    {.name = "test_fraction", .type = MD_KEY_FLOAT, .def = "0.2", .min = 0.01, .max = 0.99,
     .doc = "Fraction of each set held out for generation (docs/methods.md: 0.2)."},
    {.name = "split_seed", .type = MD_KEY_INT, .def = "42", .min = 0, .max = 2147483647,
     .doc = "Seed of the train/test shuffle (docs/methods.md: 42)."},
    {.name = "n_train", .type = MD_KEY_INT, .def = "128", .min = 1, .max = 1e7,
     .doc = "Train instructions per set (direction)."},
    {.name = "n_test", .type = MD_KEY_INT, .def = "100", .min = 1, .max = 1e7,
     .doc = "Test instructions per set (generation)."},
    {.name = "templates", .type = MD_KEY_MAP, .def = "",
     .doc = "Prompt template per role: 'base' (\"User: {instruction}\\nAssistant:\"), 'chat' (the model's own chat "
            "template), a template name (llama3, llama2, mistral, tulu) or a format string with {instruction}. "
            "Default: 'base' for roles whose name contains 'base', else 'chat'."},
    {.name = "hook", .type = MD_KEY_STRING, .def = "resid_pre", .allowed = "resid_pre|resid_mid|resid_post",
     .doc = "Hook point of the direction (docs/methods.md: resid_pre)."},
    {.name = "layer", .type = MD_KEY_INT, .def = "-1", .min = -1, .max = 4096,
     .doc = "Layer of the direction (-1 = round(11/32 of the layers): Llama-3.1-8B 11)."},
    {.name = "position", .type = MD_KEY_INT, .def = "-1", .min = -4096, .max = -1,
     .doc = "Prompt position of the direction, counted from the end (-1 = last token)."},
    {.name = "positions", .type = MD_KEY_MAP, .def = "",
     .doc = "Per-role override of `position` (docs/methods.md, Llama-3.1: {base: -4, instruct: -2})."},
    {.name = "addition_layer", .type = MD_KEY_INT, .def = "-1", .min = -1, .max = 4096,
     .doc = "Layer of activation addition (-1 = the direction's layer)."},
    {.name = "coefficients", .type = MD_KEY_MAP, .def = "",
     .doc = "Activation-addition coefficient per target role (docs/methods.md: base 1.2, instruct 2.4, SFT 1.8); "
            "missing roles use 1.0."},
    {.name = "addition_vector", .type = MD_KEY_STRING, .def = "unit", .allowed = "unit|mean_diff",
     .doc = "What the coefficient multiplies: the unit direction r̂ (docs/methods.md) or the raw mean difference."},
    {.name = "max_new_tokens", .type = MD_KEY_INT, .def = "16", .min = 1, .max = 4096,
     .doc = "Greedy new tokens per generation (docs/methods.md: 16)."},
    {.name = "batch", .type = MD_KEY_INT, .def = "16", .min = 1, .max = 4096,
     .doc = "Instructions per work unit (one batched forward / generation)."},
    {.name = "sweep", .type = MD_KEY_BOOL, .def = "false",
     .doc = "Must be false: the refusal score vs layer/position of the direction is the `refusal_sweep` kind."},
    {0}};

/* Derived from the job and the CSVs only (identical on every rank). Owned. */
typedef struct rf_state {
    md_refusal_sets sets; /* roles, CSVs, train/test rows (owned) */
    md_exp_units gen;     /* stage 1: (target, intervention, set, batch) */
} rf_state;

static void rf_state_free(void *p)
{
    rf_state *s = p;
    if (!s) return;
    md_refusal_free_sets(&s->sets);
    md_exp_free_units(&s->gen);
    free(s);
}

/* Interventions of a target: 0 none, 1..M ablate_<src>, M+1..2M add_<src>. */
static void interv_name(const rf_state *s, int iv, char *buf, size_t n)
{
    if (iv == 0) snprintf(buf, n, "none");
    else if (iv <= s->sets.n_roles) snprintf(buf, n, "ablate_%s", s->sets.roles[iv - 1]);
    else snprintf(buf, n, "add_%s", s->sets.roles[iv - 1 - s->sets.n_roles]);
}

static int rf_state_build(const md_kind_ctx *ctx, rf_state **out, md_error *err)
{
    char where[MD_EXP_WHERE_MAX];
    md_exp_format_where(ctx, where, sizeof where);
    rf_state *s = calloc(1, sizeof *s);
    if (!s) return md_error_set(err, "out of memory");
    if (md_refusal_init_sets(ctx, where, &s->sets, err) != MD_OK ||
        md_refusal_load_sets(ctx, where, &s->sets, err) != MD_OK)
        goto fail;
    /* stage 1 units: target × intervention × set × batch */
    int nr = s->sets.n_roles, nb = md_exp_count_batches(s->sets.n_test, s->sets.batch), ni = 1 + 2 * nr;
    if (md_exp_alloc_units(&s->gen, nr * ni * 2 * nb, err) != MD_OK) goto fail;
    for (int t = 0; t < nr; t++)
        for (int iv = 0; iv < ni; iv++)
            for (int k = 0; k < 2; k++) {
                if (iv > nr && k == MD_REFUSAL_HARMFUL) continue; /* addition: harmless prompts only */
                for (int b = 0; b < nb; b++) md_exp_add_unit(&s->gen, t, iv, k, b);
            }
    *out = s;
    return MD_OK;
fail:
    rf_state_free(s);
    return MD_ERR;
}

static int rf_layer(const md_params *p, const md_config *c, const char *key)
{
    int64_t l = md_params_int(p, key);
    if (l < 0 && strcmp(key, "addition_layer") == 0) l = md_params_int(p, "layer");
    if (l < 0) l = (int64_t)floor(c->n_layers * 11.0 / 32.0 + 0.5);
    return (int)l;
}

static int rf_position(const md_params *p, const char *role)
{
    const char *v = md_params_map_get(p, "positions", role);
    return v ? atoi(v) : (int)md_params_int(p, "position");
}

static int rf_validate(const md_kind_ctx *ctx, md_error *err)
{
    const md_params *p = &ctx->exp->params;
    char where[MD_EXP_WHERE_MAX];
    md_exp_format_where(ctx, where, sizeof where);
    if (md_params_bool(p, "sweep"))
        return md_error_set(err, "%s: key 'sweep': the layer/position sweep is its own kind: add an experiment with "
                                 "kind: refusal_sweep (same keys, plus layers and positions), read its score and "
                                 "best_<model> attributes, then set layer/positions here and sweep: false",
                            where);
    rf_state *s = NULL;
    if (rf_state_build(ctx, &s, err) != MD_OK) return MD_ERR;
    const char *const *roles = s->sets.roles;
    int rc = MD_OK;
    md_config c0 = {0};
    for (int i = 0; i < s->sets.n_roles && rc == MD_OK; i++) {
        md_config c;
        if ((rc = md_refusal_check_role(ctx, where, &s->sets, i, &c0, &c, err)) != MD_OK) break;
        int l = rf_layer(p, &c, "layer"), la = rf_layer(p, &c, "addition_layer");
        if (rc == MD_OK && (l >= c.n_layers || la >= c.n_layers))
            rc = md_error_set(err, "%s: key 'layer'/'addition_layer': %d/%d but model '%s' has %d layers", where, l,
                              la, roles[i], c.n_layers);
        const char *pv = md_params_map_get(p, "positions", roles[i]);
        if (rc == MD_OK && pv && (atoi(pv) >= 0 || atoi(pv) < -4096))
            rc = md_error_set(err, "%s: key 'positions': '%s' for role '%s' must be a negative integer (from the end)",
                              where, pv, roles[i]);
        const char *cv = md_params_map_get(p, "coefficients", roles[i]);
        char *end = NULL;
        if (rc == MD_OK && cv && (strtod(cv, &end), !end || *end))
            rc = md_error_set(err, "%s: key 'coefficients': '%s' for role '%s' is not a number", where, cv,
                              roles[i]);
    }
    rf_state_free(s);
    return rc;
}

/* Blob of stage 1: int32 M, d; f64 mean_diff[M][d], dir[M][d], norm[M], cos[M][M]. */
typedef struct rf_dirs {
    int M, d;
    const double *mean_diff, *dir, *norm, *cos;
} rf_dirs;

/* Doubles of that blob. */
static size_t rf_dirs_count(int M, int d)
{
    return (size_t)2 * M * d + M + (size_t)M * M;
}

static int rf_dirs_view(const md_blob *b, rf_dirs *v, md_error *err)
{
    *v = (rf_dirs){0};
    int32_t hd[2];
    const double *q = NULL;
    if (md_exp_read_blob_header(b, "refusal", hd, 2, err) != MD_OK) return MD_ERR;
    v->M = hd[0], v->d = hd[1];
    if (md_exp_view_blob_f64(b, "refusal", 2, rf_dirs_count(v->M, v->d), &q, err) != MD_OK) return MD_ERR;
    v->mean_diff = q;
    v->dir = q + (size_t)v->M * v->d;
    v->norm = v->dir + (size_t)v->M * v->d;
    v->cos = v->norm + v->M;
    return MD_OK;
}

static int rf_plan(const md_kind_ctx *ctx, int stage, const md_blob *input, md_plan *plan, md_error *err)
{
    const md_params *p = &ctx->exp->params;
    rf_state *s = NULL;
    int rc = MD_ERR;
    char path[MD_PATH_MAX], val[1024];
    if (rf_state_build(ctx, &s, err) != MD_OK) return MD_ERR;
    const md_refusal_sets *rs = &s->sets;
    int M = rs->n_roles, ni = 1 + 2 * M;
    if (stage == 0) {
        md_config c;
        if (md_refusal_plan_acts(plan, ctx, rs, 2, 1, 1, "the hook point at (layer, position) of each train prompt", &c,
                                 err) != MD_OK)
            goto done;
        snprintf(val, sizeof val, "%d", rf_layer(p, &c, "layer"));
        if (md_plan_attr(plan, "", "layer", val, err) != MD_OK) goto done;
        snprintf(val, sizeof val, "%d", rf_layer(p, &c, "addition_layer"));
        if (md_plan_attr(plan, "", "addition_layer", val, err) != MD_OK) goto done;
        for (int m = 0; m < M; m++) {
            snprintf(path, sizeof path, "acts/%s/harmful", rs->roles[m]);
            snprintf(val, sizeof val, "%d", rf_position(p, rs->roles[m]));
            if (md_plan_attr(plan, path, "position", val, err) != MD_OK) goto done;
        }
        rc = md_plan_units(plan, md_refusal_count_act_units(rs), err);
        goto done;
    }
    if (stage == 1) {
        rf_dirs v;
        if (rf_dirs_view(input, &v, err) != MD_OK) goto done;
        const char *nm2[] = {"model", "hidden"}, *nmm[] = {"model", "model_b"}, *nm1[] = {"model"};
        int64_t dd[2] = {M, v.d}, mm[2] = {M, M}, m1 = M, o2[2] = {0, 0}, o1 = 0;
        if (md_exp_declare_dset(plan, "direction", MD_H5_F64, 2, dd, nm2, "",
                                "refusal direction r̂ (unit) per model", err) != MD_OK ||
            md_plan_put(plan, "direction", o2, dd, v.dir, sizeof(double) * (size_t)M * v.d, err) != MD_OK ||
            md_exp_declare_dset(plan, "mean_diff", MD_H5_F64, 2, dd, nm2, "activation",
                                "mean(harmful) - mean(harmless)", err) != MD_OK ||
            md_plan_put(plan, "mean_diff", o2, dd, v.mean_diff, sizeof(double) * (size_t)M * v.d, err) != MD_OK ||
            md_exp_declare_dset(plan, "mean_diff_norm", MD_H5_F64, 1, &m1, nm1, "activation",
                                "norm of mean_diff", err) != MD_OK ||
            md_plan_put(plan, "mean_diff_norm", &o1, &m1, v.norm, sizeof(double) * (size_t)M, err) != MD_OK ||
            md_exp_declare_dset(plan, "cosine", MD_H5_F64, 2, mm, nmm, "1",
                                "cosine between the models' directions", err) != MD_OK ||
            md_plan_put(plan, "cosine", o2, mm, v.cos, sizeof(double) * (size_t)M * M, err) != MD_OK)
            goto done;
        for (int t = 0; t < M; t++)
            for (int iv = 0; iv < ni; iv++)
                for (int k = 0; k < 2; k++) {
                    if (iv > M && k == MD_REFUSAL_HARMFUL) continue;
                    char ivn[128];
                    interv_name(s, iv, ivn, sizeof ivn);
                    int64_t n = rs->n_test;
                    const char *rn[] = {"row"};
                    snprintf(path, sizeof path, "gen/%s/%s/%s/text", md_refusal_set_name(k), rs->roles[t], ivn);
                    if (md_exp_declare_dset(plan, path, MD_H5_STR, 1, &n, rn, "",
                                            "greedy completion (new tokens, decoded)", err) != MD_OK)
                        goto done;
                    snprintf(path, sizeof path, "gen/%s/%s/%s/refused", md_refusal_set_name(k), rs->roles[t], ivn);
                    if (md_exp_declare_dset(plan, path, MD_H5_I32, 1, &n, rn, "",
                                            "1 = the completion starts with a refusal prefix",
                                            err) != MD_OK)
                        goto done;
                }
        rc = md_plan_units(plan, s->gen.n, err);
        for (int u = 0; u < s->gen.n; u++) md_plan_cost(plan, u, s->gen.key[u][1] ? 1.2 : 1.0);
        goto done;
    }
    /* stage 2: the scores */
    if (!input || input->size != sizeof(double) * (size_t)M * ni * 2) {
        md_error_set(err, "refusal: stage 2 input has the wrong size");
        goto done;
    }
    {
        int64_t dims[3] = {M, ni, 2}, o3[3] = {0, 0, 0};
        const char *nm[] = {"target", "intervention", "set"};
        if (md_exp_declare_dset(plan, "refusal_score", MD_H5_F64, 3, dims, nm, "1",
                                "fraction of test completions starting with a refusal prefix (NaN = not run)",
                                err) != MD_OK ||
            md_plan_allow_nan(plan, "refusal_score", err) != MD_OK || /* NaN is documented above */
            md_plan_put(plan, "refusal_score", o3, dims, input->data, input->size, err) != MD_OK)
            goto done;
        size_t off = 0;
        for (int iv = 0; iv < ni; iv++) {
            char ivn[128];
            interv_name(s, iv, ivn, sizeof ivn);
            off += (size_t)snprintf(val + off, sizeof val - off, "%s%s", iv ? "," : "", ivn);
        }
        if (md_plan_attr(plan, "refusal_score", "interventions", val, err) != MD_OK ||
            md_plan_attr(plan, "refusal_score", "sets", "harmful,harmless", err) != MD_OK)
            goto done;
        rc = md_plan_units(plan, 1, err);
    }
done:
    rf_state_free(s);
    return rc;
}

static int rf_prepare(const md_kind_ctx *ctx, md_worker *w, int stage, const md_blob *input, void **state,
                      md_error *err)
{
    (void)w, (void)stage, (void)input;
    return rf_state_build(ctx, (rf_state **)state, err);
}

/* Stage 0 unit: activations of one batch at the role's (layer, position). */
static int rf_acts(const md_kind_ctx *ctx, md_worker *w, rf_state *s, int64_t unit, md_result *out, md_error *err)
{
    const md_params *p = &ctx->exp->params;
    const char *role = s->sets.roles[md_refusal_act_role(&s->sets, unit)];
    md_model *M = NULL;
    if (md_worker_model(w, role, &M, err) != MD_OK) return MD_ERR;
    int layer = rf_layer(p, &M->cfg, "layer"), pos = rf_position(p, role);
    return md_refusal_compute_acts(ctx, w, &s->sets, unit, &layer, 1, &pos, 1, 2, "refusal", out, err);
}

/* Stage 1 unit: generations of one batch under one intervention. */
static int rf_gen(const md_kind_ctx *ctx, md_worker *w, rf_state *s, const md_blob *input, int64_t unit,
                  md_result *out, md_error *err)
{
    const md_params *p = &ctx->exp->params;
    const md_refusal_sets *rs = &s->sets;
    rf_dirs v;
    if (rf_dirs_view(input, &v, err) != MD_OK) return MD_ERR;
    const int *key = s->gen.key[unit];
    int t = key[0], iv = key[1], k = key[2], r0, n = md_exp_slice_batch(rs->n_test, rs->batch, key[3], &r0);
    md_model *M = NULL;
    if (md_worker_model(w, rs->roles[t], &M, err) != MD_OK) return MD_ERR;
    int d = M->cfg.d_model, rc = MD_ERR, nh = 0;
    char ivn[128];
    interv_name(s, iv, ivn, sizeof ivn);
    int32_t *refused = calloc((size_t)n, sizeof(int32_t));
    float *vec = malloc((size_t)d * sizeof(float));
    md_hook hk[3];
    if (!refused || !vec) {
        md_error_set(err, "out of memory");
        goto done;
    }
    if (v.d != d) {
        md_error_set(err, "direction width %d differs from model '%s' d_model %d", v.d, rs->roles[t], d);
        goto done;
    }
    if (iv >= 1 && iv <= rs->n_roles) {
        const double *r = v.dir + (size_t)(iv - 1) * d;
        for (int j = 0; j < d; j++) vec[j] = (float)r[j];
        nh = md_refusal_ablation_hooks(vec, hk);
    } else if (iv > rs->n_roles) {
        int src = iv - 1 - rs->n_roles;
        int unit_vec = strcmp(md_params_str(p, "addition_vector"), "unit") == 0;
        const double *r = (unit_vec ? v.dir : v.mean_diff) + (size_t)src * d;
        for (int j = 0; j < d; j++) vec[j] = (float)r[j];
        const char *cv = md_params_map_get(p, "coefficients", rs->roles[t]);
        hk[nh++] = (md_hook){.point = rs->hook, .op = MD_HOOK_ADD, .layer = rf_layer(p, &M->cfg, "addition_layer"),
                             .seq = MD_ALL, .pos = MD_ALL, .vec = vec, .coef = cv ? (float)strtod(cv, NULL) : 1.0f};
    }
    char path[MD_PATH_MAX];
    int64_t o = r0, c = n;
    snprintf(path, sizeof path, "gen/%s/%s/%s/text", md_refusal_set_name(k), rs->roles[t], ivn);
    if (md_refusal_generate(ctx, M, rs, t, k, r0, n, hk, nh, path, refused, out, err) != MD_OK) goto done;
    snprintf(path, sizeof path, "gen/%s/%s/%s/refused", md_refusal_set_name(k), rs->roles[t], ivn);
    rc = md_result_put(out, path, 1, &o, &c, refused, (size_t)n * sizeof(int32_t), err);
done:
    if (rc != MD_OK)
        md_error_prefix(err, "refusal generation (%s, %s, %s, rows %d..)", rs->roles[t], ivn, md_refusal_set_name(k),
                        r0);
    free(refused), free(vec);
    return rc;
}

static int rf_compute(const md_kind_ctx *ctx, md_worker *w, void *state, int stage, const md_blob *input,
                      int64_t unit, md_result *out, md_error *err)
{
    rf_state *s = state;
    if (stage == 0) return rf_acts(ctx, w, s, unit, out, err);
    if (stage == 1) return rf_gen(ctx, w, s, input, unit, out, err);
    return MD_OK; /* stage 2: the plan wrote the scores */
}

static int rf_finish(const md_kind_ctx *ctx, int stage, const md_blob *input, md_reader *rd, md_blob *next,
                     int *done, md_error *err)
{
    rf_state *s = NULL;
    int rc = MD_ERR;
    (void)input;
    *done = stage >= 2;
    if (*done) return MD_OK;
    if (rf_state_build(ctx, &s, err) != MD_OK) return MD_ERR;
    const md_refusal_sets *rs = &s->sets;
    int M = rs->n_roles;
    char path[MD_PATH_MAX];
    void *blob = NULL; /* owned here */
    if (stage == 0) {
        int64_t dims[MD_MAX_DIMS];
        snprintf(path, sizeof path, "acts/%s/harmful", rs->roles[0]);
        if (md_reader_dims(rd, path, dims, err) < 0) goto done;
        int d = (int)dims[1];
        int32_t hd[2] = {M, d};
        double *md_ = NULL;
        size_t bytes = 0;
        if (!(blob = md_exp_alloc_blob(hd, 2, rf_dirs_count(M, d), &md_, &bytes))) {
            md_error_set(err, "out of memory");
            goto done;
        }
        double *dir = md_ + (size_t)M * d, *norm = dir + (size_t)M * d, *cs = norm + M;
        for (int m = 0; m < M; m++) {
            double *r = md_ + (size_t)m * d;
            if (md_refusal_read_mean_diff(rd, rs, m, 2, 0, 0, d, r, err) != MD_OK) goto done;
            norm[m] = md_dir_norm(r, d);
            memcpy(dir + (size_t)m * d, r, (size_t)d * sizeof(double));
            if (md_dir_normalise(dir + (size_t)m * d, d, err) != MD_OK) {
                md_error_prefix(err, "refusal direction of model '%s'", rs->roles[m]);
                goto done;
            }
        }
        for (int a = 0; a < M; a++)
            for (int b2 = 0; b2 < M; b2++) cs[a * M + b2] = md_dir_cosine(dir + (size_t)a * d, dir + (size_t)b2 * d, d);
        rc = md_blob_set(next, blob, bytes, err);
        goto done;
    }
    /* stage 1 → scores */
    int ni = 1 + 2 * M;
    double *sc = malloc(sizeof(double) * (size_t)M * ni * 2);
    if (!(blob = sc)) {
        md_error_set(err, "out of memory");
        goto done;
    }
    for (int t = 0; t < M; t++)
        for (int iv = 0; iv < ni; iv++)
            for (int k = 0; k < 2; k++) {
                double *o = &sc[((size_t)t * ni + iv) * 2 + k];
                *o = NAN;
                if (iv > M && k == MD_REFUSAL_HARMFUL) continue;
                char ivn[128];
                interv_name(s, iv, ivn, sizeof ivn);
                snprintf(path, sizeof path, "gen/%s/%s/%s/refused", md_refusal_set_name(k), rs->roles[t], ivn);
                int64_t off = 0, cnt = rs->n_test;
                if (md_refusal_read_rate(rd, path, &off, &cnt, rs->n_test, o, err) != MD_OK) goto done;
            }
    rc = md_blob_set(next, sc, sizeof(double) * (size_t)M * ni * 2, err);
done:
    free(blob);
    rf_state_free(s);
    return rc;
}

const md_kind md_kind_refusal = {
    .name = "refusal",
    .doc = "Refusal direction per model (mean(harmful) - mean(harmless) at one hook/layer/position, normalised), "
           "cosine between models, and greedy generations with no intervention, directional ablation of every "
           "source model's direction, and activation addition; refusal score by prefix (docs/methods.md, Refusal).",
    .keys = REFUSAL_KEYS,
    .validate = rf_validate,
    .plan = rf_plan,
    .prepare = rf_prepare,
    .release_state = rf_state_free,
    .compute = rf_compute,
    .finish_stage = rf_finish,
    .unit_name = md_exp_name_unit,
};
