/* exp_util.c — the job context of an experiment kind (see exp_util.h). */
#include "mechdiff/exp_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/tokcache.h"

const char *md_exp_format_where(const md_kind_ctx *ctx, char *buf, size_t n)
{
    snprintf(buf, n, "%s:%d:%d: experiment '%s'", ctx->job->source, ctx->exp->line, ctx->exp->col, ctx->exp->name);
    return buf;
}

int md_exp_count_roles(const md_kind_ctx *ctx)
{
    int n = md_params_count(&ctx->exp->params, "models");
    return n > 0 ? n : md_params_count(&ctx->job->top, "models");
}

const char *md_exp_get_role(const md_kind_ctx *ctx, int i)
{
    return md_params_count(&ctx->exp->params, "models") > 0 ? md_params_item(&ctx->exp->params, "models", i)
                                                              : md_params_item(&ctx->job->top, "models", i);
}

int md_exp_resolve_roles(const md_kind_ctx *ctx, const char *where, const char **roles, int max, int *n,
                         md_error *err)
{
    int nr = md_exp_count_roles(ctx);
    if (nr < 1 || nr > max) return md_error_set(err, "%s: key 'models': %d roles (1 to %d allowed)", where, nr, max);
    for (int i = 0; i < nr; i++) {
        roles[i] = md_exp_get_role(ctx, i);
        if (!md_params_map_get(&ctx->job->top, "models", roles[i]))
            return md_error_set(err, "%s: key 'models': role '%s' is not in the job's models map", where, roles[i]);
    }
    *n = nr;
    return MD_OK;
}

int md_exp_load_role(const md_kind_ctx *ctx, const char *where, const char *role, md_config *cfg,
                     md_tokenizer **tok, md_error *err)
{
    const char *dir = md_params_map_get(&ctx->job->top, "models", role);
    *tok = NULL;
    if (md_hf_config_load_dir(cfg, dir, err) != MD_OK || md_tokcache_acquire(ctx->toks, dir, tok, err) != MD_OK)
        return md_error_prefix(err, "%s: model '%s'", where, role);
    return MD_OK;
}

/* A probe of the tokenisation beyond the vocabulary (normaliser,
 * pre-tokenizer, merges, BOS): the prompt format, digits, punctuation,
 * Unicode. */
static const char PAIR_PROBE[] = "The city of Paris is in France. This statement is: TRUE\n"
                                 "Fifty-one is larger than 12345, isn't it? \xc3\xbc" "ber caf\xc3\xa9 \xe2\x80\x94 ok";

/* MD_OK when text encodes to the same ids in both tokenizers, else MD_ERR
 * with the first difference in why. what names the text. */
static int pair_same_ids(const md_exp_model *a, const md_exp_model *b, const char *text, int add_special,
                         const char *what, char *why, size_t cap)
{
    int *ia = NULL, *ib = NULL;
    size_t na = 0, nb = 0, k = 0;
    md_error e;
    int rc = MD_OK;
    if (md_tokenizer_encode(a->tok, text, add_special, &ia, &na, &e) != MD_OK ||
        md_tokenizer_encode(b->tok, text, add_special, &ib, &nb, &e) != MD_OK) {
        snprintf(why, cap, "%s cannot be encoded: %s", what, e.msg);
        rc = MD_ERR;
    } else {
        while (k < na && k < nb && ia[k] == ib[k]) k++;
        if (k < na || k < nb) {
            snprintf(why, cap, "%s encodes to different ids (token %zu: %d in '%s', %d in '%s')", what, k,
                     k < na ? ia[k] : -1, a->role, k < nb ? ib[k] : -1, b->role);
            rc = MD_ERR;
        }
    }
    free(ia);
    free(ib);
    return rc;
}

/* Up to 60 bytes of vocabulary string p (NULL: "(none)") into buf, control
 * bytes escaped (\n, \t, \xNN): an added token may hold a newline, and an
 * error is one line. */
