/* knowledge.c — the `knowledge` kind: activation patching between TRUE and
 * FALSE statements (docs/methods.md "Knowledge"), within a model and across
 * models: keys, validation, the outputs table and the plan. A unit's
 * compute is kn_compute.c.
 *
 * Unit = (dataset, patched model B, source model A, block of `pair_block`
 * consecutive pairs). For each pair, A runs on the TRUE prompt (caching the
 * hook point in the window of the last n_toks positions), B on the FALSE
 * prompt (its clean cache), then every (layer l, window position t) cell is
 * a partial forward from layer l (l+1 for resid_post) over positions
 * [t, T) from B's clean residual, with A's TRUE state put in at (l, t); the
 * partial forwards of every pair of the block that start at the same
 * position go through the weights together. Only logit(" TRUE") and
 * logit(" FALSE") at the last position are computed. `naive: true` runs one
 * full forward per cell instead (the reference; tests compare both).
 * `component: head` patches one head's z (the input of o_proj) at a time.
 *
 * Output (/<name>/<dataset>/..., the table in kn_output.c):
 *   pairs/true_statement, false_statement [pair]         str
 *   pairs/true_ids, false_ids, true_tokens, false_tokens, window_position
 *                                 [pair, position]        the window (position = -n_toks..-1)
 *   pairs/subject_first, subject_last [pair]              i32 (window index, -1 = before it)
 *   <A>-><B>/effect [pair, layer, position]               f32 logit(TRUE)-logit(FALSE)
 *   <A>-><B>/effect_head [pair, layer, head, position]    f32 (component: head, instead of effect)
 *   <A>-><B>/clean_true [pair]  (A on TRUE), clean_false [pair] (B on FALSE)
 *   <B>-><B>/acts_true, acts_false [pair, layer, position, width]  f32 (store_activations) */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp/kn_compute.h"
#include "exp/kn_output.h"
#include "mechdiff/exp_cost.h"
#include "mechdiff/exp_util.h"
#include "mechdiff/experiment.h"
#include "mechdiff/forward.h"
#include "mechdiff/hf_config.h"
#include "mechdiff/knowledge.h"
#include "mechdiff/tokcache.h"

static const md_key KNOWLEDGE_KEYS[] = {
    {.name = "datasets", .type = MD_KEY_STRLIST, .def = NULL,
     .doc = "Names (from the top-level datasets map) of `statement,label` CSVs to patch."},
    {.name = "models", .type = MD_KEY_STRLIST, .def = "",
     .doc = "Roles patched within themselves (empty = every role in `models`)."},
    {.name = "cross", .type = MD_KEY_STRLIST, .def = "",
     .doc = "Cross-model patches 'source->target' (A's TRUE states into B's FALSE run); 'all' = every ordered pair of `models`."},
    {.name = "hook", .type = MD_KEY_STRING, .def = "resid_post", .allowed = "resid_pre|attn_out|resid_mid|mlp_out|resid_post|mlp_post",
     .doc = "Hook point patched."},
    {.name = "component", .type = MD_KEY_STRING, .def = "hook", .allowed = "hook|resid_post|attn_out|mlp_out|head",
     .doc = "What is patched: 'hook' = the `hook` point; resid_post, attn_out, mlp_out = that point; 'head' = each "
            "attention head's output z (input of o_proj) alone: effect_head[pair, layer, head, position]."},
    {.name = "n_toks", .type = MD_KEY_INT, .def = "0", .min = 0, .max = 4096,
     .doc = "Positions patched, counted from the end (0 = statement + suffix of the shortest pair)."},
    {.name = "n_shots", .type = MD_KEY_INT, .def = "4", .min = 0, .max = 32, .doc = "Few-shot lines before the statement."},
    {.name = "shot_seed", .type = MD_KEY_INT, .def = "1", .min = 0, .max = 2147483647,
     .doc = "Seed of the few-shot draw and shuffle (docs/methods.md: 1)."},
    {.name = "max_pairs", .type = MD_KEY_INT, .def = "0", .min = 0, .max = 1e9, .doc = "Keep at most this many pairs per dataset (0 = all)."},
    {.name = "suffix", .type = MD_KEY_STRING, .def = " This statement is:", .doc = "Text after the statement."},
    {.name = "true_word", .type = MD_KEY_STRING, .def = " TRUE", .doc = "Answer token for true (must be one token)."},
    {.name = "false_word", .type = MD_KEY_STRING, .def = " FALSE", .doc = "Answer token for false (must be one token)."},
    {.name = "pair_block", .type = MD_KEY_INT, .def = "0", .min = 0, .max = 4096,
     .doc = "Pairs per unit: the partial forwards of a block's pairs go through the weights together (wider GEMMs). "
            "0 = the backend's default (cpu 16, cuda 64). Part of the job: results do not depend on the ranks; a "
            "different block size changes effects by at most float32 rounding (docs/architecture-model.md, Batching "
            "across pairs)."},
    {.name = "naive", .type = MD_KEY_BOOL, .def = "false",
     .doc = "One full forward per cell (the reference) instead of prefix reuse + batched partial forwards."},
    {.name = "store_activations", .type = MD_KEY_BOOL, .def = "false",
     .doc = "Also store the clean TRUE/FALSE activations at the hook point (window positions, every layer)."},
    {0}};

