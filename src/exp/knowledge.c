/* knowledge.c — the `knowledge` kind: activation patching between TRUE and
 * FALSE statements (docs/methods.md "Knowledge"), within a model and across
 * models.
 *
 * Unit = (dataset, patched model B, source model A, pair). A unit runs A on
 * the TRUE prompt (caching the hook point in the window of the last n_toks
 * positions), B on the FALSE prompt (its clean cache), then for each window
 * position t one batched partial forward of n_layers sequences: sequence l
 * starts at layer l (l+1 for resid_post) from B's clean residual at
 * positions [t, T), with the cache of B's clean run for positions < t, and
 * A's TRUE state put in at (l, t). Only logit(" TRUE") and logit(" FALSE")
 * at the last position are computed. `naive: true` runs one full forward per
 * cell instead (the reference; tests compare both).
 *
 * Output (/<name>/<dataset>/...):
 *   pairs/true_statement, false_statement [pair]         str
 *   pairs/true_ids, false_ids [pair, position]            i32 (the window)
 *   pairs/subject_first, subject_last [pair]              i32 (window index, -1 = before it)
 *   <B>/<A>/effect [pair, layer, position]                f32 logit(TRUE)-logit(FALSE)
 *   <B>/<A>/clean_true [pair]  (A on TRUE), clean_false [pair] (B on FALSE)
 *   <B>/<B>/acts_true, acts_false [pair, layer, position, width]  f32 (store_activations) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/exp_util.h"
#include "mechdiff/experiment.h"
#include "mechdiff/forward.h"
#include "mechdiff/hf_config.h"
#include "mechdiff/knowledge.h"

static const md_key KNOWLEDGE_KEYS[] = {
    {.name = "datasets", .type = MD_KEY_STRLIST, .def = NULL,
     .doc = "Names (from the top-level datasets map) of `statement,label` CSVs to patch."},
    {.name = "models", .type = MD_KEY_STRLIST, .def = "",
     .doc = "Roles patched within themselves (empty = every role in `models`)."},
    {.name = "cross", .type = MD_KEY_STRLIST, .def = "",
     .doc = "Cross-model patches 'source->target' (A's TRUE states into B's FALSE run); 'all' = every ordered pair of `models`."},
    {.name = "hook", .type = MD_KEY_STRING, .def = "resid_post", .allowed = "resid_pre|attn_out|resid_mid|mlp_out|resid_post|mlp_post",
     .doc = "Hook point patched."},
    {.name = "n_toks", .type = MD_KEY_INT, .def = "0", .min = 0, .max = 4096,
     .doc = "Positions patched, counted from the end (0 = statement + suffix of the shortest pair)."},
    {.name = "n_shots", .type = MD_KEY_INT, .def = "4", .min = 0, .max = 32, .doc = "Few-shot lines before the statement."},
    {.name = "shot_seed", .type = MD_KEY_INT, .def = "1", .min = 0, .max = 2147483647,
     .doc = "Seed of the few-shot draw and shuffle (docs/methods.md: 1)."},
    {.name = "max_pairs", .type = MD_KEY_INT, .def = "0", .min = 0, .max = 1e9, .doc = "Keep at most this many pairs per dataset (0 = all)."},
    {.name = "suffix", .type = MD_KEY_STRING, .def = " This statement is:", .doc = "Text after the statement."},
    {.name = "true_word", .type = MD_KEY_STRING, .def = " TRUE", .doc = "Answer token for true (must be one token)."},
    {.name = "false_word", .type = MD_KEY_STRING, .def = " FALSE", .doc = "Answer token for false (must be one token)."},
    {.name = "naive", .type = MD_KEY_BOOL, .def = "false",
     .doc = "One full forward per cell (the reference) instead of prefix reuse + batched partial forwards."},
    {.name = "store_activations", .type = MD_KEY_BOOL, .def = "false",
     .doc = "Also store the clean TRUE/FALSE activations at the hook point (window positions, every layer)."},
    {0}};

typedef struct kn_combo {
    const char *target, *source; /* roles (point into the job) */
} kn_combo;