static const char *show_piece(const char *p, char *buf, size_t cap)
{
    size_t n = 0;
    if (!p) p = "(none)";
    for (size_t i = 0; p[i] && i < 60 && n + 5 < cap; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c != 0x7f) buf[n++] = (char)c;
        else if (c == '\n' || c == '\t') buf[n++] = '\\', buf[n++] = c == '\n' ? 'n' : 't';
        else n += (size_t)snprintf(buf + n, cap - n, "\\x%02x", c);
    }
    buf[n] = '\0';
    return buf;
}

int md_exp_pair_vocabularies(const md_exp_model *a, const md_exp_model *b, const char *const *words, char *why,
                             size_t cap)
{
    if (md_tokenizer_get_kind(a->tok) != md_tokenizer_get_kind(b->tok)) {
        snprintf(why, cap, "their tokenizers are of different kinds (%s vs %s)",
                 md_tokenizer_get_kind(a->tok) == MD_TOKENIZER_BYTE_LEVEL ? "byte-level BPE" : "SentencePiece",
                 md_tokenizer_get_kind(b->tok) == MD_TOKENIZER_BYTE_LEVEL ? "byte-level BPE" : "SentencePiece");
        return MD_ERR;
    }
    int id = md_tokenizer_first_difference(a->tok, b->tok);
    if (id >= 0) {
        char pa[256], pb[256];
        int na = md_tokenizer_vocab_size(a->tok), nb = md_tokenizer_vocab_size(b->tok);
        snprintf(why, cap, "token id %d is '%s' in '%s' and '%s' in '%s' (the ids both vocabularies have, "
                           "0..%d, must be the same tokens)",
                 id, show_piece(md_tokenizer_piece(a->tok, id), pa, sizeof pa), a->role,
                 show_piece(md_tokenizer_piece(b->tok, id), pb, sizeof pb), b->role, (na < nb ? na : nb) - 1);
        return MD_ERR;
    }
    if (pair_same_ids(a, b, PAIR_PROBE, 1, "a probe text", why, cap) != MD_OK) return MD_ERR;
    for (int w = 0; words && words[w]; w++) {
        char what[128];
        snprintf(what, sizeof what, "the answer word '%.60s'", words[w]);
        if (pair_same_ids(a, b, words[w], 0, what, why, cap) != MD_OK) return MD_ERR;
    }
    return MD_OK;
}

int md_exp_check_pair(const char *where, const char *what, const md_exp_model *a, const md_exp_model *b,
                      const char *const *words, int same_arch, md_error *err)
{
    char why[512];
    if (same_arch && md_hf_config_check_pair(a->cfg, b->cfg, why, sizeof why) != MD_OK)
        return md_error_set(err, "%s: %s: '%s' and '%s': %s (use a base model and its own post-trained version)",
                            where, what, a->role, b->role, why);
    if (md_exp_pair_vocabularies(a, b, words, why, sizeof why) != MD_OK)
        return md_error_set(err, "%s: %s: '%s' (%s) and '%s' (%s): %s (use a base model and its own post-trained "
                                 "version: their vocabularies may differ only by tokens appended to the larger one; "
                                 "docs/methods.md, \"Pairs of models\")",
                            where, what, a->role, a->dir, b->role, b->dir, why);
    return MD_OK;
}

int md_exp_describe_vocabularies(const md_job *job, char *buf, size_t cap)
{
    int n = md_params_count(&job->top, "models"), lo = -1, hi = -1, v[64];
    if (n > 64) n = 64;
    for (int i = 0; i < n; i++) {
        md_config c;
        md_error ignored; /* a folder that does not load was refused by validate */
        v[i] = md_hf_config_load_dir(&c, md_params_map_val(&job->top, "models", i), &ignored) == MD_OK ? c.vocab_size
                                                                                                  : -1;
        if (v[i] >= 0 && (lo < 0 || v[i] < v[lo])) lo = i;
        if (v[i] >= 0 && (hi < 0 || v[i] > v[hi])) hi = i;
    }
    if (lo < 0 || v[lo] == v[hi]) return 0;
    size_t used = (size_t)snprintf(buf, cap, "vocabularies differ:");
    for (int i = 0, k = 0; i < n && used < cap; i++)
        if (v[i] > v[lo])
            used += (size_t)snprintf(buf + used, cap - used, "%s '%s' has %d ids more than '%s' (vocab_size %d vs %d)",
                                     k++ ? ";" : "", md_params_item(&job->top, "models", i), v[i] - v[lo],
                                     md_params_item(&job->top, "models", lo), v[i], v[lo]);
    if (used < cap)
        snprintf(buf + used, cap - used, "; they are appended tokens or padding rows, and no model is fed an id it "
                                         "lacks (docs/methods.md, \"Pairs of models\")");
    return 1;
}