#define KO(f) {#f, offsetof(kn_opts, f)}
static const md_opt_bind KNOWLEDGE_OPTS[] = {
    KO(datasets), KO(models), KO(cross), KO(hook), KO(component), KO(n_toks), KO(n_shots), KO(shot_seed), KO(max_pairs),
    KO(pair_block), KO(suffix), KO(true_word), KO(false_word), KO(naive), KO(store_activations), {0}};
#undef KO

static void kn_state_free(void *p)
{
    kn_state *s = p;
    if (!s) return;
    for (int i = 0; i < s->n_ds; i++) md_kn_dataset_free(&s->ds[i]);
    free(s->ds);
    free(s->combos);
    free(s->unit_base);
    free(s);
}

/* Roles patched within themselves, then the cross pairs. */
static int kn_combos(const md_kind_ctx *ctx, kn_state *s, md_error *err)
{
    const md_params *top = &ctx->job->top;
    const md_value *cross = s->opt.cross;
    char where[MD_EXP_WHERE_MAX];
    md_exp_format_where(ctx, where, sizeof where);
    int n_roles = md_exp_count_roles(ctx);
    int n_cross = cross->n;
    int all = n_cross == 1 && strcmp(cross->list[0], "all") == 0;
    int cap = n_roles + (all ? n_roles * n_roles : n_cross);
    s->combos = calloc((size_t)(cap > 0 ? cap : 1), sizeof(kn_combo));
    if (!s->combos) return md_error_set(err, "out of memory");
    const char *roles[64];
    if (n_roles > 64) return md_error_set(err, "%s: at most 64 model roles", where);
    /* no roles is allowed here (only cross pairs) */
    if (n_roles > 0 && md_exp_resolve_roles(ctx, where, roles, 64, &n_roles, err) != MD_OK) return MD_ERR;
    for (int i = 0; i < n_roles; i++) s->combos[s->n_combos++] = (kn_combo){roles[i], roles[i]};
    s->n_self = s->n_combos;
    if (all) {
        for (int a = 0; a < n_roles; a++)
            for (int b = 0; b < n_roles; b++)
                if (a != b) s->combos[s->n_combos++] = (kn_combo){roles[b], roles[a]};
        return MD_OK;
    }
    for (int i = 0; i < n_cross; i++) {
        const char *item = cross->list[i];
        const char *arrow = strstr(item, "->");
        if (!arrow)
            return md_error_set(err, "%s: key 'cross': item '%s' is not 'source->target' (or 'all')", where, item);
        /* find the roles by name: the item text is split at "->" */
        const char *src = NULL, *dst = NULL;
        for (int r = 0; r < md_params_count(top, "models"); r++) {
            const char *role = md_params_item(top, "models", r);
            size_t n = strlen(role);
            if ((size_t)(arrow - item) == n && strncmp(item, role, n) == 0) src = role;
            if (strcmp(arrow + 2, role) == 0) dst = role;
        }
        if (!src || !dst)
            return md_error_set(err, "%s: key 'cross': '%s' names a role that is not in the job's models map", where,
                                item);
        if (src == dst) return md_error_set(err, "%s: key 'cross': '%s' patches a model into itself (list it in 'models')", where, item);
        s->combos[s->n_combos++] = (kn_combo){dst, src};
    }
    return MD_OK;
}