/* Everything derived from the job (same on every rank). Owned. */
typedef struct kn_state {
    md_kn_dataset *ds;
    int n_ds;
    kn_combo *combos;
    int n_combos;
    int n_self;                  /* the first n_self combos are target == source */
    int64_t *unit_base;          /* [n_ds + 1]: first unit of each dataset */
    int hook;
    int id_true, id_false;
    int n_layers, width;
} kn_state;

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
    const md_params *p = &ctx->exp->params, *top = &ctx->job->top;
    char where[MD_EXP_WHERE_MAX];
    md_exp_format_where(ctx, where, sizeof where);
    int n_roles = md_exp_count_roles(ctx);
    int n_cross = md_params_count(p, "cross");
    int all = n_cross == 1 && strcmp(md_params_item(p, "cross", 0), "all") == 0;
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
        const char *item = md_params_item(p, "cross", i);
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

static void kn_options(const md_params *p, md_kn_options *o)
{
    o->n_shots = (int)md_params_int(p, "n_shots");
    o->shot_seed = (int)md_params_int(p, "shot_seed");
    o->max_pairs = (int)md_params_int(p, "max_pairs");
    o->n_toks = (int)md_params_int(p, "n_toks");
    o->suffix = md_params_str(p, "suffix");
    o->true_word = md_params_str(p, "true_word");
    o->false_word = md_params_str(p, "false_word");
}

/* Builds the state from the job and a tokenizer (rank 0 plan and workers). */
static int kn_state_build(const md_kind_ctx *ctx, const md_tokenizer *tok, const md_config *cfg, kn_state **out,
                          md_error *err)
{
    const md_params *p = &ctx->exp->params, *top = &ctx->job->top;
    char where[MD_EXP_WHERE_MAX];
    md_exp_format_where(ctx, where, sizeof where);
    kn_state *s = calloc(1, sizeof *s);
    if (!s) return md_error_set(err, "out of memory");
    s->hook = md_hook_point_parse(md_params_str(p, "hook"));
    s->n_layers = cfg->n_layers;
    s->width = s->hook == MD_HOOK_MLP_POST ? cfg->d_ff : cfg->d_model;
    md_error e2 = {0};
    s->id_true = md_tokenizer_single_token(tok, md_params_str(p, "true_word"), &e2);
    if (s->id_true < 0) {
        md_error_set(err, "%s: key 'true_word': %s", where, e2.msg);
        goto fail;
    }
    s->id_false = md_tokenizer_single_token(tok, md_params_str(p, "false_word"), &e2);
    if (s->id_false < 0) {
        md_error_set(err, "%s: key 'false_word': %s", where, e2.msg);
        goto fail;
    }
    if (kn_combos(ctx, s, err) != MD_OK) goto fail;
    s->n_ds = md_params_count(p, "datasets");
    s->ds = calloc((size_t)s->n_ds, sizeof *s->ds);
    s->unit_base = calloc((size_t)s->n_ds + 1, sizeof(int64_t));
    if (!s->ds || !s->unit_base) {
        md_error_set(err, "out of memory");
        goto fail;
    }
    md_kn_options o;
    kn_options(p, &o);
    for (int i = 0; i < s->n_ds; i++) {
        const char *name = md_params_item(p, "datasets", i);
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
        s->unit_base[i + 1] = s->unit_base[i] + (int64_t)s->n_combos * s->ds[i].n_pairs;
    }
    *out = s;
    return MD_OK;
fail:
    kn_state_free(s);
    return MD_ERR;
}

/* 1 when two tokenizers agree: same vocabulary size and the same ids for a
 * probe text mixing the prompt format, digits, punctuation and Unicode. */
static int kn_same_tokenizer(const md_tokenizer *a, const md_tokenizer *b)
{
    static const char probe[] = "The city of Paris is in France. This statement is: TRUE\n"
                                "Fifty-one is larger than 12345, isn't it? \xc3\xbc" "ber caf\xc3\xa9 \xe2\x80\x94 ok";
    if (md_tokenizer_vocab_size(a) != md_tokenizer_vocab_size(b)) return 0;
    int *ia = NULL, *ib = NULL;
    size_t na = 0, nb = 0;
    md_error e = {0};
    int same = md_tokenizer_encode(a, probe, 1, &ia, &na, &e) == MD_OK &&
               md_tokenizer_encode(b, probe, 1, &ib, &nb, &e) == MD_OK && na == nb &&
               memcmp(ia, ib, na * sizeof(int)) == 0;
    free(ia);
    free(ib);
    return same;
}

