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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp/refusal_common.h"
#include "mechdiff/directions.h"
#include "mechdiff/exp_blob.h"
#include "mechdiff/exp_output.h"
#include "mechdiff/exp_units.h"
#include "mechdiff/exp_util.h"
#include "mechdiff/experiment.h"
#include "mechdiff/forward.h"
#include "mechdiff/hf_config.h"
#include "mechdiff/model.h"

static const md_key REFUSAL_KEYS[] = {
    {.name = "models", .type = MD_KEY_STRLIST, .def = "", .doc = "Roles compared (empty = every role in `models`)."},
    MD_REFUSAL_KEY_SETS,
    {.name = "n_train", .type = MD_KEY_INT, .def = "128", .min = 1, .max = 1e7,
     .doc = "Train instructions per set (direction)."},
    {.name = "n_test", .type = MD_KEY_INT, .def = "100", .min = 1, .max = 1e7,
     .doc = "Test instructions per set (generation)."},
    MD_REFUSAL_KEY_TEMPLATES,
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
    MD_REFUSAL_KEY_GENERATION,
    {.name = "sweep", .type = MD_KEY_BOOL, .def = "false",
     .doc = "Must be false: the refusal score vs layer/position of the direction is the `refusal_sweep` kind."},
    {0}};

/* The kind's keys, parsed in one call (md_params_bind; rf_get_opts binds a
 * copy): the shared ones (c) and the kind's own. */
typedef struct rf_opts {
    md_refusal_opts c;
    int64_t layer, position, addition_layer;
    const md_value *positions, *coefficients;
    const char *addition_vector;
    int sweep;
} rf_opts;

#define RO(f) {#f, offsetof(rf_opts, f)}
static const md_opt_bind REFUSAL_OPTS[] = {
    MD_REFUSAL_OPTS_BIND(rf_opts), RO(layer), RO(position), RO(positions), RO(addition_layer), RO(coefficients),
    RO(addition_vector), RO(sweep), {0}};
#undef RO

static rf_opts rf_get_opts(const md_kind_ctx *ctx)
{
    rf_opts o;
    md_params_bind(&ctx->exp->params, REFUSAL_OPTS, &o);
    return o;
}

static const md_refusal_variant RF_VARIANT;

/* Interventions of a target: 0 none, 1..M ablate_<src>, M+1..2M add_<src>. */
static void interv_name(const md_refusal_state *s, int iv, char *buf, size_t n)
{
    if (iv == 0) snprintf(buf, n, "none");
    else if (iv <= s->sets.n_roles) snprintf(buf, n, "ablate_%s", s->sets.roles[iv - 1]);
    else snprintf(buf, n, "add_%s", s->sets.roles[iv - 1 - s->sets.n_roles]);
}

/* Stage 1 units: target × intervention × set × batch; activation addition
 * (interventions after the ablations) runs on harmless prompts only. */
static int rf_gen_units(md_refusal_state *s, md_error *err)
{
    int nr = s->sets.n_roles, nb = md_exp_count_batches(s->sets.n_test, s->sets.batch), ni = 1 + 2 * nr;
    if (md_exp_alloc_units(&s->gen, nr * ni * 2 * nb, err) != MD_OK) return MD_ERR;
    for (int t = 0; t < nr; t++)
        for (int iv = 0; iv < ni; iv++)
            for (int k = 0; k < 2; k++) {
                if (iv > nr && k == MD_REFUSAL_HARMFUL) continue;
                for (int b = 0; b < nb; b++) md_exp_add_unit(&s->gen, t, iv, k, b);
            }
    return MD_OK;
}

/* The direction's layer, or (addition) the activation-addition layer. */
static int rf_layer(const rf_opts *o, const md_config *c, int addition)
{
    int64_t l = addition ? o->addition_layer : o->layer;
    if (l < 0 && addition) l = o->layer;
    if (l < 0) l = (int64_t)floor(c->n_layers * 11.0 / 32.0 + 0.5);
    return (int)l;
}

static int rf_position(const rf_opts *o, const char *role)
{
    const char *v = md_value_map_get(o->positions, role);
    return v ? atoi(v) : (int)o->position;
}

