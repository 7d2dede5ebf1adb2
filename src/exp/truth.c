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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "exp/truth.h"
#include "mechdiff/csv.h"
#include "mechdiff/directions.h"
#include "mechdiff/exp_batch.h"
#include "mechdiff/exp_cost.h"
#include "mechdiff/exp_output.h"
#include "mechdiff/exp_units.h"
#include "mechdiff/exp_util.h"
#include "mechdiff/experiment.h"
#include "mechdiff/fewshot.h"
#include "mechdiff/forward.h"
#include "mechdiff/hf_config.h"
#include "mechdiff/model.h"
#include "mechdiff/tokcache.h"

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

#define TO(f) {#f, offsetof(md_truth_opts, f)}
const md_opt_bind MD_TRUTH_OPTS[] = {
    TO(models), TO(train_datasets), TO(test_datasets), TO(hook), TO(layer), TO(token), TO(intervention_layers),
    TO(intervention_positions), TO(coefficient), TO(n_shots), TO(shot_seed), TO(max_statements), TO(suffix),
    TO(true_word), TO(false_word), TO(batch), TO(control_directions), {0}};
#undef TO

void md_truth_free_state(void *p)
{
    md_truth_state *s = p;
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

int md_truth_layer(const md_truth_opts *o, int n_layers)
{
    int64_t l = o->layer;
    return l >= 0 ? (int)l : scaled(n_layers, 12);
}

/* Intervention layers [*lo, *hi] (inclusive); MD_ERR when the key is malformed. */
int md_truth_iv_layers(const md_truth_opts *o, int n_layers, int *lo, int *hi)
{
    const char *v = o->intervention_layers;
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
 * the few-shot prefix, drawn from all rows by
 * md_fewshot_draw (same seed, same prompts as the knowledge kind). */
static int tr_ds_load(const md_truth_opts *o, tr_ds *d, const char *path, int is_test, md_error *err)
{
    int cs, cl, *lab = NULL, *perm = NULL, rc = MD_ERR;
    const char **stmt = NULL;
    if (md_csv_read(&d->csv, path, err) != MD_OK) return MD_ERR;
    md_csv *c = d->csv;
    if ((cs = md_csv_column(c, "statement", err)) < 0 || (cl = md_csv_column(c, "label", err)) < 0) return MD_ERR;
    int N = c->n_rows, max = (int)o->max_statements;
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
        if (md_dir_split(N, 0.0, (uint64_t)o->shot_seed, d->n, 0, d->row, perm, err) != MD_OK)
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
    md_fewshot_opts fo = {.n_shots = (int)o->n_shots, .shot_seed = (int)o->shot_seed, .suffix = o->suffix,
                          .true_word = o->true_word, .false_word = o->false_word};
    int shots[TR_MAX_SHOTS], ns = 0;
    if (!(stmt = malloc((size_t)(N ? N : 1) * sizeof *stmt))) {
        md_error_set(err, "out of memory");
        goto done;
    }
    for (int r = 0; r < N; r++) stmt[r] = md_csv_cell(c, r, cs);
    if (md_fewshot_draw(stmt, lab, N, &fo, shots, TR_MAX_SHOTS, &ns, &d->few_shot, err) != MD_OK) goto done;
    if (ns < fo.n_shots) {
        md_error_set(err, "%s: too few true/false statements for %d few-shot examples", path, fo.n_shots);
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

const char *md_truth_stmt(const md_truth_state *s, int k, int i)
{
    const tr_ds *d = &s->ds[k];
    return md_csv_cell(d->csv, d->row[i], md_csv_column(d->csv, "statement", NULL));
}

/* Adds dataset `name` (once) and returns its index, or -1 with err set. */
static int tr_add_ds(const md_kind_ctx *ctx, md_truth_state *s, const char *key, const char *name, md_error *err)
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

/* intervention_positions: 1..TR_MAX_POS negative offsets from the end of
 * the statement, into s->pos. */
static int tr_parse_positions(md_truth_state *s, const char *where, md_error *err)
{
    const md_truth_opts *o = &s->opt;
    s->n_pos = o->intervention_positions->n;
    if (s->n_pos < 1 || s->n_pos > TR_MAX_POS)
        return md_error_set(err, "%s: key 'intervention_positions': %d positions (1 to %d allowed)", where,
                            s->n_pos, TR_MAX_POS);
    for (int i = 0; i < s->n_pos; i++) {
        const char *v = o->intervention_positions->list[i];
        char *end = NULL;
        long q = strtol(v, &end, 10);
        if (end == v || *end || q >= 0 || q < -4096)
            return md_error_set(err, "%s: key 'intervention_positions': '%s' is not a negative integer (from the "
                                "end of the statement; -1 = its last token)", where, v);
        s->pos[i] = (int)q;
    }
    return MD_OK;
}

/* train_datasets and test_datasets (each at least one) into s->ds (each
 * dataset once) and s->train / s->test (indices into s->ds, each once). */
static int tr_add_lists(const md_kind_ctx *ctx, md_truth_state *s, const char *where, md_error *err)
{
    const char *lists[2] = {"train_datasets", "test_datasets"};
    const md_value *vals[2] = {s->opt.train_datasets, s->opt.test_datasets};
    for (int l = 0; l < 2; l++) {
        int n = vals[l]->n;
        if (n < 1) return md_error_set(err, "%s: key '%s': at least one dataset is needed", where, lists[l]);
        for (int i = 0; i < n; i++) {
            int k = tr_add_ds(ctx, s, lists[l], vals[l]->list[i], err);
            if (k < 0) return MD_ERR;
            int *v = l ? s->test : s->train, *nv = l ? &s->n_test : &s->n_train, dup = 0;
            for (int j = 0; j < *nv; j++) dup |= v[j] == k;
            if (!dup) v[(*nv)++] = k;
        }
    }
    return MD_OK;
}

/* Loads every dataset of s->ds (tr_ds_load; the test ones with their
 * intervention rows). */
static int tr_load_datasets(const md_kind_ctx *ctx, md_truth_state *s, const char *where, md_error *err)
{
    for (int k = 0; k < s->n_ds; k++) {
        int is_test = 0;
        for (int j = 0; j < s->n_test; j++) is_test |= s->test[j] == k;
        const char *path = md_params_map_get(&ctx->job->top, "datasets", s->ds[k].name);
        if (tr_ds_load(&s->opt, &s->ds[k], path, is_test, err) != MD_OK)
            return md_error_prefix(err, "%s: dataset '%s'", where, s->ds[k].name);
    }
    return MD_OK;
}

/* The unit tables: stage 0 (md_dirseq_collect_units) and stage 1 (role x
 * test dataset x direction x batch). */
static int tr_build_units(md_truth_state *s, md_error *err)
{
    int nr = s->n_roles, c1 = 0, nc = 1 + nr + s->n_control, rows[TR_MAX_DS];
    for (int k = 0; k < s->n_ds; k++) rows[k] = s->ds[k].n;
    for (int j = 0; j < s->n_test; j++) c1 += nr * nc * md_exp_count_batches(s->ds[s->test[j]].n_iv, s->batch);
    if (md_dirseq_collect_units(&s->u0, nr, s->n_ds, rows, s->batch, err) != MD_OK ||
        md_exp_alloc_units(&s->u1, c1, err) != MD_OK)
        return MD_ERR;
    for (int t = 0; t < nr; t++)
        for (int j = 0; j < s->n_test; j++)
            for (int c = 0; c < nc; c++)
                for (int b = 0; b < md_exp_count_batches(s->ds[s->test[j]].n_iv, s->batch); b++)
                    md_exp_add_unit(&s->u1, t, j, c, b);
    return MD_OK;
}

int md_truth_build_state(const md_kind_ctx *ctx, md_truth_state **out, md_error *err)
{
    const md_params *top = &ctx->job->top;
    char where[MD_EXP_WHERE_MAX];
    md_exp_format_where(ctx, where, sizeof where);
    md_truth_state *s = calloc(1, sizeof *s);
    if (!s) return md_error_set(err, "out of memory");
    s->opt = *(const md_truth_opts *)ctx->opts;
    const md_truth_opts *o = &s->opt;
    if (md_exp_resolve_roles(ctx, where, s->roles, TR_MAX_ROLES, &s->n_roles, err) != MD_OK) goto fail;
    s->batch = (int)o->batch;
    s->hook = md_hook_point_parse(o->hook);
    s->token = (int)o->token;
    s->n_control = (int)o->control_directions;
    s->shot_seed = (uint64_t)o->shot_seed;
    if (tr_parse_positions(s, where, err) != MD_OK || tr_add_lists(ctx, s, where, err) != MD_OK ||
        tr_load_datasets(ctx, s, where, err) != MD_OK || tr_build_units(s, err) != MD_OK)
        goto fail;
    md_config cfg; /* the models pair (tr_validate): the first one's widths price the units */
    if (md_hf_config_load_dir(&cfg, md_params_map_get(top, "models", s->roles[0]), err) != MD_OK) {
        md_error_prefix(err, "%s: model '%s'", where, s->roles[0]);
        goto fail;
    }
    s->collect_share = md_exp_cost_blocks(&cfg, md_truth_layer(o, cfg.n_layers) + 1);
    s->logits = md_exp_cost_logits(&cfg);
    *out = s;
    return MD_OK;
fail:
    md_truth_free_state(s);
    return MD_ERR;
}

/* A truth prompt for md_exp_check_fits: a bare statement (few_shot NULL)
 * or the few-shot prompt of one. */
typedef struct tr_prompt {
    const md_tokenizer *tok;
    const char *few_shot, *stmt, *suffix;
} tr_prompt;

static int tr_count(void *arg, size_t *n, md_error *err)
{
    const tr_prompt *p = arg;
    int *ids = NULL, len = 0, end = 0;
    int rc = p->few_shot ? md_truth_encode_prompt(p->tok, p->few_shot, p->stmt, p->suffix, &ids, &len, &end, err)
                         : md_tokenizer_encode(p->tok, p->stmt, 1, &ids, n, err);
    if (p->few_shot) *n = (size_t)len;
    free(ids);
    return rc;
}

/* Every prompt of role m fits its model's context (md_exp_check_fits): the
 * bare statements (stage 0) and the few-shot prompts of the test
 * statements (stage 1); + 2 tokens for BOS/EOS. */
static int tr_check_context(const char *where, const md_truth_state *s, int m, const md_tokenizer *tok,
                            const md_config *c, md_error *err)
{
    md_exp_fit bare = {.cfg = c, .where = where, .role = s->roles[m], .advice = "shorter statements",
                       .count = tr_count};
    md_exp_fit shots = bare;
    shots.key = "n_shots", shots.advice = "use fewer n_shots or shorter statements";
    size_t sfx = strlen(s->opt.suffix);
    for (int k = 0; k < s->n_ds; k++) {
        const tr_ds *ds = &s->ds[k];
        int test = 0;
        for (int j = 0; j < s->n_test; j++) test |= s->test[j] == k;
        bare.key = test ? "test_datasets" : "train_datasets";
        for (int i = 0; i < ds->n; i++) {
            tr_prompt p = {tok, NULL, md_truth_stmt(s, k, i), NULL};
            if (md_exp_check_fits(&bare, &p, strlen(p.stmt) + 2, err, "dataset '%s': the statement of CSV row %d "
                                  "(0-based)", ds->name, ds->row[i]) != MD_OK)
                return MD_ERR;
        }
        for (int i = 0; ds->few_shot && i < ds->n_iv; i++) {
            tr_prompt p = {tok, ds->few_shot, md_truth_stmt(s, k, ds->iv[i]), s->opt.suffix};
            if (md_exp_check_fits(&shots, &p, strlen(ds->few_shot) + strlen(p.stmt) + sfx + 2, err,
                                  "dataset '%s': the few-shot prompt of CSV row %d (0-based)", ds->name,
                                  ds->row[ds->iv[i]]) != MD_OK)
                return MD_ERR;
        }
    }
    return MD_OK;
}

/* The layer keys for the models of one depth (n_layers; who names them:
 * md_exp_depth_roles, k of them), each failed check a line of err. */
static int tr_check_layers(const char *where, const md_truth_opts *o, int n_layers, const char *who, int k,
                           md_error *err)
{
    int rc = MD_OK, l = md_truth_layer(o, n_layers), lo, hi;
    if (l >= n_layers)
        rc = md_error_addf(err, "%s: key 'layer': %d but %s %s %d layers", where, l, who, k > 1 ? "have" : "has",
                           n_layers);
    if (md_truth_iv_layers(o, n_layers, &lo, &hi) != MD_OK || hi >= n_layers)
        rc = md_error_addf(err, "%s: key 'intervention_layers': '%s' is not -1, 'a' or 'a-b' with 0 <= a <= b < "
                                "%d (layers of %s)",
                           where, o->intervention_layers, n_layers, who);
    return rc;
}

/* Every check of every role, each failed one a line of err (md_error_add):
 * answer words, context, widths against the first role that loads, and the
 * layer keys (once per number of layers, naming the models of that depth). */
static int tr_validate(const md_kind_ctx *ctx, md_error *err)
{
    char where[MD_EXP_WHERE_MAX];
    md_exp_format_where(ctx, where, sizeof where);
    md_truth_state *s = NULL;
    if (md_truth_build_state(ctx, &s, err) != MD_OK) return MD_ERR;
    const md_truth_opts *o = &s->opt;
    int rc = MD_OK, r0 = -1, depth[TR_MAX_ROLES];
    md_config c0 = {0};
    md_tokenizer *tok0 = NULL; /* the first role that loads: the others pair with it */
    const char *const words[] = {o->true_word, o->false_word, NULL};
    md_error_clear(err);
    for (int i = 0; i < s->n_roles; i++) {
        md_config c;
        md_tokenizer *tok = NULL;
        md_error one;
        depth[i] = -1;
        if (md_exp_load_role(ctx, where, s->roles[i], &c, &tok, &one) != MD_OK) {
            md_tokcache_release(ctx->toks, tok);
            rc = md_error_add(err, &one);
            continue;
        }
        depth[i] = c.n_layers;
        if (md_exp_check_answer_words(ctx, where, s->roles[i], tok, o->true_word, o->false_word, &one) != MD_OK)
            rc = md_error_add(err, &one);
        if (tr_check_context(where, s, i, tok, &c, &one) != MD_OK) rc = md_error_add(err, &one);
        if (r0 < 0) {
            c0 = c, r0 = i, tok0 = tok;
            continue;
        }
        const md_params *top = &ctx->job->top;
        md_exp_model a = {s->roles[r0], md_params_map_get(top, "models", s->roles[r0]), &c0, tok0};
        md_exp_model b = {s->roles[i], md_params_map_get(top, "models", s->roles[i]), &c, tok};
        if (md_exp_check_pair(where, "models do not pair (directions cross between models)", &a, &b, words, 1,
                              &one) != MD_OK)
            rc = md_error_add(err, &one);
        md_tokcache_release(ctx->toks, tok);
    }
    md_tokcache_release(ctx->toks, tok0);
    for (int i = 0; i < s->n_roles; i++) {
        char who[512];
        int k = md_exp_depth_roles(s->roles, depth, s->n_roles, i, who, sizeof who);
        if (k && tr_check_layers(where, o, depth[i], who, k, err) != MD_OK) rc = MD_ERR;
    }
    md_truth_free_state(s);
    return rc;
}

size_t md_truth_count_extra(int M, int T)
{
    return 2 * (size_t)M + M + (size_t)M * M * T;
}

int md_truth_view_dirs(const md_blob *b, md_truth_dirs *v, md_error *err)
{
    md_dirseq_dirs *a = &v->all;
    if (md_dirseq_view_dirs(b, "truth", a, err) != MD_OK) return MD_ERR;
    size_t M = (size_t)a->M, fixed = md_truth_count_extra(a->M, 0);
    if (a->L != 1 || a->P != 1 || (size_t)a->n_extra < fixed || ((size_t)a->n_extra - fixed) % (M * M))
        return md_error_set(err, "truth: stage input does not hold one direction per model and its probes");
    v->M = a->M, v->d = a->d, v->T = (int)(((size_t)a->n_extra - fixed) / (M * M));
    v->theta = a->raw, v->norm = a->norm, v->cos = a->cos;
    v->probe = a->extra;
    v->train_acc = v->probe + 2 * M;
    v->acc = v->train_acc + M;
    return MD_OK;
}

/* Control direction k: a seeded random unit vector, v[d] (caller's); the
 * intervention scales it to the target model's own direction norm. */
void md_truth_control_unit(const md_truth_state *s, int k, int d, double *v)
{
    md_dir_random_unit(v, d, md_dir_mix(s->shot_seed ^ (0x636f6e74726f6cull + (uint64_t)k)));
}

/* Stage 0 unit: activations of one batch of bare statements. */
static int tr_acts(const md_kind_ctx *ctx, md_worker *w, void *state, int64_t unit, md_result *out, md_error *err)
{
    (void)ctx;
    const md_truth_state *s = state;
    int m = s->u0.key[unit][0], k = s->u0.key[unit][1], r0;
    const tr_ds *ds = &s->ds[k];
    int n = md_exp_slice_batch(ds->n, s->batch, s->u0.key[unit][2], &r0);
    md_model *M = NULL;
    if (md_worker_model(w, s->roles[m], &M, err) != MD_OK) return MD_ERR;
    int layer = md_truth_layer(&s->opt, M->cfg.n_layers), rc = MD_ERR;
    int **ids = calloc((size_t)n, sizeof(int *)), *len = calloc((size_t)n, sizeof(int));
    if (!ids || !len) {
        md_error_set(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        size_t nid = 0;
        if (md_tokenizer_encode(M->tok, md_truth_stmt(s, k, r0 + i), 1, &ids[i], &nid, err) != MD_OK) goto done;
        len[i] = (int)nid;
    }
    char path[MD_PATH_MAX];
    snprintf(path, sizeof path, "acts/%s/%s", s->roles[m], ds->name);
    md_dirseq_at at = {.hook = s->hook, .layers = &layer, .n_layers = 1, .positions = &s->token, .n_pos = 1, .rank = 2};
    rc = md_dirseq_put_acts(M, ids, len, n, &at, path, r0, out, err);
done:
    if (rc != MD_OK) md_error_prefix(err, "truth activations (%s, %s, statements %d..)", s->roles[m], ds->name, r0);
    md_exp_free_ids(ids, n);
    free(len);
    return rc;
}

/* Encodes "<few_shot><statement><suffix>" and finds the statement's last
 * token: the encoding of "<few_shot><statement>" must be a prefix of the
 * prompt's (else the statement's end is len − suffix tokens). */
int md_truth_encode_prompt(const md_tokenizer *tok, const char *few_shot, const char *stmt, const char *suffix,
                           int **ids, int *len, int *stmt_end, md_error *err)
{
    size_t cap = strlen(few_shot) + strlen(stmt) + strlen(suffix) + 1, np = 0, nh = 0, ns = 0;
    char *text = malloc(cap);
    int *head = NULL, *sfx = NULL, rc = MD_ERR;
    if (!text) return md_error_set(err, "out of memory");
    snprintf(text, cap, "%s%s%s", few_shot, stmt, suffix);
    if (md_tokenizer_encode(tok, text, 1, ids, &np, err) != MD_OK) goto done;
    snprintf(text, cap, "%s%s", few_shot, stmt);
    if (md_tokenizer_encode(tok, text, 1, &head, &nh, err) != MD_OK) goto done;
    if (md_tokenizer_encode(tok, suffix, 0, &sfx, &ns, err) != MD_OK) goto done;
    *len = (int)np;
    if (nh <= np && !memcmp(head, *ids, nh * sizeof(int))) *stmt_end = (int)nh - 1;
    else *stmt_end = (int)np - (int)ns - 1;
    rc = MD_OK;
done:
    free(text), free(head), free(sfx);
    return rc;
}

/* The vector condition cond adds (1 + a: source a's direction; after the
 * models: a random control unit vector x the target t's own direction
 * norm) into vec[d]; nothing for cond 0 (clean). An error when the
 * directions' width is not d. */
static int tr_condition_vec(const md_truth_state *s, const md_truth_dirs *v, int t, int cond, int d, float *vec,
                            md_error *err)
{
    int src = cond > 0 && cond <= s->n_roles ? cond - 1 : 0;
    if (md_dirseq_source_vec(&v->all, src, 0, 1, d, s->roles[t], vec, err) != MD_OK) return MD_ERR;
    if (cond > s->n_roles) {
        double *u = malloc((size_t)d * sizeof(double));
        if (!u) return md_error_set(err, "out of memory");
        md_truth_control_unit(s, cond - 1 - s->n_roles, d, u);
        for (int q = 0; q < d; q++) vec[q] = (float)(u[q] * v->norm[t]);
        free(u);
    }
    return MD_OK;
}

/* Hooks adding coef x vec at layers [lo, hi] and the statement positions of
 * each prompt (added to false, subtracted from true statements): one
 * batched add hook per (layer, position offset) for the whole batch, with
 * row i of its vectors = -vec for a true statement, vec for a false one
 * ((-c) v and c (-v) round alike: the numbers of one hook per prompt). *hk
 * is one malloc'd block (free(*hk) frees it): the *nh hooks, then the
 * signed vectors [n][d] and the positions [nh][n] they point to. */
static int tr_condition_hooks(const md_truth_state *s, const tr_ds *ds, int r0, int n, const int *pad, const int *end,
                              int lo, int hi, const float *vec, int d, double coef, md_hook **hk, int *nh,
                              md_error *err)
{
    size_t nhk = (size_t)(hi - lo + 1) * s->n_pos;
    *hk = malloc(nhk * sizeof(md_hook) + (size_t)n * d * sizeof(float) + nhk * n * sizeof(int));
    if (!*hk) return md_error_set(err, "out of memory");
    float *sv = (float *)(*hk + nhk);
    int *pos = (int *)(sv + (size_t)n * d);
    for (int i = 0; i < n; i++) {
        int lab = ds->label[ds->iv[r0 + i]];
        for (int q = 0; q < d; q++) sv[(size_t)i * d + q] = lab ? -vec[q] : vec[q];
    }
    *nh = 0;
    for (int l = lo; l <= hi; l++)
        for (int q = 0; q < s->n_pos; q++, (*nh)++) {
            int *at = pos + (size_t)*nh * n;
            for (int i = 0; i < n; i++) at[i] = pad[i] + end[i] + 1 + s->pos[q];
            (*hk)[*nh] = (md_hook){.point = s->hook, .op = MD_HOOK_ADD, .layer = l, .seq = MD_ALL, .pos = MD_ALL,
                                   .vec = sv, .vec_per_seq = 1, .coef = (float)coef, .seq_pos = at};
        }
    return MD_OK;
}

/* Encodes the unit's few-shot prompts: ids[i], len[i], end[i] (the
 * statement's last token), checking every intervention position. */
static int tr_encode_batch(const md_truth_state *s, const md_model *M, const char *suffix, int j, int r0, int n,
                           int **ids, int *len, int *end, md_error *err)
{
    const tr_ds *ds = &s->ds[s->test[j]];
    for (int i = 0; i < n; i++) {
        int si = ds->iv[r0 + i];
        if (md_truth_encode_prompt(M->tok, ds->few_shot, md_truth_stmt(s, s->test[j], si), suffix, &ids[i], &len[i],
                                   &end[i], err) != MD_OK)
            return MD_ERR;
        for (int q = 0; q < s->n_pos; q++)
            if (end[i] + 1 + s->pos[q] < 1)
                return md_error_set(err, "statement %d: intervention position %d is before the prompt's start", si,
                                    s->pos[q]);
    }
    return MD_OK;
}

/* P(id_t), P(id_f) of the softmax over the full vocabulary (double) of each
 * of n rows of logits [n][V]. */
static void tr_answer_probs(const float *logits, int n, int V, int id_t, int id_f, float *pt, float *pf)
{
    for (int i = 0; i < n; i++) {
        const float *lg = logits + (size_t)i * V;
        double mx = lg[0], z = 0;
        for (int q = 1; q < V; q++)
            if (lg[q] > mx) mx = lg[q];
        for (int q = 0; q < V; q++) z += exp((double)lg[q] - mx);
        pt[i] = (float)(exp((double)lg[id_t] - mx) / z);
        pf[i] = (float)(exp((double)lg[id_f] - mx) / z);
    }
}

/* Stage 1 unit: clean or intervened P(TRUE), P(FALSE) of one batch. */
static int tr_interv(const md_kind_ctx *ctx, md_worker *w, void *state, const md_blob *input, int64_t unit,
                     md_result *out, md_error *err)
{
    (void)ctx;
    md_truth_state *s = state;
    const md_truth_opts *o = &s->opt;
    md_truth_dirs v;
    if (md_truth_view_dirs(input, &v, err) != MD_OK) return MD_ERR;
    const int *key = s->u1.key[unit];
    int t = key[0], j = key[1], cond = key[2], r0;
    tr_ds *ds = &s->ds[s->test[j]];
    int n = md_exp_slice_batch(ds->n_iv, s->batch, key[3], &r0);
    md_model *M = NULL;
    if (md_worker_model(w, s->roles[t], &M, err) != MD_OK) return MD_ERR;
    int d = M->cfg.d_model, V = M->cfg.vocab_size, rc = MD_ERR, T = 0, nh = 0, lo = 0, hi = 0;
    md_truth_iv_layers(o, M->cfg.n_layers, &lo, &hi);
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
    int id_t = md_tokenizer_single_token(M->tok, o->true_word, &e2);
    int id_f = md_tokenizer_single_token(M->tok, o->false_word, &e2);
    if (id_t < 0 || id_f < 0) {
        md_error_set(err, "model '%s': %s", s->roles[t], e2.msg);
        goto done;
    }
    if (tr_encode_batch(s, M, o->suffix, j, r0, n, ids, len, end, err) != MD_OK ||
        md_exp_pad_batch(M, ids, len, n, &T, &pad, &tok, err) != MD_OK ||
        tr_condition_vec(s, &v, t, cond, d, vec, err) != MD_OK)
        goto done;
    if (cond > 0 && tr_condition_hooks(s, ds, r0, n, pad, end, lo, hi, vec, d, o->coefficient, &hk, &nh, err) !=
                        MD_OK)
        goto done;
    if (md_kvcache_create(&kc, M, n, T, err) != MD_OK) goto done;
    md_forward f;
    md_forward_init_batch(&f, M, n, T, tok, pad, kc);
    md_forward_set_hooks(&f, hk, nh);
    md_forward_set_logits(&f, MD_LOGITS_LAST, logits, NULL, 0);
    if (md_model_forward(M, &f, err) != MD_OK) goto done;
    tr_answer_probs(logits, n, V, id_t, id_f, pt, pf);
    char path[MD_PATH_MAX];
    int64_t at[3] = {t, cond, r0}, c[3] = {1, 1, n};
    snprintf(path, sizeof path, "interv/%s/p_true", ds->name);
    if (md_result_put(out, path, 3, at, c, pt, (size_t)n * sizeof(float), err) != MD_OK) goto done;
    snprintf(path, sizeof path, "interv/%s/p_false", ds->name);
    rc = md_result_put(out, path, 3, at, c, pf, (size_t)n * sizeof(float), err);
done:
    if (rc != MD_OK)
        md_error_prefix(err, "truth intervention (target %s, %s, condition %d, statements %d..)", s->roles[t],
                        ds->name, cond, r0);
    md_kvcache_free(kc);
    md_exp_free_ids(ids, n);
    free(len), free(end), free(pad), free(tok), free(vec), free(logits), free(pt), free(pf), free(hk);
    return rc;
}

static int tr_build(const md_kind_ctx *ctx, void **state, md_error *err)
{
    return md_truth_build_state(ctx, (md_truth_state **)state, err);
}

/* Units of stage 0 (activation batches) and 1 (intervention batches). */
static int64_t tr_units(const void *state, int stage)
{
    const md_truth_state *s = state;
    return stage == 0 ? s->u0.n : s->u1.n;
}

/* The cost of a unit (progress.h, "ETA by cost"): its rows, padded to the
 * longest, a statement at 4 bytes a token with its BOS (exp_cost.h). A
 * collect forward reads the bare statement and stops after the layer it
 * reads ((layer + 1) / L of a pass); an intervention's prompt has the
 * dataset's few-shot prefix before it and the suffix after it, and ends in
 * the logits of its last position. */
static double tr_unit_cost(const void *state, int stage, int64_t unit)
{
    const md_truth_state *s = state;
    const int *key = stage == 0 ? s->u0.key[unit] : s->u1.key[unit];
    int k = stage == 0 ? key[1] : s->test[key[1]];
    const tr_ds *ds = &s->ds[k];
    int first, rows = md_exp_slice_batch(stage == 0 ? ds->n : ds->n_iv, s->batch, key[stage == 0 ? 2 : 3], &first);
    double longest = 0;
    for (int i = first; i < first + rows; i++) {
        double t = md_exp_cost_text_tokens(md_truth_stmt(s, k, stage == 0 ? i : ds->iv[i]));
        longest = t > longest ? t : longest;
    }
    if (stage == 0) return rows * longest * s->collect_share;
    double around = (double)(strlen(ds->few_shot ? ds->few_shot : "") + strlen(s->opt.suffix)) / 4;
    return rows * (longest + around + s->logits);
}

static const md_dirseq TRUTH_SEQ = {.kind = "truth", .build = tr_build, .release = md_truth_free_state,
                                    .collect = tr_acts, .intervene = tr_interv, .directions = md_truth_directions,
                                    .scores = md_truth_scores, .units = tr_units,
                                    .unit_cost = tr_unit_cost};

const md_kind md_kind_truth = {
    .name = "truth",
    .doc = "Truth direction per model (mass mean of per-dataset centred activations of bare statements at one "
           "layer and token), 1-D logistic probe, transfer accuracy of every source model's direction + probe on "
           "every target model, and the intervention effect of adding / subtracting mean(true) - mean(false) in "
           "a few-shot prompt: PD, IE(false->true), IE(true->false) per source x target (docs/methods.md, "
           "Truthfulness).",
    .keys = TRUTH_KEYS,
    .opts = MD_TRUTH_OPTS,
    .opts_size = sizeof(md_truth_opts),
    .outputs = MD_TRUTH_OUTPUTS,
    .validate = tr_validate,
    .plan = md_truth_plan,
    .data = &TRUTH_SEQ,
    .prepare = md_dirseq_prepare,
    .release_state = md_truth_free_state,
    .compute = md_dirseq_compute,
    .finish_stage = md_dirseq_finish,
    .unit_name = md_exp_name_unit,
    .estimate = md_dirseq_estimate,
};