int md_exp_depth_roles(const char *const *roles, const int *depth, int n, int i, char *who, size_t cap)
{
    if (depth[i] < 0) return 0;
    for (int j = 0; j < i; j++)
        if (depth[j] == depth[i]) return 0;
    int k = 0;
    for (int j = i; j < n; j++) k += depth[j] == depth[i];
    size_t off = (size_t)snprintf(who, cap, "model%s ", k > 1 ? "s" : "");
    for (int j = i, m = 0; j < n && off < cap; j++)
        if (depth[j] == depth[i]) off += (size_t)snprintf(who + off, cap - off, "%s'%s'", m++ ? ", " : "", roles[j]);
    return k;
}

int md_exp_check_fits(const md_exp_fit *f, void *arg, size_t bound, md_error *err, const char *what, ...)
{
    long long max = f->cfg->max_position;
    if (max <= 0 || (long long)bound + f->extra <= max) return MD_OK;
    size_t n = 0;
    int rc = f->count(arg, &n, err);
    if (rc == MD_OK && (long long)n + f->extra <= max) return MD_OK;
    char which[512];
    va_list ap;
    va_start(ap, what);
    vsnprintf(which, sizeof which, what, ap);
    va_end(ap);
    if (rc != MD_OK) return md_error_prefix(err, "%s: model '%s': %s", f->where, f->role, which);
    if (!f->extra)
        return md_error_set(err, "%s: key '%s': %s has %zu tokens, more than the max_position_embeddings %lld of model "
                                 "'%s' (%s)", f->where, f->key, which, n, max, f->role, f->advice);
    return md_error_set(err, "%s: key '%s': %s needs %lld positions (%zu prompt tokens + %d generated after the "
                             "first), more than the max_position_embeddings %lld of model '%s' (%s)",
                        f->where, f->key, which, (long long)n + f->extra, n, f->extra, max, f->role, f->advice);
}

const char *md_exp_find_dataset(const md_kind_ctx *ctx, const char *where, const char *key, const char *name,
                                md_error *err)
{
    const char *path = md_params_map_get(&ctx->job->top, "datasets", name);
    if (!path)
        md_error_set(err, "%s: key '%s': '%s' is not in the job's datasets map (add it under datasets:)", where, key,
                     name);
    return path;
}

int md_exp_check_answer_words(const md_kind_ctx *ctx, const char *where, const char *role, const md_tokenizer *tok,
                              const char *true_word, const char *false_word, md_error *err)
{
    const char *keys[2] = {"true_word", "false_word"}, *words[2] = {true_word, false_word};
    char msg[sizeof err->msg] = "";
    size_t used = 0;
    for (int w = 0; w < 2; w++) {
        md_error e2 = {0};
        char pieces[1100];
        if (md_tokenizer_word_pieces(tok, words[w], pieces, sizeof pieces, &e2) >= 0) continue;
        int k = pieces[0] ? snprintf(msg + used, sizeof msg - used, "%s%s '%s' (%s)", used ? ", " : "", keys[w],
                                     words[w], pieces)
                          : snprintf(msg + used, sizeof msg - used, "%s%s: %s", used ? ", " : "", keys[w], e2.msg);
        if (k > 0) used = used + (size_t)k < sizeof msg ? used + (size_t)k : sizeof msg - 1;
    }
    if (!used) return MD_OK;
    return md_error_set(err,
                        "%s: model '%s' (%s): answer words that are not one token: %s; set true_word and false_word "
                        "in this experiment to words that are one token of every model's tokenizer (`mechdiff "
                        "tokenize MODEL_DIR ' True' --no-special` prints one id for such a word)",
                        where, role, md_params_map_get(&ctx->job->top, "models", role), msg);
}