static int rf_validate(const md_kind_ctx *ctx, md_error *err)
{
    const rf_opts o = rf_get_opts(ctx);
    char where[MD_EXP_WHERE_MAX];
    md_exp_format_where(ctx, where, sizeof where);
    if (o.sweep)
        return md_error_set(err, "%s: key 'sweep': the layer/position sweep is its own kind: add an experiment with "
                                 "kind: refusal_sweep (same keys, plus layers and positions), read its score and "
                                 "best_<model> attributes, then set layer/positions here and sweep: false",
                            where);
    md_refusal_state *s = NULL;
    if (md_refusal_build_state(ctx, &RF_VARIANT, &s, err) != MD_OK) return MD_ERR;
    const char *const *roles = s->sets.roles;
    int rc = MD_OK;
    md_config c0 = {0};
    for (int i = 0; i < s->sets.n_roles && rc == MD_OK; i++) {
        md_config c;
        if ((rc = md_refusal_check_role(ctx, where, &s->sets, i, &c0, &c, err)) != MD_OK) break;
        int l = rf_layer(&o, &c, 0), la = rf_layer(&o, &c, 1);
        if (rc == MD_OK && (l >= c.n_layers || la >= c.n_layers))
            rc = md_error_set(err, "%s: key 'layer'/'addition_layer': %d/%d but model '%s' has %d layers", where, l,
                              la, roles[i], c.n_layers);
        const char *pv = md_value_map_get(o.positions, roles[i]);
        if (rc == MD_OK && pv && (atoi(pv) >= 0 || atoi(pv) < -4096))
            rc = md_error_set(err, "%s: key 'positions': '%s' for role '%s' must be a negative integer (from the end)",
                              where, pv, roles[i]);
        const char *cv = md_value_map_get(o.coefficients, roles[i]);
        char *end = NULL;
        if (rc == MD_OK && cv && (strtod(cv, &end), !end || *end))
            rc = md_error_set(err, "%s: key 'coefficients': '%s' for role '%s' is not a number", where, cv,
                              roles[i]);
    }
    md_refusal_free_state(s);
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

enum { RO_DIRECTION = MD_REFUSAL_OUT_ACTS + 1, RO_MEAN_DIFF, RO_MEAN_DIFF_NORM, RO_COSINE, RO_TEXT, RO_REFUSED,
       RO_SCORE };

static const md_output REFUSAL_OUTPUTS[] = {
    MD_REFUSAL_SPLIT_OUTPUTS,
    [MD_REFUSAL_OUT_ACTS] = {.path = "acts/{model}/{set}", .type = MD_H5_F32, .dims = "row,hidden",
                             .axes = "split/{set} train rows, d_model", .units = "activation",
                             .description = "the hook point at (layer, position) of each train prompt", .stage = 0,
                             .chunk_rows = 64, .deflate = 1},
    [RO_DIRECTION] = {.path = "direction", .type = MD_H5_F64, .dims = "model,hidden", .axes = "attribute models, d_model",
                      .units = "", .description = "refusal direction r̂ (unit) per model", .stage = 1, .at_plan = 1},
    [RO_MEAN_DIFF] = {.path = "mean_diff", .type = MD_H5_F64, .dims = "model,hidden",
                      .axes = "attribute models, d_model", .units = "activation",
                      .description = "mean(harmful) - mean(harmless)", .stage = 1, .at_plan = 1},
    [RO_MEAN_DIFF_NORM] = {.path = "mean_diff_norm", .type = MD_H5_F64, .dims = "model", .axes = "attribute models",
                           .units = "activation", .description = "norm of mean_diff", .stage = 1, .at_plan = 1},
    [RO_COSINE] = {.path = "cosine", .type = MD_H5_F64, .dims = "model,model_b", .axes = "attribute models (both)",
                   .units = "1", .description = "cosine between the models' directions", .stage = 1, .at_plan = 1},
    [RO_TEXT] = {.path = "gen/{set}/{target}/{intervention}/text", .type = MD_H5_STR, .dims = "row",
                 .axes = "test rows of split/{set}", .units = "", .description = "greedy completion (new tokens, decoded)",
                 .stage = 1},
    [RO_REFUSED] = {.path = "gen/{set}/{target}/{intervention}/refused", .type = MD_H5_I32, .dims = "row",
                    .axes = "test rows of split/{set}", .units = "",
                    .description = "1 = the completion starts with a refusal prefix", .stage = 1},
    [RO_SCORE] = {.path = "refusal_score", .type = MD_H5_F64, .dims = "target,intervention,set",
                  .axes = "attribute models, attribute interventions, attribute sets", .units = "1",
                  .description = "fraction of test completions starting with a refusal prefix (NaN = not run)",
                  .stage = 2, .at_plan = 1, .nan_ok = 1},
    {0}};

static int rf_plan(const md_kind_ctx *ctx, int stage, const md_blob *input, md_plan *plan, md_error *err)
{
    const rf_opts o = rf_get_opts(ctx);
    md_refusal_state *s = NULL;
    int rc = MD_ERR;
    char path[MD_PATH_MAX], val[1024];
    if (md_refusal_build_state(ctx, &RF_VARIANT, &s, err) != MD_OK) return MD_ERR;
    const md_refusal_sets *rs = &s->sets;
    int M = rs->n_roles, ni = 1 + 2 * M;
    if (stage == 0) {
        md_config c;
        if (md_refusal_plan_acts(plan, ctx, rs, REFUSAL_OUTPUTS, 2, 1, 1, &c, err) != MD_OK)
            goto done;
        snprintf(val, sizeof val, "%d", rf_layer(&o, &c, 0));
        if (md_plan_attr(plan, "", "layer", val, err) != MD_OK) goto done;
        snprintf(val, sizeof val, "%d", rf_layer(&o, &c, 1));
        if (md_plan_attr(plan, "", "addition_layer", val, err) != MD_OK) goto done;
        for (int m = 0; m < M; m++) {
            snprintf(path, sizeof path, "acts/%s/harmful", rs->roles[m]);
            snprintf(val, sizeof val, "%d", rf_position(&o, rs->roles[m]));
            if (md_plan_attr(plan, path, "position", val, err) != MD_OK) goto done;
        }
        rc = md_plan_units(plan, md_refusal_count_act_units(rs), err);
        goto done;
    }
    if (stage == 1) {
        rf_dirs v;
        if (rf_dirs_view(input, &v, err) != MD_OK) goto done;
        int64_t dd[2] = {M, v.d}, mm[2] = {M, M}, m1 = M;
        size_t md_bytes = sizeof(double) * (size_t)M * v.d;
        if (md_plan_output_put(plan, &REFUSAL_OUTPUTS[RO_DIRECTION], NULL, dd, v.dir, md_bytes, err) != MD_OK ||
            md_plan_output_put(plan, &REFUSAL_OUTPUTS[RO_MEAN_DIFF], NULL, dd, v.mean_diff, md_bytes, err) != MD_OK ||
            md_plan_output_put(plan, &REFUSAL_OUTPUTS[RO_MEAN_DIFF_NORM], NULL, &m1, v.norm, sizeof(double) * M, err) !=
                MD_OK ||
            md_plan_output_put(plan, &REFUSAL_OUTPUTS[RO_COSINE], NULL, mm, v.cos, sizeof(double) * M * M, err) != MD_OK)
            goto done;
        for (int t = 0; t < M; t++)
            for (int iv = 0; iv < ni; iv++)
                for (int k = 0; k < 2; k++) {
                    if (iv > M && k == MD_REFUSAL_HARMFUL) continue;
                    char ivn[128];
                    interv_name(s, iv, ivn, sizeof ivn);
                    int64_t n = rs->n_test;
                    const char *args[] = {md_refusal_set_name(k), rs->roles[t], ivn};
                    if (md_plan_output(plan, &REFUSAL_OUTPUTS[RO_TEXT], args, &n, err) != MD_OK ||
                        md_plan_output(plan, &REFUSAL_OUTPUTS[RO_REFUSED], args, &n, err) != MD_OK)
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
        int64_t dims[3] = {M, ni, 2};
        if (md_plan_output_put(plan, &REFUSAL_OUTPUTS[RO_SCORE], NULL, dims, input->data, input->size, err) != MD_OK)
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
    md_refusal_free_state(s);
    return rc;
}

/* Stage 0 unit: activations of one batch at the role's (layer, position). */
static int rf_acts(const md_kind_ctx *ctx, md_worker *w, md_refusal_state *s, int64_t unit, md_result *out, md_error *err)
{
    const rf_opts o = rf_get_opts(ctx);
    const char *role = s->sets.roles[md_refusal_act_role(&s->sets, unit)];
    md_model *M = NULL;
    if (md_worker_model(w, role, &M, err) != MD_OK) return MD_ERR;
    int layer = rf_layer(&o, &M->cfg, 0), pos = rf_position(&o, role);
    return md_refusal_compute_acts(ctx, w, &s->sets, unit, &layer, 1, &pos, 1, 2, "refusal", out, err);
}

/* Stage 1 unit: generations of one batch under one intervention. */
static int rf_gen(const md_kind_ctx *ctx, md_worker *w, md_refusal_state *s, const md_blob *input, int64_t unit,
                  md_result *out, md_error *err)
{
    const rf_opts opt = rf_get_opts(ctx);
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
        int unit_vec = strcmp(opt.addition_vector, "unit") == 0;
        const double *r = (unit_vec ? v.dir : v.mean_diff) + (size_t)src * d;
        for (int j = 0; j < d; j++) vec[j] = (float)r[j];
        const char *cv = md_value_map_get(opt.coefficients, rs->roles[t]);
        hk[nh++] = (md_hook){.point = rs->hook, .op = MD_HOOK_ADD, .layer = rf_layer(&opt, &M->cfg, 1),
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

/* finish_stage(0): mean difference, unit direction, norm per model; cosines. */
static int rf_directions(md_refusal_state *s, md_reader *rd, md_blob *next, md_error *err)
{
    const md_refusal_sets *rs = &s->sets;
    int M = rs->n_roles, rc = MD_ERR;
    char path[MD_PATH_MAX];
    int64_t dims[MD_MAX_DIMS];
    snprintf(path, sizeof path, "acts/%s/harmful", rs->roles[0]);
    if (md_reader_dims(rd, path, dims, err) < 0) return MD_ERR;
    int d = (int)dims[1];
    int32_t hd[2] = {M, d};
    double *md_ = NULL;
    size_t bytes = 0;
    void *blob = md_exp_alloc_blob(hd, 2, rf_dirs_count(M, d), &md_, &bytes);
    if (!blob) return md_error_set(err, "out of memory");
    double *dir = md_ + (size_t)M * d, *norm = dir + (size_t)M * d, *cs = norm + M;
    for (int m = 0; m < M; m++)
        if (md_refusal_direction(rd, rs, m, 2, 0, 0, d, md_ + (size_t)m * d, dir + (size_t)m * d, &norm[m], 0, err) !=
            MD_OK) {
            md_error_prefix(err, "refusal direction of model '%s'", rs->roles[m]);
            goto done;
        }
    for (int a = 0; a < M; a++)
        for (int b2 = 0; b2 < M; b2++) cs[a * M + b2] = md_dir_cosine(dir + (size_t)a * d, dir + (size_t)b2 * d, d);
    rc = md_blob_set(next, blob, bytes, err);
done:
    free(blob);
    return rc;
}

/* finish_stage(1): the refusal score of every (target, intervention, set);
 * NaN where not run. */
static int rf_scores(md_refusal_state *s, const md_blob *input, md_reader *rd, md_blob *next, md_error *err)
{
    (void)input;
    const md_refusal_sets *rs = &s->sets;
    int M = rs->n_roles, ni = 1 + 2 * M, rc = MD_ERR;
    char path[MD_PATH_MAX];
    double *sc = malloc(sizeof(double) * (size_t)M * ni * 2);
    if (!sc) return md_error_set(err, "out of memory");
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
    free(sc);
    return rc;
}

static const md_refusal_variant RF_VARIANT = {
    .kind = "refusal", .gen_units = rf_gen_units, .acts = rf_acts, .gen = rf_gen, .directions = rf_directions,
    .scores = rf_scores};

const md_kind md_kind_refusal = {
    .name = "refusal",
    .doc = "Refusal direction per model (mean(harmful) - mean(harmless) at one hook/layer/position, normalised), "
           "cosine between models, and greedy generations with no intervention, directional ablation of every "
           "source model's direction, and activation addition; refusal score by prefix (docs/methods.md, Refusal).",
    .keys = REFUSAL_KEYS,
    .opts = REFUSAL_OPTS,
    .data = &RF_VARIANT,
    .outputs = REFUSAL_OUTPUTS,
    .validate = rf_validate,
    .plan = rf_plan,
    .prepare = md_refusal_prepare,
    .release_state = md_refusal_free_state,
    .compute = md_refusal_compute,
    .finish_stage = md_refusal_finish,
    .unit_name = md_exp_name_unit,
    .estimate_units = md_refusal_estimate_units,
};
