/* truth_plan.c — the outputs of the `truth` kind and its plans (see truth.c
 * for the stages): stage 0 writes the kept statements and declares the
 * activations; stage 1 writes the directions, probes and transfer accuracy of
 * finish_stage(0) and declares the intervention probabilities; stage 2 writes
 * PD / IE of finish_stage(1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp/truth.h"
#include "mechdiff/exp_output.h"
#include "mechdiff/hf_config.h"

enum {
    TO_STATEMENTS, TO_LABELS, TO_CSV_ROW, TO_ACTS, TO_DIRECTION, TO_PROBE, TO_DIRECTION_NORM, TO_COSINE,
    TO_TRAIN_ACCURACY, TO_ACCURACY, TO_CONTROL_DIRECTIONS, TO_INDEX, TO_P_TRUE, TO_P_FALSE, TO_IE_CONTROL, TO_PD,
    TO_IE, TO_FEWSHOT_ACCURACY, TO_TOKEN_ID, TO_TOKEN, TO_POSITION, TO_IV_TOKEN_ID, TO_IV_TOKEN, TO_IV_POSITION
};

const md_output MD_TRUTH_OUTPUTS[] = {
    [TO_STATEMENTS] = {.path = "statements/{dataset}", .type = MD_H5_STR, .dims = "statement", .units = "",
                       .description = "the bare statements kept (CSV order)", .stage = 0, .at_plan = 1},
    [TO_LABELS] = {.path = "labels/{dataset}", .type = MD_H5_I32, .dims = "statement", .units = "",
                   .description = "1 = true statement", .stage = 0, .at_plan = 1},
    [TO_CSV_ROW] = {.path = "csv_row/{dataset}", .type = MD_H5_I32, .dims = "statement", .units = "",
                    .description = "0-based CSV row (header excluded)", .stage = 0, .at_plan = 1},
    [TO_ACTS] = {.path = "acts/{model}/{dataset}", .type = MD_H5_F32, .dims = "statement,hidden",
                 .axes = "statements/{dataset}, d_model", .units = "activation",
                 .description = "the hook point at (layer, token) of the bare statement as the model reads it "
                                "(with the BOS token where its tokenizer adds one: the file's description)",
                 .stage = 0, .chunk_rows = 64, .deflate = 1},
    [TO_DIRECTION] = {.path = "direction/{model}", .type = MD_H5_F64, .dims = "hidden", .units = "activation",
                      .description = "truth direction theta = mean(true) - mean(false) of the centred train "
                                     "activations (not normalised; the intervention vector)",
                      .stage = 1, .at_plan = 1},
    [TO_PROBE] = {.path = "probe/{model}", .type = MD_H5_F64, .dims = "param", .axes = "attribute params",
                  .units = "",
                  .description = "1-D logistic probe P(true) = sigmoid(weight * (x . theta) + bias) on centred "
                                 "activations",
                  .stage = 1, .at_plan = 1},
    [TO_DIRECTION_NORM] = {.path = "direction_norm", .type = MD_H5_F64, .dims = "model", .axes = "attribute models",
                           .units = "activation", .description = "norm of direction/<model>", .stage = 1,
                           .at_plan = 1},
    [TO_COSINE] = {.path = "cosine", .type = MD_H5_F64, .dims = "model,model_b", .axes = "attribute models (both)",
                   .units = "1", .description = "cosine between the models' truth directions", .stage = 1,
                   .at_plan = 1},
    [TO_TRAIN_ACCURACY] = {.path = "train_accuracy", .type = MD_H5_F64, .dims = "model", .axes = "attribute models",
                           .units = "1",
                           .description = "accuracy of each model's probe on its own (pooled, centred) train "
                                          "activations",
                           .stage = 1, .at_plan = 1},
    [TO_ACCURACY] = {.path = "accuracy", .type = MD_H5_F64, .dims = "source,target,test_dataset",
                     .axes = "attributes models, models, test_datasets", .units = "1",
                     .description = "accuracy of the source model's direction + probe on the target model's centred "
                                    "activations of each test dataset (transfer table)",
                     .stage = 1, .at_plan = 1},
    [TO_CONTROL_DIRECTIONS] = {.path = "control_directions", .type = MD_H5_F64, .dims = "control,hidden",
                               .units = "1",
                               .description = "random unit control directions (condition random_<k>); the "
                                              "intervention scales each to the target model's direction_norm",
                               .stage = 1, .at_plan = 1},
    [TO_INDEX] = {.path = "interv/{dataset}/index", .type = MD_H5_I32, .dims = "statement", .units = "",
                  .description = "index into statements/<ds> of each statement intervened on (few-shot examples "
                                 "excluded)",
                  .stage = 1, .at_plan = 1},
    [TO_P_TRUE] = {.path = "interv/{dataset}/p_true", .type = MD_H5_F32, .dims = "target,condition,statement",
                   .axes = "models, attribute conditions, interv/{dataset}/index", .units = "probability",
                   .description = "P(true_word) at the last prompt position (softmax over the full vocabulary)",
                   .stage = 1},
    [TO_P_FALSE] = {.path = "interv/{dataset}/p_false", .type = MD_H5_F32, .dims = "target,condition,statement",
                    .axes = "models, attribute conditions, interv/{dataset}/index", .units = "probability",
                    .description = "P(false_word) at the last prompt position (softmax over the full vocabulary)",
                    .stage = 1},
    [TO_IE_CONTROL] = {.path = "ie_control", .type = MD_H5_F64, .dims = "target,test_dataset,control,effect",
                       .axes = "models, test_datasets, control_directions, attribute effects", .units = "1",
                       .description = "intervention effect of each random control direction on each target model "
                                      "(as ie: false_to_true, true_to_false, average)",
                       .stage = 2, .at_plan = 1},
    [TO_PD] = {.path = "pd", .type = MD_H5_F64, .dims = "target,test_dataset,condition,class",
               .axes = "models, test_datasets, attribute conditions, attribute classes", .units = "probability",
               .description = "PD = mean P(true_word) - P(false_word) over the statements of one class (0 false, 1 "
                              "true), clean or with a source direction (added to false, subtracted from true "
                              "statements)",
               .stage = 2, .at_plan = 1},
    [TO_IE] = {.path = "ie", .type = MD_H5_F64, .dims = "source,target,test_dataset,effect",
               .axes = "models, models, attribute test_datasets, attribute effects", .units = "1",
               .description = "intervention effect: false_to_true = (PD_int - PD)/(1 - PD) on false statements, "
                              "true_to_false = (PD_int - PD)/(-1 - PD) on true statements, average of the two",
               .stage = 2, .at_plan = 1},
    [TO_FEWSHOT_ACCURACY] = {.path = "fewshot_accuracy", .type = MD_H5_F64, .dims = "target,test_dataset",
                             .axes = "models, test_datasets", .units = "1",
                             .description = "clean few-shot accuracy: P(true_word) > P(false_word) matches the label",
                             .stage = 2, .at_plan = 1},
    [TO_TOKEN_ID] = {.path = "tokens/{model}/{dataset}/token_id", .type = MD_H5_I32, .dims = "statement",
                     .axes = "statements/{dataset}",
                     .description = "id of the token acts/<model>/<dataset> is read at (the experiment's attribute "
                                    "token counts it from the end of the statement)",
                     .stage = 0, .at_plan = 1},
    [TO_TOKEN] = {.path = "tokens/{model}/{dataset}/token", .type = MD_H5_STR, .dims = "statement",
                  .axes = "statements/{dataset}",
                  .description = "decoded text of token_id (U+FFFD marks a byte of a character split over tokens)",
                  .stage = 0, .at_plan = 1},
    [TO_POSITION] = {.path = "tokens/{model}/{dataset}/token_position", .type = MD_H5_I32, .dims = "statement",
                     .axes = "statements/{dataset}", .units = "token index",
                     .description = "absolute index of that token in the prompt as the model reads it (0 = its first "
                                    "token)",
                     .stage = 0, .at_plan = 1},
    [TO_IV_TOKEN_ID] = {.path = "interv/{dataset}/tokens/{model}/token_id", .type = MD_H5_I32,
                        .dims = "statement,position", .axes = "interv/{dataset}/index, intervention_positions",
                        .description = "id of each token the intervention adds at (its position counts from the "
                                       "statement's last token, -1 = that token) in the few-shot prompt",
                        .stage = 1, .at_plan = 1},
    [TO_IV_TOKEN] = {.path = "interv/{dataset}/tokens/{model}/token", .type = MD_H5_STR, .dims = "statement,position",
                     .axes = "interv/{dataset}/index, intervention_positions",
                     .description = "decoded text of token_id (U+FFFD marks a byte of a character split over "
                                    "tokens)",
                     .stage = 1, .at_plan = 1},
    [TO_IV_POSITION] = {.path = "interv/{dataset}/tokens/{model}/token_position", .type = MD_H5_I32,
                        .dims = "statement,position", .axes = "interv/{dataset}/index, intervention_positions",
                        .units = "token index",
                        .description = "absolute index of that token in the few-shot prompt as the model reads it "
                                       "(0 = its first token)",
                        .stage = 1, .at_plan = 1},
    {0}};

#define OUT(x) (&MD_TRUTH_OUTPUTS[x])
#define ARGS(...) ((const char *const[]){__VA_ARGS__})

/* Names of the test datasets and of the conditions (clean, dir_<role>,
 * random_<k>) of a state. */
