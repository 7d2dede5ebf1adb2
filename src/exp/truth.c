/* truth.c — the `truth` kind (docs/methods.md, "Truthfulness"): a truth direction
 * per model (mass mean of centred activations of bare statements), its 1-D
 * logistic probe, the transfer of direction + probe between models, and the
 * intervention effect (IE) of adding / subtracting the direction in every
 * target model.
 *
 * Stages and units (all defined by the job, never by ranks):
 *   0  activations    unit = (model, dataset, batch of statements): the hook
 *                     point at (layer, token) of "BOS + statement"; every
 *                     train and test dataset
 *   1  interventions  unit = (target, test dataset, condition, batch): the
 *                     few-shot prompt "<shots><statement> This statement is:";
 *                     condition 0 = clean, 1 + a = source a's direction v
 *                     (mean(true) − mean(false), not normalised) added
 *                     (false statements: false→true) or subtracted (true
 *                     statements: true→false) at the intervention layers and
 *                     the statement positions; P(" TRUE"), P(" FALSE") from the
 *                     softmax over the full vocabulary (double)
 *   2  summary        one unit; the plan writes PD / IE read back
 * finish_stage(0): centring per dataset; θ per model from the union of the
 * centred train datasets; probe per model on its own train projections;
 * accuracy of (θ_a, probe_a) on every test dataset of every model b.
 * finish_stage(1): PD per class and condition, IE(false→true),
 * IE(true→false) and their average.
 *
 * Output (/<name>/...):
 *   statements/<ds> [statement] str, labels/<ds> [statement] i32,
 *   csv_row/<ds> [statement] i32                                   stage 0 plan
 *   acts/<model>/<ds> [statement, hidden] f32                       stage 0
 *   direction/<model> [hidden] f64, direction_norm [model],
 *   cosine [model, model_b], probe/<model> [param] (weight, bias),
 *   train_accuracy [model], accuracy [source, target, test_dataset] stage 1 plan
 *   interv/<ds>/index [statement] i32 (into statements/<ds>),
 *   interv/<ds>/p_true, p_false [target, condition, statement] f32  stage 1
 *   pd [target, test_dataset, condition, class] f64,
 *   ie [source, target, test_dataset, effect] f64,
 *   fewshot_accuracy [target, test_dataset] f64                    stage 2 plan */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mechdiff/csv.h"
#include "mechdiff/directions.h"
#include "mechdiff/exp_util.h"
#include "mechdiff/experiment.h"
#include "mechdiff/forward.h"
#include "mechdiff/hf_config.h"
#include "mechdiff/knowledge.h"
#include "mechdiff/model.h"

static const md_key TRUTH_KEYS[] = {
    {.name = "models", .type = MD_KEY_STRLIST, .def = "", .doc = "Roles compared (empty = every role in `models`)."},
    {.name = "train_datasets", .type = MD_KEY_STRLIST, .def = "sp_en_trans,animal_class,inventors,element_symb,facts",
     .doc = "Names (top-level datasets map) of `statement,label` CSVs the direction and probe are trained on "
            "(each centred, then pooled)."},
    {.name = "test_datasets", .type = MD_KEY_STRLIST, .def = "cities",
     .doc = "Names of the CSVs the probe is tested on and the intervention runs on."},
    {.name = "hook", .type = MD_KEY_STRING, .def = "resid_post", .allowed = "resid_pre|resid_mid|resid_post",
     .doc = "Hook point read (direction) and added to (intervention)."},
    {.name = "layer", .type = MD_KEY_INT, .def = "-1", .min = -1, .max = 4096,
     .doc = "Layer of the activations (-1 = round(12/32 of the layers): Llama-3.1-8B 12; Mistral-7B: set 13)."},
    {.name = "token", .type = MD_KEY_INT, .def = "-1", .min = -4096, .max = -1,
     .doc = "Token of the bare statement read, counted from its end (-1 = the last token, the period)."},
    {.name = "intervention_layers", .type = MD_KEY_STRING, .def = "-1",
     .doc = "Layers the direction is added at: 'a-b' (inclusive), one layer 'a', or -1 = the study's 8..12 of 32 "
            "scaled to the model."},
    {.name = "intervention_positions", .type = MD_KEY_STRLIST, .def = "-2,-1",
     .doc = "Statement positions intervened on, counted from the end of the statement inside the few-shot prompt "
            "(-1 = the period, -2 = the token before)."},
    {.name = "coefficient", .type = MD_KEY_FLOAT, .def = "1", .min = 0, .max = 1e6,
     .doc = "Multiplier of mean(true) - mean(false) in the intervention (docs/methods.md: 1)."},
    {.name = "n_shots", .type = MD_KEY_INT, .def = "4", .min = 0, .max = 32,
     .doc = "Few-shot lines before the statement (drawn from the same dataset, excluded from the intervention)."},
    {.name = "shot_seed", .type = MD_KEY_INT, .def = "1", .min = 0, .max = 2147483647,
     .doc = "Seed of the few-shot draw and shuffle (same draw as the knowledge kind) and of the max_statements subset."},
    {.name = "max_statements", .type = MD_KEY_INT, .def = "0", .min = 0, .max = 1e9,
     .doc = "Keep at most this many statements per dataset (seeded subset, CSV order; 0 = all)."},
    {.name = "suffix", .type = MD_KEY_STRING, .def = " This statement is:", .doc = "Text after the statement."},
    {.name = "true_word", .type = MD_KEY_STRING, .def = " TRUE", .doc = "Answer token for true (must be one token)."},
    {.name = "false_word", .type = MD_KEY_STRING, .def = " FALSE", .doc = "Answer token for false (must be one token)."},
    {.name = "batch", .type = MD_KEY_INT, .def = "16", .min = 1, .max = 4096,
     .doc = "Statements per work unit (one batched forward)."},
    {.name = "control_directions", .type = MD_KEY_INT, .def = "0", .min = 0, .max = 16,
     .doc = "Random control directions (not in the study): each is a seeded random unit vector (from shot_seed), "
            "scaled per target model to the norm of that model's own truth direction and added / subtracted "
            "exactly like a direction (conditions random_<k>, effects in ie_control). An IE the controls match "
            "is not evidence the model uses the direction."},
    {0}};

#define TR_MAX_ROLES 16
#define TR_MAX_CONTROL 16
#define TR_MAX_DS 64
#define TR_MAX_POS 16
#define TR_MAX_SHOTS 32

/* One dataset (train and/or test). Owned by tr_state. */
typedef struct tr_ds {
    const char *name;  /* points into the job */
    md_csv *csv;       /* owned */
    int n;             /* statements kept */
    int *row;          /* [n] CSV row (0-based, header excluded) */
    int *label;        /* [n] 1 = true */
    char *few_shot;    /* the few-shot prefix (test datasets) */
    int n_iv;          /* statements intervened on: kept minus few-shot rows */
    int *iv;           /* [n_iv] indices into [0, n) */
} tr_ds;

