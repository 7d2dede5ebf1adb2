/* refusal_sweep.c — the `refusal_sweep` kind (docs/methods.md, "Refusal"; issue 6):
 * refusal score vs the layer and position of the refusal direction, to pick
 * them as Arditi et al. do. The best candidate per model is reported (as
 * attributes), never used by anything automatically: the `refusal` kind still
 * takes its layer/positions from the job.
 *
 * Same conventions as the `refusal` kind (split, templates, hook, ablation),
 * from the same code: refusal_common.c.
 * Stages and units (all defined by the job, never by ranks):
 *   0  activations   unit = (model, set ∈ {harmful, harmless}, batch of train rows):
 *                    the hook point at every candidate (layer, position)
 *   1  generations   unit = (model, candidate layer, candidate position, batch of
 *                    harmful test rows): greedy generation with that direction
 *                    ablated (x -= (x·r̂)r̂ at resid_pre, resid_mid, resid_post of
 *                    every layer and position); refusal by prefix
 *   2  summary       one unit; the plan writes the scores read back
 * finish_stage(0) computes the directions (mean(harmful) − mean(harmless),
 * normalised) per (model, layer, position), finish_stage(1) the scores.
 *
 * Output (/<name>/...):
 *   split/<set>/instruction [row] str, split/<set>/csv_row [row] i32   (train rows, then test)
 *   acts/<model>/<set> [row, layer, position, hidden] f32              stage 0
 *   direction [model, layer, position, hidden] f64 (unit; 0 where the two
 *             means coincide, e.g. layer 0 at a template token)          stage 1 plan
 *   refused [model, layer, position, row] i32                          stage 1
 *   gen/<model>/layer<l>_pos<p>/text [row] str                         stage 1
 *   score [model, layer, position] f64 (NaN where the direction is 0;
 *         attributes best_<model>: the lowest, reported only)          stage 2 plan */
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

static const md_key SWEEP_KEYS[] = {
    {.name = "models", .type = MD_KEY_STRLIST, .def = "", .doc = "Roles swept (empty = every role in `models`)."},
    MD_REFUSAL_KEY_SETS,
    {.name = "n_train", .type = MD_KEY_INT, .def = "64", .min = 1, .max = 1e7,
     .doc = "Train instructions per set (directions)."},
    {.name = "n_test", .type = MD_KEY_INT, .def = "32", .min = 1, .max = 1e7,
     .doc = "Harmful test instructions generated per candidate."},
    MD_REFUSAL_KEY_TEMPLATES,
    {.name = "layers", .type = MD_KEY_STRLIST, .def = "all",
     .doc = "Candidate layers: 'all' (every layer; the models must have as many) or a list of layer indices."},
    {.name = "positions", .type = MD_KEY_STRLIST, .def = "-1,-2,-3,-4,-5",
     .doc = "Candidate prompt positions, counted from the end (negative)."},
    MD_REFUSAL_KEY_GENERATION,
    {0}};

/* The kind's keys, parsed in one call (md_params_bind; sw_get_opts binds a
 * copy): the shared ones (c) and the candidate lists. */
typedef struct sw_opts {
    md_refusal_opts c;
    const md_value *layers, *positions;
} sw_opts;

#define SO(f) {#f, offsetof(sw_opts, f)}
static const md_opt_bind SWEEP_OPTS[] = {MD_REFUSAL_OPTS_BIND(sw_opts), SO(layers), SO(positions), {0}};
#undef SO

static sw_opts sw_get_opts(const md_kind_ctx *ctx)
{
    sw_opts o;
    md_params_bind(&ctx->exp->params, SWEEP_OPTS, &o);
    return o;
}

/* `layers` is the one item 'all'. */
static int sw_all_layers(const sw_opts *o)
{
    return o->layers->n == 1 && strcmp(o->layers->list[0], "all") == 0;
}

#define SW_MAX_CAND 4096