typedef struct tr_names {
    const char *test[TR_MAX_DS];
    const char *cond[1 + TR_MAX_ROLES + TR_MAX_CONTROL];
    char buf[1 + TR_MAX_ROLES + TR_MAX_CONTROL][80];
    int n_cond;
} tr_names;

static void tr_names_fill(const md_truth_state *s, tr_names *nm)
{
    int M = s->n_roles, K = s->n_control;
    for (int j = 0; j < s->n_test; j++) nm->test[j] = s->ds[s->test[j]].name;
    snprintf(nm->buf[0], sizeof nm->buf[0], "clean");
    for (int a = 0; a < M; a++) snprintf(nm->buf[a + 1], sizeof nm->buf[a + 1], "dir_%s", s->roles[a]);
    for (int k = 0; k < K; k++) snprintf(nm->buf[1 + M + k], sizeof nm->buf[0], "random_%d", k);
    nm->n_cond = 1 + M + K;
    for (int c = 0; c < nm->n_cond; c++) nm->cond[c] = nm->buf[c];
}

/* Attribute `name` of `path` = items joined by commas. */
static int attr_list(md_plan *plan, const char *path, const char *name, const char *const *items, int n,
                     md_error *err)
{
    char val[4096];
    md_exp_join_names(val, sizeof val, items, n);
    return md_plan_attr(plan, path, name, val, err);
}