/* The options of the pair curation (kn_pairs.c). */
static void kn_pair_options(const kn_opts *k, md_kn_options *o)
{
    o->n_shots = (int)k->n_shots;
    o->shot_seed = (int)k->shot_seed;
    o->max_pairs = (int)k->max_pairs;
    o->n_toks = (int)k->n_toks;
    o->suffix = k->suffix;
    o->true_word = k->true_word;
    o->false_word = k->false_word;
}

/* Builds the state from the job and a tokenizer (rank 0 plan and workers). */
static int kn_state_build(const md_kind_ctx *ctx, const md_tokenizer *tok, const md_config *cfg, kn_state **out,
                          md_error *err)
{
    const md_params *top = &ctx->job->top;
    char where[MD_EXP_WHERE_MAX];
    md_exp_format_where(ctx, where, sizeof where);
    kn_state *s = calloc(1, sizeof *s);
    if (!s) return md_error_set(err, "out of memory");
    s->opt = *(const kn_opts *)ctx->opts;
    const kn_opts *ko = &s->opt;
    int head = strcmp(ko->component, "head") == 0;
    s->hook = head ? MD_HOOK_Z : md_hook_point_parse(strcmp(ko->component, "hook") == 0 ? ko->hook : ko->component);
    s->n_heads = head ? cfg->n_heads : 1;
    s->n_layers = cfg->n_layers;
    s->block_macs = md_exp_cost_block_macs(cfg);
    s->width = head ? cfg->n_heads * cfg->head_dim : s->hook == MD_HOOK_MLP_POST ? cfg->d_ff : cfg->d_model;
    md_error e2 = {0};
    s->id_true = md_tokenizer_single_token(tok, ko->true_word, &e2);
    if (s->id_true < 0) {
        md_error_set(err, "%s: key 'true_word': %s", where, e2.msg);
        goto fail;
    }
    s->id_false = md_tokenizer_single_token(tok, ko->false_word, &e2);
    if (s->id_false < 0) {
        md_error_set(err, "%s: key 'false_word': %s", where, e2.msg);
        goto fail;
    }
    if (kn_combos(ctx, s, err) != MD_OK) goto fail;
    s->block = (int)ko->pair_block;
    if (s->block == 0) /* the backend's default: a job key, so units stay fixed by the job */
        s->block = strcmp(md_params_str(&ctx->job->runtime, "backend"), "cuda") == 0 ? KN_PAIR_BLOCK_CUDA
                                                                                       : KN_PAIR_BLOCK_CPU;
    s->n_ds = ko->datasets->n;
    s->ds = calloc((size_t)s->n_ds, sizeof *s->ds);
    s->unit_base = calloc((size_t)s->n_ds + 1, sizeof(int64_t));
    if (!s->ds || !s->unit_base) {
        md_error_set(err, "out of memory");
        goto fail;
    }
    md_kn_options o;
    kn_pair_options(ko, &o);
    for (int i = 0; i < s->n_ds; i++) {
        const char *name = ko->datasets->list[i];
        const char *path = md_params_map_get(top, "datasets", name);
        if (!path) {
            md_error_set(err, "%s: key 'datasets': '%s' is not in the job's datasets map", where, name);
            goto fail;
        }
        if (md_kn_dataset_build(&s->ds[i], name, path, tok, &o, err) != MD_OK) {
            md_error_prefix(err, "%s: dataset '%s'", where, name);
            goto fail;
        }
        for (int k = 0; k < s->ds[i].n_pairs; k++)
            if (cfg->max_position > 0 && s->ds[i].pairs[k].len > cfg->max_position) {
                md_error_set(err, "%s: dataset '%s': the prompt of pair %d (\"%s\") has %d tokens, more than the "
                                  "model's max_position_embeddings %d (use fewer n_shots or shorter statements)",
                             where, name, k, s->ds[i].statements[s->ds[i].pairs[k].true_row], s->ds[i].pairs[k].len,
                             cfg->max_position);
                goto fail;
            }
        s->unit_base[i + 1] = s->unit_base[i] + (int64_t)s->n_combos * kn_blocks(s, &s->ds[i]);
    }
    *out = s;
    return MD_OK;
fail:
    kn_state_free(s);
    return MD_ERR;
}

/* The roles of the combinations, each once, in order: roles[0] is the
 * model whose tokenizer encodes every prompt (kn_prepare); crossed[r]: role
 * r is in a cross pair. Returns their number (<= 2 n_combos). */
