/* kn_output.c — the outputs table of the `knowledge` kind and the plan-time
 * pair tables of a dataset (see kn_output.h and knowledge.c). */
#include "exp/kn_output.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/exp_output.h"

#define KO_SUBJECT_DOC "window index of the first/last position where the prompts differ (the subject); -1 = before the window"
#define KO_IDS_DOC "token ids of the patched window (the last n_toks prompt positions)"
#define KO_TOKENS_DOC                                                                                        \
    "decoded text of each token of the window (one token each; U+FFFD marks a byte of a character split over " \
    "tokens)"
#define KO_WINDOW_AXES "pairs, layers, window positions (-n_toks..-1 from the end; tokens: pairs/true_tokens)"
const md_output MD_KN_OUTPUTS[] = {
    [KO_TRUE_STATEMENT] = {.path = "{dataset}/pairs/true_statement", .type = MD_H5_STR, .dims = "pair",
                           .description = "the TRUE statement of each pair", .stage = 0, .at_plan = 1},
    [KO_FALSE_STATEMENT] = {.path = "{dataset}/pairs/false_statement", .type = MD_H5_STR, .dims = "pair",
                            .description = "the FALSE statement of each pair", .stage = 0, .at_plan = 1},
    [KO_TRUE_IDS] = {.path = "{dataset}/pairs/true_ids", .type = MD_H5_I32, .dims = "pair,position",
                     .description = KO_IDS_DOC, .stage = 0, .at_plan = 1},
    [KO_FALSE_IDS] = {.path = "{dataset}/pairs/false_ids", .type = MD_H5_I32, .dims = "pair,position",
                      .description = KO_IDS_DOC, .stage = 0, .at_plan = 1},
    [KO_TRUE_TOKENS] = {.path = "{dataset}/pairs/true_tokens", .type = MD_H5_STR, .dims = "pair,position",
                        .axes = "pairs, window positions (as true_ids)", .description = KO_TOKENS_DOC " (TRUE prompt)",
                        .stage = 0, .at_plan = 1},
    [KO_FALSE_TOKENS] = {.path = "{dataset}/pairs/false_tokens", .type = MD_H5_STR, .dims = "pair,position",
                         .axes = "pairs, window positions (as false_ids)",
                         .description = KO_TOKENS_DOC " (FALSE prompt)", .stage = 0, .at_plan = 1},
    [KO_WINDOW_POSITION] = {.path = "{dataset}/pairs/window_position", .type = MD_H5_I32, .dims = "pair,position",
                            .axes = "pairs, window positions", .units = "token index",
                            .description = "absolute index in the prompt (0 = its first token) of each window column "
                                           "(TRUE and FALSE prompts have the same length)",
                            .stage = 0, .at_plan = 1},
    [KO_SUBJECT_FIRST] = {.path = "{dataset}/pairs/subject_first", .type = MD_H5_I32, .dims = "pair",
                          .description = KO_SUBJECT_DOC, .stage = 0, .at_plan = 1},
    [KO_SUBJECT_LAST] = {.path = "{dataset}/pairs/subject_last", .type = MD_H5_I32, .dims = "pair",
                         .description = KO_SUBJECT_DOC, .stage = 0, .at_plan = 1},
    [KO_PROMPT_LEN] = {.path = "{dataset}/pairs/prompt_len", .type = MD_H5_I32, .dims = "pair",
                       .description = "tokens in the prompt (with the BOS token where the tokenizer adds one: the "
                                      "file's description says which)",
                       .stage = 0, .at_plan = 1},
    [KO_EFFECT] = {.path = "{dataset}/{source}->{target}/effect", .type = MD_H5_F32, .dims = "pair,layer,position",
                   .axes = KO_WINDOW_AXES, .units = "logit",
                   .description = "logit(TRUE) - logit(FALSE) at the last position of the target's FALSE run with the "
                                  "source's TRUE state patched in at (layer, position)",
                   .stage = 0, .chunk_rows = 16, .deflate = 1},
    [KO_EFFECT_HEAD] = {.path = "{dataset}/{source}->{target}/effect_head", .type = MD_H5_F32,
                        .dims = "pair,layer,head,position", .units = "logit",
                        .axes = "pairs, layers, attention heads, window positions (-n_toks..-1 from the end; tokens: "
                                "pairs/true_tokens)",
                        .description = "logit(TRUE) - logit(FALSE) at the last position of the target's FALSE run with "
                                       "the source's TRUE output z of one head patched in at (layer, head, position)",
                        .stage = 0, .chunk_rows = 4, .deflate = 1},
    [KO_CLEAN_TRUE] = {.path = "{dataset}/{source}->{target}/clean_true", .type = MD_H5_F32, .dims = "pair",
                       .units = "logit",
                       .description = "logit(TRUE) - logit(FALSE) of the source model on the TRUE prompt", .stage = 0},
    [KO_CLEAN_FALSE] = {.path = "{dataset}/{source}->{target}/clean_false", .type = MD_H5_F32, .dims = "pair",
                        .units = "logit",
                        .description = "logit(TRUE) - logit(FALSE) of the target model on the FALSE prompt", .stage = 0},
    [KO_ACTS_TRUE] = {.path = "{dataset}/{source}->{target}/acts_true", .type = MD_H5_F32,
                      .dims = "pair,layer,position,hidden", .units = "activation",
                      .description = "clean activations at the hook point (window positions)", .stage = 0,
                      .chunk_rows = 1, .deflate = 4},
    [KO_ACTS_FALSE] = {.path = "{dataset}/{source}->{target}/acts_false", .type = MD_H5_F32,
                       .dims = "pair,layer,position,hidden", .units = "activation",
                       .description = "clean activations at the hook point (window positions)", .stage = 0,
                       .chunk_rows = 1, .deflate = 4},
    {0}};

