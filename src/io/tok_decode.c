/* tok_decode.c — ids back to text: the decoder steps of a tokenizer.json
 * (ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace) and the text of
 * single pieces (see include/mechdiff/tokenizer.h).
 * Ownership: returned strings are malloc'd for the caller. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/tokenizer_int.h"


/* Appends the bytes that byte-level piece s stands for; a piece with any
 * character outside the byte map is taken verbatim (as tokenizers does). */
int md_tk_bytelevel_bytes(const md_tokenizer *t, const char *s, size_t n, md_sbuf *out)
{
    size_t start = out->n;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        size_t l = md_u8_dec((const unsigned char *)s + i, n - i, &cp);
        if (cp < 0 || cp >= 324 || t->char_byte[cp] < 0) {
            out->n = start;
            return md_sbuf_add(out, s, n);
        }
        if (md_sbuf_add_char(out, (char)t->char_byte[cp])) return MD_ERR;
        i += l;
    }
    return out->s ? MD_OK : md_sbuf_add(out, "", 0);
}

int md_tk_byte_token(const char *s, size_t n)
{
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static int dec_step(const md_tokenizer *t, const dec_op *op, md_slist *toks, md_error *err)
{
    md_slist out = {0};
    md_sbuf acc = {0}, tmp = {0};
    if (op->kind == DEC_BYTELEVEL || op->kind == DEC_FUSE) {
        for (size_t i = 0; i < toks->n; i++) {
            int r = op->kind == DEC_FUSE ? md_sbuf_add(&acc, toks->s[i], toks->len[i])
                                         : md_tk_bytelevel_bytes(t, toks->s[i], toks->len[i], &acc);
            if (r) goto oom;
        }
        if (op->kind == DEC_BYTELEVEL) {
            if (md_u8_add_lossy(&tmp, acc.s ? acc.s : "", acc.n) || md_sbuf_add(&tmp, "", 0)) goto oom;
            if (md_sl_add(&out, tmp.s, tmp.n, 0)) goto oom;
        } else if (md_sl_add(&out, acc.s ? acc.s : "", acc.n, 0)) goto oom;
    } else if (op->kind == DEC_REPLACE) {
        for (size_t i = 0; i < toks->n; i++) {
            tmp.n = 0;
            if (md_tk_add_replaced(&tmp, toks->s[i], toks->len[i], op->a, op->b) || md_sl_add(&out, tmp.s, tmp.n, 0)) goto oom;
        }
    } else if (op->kind == DEC_BYTEFALLBACK) {
        for (size_t i = 0; i <= toks->n; i++) {
            int b = i < toks->n ? md_tk_byte_token(toks->s[i], toks->len[i]) : -1;
            if (b >= 0) {
                if (md_sbuf_add_char(&acc, (char)b)) goto oom;
                continue;
            }
            if (acc.n) {
                if (md_u8_invalid(acc.s, acc.n) == (size_t)-1) {
                    if (md_sl_add(&out, acc.s, acc.n, 0)) goto oom;
                } else {
                    for (size_t k = 0; k < acc.n; k++)
                        if (md_sl_add(&out, "\xef\xbf\xbd", 3, 0)) goto oom;
                }
                acc.n = 0;
            }
            if (i < toks->n && md_sl_add(&out, toks->s[i], toks->len[i], 0)) goto oom;
        }
    } else if (op->kind == DEC_STRIP) {
        size_t cl = strlen(op->a);
        for (size_t i = 0; i < toks->n; i++) {
            const char *s = toks->s[i];
            size_t a = 0, b = toks->len[i];
            for (int k = 0; k < op->start && cl && a + cl <= b && memcmp(s + a, op->a, cl) == 0; k++) a += cl;
            for (int k = 0; k < op->stop && cl && b >= a + cl && memcmp(s + b - cl, op->a, cl) == 0; k++) b -= cl;
            if (md_sl_add(&out, s + a, b - a, 0)) goto oom;
        }
    } else { /* DEC_METASPACE: the first token drops the replacement, others map it to ' ' */
        for (size_t i = 0; i < toks->n; i++) {
            tmp.n = 0;
            const char *to = (i == 0 && op->prepend != PREPEND_NEVER) ? "" : " ";
            if (md_tk_add_replaced(&tmp, toks->s[i], toks->len[i], op->a, to) || md_sl_add(&out, tmp.s, tmp.n, 0)) goto oom;
        }
    }
    free(acc.s);
    free(tmp.s);
    md_sl_free(toks);
    *toks = out;
    return MD_OK;
oom:
    free(acc.s);
    free(tmp.s);
    md_sl_free(&out);
    return md_error_set(err, "out of memory while decoding");
}

int md_tokenizer_decode(const md_tokenizer *t, const int *ids, size_t n_ids, int skip_special, char **text,
                        md_error *err)
{
    return md_tokenizer_decode_n(t, ids, n_ids, skip_special, text, NULL, err);
}

int md_tokenizer_decode_generated(const md_tokenizer *t, const int *ids, size_t n_ids, int skip_special,
                                  char **text, md_error *err)
{
    int *known = malloc((n_ids ? n_ids : 1) * sizeof *known); /* the ids with a text */
    if (!known) {
        *text = NULL;
        return md_error_set(err, "out of memory while decoding");
    }
    size_t n = 0;
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i] < t->n_vocab) known[n++] = ids[i];
    int rc = md_tokenizer_decode(t, known, n, skip_special, text, err);
    free(known);
    return rc;
}