static int kn_roles(const kn_state *s, const char **roles, int *crossed)
{
    int n = 0;
    for (int i = 0; i < s->n_combos; i++) {
        const char *pair[2] = {s->combos[i].target, s->combos[i].source};
        for (int j = 0; j < 2; j++) {
            int r = 0;
            while (r < n && strcmp(roles[r], pair[j]) != 0) r++;
            if (r == n) roles[n] = pair[j], crossed[n++] = 0;
            crossed[r] |= i >= s->n_self;
        }
    }
    return n;
}

/* Where position p of the prompt ids[0..pair->len) comes from, into buf:
 * the few-shot lines, the statement or the suffix (*key: the job key),
 * and the text around it (decoded by tok). */
static void kn_position_origin(const md_kn_dataset *ds, const md_kn_pair *pair, const int *ids, int row, int p,
                               const md_tokenizer *tok, const char **key, char *buf, size_t cap)
{
    *key = p >= pair->len - ds->suffix_tokens ? "suffix" : "datasets";
    int a = p >= 6 ? p - 6 : 0, b = p + 4 <= pair->len ? p + 4 : pair->len;
    char *text = NULL;
    md_error ignored;
    if (md_tokenizer_decode(tok, ids + a, (size_t)(b - a), 0, &text, &ignored) == MD_OK)
        for (char *c = text; *c; c++)
            if (*c == '\n' || *c == '"') *c = ' ';
    if (p < pair->stmt_first) snprintf(buf, cap, "in its few-shot lines, \"...%.80s...\"", text ? text : "");
    else if (p < pair->len - ds->suffix_tokens) snprintf(buf, cap, "in the statement \"%.80s\"", ds->statements[row]);
    else snprintf(buf, cap, "in the suffix, \"...%.80s\"", text ? text : "");
    free(text);
}

/* The first id of dataset ds's prompts that is not below limit (a model's
 * tokenizer size): a line of err naming the dataset, the prompt, the token
 * and the model. */
static void kn_check_ids(const char *where, const md_kn_dataset *ds, const md_tokenizer *tok0, const char *role0,
                         const char *role, const char *dir, int limit, md_error *err)
{
    for (int k = 0; k < ds->n_pairs; k++)
        for (int f = 0; f < 2; f++) {
            const md_kn_pair *pair = &ds->pairs[k];
            const int *ids = f ? pair->false_ids : pair->true_ids;
            int p = 0;
            while (p < pair->len && ids[p] < limit) p++;
            if (p == pair->len) continue;
            const char *key, *piece = md_tokenizer_piece(tok0, ids[p]);
            char origin[200];
            kn_position_origin(ds, pair, ids, f ? pair->false_row : pair->true_row, p, tok0, &key, origin,
                               sizeof origin);
            md_error_addf(err, "%s: key '%s': dataset '%s': the %s prompt of pair %d holds token %d '%.60s' (%s), "
                               "which model '%s' (%s) does not have (its tokenizer has %d ids): prompts are "
                               "tokenised once, by model '%s', and fed to every model; remove that text, or list "
                               "the model with fewer ids first in `models`",
                          where, key, ds->name, f ? "FALSE" : "TRUE", k, ids[p], piece ? piece : "?", origin, role,
                          dir, limit, role0);
            return;
        }
}

/* Every id of every prompt (encoded by tok0, roles[0]'s) is below the
 * vocabulary size of each model it is fed to (limit[r]; -1: did not load):
 * only a model with fewer ids than tok0 can lack one, so the datasets are
 * built here only then. Each failed check is a line of err. */
static int kn_check_prompt_ids(const md_kind_ctx *ctx, const char *where, const kn_state *tmp,
                               const md_tokenizer *tok0, const char *const *roles, const int *limit, int n,
                               md_error *err)
{
    int lo = md_tokenizer_vocab_size(tok0), rc = MD_OK;
    for (int r = 1; r < n; r++)
        if (limit[r] >= 0 && limit[r] < lo) lo = limit[r];
    if (lo == md_tokenizer_vocab_size(tok0)) return MD_OK;
    md_kn_options o;
    kn_pair_options(&tmp->opt, &o);
    for (int d = 0; d < tmp->opt.datasets->n; d++) {
        const char *name = tmp->opt.datasets->list[d];
        const char *path = md_params_map_get(&ctx->job->top, "datasets", name);
        md_kn_dataset ds = {0};
        md_error one;
        if (!path) continue; /* said by the plan */
        if (md_kn_dataset_build(&ds, name, path, tok0, &o, &one) != MD_OK) {
            rc = md_error_addf(err, "%s: dataset '%s': %s", where, name, one.msg);
            continue;
        }
        for (int r = 1; r < n; r++) {
            const char *dir = md_params_map_get(&ctx->job->top, "models", roles[r]);
            if (limit[r] >= 0 && limit[r] < md_tokenizer_vocab_size(tok0))
                kn_check_ids(where, &ds, tok0, roles[0], roles[r], dir, limit[r], err);
        }
        md_kn_dataset_free(&ds);
    }
    return err->msg[0] ? MD_ERR : rc;
}

