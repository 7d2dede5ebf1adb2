/* refusal.c — the `refusal` kind (docs/methods.md, "Refusal"): a refusal
 * direction per model, its cosine across models, and its effect on greedy
 * generation within and across models; with `sweep: true`, the refusal score
 * vs the layer and position of the direction instead, to pick them as Arditi
 * et al. do. `kind: refusal_sweep` is an alias: refusal with sweep: true,
 * its keys `layers` / `positions` being sweep_layers / sweep_positions (and
 * n_train / n_test defaulting to 64 / 32).
 *
 * The direction sequence of dirseq.h; stages and units (all defined by the
 * job, never by ranks):
 *   0  activations   unit = (model, set ∈ {harmful, harmless}, batch of train
 *                    rows): the hook point of each templated prompt at
 *                    (layer, position), or at every candidate (sweep)
 *   1  generations   point: unit = (target model, intervention, set, batch of
 *                    test rows); interventions: none; ablate_<src> (x -=
 *                    (x·r̂)r̂ at resid_pre, resid_mid, resid_post of every
 *                    layer and position); add_<src> (x += c·v at one layer,
 *                    every position; harmless set only).
 *                    sweep: unit = (model, candidate layer, candidate
 *                    position, batch of harmful test rows), that candidate's
 *                    direction ablated
 *   2  summary       one unit; the plan writes the scores read back
 * finish_stage(0) reads the activations back and computes the directions
 * (mean(harmful) − mean(harmless), normalised), finish_stage(1) the scores.
 *
 * Output (/<name>/...), point mode:
 *   split/<set>/instruction [row] str, split/<set>/csv_row [row] i32   (train rows, then test)
 *   acts/<model>/<set> [row, hidden] f32                                stage 0
 *   direction [model, hidden] f64 (unit), mean_diff [model, hidden] f64,
 *   mean_diff_norm [model] f64, cosine [model, model] f64               stage 1 plan
 *   gen/<set>/<target>/<intervention>/text [row] str, refused [row] i32 stage 1
 *   refusal_score [target, intervention, set] f64 (NaN = not run)       stage 2 plan
 * sweep mode:
 *   split/... as above
 *   acts/<model>/<set> [row, layer, position, hidden] f32              stage 0
 *   direction [model, layer, position, hidden] f64 (unit; 0 where the two
 *             means coincide, e.g. layer 0 at a template token)          stage 1 plan
 *   refused [model, layer, position, row] i32                          stage 1
 *   gen/<model>/layer<l>_pos<p>/text [row] str                         stage 1
 *   score [model, layer, position] f64 (NaN where the direction is 0;
 *         attributes best_<model>: the lowest, reported only)          stage 2 plan */
#include "exp/refusal.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/exp_cost.h"
#include "mechdiff/exp_units.h"
#include "mechdiff/exp_util.h"
#include "mechdiff/experiment.h"
#include "mechdiff/hf_config.h"

/* Keys of both spellings (refusal and its refusal_sweep alias), same meaning
 * and default. */
#define KEY_SETS                                                                                                      \
    {.name = "harmful", .type = MD_KEY_STRING, .def = "harmful",                                                     \
     .doc = "Name (top-level datasets map) of the harmful instruction CSV (column `instruction`)."},                 \
    {.name = "harmless", .type = MD_KEY_STRING, .def = "harmless",                                                   \
     .doc = "Name (top-level datasets map) of the harmless instruction CSV (column `instruction`)."},               \
    {.name = "column", .type = MD_KEY_STRING, .def = "instruction",                                                  \
     .doc = "CSV column holding the instruction (AdvBench harmful_behaviors.csv: goal)."},                          \
    {.name = "test_fraction", .type = MD_KEY_FLOAT, .def = "0.2", .min = 0.01, .max = 0.99,                          \
     .doc = "Fraction of each set held out for generation (docs/methods.md: 0.2)."},                                \
    {.name = "split_seed", .type = MD_KEY_INT, .def = "42", .min = 0, .max = 2147483647,                             \
     .doc = "Seed of the train/test shuffle (docs/methods.md: 42; the same split with and without the sweep for "    \
            "the same seed and sizes)."}