/* Integer item of a list key; MD_ERR with err naming the key and the item. */
static int sw_parse_int(const char *where, const char *key, const char *v, long lo, long hi, int *out, md_error *err)
{
    char *end = NULL;
    long x = strtol(v, &end, 10);
    if (!*v || !end || *end || x < lo || x > hi)
        return md_error_set(err, "%s: key '%s': '%s' is not an integer in [%ld, %ld]", where, key, v, lo, hi);
    *out = (int)x;
    return MD_OK;
}

/* Candidate layers and positions; n_model_layers = layers of the first model. */
static int sw_candidates(const md_kind_ctx *ctx, const char *where, md_refusal_state *s, md_error *err)
{
    const sw_opts o = sw_get_opts(ctx);
    md_config c;
    if (md_hf_config_load_dir(&c, md_params_map_get(&ctx->job->top, "models", s->sets.roles[0]), err) != MD_OK)
        return md_error_prefix(err, "%s: model '%s'", where, s->sets.roles[0]);
    int n_model_layers = c.n_layers;
    int nl = o.layers->n, np = o.positions->n;
    int all = sw_all_layers(&o);
    if (nl < 1) return md_error_set(err, "%s: key 'layers': empty; use 'all' or a list of layers", where);
    if (np < 1) return md_error_set(err, "%s: key 'positions': empty; list at least one negative position", where);
    s->n_layers = all ? n_model_layers : nl;
    s->n_pos = np;
    if ((int64_t)s->n_layers * s->n_pos > SW_MAX_CAND)
        return md_error_set(err, "%s: keys 'layers'/'positions': %d x %d candidates, at most %d", where, s->n_layers,
                            s->n_pos, SW_MAX_CAND);
    s->layers = malloc((size_t)s->n_layers * sizeof(int));
    s->positions = malloc((size_t)s->n_pos * sizeof(int));
    if (!s->layers || !s->positions) return md_error_set(err, "out of memory");
    for (int i = 0; i < s->n_layers; i++) {
        if (all) s->layers[i] = i;
        else if (sw_parse_int(where, "layers", o.layers->list[i], 0, n_model_layers - 1, &s->layers[i],
                              err) != MD_OK)
            return MD_ERR;
    }
    for (int i = 0; i < s->n_pos; i++)
        if (sw_parse_int(where, "positions", o.positions->list[i], -4096, -1, &s->positions[i], err) !=
            MD_OK)
            return MD_ERR;
    return MD_OK;
}

/* Stage 1 units: model × candidate layer × candidate position × batch. */
static int sw_gen_units(md_refusal_state *s, md_error *err)
{
    int nb = md_exp_count_batches(s->sets.n_test, s->sets.batch);
    if (md_exp_alloc_units(&s->gen, s->sets.n_roles * s->n_layers * s->n_pos * nb, err) != MD_OK) return MD_ERR;
    for (int m = 0; m < s->sets.n_roles; m++)
        for (int li = 0; li < s->n_layers; li++)
            for (int pi = 0; pi < s->n_pos; pi++)
                for (int b = 0; b < nb; b++) md_exp_add_unit(&s->gen, m, li, pi, b);
    return MD_OK;
}

static const md_refusal_variant SW_VARIANT;

static int sw_validate(const md_kind_ctx *ctx, md_error *err)
{
    char where[MD_EXP_WHERE_MAX];
    md_exp_format_where(ctx, where, sizeof where);
    md_refusal_state *s = NULL;
    if (md_refusal_build_state(ctx, &SW_VARIANT, &s, err) != MD_OK) return MD_ERR;
    const char *const *roles = s->sets.roles;
    const sw_opts o = sw_get_opts(ctx);
    int rc = MD_OK, all = sw_all_layers(&o);
    md_config c0 = {0};
    for (int i = 0; i < s->sets.n_roles && rc == MD_OK; i++) {
        md_config c;
        if ((rc = md_refusal_check_role(ctx, where, &s->sets, i, &c0, &c, err)) != MD_OK) break;
        if (all && c.n_layers != c0.n_layers)
            rc = md_error_set(err, "%s: key 'layers': 'all' but model '%s' has %d layers and '%s' %d; list the layers",
                              where, roles[0], c0.n_layers, roles[i], c.n_layers);
        for (int li = 0; rc == MD_OK && li < s->n_layers; li++)
            if (s->layers[li] >= c.n_layers)
                rc = md_error_set(err, "%s: key 'layers': %d but model '%s' has %d layers", where, s->layers[li],
                                  roles[i], c.n_layers);
    }
    md_refusal_free_state(s);
    return rc;
}