/* The statement axis of dataset ds (its ds->n rows) in every group of stage
 * 0 that holds them: statements/, labels/, csv_row/ <ds>, and acts/ and
 * tokens/ <model>/<ds>. */
static int plan_statement_axes(const md_truth_state *s, const tr_ds *ds, md_plan *plan, md_error *err)
{
    static const char *const groups[] = {"statements", "labels", "csv_row"};
    char scope[MD_PATH_MAX];
    for (int g = 0; g < 3; g++) {
        snprintf(scope, sizeof scope, "%s/%s", groups[g], ds->name);
        if (md_plan_axis_size(plan, scope, "statement", ds->n, err) != MD_OK) return MD_ERR;
    }
    for (int m = 0; m < s->n_roles; m++)
        for (int g = 0; g < 2; g++) {
            snprintf(scope, sizeof scope, "%s/%s/%s", g ? "tokens" : "acts", s->roles[m], ds->name);
            if (md_plan_axis_size(plan, scope, "statement", ds->n, err) != MD_OK) return MD_ERR;
        }
    return MD_OK;
}

/* Stage 0, dataset k: statements, labels and CSV rows (plan-time data) and
 * the activation datasets of every model. */
static int plan_dataset(const md_truth_state *s, int k, md_plan *plan, md_error *err)
{
    const tr_ds *ds = &s->ds[k];
    int64_t n = ds->n;
    size_t total = 0;
    for (int i = 0; i < ds->n; i++) total += strlen(md_truth_stmt(s, k, i)) + 1;
    char *buf = malloc(total ? total : 1);
    int32_t *ibuf = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    int rc = MD_ERR;
    if (!buf || !ibuf) {
        md_error_set(err, "out of memory");
        goto done;
    }
    for (int i = 0, off = 0; i < ds->n; i++) off += sprintf(buf + off, "%s", md_truth_stmt(s, k, i)) + 1;
    if (plan_statement_axes(s, ds, plan, err) != MD_OK ||
        md_plan_output_put(plan, OUT(TO_STATEMENTS), ARGS(ds->name), buf, total, err) != MD_OK)
        goto done;
    for (int i = 0; i < ds->n; i++) ibuf[i] = ds->label[i];
    if (md_plan_output_put(plan, OUT(TO_LABELS), ARGS(ds->name), ibuf, (size_t)n * 4, err) != MD_OK) goto done;
    for (int i = 0; i < ds->n; i++) ibuf[i] = ds->row[i];
    if (md_plan_output_put(plan, OUT(TO_CSV_ROW), ARGS(ds->name), ibuf, (size_t)n * 4, err) != MD_OK) goto done;
    for (int m = 0; m < s->n_roles; m++)
        if (md_plan_output(plan, OUT(TO_ACTS), ARGS(s->roles[m], ds->name), err) != MD_OK) goto done;
    rc = MD_OK;
done:
    free(buf), free(ibuf);
    return rc;
}