#define KEY_TEMPLATES                                                                                                 \
    {.name = "templates", .type = MD_KEY_MAP, .def = "",                                                             \
     .doc = "Prompt template per role: 'base' (\"User: {instruction}\\nAssistant:\"), 'chat' (the model's own chat "  \
            "template), a template name (llama3, llama2, mistral, tulu) or a format string with {instruction}. "     \
            "Default: 'base' for roles whose name contains 'base', else 'chat'."},                                 \
    {.name = "hook", .type = MD_KEY_STRING, .def = "resid_pre", .allowed = "resid_pre|resid_mid|resid_post",        \
     .doc = "Hook point of the direction (docs/methods.md: resid_pre)."}
#define KEY_GENERATION                                                                                                \
    {.name = "max_new_tokens", .type = MD_KEY_INT, .def = "16", .min = 1, .max = 4096,                               \
     .doc = "Greedy new tokens per generation (docs/methods.md: 16)."},                                             \
    {.name = "batch", .type = MD_KEY_INT, .def = "16", .min = 1, .max = 4096,                                        \
     .doc = "Instructions per work unit (one batched forward / generation)."}
#define DOC_LAYERS "Candidate layers of the sweep: 'all' (every layer; the models must have as many) or a list of layer indices."
#define DOC_POSITIONS "Candidate prompt positions of the sweep, counted from the end (negative)."

static const md_key REFUSAL_KEYS[] = {
    {.name = "models", .type = MD_KEY_STRLIST, .def = "", .doc = "Roles compared (empty = every role in `models`)."},
    KEY_SETS,
    {.name = "n_train", .type = MD_KEY_INT, .def = "128", .min = 1, .max = 1e7,
     .doc = "Train instructions per set (direction)."},
    {.name = "n_test", .type = MD_KEY_INT, .def = "100", .min = 1, .max = 1e7,
     .doc = "Test instructions per set (generation; sweep: harmful test instructions per candidate)."},
    KEY_TEMPLATES,
    {.name = "layer", .type = MD_KEY_INT, .def = "-1", .min = -1, .max = 4096,
     .doc = "Layer of the direction (-1 = round(11/32 of the layers): Llama-3.1-8B 11). Not used by the sweep."},
    {.name = "position", .type = MD_KEY_INT, .def = "-1", .min = -4096, .max = -1,
     .doc = "Prompt position of the direction, counted from the end (-1 = last token). Not used by the sweep."},
    {.name = "positions", .type = MD_KEY_MAP, .def = "",
     .doc = "Per-role override of `position` (docs/methods.md, Llama-3.1: {base: -4, instruct: -2})."},
    {.name = "addition_layer", .type = MD_KEY_INT, .def = "-1", .min = -1, .max = 4096,
     .doc = "Layer of activation addition (-1 = the direction's layer)."},
    {.name = "coefficients", .type = MD_KEY_MAP, .def = "",
     .doc = "Activation-addition coefficient per target role (docs/methods.md: base 1.2, instruct 2.4, SFT 1.8); "
            "missing roles use 1.0."},
    {.name = "addition_vector", .type = MD_KEY_STRING, .def = "unit", .allowed = "unit|mean_diff",
     .doc = "What the coefficient multiplies: the unit direction r̂ (docs/methods.md) or the raw mean difference."},
    KEY_GENERATION,
    {.name = "sweep", .type = MD_KEY_BOOL, .def = "false",
     .doc = "Sweep instead: a direction per model and candidate (sweep_layers x sweep_positions), the refusal "
            "rate of harmful test prompts with each ablated (`score`), the lowest per model reported as "
            "attribute best_<model> of `score`; then set layer/positions from it and sweep: false."},
    {.name = "sweep_layers", .type = MD_KEY_STRLIST, .def = "all", .doc = DOC_LAYERS},
    {.name = "sweep_positions", .type = MD_KEY_STRLIST, .def = "-1,-2,-3,-4,-5", .doc = DOC_POSITIONS},
    {0}};