/* Blob of stage 1: int32 M, L, P, d; f64 dir[M][L][P][d] (unit). */
typedef struct sw_dirs {
    int M, L, P, d;
    const double *dir;
} sw_dirs;

static int sw_dirs_view(const md_blob *b, sw_dirs *v, md_error *err)
{
    *v = (sw_dirs){0};
    int32_t hd[4];
    if (md_exp_read_blob_header(b, "refusal_sweep", hd, 4, err) != MD_OK) return MD_ERR;
    v->M = hd[0], v->L = hd[1], v->P = hd[2], v->d = hd[3];
    return md_exp_view_blob_f64(b, "refusal_sweep", 4, (size_t)v->M * v->L * v->P * v->d, &v->dir, err);
}

/* Attributes layers and positions (the candidates, comma-separated) of `path`
 * ("" = the group). */
static int sw_plan_candidates(md_plan *plan, const md_refusal_state *s, const char *path, md_error *err)
{
    char val[1024];
    size_t off = 0;
    val[0] = '\0';
    for (int i = 0; i < s->n_layers && off < sizeof val; i++)
        off += (size_t)snprintf(val + off, sizeof val - off, "%s%d", i ? "," : "", s->layers[i]);
    if (md_plan_attr(plan, path, "layers", val, err) != MD_OK) return MD_ERR;
    off = 0;
    val[0] = '\0';
    for (int i = 0; i < s->n_pos && off < sizeof val; i++)
        off += (size_t)snprintf(val + off, sizeof val - off, "%s%d", i ? "," : "", s->positions[i]);
    return md_plan_attr(plan, path, "positions", val, err);
}

enum { SO_DIRECTION = MD_REFUSAL_OUT_ACTS + 1, SO_REFUSED, SO_TEXT, SO_SCORE };

static const md_output SWEEP_OUTPUTS[] = {
    MD_REFUSAL_SPLIT_OUTPUTS,
    [MD_REFUSAL_OUT_ACTS] = {.path = "acts/{model}/{set}", .type = MD_H5_F32, .dims = "row,layer,position,hidden",
                             .axes = "split/{set} train rows, attributes layers, positions, d_model",
                             .units = "activation",
                             .description = "the hook point at every candidate (layer, position) of each train prompt",
                             .stage = 0},
    [SO_DIRECTION] = {.path = "direction", .type = MD_H5_F64, .dims = "model,layer,position,hidden",
                      .axes = "attributes models, layers, positions; d_model", .units = "",
                      .description = "refusal direction r̂ (unit) per model and candidate (layer, position)",
                      .stage = 1, .at_plan = 1},
    [SO_REFUSED] = {.path = "refused", .type = MD_H5_I32, .dims = "model,layer,position,row",
                    .axes = "attributes models, layers, positions; harmful test rows", .units = "",
                    .description = "1 = the completion of the harmful test prompt, with the candidate direction "
                                   "ablated, starts with a refusal prefix",
                    .stage = 1},
    [SO_TEXT] = {.path = "gen/{model}/layer{layer}_pos{position}/text", .type = MD_H5_STR, .dims = "row",
                 .axes = "harmful test rows", .units = "",
                 .description = "greedy completion (new tokens, decoded) with the direction ablated", .stage = 1},
    [SO_SCORE] = {.path = "score", .type = MD_H5_F64, .dims = "model,layer,position",
                  .axes = "attributes models, layers, positions", .units = "1",
                  .description = "refusal rate of the harmful test prompts with the candidate direction ablated "
                                 "(lower = the direction matters more; NaN = mean(harmful) = mean(harmless) there, "
                                 "e.g. layer 0 at a template token: no direction)",
                  .stage = 2, .at_plan = 1, .nan_ok = 1},
    {0}};

