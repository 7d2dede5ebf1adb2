/* refusal_plan.c — the outputs table of the `refusal` kind (both modes) and
 * its plans (see refusal.c for the stages): stage 0 writes the split and
 * declares the activations; stage 1 writes the directions of
 * finish_stage(0) and declares the generations; stage 2 writes the scores
 * of finish_stage(1). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp/refusal.h"
#include "exp/refusal_labels.h"
#include "mechdiff/exp_output.h"
#include "mechdiff/hf_config.h"
#include "mechdiff/tokenizer.h"

const md_output MD_REFUSAL_OUTPUTS[] = {
    [MD_RO_INSTRUCTION] = {.path = "split/{set}/instruction", .type = MD_H5_STR, .dims = "row",
                           .axes = "train rows, then test rows (attribute n_train)", .units = "",
                           .description = "instructions: rows [0, n_train) train, then n_test test", .stage = 0,
                           .at_plan = 1},
    [MD_RO_CSV_ROW] = {.path = "split/{set}/csv_row", .type = MD_H5_I32, .dims = "row", .units = "",
                       .description = "0-based CSV row of each instruction", .stage = 0, .at_plan = 1},
    /* point mode (sweep: false) */
    [MD_RO_ACTS] = {.path = "acts/{model}/{set}", .type = MD_H5_F32, .dims = "row,hidden",
                    .axes = "split/{set} train rows, d_model", .units = "activation",
                    .description = "the hook point at (layer, position) of each train prompt", .stage = 0,
                    .chunk_rows = 64, .deflate = 1},
    [MD_RO_DIRECTION] = {.path = "direction", .type = MD_H5_F64, .dims = "model,hidden",
                         .axes = "attribute models, d_model", .units = "",
                         .description = "refusal direction r̂ (unit) per model", .stage = 1, .at_plan = 1},
    [MD_RO_MEAN_DIFF] = {.path = "mean_diff", .type = MD_H5_F64, .dims = "model,hidden",
                         .axes = "attribute models, d_model", .units = "activation",
                         .description = "mean(harmful) - mean(harmless)", .stage = 1, .at_plan = 1},
    [MD_RO_MEAN_DIFF_NORM] = {.path = "mean_diff_norm", .type = MD_H5_F64, .dims = "model",
                              .axes = "attribute models", .units = "activation", .description = "norm of mean_diff",
                              .stage = 1, .at_plan = 1},
    [MD_RO_COSINE] = {.path = "cosine", .type = MD_H5_F64, .dims = "model,model_b", .axes = "attribute models (both)",
                      .units = "1", .description = "cosine between the models' directions", .stage = 1,
                      .at_plan = 1},
    [MD_RO_TEXT] = {.path = "gen/{set}/{target}/{intervention}/text", .type = MD_H5_STR, .dims = "row",
                    .axes = "test rows of split/{set}", .units = "",
                    .description = "greedy completion (new tokens, decoded)", .stage = 1},
    [MD_RO_REFUSED] = {.path = "gen/{set}/{target}/{intervention}/refused", .type = MD_H5_I32, .dims = "row",
                       .axes = "test rows of split/{set}", .units = "",
                       .description = "1 = the completion starts with a refusal prefix", .stage = 1},
    [MD_RO_SCORE] = {.path = "refusal_score", .type = MD_H5_F64, .dims = "target,intervention,set",
                     .axes = "attribute models, attribute interventions, attribute sets", .units = "1",
                     .description = "fraction of test completions starting with a refusal prefix (NaN = not run)",
                     .stage = 2, .at_plan = 1, .nan_ok = 1},
    /* sweep mode (sweep: true, kind: refusal_sweep) */
    [MD_RO_SW_ACTS] = {.path = "acts/{model}/{set}", .type = MD_H5_F32, .dims = "row,layer,position,hidden",
                       .axes = "split/{set} train rows, attributes layers, positions, d_model", .units = "activation",
                       .description = "the hook point at every candidate (layer, position) of each train prompt",
                       .stage = 0},
    [MD_RO_SW_DIRECTION] = {.path = "direction", .type = MD_H5_F64, .dims = "model,layer,position,hidden",
                            .axes = "attributes models, layers, positions; d_model", .units = "",
                            .description = "refusal direction r̂ (unit) per model and candidate (layer, position)",
                            .stage = 1, .at_plan = 1},
    [MD_RO_SW_REFUSED] = {.path = "refused", .type = MD_H5_I32, .dims = "model,layer,position,row",
                          .axes = "attributes models, layers, positions; harmful test rows", .units = "",
                          .description = "1 = the completion of the harmful test prompt, with the candidate "
                                         "direction ablated, starts with a refusal prefix",
                          .stage = 1},
    [MD_RO_SW_TEXT] = {.path = "gen/{model}/layer{layer}_pos{position}/text", .type = MD_H5_STR, .dims = "row",
                       .axes = "harmful test rows", .units = "",
                       .description = "greedy completion (new tokens, decoded) with the direction ablated",
                       .stage = 1},
    [MD_RO_SW_SCORE] = {.path = "score", .type = MD_H5_F64, .dims = "model,layer,position",
                        .axes = "attributes models, layers, positions", .units = "1",
                        .description = "refusal rate of the harmful test prompts with the candidate direction "
                                       "ablated (lower = the direction matters more; NaN = mean(harmful) = "
                                       "mean(harmless) there, e.g. layer 0 at a template token: no direction)",
                        .stage = 2, .at_plan = 1, .nan_ok = 1},
    MD_REFUSAL_TOKEN_OUTPUTS(MD_RO_TOKEN_ID, MD_RO_TOKEN, MD_RO_TOKEN_POSITION, 0),
    [MD_RO_GEN_INSTRUCTION] = {.path = "gen/{set}/{target}/{intervention}/instruction", .type = MD_H5_STR,
                               .dims = "row", .axes = "test rows of split/{set}", .units = "",
                               .description = "the test instruction of each completion (split/<set>/instruction row "
                                              "n_train + row)",
                               .stage = 1, .at_plan = 1},
    [MD_RO_GEN_CSV_ROW] = {.path = "gen/{set}/{target}/{intervention}/csv_row", .type = MD_H5_I32, .dims = "row",
                           .axes = "test rows of split/{set}", .units = "",
                           .description = "0-based CSV row of the instruction of each completion", .stage = 1,
                           .at_plan = 1},
    [MD_RO_SW_TEST_INSTRUCTION] = {.path = "test_instruction", .type = MD_H5_STR, .dims = "row",
                                   .axes = "harmful test rows (the row of refused and gen/*/text)", .units = "",
                                   .description = "the harmful test instruction of each row of refused and "
                                                  "gen/<model>/layer<l>_pos<p>/text (split/harmful/instruction row "
                                                  "n_train + row)",
                                   .stage = 1, .at_plan = 1},
    [MD_RO_SW_TEST_CSV_ROW] = {.path = "test_csv_row", .type = MD_H5_I32, .dims = "row",
                               .axes = "harmful test rows", .units = "",
                               .description = "0-based CSV row of test_instruction", .stage = 1, .at_plan = 1},
    {0}};