/* The alias `kind: refusal_sweep`: the keys it has always had. */
static const md_key SWEEP_KEYS[] = {
    {.name = "models", .type = MD_KEY_STRLIST, .def = "", .doc = "Roles swept (empty = every role in `models`)."},
    KEY_SETS,
    {.name = "n_train", .type = MD_KEY_INT, .def = "64", .min = 1, .max = 1e7,
     .doc = "Train instructions per set (directions)."},
    {.name = "n_test", .type = MD_KEY_INT, .def = "32", .min = 1, .max = 1e7,
     .doc = "Harmful test instructions generated per candidate."},
    KEY_TEMPLATES,
    {.name = "layers", .type = MD_KEY_STRLIST, .def = "all", .doc = DOC_LAYERS " (refusal: sweep_layers)"},
    {.name = "positions", .type = MD_KEY_STRLIST, .def = "-1,-2,-3,-4,-5", .doc = DOC_POSITIONS
                                                                                  " (refusal: sweep_positions)"},
    KEY_GENERATION,
    {0}};

#define RO(f) {#f, offsetof(md_refusal_opts, f)}
#define RO_SHARED                                                                                                     \
    RO(models), RO(harmful), RO(harmless), RO(column), RO(test_fraction), RO(split_seed), RO(n_train), RO(n_test),   \
        RO(templates), RO(hook), RO(max_new_tokens), RO(batch)
static const md_opt_bind REFUSAL_OPTS[] = {
    RO_SHARED,           RO(layer), RO(position), RO(positions), RO(addition_layer), RO(coefficients),
    RO(addition_vector), RO(sweep), RO(sweep_layers), RO(sweep_positions), {0}};
static const md_opt_bind SWEEP_OPTS[] = {
    RO_SHARED, {"layers", offsetof(md_refusal_opts, sweep_layers)},
    {"positions", offsetof(md_refusal_opts, sweep_positions)}, {0}};
#undef RO_SHARED
#undef RO

const md_kind md_kind_refusal_sweep;

/* The experiment's options (either spelling, bound by the caller of the
 * kind: ctx->opts) and whether it sweeps. */
static int rf_opts_of(const md_kind_ctx *ctx, md_refusal_opts *o)
{
    *o = *(const md_refusal_opts *)ctx->opts;
    return o->sweep || ctx->exp->impl == &md_kind_refusal_sweep;
}

int md_refusal_layer(const md_refusal_opts *o, int n_layers, int addition)
{
    int64_t l = addition ? o->addition_layer : o->layer;
    if (l < 0 && addition) l = o->layer;
    if (l < 0) l = (int64_t)floor(n_layers * 11.0 / 32.0 + 0.5);
    return (int)l;
}

int md_refusal_position(const md_refusal_opts *o, const char *role)
{
    const char *v = md_value_map_get(o->positions, role);
    return v ? atoi(v) : (int)o->position;
}

void md_refusal_interv_name(const md_refusal_state *s, int iv, char *buf, size_t n)
{
    if (iv == 0) snprintf(buf, n, "none");
    else if (iv <= s->n_roles) snprintf(buf, n, "ablate_%s", s->roles[iv - 1]);
    else snprintf(buf, n, "add_%s", s->roles[iv - 1 - s->n_roles]);
}

/* Integer item of a list key; MD_ERR with err naming the key and the item. */
static int parse_item(const char *where, const char *key, const char *v, long lo, long hi, int *out, md_error *err)
{
    char *end = NULL;
    long x = strtol(v, &end, 10);
    if (!*v || !end || *end || x < lo || x > hi)
        return md_error_set(err, "%s: key '%s': '%s' is not an integer in [%ld, %ld]", where, key, v, lo, hi);
    *out = (int)x;
    return MD_OK;
}

/* Sweep mode: the candidate layers and positions ('all' = every layer of
 * the first model). kl / kp: the keys' names in the experiment's spelling. */