static int sw_plan(const md_kind_ctx *ctx, int stage, const md_blob *input, md_plan *plan, md_error *err)
{
    md_refusal_state *s = NULL;
    int rc = MD_ERR;
    char val[1024];
    if (md_refusal_build_state(ctx, &SW_VARIANT, &s, err) != MD_OK) return MD_ERR;
    const md_refusal_sets *rs = &s->sets;
    int M = rs->n_roles, L = s->n_layers, P = s->n_pos;
    if (stage == 0) {
        md_config c;
        if (md_refusal_plan_acts(plan, ctx, rs, SWEEP_OUTPUTS, 4, L, P, &c, err) != MD_OK ||
            sw_plan_candidates(plan, s, "", err) != MD_OK)
            goto done;
        rc = md_plan_units(plan, md_refusal_count_act_units(rs), err);
        goto done;
    }
    if (stage == 1) {
        sw_dirs v;
        if (sw_dirs_view(input, &v, err) != MD_OK) goto done;
        int64_t dd[4] = {M, L, P, v.d}, dr[4] = {M, L, P, rs->n_test};
        if (md_plan_output_put(plan, &SWEEP_OUTPUTS[SO_DIRECTION], NULL, dd, v.dir,
                               sizeof(double) * (size_t)M * L * P * v.d, err) != MD_OK ||
            md_plan_output(plan, &SWEEP_OUTPUTS[SO_REFUSED], NULL, dr, err) != MD_OK)
            goto done;
        for (int m = 0; m < M; m++)
            for (int li = 0; li < L; li++)
                for (int pi = 0; pi < P; pi++) {
                    int64_t n = rs->n_test;
                    char ls[16], ps[16];
                    snprintf(ls, sizeof ls, "%d", s->layers[li]);
                    snprintf(ps, sizeof ps, "%d", s->positions[pi]);
                    if (md_plan_output(plan, &SWEEP_OUTPUTS[SO_TEXT], (const char *const[]){rs->roles[m], ls, ps}, &n,
                                       err) != MD_OK)
                        goto done;
                }
        rc = md_plan_units(plan, s->gen.n, err);
        goto done;
    }
    /* stage 2: the scores, and the best candidate per model (reported only) */
    if (!input || input->size != sizeof(double) * (size_t)M * L * P) {
        md_error_set(err, "refusal_sweep: stage 2 input has the wrong size");
        goto done;
    }
    {
        const double *sc = input->data;
        int64_t dims[3] = {M, L, P};
        if (md_plan_output_put(plan, &SWEEP_OUTPUTS[SO_SCORE], NULL, dims, sc, input->size, err) != MD_OK)
            goto done;
        for (int m = 0; m < M; m++) {
            int best = -1; /* lowest score; ties: earliest layer, then position, in the order listed; NaN skipped */
            for (int c = 0; c < L * P; c++) {
                double x = sc[(size_t)m * L * P + c];
                if (!isnan(x) && (best < 0 || x < sc[(size_t)m * L * P + best])) best = c;
            }
            char name[160];
            if (best < 0) snprintf(val, sizeof val, "none (no candidate has a direction)");
            else
                snprintf(val, sizeof val, "layer %d position %d score %.17g", s->layers[best / P],
                         s->positions[best % P], sc[(size_t)m * L * P + best]);
            snprintf(name, sizeof name, "best_%s", rs->roles[m]);
            if (md_plan_attr(plan, "score", name, val, err) != MD_OK) goto done;
        }
        /* the dimension scales hold indices: name the candidates' values */
        md_exp_join_names(val, sizeof val, rs->roles, M);
        if (md_plan_attr(plan, "score", "models", val, err) != MD_OK ||
            sw_plan_candidates(plan, s, "score", err) != MD_OK)
            goto done;
        if (md_plan_attr(plan, "score", "note",
                         "best_<model>: the lowest score (reported, not used; ties: first layer, then position; NaN skipped)",
                         err) != MD_OK)
            goto done;
        rc = md_plan_units(plan, 1, err);
    }
done:
    md_refusal_free_state(s);
    return rc;
}