/* Stage 0: every dataset, then the group attributes. */
static int plan_acts(const md_kind_ctx *ctx, const md_truth_state *s, const tr_names *nm, md_plan *plan,
                     md_error *err)
{
    const md_truth_opts *o = &s->opt;
    md_config c;
    char val[4096];
    if (md_hf_config_load_dir(&c, md_params_map_get(&ctx->job->top, "models", s->roles[0]), err) != MD_OK) return MD_ERR;
    if (md_plan_axis_size(plan, "", "hidden", c.d_model, err) != MD_OK) return MD_ERR;
    for (int k = 0; k < s->n_ds; k++)
        if (plan_dataset(s, k, plan, err) != MD_OK) return MD_ERR;
    const char *tr[TR_MAX_DS];
    for (int i = 0; i < s->n_train; i++) tr[i] = s->ds[s->train[i]].name;
    int lo = 0, hi = 0;
    md_truth_iv_layers(o, c.n_layers, &lo, &hi);
    if (attr_list(plan, "", "models", s->roles, s->n_roles, err) != MD_OK ||
        attr_list(plan, "", "train_datasets", tr, s->n_train, err) != MD_OK ||
        attr_list(plan, "", "test_datasets", nm->test, s->n_test, err) != MD_OK ||
        md_plan_attr(plan, "", "hook", o->hook, err) != MD_OK)
        return MD_ERR;
    snprintf(val, sizeof val, "%d", md_truth_layer(o, c.n_layers));
    if (md_plan_attr(plan, "", "layer", val, err) != MD_OK) return MD_ERR;
    snprintf(val, sizeof val, "%d", s->token);
    if (md_plan_attr(plan, "", "token", val, err) != MD_OK) return MD_ERR;
    snprintf(val, sizeof val, "%d-%d", lo, hi);
    if (md_plan_attr(plan, "", "intervention_layers", val, err) != MD_OK) return MD_ERR;
    size_t off = 0;
    for (int i = 0; i < s->n_pos; i++) off += (size_t)snprintf(val + off, sizeof val - off, "%s%d", i ? "," : "", s->pos[i]);
    if (md_plan_attr(plan, "", "intervention_positions", val, err) != MD_OK) return MD_ERR;
    snprintf(val, sizeof val, "%.17g", o->coefficient);
    if (md_plan_attr(plan, "", "coefficient", val, err) != MD_OK) return MD_ERR;
    return md_plan_units(plan, s->u0.n, err);
}