static int rf_candidates(const md_kind_ctx *ctx, const char *where, md_refusal_state *s, md_error *err)
{
    const md_refusal_opts *o = &s->opt;
    const char *kl = s->opt.sweep ? "sweep_layers" : "layers", *kp = s->opt.sweep ? "sweep_positions" : "positions";
    md_config c;
    if (md_hf_config_load_dir(&c, md_params_map_get(&ctx->job->top, "models", s->roles[0]), err) != MD_OK)
        return md_error_prefix(err, "%s: model '%s'", where, s->roles[0]);
    int nl = o->sweep_layers->n, np = o->sweep_positions->n;
    int all = nl == 1 && strcmp(o->sweep_layers->list[0], "all") == 0;
    if (nl < 1) return md_error_set(err, "%s: key '%s': empty; use 'all' or a list of layers", where, kl);
    if (np < 1) return md_error_set(err, "%s: key '%s': empty; list at least one negative position", where, kp);
    s->n_layers = all ? c.n_layers : nl;
    s->n_pos = np;
    if ((int64_t)s->n_layers * s->n_pos > MD_REFUSAL_MAX_CAND)
        return md_error_set(err, "%s: keys '%s'/'%s': %d x %d candidates, at most %d", where, kl, kp, s->n_layers,
                            s->n_pos, MD_REFUSAL_MAX_CAND);
    s->layers = malloc((size_t)s->n_layers * sizeof(int));
    s->positions = malloc((size_t)s->n_pos * sizeof(int));
    if (!s->layers || !s->positions) return md_error_set(err, "out of memory");
    for (int i = 0; i < s->n_layers; i++) {
        if (all) s->layers[i] = i;
        else if (parse_item(where, kl, o->sweep_layers->list[i], 0, c.n_layers - 1, &s->layers[i], err) != MD_OK)
            return MD_ERR;
    }
    for (int i = 0; i < s->n_pos; i++)
        if (parse_item(where, kp, o->sweep_positions->list[i], -4096, -1, &s->positions[i], err) != MD_OK)
            return MD_ERR;
    return MD_OK;
}

void md_refusal_free_state(void *state)
{
    md_refusal_state *s = state;
    if (!s) return;
    md_refusal_free_sets(s);
    free(s->layers), free(s->positions), free(s->prompt_tokens);
    md_exp_free_units(&s->acts);
    md_exp_free_units(&s->gen);
    free(s);
}

/* What the units' costs need from the first model's widths (the models
 * pair: rf_validate): the blocks a collect forward runs, up to the deepest
 * layer it reads, and the logits of a position. */
static int rf_costs(const md_kind_ctx *ctx, const char *where, md_refusal_state *s, md_error *err)
{
    md_config c;
    if (md_hf_config_load_dir(&c, md_params_map_get(&ctx->job->top, "models", s->roles[0]), err) != MD_OK)
        return md_error_prefix(err, "%s: model '%s'", where, s->roles[0]);
    int deepest = s->sweep ? 0 : md_refusal_layer(&s->opt, c.n_layers, 0);
    for (int i = 0; s->sweep && i < s->n_layers; i++)
        if (s->layers[i] > deepest) deepest = s->layers[i];
    s->collect_share = md_exp_cost_blocks(&c, deepest + 1);
    s->logits = md_exp_cost_logits(&c);
    s->block_macs = md_exp_cost_block_macs(&c);
    return MD_OK;
}

int md_refusal_build_state(const md_kind_ctx *ctx, md_refusal_state **out, md_error *err)
{
    char where[MD_EXP_WHERE_MAX];
    md_exp_format_where(ctx, where, sizeof where);
    md_refusal_state *s = calloc(1, sizeof *s);
    if (!s) return md_error_set(err, "out of memory");
    s->sweep = rf_opts_of(ctx, &s->opt);
    s->n_train = (int)s->opt.n_train;
    s->n_test = (int)s->opt.n_test;
    s->batch = (int)s->opt.batch;
    s->hook = md_hook_point_parse(s->opt.hook);
    const int rows[2] = {s->n_train, s->n_train};
    if (md_exp_resolve_roles(ctx, where, s->roles, MD_REFUSAL_MAX_ROLES, &s->n_roles, err) != MD_OK ||
        (s->sweep && rf_candidates(ctx, where, s, err) != MD_OK) || md_refusal_load_sets(ctx, where, s, err) != MD_OK ||
        md_dirseq_collect_units(&s->acts, s->n_roles, 2, rows, s->batch, err) != MD_OK ||
        md_refusal_gen_units(s, err) != MD_OK || rf_costs(ctx, where, s, err) != MD_OK) {
        md_refusal_free_state(s);
        return MD_ERR;
    }
    *out = s;
    return MD_OK;
}