#define OUT(i) (&MD_REFUSAL_OUTPUTS[i])

/* split/<set>/instruction and split/<set>/csv_row. */
static int plan_split(md_plan *plan, const md_refusal_state *s, int set, md_error *err)
{
    char path[MD_PATH_MAX], val[32];
    const char *args[] = {md_refusal_set_name(set)};
    snprintf(path, sizeof path, "split/%s/instruction", md_refusal_set_name(set));
    snprintf(val, sizeof val, "%d", s->n_train);
    if (md_plan_output(plan, &MD_REFUSAL_OUTPUTS[MD_RO_INSTRUCTION], args, err) != MD_OK ||
        md_exp_put_csv_strings(plan, path, s->csv[set], s->col[set], s->train[set], s->n_train, 0, err) != MD_OK ||
        md_exp_put_csv_strings(plan, path, s->csv[set], s->col[set], s->test[set], s->n_test, s->n_train, err) !=
            MD_OK ||
        md_plan_attr(plan, path, "n_train", val, err) != MD_OK)
        return MD_ERR;
    snprintf(path, sizeof path, "split/%s/csv_row", md_refusal_set_name(set));
    int64_t o = 0, cn = s->n_train, ot = s->n_train, ct = s->n_test;
    if (md_plan_output(plan, &MD_REFUSAL_OUTPUTS[MD_RO_CSV_ROW], args, err) != MD_OK ||
        md_plan_put(plan, path, &o, &cn, s->train[set], (size_t)s->n_train * sizeof(int), err) != MD_OK ||
        md_plan_put(plan, path, &ot, &ct, s->test[set], (size_t)s->n_test * sizeof(int), err) != MD_OK)
        return MD_ERR;
    return MD_OK;
}