/* Role b's model against the first role's (a, whose tokenizer encodes every
 * prompt): its answer words, the vocabularies (every model is fed a's ids)
 * and, in a cross pair, the architecture (md_exp_check_pair). */
static int kn_check_role(const md_kind_ctx *ctx, const char *where, const kn_opts *o, const md_exp_model *a,
                         const md_exp_model *b, int crossed, md_error *err)
{
    const char *const words[] = {o->true_word, o->false_word, NULL};
    md_error one;
    int rc = MD_OK;
    if (md_exp_check_answer_words(ctx, where, b->role, b->tok, o->true_word, o->false_word, &one) != MD_OK)
        rc = md_error_add(err, &one);
    if (a && md_exp_check_pair(where,
                               crossed ? "key 'cross': models do not pair for cross-model patching"
                                       : "key 'models': models do not pair (prompts are tokenised once, by the "
                                         "first model, and fed to every model)",
                               a, b, words, crossed, &one) != MD_OK)
        rc = md_error_add(err, &one);
    return rc;
}

/* Every model of the combinations loads its config and tokenizer and pairs
 * with the first (prompts are tokenised once, by it, and fed to all of
 * them), and every prompt id is one each model has; each failed check is a
 * line of err (md_error_add). roles, crossed, limit: room for 2 n_combos. */
static int kn_check_models(const md_kind_ctx *ctx, const char *where, const kn_state *tmp, const char **roles,
                           int *crossed, int *limit, md_error *err)
{
    const md_params *top = &ctx->job->top;
    int n = kn_roles(tmp, roles, crossed), rc = MD_OK;
    md_config c0 = {0};
    md_tokenizer *tok0 = NULL; /* roles[0]'s: it encodes every prompt (ctx->toks's, or owned here) */
    md_error_clear(err);
    for (int r = 0; r < n; r++) {
        md_config c;
        md_tokenizer *tok = NULL;
        md_error one;
        limit[r] = -1;
        if (md_exp_load_role(ctx, where, roles[r], &c, &tok, &one) != MD_OK) {
            md_tokcache_release(ctx->toks, tok);
            rc = md_error_add(err, &one);
            continue;
        }
        limit[r] = md_tokenizer_vocab_size(tok) < c.vocab_size ? md_tokenizer_vocab_size(tok) : c.vocab_size;
        md_exp_model a = {roles[0], md_params_map_get(top, "models", roles[0]), &c0, tok0};
        md_exp_model b = {roles[r], md_params_map_get(top, "models", roles[r]), &c, tok};
        if (kn_check_role(ctx, where, &tmp->opt, r && tok0 ? &a : NULL, &b, crossed[r], err) != MD_OK) rc = MD_ERR;
        if (r == 0) c0 = c, tok0 = tok;
        else md_tokcache_release(ctx->toks, tok);
    }
    if (rc == MD_OK && tok0 && kn_check_prompt_ids(ctx, where, tmp, tok0, roles, limit, n, err) != MD_OK) rc = MD_ERR;
    md_tokcache_release(ctx->toks, tok0);
    return rc;
}

static int kn_validate(const md_kind_ctx *ctx, md_error *err)
{
    char where[MD_EXP_WHERE_MAX];
    md_exp_format_where(ctx, where, sizeof where);
    kn_state tmp = {0};
    tmp.opt = *(const kn_opts *)ctx->opts;
    int rc = kn_combos(ctx, &tmp, err);
    size_t cap = 2 * (size_t)tmp.n_combos + 1;
    const char **roles = calloc(cap, sizeof *roles);
    int *crossed = calloc(cap, sizeof *crossed), *limit = calloc(cap, sizeof *limit);
    if (rc == MD_OK && (!roles || !crossed || !limit)) rc = md_error_set(err, "out of memory");
    if (rc == MD_OK) rc = kn_check_models(ctx, where, &tmp, roles, crossed, limit, err);
    free(tmp.combos);
    free(roles);
    free(crossed);
    free(limit);
    return rc;
}