/* Point mode: the positions and coefficients for model i, each failed check
 * a line of err (md_error_addf). */
static void rf_check_point(const char *where, const md_refusal_state *s, int i, md_error *err)
{
    const md_refusal_opts *o = &s->opt;
    const char *role = s->roles[i];
    const char *pv = md_value_map_get(o->positions, role);
    if (pv && (atoi(pv) >= 0 || atoi(pv) < -4096))
        md_error_addf(err, "%s: key 'positions': '%s' for role '%s' must be a negative integer (from the end)", where,
                      pv, role);
    const char *cv = md_value_map_get(o->coefficients, role);
    char *end = NULL;
    if (cv && (strtod(cv, &end), !end || *end))
        md_error_addf(err, "%s: key 'coefficients': '%s' for role '%s' is not a number", where, cv, role);
}

/* The layer keys for the models of one depth (n_layers; who names them:
 * md_exp_depth_roles, k of them): point mode the direction's and the
 * addition's layer, sweep mode every candidate layer and `all` against the
 * depth of role i0 (the first that loaded, d0). Each failed check a line of
 * err. */
static void rf_check_layers(const char *where, const md_refusal_state *s, int n_layers, const char *who, int k,
                            int i0, int d0, md_error *err)
{
    const char *has = k > 1 ? "have" : "has";
    if (!s->sweep) {
        int l = md_refusal_layer(&s->opt, n_layers, 0), la = md_refusal_layer(&s->opt, n_layers, 1);
        if (l >= n_layers || la >= n_layers)
            md_error_addf(err, "%s: key 'layer'/'addition_layer': %d/%d but %s %s %d layers", where, l, la, who, has,
                          n_layers);
        return;
    }
    const char *kl = s->opt.sweep ? "sweep_layers" : "layers";
    const md_value *lv = s->opt.sweep_layers;
    if (lv->n == 1 && strcmp(lv->list[0], "all") == 0 && n_layers != d0)
        md_error_addf(err, "%s: key '%s': 'all' but model '%s' has %d layers and %s %d; list the layers", where, kl,
                      s->roles[i0], d0, who, n_layers);
    for (int li = 0; li < s->n_layers; li++)
        if (s->layers[li] >= n_layers) {
            md_error_addf(err, "%s: key '%s': %d but %s %s %d layers", where, kl, s->layers[li], who, has, n_layers);
            break;
        }
}

/* Every key of the per-role maps (templates, positions, coefficients) is a
 * role of the job's models map: a misspelt role would silently fall back to
 * the default. */
static void rf_check_map_roles(const md_kind_ctx *ctx, const char *where, const md_refusal_state *s, md_error *err)
{
    const char *names[3] = {"templates", "positions", "coefficients"};
    const md_value *maps[3] = {s->opt.templates, s->opt.positions, s->opt.coefficients};
    const md_params *top = &ctx->job->top;
    char roles[256] = "";
    for (int r = 0, used = 0; r < md_params_count(top, "models") && used < (int)sizeof roles; r++)
        used += snprintf(roles + used, sizeof roles - (size_t)used, "%s%s", r ? ", " : "",
                         md_params_item(top, "models", r));
    for (int m = 0; m < 3; m++) {
        if (!maps[m] || maps[m]->key->type != MD_KEY_MAP) continue;
        for (int k = 0; k < maps[m]->n; k++)
            if (!md_params_map_get(top, "models", maps[m]->list[k]))
                md_error_addf(err, "%s: key '%s': '%s' is not a role of the job's models map (%s)", where, names[m],
                              maps[m]->list[k], roles);
    }
}

/* Role i's model pairs with role i0's (c0, tok0): directions cross between
 * them (md_exp_check_pair); a failed check is a line of err. */
