/* tok_encode.c — text to ids, following the tokenizers pipeline:
 *   1. added tokens with normalized=false are cut out of the raw text;
 *   2. each remaining segment is normalized (Prepend / Replace), and added
 *      tokens with normalized=true are cut out of the normalized text;
 *   3. the pre-tokenizer steps (Split with a PCRE2 regex, ByteLevel,
 *      Metaspace) turn each segment into pre-tokens;
 *   4. the BPE model (src/io/bpe.c) encodes each pre-token;
 *   5. the post-processor's template adds BOS (and any suffix).
 * Lengths are carried throughout: text may hold NUL bytes.
 * Ownership: returned id arrays are malloc'd for the caller. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "io/tokenizer_int.h"

/* NFC/NFD/NFKC/NFKD of s[0..n) (valid UTF-8, may hold NULs) appended to out. */
static int unicode_normalize(const char *s, size_t n, int options, md_sbuf *out)
{
    utf8proc_uint8_t *r = NULL;
    utf8proc_ssize_t len = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &r, (utf8proc_option_t)options);
    int rc = len < 0 ? MD_ERR : md_sbuf_add(out, (const char *)r, (size_t)len);
    free(r);
    return rc;
}

int md_tk_apply_normalizer(const md_tokenizer *t, const char *s, size_t n, md_sbuf *out)
{
    md_sbuf cur = {0};
    if (md_sbuf_add(&cur, s, n)) return MD_ERR;
    for (size_t k = 0; k < t->n_norm; k++) {
        const norm_op *op = &t->norm[k];
        md_sbuf next = {0};
        int rc;
        if (op->kind == NORM_PREPEND) {
            rc = cur.n ? (md_sbuf_add(&next, op->a, strlen(op->a)) || md_sbuf_add(&next, cur.s, cur.n)) : md_sbuf_add(&next, "", 0);
        } else if (op->kind == NORM_UNICODE) {
            rc = unicode_normalize(cur.s ? cur.s : "", cur.n, op->uform, &next);
        } else {
            rc = md_tk_add_replaced(&next, cur.s, cur.n, op->a, op->b);
        }
        free(cur.s);
        cur = next;
        if (rc) { free(cur.s); return MD_ERR; }
    }
    *out = cur;
    return MD_OK;
}


