/* exp_output.c — see exp_output.h. */
#include "mechdiff/exp_output.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/sbuf.h"

void md_exp_join_names(char *val, size_t cap, const char *const *items, int n)
{
    size_t off = 0;
    val[0] = '\0';
    for (int i = 0; i < n && off < cap; i++) off += (size_t)snprintf(val + off, cap - off, "%s%s", i ? "," : "", items[i]);
}

/* Strings of rows idx[0..n) of a CSV column at offset off of a 1-D dataset. */
int md_exp_put_csv_strings(md_plan *plan, const char *path, const md_csv *t, int col, const int *idx, int n, int64_t off,
                           md_error *err)
{
    size_t total = 0;
    for (int i = 0; i < n; i++) total += strlen(md_csv_cell(t, idx[i], col)) + 1;
    char *buf = malloc(total ? total : 1), *q = buf;
    if (!buf) return md_error_set(err, "out of memory");
    for (int i = 0; i < n; i++) {
        size_t l = strlen(md_csv_cell(t, idx[i], col)) + 1;
        memcpy(q, md_csv_cell(t, idx[i], col), l);
        q += l;
    }
    int64_t cnt = n;
    int rc = md_plan_put(plan, path, &off, &cnt, buf, total, err);
    free(buf);
    return rc;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when s starts an
 * invalid or truncated one (overlong forms and surrogates included). */
static int utf8_len(const unsigned char *s, size_t left)
{
    int n = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0 || (size_t)n > left || (n == 2 && s[0] < 0xc2)) return 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if (n == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))) return 0;
    if (n == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || s[0] > 0xf4 || (s[0] == 0xf4 && s[1] >= 0x90))) return 0;
    return n;
}

int md_exp_token_strings(const md_tokenizer *tok, const int *ids, int64_t n, char **out, size_t *nbytes,
                         md_error *err)
{
    md_sbuf b = {0}; /* the strings: handed to *out */
    *out = NULL;
    *nbytes = 0;
    for (int64_t i = 0; i < n && !b.failed; i++) {
        char *piece = NULL;
        size_t plen = 0;
        if (ids[i] < 0) { /* no token there: "" */
            md_sbuf_add_char(&b, '\0');
            continue;
        }
        if (md_tokenizer_decode_n(tok, &ids[i], 1, 0, &piece, &plen, err) != MD_OK) {
            md_sbuf_free(&b);
            return MD_ERR;
        }
        for (size_t k = 0; k < plen;) {
            int c = piece[k] ? utf8_len((const unsigned char *)piece + k, plen - k) : 0;
            md_sbuf_add(&b, c ? piece + k : "\xef\xbf\xbd", c ? (size_t)c : 3);
            k += c ? (size_t)c : 1;
        }
        md_sbuf_add_char(&b, '\0');
        free(piece);
    }
    *nbytes = b.n;
    *out = md_sbuf_take(&b);
    if (!*out) {
        *nbytes = 0;
        return md_error_set(err, "out of memory");
    }
    return MD_OK;
}

int md_exp_bos_note(const md_tokenizer *tok, char *buf, size_t cap, md_error *err)
{
    int *ids = NULL;
    size_t n = 0;
    if (md_tokenizer_encode(tok, "", 1, &ids, &n, err) != MD_OK) return MD_ERR;
    int bos = md_tokenizer_bos_id(tok);
    const char *name = n > 0 ? md_tokenizer_piece(tok, ids[0]) : NULL;
    if (n > 0 && bos >= 0 && ids[0] == bos)
        snprintf(buf, cap, "the BOS token '%s' first", name ? name : "?");
    else if (n > 0)
        snprintf(buf, cap, "the tokenizer's prefix token '%s' first", name ? name : "?");
    else
        snprintf(buf, cap, "no BOS token: this tokenizer adds none");
    free(ids);
    return MD_OK;
}

int md_exp_axis_roles(md_plan *plan, const char *const *roles, int n, md_error *err)
{
    static const char *const dims[] = {"model", "model_b", "source", "target"};
    static const char *const docs[] = {"model role", "model role (second operand)",
                                       "model role whose direction (or probe) is applied",
                                       "model role it is applied to (measured in)"};
    for (int i = 0; i < 4; i++)
        if (md_plan_axis(plan, "", dims[i], roles, n, docs[i], err) != MD_OK) return MD_ERR;
    return MD_OK;
}

int md_exp_tokens_at(const md_tokenizer *tok, const char *const *texts, int n, int add_special, const int *rel,
                     int n_rel, int32_t *ids, int32_t *pos, char **strs, size_t *nbytes, md_error *err)
{
    for (int i = 0; i < n; i++) {
        int *t = NULL;
        size_t nt = 0;
        if (md_tokenizer_encode(tok, texts[i], add_special, &t, &nt, err) != MD_OK) return MD_ERR;
        for (int j = 0; j < n_rel; j++) {
            int64_t p = (int64_t)nt + rel[j];
            pos[(size_t)i * n_rel + j] = p >= 0 && p < (int64_t)nt ? (int32_t)p : -1;
            ids[(size_t)i * n_rel + j] = p >= 0 && p < (int64_t)nt ? t[p] : -1;
        }
        free(t);
    }
    return md_exp_token_strings(tok, ids, (int64_t)n * n_rel, strs, nbytes, err);
}