void md_kn_group(char *buf, size_t cap, const char *dataset, const char *source, const char *target)
{
    snprintf(buf, cap, "%s/%s->%s", dataset, source, target);
}

int md_kn_plan_group_attrs(md_plan *plan, const char *dataset, const char *source, const char *target,
                           md_error *err)
{
    char group[MD_PATH_MAX], desc[512];
    md_kn_group(group, sizeof group, dataset, source, target);
    if (strcmp(source, target) == 0)
        snprintf(desc, sizeof desc, "within %s: its TRUE states patched into its own FALSE run", source);
    else
        snprintf(desc, sizeof desc, "across models: the TRUE states of %s (source) patched into the FALSE run of %s "
                 "(target)", source, target);
    if (md_plan_attr(plan, group, "source", source, err) != MD_OK ||
        md_plan_attr(plan, group, "target", target, err) != MD_OK)
        return MD_ERR;
    return md_plan_attr(plan, group, "description", desc, err);
}

/* The window of pair 0 as decoded token texts, a JSON list (heatmap axis
 * labels; the tokens of every pair are in pairs/true_tokens), into val[cap]. */
static int kn_window_json(const md_kn_dataset *ds, const md_tokenizer *tok, char *val, size_t cap, md_error *err)
{
    size_t off = 0;
    const md_kn_pair *p0 = &ds->pairs[0];
    off += (size_t)snprintf(val + off, cap - off, "[");
    for (int j = 0; j < ds->n_toks && off < cap - 64; j++) {
        char *piece = NULL;
        if (md_tokenizer_decode(tok, &p0->true_ids[p0->len - ds->n_toks + j], 1, 0, &piece, err) != MD_OK)
            return MD_ERR;
        off += (size_t)snprintf(val + off, cap - off, "%s\"", j ? ", " : "");
        for (const char *c = piece; *c && off < cap - 16; c++) {
            if (*c == '"' || *c == '\\') off += (size_t)snprintf(val + off, cap - off, "\\%c", *c);
            else if ((unsigned char)*c < 0x20) off += (size_t)snprintf(val + off, cap - off, "\\u%04x", *c);
            else val[off++] = *c;
        }
        off += (size_t)snprintf(val + off, cap - off, "\"");
        free(piece);
    }
    snprintf(val + off, cap - off, "]");
    return MD_OK;
}

