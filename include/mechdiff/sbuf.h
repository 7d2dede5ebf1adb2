/* sbuf.h — a growing byte buffer: the one way the library builds a text (or
 * a byte string) of unknown length piece by piece (the tokenizer's pieces,
 * the Jinja interpreter's output, the resolved job YAML, ...).
 *
 * Ownership: an md_sbuf owns s. Start from an all-zero md_sbuf
 * (md_sbuf b = {0};), add to it, then either md_sbuf_take the text (the
 * caller then owns it and frees it) or md_sbuf_free the buffer.
 *
 * Once anything was added, s is NUL-terminated at s[n] (bytes may include
 * NULs of their own: n is the length). Every add returns MD_OK or MD_ERR
 * (out of memory, or more than PTRDIFF_MAX bytes asked for); an add that
 * fails leaves the contents as they were and sets `failed`, after which
 * every add fails too, so a caller may add many pieces and check once (the
 * flag or md_sbuf_take's NULL) instead of after each add. */
#ifndef MECHDIFF_SBUF_H
#define MECHDIFF_SBUF_H

#include <stddef.h>

typedef struct md_sbuf {
    char *s;    /* owned; NULL until the first add */
    size_t n;   /* bytes used (the NUL at s[n] not counted) */
    size_t cap; /* bytes allocated at s */
    int failed; /* an add failed: the text is incomplete */
} md_sbuf;

/* Makes room for `more` bytes after the n used (and the NUL): s may move.
 * A caller that writes into that room itself (fread) then adds what it
 * wrote to n and puts the NUL at s[n]. */
int md_sbuf_reserve(md_sbuf *b, size_t more);

/* Adds the n bytes at data (any bytes: text or a serialised message; data
 * may be NULL when n is 0). */
int md_sbuf_add(md_sbuf *b, const void *data, size_t n);

/* Adds one byte. */
int md_sbuf_add_char(md_sbuf *b, char c);

/* Adds the NUL-terminated text s. */
int md_sbuf_add_str(md_sbuf *b, const char *s);

/* Adds printf-style text (a format error counts as a failed add). */
int md_sbuf_add_format(md_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Hands the text to the caller (who frees it) and leaves b empty: an empty
 * text is "" (allocated), never NULL. Returns NULL, and frees what b held,
 * when an add had failed or the allocation fails. */
char *md_sbuf_take(md_sbuf *b);

/* Frees what b holds and leaves it empty (all zero). */
void md_sbuf_free(md_sbuf *b);

#endif