/* Stage 0 of either mode: split/<set>/instruction (attribute n_train) and
 * split/<set>/csv_row (rows: train then test), then acts/<role>/<set> for
 * every role ([row, hidden], sweep [row, layer, position, hidden]; the train
 * rows, as tokens/), then the group attributes models and hook. *c = role
 * 0's config. */
static int plan_acts(md_plan *plan, const md_kind_ctx *ctx, const md_refusal_state *s, md_config *c, md_error *err)
{
    char val[1024];
    if (md_hf_config_load_dir(c, md_params_map_get(&ctx->job->top, "models", s->roles[0]), err) != MD_OK) return MD_ERR;
    if (md_plan_axis_size(plan, "split", "row", s->n_train + s->n_test, err) != MD_OK ||
        md_plan_axis_size(plan, "acts", "row", s->n_train, err) != MD_OK ||
        md_plan_axis_size(plan, "tokens", "row", s->n_train, err) != MD_OK ||
        md_plan_axis_size(plan, "", "hidden", c->d_model, err) != MD_OK)
        return MD_ERR;
    for (int k = 0; k < 2; k++) {
        if (plan_split(plan, s, k, err) != MD_OK) return MD_ERR;
        for (int m = 0; m < s->n_roles; m++)
            if (md_plan_output(plan, &MD_REFUSAL_OUTPUTS[s->sweep ? MD_RO_SW_ACTS : MD_RO_ACTS],
                                (const char *const[]){s->roles[m], md_refusal_set_name(k)}, err) != MD_OK)
                return MD_ERR;
    }
    md_exp_join_names(val, sizeof val, s->roles, s->n_roles);
    if (md_plan_attr(plan, "", "models", val, err) != MD_OK ||
        md_plan_attr(plan, "", "hook", s->opt.hook, err) != MD_OK)
        return MD_ERR;
    return MD_OK;
}

/* Attributes layers and positions (the candidates, comma-separated) of `path`
 * ("" = the group). */
static int plan_candidates(md_plan *plan, const md_refusal_state *s, const char *path, md_error *err)
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

/* Role m's part of stage 0, with its tokenizer loaded once: the tokens its
 * activations are read at, and its prompts' lengths (the units' costs). */
static int plan_role_tokens(md_plan *plan, const md_kind_ctx *ctx, md_refusal_state *s, int m, md_error *err)
{
    md_tokenizer *tok = NULL; /* owned here */
    int rel = s->sweep ? 0 : md_refusal_position(&s->opt, s->roles[m]);
    int rc = md_refusal_load_tokenizer(ctx, s, m, &tok, err);
    if (rc == MD_OK)
        rc = md_refusal_plan_tokens(plan, ctx, s, m, tok, s->sweep ? s->positions : &rel, s->sweep ? s->n_pos : 1,
                                    OUT(MD_RO_TOKEN_ID), err);
    if (rc == MD_OK) rc = md_refusal_price_role(ctx, s, m, tok, err);
    md_tokenizer_free(tok);
    return rc;
}

/* Stage 0: the split, the activations, and where they are read (and the
 * prompts priced). */
static int plan_stage0(md_plan *plan, const md_kind_ctx *ctx, md_refusal_state *s, md_error *err)
{
    char path[MD_PATH_MAX], val[64];
    md_config c;
    if (plan_acts(plan, ctx, s, &c, err) != MD_OK) return MD_ERR;
    for (int m = 0; m < s->n_roles; m++)
        if (plan_role_tokens(plan, ctx, s, m, err) != MD_OK) return MD_ERR;
    if (s->sweep) {
        if (plan_candidates(plan, s, "", err) != MD_OK) return MD_ERR;
        return md_plan_units(plan, s->acts.n, err);
    }
    snprintf(val, sizeof val, "%d", md_refusal_layer(&s->opt, c.n_layers, 0));
    if (md_plan_attr(plan, "", "layer", val, err) != MD_OK) return MD_ERR;
    snprintf(val, sizeof val, "%d", md_refusal_layer(&s->opt, c.n_layers, 1));
    if (md_plan_attr(plan, "", "addition_layer", val, err) != MD_OK) return MD_ERR;
    for (int m = 0; m < s->n_roles; m++) {
        snprintf(path, sizeof path, "acts/%s/harmful", s->roles[m]);
        snprintf(val, sizeof val, "%d", md_refusal_position(&s->opt, s->roles[m]));
        if (md_plan_attr(plan, path, "position", val, err) != MD_OK) return MD_ERR;
    }
    return md_plan_units(plan, s->acts.n, err);
}