/* Stage 1: the results of finish_stage(0) (blob v). */
static int plan_dirs(const md_truth_state *s, const md_truth_dirs *v, md_plan *plan, md_error *err)
{
    int M = s->n_roles, K = s->n_control;
    if (md_plan_axis_size(plan, "", "hidden", v->d, err) != MD_OK) return MD_ERR;
    for (int m = 0; m < M; m++) {
        char path[MD_PATH_MAX];
        snprintf(path, sizeof path, "probe/%s", s->roles[m]);
        if (md_plan_output_put(plan, OUT(TO_DIRECTION), ARGS(s->roles[m]), v->theta + (size_t)m * v->d,
                               sizeof(double) * (size_t)v->d, err) != MD_OK ||
            md_plan_output_put(plan, OUT(TO_PROBE), ARGS(s->roles[m]), v->probe + 2 * (size_t)m,
                               2 * sizeof(double), err) != MD_OK ||
            md_plan_attr(plan, path, "params", "weight,bias", err) != MD_OK)
            return MD_ERR;
    }
    if (md_plan_output_put(plan, OUT(TO_DIRECTION_NORM), NULL, v->norm, sizeof(double) * M, err) != MD_OK ||
        md_plan_output_put(plan, OUT(TO_COSINE), NULL, v->cos, sizeof(double) * M * M, err) != MD_OK ||
        md_plan_output_put(plan, OUT(TO_TRAIN_ACCURACY), NULL, v->train_acc, sizeof(double) * M, err) !=
            MD_OK ||
        md_plan_output_put(plan, OUT(TO_ACCURACY), NULL, v->acc, sizeof(double) * M * M * s->n_test, err) != MD_OK)
        return MD_ERR;
    if (K == 0) return MD_OK;
    double *cv = malloc(sizeof(double) * (size_t)K * v->d);
    if (!cv) return md_error_set(err, "out of memory");
    for (int k = 0; k < K; k++) md_truth_control_unit(s, k, v->d, cv + (size_t)k * v->d);
    int rc = md_plan_output_put(plan, OUT(TO_CONTROL_DIRECTIONS), NULL, cv, sizeof(double) * (size_t)K * v->d, err);
    free(cv);
    return rc;
}

/* Stage 1: the intervention datasets of every test dataset. */
static int plan_interv(const md_truth_state *s, const tr_names *nm, md_plan *plan, md_error *err)
{
    char path[MD_PATH_MAX];
    if (attr_list(plan, "accuracy", "test_datasets", nm->test, s->n_test, err) != MD_OK ||
        attr_list(plan, "accuracy", "models", s->roles, s->n_roles, err) != MD_OK)
        return MD_ERR;
    for (int j = 0; j < s->n_test; j++) {
        const tr_ds *ds = &s->ds[s->test[j]];
        int64_t n = ds->n_iv;
        snprintf(path, sizeof path, "interv/%s/index", ds->name);
        if (md_plan_output_put(plan, OUT(TO_INDEX), ARGS(ds->name), ds->iv, (size_t)n * sizeof(int32_t), err) !=
                MD_OK ||
            md_plan_attr(plan, path, "few_shot", ds->few_shot, err) != MD_OK)
            return MD_ERR;
        const int which[2] = {TO_P_TRUE, TO_P_FALSE};
        for (int q = 0; q < 2; q++) {
            snprintf(path, sizeof path, "interv/%s/%s", ds->name, q ? "p_false" : "p_true");
            if (md_plan_output(plan, OUT(which[q]), ARGS(ds->name), err) != MD_OK ||
                attr_list(plan, path, "conditions", nm->cond, nm->n_cond, err) != MD_OK)
                return MD_ERR;
        }
    }
    return md_plan_units(plan, s->u1.n, err);
}