/* Stage 0 unit: activations of one batch at every candidate. */
static int sw_acts(const md_kind_ctx *ctx, md_worker *w, md_refusal_state *s, int64_t unit, md_result *out, md_error *err)
{
    return md_refusal_compute_acts(ctx, w, &s->sets, unit, s->layers, s->n_layers, s->positions, s->n_pos, 4,
                                   "refusal_sweep", out, err);
}

/* Stage 1 unit: generations of one batch of harmful test prompts with one
 * candidate direction ablated at every layer (as the refusal kind's ablate_). */
static int sw_gen(const md_kind_ctx *ctx, md_worker *w, md_refusal_state *s, const md_blob *input, int64_t unit,
                  md_result *out, md_error *err)
{
    const md_refusal_sets *rs = &s->sets;
    sw_dirs v;
    if (sw_dirs_view(input, &v, err) != MD_OK) return MD_ERR;
    const int *key = s->gen.key[unit];
    int m = key[0], li = key[1], pi = key[2], r0, n = md_exp_slice_batch(rs->n_test, rs->batch, key[3], &r0);
    md_model *M = NULL;
    if (md_worker_model(w, rs->roles[m], &M, err) != MD_OK) return MD_ERR;
    int d = M->cfg.d_model, rc = MD_ERR;
    int32_t *refused = calloc((size_t)n, sizeof(int32_t));
    float *vec = malloc((size_t)d * sizeof(float));
    md_hook hk[3];
    if (!refused || !vec) {
        md_error_set(err, "out of memory");
        goto done;
    }
    if (v.d != d || v.M != rs->n_roles || v.L != s->n_layers || v.P != s->n_pos) {
        md_error_set(err, "direction blob (%d models, %d x %d candidates, width %d) does not fit model '%s' (%d)", v.M,
                     v.L, v.P, v.d, rs->roles[m], d);
        goto done;
    }
    const double *r = v.dir + (((size_t)m * v.L + li) * v.P + pi) * d;
    for (int j = 0; j < d; j++) vec[j] = (float)r[j];
    int nh = md_refusal_ablation_hooks(vec, hk);
    char path[MD_PATH_MAX];
    int64_t o4[4] = {m, li, pi, r0}, c4[4] = {1, 1, 1, n};
    snprintf(path, sizeof path, "gen/%s/layer%d_pos%d/text", rs->roles[m], s->layers[li], s->positions[pi]);
    if (md_refusal_generate(ctx, M, rs, m, MD_REFUSAL_HARMFUL, r0, n, hk, nh, path, refused, out, err) != MD_OK)
        goto done;
    rc = md_result_put(out, "refused", 4, o4, c4, refused, (size_t)n * sizeof(int32_t), err);
done:
    if (rc != MD_OK)
        md_error_prefix(err, "refusal_sweep generation (%s, layer %d, position %d, rows %d..)", rs->roles[m],
                        s->layers[li], s->positions[pi], r0);
    free(refused), free(vec);
    return rc;
}

/* finish_stage(0): the unit direction per (model, layer, position); 0 where
 * the two means coincide. */