/* The tokenizer (from ctx->toks: md_tokcache_release ends its use) and
 * config of the first model of the experiment. */
static int kn_first_model(const md_kind_ctx *ctx, md_tokenizer **tok, md_config *cfg, md_error *err)
{
    const char *role = md_exp_get_role(ctx, 0);
    const char *dir = role ? md_params_map_get(&ctx->job->top, "models", role) : NULL;
    if (!dir) return md_error_set(err, "experiment '%s': no model roles", ctx->exp->name);
    if (md_hf_config_load_dir(cfg, dir, err) != MD_OK) return MD_ERR;
    return md_tokcache_acquire(ctx->toks, dir, tok, err);
}

/* The axes every dataset shares: layer (every layer of the model, 0 = the
 * first block), head and hidden (the width of the patched component). The
 * per-dataset ones (pair, position) are md_kn_plan_pairs'. */
static int kn_plan_axes(md_plan *plan, const kn_state *s, md_error *err)
{
    int64_t *v = malloc((size_t)s->n_layers * sizeof *v);
    if (!v) return md_error_set(err, "out of memory");
    for (int l = 0; l < s->n_layers; l++) v[l] = l;
    int rc = md_plan_axis_values(plan, "", "layer", v, s->n_layers,
                                 "transformer block index (0 = the first block) whose hook point is patched", err);
    free(v);
    if (rc != MD_OK || md_plan_axis_size(plan, "", "head", s->n_heads, err) != MD_OK) return MD_ERR;
    return md_plan_axis_size(plan, "", "hidden", s->width, err);
}

/* The result datasets (and group attributes) of dataset ds for every
 * (source, target) combination. */
static int kn_plan_combos(md_plan *plan, const kn_state *s, const md_kn_dataset *ds, int store, md_error *err)
{
    const md_output *o = MD_KN_OUTPUTS;
    for (int c = 0; c < s->n_combos; c++) {
        const kn_combo *cb = &s->combos[c];
        const char *const args[] = {ds->name, cb->source, cb->target};
        if (md_kn_plan_group_attrs(plan, ds->name, cb->source, cb->target, err) != MD_OK) return MD_ERR;
        if (md_plan_output(plan, &o[s->n_heads > 1 ? KO_EFFECT_HEAD : KO_EFFECT], args, err) != MD_OK ||
            md_plan_output(plan, &o[KO_CLEAN_TRUE], args, err) != MD_OK ||
            md_plan_output(plan, &o[KO_CLEAN_FALSE], args, err) != MD_OK)
            return MD_ERR;
        if (store && c < s->n_self &&
            (md_plan_output(plan, &o[KO_ACTS_TRUE], args, err) != MD_OK ||
             md_plan_output(plan, &o[KO_ACTS_FALSE], args, err) != MD_OK))
            return MD_ERR;
    }
    return MD_OK;
}

/* The cost of unit u (progress.h, "ETA by cost"; the GEMM FLOPs of
 * bench/study_cost.py's grid_flops over a token pass): per pair of T tokens
 * the two clean runs, 2 T; then the block's patched forwards as
 * kn_compute.c runs them, priced by the read bound (exp_cost.h), since at
 * the last window positions they carry few rows. At window offset k =
 * T - t (1..N), block j's weights see nb x k rows for every layer patched
 * at or before j (j layers for resid_post, which starts after its layer;
 * j + 1 otherwise) in one forward; for component head, one forward per
 * patched layer of n_heads x nb x k rows. With every forward above the
 * ridge this is the FLOP count, heads x nb x N(N+1)/2 x (L-1)/2 token
 * passes ((L+1)/2). */
static double kn_unit_cost(const kn_state *s, int64_t u)
{
    int d, c, p0, nb;
    md_kn_locate_unit(s, u, &d, &c, &p0, &nb);
    int L = s->n_layers, post = s->hook == MD_HOOK_RESID_POST;
    double share = 1.0 / (L > 0 ? L : 1), cost = 0;
    for (int p = p0; p < p0 + nb; p++) cost += 2.0 * s->ds[d].pairs[p].len;
    for (int k = 1; k <= s->ds[d].n_toks; k++)
        for (int j = 0; j < L; j++) {
            int started = j + !post; /* patched layers whose forward has reached block j */
            if (started == 0) continue;
            if (s->n_heads > 1)
                cost += started * md_exp_cost_read_bound(s->block_macs, (double)s->n_heads * nb * k, share);
            else
                cost += md_exp_cost_read_bound(s->block_macs, (double)nb * started * k, share);
        }
    return cost;
}

