/* tok_text.h — internal: string lists and UTF-8 helpers of the tokenizer
 * (src/io/tokenizer.c, tok_components.c, tok_encode.c, tok_decode.c) and of
 * the Jinja interpreter (src/io/jinja_*.c), and the additions to an md_sbuf
 * (include/mechdiff/sbuf.h) they share. Functions return MD_OK / MD_ERR (out
 * of memory) unless said otherwise.
 * Ownership: an md_slist owns its strings (md_sl_free); returned strings
 * are malloc'd for the caller. */
#ifndef MECHDIFF_IO_TOK_TEXT_H
#define MECHDIFF_IO_TOK_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "mechdiff/sbuf.h"

/* A list of owned strings with a flag "starts at offset 0 of the input". */
typedef struct md_slist {
    char **s;
    size_t *len;
    unsigned char *origin;
    size_t n, cap;
} md_slist;

int md_sl_add(md_slist *l, const char *s, size_t n, int origin);
void md_sl_free(md_slist *l);
size_t md_u8_len(unsigned char c);
size_t md_u8_dec(const unsigned char *s, size_t n, int32_t *cp);
int md_u8_enc(int32_t cp, char *out);
size_t md_u8_invalid(const char *s, size_t n);
int md_u8_add_lossy(md_sbuf *b, const char *s, size_t n);
int md_tk_add_replaced(md_sbuf *out, const char *s, size_t n, const char *a, const char *b);
char *md_tk_path_join(const char *dir, const char *name);

#endif