/* The curation counts, prompt facts and window tokens of dataset ds, as
 * attributes of <ds>/pairs/true_statement; the prompt length's description
 * says whether the tokenizer adds a BOS token. */
static int kn_plan_pair_attrs(md_plan *plan, const md_kn_dataset *ds, const md_tokenizer *tok, md_error *err)
{
    char path[MD_PATH_MAX], val[4096], bos[256];
    snprintf(path, sizeof path, "%s/pairs/true_statement", ds->name);
    const char *names[] = {"pairs_kept", "dropped_no_partner", "dropped_prompt_mismatch", "dropped_max_pairs",
                           "unpaired_false"};
    const int counts[] = {ds->n_pairs, ds->dropped_no_partner, ds->dropped_prompt_mismatch, ds->dropped_max_pairs,
                          ds->unpaired_false};
    for (int i = 0; i < 5; i++) {
        snprintf(val, sizeof val, "%d", counts[i]);
        if (md_plan_attr(plan, path, names[i], val, err) != MD_OK) return MD_ERR;
    }
    if (md_plan_attr(plan, path, "few_shot_prefix", ds->few_shot, err) != MD_OK) return MD_ERR;
    snprintf(val, sizeof val, "%d", ds->n_toks);
    if (md_plan_attr(plan, path, "n_toks", val, err) != MD_OK) return MD_ERR;
    snprintf(val, sizeof val, "%d", ds->suffix_tokens);
    if (md_plan_attr(plan, path, "suffix_tokens", val, err) != MD_OK) return MD_ERR;
    if (kn_window_json(ds, tok, val, sizeof val, err) != MD_OK) return MD_ERR;
    if (md_plan_attr(plan, path, "window_tokens_json", val, err) != MD_OK) return MD_ERR;
    if (md_exp_bos_note(tok, bos, sizeof bos, err) != MD_OK) return MD_ERR;
    snprintf(path, sizeof path, "%s/pairs/prompt_len", ds->name);
    snprintf(val, sizeof val, "tokens in the prompt (%s)", bos);
    return md_plan_attr(plan, path, "description", val, err);
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

/* The window tables of dataset ds: ids, decoded tokens and absolute
 * positions [pair, position] of the TRUE and FALSE prompts. */
static int kn_plan_window(md_plan *plan, const md_kn_dataset *ds, const md_tokenizer *tok, md_error *err)
{
    int64_t P = ds->n_pairs, N = ds->n_toks;
    size_t b2 = (size_t)(P * N) * sizeof(int), nts = 0, nfs = 0;
    int *ti = malloc(b2), *fi = malloc(b2), *wp = malloc(b2);
    char *tt = NULL, *ft = NULL;
    int rc = MD_ERR;
    if (!ti || !fi || !wp) {
        md_error_set(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < P; i++) {
        const md_kn_pair *pr = &ds->pairs[i];
        int w0 = pr->len - (int)N;
        memcpy(ti + (size_t)i * N, pr->true_ids + w0, (size_t)N * sizeof(int));
        memcpy(fi + (size_t)i * N, pr->false_ids + w0, (size_t)N * sizeof(int));
        for (int j = 0; j < N; j++) wp[(size_t)i * N + j] = w0 + j;
    }
    if (md_exp_token_strings(tok, ti, P * N, &tt, &nts, err) != MD_OK ||
        md_exp_token_strings(tok, fi, P * N, &ft, &nfs, err) != MD_OK)
        goto done;
    const char *const args[] = {ds->name};
    const md_output *o = MD_KN_OUTPUTS;
    if (md_plan_output_put(plan, &o[KO_TRUE_IDS], args, ti, b2, err) != MD_OK ||
        md_plan_output_put(plan, &o[KO_FALSE_IDS], args, fi, b2, err) != MD_OK ||
        md_plan_output_put(plan, &o[KO_TRUE_TOKENS], args, tt, nts, err) != MD_OK ||
        md_plan_output_put(plan, &o[KO_FALSE_TOKENS], args, ft, nfs, err) != MD_OK ||
        md_plan_output_put(plan, &o[KO_WINDOW_POSITION], args, wp, b2, err) != MD_OK)
        goto done;
    rc = MD_OK;
done:
    free(ti), free(fi), free(wp), free(tt), free(ft);
    return rc;
}

/* The per-pair tables of dataset ds: statements, subject span, prompt length. */
static int kn_plan_pair_rows(md_plan *plan, const md_kn_dataset *ds, md_error *err)
{
    int64_t P = ds->n_pairs, N = ds->n_toks;
    size_t b1 = (size_t)P * sizeof(int), nts = 0, nfs = 0;
    int *ia = malloc(b1), *ib = malloc(b1), *sf = malloc(b1), *sl = malloc(b1), *pl = malloc(b1);
    char *ts = NULL, *fs = NULL;
    int rc = MD_ERR;
    if (!ia || !ib || !sf || !sl || !pl) goto oom;
    for (int i = 0; i < P; i++) {
        const md_kn_pair *pr = &ds->pairs[i];
        int w0 = pr->len - (int)N;
        ia[i] = pr->true_row, ib[i] = pr->false_row;
        sf[i] = pr->diff_first >= w0 ? pr->diff_first - w0 : -1;
        sl[i] = pr->diff_last >= w0 ? pr->diff_last - w0 : -1;
        pl[i] = pr->len;
    }
    ts = join_strings(ds->statements, ia, (int)P, &nts);
    fs = join_strings(ds->statements, ib, (int)P, &nfs);
    if (!ts || !fs) goto oom;
    const char *const args[] = {ds->name};
    const md_output *o = MD_KN_OUTPUTS;
    if (md_plan_output_put(plan, &o[KO_TRUE_STATEMENT], args, ts, nts, err) != MD_OK ||
        md_plan_output_put(plan, &o[KO_FALSE_STATEMENT], args, fs, nfs, err) != MD_OK ||
        md_plan_output_put(plan, &o[KO_SUBJECT_FIRST], args, sf, b1, err) != MD_OK ||
        md_plan_output_put(plan, &o[KO_SUBJECT_LAST], args, sl, b1, err) != MD_OK ||
        md_plan_output_put(plan, &o[KO_PROMPT_LEN], args, pl, b1, err) != MD_OK)
        goto done;
    rc = MD_OK;
    goto done;
oom:
    md_error_set(err, "out of memory");
done:
    free(ia), free(ib), free(sf), free(sl), free(pl), free(ts), free(fs);
    return rc;
}

int md_kn_plan_pairs(md_plan *plan, const md_kn_dataset *ds, const md_tokenizer *tok, md_error *err)
{
    int64_t N = ds->n_toks, *rel = malloc((size_t)N * sizeof *rel);
    if (!rel) return md_error_set(err, "out of memory");
    for (int64_t j = 0; j < N; j++) rel[j] = j - N;
    int rc = md_plan_axis_values(plan, ds->name, "position", rel, N,
                                 "token position counted from the end of the prompt (-1 = its last token); the "
                                 "absolute index of each pair's column: pairs/window_position",
                                 err);
    free(rel);
    if (rc != MD_OK || md_plan_axis_size(plan, ds->name, "pair", ds->n_pairs, err) != MD_OK) return MD_ERR;
    if (kn_plan_pair_rows(plan, ds, err) != MD_OK || kn_plan_window(plan, ds, tok, err) != MD_OK) return MD_ERR;
    return kn_plan_pair_attrs(plan, ds, tok, err);
}