static void rf_check_pair(const md_kind_ctx *ctx, const char *where, const md_refusal_state *s, int i0,
                          const md_config *c0, const md_tokenizer *tok0, int i, const md_config *c, md_error *err)
{
    const md_params *top = &ctx->job->top;
    md_tokenizer *tok = NULL;
    md_error one;
    md_error_clear(&one);
    if (md_refusal_load_tokenizer(ctx, s, i, &tok, &one) == MD_OK) {
        md_exp_model a = {s->roles[i0], md_params_map_get(top, "models", s->roles[i0]), c0, tok0};
        md_exp_model b = {s->roles[i], md_params_map_get(top, "models", s->roles[i]), c, tok};
        md_exp_check_pair(where, "models do not pair (directions cross between models)", &a, &b, NULL, 1, &one);
    }
    if (one.msg[0]) md_error_add(err, &one);
    md_tokcache_release(ctx->toks, tok);
}

/* Every check of every role, each failed one a line of err (md_error_add);
 * the widths and the sweep's `all` against the first role that loads; the
 * layer keys once per number of layers, naming the models of that depth. */
static int rf_validate(const md_kind_ctx *ctx, md_error *err)
{
    char where[MD_EXP_WHERE_MAX];
    md_exp_format_where(ctx, where, sizeof where);
    md_refusal_state *s = NULL;
    if (md_refusal_build_state(ctx, &s, err) != MD_OK) return MD_ERR;
    md_error_clear(err);
    rf_check_map_roles(ctx, where, s, err);
    md_config c0 = {0};
    md_tokenizer *tok0 = NULL; /* the first role that loads: the others pair with it */
    int i0 = -1, depth[MD_REFUSAL_MAX_ROLES];
    for (int i = 0; i < s->n_roles; i++) {
        md_config c;
        depth[i] = -1;
        if (md_refusal_check_role(ctx, where, s, i, &c, err) != MD_OK) continue;
        depth[i] = c.n_layers;
        md_error one;
        if (i0 >= 0) rf_check_pair(ctx, where, s, i0, &c0, tok0, i, &c, err);
        else if (md_refusal_load_tokenizer(ctx, s, i, &tok0, &one) == MD_OK) c0 = c, i0 = i;
        else md_error_add(err, &one);
        if (!s->sweep) rf_check_point(where, s, i, err);
    }
    md_tokcache_release(ctx->toks, tok0);
    for (int i = 0; i < s->n_roles; i++) { /* the layer keys: once per number of layers */
        char who[512];
        int k = md_exp_depth_roles(s->roles, depth, s->n_roles, i, who, sizeof who);
        if (k) rf_check_layers(where, s, depth[i], who, k, i0, c0.n_layers, err);
    }
    md_refusal_free_state(s);
    return err->msg[0] ? MD_ERR : MD_OK;
}

static int rf_build(const md_kind_ctx *ctx, void **state, md_error *err)
{
    return md_refusal_build_state(ctx, (md_refusal_state **)state, err);
}

/* Units of stage 0 (activation batches) and 1 (generation batches). */
static int64_t rf_units(const void *state, int stage)
{
    const md_refusal_state *s = state;
    return stage == 0 ? s->acts.n : s->gen.n;
}

/* The longest of rows [r0, r0 + n) of role's prompts of set (test or train
 * rows) in tokens (md_refusal_price; MD_COST_ROW_TOKENS before it): a
 * batch runs padded to it. */
static double longest_prompt(const md_refusal_state *s, int role, int set, int test, int r0, int n)
{
    const int *len = md_refusal_prompt_tokens(s, role, set, test);
    int t = len ? 0 : MD_COST_ROW_TOKENS;
    for (int i = 0; len && i < n; i++) t = len[r0 + i] > t ? len[r0 + i] : t;
    return t;
}