static int kn_validate(const md_kind_ctx *ctx, md_error *err)
{
    const md_params *top = &ctx->job->top;
    char where[MD_EXP_WHERE_MAX];
    md_exp_format_where(ctx, where, sizeof where);
    kn_state tmp = {0};
    if (kn_combos(ctx, &tmp, err) != MD_OK) {
        free(tmp.combos);
        return MD_ERR;
    }
    int rc = MD_OK;
    md_config c0 = {0};
    const char *dir0 = NULL;
    md_tokenizer *tok0 = NULL; /* the first model's, owned here */
    /* Every model involved must load its config and tokenizer, and those
     * patched across must pair: same width, layers, vocabulary and
     * tokenizer (prompts are tokenised once and fed to both). */
    for (int i = 0; i < tmp.n_combos && rc == MD_OK; i++) {
        const char *roles[2] = {tmp.combos[i].target, tmp.combos[i].source};
        for (int j = 0; j < 2 && rc == MD_OK; j++) {
            char why[256];
            const char *dir = md_params_map_get(top, "models", roles[j]);
            md_config c;
            md_tokenizer *tok = NULL;
            if ((rc = md_exp_load_role(ctx, where, roles[j], &c, &tok, err)) != MD_OK) break;
            md_error e2 = {0};
            const char *words[2] = {md_params_str(&ctx->exp->params, "true_word"),
                                    md_params_str(&ctx->exp->params, "false_word")};
            for (int w = 0; w < 2 && rc == MD_OK; w++)
                if (md_tokenizer_single_token(tok, words[w], &e2) < 0)
                    rc = md_error_set(err, "%s: key '%s': model '%s': %s", where, w ? "false_word" : "true_word",
                                      roles[j], e2.msg);
            if (rc == MD_OK && tok0 && i >= tmp.n_self && !kn_same_tokenizer(tok0, tok))
                rc = md_error_set(err, "%s: key 'cross': models do not pair for cross-model patching: the tokenizer "
                                       "of %s differs from that of %s (use a base model and its own post-trained "
                                       "version)", where, dir, dir0);
            if (rc != MD_OK || tok0) md_tokenizer_free(tok);
            if (rc != MD_OK) break;
            if (!dir0) {
                c0 = c;
                dir0 = dir;
                tok0 = tok;
            } else if (i >= tmp.n_self && md_hf_config_check_pair(&c0, &c, why, sizeof why) != MD_OK) {
                rc = md_error_set(err, "%s: key 'cross': models do not pair for cross-model patching: %s and %s: %s "
                                       "(use a base model and its own post-trained version)",
                                  where, dir0, dir, why);
            }
        }
    }
    md_tokenizer_free(tok0);
    free(tmp.combos);
    return rc;
}

/* The tokenizer and config of the first model of the experiment. */
static int kn_first_model(const md_kind_ctx *ctx, md_tokenizer **tok, md_config *cfg, md_error *err)
{
    const char *role = md_exp_get_role(ctx, 0);
    const char *dir = role ? md_params_map_get(&ctx->job->top, "models", role) : NULL;
    if (!dir) return md_error_set(err, "experiment '%s': no model roles", ctx->exp->name);
    if (md_hf_config_load_dir(cfg, dir, err) != MD_OK) return MD_ERR;
    return md_tokenizer_load(tok, dir, err);
}

static char *join_strings(char **v, const int *idx, int n, size_t *total)
{
    size_t len = 0;
    for (int i = 0; i < n; i++) len += strlen(v[idx[i]]) + 1;
    char *out = malloc(len ? len : 1), *p = out;
    if (!out) return NULL;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(v[idx[i]]) + 1;
        memcpy(p, v[idx[i]], l);
        p += l;
    }
    *total = len;
    return out;
}