int md_tokenizer_decode_n(const md_tokenizer *t, const int *ids, size_t n_ids, int skip_special, char **text,
                          size_t *len, md_error *err)
{
    *text = NULL;
    if (len) *len = 0;
    md_slist toks = {0};
    md_sbuf out = {0};
    for (size_t i = 0; i < n_ids; i++) {
        const char *p = md_tokenizer_piece(t, ids[i]);
        if (!p) {
            md_error_set(err, "cannot decode id %d at position %zu: the vocabulary has ids 0..%d", ids[i], i,
                         t->n_vocab - 1);
            goto fail;
        }
        if (skip_special && md_tokenizer_is_special(t, ids[i])) continue;
        if (md_sl_add(&toks, p, strlen(p), 0)) goto oom;
    }
    for (size_t k = 0; k < t->n_dec; k++)
        if (dec_step(t, &t->dec[k], &toks, err)) goto fail;
    for (size_t i = 0; i < toks.n; i++)
        if ((!t->has_decoder && i && md_sbuf_add_char(&out, ' ')) || md_sbuf_add(&out, toks.s[i], toks.len[i])) goto oom;
    if (!out.s && md_sbuf_add(&out, "", 0)) goto oom;
    md_sl_free(&toks);
    *text = out.s;
    if (len) *len = out.n;
    return MD_OK;
oom:
    md_error_set(err, "out of memory while decoding");
fail:
    md_sl_free(&toks);
    free(out.s);
    return MD_ERR;
}

int md_tokenizer_piece_text(const md_tokenizer *t, int id, char **out, size_t *len, md_error *err)
{
    *out = NULL;
    *len = 0;
    const char *p = md_tokenizer_piece(t, id);
    if (!p) return md_error_set(err, "id %d is outside the vocabulary (0..%d)", id, t->n_vocab - 1);
    md_sbuf b = {0};
    size_t n = strlen(p);
    int r;
    if (t->added_of_id[id] >= 0) r = md_sbuf_add(&b, p, n);
    else if (t->kind == MD_TOKENIZER_BYTE_LEVEL) r = md_tk_bytelevel_bytes(t, p, n, &b);
    else if (md_tk_byte_token(p, n) >= 0) r = md_sbuf_add_char(&b, (char)md_tk_byte_token(p, n));
    else r = md_tk_add_replaced(&b, p, n, METASPACE, " ");
    if (r) { free(b.s); return md_error_set(err, "out of memory"); }
    *out = b.s;
    *len = b.n;
    return MD_OK;
}