/* Derived from the job and the CSVs only (identical on every rank). Owned. */
typedef struct tr_state {
    const char *roles[TR_MAX_ROLES];
    int n_roles;
    tr_ds ds[TR_MAX_DS];
    int n_ds;
    int train[TR_MAX_DS], n_train; /* indices into ds */
    int test[TR_MAX_DS], n_test;
    int pos[TR_MAX_POS], n_pos;
    int batch, hook, token;
    int n_control;      /* random control directions (conditions after the models') */
    uint64_t shot_seed; /* seed of the control directions too */
    md_exp_units u0; /* stage 0: (model, ds, batch) */
    md_exp_units u1; /* stage 1: (target, test, condition, batch) */
} tr_state;

static void tr_state_free(void *p)
{
    tr_state *s = p;
    if (!s) return;
    for (int k = 0; k < s->n_ds; k++) {
        md_csv_free(s->ds[k].csv);
        free(s->ds[k].row), free(s->ds[k].label), free(s->ds[k].few_shot), free(s->ds[k].iv);
    }
    md_exp_free_units(&s->u0);
    md_exp_free_units(&s->u1);
    free(s);
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Default layer scaled from the study's Llama-3.1 choice (of 32 layers). */
static int scaled(int n_layers, double of32)
{
    return (int)floor(n_layers * of32 / 32.0 + 0.5);
}

static int tr_layer(const md_params *p, int n_layers)
{
    int64_t l = md_params_int(p, "layer");
    return l >= 0 ? (int)l : scaled(n_layers, 12);
}

/* Intervention layers [*lo, *hi] (inclusive); MD_ERR when the key is malformed. */
static int tr_iv_layers(const md_params *p, int n_layers, int *lo, int *hi)
{
    const char *v = md_params_str(p, "intervention_layers");
    char *end = NULL;
    long a = strtol(v, &end, 10);
    if (end == v) return MD_ERR;
    if (a == -1 && *end == '\0') {
        *lo = scaled(n_layers, 8), *hi = scaled(n_layers, 12);
        if (*hi >= n_layers) *hi = n_layers - 1;
        if (*lo > *hi) *lo = *hi;
        return MD_OK;
    }
    long b = a;
    if (*end == '-') {
        const char *q = end + 1;
        b = strtol(q, &end, 10);
        if (end == q) return MD_ERR;
    }
    if (*end != '\0' || a < 0 || b < a) return MD_ERR;
    *lo = (int)a, *hi = (int)b;
    return MD_OK;
}

static int parse_label(const char *lab, int *out)
{
    if (!strcmp(lab, "1") || !strcmp(lab, "1.0") || !strcasecmp(lab, "true")) return *out = 1, MD_OK;
    if (!strcmp(lab, "0") || !strcmp(lab, "0.0") || !strcasecmp(lab, "false")) return *out = 0, MD_OK;
    return MD_ERR;
}

/* Reads one dataset: labels, the max_statements subset, and (test datasets)
 * the few-shot prefix, drawn from all rows by the knowledge kind's
 * md_kn_few_shot (same seed, same prompts). */
static int tr_ds_load(const md_params *p, tr_ds *d, const char *path, int is_test, md_error *err)
{
    int cs, cl, *lab = NULL, *perm = NULL, rc = MD_ERR;
    const char **stmt = NULL;
    if (md_csv_read(&d->csv, path, err) != MD_OK) return MD_ERR;
    md_csv *c = d->csv;
    if ((cs = md_csv_column(c, "statement", err)) < 0 || (cl = md_csv_column(c, "label", err)) < 0) return MD_ERR;
    int N = c->n_rows, max = (int)md_params_int(p, "max_statements");
    lab = malloc((size_t)(N ? N : 1) * sizeof(int));
    perm = malloc((size_t)(N ? N : 1) * sizeof(int));
    if (!lab || !perm) {
        md_error_set(err, "out of memory");
        goto done;
    }
    for (int r = 0; r < N; r++)
        if (parse_label(md_csv_cell(c, r, cl), &lab[r]) != MD_OK) {
            md_error_set(err, "%s: row %d: label '%s' is not 1/0 (or true/false)", path, r + 2, md_csv_cell(c, r, cl));
            goto done;
        }
    d->n = max > 0 && max < N ? max : N;
    d->row = malloc((size_t)(d->n ? d->n : 1) * sizeof(int));
    d->label = malloc((size_t)(d->n ? d->n : 1) * sizeof(int));
    if (!d->row || !d->label) {
        md_error_set(err, "out of memory");
        goto done;
    }
    if (d->n < N) { /* seeded subset, back in CSV order */
        if (md_dir_split(N, 0.0, (uint64_t)md_params_int(p, "shot_seed"), d->n, 0, d->row, perm, err) != MD_OK)
            goto done;
        qsort(d->row, (size_t)d->n, sizeof(int), cmp_int);
    } else {
        for (int i = 0; i < N; i++) d->row[i] = i;
    }
    int nt = 0;
    for (int i = 0; i < d->n; i++) nt += (d->label[i] = lab[d->row[i]]);
    if (nt == 0 || nt == d->n) {
        md_error_set(err, "%s: the %d statements kept are all %s (both classes are needed)", path, d->n,
                     nt ? "true" : "false");
        goto done;
    }
    if (!is_test) {
        rc = MD_OK;
        goto done;
    }
    /* few-shot examples */
    md_kn_options o = {.n_shots = (int)md_params_int(p, "n_shots"), .shot_seed = (int)md_params_int(p, "shot_seed"),
                       .suffix = md_params_str(p, "suffix"), .true_word = md_params_str(p, "true_word"),
                       .false_word = md_params_str(p, "false_word")};
    int shots[TR_MAX_SHOTS], ns = 0;
    if (!(stmt = malloc((size_t)(N ? N : 1) * sizeof *stmt))) {
        md_error_set(err, "out of memory");
        goto done;
    }
    for (int r = 0; r < N; r++) stmt[r] = md_csv_cell(c, r, cs);
    if (md_kn_few_shot(stmt, lab, N, &o, shots, TR_MAX_SHOTS, &ns, &d->few_shot, err) != MD_OK) goto done;
    if (ns < o.n_shots) {
        md_error_set(err, "%s: too few true/false statements for %d few-shot examples", path, o.n_shots);
        goto done;
    }
    d->iv = malloc((size_t)d->n * sizeof(int));
    if (!d->iv) {
        md_error_set(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < d->n; i++) {
        int is_shot = 0;
        for (int j = 0; j < ns; j++) is_shot |= shots[j] == d->row[i];
        if (!is_shot) d->iv[d->n_iv++] = i;
    }
    if (d->n_iv == 0) {
        md_error_set(err, "%s: no statement is left for the intervention after the few-shot examples", path);
        goto done;
    }
    rc = MD_OK;
done:
    free(lab), free(perm), free(stmt);
    return rc;
}

static const char *tr_stmt(const tr_state *s, int k, int i)
{
    const tr_ds *d = &s->ds[k];
    return md_csv_cell(d->csv, d->row[i], md_csv_column(d->csv, "statement", NULL));
}

/* Adds dataset `name` (once) and returns its index, or -1 with err set. */
static int tr_add_ds(const md_kind_ctx *ctx, tr_state *s, const char *key, const char *name, md_error *err)
{
    char where[MD_EXP_WHERE_MAX];
    md_exp_format_where(ctx, where, sizeof where);
    for (int k = 0; k < s->n_ds; k++)
        if (!strcmp(s->ds[k].name, name)) return k;
    if (!md_exp_find_dataset(ctx, where, key, name, err)) return -1;
    if (s->n_ds >= TR_MAX_DS) {
        md_error_set(err, "%s: key '%s': at most %d datasets", where, key, TR_MAX_DS);
        return -1;
    }
    return s->ds[s->n_ds++].name = name, s->n_ds - 1;
}

static int tr_state_build(const md_kind_ctx *ctx, tr_state **out, md_error *err)
{
    const md_params *p = &ctx->exp->params, *top = &ctx->job->top;
    char where[MD_EXP_WHERE_MAX];
    md_exp_format_where(ctx, where, sizeof where);
    tr_state *s = calloc(1, sizeof *s);
    if (!s) return md_error_set(err, "out of memory");
    if (md_exp_resolve_roles(ctx, where, s->roles, TR_MAX_ROLES, &s->n_roles, err) != MD_OK) goto fail;
    int nr = s->n_roles;
    s->batch = (int)md_params_int(p, "batch");
    s->hook = md_hook_point_parse(md_params_str(p, "hook"));
    s->token = (int)md_params_int(p, "token");
    s->n_control = (int)md_params_int(p, "control_directions");
    s->shot_seed = (uint64_t)md_params_int(p, "shot_seed");
    s->n_pos = md_params_count(p, "intervention_positions");
    if (s->n_pos < 1 || s->n_pos > TR_MAX_POS) {
        md_error_set(err, "%s: key 'intervention_positions': %d positions (1 to %d allowed)", where, s->n_pos,
                     TR_MAX_POS);
        goto fail;
    }
    for (int i = 0; i < s->n_pos; i++) {
        const char *v = md_params_item(p, "intervention_positions", i);
        char *end = NULL;
        long q = strtol(v, &end, 10);
        if (end == v || *end || q >= 0 || q < -4096) {
            md_error_set(err, "%s: key 'intervention_positions': '%s' is not a negative integer (from the end of the "
                              "statement; -1 = its last token)",
                         where, v);
            goto fail;
        }
        s->pos[i] = (int)q;
    }
    const char *lists[2] = {"train_datasets", "test_datasets"};
    for (int l = 0; l < 2; l++) {
        int n = md_params_count(p, lists[l]);
        if (n < 1) {
            md_error_set(err, "%s: key '%s': at least one dataset is needed", where, lists[l]);
            goto fail;
        }
        for (int i = 0; i < n; i++) {
            int k = tr_add_ds(ctx, s, lists[l], md_params_item(p, lists[l], i), err);
            if (k < 0) goto fail;
            int *v = l ? s->test : s->train, *nv = l ? &s->n_test : &s->n_train, dup = 0;
            for (int j = 0; j < *nv; j++) dup |= v[j] == k;
            if (!dup) v[(*nv)++] = k;
        }
    }
    for (int k = 0; k < s->n_ds; k++) {
        int is_test = 0;
        for (int j = 0; j < s->n_test; j++) is_test |= s->test[j] == k;
        const char *path = md_params_map_get(top, "datasets", s->ds[k].name);
        if (tr_ds_load(p, &s->ds[k], path, is_test, err) != MD_OK) {
            md_error_prefix(err, "%s: dataset '%s'", where, s->ds[k].name);
            goto fail;
        }
    }
    /* unit tables */
    int c0 = 0, c1 = 0, nc = 1 + nr + s->n_control;
    for (int k = 0; k < s->n_ds; k++) c0 += nr * md_exp_count_batches(s->ds[k].n, s->batch);
    for (int j = 0; j < s->n_test; j++) c1 += nr * nc * md_exp_count_batches(s->ds[s->test[j]].n_iv, s->batch);
    if (md_exp_alloc_units(&s->u0, c0, err) != MD_OK || md_exp_alloc_units(&s->u1, c1, err) != MD_OK) goto fail;
    for (int m = 0; m < nr; m++)
        for (int k = 0; k < s->n_ds; k++)
            for (int b = 0; b < md_exp_count_batches(s->ds[k].n, s->batch); b++) md_exp_add_unit(&s->u0, m, k, b, 0);
    for (int t = 0; t < nr; t++)
        for (int j = 0; j < s->n_test; j++)
            for (int c = 0; c < nc; c++)
                for (int b = 0; b < md_exp_count_batches(s->ds[s->test[j]].n_iv, s->batch); b++)
                    md_exp_add_unit(&s->u1, t, j, c, b);
    *out = s;
    return MD_OK;
fail:
    tr_state_free(s);
    return MD_ERR;
}

static int tr_validate(const md_kind_ctx *ctx, md_error *err)
{
    const md_params *p = &ctx->exp->params;
    char where[MD_EXP_WHERE_MAX];
    md_exp_format_where(ctx, where, sizeof where);
    tr_state *s = NULL;
    if (tr_state_build(ctx, &s, err) != MD_OK) return MD_ERR;
    int rc = MD_OK;
    md_config c0 = {0};
    for (int i = 0; i < s->n_roles && rc == MD_OK; i++) {
        md_config c;
        md_tokenizer *tok = NULL;
        if ((rc = md_exp_load_role(ctx, where, s->roles[i], &c, &tok, err)) != MD_OK) break;
        md_error e2 = {0};
        const char *words[2] = {"true_word", "false_word"};
        for (int w = 0; w < 2 && rc == MD_OK; w++)
            if (md_tokenizer_single_token(tok, md_params_str(p, words[w]), &e2) < 0)
                rc = md_error_set(err, "%s: key '%s': model '%s': %s", where, words[w], s->roles[i], e2.msg);
        md_tokenizer_free(tok);
        if (rc != MD_OK) break;
        if (i == 0) c0 = c;
        else rc = md_exp_check_widths(where, s->roles[0], &c0, s->roles[i], &c, err);
        int l = tr_layer(p, c.n_layers), lo, hi;
        if (rc == MD_OK && l >= c.n_layers)
            rc = md_error_set(err, "%s: key 'layer': %d but model '%s' has %d layers", where, l, s->roles[i],
                              c.n_layers);
        if (rc == MD_OK && (tr_iv_layers(p, c.n_layers, &lo, &hi) != MD_OK || hi >= c.n_layers))
            rc = md_error_set(err, "%s: key 'intervention_layers': '%s' is not -1, 'a' or 'a-b' with 0 <= a <= b < "
                                   "%d (layers of model '%s')",
                              where, md_params_str(p, "intervention_layers"), c.n_layers, s->roles[i]);
    }
    tr_state_free(s);
    return rc;
}

static int put_all(md_plan *plan, const char *path, int rank, const int64_t *dims, const void *data, size_t nbytes,
                   md_error *err)
{
    int64_t o[MD_MAX_DIMS] = {0};
    (void)rank; /* the declared rank; o covers any */
    return md_plan_put(plan, path, o, dims, data, nbytes, err);
}

/* Blob of stage 1: int32 M, d, T (test datasets), 0 (keeps the doubles 8-byte aligned); f64 theta[M][d], norm[M],
 * cos[M][M], probe[M][2], train_acc[M], acc[M][M][T]. */
typedef struct tr_dirs {
    int M, d, T;
    const double *theta, *norm, *cos, *probe, *train_acc, *acc;
} tr_dirs;

/* Doubles of that blob. */
static size_t tr_dirs_count(int M, int d, int T)
{
    return (size_t)M * d + M + (size_t)M * M + 2 * (size_t)M + M + (size_t)M * M * T;
}

static int tr_dirs_view(const md_blob *b, tr_dirs *v, md_error *err)
{
    int32_t hd[4];
    const double *q = NULL;
    if (md_exp_read_blob_header(b, "truth", hd, 4, err) != MD_OK) return MD_ERR;
    v->M = hd[0], v->d = hd[1], v->T = hd[2];
    if (md_exp_view_blob_f64(b, "truth", 4, tr_dirs_count(v->M, v->d, v->T), &q, err) != MD_OK) return MD_ERR;
    v->theta = q;
    v->norm = v->theta + (size_t)v->M * v->d;
    v->cos = v->norm + v->M;
    v->probe = v->cos + (size_t)v->M * v->M;
    v->train_acc = v->probe + 2 * (size_t)v->M;
    v->acc = v->train_acc + v->M;
    return MD_OK;
}

/* Control direction k: a seeded random unit vector, v[d] (caller's); the
 * intervention scales it to the target model's own direction norm. */
static void tr_control_unit(const tr_state *s, int k, int d, double *v)
{
    md_dir_random_unit(v, d, md_dir_mix(s->shot_seed ^ (0x636f6e74726f6cull + (uint64_t)k)));
}

static int tr_plan(const md_kind_ctx *ctx, int stage, const md_blob *input, md_plan *plan, md_error *err)
{
    const md_params *p = &ctx->exp->params;
    tr_state *s = NULL;
    int rc = MD_ERR;
    char path[MD_PATH_MAX], val[4096];
    char *buf = NULL;
    int32_t *ibuf = NULL;
    if (tr_state_build(ctx, &s, err) != MD_OK) return MD_ERR;
    int M = s->n_roles, T = s->n_test, K = s->n_control, nc = 1 + M + K;
    const char *tnames[TR_MAX_DS], *cnames[1 + TR_MAX_ROLES + TR_MAX_CONTROL];
    char cbuf[1 + TR_MAX_ROLES + TR_MAX_CONTROL][80];
    for (int j = 0; j < T; j++) tnames[j] = s->ds[s->test[j]].name;
    snprintf(cbuf[0], sizeof cbuf[0], "clean");
    for (int a = 0; a < M; a++) snprintf(cbuf[a + 1], sizeof cbuf[a + 1], "dir_%s", s->roles[a]);
    for (int k = 0; k < K; k++) snprintf(cbuf[1 + M + k], sizeof cbuf[0], "random_%d", k);
    for (int c = 0; c < nc; c++) cnames[c] = cbuf[c];
    if (stage == 0) {
        md_config c;
        if (md_hf_config_load_dir(&c, md_params_map_get(&ctx->job->top, "models", s->roles[0]), err) != MD_OK)
            goto done;
        int d = c.d_model;
        for (int k = 0; k < s->n_ds; k++) {
            tr_ds *ds = &s->ds[k];
            int64_t n = ds->n;
            const char *rn[] = {"statement"};
            size_t total = 0;
            for (int i = 0; i < ds->n; i++) total += strlen(tr_stmt(s, k, i)) + 1;
            free(buf), free(ibuf);
            buf = malloc(total ? total : 1), ibuf = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
            if (!buf || !ibuf) {
                md_error_set(err, "out of memory");
                goto done;
            }
            for (int i = 0, off = 0; i < ds->n; i++) off += sprintf(buf + off, "%s", tr_stmt(s, k, i)) + 1;
            snprintf(path, sizeof path, "statements/%s", ds->name);
            if (md_exp_declare_dset(plan, path, MD_H5_STR, 1, &n, rn, "",
                                    "the bare statements kept (CSV order)", err) != MD_OK ||
                put_all(plan, path, 1, &n, buf, total, err) != MD_OK)
                goto done;
            for (int i = 0; i < ds->n; i++) ibuf[i] = ds->label[i];
            snprintf(path, sizeof path, "labels/%s", ds->name);
            if (md_exp_declare_dset(plan, path, MD_H5_I32, 1, &n, rn, "", "1 = true statement", err) != MD_OK ||
                put_all(plan, path, 1, &n, ibuf, (size_t)n * sizeof(int32_t), err) != MD_OK)
                goto done;
            for (int i = 0; i < ds->n; i++) ibuf[i] = ds->row[i];
            snprintf(path, sizeof path, "csv_row/%s", ds->name);
            if (md_exp_declare_dset(plan, path, MD_H5_I32, 1, &n, rn, "",
                                    "0-based CSV row (header excluded)", err) != MD_OK ||
                put_all(plan, path, 1, &n, ibuf, (size_t)n * sizeof(int32_t), err) != MD_OK)
                goto done;
            for (int m = 0; m < M; m++) {
                int64_t dims[2] = {n, d};
                const char *nm[] = {"statement", "hidden"};
                snprintf(path, sizeof path, "acts/%s/%s", s->roles[m], ds->name);
                if (md_exp_declare_dset(plan, path, MD_H5_F32, 2, dims, nm, "activation",
                                        "the hook point at (layer, token) of BOS + the bare statement (not centred)",
                                        err) != MD_OK)
                    goto done;
            }
        }
        md_exp_join_names(val, sizeof val, s->roles, M);
        if (md_plan_attr(plan, "", "models", val, err) != MD_OK) goto done;
        const char *tr[TR_MAX_DS];
        for (int i = 0; i < s->n_train; i++) tr[i] = s->ds[s->train[i]].name;
        md_exp_join_names(val, sizeof val, tr, s->n_train);
        if (md_plan_attr(plan, "", "train_datasets", val, err) != MD_OK) goto done;
        md_exp_join_names(val, sizeof val, tnames, T);
        if (md_plan_attr(plan, "", "test_datasets", val, err) != MD_OK) goto done;
        if (md_plan_attr(plan, "", "hook", md_params_str(p, "hook"), err) != MD_OK) goto done;
        snprintf(val, sizeof val, "%d", tr_layer(p, c.n_layers));
        if (md_plan_attr(plan, "", "layer", val, err) != MD_OK) goto done;
        snprintf(val, sizeof val, "%d", s->token);
        if (md_plan_attr(plan, "", "token", val, err) != MD_OK) goto done;
        int lo = 0, hi = 0;
        tr_iv_layers(p, c.n_layers, &lo, &hi);
        snprintf(val, sizeof val, "%d-%d", lo, hi);
        if (md_plan_attr(plan, "", "intervention_layers", val, err) != MD_OK) goto done;
        size_t off = 0;
        for (int i = 0; i < s->n_pos; i++) off += (size_t)snprintf(val + off, sizeof val - off, "%s%d", i ? "," : "", s->pos[i]);
        if (md_plan_attr(plan, "", "intervention_positions", val, err) != MD_OK) goto done;
        snprintf(val, sizeof val, "%.17g", md_params_float(p, "coefficient"));
        if (md_plan_attr(plan, "", "coefficient", val, err) != MD_OK) goto done;
        rc = md_plan_units(plan, s->u0.n, err);
        goto done;
    }
    if (stage == 1) {
        tr_dirs v;
        if (tr_dirs_view(input, &v, err) != MD_OK) goto done;
        if (v.M != M || v.T != T) {
            md_error_set(err, "truth: stage 1 input holds %d models / %d test datasets, the job %d / %d", v.M, v.T, M, T);
            goto done;
        }
        int64_t dd = v.d, m1 = M, mm[2] = {M, M}, two = 2, acc[3] = {M, M, T};
        const char *nh[] = {"hidden"}, *nm1[] = {"model"}, *nmm[] = {"model", "model_b"}, *np[] = {"param"},
                   *na[] = {"source", "target", "test_dataset"};
        for (int m = 0; m < M; m++) {
            snprintf(path, sizeof path, "direction/%s", s->roles[m]);
            if (md_exp_declare_dset(plan, path, MD_H5_F64, 1, &dd, nh, "activation",
                                    "truth direction theta = mean(true) - mean(false) of the centred train activations (not "
                                    "normalised; the intervention vector)",
                                    err) != MD_OK ||
                put_all(plan, path, 1, &dd, v.theta + (size_t)m * v.d, sizeof(double) * (size_t)v.d, err) != MD_OK)
                goto done;
            snprintf(path, sizeof path, "probe/%s", s->roles[m]);
            if (md_exp_declare_dset(plan, path, MD_H5_F64, 1, &two, np, "",
                                    "1-D logistic probe P(true) = sigmoid(weight * (x . theta) + bias) on centred activations",
                                    err) !=
                    MD_OK ||
                put_all(plan, path, 1, &two, v.probe + 2 * (size_t)m, 2 * sizeof(double), err) != MD_OK ||
                md_plan_attr(plan, path, "params", "weight,bias", err) != MD_OK)
                goto done;
        }
        if (md_exp_declare_dset(plan, "direction_norm", MD_H5_F64, 1, &m1, nm1, "activation",
                                "norm of direction/<model>", err) != MD_OK ||
            put_all(plan, "direction_norm", 1, &m1, v.norm, sizeof(double) * (size_t)M, err) != MD_OK ||
            md_exp_declare_dset(plan, "cosine", MD_H5_F64, 2, mm, nmm, "1",
                                "cosine between the models' truth directions", err) != MD_OK ||
            put_all(plan, "cosine", 2, mm, v.cos, sizeof(double) * (size_t)M * M, err) != MD_OK ||
            md_exp_declare_dset(plan, "train_accuracy", MD_H5_F64, 1, &m1, nm1, "1",
                                "accuracy of each model's probe on its own (pooled, centred) train activations",
                                err) != MD_OK ||
            put_all(plan, "train_accuracy", 1, &m1, v.train_acc, sizeof(double) * (size_t)M, err) != MD_OK ||
            md_exp_declare_dset(plan, "accuracy", MD_H5_F64, 3, acc, na, "1",
                                "accuracy of the source model's direction + probe on the target model's centred activations of "
                                "each test dataset (transfer table)",
                                err) != MD_OK ||
            put_all(plan, "accuracy", 3, acc, v.acc, sizeof(double) * (size_t)M * M * T, err) != MD_OK)
            goto done;
        if (K > 0) {
            int64_t kd[2] = {K, v.d};
            const char *nkd[] = {"control", "hidden"};
            double *cv = malloc(sizeof(double) * (size_t)K * v.d);
            if (!cv) {
                md_error_set(err, "out of memory");
                goto done;
            }
            for (int k = 0; k < K; k++) tr_control_unit(s, k, v.d, cv + (size_t)k * v.d);
            int bad = md_exp_declare_dset(plan, "control_directions", MD_H5_F64, 2, kd, nkd, "1",
                                          "random unit control directions (condition random_<k>); the intervention "
                                          "scales each to the target model's direction_norm",
                                          err) != MD_OK ||
                      put_all(plan, "control_directions", 2, kd, cv, sizeof(double) * (size_t)K * v.d, err) != MD_OK;
            free(cv);
            if (bad) goto done;
        }
        md_exp_join_names(val, sizeof val, tnames, T);
        if (md_plan_attr(plan, "accuracy", "test_datasets", val, err) != MD_OK) goto done;
        md_exp_join_names(val, sizeof val, s->roles, M);
        if (md_plan_attr(plan, "accuracy", "models", val, err) != MD_OK) goto done;
        for (int j = 0; j < T; j++) {
            tr_ds *ds = &s->ds[s->test[j]];
            int64_t n = ds->n_iv, dims[3] = {M, nc, n};
            const char *rn[] = {"statement"}, *nm3[] = {"target", "condition", "statement"};
            snprintf(path, sizeof path, "interv/%s/index", ds->name);
            if (md_exp_declare_dset(plan, path, MD_H5_I32, 1, &n, rn, "",
                                    "index into statements/<ds> of each statement intervened on (few-shot examples excluded)",
                                    err) != MD_OK ||
                put_all(plan, path, 1, &n, ds->iv, (size_t)n * sizeof(int32_t), err) != MD_OK ||
                md_plan_attr(plan, path, "few_shot", ds->few_shot, err) != MD_OK)
                goto done;
            const char *pn[] = {"p_true", "p_false"};
            for (int q = 0; q < 2; q++) {
                snprintf(path, sizeof path, "interv/%s/%s", ds->name, pn[q]);
                if (md_exp_declare_dset(plan, path, MD_H5_F32, 3, dims, nm3, "probability",
                                        q ? "P(false_word) at the last prompt position (softmax over the full vocabulary)"
                                        : "P(true_word) at the last prompt position (softmax over the full vocabulary)",
                                        err) != MD_OK)
                    goto done;
                md_exp_join_names(val, sizeof val, cnames, nc);
                if (md_plan_attr(plan, path, "conditions", val, err) != MD_OK) goto done;
            }
        }
        rc = md_plan_units(plan, s->u1.n, err);
        goto done;
    }
    /* stage 2: PD / IE */
    {
        size_t npd = (size_t)M * T * nc * 2, nie = (size_t)M * M * T * 3, nfa = (size_t)M * T,
               nct = (size_t)M * T * K * 3;
        if (!input || input->size != sizeof(double) * (npd + nie + nfa + nct)) {
            md_error_set(err, "truth: stage 2 input has the wrong size");
            goto done;
        }
        const double *pd = input->data, *ie = pd + npd, *fa = ie + nie, *ct = fa + nfa;
        if (K > 0) {
            int64_t dct[4] = {M, T, K, 3};
            const char *nct_[] = {"target", "test_dataset", "control", "effect"};
            if (md_exp_declare_dset(plan, "ie_control", MD_H5_F64, 4, dct, nct_, "1",
                                    "intervention effect of each random control direction on each target model (as ie: "
                                    "false_to_true, true_to_false, average)",
                                    err) != MD_OK ||
                put_all(plan, "ie_control", 4, dct, ct, sizeof(double) * nct, err) != MD_OK ||
                md_plan_attr(plan, "ie_control", "effects", "false_to_true,true_to_false,average", err) != MD_OK)
                goto done;
        }
        int64_t dpd[4] = {M, T, nc, 2}, die[4] = {M, M, T, 3}, dfa[2] = {M, T};
        const char *npd_[] = {"target", "test_dataset", "condition", "class"},
                   *nie_[] = {"source", "target", "test_dataset", "effect"}, *nfa_[] = {"target", "test_dataset"};
        if (md_exp_declare_dset(plan, "pd", MD_H5_F64, 4, dpd, npd_, "probability",
                                "PD = mean P(true_word) - P(false_word) over the statements of one class (0 false, 1 true), clean "
                                "or with a source direction (added to false, subtracted from true statements)",
                                err) != MD_OK ||
            put_all(plan, "pd", 4, dpd, pd, sizeof(double) * npd, err) != MD_OK ||
            md_exp_declare_dset(plan, "ie", MD_H5_F64, 4, die, nie_, "1",
                                "intervention effect: false_to_true = (PD_int - PD)/(1 - PD) on false statements, true_to_false = "
                                "(PD_int - PD)/(-1 - PD) on true statements, average of the two",
                                err) != MD_OK ||
            put_all(plan, "ie", 4, die, ie, sizeof(double) * nie, err) != MD_OK ||
            md_exp_declare_dset(plan, "fewshot_accuracy", MD_H5_F64, 2, dfa, nfa_, "1",
                                "clean few-shot accuracy: P(true_word) > P(false_word) matches the label",
                                err) != MD_OK ||
            put_all(plan, "fewshot_accuracy", 2, dfa, fa, sizeof(double) * nfa, err) != MD_OK)
            goto done;
        md_exp_join_names(val, sizeof val, cnames, nc);
        if (md_plan_attr(plan, "pd", "conditions", val, err) != MD_OK ||
            md_plan_attr(plan, "pd", "classes", "false,true", err) != MD_OK ||
            md_plan_attr(plan, "ie", "effects", "false_to_true,true_to_false,average", err) != MD_OK)
            goto done;
        md_exp_join_names(val, sizeof val, tnames, T);
        if (md_plan_attr(plan, "ie", "test_datasets", val, err) != MD_OK) goto done;
        rc = md_plan_units(plan, 1, err);
    }
done:
    free(buf), free(ibuf);
    tr_state_free(s);
    return rc;
}

static int tr_prepare(const md_kind_ctx *ctx, md_worker *w, int stage, const md_blob *input, void **state,
                      md_error *err)
{
    (void)w, (void)stage, (void)input;
    return tr_state_build(ctx, (tr_state **)state, err);
}

/* Stage 0 unit: activations of one batch of bare statements. */
static int tr_acts(const md_kind_ctx *ctx, md_worker *w, tr_state *s, int64_t unit, md_result *out, md_error *err)
{
    int m = s->u0.key[unit][0], k = s->u0.key[unit][1], r0;
    tr_ds *ds = &s->ds[k];
    int n = md_exp_slice_batch(ds->n, s->batch, s->u0.key[unit][2], &r0);
    md_model *M = NULL;
    if (md_worker_model(w, s->roles[m], &M, err) != MD_OK) return MD_ERR;
    int d = md_model_hook_width(M, s->hook), layer = tr_layer(&ctx->exp->params, M->cfg.n_layers), rc = MD_ERR;
    int **ids = calloc((size_t)n, sizeof(int *)), *len = calloc((size_t)n, sizeof(int));
    float *acts = malloc((size_t)n * d * sizeof(float));
    if (!ids || !len || !acts) {
        md_error_set(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        size_t nid = 0;
        if (md_tokenizer_encode(M->tok, tr_stmt(s, k, r0 + i), 1, &ids[i], &nid, err) != MD_OK) goto done;
        len[i] = (int)nid;
        if (len[i] < -s->token) {
            md_error_set(err, "statement %d ('%s') has %d tokens; token %d is before its start", r0 + i,
                         tr_stmt(s, k, r0 + i), len[i], s->token);
            goto done;
        }
    }
    if (md_exp_read_acts(M, ids, len, n, s->hook, layer, s->token, acts, err) != MD_OK) goto done;
    char path[MD_PATH_MAX];
    snprintf(path, sizeof path, "acts/%s/%s", s->roles[m], ds->name);
    int64_t o[2] = {r0, 0}, c[2] = {n, d};
    rc = md_result_put(out, path, 2, o, c, acts, (size_t)n * d * sizeof(float), err);
done:
    if (rc != MD_OK) md_error_prefix(err, "truth activations (%s, %s, statements %d..)", s->roles[m], ds->name, r0);
    md_exp_free_ids(ids, n);
    free(len), free(acts);
    return rc;
}

/* Encodes "<few_shot><statement><suffix>" and finds the statement's last
 * token: the encoding of "<few_shot><statement>" must be a prefix of the
 * prompt's (else the statement's end is len − suffix tokens). */
static int tr_encode_prompt(const md_model *M, const char *few_shot, const char *stmt, const char *suffix, int **ids,
                            int *len, int *stmt_end, md_error *err)
{
    size_t cap = strlen(few_shot) + strlen(stmt) + strlen(suffix) + 1, np = 0, nh = 0, ns = 0;
    char *text = malloc(cap);
    int *head = NULL, *sfx = NULL, rc = MD_ERR;
    if (!text) return md_error_set(err, "out of memory");
    snprintf(text, cap, "%s%s%s", few_shot, stmt, suffix);
    if (md_tokenizer_encode(M->tok, text, 1, ids, &np, err) != MD_OK) goto done;
    snprintf(text, cap, "%s%s", few_shot, stmt);
    if (md_tokenizer_encode(M->tok, text, 1, &head, &nh, err) != MD_OK) goto done;
    if (md_tokenizer_encode(M->tok, suffix, 0, &sfx, &ns, err) != MD_OK) goto done;
    *len = (int)np;
    if (nh <= np && !memcmp(head, *ids, nh * sizeof(int))) *stmt_end = (int)nh - 1;
    else *stmt_end = (int)np - (int)ns - 1;
    rc = MD_OK;
done:
    free(text), free(head), free(sfx);
    return rc;
}

/* Stage 1 unit: clean or intervened P(TRUE), P(FALSE) of one batch. */
static int tr_interv(const md_kind_ctx *ctx, md_worker *w, tr_state *s, const md_blob *input, int64_t unit,
                     md_result *out, md_error *err)
{
    const md_params *p = &ctx->exp->params;
    tr_dirs v;
    if (tr_dirs_view(input, &v, err) != MD_OK) return MD_ERR;
    const int *key = s->u1.key[unit];
    int t = key[0], j = key[1], cond = key[2], r0;
    tr_ds *ds = &s->ds[s->test[j]];
    int n = md_exp_slice_batch(ds->n_iv, s->batch, key[3], &r0);
    md_model *M = NULL;
    if (md_worker_model(w, s->roles[t], &M, err) != MD_OK) return MD_ERR;
    int d = M->cfg.d_model, V = M->cfg.vocab_size, rc = MD_ERR, T = 0, nh = 0, lo = 0, hi = 0;
    tr_iv_layers(p, M->cfg.n_layers, &lo, &hi);
    int **ids = calloc((size_t)n, sizeof(int *)), *len = calloc((size_t)n, sizeof(int));
    int *end = calloc((size_t)n, sizeof(int)), *pad = NULL, *tok = NULL;
    float *vec = malloc((size_t)d * sizeof(float)), *logits = malloc((size_t)n * V * sizeof(float));
    float *pt = malloc((size_t)n * sizeof(float)), *pf = malloc((size_t)n * sizeof(float));
    md_hook *hk = NULL;
    md_kvcache *kc = NULL;
    md_error e2 = {0};
    if (!ids || !len || !end || !vec || !logits || !pt || !pf) {
        md_error_set(err, "out of memory");
        goto done;
    }
    int id_t = md_tokenizer_single_token(M->tok, md_params_str(p, "true_word"), &e2);
    int id_f = md_tokenizer_single_token(M->tok, md_params_str(p, "false_word"), &e2);
    if (id_t < 0 || id_f < 0) {
        md_error_set(err, "model '%s': %s", s->roles[t], e2.msg);
        goto done;
    }
    if (v.d != d) {
        md_error_set(err, "direction width %d differs from model '%s' d_model %d", v.d, s->roles[t], d);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        int si = ds->iv[r0 + i];
        if (tr_encode_prompt(M, ds->few_shot, tr_stmt(s, s->test[j], si), md_params_str(p, "suffix"), &ids[i], &len[i],
                             &end[i], err) != MD_OK)
            goto done;
        for (int q = 0; q < s->n_pos; q++)
            if (end[i] + 1 + s->pos[q] < 1) {
                md_error_set(err, "statement %d: intervention position %d is before the prompt's start", si,
                             s->pos[q]);
                goto done;
            }
    }
    if (md_exp_pad_batch(M, ids, len, n, &T, &pad, &tok, err) != MD_OK) goto done;
    if (cond > s->n_roles) { /* control: random unit vector x the target's own direction norm */
        double *u = malloc((size_t)d * sizeof(double));
        if (!u) {
            md_error_set(err, "out of memory");
            goto done;
        }
        tr_control_unit(s, cond - 1 - s->n_roles, d, u);
        for (int q = 0; q < d; q++) vec[q] = (float)(u[q] * v.norm[t]);
        free(u);
    } else if (cond > 0) {
        const double *th = v.theta + (size_t)(cond - 1) * d;
        for (int q = 0; q < d; q++) vec[q] = (float)th[q];
    }
    if (cond > 0) {
        double coef = md_params_float(p, "coefficient");
        int nl = hi - lo + 1;
        hk = malloc((size_t)n * nl * s->n_pos * sizeof(md_hook));
        if (!hk) {
            md_error_set(err, "out of memory");
            goto done;
        }
        for (int i = 0; i < n; i++) {
            int lab = ds->label[ds->iv[r0 + i]];
            for (int l = lo; l <= hi; l++)
                for (int q = 0; q < s->n_pos; q++)
                    hk[nh++] = (md_hook){.point = s->hook, .op = MD_HOOK_ADD, .layer = l, .seq = i,
                                         .pos = pad[i] + end[i] + 1 + s->pos[q], .vec = vec,
                                         .coef = (float)(lab ? -coef : coef)};
        }
    }
    md_forward f;
    md_forward_init(&f, M);
    f.n_seq = n, f.t0 = 0, f.t1 = T, f.tokens = tok, f.n_pad = pad, f.hooks = hk, f.n_hooks = nh;
    f.logits = MD_LOGITS_LAST, f.logits_out = logits;
    if (md_kvcache_create(&kc, M, n, T, err) != MD_OK) goto done;
    f.cache = kc;
    if (md_model_forward(M, &f, err) != MD_OK) goto done;
    for (int i = 0; i < n; i++) { /* softmax over the full vocabulary, in double */
        const float *lg = logits + (size_t)i * V;
        double mx = lg[0], z = 0;
        for (int q = 1; q < V; q++)
            if (lg[q] > mx) mx = lg[q];
        for (int q = 0; q < V; q++) z += exp((double)lg[q] - mx);
        pt[i] = (float)(exp((double)lg[id_t] - mx) / z);
        pf[i] = (float)(exp((double)lg[id_f] - mx) / z);
    }
    char path[MD_PATH_MAX];
    int64_t o[3] = {t, cond, r0}, c[3] = {1, 1, n};
    snprintf(path, sizeof path, "interv/%s/p_true", ds->name);
    if (md_result_put(out, path, 3, o, c, pt, (size_t)n * sizeof(float), err) != MD_OK) goto done;
    snprintf(path, sizeof path, "interv/%s/p_false", ds->name);
    rc = md_result_put(out, path, 3, o, c, pf, (size_t)n * sizeof(float), err);
done:
    if (rc != MD_OK)
        md_error_prefix(err, "truth intervention (target %s, %s, condition %d, statements %d..)", s->roles[t],
                        ds->name, cond, r0);
    md_kvcache_free(kc);
    md_exp_free_ids(ids, n);
    free(len), free(end), free(pad), free(tok), free(vec), free(logits), free(pt), free(pf), free(hk);
    return rc;
}

static int tr_compute(const md_kind_ctx *ctx, md_worker *w, void *state, int stage, const md_blob *input,
                      int64_t unit, md_result *out, md_error *err)
{
    tr_state *s = state;
    if (stage == 0) return tr_acts(ctx, w, s, unit, out, err);
    if (stage == 1) return tr_interv(ctx, w, s, input, unit, out, err);
    return MD_OK; /* stage 2: the plan wrote PD / IE */
}

/* Reads acts/<role>/<ds> [n][d] into x and centres it. */
static int read_centred(md_reader *rd, const tr_state *s, int m, int k, int d, float *x, md_error *err)
{
    char path[MD_PATH_MAX];
    int64_t o[2] = {0, 0}, c[2] = {s->ds[k].n, d};
    snprintf(path, sizeof path, "acts/%s/%s", s->roles[m], s->ds[k].name);
    if (md_reader_f32(rd, path, o, c, x, err) != MD_OK) return MD_ERR;
    md_dir_centre(x, s->ds[k].n, d);
    return MD_OK;
}

/* finish_stage(0): directions, probes, cosine, transfer accuracy. */
static int tr_finish0(tr_state *s, md_reader *rd, md_blob *next, md_error *err)
{
    int M = s->n_roles, T = s->n_test, rc = MD_ERR;
    char path[MD_PATH_MAX];
    int64_t dims[MD_MAX_DIMS];
    snprintf(path, sizeof path, "acts/%s/%s", s->roles[0], s->ds[0].name);
    if (md_reader_dims(rd, path, dims, err) < 0) return MD_ERR;
    int d = (int)dims[1], n_tr = 0, n_max = 0;
    for (int i = 0; i < s->n_train; i++) n_tr += s->ds[s->train[i]].n;
    for (int k = 0; k < s->n_ds; k++)
        if (s->ds[k].n > n_max) n_max = s->ds[k].n;
    int32_t hd[4] = {M, d, T, 0};
    double *theta = NULL;
    size_t bytes = 0;
    void *blob = md_exp_alloc_blob(hd, 4, tr_dirs_count(M, d, T), &theta, &bytes);
    float *x = malloc((size_t)(n_tr > n_max ? n_tr : n_max) * d * sizeof(float));
    int *lab = malloc((size_t)(n_tr > n_max ? n_tr : n_max) * sizeof(int));
    double *proj = malloc((size_t)(n_tr > n_max ? n_tr : n_max) * sizeof(double));
    double *unit = malloc((size_t)M * d * sizeof(double));
    if (!blob || !x || !lab || !proj || !unit) {
        md_error_set(err, "out of memory");
        goto done;
    }
    double *norm = theta + (size_t)M * d, *cs = norm + M, *probe = cs + (size_t)M * M, *tacc = probe + 2 * (size_t)M,
           *acc = tacc + M;
    for (int m = 0; m < M; m++) {
        int off = 0;
        for (int i = 0; i < s->n_train; i++) {
            int k = s->train[i];
            if (read_centred(rd, s, m, k, d, x + (size_t)off * d, err) != MD_OK) goto done;
            memcpy(lab + off, s->ds[k].label, (size_t)s->ds[k].n * sizeof(int));
            off += s->ds[k].n;
        }
        double *th = theta + (size_t)m * d;
        md_dir_probe pr;
        if (md_dir_mass_mean(x, lab, n_tr, d, th, err) != MD_OK) goto fail_m;
        norm[m] = md_dir_norm(th, d);
        memcpy(unit + (size_t)m * d, th, (size_t)d * sizeof(double));
        if (md_dir_normalise(unit + (size_t)m * d, d, err) != MD_OK) goto fail_m;
        md_dir_project(x, n_tr, d, th, proj);
        if (md_dir_probe_fit(proj, lab, n_tr, &pr, err) != MD_OK) goto fail_m;
        probe[2 * m] = pr.w, probe[2 * m + 1] = pr.b;
        tacc[m] = md_dir_probe_accuracy(&pr, proj, lab, n_tr);
        continue;
    fail_m:
        md_error_prefix(err, "truth direction of model '%s'", s->roles[m]);
        goto done;
    }
    for (int a = 0; a < M; a++)
        for (int b = 0; b < M; b++) cs[a * M + b] = md_dir_cosine(unit + (size_t)a * d, unit + (size_t)b * d, d);
    for (int b = 0; b < M; b++)
        for (int j = 0; j < T; j++) {
            int k = s->test[j], n = s->ds[k].n;
            if (read_centred(rd, s, b, k, d, x, err) != MD_OK) goto done;
            for (int a = 0; a < M; a++) {
                md_dir_probe pr = {.w = probe[2 * a], .b = probe[2 * a + 1]};
                md_dir_project(x, n, d, theta + (size_t)a * d, proj);
                acc[((size_t)a * M + b) * T + j] = md_dir_probe_accuracy(&pr, proj, s->ds[k].label, n);
            }
        }
    rc = md_blob_set(next, blob, bytes, err);
done:
    free(blob), free(x), free(lab), free(proj), free(unit);
    return rc;
}

/* IE of one intervention from the clean and intervened PD per class
 * (0 false, 1 true): false_to_true (+v on false statements), true_to_false
 * (-v on true statements), their average. */
static void tr_ie(const double *pd_clean, const double *pd_int, double out[3])
{
    out[0] = md_dir_ie(pd_int[0], pd_clean[0], 1.0);
    out[1] = md_dir_ie(pd_int[1], pd_clean[1], -1.0);
    out[2] = 0.5 * (out[0] + out[1]);
}

/* finish_stage(1): PD per (target, test, condition, class), IE per
 * (source, target, test, effect), clean few-shot accuracy. */
static int tr_finish1(tr_state *s, md_reader *rd, md_blob *next, md_error *err)
{
    int M = s->n_roles, T = s->n_test, K = s->n_control, nc = 1 + M + K, rc = MD_ERR, n_max = 0;
    for (int j = 0; j < T; j++)
        if (s->ds[s->test[j]].n_iv > n_max) n_max = s->ds[s->test[j]].n_iv;
    size_t npd = (size_t)M * T * nc * 2, nie = (size_t)M * M * T * 3, nfa = (size_t)M * T, nct = (size_t)M * T * K * 3;
    double *out = calloc(npd + nie + nfa + nct, sizeof(double));
    float *pt = malloc((size_t)n_max * sizeof(float)), *pf = malloc((size_t)n_max * sizeof(float));
    float *gt = malloc((size_t)n_max * sizeof(float)), *gf = malloc((size_t)n_max * sizeof(float));
    if (!out || !pt || !pf || !gt || !gf) {
        md_error_set(err, "out of memory");
        goto done;
    }
    double *pd = out, *ie = pd + npd, *fa = ie + nie, *ct = fa + nfa;
    char path[MD_PATH_MAX];
    for (int t = 0; t < M; t++)
        for (int j = 0; j < T; j++) {
            tr_ds *ds = &s->ds[s->test[j]];
            int n = ds->n_iv;
            for (int c = 0; c < nc; c++) {
                int64_t o[3] = {t, c, 0}, cnt[3] = {1, 1, n};
                snprintf(path, sizeof path, "interv/%s/p_true", ds->name);
                if (md_reader_f32(rd, path, o, cnt, pt, err) != MD_OK) goto done;
                snprintf(path, sizeof path, "interv/%s/p_false", ds->name);
                if (md_reader_f32(rd, path, o, cnt, pf, err) != MD_OK) goto done;
                if (c == 0) {
                    int right = 0;
                    for (int i = 0; i < n; i++) right += (pt[i] > pf[i]) == (ds->label[ds->iv[i]] != 0);
                    fa[(size_t)t * T + j] = (double)right / n;
                }
                for (int cls = 0; cls < 2; cls++) {
                    int ng = 0;
                    for (int i = 0; i < n; i++)
                        if ((ds->label[ds->iv[i]] != 0) == cls) gt[ng] = pt[i], gf[ng] = pf[i], ng++;
                    pd[(((size_t)t * T + j) * nc + c) * 2 + cls] = ng ? md_dir_pd(gt, gf, ng) : NAN;
                }
            }
            const double *clean = &pd[(((size_t)t * T + j) * nc + 0) * 2];
            for (int a = 0; a < M; a++)
                tr_ie(clean, &pd[(((size_t)t * T + j) * nc + 1 + a) * 2], &ie[(((size_t)a * M + t) * T + j) * 3]);
            for (int k = 0; k < K; k++)
                tr_ie(clean, &pd[(((size_t)t * T + j) * nc + 1 + M + k) * 2], &ct[(((size_t)t * T + j) * K + k) * 3]);
        }
    rc = md_blob_set(next, out, sizeof(double) * (npd + nie + nfa + nct), err);
done:
    free(out), free(pt), free(pf), free(gt), free(gf);
    return rc;
}

static int tr_finish(const md_kind_ctx *ctx, int stage, const md_blob *input, md_reader *rd, md_blob *next,
                     int *done, md_error *err)
{
    (void)input;
    *done = stage >= 2;
    if (*done) return MD_OK;
    tr_state *s = NULL;
    if (tr_state_build(ctx, &s, err) != MD_OK) return MD_ERR;
    int rc = stage == 0 ? tr_finish0(s, rd, next, err) : tr_finish1(s, rd, next, err);
    tr_state_free(s);
    return rc;
}

const md_kind md_kind_truth = {
    .name = "truth",
    .doc = "Truth direction per model (mass mean of per-dataset centred activations of bare statements at one "
           "layer and token), 1-D logistic probe, transfer accuracy of every source model's direction + probe on "
           "every target model, and the intervention effect of adding / subtracting mean(true) - mean(false) in "
           "a few-shot prompt: PD, IE(false->true), IE(true->false) per source x target (docs/methods.md, "
           "Truthfulness).",
    .keys = TRUTH_KEYS,
    .validate = tr_validate,
    .plan = tr_plan,
    .prepare = tr_prepare,
    .release_state = tr_state_free,
    .compute = tr_compute,
    .finish_stage = tr_finish,
    .unit_name = md_exp_name_unit,
};