/* Stage 2: PD / IE of finish_stage(1) (input: pd, ie, fewshot accuracy,
 * control IE, doubles back to back). */
static int plan_summary(const md_truth_state *s, const tr_names *nm, const md_blob *input, md_plan *plan,
                        md_error *err)
{
    int M = s->n_roles, T = s->n_test, K = s->n_control, nc = nm->n_cond;
    size_t npd = (size_t)M * T * nc * 2, nie = (size_t)M * M * T * 3, nfa = (size_t)M * T, nct = (size_t)M * T * K * 3;
    const double *pd = NULL;
    if (md_dirseq_view_scores(input, "truth", npd + nie + nfa + nct, &pd, err) != MD_OK) return MD_ERR;
    const double *ie = pd + npd, *fa = ie + nie, *ct = fa + nfa;
    if (K > 0 && (md_plan_output_put(plan, OUT(TO_IE_CONTROL), NULL, ct, sizeof(double) * nct, err) != MD_OK ||
                  md_plan_attr(plan, "ie_control", "effects", "false_to_true,true_to_false,average", err) != MD_OK))
        return MD_ERR;
    if (md_plan_output_put(plan, OUT(TO_PD), NULL, pd, sizeof(double) * npd, err) != MD_OK ||
        md_plan_output_put(plan, OUT(TO_IE), NULL, ie, sizeof(double) * nie, err) != MD_OK ||
        md_plan_output_put(plan, OUT(TO_FEWSHOT_ACCURACY), NULL, fa, sizeof(double) * nfa, err) != MD_OK ||
        attr_list(plan, "pd", "conditions", nm->cond, nc, err) != MD_OK ||
        md_plan_attr(plan, "pd", "classes", "false,true", err) != MD_OK ||
        md_plan_attr(plan, "ie", "effects", "false_to_true,true_to_false,average", err) != MD_OK ||
        attr_list(plan, "ie", "test_datasets", nm->test, T, err) != MD_OK)
        return MD_ERR;
    return md_plan_units(plan, 1, err);
}

int md_truth_plan(const md_kind_ctx *ctx, int stage, const md_blob *input, md_plan *plan, md_error *err)
{
    md_truth_state *s = NULL;
    if (md_truth_build_state(ctx, &s, err) != MD_OK) return MD_ERR;
    tr_names nm;
    tr_names_fill(s, &nm);
    int rc = MD_ERR;
    if (md_truth_plan_axes(s, nm.cond, nm.n_cond, nm.test, plan, err) != MD_OK) goto done;
    if (stage == 0) {
        rc = plan_acts(ctx, s, &nm, plan, err) == MD_OK ? md_truth_plan_tokens(ctx, s, OUT(TO_TOKEN_ID), plan, err)
                                                         : MD_ERR;
    } else if (stage == 1) {
        md_truth_dirs v;
        if (md_truth_view_dirs(input, &v, err) != MD_OK) goto done;
        if (v.M != s->n_roles || v.T != s->n_test) {
            md_error_set(err, "truth: stage 1 input holds %d models / %d test datasets, the job %d / %d", v.M, v.T,
                         s->n_roles, s->n_test);
            goto done;
        }
        rc = plan_dirs(s, &v, plan, err) == MD_OK && plan_interv(s, &nm, plan, err) == MD_OK
                 ? md_truth_plan_interv_tokens(ctx, s, OUT(TO_IV_TOKEN_ID), plan, err)
                 : MD_ERR;
    } else {
        rc = plan_summary(s, &nm, input, plan, err);
    }
    if (rc == MD_OK && stage < 2) md_dirseq_plan_costs(ctx, s, stage, plan);
done:
    md_truth_free_state(s);
    return rc;
}
