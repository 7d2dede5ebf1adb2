/* tokenizer_int.h — internal: the tables of a loaded tokenizer.json, shared
 * by its loader (src/io/tokenizer.c), the readers of its components
 * (tok_components.c), the encoder (tok_encode.c) and the decoder
 * (tok_decode.c).
 * Ownership: md_tokenizer owns every table, string and compiled regex. */
#ifndef MECHDIFF_IO_TOKENIZER_INT_H
#define MECHDIFF_IO_TOKENIZER_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>

#include "io/bpe.h"
#include "io/tok_text.h"
#include "mechdiff/tokenizer.h"

#define METASPACE "\xe2\x96\x81" /* U+2581 LOWER ONE EIGHTH BLOCK */

enum { NORM_PREPEND, NORM_REPLACE, NORM_UNICODE };
/* Split behaviours of tokenizers' SplitDelimiterBehavior. */
enum { SPLIT_ISOLATED, SPLIT_REMOVED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS };
enum { PRE_SPLIT, PRE_BYTELEVEL, PRE_METASPACE };
enum { DEC_BYTELEVEL, DEC_REPLACE, DEC_BYTEFALLBACK, DEC_FUSE, DEC_STRIP, DEC_METASPACE };
enum { PREPEND_NEVER, PREPEND_FIRST, PREPEND_ALWAYS };

typedef struct norm_op {
    int kind;
    char *a, *b; /* prepend: a; replace: a -> b (owned) */
    int uform;   /* NORM_UNICODE: utf8proc options of NFC, NFD, NFKC or NFKD */
} norm_op;

typedef struct pre_op {
    int kind;
    pcre2_code *re;        /* split regex (owned); ByteLevel: GPT-2 regex when use_regex */
    int behavior, invert;  /* Split (and Digits): SPLIT_*, invert the matches */
    int add_prefix_space;  /* ByteLevel */
    char *repl;            /* Metaspace replacement (owned) */
    int prepend, split;    /* Metaspace */
} pre_op;

typedef struct dec_op {
    int kind;
    char *a, *b;           /* replace: a -> b; strip/metaspace: a = content (owned) */
    int start, stop;       /* strip */
    int prepend;           /* metaspace */
} dec_op;

typedef struct added_tok {
    char *content;         /* owned */
    size_t len;
    char *norm;            /* content after the normalizer (owned; for normalized tokens) */
    size_t norm_len;
    int id;
    int special, lstrip, rstrip, single_word, normalized;
} added_tok;

struct md_tokenizer {
    md_bpe bpe;
    md_tokenizer_kind kind;
    int n_vocab;
    norm_op *norm;
    size_t n_norm;
    pre_op *pre;
    size_t n_pre;
    dec_op *dec;
    size_t n_dec;
    int has_decoder;
    added_tok *added;
    size_t n_added;
    int *added_of_id;                   /* [n_vocab] index into added or -1 */
    unsigned char added_first[2][256];  /* [normalized][first byte] may start an added token */
    md_ivec post_prefix, post_suffix;
    int has_post;
    int bos_id, eos_id;
    char *chat_template;                /* owned, may be NULL */
    char *chat_template_origin;         /* the file it came from (owned, may be NULL) */
    char *path;                         /* tokenizer.json path, for messages (owned) */
    char byte_char[256][3];             /* byte-level: byte -> UTF-8 of its stand-in char */
    int char_byte[324];                 /* byte-level: code point -> byte or -1 */
};

/* --- tok_components.c: one tokenizer.json component each; errors name the
 * component and t->path. */
int md_tk_get_bool(json_t *o, const char *key, int dflt);
int md_tk_parse_normalizer(md_tokenizer *t, json_t *n, md_error *err);
int md_tk_parse_pre_tokenizer(md_tokenizer *t, json_t *p, md_error *err);
int md_tk_parse_decoder(md_tokenizer *t, json_t *d, md_error *err);
int md_tk_parse_post(md_tokenizer *t, json_t *pp, md_error *err);

/* --- tok_encode.c */
/* Appends s[0..n) after the normalizer steps to out. */
int md_tk_apply_normalizer(const md_tokenizer *t, const char *s, size_t n, md_sbuf *out);

/* --- tok_decode.c */
/* Appends the bytes byte-level piece s stands for (verbatim when a
 * character is outside the byte map, as tokenizers does). */
int md_tk_bytelevel_bytes(const md_tokenizer *t, const char *s, size_t n, md_sbuf *out);
/* The byte of a "<0xNN>" piece, or -1. */
int md_tk_byte_token(const char *s, size_t n);

#endif
