/* tok_text.c — string lists and UTF-8 helpers of the tokenizer (see
 * src/io/tok_text.h). */
#include "io/tok_text.h"

#include <stdlib.h>
#include <string.h>

#include "mechdiff/error.h"

int md_sl_add(md_slist *l, const char *s, size_t n, int origin)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        char **ns = realloc(l->s, cap * sizeof *ns);
        if (!ns) return MD_ERR;
        l->s = ns;
        size_t *nl = realloc(l->len, cap * sizeof *nl);
        if (!nl) return MD_ERR;
        l->len = nl;
        unsigned char *no = realloc(l->origin, cap);
        if (!no) return MD_ERR;
        l->origin = no;
        l->cap = cap;
    }
    char *c = malloc(n + 1);
    if (!c) return MD_ERR;
    if (n) memcpy(c, s, n);
    c[n] = '\0';
    l->s[l->n] = c;
    l->len[l->n] = n;
    l->origin[l->n] = (unsigned char)origin;
    l->n++;
    return MD_OK;
}

void md_sl_free(md_slist *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->s[i]);
    free(l->s);
    free(l->len);
    free(l->origin);
    memset(l, 0, sizeof *l);
}

size_t md_u8_len(unsigned char c)
{
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) return 2;
    if ((c & 0xF0) == 0xE0) return 3;
    if ((c & 0xF8) == 0xF0) return 4;
    return 1;
}

/* Decodes one code point at s (n bytes left); returns its length, cp = -1 if invalid. */
size_t md_u8_dec(const unsigned char *s, size_t n, int32_t *cp)
{
    size_t l = md_u8_len(s[0]);
    if (l > n || (l == 1 && s[0] >= 0x80)) {
        *cp = -1;
        return 1;
    }
    int32_t c = l == 1 ? s[0] : l == 2 ? (s[0] & 0x1F) : l == 3 ? (s[0] & 0x0F) : (s[0] & 0x07);
    for (size_t i = 1; i < l; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = -1;
            return 1;
        }
        c = (c << 6) | (s[i] & 0x3F);
    }
    *cp = c;
    return l;
}

int md_u8_enc(int32_t cp, char *out)
{
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Offset of the first invalid UTF-8 sequence in s, or (size_t)-1. */
size_t md_u8_invalid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        size_t l;
        if (c < 0x80) { i++; continue; }
        else if (c >= 0xC2 && c <= 0xDF) l = 2;
        else if (c >= 0xE0 && c <= 0xEF) l = 3;
        else if (c >= 0xF0 && c <= 0xF4) l = 4;
        else return i;
        if (i + l > n) return i;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c == 0xE0) lo = 0xA0;
        else if (c == 0xED) hi = 0x9F;
        else if (c == 0xF0) lo = 0x90;
        else if (c == 0xF4) hi = 0x8F;
        if (u[i + 1] < lo || u[i + 1] > hi) return i;
        for (size_t k = 2; k < l; k++)
            if ((u[i + k] & 0xC0) != 0x80) return i;
        i += l;
    }
    return (size_t)-1;
}

/* Appends s as UTF-8, replacing each maximal invalid subpart with U+FFFD
 * (the practice of Rust's String::from_utf8_lossy, used by the decoders). */
int md_u8_add_lossy(md_sbuf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t bad = md_u8_invalid(s + i, n - i);
        if (bad == (size_t)-1) return md_sbuf_add(b, s + i, n - i);
        if (md_sbuf_add(b, s + i, bad)) return MD_ERR;
        i += bad;
        /* length of the maximal subpart starting at i */
        unsigned char c = u[i];
        size_t l = 0, take = 1;
        if (c >= 0xC2 && c <= 0xDF) l = 2;
        else if (c >= 0xE0 && c <= 0xEF) l = 3;
        else if (c >= 0xF0 && c <= 0xF4) l = 4;
        if (l) {
            unsigned char lo = 0x80, hi = 0xBF;
            if (c == 0xE0) lo = 0xA0;
            else if (c == 0xED) hi = 0x9F;
            else if (c == 0xF0) lo = 0x90;
            else if (c == 0xF4) hi = 0x8F;
            if (i + 1 < n && u[i + 1] >= lo && u[i + 1] <= hi) {
                take = 2;
                while (take < l && i + take < n && (u[i + take] & 0xC0) == 0x80) take++;
            }
        }
        if (md_sbuf_add(b, "\xef\xbf\xbd", 3)) return MD_ERR;
        i += take;
    }
    return MD_OK;
}

/* Replaces every occurrence of a (non-empty) with b in s[0..n). */
int md_tk_add_replaced(md_sbuf *out, const char *s, size_t n, const char *a, const char *b)
{
    size_t al = strlen(a), bl = strlen(b);
    for (size_t i = 0; i < n;) {
        if (al && i + al <= n && memcmp(s + i, a, al) == 0) {
            if (md_sbuf_add(out, b, bl)) return MD_ERR;
            i += al;
        } else {
            if (md_sbuf_add_char(out, s[i])) return MD_ERR;
            i++;
        }
    }
    if (!out->s && md_sbuf_add(out, "", 0)) return MD_ERR;
    return MD_OK;
}

char *md_tk_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}