static int is_word_byte(unsigned char c)
{
    return c >= 0x80 || c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_space_byte(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Leftmost-longest added token (of the given normalized flag) in s[from..n).
 * On a match sets [*ms, *me) (widened by lstrip/rstrip) and *id; returns 1. */
static int find_added(const md_tokenizer *t, const char *s, size_t n, size_t from, int normalized,
                      size_t *ms, size_t *me, int *id)
{
    for (size_t i = from; i < n; i++) {
        if (!t->added_first[normalized][(unsigned char)s[i]]) continue;
        const added_tok *best = NULL;
        size_t best_len = 0;
        for (size_t k = 0; k < t->n_added; k++) {
            const added_tok *a = &t->added[k];
            if (a->normalized != normalized) continue;
            const char *c = normalized ? a->norm : a->content;
            size_t cl = normalized ? a->norm_len : a->len;
            if (cl <= best_len || i + cl > n || memcmp(s + i, c, cl) != 0) continue;
            if (a->single_word && ((i > 0 && is_word_byte((unsigned char)s[i - 1])) ||
                                   (i + cl < n && is_word_byte((unsigned char)s[i + cl]))))
                continue;
            best = a;
            best_len = cl;
        }
        if (!best) continue;
        size_t a0 = i, b0 = i + best_len;
        if (best->lstrip)
            while (a0 > from && is_space_byte((unsigned char)s[a0 - 1])) a0--;
        if (best->rstrip)
            while (b0 < n && is_space_byte((unsigned char)s[b0])) b0++;
        *ms = a0;
        *me = b0;
        *id = best->id;
        return 1;
    }
    return 0;
}

/* One piece of a split: s[a..b), a regex match or a gap. */
typedef struct piece {
    size_t a, b;
    int match;
} piece;

/* The matches of re in s[0..n) and the gaps between them, in order. */
static int find_pieces(pcre2_code *re, const char *s, size_t n, piece **out, size_t *np, md_error *err)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    piece *v = malloc((2 * n + 2) * sizeof *v); /* at most a gap and a match per byte, plus the tail */
    size_t k = 0, prev = 0, off = 0;
    int rc = MD_OK;
    if (!md || !v) {
        rc = md_error_set(err, "out of memory");
        goto out;
    }
    while (off < n) {
        int r = pcre2_match(re, (PCRE2_SPTR)s, n, off, PCRE2_NO_UTF_CHECK, md, NULL);
        if (r == PCRE2_ERROR_NOMATCH) break;
        if (r < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(r, msg, sizeof msg);
            rc = md_error_set(err, "split regex failed on '%.*s': %s", (int)n, s, (char *)msg);
            goto out;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t a = ov[0], b = ov[1];
        if (b == a) { /* empty match: step one character */
            off = a + md_u8_len((unsigned char)s[a]);
            continue;
        }
        if (a > prev) v[k++] = (piece){prev, a, 0};
        v[k++] = (piece){a, b, 1};
        prev = off = b;
    }
    if (n > prev) v[k++] = (piece){prev, n, 0};
out:
    pcre2_match_data_free(md);
    if (rc) {
        free(v);
        v = NULL;
    }
    *out = v;
    *np = k;
    return rc;
}

/* Applies a Split behaviour (as tokenizers' SplitDelimiterBehavior) to the
 * pieces in place; *np shrinks. Removed pieces get a == b. */
static void apply_behavior(piece *v, size_t *np, int behavior)
{
    size_t k = 0, n = *np;
    int prev_match = 0;
    if (behavior == SPLIT_MERGED_NEXT) { /* walk backwards, merging a match into the piece after it */
        size_t w = n;
        for (size_t i = n; i-- > 0;) {
            piece p = v[i];
            if (p.match && !prev_match && w < n) v[w].a = p.a;
            else v[--w] = (piece){p.a, p.b, 0};
            prev_match = p.match;
        }
        for (size_t i = w; i < n; i++) v[k++] = v[i];
        *np = k;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        piece p = v[i];
        if (behavior == SPLIT_REMOVED) {
            if (!p.match) v[k++] = p;
        } else if (behavior == SPLIT_MERGED_PREV && p.match && !prev_match && k) {
            v[k - 1].b = p.b;
        } else if (behavior == SPLIT_CONTIGUOUS && p.match == prev_match && k) {
            v[k - 1].b = p.b;
        } else {
            v[k++] = p;
        }
        prev_match = p.match;
    }
    *np = k;
}

/* Splits s by the Split step op (regex, behaviour, invert). */
static int regex_split(const pre_op *op, const char *s, size_t n, int origin, md_slist *out, md_error *err)
{
    piece *v = NULL;
    size_t k = 0;
    if (find_pieces(op->re, s, n, &v, &k, err)) return MD_ERR;
    if (op->invert)
        for (size_t i = 0; i < k; i++) v[i].match = !v[i].match;
    apply_behavior(v, &k, op->behavior);
    int rc = MD_OK;
    for (size_t i = 0; rc == MD_OK && i < k; i++)
        if (v[i].b > v[i].a && md_sl_add(out, s + v[i].a, v[i].b - v[i].a, origin && v[i].a == 0))
            rc = md_error_set(err, "out of memory");
    free(v);
    return rc;
}

/* ByteLevel: optional prefix space, the GPT-2 regex split when use_regex,
 * then every byte mapped to its stand-in character. */
static int bytelevel_step(const md_tokenizer *t, const pre_op *op, const char *s, size_t n, int origin,
                          md_slist *out, md_error *err)
{
    md_sbuf pre = {0};
    md_slist parts = {0};
    int rc = MD_ERR;
    if ((op->add_prefix_space && (n == 0 || s[0] != ' ') && md_sbuf_add_char(&pre, ' ')) || md_sbuf_add(&pre, s, n)) goto bl_oom;
    if (op->re) {
        if (regex_split(op, pre.s, pre.n, origin, &parts, err)) goto bl_out;
    } else if (md_sl_add(&parts, pre.s, pre.n, origin)) goto bl_oom;
    for (size_t i = 0; i < parts.n; i++) {
        md_sbuf m = {0};
        for (size_t k = 0; k < parts.len[i]; k++) {
            const char *c = t->byte_char[(unsigned char)parts.s[i][k]];
            if (md_sbuf_add(&m, c, strlen(c))) { free(m.s); goto bl_oom; }
        }
        int r = md_sl_add(out, m.s ? m.s : "", m.n, parts.origin[i]);
        free(m.s);
        if (r) goto bl_oom;
    }
    rc = MD_OK;
    goto bl_out;
bl_oom:
    md_error_set(err, "out of memory");
bl_out:
    free(pre.s);
    md_sl_free(&parts);
    return rc;
}

/* Metaspace: spaces become the replacement, prepended per the scheme, then
 * optionally split before each replacement. */
static int metaspace_step(const pre_op *op, const char *s, size_t n, int origin, md_slist *out, md_error *err)
{
    md_sbuf m = {0};
    size_t rl = strlen(op->repl);
    int rc = MD_ERR;
    if (md_tk_add_replaced(&m, s, n, " ", op->repl)) goto ms_oom;
    int want = op->prepend == PREPEND_ALWAYS || (op->prepend == PREPEND_FIRST && origin);
    if (want && !(m.n >= rl && memcmp(m.s, op->repl, rl) == 0)) {
        md_sbuf p = {0};
        if (md_sbuf_add(&p, op->repl, rl) || md_sbuf_add(&p, m.s, m.n)) { free(p.s); goto ms_oom; }
        free(m.s);
        m = p;
    }
    if (!op->split) {
        if (md_sl_add(out, m.s, m.n, origin)) goto ms_oom;
    } else {
        size_t start = 0;
        for (size_t i = 1; i + rl <= m.n; i++)
            if (memcmp(m.s + i, op->repl, rl) == 0) {
                if (md_sl_add(out, m.s + start, i - start, origin && start == 0)) goto ms_oom;
                start = i;
            }
        if (m.n > start && md_sl_add(out, m.s + start, m.n - start, origin && start == 0)) goto ms_oom;
    }
    rc = MD_OK;
    goto ms_out;
ms_oom:
    md_error_set(err, "out of memory");
ms_out:
    free(m.s);
    return rc;
}

static int pre_step(const md_tokenizer *t, const pre_op *op, const char *s, size_t n, int origin, md_slist *out,
                    md_error *err)
{
    if (op->kind == PRE_SPLIT) return regex_split(op, s, n, origin, out, err);
    if (op->kind == PRE_BYTELEVEL) return bytelevel_step(t, op, s, n, origin, out, err);
    return metaspace_step(op, s, n, origin, out, err);
}

/* Pre-tokenizes and BPE-encodes one normalized segment without added tokens. */
static int encode_plain(const md_tokenizer *t, const char *s, size_t n, int origin, md_ivec *out, md_error *err)
{
    if (n == 0) return MD_OK;
    md_slist cur = {0};
    int rc = MD_ERR;
    if (md_sl_add(&cur, s, n, origin)) { md_error_set(err, "out of memory"); goto out; }
    for (size_t k = 0; k < t->n_pre; k++) {
        md_slist next = {0};
        for (size_t i = 0; i < cur.n; i++)
            if (pre_step(t, &t->pre[k], cur.s[i], cur.len[i], cur.origin[i], &next, err)) {
                md_sl_free(&next);
                goto out;
            }
        md_sl_free(&cur);
        cur = next;
    }
    for (size_t i = 0; i < cur.n; i++)
        if (md_bpe_encode_word(&t->bpe, cur.s[i], cur.len[i], out, err)) goto out;
    rc = MD_OK;
out:
    md_sl_free(&cur);
    return rc;
}

/* Normalizes one raw segment, cuts normalized added tokens, encodes the rest. */
static int encode_segment(const md_tokenizer *t, const char *s, size_t n, int origin, md_ivec *out, md_error *err)
{
    md_sbuf nb = {0};
    if (md_tk_apply_normalizer(t, s, n, &nb)) return md_error_set(err, "out of memory");
    const char *ns = nb.s ? nb.s : "";
    size_t pos = 0, ms, me;
    int id, rc = MD_ERR;
    while (find_added(t, ns, nb.n, pos, 1, &ms, &me, &id)) {
        if (encode_plain(t, ns + pos, ms - pos, origin && pos == 0, out, err)) goto out;
        if (md_ivec_push(out, id)) { md_error_set(err, "out of memory"); goto out; }
        pos = me;
    }
    if (encode_plain(t, ns + pos, nb.n - pos, origin && pos == 0, out, err)) goto out;
    rc = MD_OK;
out:
    free(nb.s);
    return rc;
}

int md_tokenizer_encode(const md_tokenizer *t, const char *text, int add_special, int **ids, size_t *n_ids,
                        md_error *err)
{
    return md_tokenizer_encode_n(t, text, strlen(text), add_special, ids, n_ids, err);
}

int md_tokenizer_encode_n(const md_tokenizer *t, const char *text, size_t n, int add_special, int **ids,
                          size_t *n_ids, md_error *err)
{
    *ids = NULL;
    *n_ids = 0;
    size_t bad = md_u8_invalid(text, n);
    if (bad != (size_t)-1)
        return md_error_set(err, "text is not valid UTF-8 (byte 0x%02x at offset %zu); convert it to UTF-8",
                            (unsigned char)text[bad], bad);
    md_ivec out = {0};
    if (add_special)
        for (size_t k = 0; k < t->post_prefix.n; k++)
            if (md_ivec_push(&out, t->post_prefix.v[k])) goto oom;
    size_t pos = 0, ms, me;
    int id;
    while (find_added(t, text, n, pos, 0, &ms, &me, &id)) {
        if (ms > pos && encode_segment(t, text + pos, ms - pos, pos == 0, &out, err)) goto fail;
        if (md_ivec_push(&out, id)) goto oom;
        pos = me;
    }
    if (n > pos && encode_segment(t, text + pos, n - pos, pos == 0, &out, err)) goto fail;
    if (add_special)
        for (size_t k = 0; k < t->post_suffix.n; k++)
            if (md_ivec_push(&out, t->post_suffix.v[k])) goto oom;
    if (!out.v && !(out.v = malloc(sizeof(int)))) goto oom;
    *ids = out.v;
    *n_ids = out.n;
    return MD_OK;
oom:
    md_error_set(err, "out of memory");
fail:
    free(out.v);
    return MD_ERR;
}

/* --- single-token words ------------------------------------------------------- */

int md_tokenizer_word_pieces(const md_tokenizer *t, const char *word, char *pieces, size_t len, md_error *err)
{
    if (pieces && len) pieces[0] = '\0';
    static const char prefix[] = "The answer is:";
    int *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    int result = -1;
    size_t wl = strlen(word);
    if (wl == 0) {
        md_error_set(err, "the word is empty; give a word that is one token of %s (as \" TRUE\")", t->path);
        return -1;
    }
    char *joined = malloc(sizeof prefix + wl);
    if (!joined) { md_error_set(err, "out of memory"); return -1; }
    memcpy(joined, prefix, sizeof prefix - 1);
    memcpy(joined + sizeof prefix - 1, word, wl + 1);
    if (md_tokenizer_encode(t, prefix, 0, &a, &na, err) || md_tokenizer_encode(t, joined, 0, &b, &nb, err)) {
        md_error_prefix(err, "single token '%s'", word);
        goto out;
    }
    size_t common = 0;
    while (common < na && common < nb && a[common] == b[common]) common++;
    if (common == na && nb == na + 1) {
        result = b[na];
        goto out;
    }
    /* Name the pieces the word became. */
    char list[1024];
    size_t used = 0;
    list[0] = '\0';
    for (size_t i = common; i < nb && used + 64 < sizeof list; i++) {
        int w = snprintf(list + used, sizeof list - used, "%s'%s'", i > common ? " " : "", md_tokenizer_piece(t, b[i]));
        if (w < 0 || (size_t)w >= sizeof list - used) break;
        used += (size_t)w;
    }
    if (pieces && len) snprintf(pieces, len, "%zu pieces: %s", nb - common, list);
    md_error_set(err, "'%s' is not a single token after \"%s\" in %s: it encodes as %zu pieces: %s; choose a "
                 "word that is one token", word, prefix, t->path, nb - common, list);
out:
    free(joined);
    free(a);
    free(b);
    return result;
}

int md_tokenizer_single_token(const md_tokenizer *t, const char *word, md_error *err)
{
    return md_tokenizer_word_pieces(t, word, NULL, 0, err);
}