static int kn_plan(const md_kind_ctx *ctx, int stage, const md_blob *input, md_plan *plan, md_error *err)
{
    (void)stage;
    (void)input;
    md_tokenizer *tok = NULL;
    md_config cfg;
    kn_state *s = NULL;
    int rc = MD_ERR;
    if (kn_first_model(ctx, &tok, &cfg, err) != MD_OK) goto done;
    if (kn_state_build(ctx, tok, &cfg, &s, err) != MD_OK) goto done;
    int store = s->opt.store_activations;
    if (kn_plan_axes(plan, s, err) != MD_OK) goto done;
    for (int d = 0; d < s->n_ds; d++)
        if (md_kn_plan_pairs(plan, &s->ds[d], tok, err) != MD_OK || kn_plan_combos(plan, s, &s->ds[d], store, err) != MD_OK)
            goto done;
    if (md_plan_attr(plan, "", "hook", md_hook_point_name(s->hook), err) != MD_OK ||
        md_plan_attr(plan, "", "component", s->opt.component, err) != MD_OK)
        goto done;
    if (md_plan_units(plan, s->unit_base[s->n_ds] > 0 ? s->unit_base[s->n_ds] : 1, err) != MD_OK) goto done;
    for (int64_t u = 0; u < s->unit_base[s->n_ds]; u++) md_plan_cost(plan, u, kn_unit_cost(s, u));
    rc = MD_OK;
done:
    kn_state_free(s);
    md_tokcache_release(ctx->toks, tok);
    return rc;
}

/* md_kind.estimate: the one stage's units and costs, as kn_plan declares
 * them (no pair at all: one empty unit at the default cost). */
static int kn_estimate(const md_kind_ctx *ctx, md_stage_estimate *out, md_error *err)
{
    md_tokenizer *tok = NULL;
    md_config cfg;
    kn_state *s = NULL;
    int rc = MD_ERR;
    if (kn_first_model(ctx, &tok, &cfg, err) == MD_OK && kn_state_build(ctx, tok, &cfg, &s, err) == MD_OK) {
        int64_t n = s->unit_base[s->n_ds];
        out[0] = (md_stage_estimate){.units = n > 0 ? n : 1, .cost = n > 0 ? 0 : 1};
        for (int64_t u = 0; u < n; u++) out[0].cost += kn_unit_cost(s, u);
        rc = MD_OK;
    }
    kn_state_free(s);
    md_tokcache_release(ctx->toks, tok);
    return rc;
}

static int kn_prepare(const md_kind_ctx *ctx, md_worker *w, int stage, const md_blob *input, void **state,
                      md_error *err)
{
    (void)stage;
    (void)input;
    const char *role = md_exp_get_role(ctx, 0);
    struct md_model *m = NULL;
    if (md_worker_model(w, role, &m, err) != MD_OK) return MD_ERR;
    if (!m->tok) return md_error_set(err, "model '%s' (%s) has no tokenizer.json", role, m->dir);
    return kn_state_build(ctx, m->tok, &m->cfg, (kn_state **)state, err);
}

static void kn_unit_name(const md_kind_ctx *ctx, int stage, int64_t unit, char *buf, size_t len)
{
    (void)stage;
    /* Without state here, name the unit by its index and the experiment. */
    snprintf(buf, len, "%s/unit %lld", ctx->exp->name, (long long)unit);
}

const md_kind md_kind_knowledge = {
    .name = "knowledge",
    .doc = "Activation patching between TRUE and FALSE statements (causal tracing), within each model and "
           "across models: effect[pair, layer, position] = logit(TRUE) - logit(FALSE) with the TRUE run's "
           "state patched into the FALSE run (docs/methods.md, Knowledge).",
    .keys = KNOWLEDGE_KEYS,
    .opts = KNOWLEDGE_OPTS,
    .opts_size = sizeof(kn_opts),
    .outputs = MD_KN_OUTPUTS,
    .validate = kn_validate,
    .plan = kn_plan,
    .prepare = kn_prepare,
    .release_state = kn_state_free,
    .compute = md_kn_compute_unit,
    .unit_name = kn_unit_name,
    .estimate = kn_estimate,
};