/* The cost of a unit (progress.h, "ETA by cost"): its rows x their longest
 * prompt in its role's template; a collect forward stops after the deepest
 * layer it reads ((deepest + 1) / L of a pass). A generation runs that
 * prompt batch (1.2 times its cost with a direction hooked in: stage 1 but
 * the unhooked point-mode baseline, intervention 0), then max_new_tokens -
 * 1 steps of one token a row through every block, and the logits of every
 * new token: those steps read all the weights for the batch's few rows and
 * are priced by the read bound (exp_cost.h; just their FLOPs for weights
 * that stay in a cache). */
static double rf_unit_cost(const void *state, int stage, int64_t unit)
{
    const md_refusal_state *s = state;
    const int *key = stage == 0 ? s->acts.key[unit] : s->gen.key[unit];
    int r0, n = stage == 0 ? s->n_train : s->n_test;
    int rows = md_exp_slice_batch(n, s->batch, key[stage == 0 ? 2 : 3], &r0);
    if (stage == 0) return rows * longest_prompt(s, key[0], key[1], 0, r0, rows) * s->collect_share;
    int set = s->sweep ? MD_REFUSAL_HARMFUL : key[2];
    double prompt = rows * longest_prompt(s, key[0], set, 1, r0, rows) * (s->sweep || key[1] ? 1.2 : 1.0);
    /* the prompt's logits, then the steps after the first new token */
    return prompt + md_exp_cost_read_bound(s->block_macs, rows, s->logits) +
           (double)(s->opt.max_new_tokens - 1) * md_exp_cost_read_bound(s->block_macs, rows, 1 + s->logits);
}

const md_dirseq MD_REFUSAL_SEQ = {
    .kind = "refusal", .build = rf_build, .release = md_refusal_free_state, .collect = md_refusal_run_collect,
    .intervene = md_refusal_run_intervene, .directions = md_refusal_run_directions, .scores = md_refusal_run_scores,
    .units = rf_units, .unit_cost = rf_unit_cost, .price = md_refusal_price};

/* What the kind and its alias share: everything but the name, doc and keys. */
#define RF_KIND_CALLBACKS                                                                                              \
    .opts_size = sizeof(md_refusal_opts), .data = &MD_REFUSAL_SEQ, .outputs = MD_REFUSAL_OUTPUTS, .validate = rf_validate, .plan = md_refusal_plan,         \
    .prepare = md_dirseq_prepare, .release_state = md_refusal_free_state, .compute = md_dirseq_compute,               \
    .finish_stage = md_dirseq_finish, .unit_name = md_exp_name_unit, .estimate = md_dirseq_estimate

const md_kind md_kind_refusal = {
    .name = "refusal",
    .doc = "Refusal direction per model (mean(harmful) - mean(harmless) at one hook/layer/position, normalised), "
           "cosine between models, and greedy generations with no intervention, directional ablation of every "
           "source model's direction, and activation addition; refusal score by prefix. With sweep: true, the "
           "refusal score vs the layer and position of the direction instead (Arditi et al.): a direction per "
           "model and candidate, the refusal rate of harmful test prompts with it ablated at every layer, the "
           "lowest per model reported as an attribute (docs/methods.md, Refusal).",
    .keys = REFUSAL_KEYS,
    .opts = REFUSAL_OPTS,
    RF_KIND_CALLBACKS,
};

/* The alias: the same kind, sweep on, the keys refusal_sweep always had. */
const md_kind md_kind_refusal_sweep = {
    .name = "refusal_sweep",
    .alias = "kind: refusal with sweep: true (its keys layers and positions are refusal's sweep_layers and "
             "sweep_positions; n_train / n_test default to 64 / 32)",
    .doc = "Alias of `kind: refusal` with `sweep: true` (its `layers` / `positions` are refusal's `sweep_layers` / "
           "`sweep_positions`; n_train / n_test default to 64 / 32; the group's kind attribute stays "
           "refusal_sweep). Refusal score vs the layer and position of the refusal direction (Arditi et al.): a "
           "direction per model and candidate (layer, position), and the refusal rate of harmful test prompts "
           "with it ablated at every layer; the lowest per model is reported as an attribute, never used "
           "automatically (docs/methods.md, Refusal).",
    .keys = SWEEP_KEYS,
    .opts = SWEEP_OPTS,
    RF_KIND_CALLBACKS,
};