static int kn_plan(const md_kind_ctx *ctx, int stage, const md_blob *input, md_plan *plan, md_error *err)
{
    (void)stage;
    (void)input;
    md_tokenizer *tok = NULL;
    md_config cfg;
    kn_state *s = NULL;
    int rc = MD_ERR;
    int *ia = NULL, *ib = NULL, *ti = NULL, *fi = NULL, *sf = NULL, *sl = NULL, *pl = NULL;
    char *ts = NULL, *fs = NULL;
    if (kn_first_model(ctx, &tok, &cfg, err) != MD_OK) goto done;
    if (kn_state_build(ctx, tok, &cfg, &s, err) != MD_OK) goto done;
    int store = md_params_bool(&ctx->exp->params, "store_activations");
    for (int d = 0; d < s->n_ds; d++) {
        md_kn_dataset *ds = &s->ds[d];
        int64_t P = ds->n_pairs, L = s->n_layers, N = ds->n_toks;
        char path[MD_PATH_MAX];
        const char *strs[] = {"true_statement", "false_statement"};
        for (int k = 0; k < 2; k++) {
            snprintf(path, sizeof path, "%s/pairs/%s", ds->name, strs[k]);
            md_dset_decl dd = {.type = MD_H5_STR, .rank = 1, .dims = {P}, .dim_names = {"pair"},
                               .description = k ? "the FALSE statement of each pair" : "the TRUE statement of each pair"};
            snprintf(dd.path, sizeof dd.path, "%s", path);
            if (md_plan_dataset(plan, &dd, err) != MD_OK) goto done;
        }
        const char *ints[] = {"true_ids", "false_ids"};
        for (int k = 0; k < 2; k++) {
            md_dset_decl dd = {.type = MD_H5_I32, .rank = 2, .dims = {P, N}, .dim_names = {"pair", "position"},
                               .description = "token ids of the patched window (the last n_toks prompt positions)"};
            snprintf(dd.path, sizeof dd.path, "%s/pairs/%s", ds->name, ints[k]);
            if (md_plan_dataset(plan, &dd, err) != MD_OK) goto done;
        }
        const char *spans[] = {"subject_first", "subject_last", "prompt_len"};
        for (int k = 0; k < 3; k++) {
            md_dset_decl dd = {.type = MD_H5_I32, .rank = 1, .dims = {P}, .dim_names = {"pair"},
                               .description = k < 2 ? "window index of the first/last position where the prompts "
                                                      "differ (the subject); -1 = before the window"
                                                    : "tokens in the prompt (BOS included)"};
            snprintf(dd.path, sizeof dd.path, "%s/pairs/%s", ds->name, spans[k]);
            if (md_plan_dataset(plan, &dd, err) != MD_OK) goto done;
        }
        char val[4096];
        snprintf(path, sizeof path, "%s/pairs/true_statement", ds->name);
        snprintf(val, sizeof val, "%d", ds->n_pairs);
        if (md_plan_attr(plan, path, "pairs_kept", val, err) != MD_OK) goto done;
        snprintf(val, sizeof val, "%d", ds->dropped_no_partner);
        if (md_plan_attr(plan, path, "dropped_no_partner", val, err) != MD_OK) goto done;
        snprintf(val, sizeof val, "%d", ds->dropped_prompt_mismatch);
        if (md_plan_attr(plan, path, "dropped_prompt_mismatch", val, err) != MD_OK) goto done;
        snprintf(val, sizeof val, "%d", ds->dropped_max_pairs);
        if (md_plan_attr(plan, path, "dropped_max_pairs", val, err) != MD_OK) goto done;
        snprintf(val, sizeof val, "%d", ds->unpaired_false);
        if (md_plan_attr(plan, path, "unpaired_false", val, err) != MD_OK) goto done;
        if (md_plan_attr(plan, path, "few_shot_prefix", ds->few_shot, err) != MD_OK) goto done;
        snprintf(val, sizeof val, "%d", ds->n_toks);
        if (md_plan_attr(plan, path, "n_toks", val, err) != MD_OK) goto done;
        snprintf(val, sizeof val, "%d", ds->suffix_tokens);
        if (md_plan_attr(plan, path, "suffix_tokens", val, err) != MD_OK) goto done;
        /* The window of pair 0 as decoded token texts (heatmap axis labels). */
        {
            size_t off = 0;
            const md_kn_pair *p0 = &ds->pairs[0];
            off += (size_t)snprintf(val + off, sizeof val - off, "[");
            for (int j = 0; j < ds->n_toks && off < sizeof val - 64; j++) {
                char *piece = NULL;
                if (md_tokenizer_decode(tok, &p0->true_ids[p0->len - ds->n_toks + j], 1, 0, &piece, err) != MD_OK)
                    goto done;
                off += (size_t)snprintf(val + off, sizeof val - off, "%s\"", j ? ", " : "");
                for (const char *c = piece; *c && off < sizeof val - 16; c++) {
                    if (*c == '"' || *c == '\\') off += (size_t)snprintf(val + off, sizeof val - off, "\\%c", *c);
                    else if ((unsigned char)*c < 0x20) off += (size_t)snprintf(val + off, sizeof val - off, "\\u%04x", *c);
                    else val[off++] = *c;
                }
                off += (size_t)snprintf(val + off, sizeof val - off, "\"");
                free(piece);
            }
            snprintf(val + off, sizeof val - off, "]");
            if (md_plan_attr(plan, path, "window_tokens_json", val, err) != MD_OK) goto done;
        }

        /* pair tables, known now */
        ia = malloc((size_t)P * sizeof(int));
        ib = malloc((size_t)P * sizeof(int));
        ti = malloc((size_t)(P * N) * sizeof(int));
        fi = malloc((size_t)(P * N) * sizeof(int));
        sf = malloc((size_t)P * sizeof(int));
        sl = malloc((size_t)P * sizeof(int));
        pl = malloc((size_t)P * sizeof(int));
        if (!ia || !ib || !ti || !fi || !sf || !sl || !pl) {
            md_error_set(err, "out of memory");
            goto done;
        }
        for (int i = 0; i < P; i++) {
            const md_kn_pair *pr = &ds->pairs[i];
            ia[i] = pr->true_row;
            ib[i] = pr->false_row;
            int w0 = pr->len - (int)N;
            memcpy(ti + (size_t)i * N, pr->true_ids + w0, (size_t)N * sizeof(int));
            memcpy(fi + (size_t)i * N, pr->false_ids + w0, (size_t)N * sizeof(int));
            sf[i] = pr->diff_first >= w0 ? pr->diff_first - w0 : -1;
            sl[i] = pr->diff_last >= w0 ? pr->diff_last - w0 : -1;
            pl[i] = pr->len;
        }
        size_t nts = 0, nfs = 0;
        ts = join_strings(ds->statements, ia, (int)P, &nts);
        fs = join_strings(ds->statements, ib, (int)P, &nfs);
        if (!ts || !fs) {
            md_error_set(err, "out of memory");
            goto done;
        }
        int64_t off1[1] = {0}, cnt1[1] = {P}, off2[2] = {0, 0}, cnt2[2] = {P, N};
#define PUT(nm, rank, off, cnt, data, bytes) \
    snprintf(path, sizeof path, "%s/pairs/%s", ds->name, nm); \
    if (md_plan_put(plan, path, off, cnt, data, bytes, err) != MD_OK) goto done;
        PUT("true_statement", 1, off1, cnt1, ts, nts);
        PUT("false_statement", 1, off1, cnt1, fs, nfs);
        PUT("true_ids", 2, off2, cnt2, ti, (size_t)(P * N) * sizeof(int));
        PUT("false_ids", 2, off2, cnt2, fi, (size_t)(P * N) * sizeof(int));
        PUT("subject_first", 1, off1, cnt1, sf, (size_t)P * sizeof(int));
        PUT("subject_last", 1, off1, cnt1, sl, (size_t)P * sizeof(int));
        PUT("prompt_len", 1, off1, cnt1, pl, (size_t)P * sizeof(int));
#undef PUT
        free(ia), free(ib), free(ti), free(fi), free(sf), free(sl), free(pl), free(ts), free(fs);
        ia = ib = ti = fi = sf = sl = pl = NULL;
        ts = fs = NULL;

        for (int c = 0; c < s->n_combos; c++) {
            const kn_combo *cb = &s->combos[c];
            md_dset_decl eff = {.type = MD_H5_F32, .rank = 3, .dims = {P, L, N},
                                .dim_names = {"pair", "layer", "position"}, .chunk = {16, L, N}, .deflate = 1,
                                .units = "logit",
                                .description = "logit(TRUE) - logit(FALSE) at the last position of the target's "
                                               "FALSE run with the source's TRUE state patched in at (layer, position)"};
            snprintf(eff.path, sizeof eff.path, "%s/%s/%s/effect", ds->name, cb->target, cb->source);
            if (md_plan_dataset(plan, &eff, err) != MD_OK) goto done;
            md_dset_decl ct = {.type = MD_H5_F32, .rank = 1, .dims = {P}, .dim_names = {"pair"}, .units = "logit",
                               .description = "logit(TRUE) - logit(FALSE) of the source model on the TRUE prompt"};
            snprintf(ct.path, sizeof ct.path, "%s/%s/%s/clean_true", ds->name, cb->target, cb->source);
            if (md_plan_dataset(plan, &ct, err) != MD_OK) goto done;
            md_dset_decl cf = ct;
            cf.description = "logit(TRUE) - logit(FALSE) of the target model on the FALSE prompt";
            snprintf(cf.path, sizeof cf.path, "%s/%s/%s/clean_false", ds->name, cb->target, cb->source);
            if (md_plan_dataset(plan, &cf, err) != MD_OK) goto done;
            if (store && c < s->n_self) {
                const char *which[] = {"acts_true", "acts_false"};
                for (int k = 0; k < 2; k++) {
                    md_dset_decl ad = {.type = MD_H5_F32, .rank = 4, .dims = {P, L, N, s->width},
                                       .dim_names = {"pair", "layer", "position", "hidden"},
                                       .chunk = {1, L, N, s->width}, .deflate = 4, .units = "activation",
                                       .description = "clean activations at the hook point (window positions)"};
                    snprintf(ad.path, sizeof ad.path, "%s/%s/%s/%s", ds->name, cb->target, cb->source, which[k]);
                    if (md_plan_dataset(plan, &ad, err) != MD_OK) goto done;
                }
            }
        }
    }
    if (md_plan_attr(plan, "", "hook", md_params_str(&ctx->exp->params, "hook"), err) != MD_OK) goto done;
    if (md_plan_units(plan, s->unit_base[s->n_ds] > 0 ? s->unit_base[s->n_ds] : 1, err) != MD_OK) goto done;
    for (int d = 0; d < s->n_ds; d++)
        for (int64_t u = s->unit_base[d]; u < s->unit_base[d + 1]; u++)
            md_plan_cost(plan, u, (double)s->ds[d].pairs[(u - s->unit_base[d]) % s->ds[d].n_pairs].len);
    rc = MD_OK;
done:
    free(ia), free(ib), free(ti), free(fi), free(sf), free(sl), free(pl), free(ts), free(fs);
    kn_state_free(s);
    md_tokenizer_free(tok);
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

static void kn_locate(const kn_state *s, int64_t unit, int *d, int *c, int *pair)
{
    int i = 0;
    while (i + 1 < s->n_ds && unit >= s->unit_base[i + 1]) i++;
    int64_t r = unit - s->unit_base[i];
    *d = i;
    *c = (int)(r / s->ds[i].n_pairs);
    *pair = (int)(r % s->ds[i].n_pairs);
}

static void kn_unit_name(const md_kind_ctx *ctx, int stage, int64_t unit, char *buf, size_t len)
{
    (void)stage;
    /* Without state here, name the unit by its index and the experiment. */
    snprintf(buf, len, "%s/unit %lld", ctx->exp->name, (long long)unit);
}

/* One clean run: logit diff at the last position, and READ hooks filling
 * `reads` (may be NULL) for the window [w0, T). */
static int clean_run(md_model *m, const int *ids, int T, const md_hook *reads, int n_reads, md_kvcache *kc,
                     const int *metric_ids, float *diff, md_error *err)
{
    float lg[2];
    md_forward f;
    md_forward_init_tokens(&f, m, 1, T, ids);
    f.cache = kc;
    f.hooks = reads;
    f.n_hooks = n_reads;
    f.logit_ids = metric_ids;
    f.n_logit_ids = 2;
    f.logits_out = lg;
    if (md_model_forward(m, &f, err) != MD_OK) return MD_ERR;
    *diff = lg[0] - lg[1];
    return MD_OK;
}

static int kn_compute(const md_kind_ctx *ctx, md_worker *w, void *state, int stage, const md_blob *input,
                      int64_t unit, md_result *out, md_error *err)
{
    (void)stage;
    (void)input;
    kn_state *s = state;
    int di, ci, pi;
    kn_locate(s, unit, &di, &ci, &pi);
    const md_kn_dataset *ds = &s->ds[di];
    const md_kn_pair *pr = &ds->pairs[pi];
    const kn_combo *cb = &s->combos[ci];
    int naive = md_params_bool(&ctx->exp->params, "naive");
    int store = md_params_bool(&ctx->exp->params, "store_activations") && ci < s->n_self;
    md_model *A = NULL, *B = NULL;
    if (md_worker_model(w, cb->source, &A, err) != MD_OK || md_worker_model(w, cb->target, &B, err) != MD_OK)
        return MD_ERR;
    int L = s->n_layers, T = pr->len, N = ds->n_toks, w0 = T - N, W = s->width, d = B->cfg.d_model;
    int V2[2] = {s->id_true, s->id_false};
    int rc = MD_ERR;
    size_t win = (size_t)L * N * W;
    float *src = malloc(win * sizeof(float));          /* A's TRUE states [L][N][W] */
    float *fal = store ? malloc(win * sizeof(float)) : NULL; /* B's FALSE states at the hook point */
    float *pre = malloc((size_t)L * N * d * sizeof(float)); /* B's FALSE residual [L][N][d] */
    float *effect = malloc((size_t)L * N * sizeof(float));
    float *rin = malloc((size_t)L * N * d * sizeof(float));
    float *lg = malloc((size_t)L * 2 * sizeof(float));
    int *starts = malloc((size_t)L * sizeof(int));
    md_hook *hooks = malloc((size_t)L * sizeof(md_hook));
    md_kvcache *root = NULL, *fork = NULL;
    if (!src || (store && !fal) || !pre || !effect || !rin || !lg || !starts || !hooks) {
        md_error_set(err, "out of memory");
        goto done;
    }
    int fast_post = s->hook == MD_HOOK_RESID_POST && !naive;
    float ct = 0, cf = 0;
    /* 1. A on TRUE: the hook point in the window. Hooks read one position
     *    each, so the buffers are [L][N][W] = layer-major per position. */
    {
        md_hook rd = {.point = s->hook, .op = MD_HOOK_READ, .layer = MD_ALL, .seq = 0, .pos = MD_ALL};
        md_kvcache *kc = NULL;
        float *all = malloc((size_t)L * T * W * sizeof(float));
        if (!all) {
            md_error_set(err, "out of memory");
            goto done;
        }
        rd.out = all;
        if (md_kvcache_create(&kc, A, 1, T, err) != MD_OK || clean_run(A, pr->true_ids, T, &rd, 1, kc, V2, &ct, err) != MD_OK) {
            md_kvcache_free(kc);
            free(all);
            goto done;
        }
        for (int l = 0; l < L; l++) memcpy(src + (size_t)l * N * W, all + ((size_t)l * T + w0) * W, (size_t)N * W * sizeof(float));
        md_kvcache_free(kc);
        free(all);
    }
    /* 2. B on FALSE: its cache, and the residual each partial forward starts
     *    from (resid_post of l for the resid_post fast path, else resid_pre of l). */
    {
        float *all = malloc((size_t)L * T * d * sizeof(float)), *allh = store ? malloc((size_t)L * T * W * sizeof(float)) : NULL;
        md_hook rd[2] = {{.point = fast_post ? MD_HOOK_RESID_POST : MD_HOOK_RESID_PRE, .op = MD_HOOK_READ,
                          .layer = MD_ALL, .seq = 0, .pos = MD_ALL, .out = all},
                         {.point = s->hook, .op = MD_HOOK_READ, .layer = MD_ALL, .seq = 0, .pos = MD_ALL, .out = allh}};
        if (!all || (store && !allh)) {
            free(all);
            free(allh);
            md_error_set(err, "out of memory");
            goto done;
        }
        if (md_kvcache_create(&root, B, 1, T, err) != MD_OK ||
            clean_run(B, pr->false_ids, T, rd, store ? 2 : 1, root, V2, &cf, err) != MD_OK) {
            free(all);
            free(allh);
            goto done;
        }
        for (int l = 0; l < L; l++) {
            memcpy(pre + (size_t)l * N * d, all + ((size_t)l * T + w0) * d, (size_t)N * d * sizeof(float));
            if (store) memcpy(fal + (size_t)l * N * W, allh + ((size_t)l * T + w0) * W, (size_t)N * W * sizeof(float));
        }
        free(all);
        free(allh);
    }
    /* 3. The grid. */
    for (int j = 0; j < N; j++) {
        int t = w0 + j, np = T - t;
        if (naive) {
            for (int l = 0; l < L; l++) {
                md_hook h = {.point = s->hook, .op = MD_HOOK_REPLACE, .layer = l, .seq = 0, .pos = t,
                             .vec = src + ((size_t)l * N + j) * W};
                md_kvcache *kc = NULL;
                float diff;
                if (md_kvcache_create(&kc, B, 1, T, err) != MD_OK) goto done;
                int r = clean_run(B, pr->false_ids, T, &h, 1, kc, V2, &diff, err);
                md_kvcache_free(kc);
                if (r != MD_OK) goto done;
                effect[(size_t)l * N + j] = diff;
            }
            continue;
        }
        if (md_kvcache_fork(&fork, root, t, L, np, err) != MD_OK) goto done;
        md_forward f;
        md_forward_init(&f, B);
        f.n_seq = L;
        f.t0 = t;
        f.t1 = T;
        f.cache = fork;
        f.seq_layer_start = starts;
        f.resid_in = rin;
        f.logit_ids = V2;
        f.n_logit_ids = 2;
        f.logits_out = lg;
        for (int l = 0; l < L; l++) {
            /* sequence l: B's clean residual at positions [t, T) ... */
            memcpy(rin + (size_t)l * np * d, pre + ((size_t)l * N + j) * d, (size_t)np * d * sizeof(float));
            if (fast_post) {
                /* ... after layer l, with A's TRUE state at t: start at l+1 */
                starts[l] = l + 1;
                memcpy(rin + (size_t)l * np * d, src + ((size_t)l * N + j) * W, (size_t)d * sizeof(float));
            } else {
                /* ... before layer l; the hook puts A's state in at (l, t) */
                starts[l] = l;
                hooks[l] = (md_hook){.point = s->hook, .op = MD_HOOK_REPLACE, .layer = l, .seq = l, .pos = t,
                                     .vec = src + ((size_t)l * N + j) * W};
            }
        }
        f.hooks = fast_post ? NULL : hooks;
        f.n_hooks = fast_post ? 0 : L;
        int r = md_model_forward(B, &f, err);
        md_kvcache_free(fork);
        fork = NULL;
        if (r != MD_OK) goto done;
        for (int l = 0; l < L; l++) effect[(size_t)l * N + j] = lg[2 * l] - lg[2 * l + 1];
    }
    char path[MD_PATH_MAX];
    int64_t o3[3] = {pi, 0, 0}, c3[3] = {1, L, N}, o1[1] = {pi}, c1[1] = {1};
    snprintf(path, sizeof path, "%s/%s/%s/effect", ds->name, cb->target, cb->source);
    if (md_result_put(out, path, 3, o3, c3, effect, (size_t)L * N * sizeof(float), err) != MD_OK) goto done;
    snprintf(path, sizeof path, "%s/%s/%s/clean_true", ds->name, cb->target, cb->source);
    if (md_result_put(out, path, 1, o1, c1, &ct, sizeof ct, err) != MD_OK) goto done;
    snprintf(path, sizeof path, "%s/%s/%s/clean_false", ds->name, cb->target, cb->source);
    if (md_result_put(out, path, 1, o1, c1, &cf, sizeof cf, err) != MD_OK) goto done;
    if (store) {
        int64_t o4[4] = {pi, 0, 0, 0}, c4[4] = {1, L, N, W};
        snprintf(path, sizeof path, "%s/%s/%s/acts_true", ds->name, cb->target, cb->source);
        if (md_result_put(out, path, 4, o4, c4, src, win * sizeof(float), err) != MD_OK) goto done;
        snprintf(path, sizeof path, "%s/%s/%s/acts_false", ds->name, cb->target, cb->source);
        if (md_result_put(out, path, 4, o4, c4, fal, win * sizeof(float), err) != MD_OK) goto done;
    }
    rc = MD_OK;
done:
    if (rc != MD_OK) md_error_prefix(err, "%s pair %d (%s -> %s)", ds->name, pi, cb->source, cb->target);
    md_kvcache_free(fork);
    md_kvcache_free(root);
    free(src);
    free(fal);
    free(pre);
    free(effect);
    free(rin);
    free(lg);
    free(starts);
    free(hooks);
    return rc;
}

const md_kind md_kind_knowledge = {
    .name = "knowledge",
    .doc = "Activation patching between TRUE and FALSE statements (causal tracing), within each model and "
           "across models: effect[pair, layer, position] = logit(TRUE) - logit(FALSE) with the TRUE run's "
           "state patched into the FALSE run (docs/methods.md, Knowledge).",
    .keys = KNOWLEDGE_KEYS,
    .validate = kn_validate,
    .plan = kn_plan,
    .prepare = kn_prepare,
    .release_state = kn_state_free,
    .compute = kn_compute,
    .unit_name = kn_unit_name,
};