static int sw_directions(md_refusal_state *s, md_reader *rd, md_blob *next, md_error *err)
{
    const md_refusal_sets *rs = &s->sets;
    int M = rs->n_roles, L = s->n_layers, P = s->n_pos, rc = MD_ERR;
    char path[MD_PATH_MAX];
    int64_t dims[MD_MAX_DIMS];
    snprintf(path, sizeof path, "acts/%s/harmful", rs->roles[0]);
    if (md_reader_dims(rd, path, dims, err) < 0) return MD_ERR;
    int d = (int)dims[3];
    int32_t hd[4] = {M, L, P, d};
    double *dir = NULL, norm;
    size_t bytes = 0;
    void *blob = md_exp_alloc_blob(hd, 4, (size_t)M * L * P * d, &dir, &bytes);
    if (!blob) return md_error_set(err, "out of memory");
    for (int m = 0; m < M; m++)
        for (int li = 0; li < L; li++)
            for (int pi = 0; pi < P; pi++) {
                double *r = dir + (((size_t)m * L + li) * P + pi) * d;
                if (md_refusal_direction(rd, rs, m, 4, li, pi, d, r, r, &norm, 1, err) != MD_OK) {
                    md_error_prefix(err, "refusal direction of model '%s' at layer %d, position %d", rs->roles[m],
                                    s->layers[li], s->positions[pi]);
                    goto done;
                }
            }
    rc = md_blob_set(next, blob, bytes, err);
done:
    free(blob);
    return rc;
}

/* finish_stage(1): scores [M][L][P]; NaN where the direction is 0. */
static int sw_scores(md_refusal_state *s, const md_blob *input, md_reader *rd, md_blob *next, md_error *err)
{
    const md_refusal_sets *rs = &s->sets;
    int M = rs->n_roles, L = s->n_layers, P = s->n_pos, rc = MD_ERR;
    sw_dirs v;
    if (sw_dirs_view(input, &v, err) != MD_OK) return MD_ERR;
    double *sc = malloc(sizeof(double) * (size_t)M * L * P);
    if (!sc) return md_error_set(err, "out of memory");
    for (int m = 0; m < M; m++)
        for (int li = 0; li < L; li++)
            for (int pi = 0; pi < P; pi++) {
                int64_t o[4] = {m, li, pi, 0}, c[4] = {1, 1, 1, rs->n_test};
                double rate;
                if (md_refusal_read_rate(rd, "refused", o, c, rs->n_test, &rate, err) != MD_OK) goto done;
                const double *r = v.dir + (((size_t)m * L + li) * P + pi) * v.d;
                int zero = 1;
                for (int j = 0; j < v.d && zero; j++) zero = r[j] == 0;
                sc[((size_t)m * L + li) * P + pi] = zero ? NAN : rate;
            }
    rc = md_blob_set(next, sc, sizeof(double) * (size_t)M * L * P, err);
done:
    free(sc);
    return rc;
}

static const md_refusal_variant SW_VARIANT = {
    .kind = "refusal_sweep", .candidates = sw_candidates, .gen_units = sw_gen_units, .acts = sw_acts, .gen = sw_gen,
    .directions = sw_directions, .scores = sw_scores};

const md_kind md_kind_refusal_sweep = {
    .name = "refusal_sweep",
    .doc = "Refusal score vs the layer and position of the refusal direction (Arditi et al.): a direction per "
           "model and candidate (layer, position), and the refusal rate of harmful test prompts with it ablated "
           "at every layer; the lowest per model is reported as an attribute, never used automatically "
           "(docs/methods.md, Refusal).",
    .keys = SWEEP_KEYS,
    .opts = SWEEP_OPTS,
    .data = &SW_VARIANT,
    .outputs = SWEEP_OUTPUTS,
    .validate = sw_validate,
    .plan = sw_plan,
    .prepare = md_refusal_prepare,
    .release_state = md_refusal_free_state,
    .compute = md_refusal_compute,
    .finish_stage = md_refusal_finish,
    .unit_name = md_exp_name_unit,
    .estimate_units = md_refusal_estimate_units,
};
