/* sbuf.c — the growing byte buffer (see include/mechdiff/sbuf.h). */
#include "mechdiff/sbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/error.h"

/* Capacity starts at 64 bytes and doubles until the bytes asked for and
 * the NUL fit; a buffer never passes PTRDIFF_MAX bytes (so the doubling
 * cannot overflow and s + n stays a valid pointer difference). */
int md_sbuf_reserve(md_sbuf *b, size_t more)
{
    if (b->failed) return MD_ERR;
    if (more > (size_t)PTRDIFF_MAX - 1 - b->n) {
        b->failed = 1;
        return MD_ERR;
    }
    size_t need = b->n + more + 1;
    if (need <= b->cap) return MD_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap = cap > (size_t)PTRDIFF_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->s, cap);
    if (!p) {
        b->failed = 1;
        return MD_ERR;
    }
    b->s = p;
    b->cap = cap;
    return MD_OK;
}

int md_sbuf_add(md_sbuf *b, const void *data, size_t n)
{
    if (md_sbuf_reserve(b, n) != MD_OK) return MD_ERR;
    if (n) memcpy(b->s + b->n, data, n);
    b->n += n;
    b->s[b->n] = '\0';
    return MD_OK;
}

int md_sbuf_add_char(md_sbuf *b, char c)
{
    return md_sbuf_add(b, &c, 1);
}

int md_sbuf_add_str(md_sbuf *b, const char *s)
{
    return md_sbuf_add(b, s, strlen(s));
}

/* Short texts (most) are formatted once into a stack buffer; a longer one
 * is formatted again straight into the reserved room. */
int md_sbuf_add_format(md_sbuf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    if (b->failed) return MD_ERR;
    va_start(ap, fmt);
    int len = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (len < 0) {
        b->failed = 1;
        return MD_ERR;
    }
    if ((size_t)len < sizeof small) return md_sbuf_add(b, small, (size_t)len);
    if (md_sbuf_reserve(b, (size_t)len) != MD_OK) return MD_ERR;
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    b->n += (size_t)len;
    return MD_OK;
}

char *md_sbuf_take(md_sbuf *b)
{
    if (!b->failed && !b->s) md_sbuf_add(b, "", 0);
    char *s = b->failed ? NULL : b->s;
    if (!s) free(b->s);
    memset(b, 0, sizeof *b);
    return s;
}

void md_sbuf_free(md_sbuf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}