/* Stage 1, point mode: directions, mean differences, norms, cosines; the
 * generations of every (target, intervention, set). */
static int plan_point_gen(md_plan *plan, const md_refusal_state *s, const md_dirseq_dirs *v, md_error *err)
{
    int M = s->n_roles, ni = 1 + 2 * M;
    size_t md_bytes = sizeof(double) * (size_t)M * v->d;
    if (md_plan_output_put(plan, OUT(MD_RO_DIRECTION), NULL, v->dir, md_bytes, err) != MD_OK ||
        md_plan_output_put(plan, OUT(MD_RO_MEAN_DIFF), NULL, v->raw, md_bytes, err) != MD_OK ||
        md_plan_output_put(plan, OUT(MD_RO_MEAN_DIFF_NORM), NULL, v->norm, sizeof(double) * M, err) != MD_OK ||
        md_plan_output_put(plan, OUT(MD_RO_COSINE), NULL, v->cos, sizeof(double) * M * M, err) != MD_OK)
        return MD_ERR;
    for (int t = 0; t < M; t++)
        for (int iv = 0; iv < ni; iv++)
            for (int k = 0; k < 2; k++) {
                if (iv > M && k == MD_REFUSAL_HARMFUL) continue;
                char ivn[128];
                md_refusal_interv_name(s, iv, ivn, sizeof ivn);
                const char *args[] = {md_refusal_set_name(k), s->roles[t], ivn};
                if (md_refusal_plan_gen_group(plan, s, OUT(MD_RO_GEN_INSTRUCTION), OUT(MD_RO_GEN_CSV_ROW), k,
                                              s->roles[t], ivn, err) != MD_OK ||
                    md_plan_output(plan, OUT(MD_RO_TEXT), args, err) != MD_OK ||
                    md_plan_output(plan, OUT(MD_RO_REFUSED), args, err) != MD_OK)
                    return MD_ERR;
            }
    return md_plan_units(plan, s->gen.n, err);
}

/* Stage 1, sweep mode: the directions of every candidate; the generations
 * with each ablated. */
static int plan_sweep_gen(md_plan *plan, const md_refusal_state *s, const md_dirseq_dirs *v, md_error *err)
{
    int M = s->n_roles, L = s->n_layers, P = s->n_pos;
    if (md_plan_output_put(plan, OUT(MD_RO_SW_DIRECTION), NULL, v->dir, sizeof(double) * (size_t)M * L * P * v->d,
                           err) != MD_OK ||
        md_plan_output(plan, OUT(MD_RO_SW_REFUSED), NULL, err) != MD_OK)
        return MD_ERR;
    for (int m = 0; m < M; m++)
        for (int li = 0; li < L; li++)
            for (int pi = 0; pi < P; pi++) {
                char ls[16], ps[16];
                snprintf(ls, sizeof ls, "%d", s->layers[li]);
                snprintf(ps, sizeof ps, "%d", s->positions[pi]);
                if (md_plan_output(plan, OUT(MD_RO_SW_TEXT), (const char *const[]){s->roles[m], ls, ps}, err) !=
                    MD_OK)
                    return MD_ERR;
            }
    if (md_refusal_plan_sweep_labels(plan, s, OUT(MD_RO_SW_TEST_INSTRUCTION), OUT(MD_RO_SW_TEST_CSV_ROW), err) !=
        MD_OK)
        return MD_ERR;
    return md_plan_units(plan, s->gen.n, err);
}

/* Stage 2, point mode: refusal_score [target, intervention, set]. */
static int plan_point_scores(md_plan *plan, const md_refusal_state *s, const md_blob *input, md_error *err)
{
    int M = s->n_roles, ni = 1 + 2 * M;
    const double *sc = NULL;
    char val[1024];
    if (md_dirseq_view_scores(input, "refusal", (size_t)M * ni * 2, &sc, err) != MD_OK) return MD_ERR;
    if (md_plan_output_put(plan, OUT(MD_RO_SCORE), NULL, sc, input->size, err) != MD_OK) return MD_ERR;
    size_t off = 0;
    for (int iv = 0; iv < ni; iv++) {
        char ivn[128];
        md_refusal_interv_name(s, iv, ivn, sizeof ivn);
        off += (size_t)snprintf(val + off, sizeof val - off, "%s%s", iv ? "," : "", ivn);
    }
    if (md_plan_attr(plan, "refusal_score", "interventions", val, err) != MD_OK ||
        md_plan_attr(plan, "refusal_score", "sets", "harmful,harmless", err) != MD_OK)
        return MD_ERR;
    return md_plan_units(plan, 1, err);
}

/* Stage 2, sweep mode: score [model, layer, position] and the best
 * candidate per model (reported only). */
static int plan_sweep_scores(md_plan *plan, const md_refusal_state *s, const md_blob *input, md_error *err)
{
    int M = s->n_roles, L = s->n_layers, P = s->n_pos;
    const double *sc = NULL;
    char val[1024];
    if (md_dirseq_view_scores(input, "refusal", (size_t)M * L * P, &sc, err) != MD_OK) return MD_ERR;
    if (md_plan_output_put(plan, OUT(MD_RO_SW_SCORE), NULL, sc, input->size, err) != MD_OK) return MD_ERR;
    for (int m = 0; m < M; m++) {
        int best = -1; /* lowest score; ties: earliest layer, then position, in the order listed; NaN skipped */
        for (int c = 0; c < L * P; c++) {
            double x = sc[(size_t)m * L * P + c];
            if (!isnan(x) && (best < 0 || x < sc[(size_t)m * L * P + best])) best = c;
        }
        char name[160];
        if (best < 0) snprintf(val, sizeof val, "none (no candidate has a direction)");
        else
            snprintf(val, sizeof val, "layer %d position %d score %.17g", s->layers[best / P], s->positions[best % P],
                     sc[(size_t)m * L * P + best]);
        snprintf(name, sizeof name, "best_%s", s->roles[m]);
        if (md_plan_attr(plan, "score", name, val, err) != MD_OK) return MD_ERR;
    }
    /* the dimension scales hold indices: name the candidates' values */
    md_exp_join_names(val, sizeof val, s->roles, M);
    if (md_plan_attr(plan, "score", "models", val, err) != MD_OK || plan_candidates(plan, s, "score", err) != MD_OK ||
        md_plan_attr(plan, "score", "note",
                     "best_<model>: the lowest score (reported, not used; ties: first layer, then position; NaN "
                     "skipped)",
                     err) != MD_OK)
        return MD_ERR;
    return md_plan_units(plan, 1, err);
}

int md_refusal_plan(const md_kind_ctx *ctx, int stage, const md_blob *input, md_plan *plan, md_error *err)
{
    md_refusal_state *s = NULL;
    if (md_refusal_build_state(ctx, &s, err) != MD_OK) return MD_ERR;
    int rc = MD_ERR, L = s->sweep ? s->n_layers : 1, P = s->sweep ? s->n_pos : 1;
    md_dirseq_dirs v;
    if (md_refusal_plan_axes(plan, s, err) != MD_OK) goto done;
    if (stage == 0) {
        rc = plan_stage0(plan, ctx, s, err);
    } else if (stage == 1) {
        if (md_dirseq_view_dirs(input, "refusal", &v, err) != MD_OK) goto done;
        if (v.M != s->n_roles || v.L != L || v.P != P) {
            md_error_set(err, "refusal: stage 1 input holds %d models x %d x %d candidates, the job %d x %d x %d",
                         v.M, v.L, v.P, s->n_roles, L, P);
            goto done;
        }
        /* the directions' width; the test rows every generation dataset has (a gen/ group's own row axis
           labels them by their split/ row) */
        if (md_plan_axis_size(plan, "", "hidden", v.d, err) != MD_OK ||
            md_plan_axis_size(plan, "", "row", s->n_test, err) != MD_OK)
            goto done;
        rc = s->sweep ? plan_sweep_gen(plan, s, &v, err) : plan_point_gen(plan, s, &v, err);
    } else {
        rc = s->sweep ? plan_sweep_scores(plan, s, input, err) : plan_point_scores(plan, s, input, err);
    }
    if (rc == MD_OK && stage == 1) rc = md_refusal_price(ctx, s, err); /* stage 0 priced as it planned the tokens */
    if (rc == MD_OK && stage < 2) md_dirseq_plan_costs(ctx, s, stage, plan);
done:
    md_refusal_free_state(s);
    return rc;
}
