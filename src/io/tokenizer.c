/* tokenizer.c — Hugging Face tokenizer.json BPE tokenizers (see
 * include/mechdiff/tokenizer.h).
 *
 * Encoding follows the tokenizers pipeline:
 *   1. added tokens with normalized=false are cut out of the raw text;
 *   2. each remaining segment is normalized (Prepend / Replace), and added
 *      tokens with normalized=true are cut out of the normalized text;
 *   3. the pre-tokenizer steps (Split with a PCRE2 regex, ByteLevel,
 *      Metaspace) turn each segment into pre-tokens;
 *   4. the BPE model (src/io/bpe.c) encodes each pre-token;
 *   5. the post-processor's template adds BOS (and any suffix).
 * Decoding maps ids to pieces and runs the decoder steps (ByteLevel, Replace,
 * ByteFallback, Fuse, Strip, Metaspace). Anything else in a tokenizer.json
 * is rejected with an error naming the component and the file.
 * Ownership: md_tokenizer owns every table, string and compiled regex. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "mechdiff/tokenizer.h"

#include <jansson.h>
#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/bpe.h"

#define METASPACE "\xe2\x96\x81" /* U+2581 LOWER ONE EIGHTH BLOCK */

/* GPT-2's split regex, used by ByteLevel when use_regex is true. */
static const char GPT2_REGEX[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

enum { NORM_PREPEND, NORM_REPLACE };
enum { PRE_SPLIT, PRE_BYTELEVEL, PRE_METASPACE };
enum { DEC_BYTELEVEL, DEC_REPLACE, DEC_BYTEFALLBACK, DEC_FUSE, DEC_STRIP, DEC_METASPACE };
enum { PREPEND_NEVER, PREPEND_FIRST, PREPEND_ALWAYS };

typedef struct norm_op {
    int kind;
    char *a, *b; /* prepend: a; replace: a -> b (owned) */
} norm_op;

typedef struct pre_op {
    int kind;
    pcre2_code *re;        /* split regex (owned); ByteLevel: GPT-2 regex when use_regex */
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

/* --- small helpers -------------------------------------------------------- */

typedef struct sbuf {
    char *s;
    size_t n, cap;
} sbuf;

static int sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) return MD_ERR;
        b->s = p;
        b->cap = cap;
    }
    if (n) memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
    return MD_OK;
}

static int sb_addc(sbuf *b, char c)
{
    return sb_add(b, &c, 1);
}

/* A list of owned strings with a flag "starts at offset 0 of the input". */
typedef struct slist {
    char **s;
    size_t *len;
    unsigned char *origin;
    size_t n, cap;
} slist;

static int sl_add(slist *l, const char *s, size_t n, int origin)
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

static void sl_free(slist *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->s[i]);
    free(l->s);
    free(l->len);
    free(l->origin);
    memset(l, 0, sizeof *l);
}

static size_t u8len(unsigned char c)
{
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) return 2;
    if ((c & 0xF0) == 0xE0) return 3;
    if ((c & 0xF8) == 0xF0) return 4;
    return 1;
}

/* Decodes one code point at s (n bytes left); returns its length, cp = -1 if invalid. */
static size_t u8dec(const unsigned char *s, size_t n, int32_t *cp)
{
    size_t l = u8len(s[0]);
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

static int u8enc(int32_t cp, char *out)
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
static size_t u8invalid(const char *s, size_t n)
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
static int sb_add_lossy(sbuf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t bad = u8invalid(s + i, n - i);
        if (bad == (size_t)-1) return sb_add(b, s + i, n - i);
        if (sb_add(b, s + i, bad)) return MD_ERR;
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
        if (sb_add(b, "\xef\xbf\xbd", 3)) return MD_ERR;
        i += take;
    }
    return MD_OK;
}

/* Replaces every occurrence of a (non-empty) with b in s[0..n). */
static int sb_replace(sbuf *out, const char *s, size_t n, const char *a, const char *b)
{
    size_t al = strlen(a), bl = strlen(b);
    for (size_t i = 0; i < n;) {
        if (al && i + al <= n && memcmp(s + i, a, al) == 0) {
            if (sb_add(out, b, bl)) return MD_ERR;
            i += al;
        } else {
            if (sb_addc(out, s[i])) return MD_ERR;
            i++;
        }
    }
    if (!out->s && sb_add(out, "", 0)) return MD_ERR;
    return MD_OK;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c) memcpy(c, s, n);
    return c;
}

static char *path_join(const char *dir, const char *name)
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

/* --- byte-level map (GPT-2 bytes_to_unicode) --------------------------------- */

static void build_byte_map(md_tokenizer *t)
{
    for (int i = 0; i < 324; i++) t->char_byte[i] = -1;
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        int cp = keep ? b : 256 + extra++;
        char buf[4];
        int l = u8enc(cp, buf);
        memset(t->byte_char[b], 0, 3);
        memcpy(t->byte_char[b], buf, (size_t)l);
        t->char_byte[cp] = b;
    }
}

/* --- loading ---------------------------------------------------------------- */

static pcre2_code *compile_regex(const char *pat, int literal, md_error *err)
{
    int ec;
    PCRE2_SIZE eo;
    uint32_t opts = PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0);
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, opts, &ec, &eo, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        md_error_set(err, "cannot compile split regex /%s/ at offset %zu: %s", pat, (size_t)eo, (char *)msg);
        return NULL;
    }
    return re;
}

/* A pattern object {"String": s} or {"Regex": r}; *is_regex tells which. */
static const char *get_pattern(json_t *o, int *is_regex)
{
    json_t *p = json_object_get(o, "pattern");
    const char *s = json_string_value(json_object_get(p, "String"));
    if (s) { *is_regex = 0; return s; }
    s = json_string_value(json_object_get(p, "Regex"));
    *is_regex = 1;
    return s;
}

static int get_bool(json_t *o, const char *key, int dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

static int parse_prepend_scheme(json_t *o)
{
    const char *s = json_string_value(json_object_get(o, "prepend_scheme"));
    if (s) return strcmp(s, "never") == 0 ? PREPEND_NEVER : strcmp(s, "first") == 0 ? PREPEND_FIRST : PREPEND_ALWAYS;
    return get_bool(o, "add_prefix_space", 1) ? PREPEND_ALWAYS : PREPEND_NEVER;
}

static int parse_normalizer(md_tokenizer *t, json_t *n, md_error *err)
{
    if (!n || json_is_null(n)) return MD_OK;
    const char *type = json_string_value(json_object_get(n, "type"));
    if (!type) return md_error_set(err, "normalizer has no \"type\"");
    if (strcmp(type, "Sequence") == 0) {
        json_t *arr = json_object_get(n, "normalizers");
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) if (parse_normalizer(t, v, err)) return MD_ERR;
        return MD_OK;
    }
    norm_op op = {0};
    if (strcmp(type, "Prepend") == 0) {
        const char *p = json_string_value(json_object_get(n, "prepend"));
        if (!p) return md_error_set(err, "normalizer Prepend has no \"prepend\" string");
        op.kind = NORM_PREPEND;
        op.a = xstrdup(p);
    } else if (strcmp(type, "Replace") == 0) {
        int is_re;
        const char *p = get_pattern(n, &is_re);
        const char *c = json_string_value(json_object_get(n, "content"));
        if (!p || !c || is_re || !*p)
            return md_error_set(err, "normalizer Replace: only a non-empty {\"String\": ...} pattern with a "
                                "\"content\" string is supported");
        op.kind = NORM_REPLACE;
        op.a = xstrdup(p);
        op.b = xstrdup(c);
    } else {
        return md_error_set(err, "unsupported normalizer \"%s\" (supported: Sequence, Prepend, Replace)", type);
    }
    norm_op *nn = realloc(t->norm, (t->n_norm + 1) * sizeof *nn);
    if (!nn || !op.a || (op.kind == NORM_REPLACE && !op.b)) {
        free(op.a);
        free(op.b);
        if (nn) t->norm = nn;
        return md_error_set(err, "out of memory");
    }
    t->norm = nn;
    t->norm[t->n_norm++] = op;
    return MD_OK;
}

static int add_pre(md_tokenizer *t, pre_op op, md_error *err)
{
    pre_op *np = realloc(t->pre, (t->n_pre + 1) * sizeof *np);
    if (!np) {
        pcre2_code_free(op.re);
        free(op.repl);
        return md_error_set(err, "out of memory");
    }
    t->pre = np;
    t->pre[t->n_pre++] = op;
    return MD_OK;
}

static int parse_pre_tokenizer(md_tokenizer *t, json_t *p, md_error *err)
{
    if (!p || json_is_null(p)) return MD_OK;
    const char *type = json_string_value(json_object_get(p, "type"));
    if (!type) return md_error_set(err, "pre_tokenizer has no \"type\"");
    pre_op op = {0};
    if (strcmp(type, "Sequence") == 0) {
        json_t *arr = json_object_get(p, "pretokenizers");
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) if (parse_pre_tokenizer(t, v, err)) return MD_ERR;
        return MD_OK;
    } else if (strcmp(type, "Split") == 0) {
        const char *beh = json_string_value(json_object_get(p, "behavior"));
        if (!beh || strcmp(beh, "Isolated") != 0)
            return md_error_set(err, "pre_tokenizer Split: behavior \"%s\" is not supported (only Isolated)",
                                beh ? beh : "(missing)");
        if (get_bool(p, "invert", 0))
            return md_error_set(err, "pre_tokenizer Split: invert=true is not supported");
        int is_re;
        const char *pat = get_pattern(p, &is_re);
        if (!pat) return md_error_set(err, "pre_tokenizer Split has no pattern");
        op.kind = PRE_SPLIT;
        op.re = compile_regex(pat, !is_re, err);
        if (!op.re) return md_error_prefix(err, "pre_tokenizer Split");
    } else if (strcmp(type, "ByteLevel") == 0) {
        op.kind = PRE_BYTELEVEL;
        op.add_prefix_space = get_bool(p, "add_prefix_space", 1);
        if (get_bool(p, "use_regex", 1)) {
            op.re = compile_regex(GPT2_REGEX, 0, err);
            if (!op.re) return md_error_prefix(err, "pre_tokenizer ByteLevel");
        }
    } else if (strcmp(type, "Metaspace") == 0) {
        const char *r = json_string_value(json_object_get(p, "replacement"));
        op.kind = PRE_METASPACE;
        op.repl = xstrdup(r ? r : METASPACE);
        op.prepend = parse_prepend_scheme(p);
        op.split = get_bool(p, "split", 1);
        if (!op.repl) return md_error_set(err, "out of memory");
    } else {
        return md_error_set(err, "unsupported pre_tokenizer \"%s\" (supported: Sequence, Split, ByteLevel, "
                            "Metaspace)", type);
    }
    return add_pre(t, op, err);
}

static int parse_decoder(md_tokenizer *t, json_t *d, md_error *err)
{
    if (!d || json_is_null(d)) return MD_OK;
    t->has_decoder = 1;
    const char *type = json_string_value(json_object_get(d, "type"));
    if (!type) return md_error_set(err, "decoder has no \"type\"");
    dec_op op = {0};
    if (strcmp(type, "Sequence") == 0) {
        json_t *arr = json_object_get(d, "decoders");
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) if (parse_decoder(t, v, err)) return MD_ERR;
        return MD_OK;
    } else if (strcmp(type, "ByteLevel") == 0) {
        op.kind = DEC_BYTELEVEL;
    } else if (strcmp(type, "ByteFallback") == 0) {
        op.kind = DEC_BYTEFALLBACK;
    } else if (strcmp(type, "Fuse") == 0) {
        op.kind = DEC_FUSE;
    } else if (strcmp(type, "Replace") == 0) {
        int is_re;
        const char *p = get_pattern(d, &is_re);
        const char *c = json_string_value(json_object_get(d, "content"));
        if (!p || !c || is_re || !*p)
            return md_error_set(err, "decoder Replace: only a non-empty {\"String\": ...} pattern is supported");
        op.kind = DEC_REPLACE;
        op.a = xstrdup(p);
        op.b = xstrdup(c);
        if (!op.a || !op.b) goto oom;
    } else if (strcmp(type, "Strip") == 0) {
        const char *c = json_string_value(json_object_get(d, "content"));
        op.kind = DEC_STRIP;
        op.a = xstrdup(c ? c : " ");
        op.start = (int)json_integer_value(json_object_get(d, "start"));
        op.stop = (int)json_integer_value(json_object_get(d, "stop"));
        if (!op.a) goto oom;
    } else if (strcmp(type, "Metaspace") == 0) {
        const char *r = json_string_value(json_object_get(d, "replacement"));
        op.kind = DEC_METASPACE;
        op.a = xstrdup(r ? r : METASPACE);
        op.prepend = parse_prepend_scheme(d);
        if (!op.a) goto oom;
    } else {
        return md_error_set(err, "unsupported decoder \"%s\" (supported: Sequence, ByteLevel, ByteFallback, "
                            "Fuse, Replace, Strip, Metaspace)", type);
    }
    dec_op *nd = realloc(t->dec, (t->n_dec + 1) * sizeof *nd);
    if (!nd) goto oom;
    t->dec = nd;
    t->dec[t->n_dec++] = op;
    return MD_OK;
oom:
    free(op.a);
    free(op.b);
    return md_error_set(err, "out of memory");
}

/* Ids of a TemplateProcessing special token name, appended to v. */
static int template_special(json_t *pp, const char *name, md_ivec *v, md_error *err)
{
    json_t *st = json_object_get(json_object_get(pp, "special_tokens"), name);
    json_t *ids = json_object_get(st, "ids");
    if (!json_is_array(ids))
        return md_error_set(err, "post_processor TemplateProcessing: special token \"%s\" has no ids", name);
    size_t i;
    json_t *x;
    json_array_foreach(ids, i, x) if (md_ivec_push(v, (int)json_integer_value(x))) return md_error_set(err, "out of memory");
    return MD_OK;
}

static int parse_post(md_tokenizer *t, json_t *pp, md_error *err)
{
    if (!pp || json_is_null(pp)) return MD_OK;
    const char *type = json_string_value(json_object_get(pp, "type"));
    if (!type) return md_error_set(err, "post_processor has no \"type\"");
    if (strcmp(type, "Sequence") == 0) {
        json_t *arr = json_object_get(pp, "processors");
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) if (parse_post(t, v, err)) return MD_ERR;
        return MD_OK;
    }
    if (strcmp(type, "ByteLevel") == 0) return MD_OK; /* only adjusts offsets */
    if (strcmp(type, "TemplateProcessing") != 0)
        return md_error_set(err, "unsupported post_processor \"%s\" (supported: TemplateProcessing, ByteLevel, "
                            "Sequence)", type);
    t->has_post = 1;
    json_t *single = json_object_get(pp, "single");
    size_t i;
    json_t *item;
    int seen_a = 0;
    json_array_foreach(single, i, item) {
        json_t *sp = json_object_get(item, "SpecialToken");
        if (sp) {
            const char *name = json_string_value(json_object_get(sp, "id"));
            if (!name) return md_error_set(err, "post_processor TemplateProcessing: SpecialToken without id");
            if (template_special(pp, name, seen_a ? &t->post_suffix : &t->post_prefix, err)) return MD_ERR;
        } else if (json_object_get(item, "Sequence")) {
            seen_a = 1;
        } else {
            return md_error_set(err, "post_processor TemplateProcessing: unknown item in \"single\"");
        }
    }
    return MD_OK;
}

static int apply_normalizer(const md_tokenizer *t, const char *s, size_t n, sbuf *out)
{
    sbuf cur = {0};
    if (sb_add(&cur, s, n)) return MD_ERR;
    for (size_t k = 0; k < t->n_norm; k++) {
        const norm_op *op = &t->norm[k];
        sbuf next = {0};
        int rc;
        if (op->kind == NORM_PREPEND) {
            rc = cur.n ? (sb_add(&next, op->a, strlen(op->a)) || sb_add(&next, cur.s, cur.n)) : sb_add(&next, "", 0);
        } else {
            rc = sb_replace(&next, cur.s, cur.n, op->a, op->b);
        }
        free(cur.s);
        cur = next;
        if (rc) { free(cur.s); return MD_ERR; }
    }
    *out = cur;
    return MD_OK;
}

static int parse_added(md_tokenizer *t, json_t *arr, md_error *err)
{
    size_t n = json_array_size(arr);
    if (!n) return MD_OK;
    t->added = calloc(n, sizeof *t->added);
    if (!t->added) return md_error_set(err, "out of memory");
    size_t i;
    json_t *a;
    json_array_foreach(arr, i, a) {
        const char *c = json_string_value(json_object_get(a, "content"));
        json_t *id = json_object_get(a, "id");
        if (!c || !*c || !json_is_integer(id))
            return md_error_set(err, "added_tokens[%zu] needs a non-empty \"content\" and an integer \"id\"", i);
        added_tok *x = &t->added[t->n_added++];
        x->content = xstrdup(c);
        if (!x->content) return md_error_set(err, "out of memory");
        x->len = strlen(c);
        x->id = (int)json_integer_value(id);
        x->special = get_bool(a, "special", 0);
        x->lstrip = get_bool(a, "lstrip", 0);
        x->rstrip = get_bool(a, "rstrip", 0);
        x->single_word = get_bool(a, "single_word", 0);
        x->normalized = get_bool(a, "normalized", !x->special);
    }
    return MD_OK;
}

static int parse_model(md_tokenizer *t, json_t *model, md_error *err)
{
    const char *type = json_string_value(json_object_get(model, "type"));
    if (type && strcmp(type, "BPE") != 0)
        return md_error_set(err, "unsupported model type \"%s\" (only BPE tokenizers are supported)", type);
    json_t *vocab = json_object_get(model, "vocab");
    json_t *merges = json_object_get(model, "merges");
    if (!json_is_object(vocab) || !json_is_array(merges))
        return md_error_set(err, "model needs a \"vocab\" object and a \"merges\" array (is it a BPE model?)");
    const char *pfx = json_string_value(json_object_get(model, "continuing_subword_prefix"));
    const char *sfx = json_string_value(json_object_get(model, "end_of_word_suffix"));
    if ((pfx && *pfx) || (sfx && *sfx))
        return md_error_set(err, "BPE continuing_subword_prefix/end_of_word_suffix are not supported");
    json_t *drop = json_object_get(model, "dropout");
    if (drop && !json_is_null(drop) && json_number_value(drop) != 0.0)
        return md_error_set(err, "BPE dropout is set (%g); it randomises encoding, set it to null",
                            json_number_value(drop));
    /* Size: the largest id over vocab and added tokens. */
    json_int_t max_id = -1;
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v) {
        if (!json_is_integer(v)) return md_error_set(err, "vocab entry '%s' has a non-integer id", key);
        json_int_t id = json_integer_value(v);
        if (id < 0 || id > 10000000) return md_error_set(err, "vocab entry '%s' has id %lld out of range", key, (long long)id);
        if (id > max_id) max_id = id;
    }
    for (size_t i = 0; i < t->n_added; i++) {
        if (t->added[i].id < 0 || t->added[i].id > 10000000)
            return md_error_set(err, "added token '%s' has id %d out of range", t->added[i].content, t->added[i].id);
        if (t->added[i].id > max_id) max_id = t->added[i].id;
    }
    t->n_vocab = (int)(max_id + 1);
    if (md_bpe_init(&t->bpe, (size_t)t->n_vocab, json_array_size(merges), err)) return MD_ERR;
    json_object_foreach(vocab, key, v) {
        if (md_bpe_add_piece(&t->bpe, key, strlen(key), (int)json_integer_value(v), err)) return MD_ERR;
    }
    size_t i;
    json_array_foreach(merges, i, v) {
        const char *l, *r;
        size_t ll, rl;
        if (json_is_string(v)) {
            const char *s = json_string_value(v);
            const char *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' '))
                return md_error_set(err, "merges[%zu] \"%s\" is not two tokens separated by one space", i, s);
            l = s; ll = (size_t)(sp - s); r = sp + 1; rl = strlen(r);
        } else if (json_is_array(v) && json_array_size(v) == 2 && json_is_string(json_array_get(v, 0)) &&
                   json_is_string(json_array_get(v, 1))) {
            l = json_string_value(json_array_get(v, 0)); ll = json_string_length(json_array_get(v, 0));
            r = json_string_value(json_array_get(v, 1)); rl = json_string_length(json_array_get(v, 1));
        } else {
            return md_error_set(err, "merges[%zu] is neither \"a b\" nor [\"a\", \"b\"]", i);
        }
        if (md_bpe_add_merge(&t->bpe, l, ll, r, rl, err)) return md_error_prefix(err, "merges[%zu]", i);
    }
    md_bpe_finish(&t->bpe);
    t->bpe.byte_fallback = get_bool(model, "byte_fallback", 0);
    t->bpe.fuse_unk = get_bool(model, "fuse_unk", 0);
    t->bpe.ignore_merges = get_bool(model, "ignore_merges", 0);
    const char *unk = json_string_value(json_object_get(model, "unk_token"));
    if (unk) {
        t->bpe.unk_id = md_bpe_lookup(&t->bpe, unk, strlen(unk));
        for (size_t k = 0; t->bpe.unk_id < 0 && k < t->n_added; k++)
            if (strcmp(t->added[k].content, unk) == 0) t->bpe.unk_id = t->added[k].id;
        if (t->bpe.unk_id < 0) return md_error_set(err, "unk_token '%s' is not in the vocabulary", unk);
    }
    return MD_OK;
}

static const char *config_token(json_t *cfg, const char *key)
{
    json_t *v = json_object_get(cfg, key);
    if (json_is_string(v)) return json_string_value(v);
    return json_string_value(json_object_get(v, "content"));
}

static int load_config(md_tokenizer *t, const char *dir, int *add_bos, md_error *err)
{
    char *path = path_join(dir, "tokenizer_config.json");
    if (!path) return md_error_set(err, "out of memory");
    FILE *f = fopen(path, "rb");
    if (!f) { free(path); return MD_OK; } /* optional */
    fclose(f);
    json_error_t je;
    /* INT_AS_REAL: real configs hold model_max_length = 1e30 as an integer. */
    json_t *cfg = json_load_file(path, JSON_DECODE_INT_AS_REAL, &je);
    int rc = MD_ERR;
    if (!cfg) {
        md_error_set(err, "%s: invalid JSON at line %d: %s; fix or remove the file", path, je.line, je.text);
        goto out;
    }
    json_t *ct = json_object_get(cfg, "chat_template");
    const char *tmpl = json_string_value(ct);
    if (json_is_array(ct)) {
        size_t i;
        json_t *e;
        json_array_foreach(ct, i, e) {
            const char *name = json_string_value(json_object_get(e, "name"));
            if (name && strcmp(name, "default") == 0) tmpl = json_string_value(json_object_get(e, "template"));
        }
        if (!tmpl) {
            md_error_set(err, "%s: chat_template is a list without a \"default\" entry", path);
            goto out;
        }
    }
    if (tmpl && (!(t->chat_template = xstrdup(tmpl)) || !(t->chat_template_origin = xstrdup(path)))) {
        md_error_set(err, "out of memory");
        goto out;
    }
    const char *names[2] = {config_token(cfg, "bos_token"), config_token(cfg, "eos_token")};
    int *ids[2] = {&t->bos_id, &t->eos_id};
    for (int k = 0; k < 2; k++) {
        if (!names[k]) continue;
        int id = md_tokenizer_lookup(t, names[k]);
        if (id < 0) {
            md_error_set(err, "%s: %s \"%s\" is not in the vocabulary of the tokenizer.json beside it", path,
                         k ? "eos_token" : "bos_token", names[k]);
            goto out;
        }
        *ids[k] = id;
    }
    *add_bos = get_bool(cfg, "add_bos_token", -1);
    rc = MD_OK;
out:
    json_decref(cfg);
    free(path);
    return rc;
}

/* DIR/chat_template.jinja (where recent transformers saves the template)
 * replaces the chat_template of tokenizer_config.json, as in transformers. */
static int load_chat_template_file(md_tokenizer *t, const char *dir, md_error *err)
{
    char *path = path_join(dir, "chat_template.jinja");
    if (!path) return md_error_set(err, "out of memory");
    FILE *f = fopen(path, "rb");
    if (!f) {
        free(path);
        return MD_OK; /* optional */
    }
    sbuf b = {0};
    char chunk[4096];
    size_t r;
    int rc = MD_OK;
    while (rc == MD_OK && (r = fread(chunk, 1, sizeof chunk, f)) > 0) rc = sb_add(&b, chunk, r);
    if (rc == MD_OK && ferror(f)) rc = md_error_set(err, "%s: read error", path);
    else if (rc != MD_OK) rc = md_error_set(err, "out of memory");
    else if (memchr(b.s ? b.s : "", '\0', b.n)) rc = md_error_set(err, "%s: holds a NUL byte; is it a text file?", path);
    fclose(f);
    if (rc == MD_OK) {
        free(t->chat_template);
        free(t->chat_template_origin);
        t->chat_template = b.s ? b.s : xstrdup("");
        t->chat_template_origin = path;
        return t->chat_template ? MD_OK : md_error_set(err, "out of memory");
    }
    free(b.s);
    free(path);
    return rc;
}

int md_tokenizer_load(md_tokenizer **out, const char *dir, md_error *err)
{
    *out = NULL;
    json_t *root = NULL;
    md_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return md_error_set(err, "out of memory");
    t->bos_id = t->eos_id = -1;
    t->bpe.unk_id = -1;
    build_byte_map(t);
    t->path = path_join(dir, "tokenizer.json");
    if (!t->path) { md_error_set(err, "out of memory"); goto fail; }
    json_error_t je;
    root = json_load_file(t->path, 0, &je);
    if (!root) {
        FILE *f = fopen(t->path, "rb");
        if (!f) md_error_set(err, "%s: cannot open (does DIR hold a Hugging Face tokenizer.json?)", t->path);
        else {
            fclose(f);
            md_error_set(err, "%s: invalid JSON at line %d: %s", t->path, je.line, je.text);
        }
        goto fail;
    }
    if (!json_is_object(root) || !json_is_object(json_object_get(root, "model"))) {
        md_error_set(err, "%s: no \"model\" object; not a tokenizer.json", t->path);
        goto fail;
    }
    if (parse_added(t, json_object_get(root, "added_tokens"), err) ||
        parse_model(t, json_object_get(root, "model"), err) ||
        parse_normalizer(t, json_object_get(root, "normalizer"), err) ||
        parse_pre_tokenizer(t, json_object_get(root, "pre_tokenizer"), err) ||
        parse_decoder(t, json_object_get(root, "decoder"), err) ||
        parse_post(t, json_object_get(root, "post_processor"), err)) {
        md_error_prefix(err, "%s", t->path);
        goto fail;
    }
    for (size_t k = 0; k < t->post_prefix.n + t->post_suffix.n; k++) {
        int id = k < t->post_prefix.n ? t->post_prefix.v[k] : t->post_suffix.v[k - t->post_prefix.n];
        if (id < 0 || id >= t->n_vocab) {
            md_error_set(err, "%s: post_processor adds id %d, outside the vocabulary", t->path, id);
            goto fail;
        }
    }
    /* Added-token tables. */
    t->added_of_id = malloc((size_t)t->n_vocab * sizeof *t->added_of_id);
    if (!t->added_of_id) { md_error_set(err, "out of memory"); goto fail; }
    for (int i = 0; i < t->n_vocab; i++) t->added_of_id[i] = -1;
    for (size_t k = 0; k < t->n_added; k++) {
        added_tok *a = &t->added[k];
        t->added_of_id[a->id] = (int)k;
        sbuf nb = {0};
        if (apply_normalizer(t, a->content, a->len, &nb)) { md_error_set(err, "out of memory"); goto fail; }
        a->norm = nb.s;
        a->norm_len = nb.n;
        if (a->normalized ? a->norm_len : a->len)
            t->added_first[a->normalized][(unsigned char)(a->normalized ? a->norm[0] : a->content[0])] = 1;
    }
    for (int id = 0; id < t->n_vocab; id++)
        if (!t->bpe.pieces[id] && t->added_of_id[id] < 0) {
            md_error_set(err, "%s: id %d is neither in model.vocab nor in added_tokens", t->path, id);
            goto fail;
        }
    /* Kind. */
    t->kind = MD_TOKENIZER_BYTE_LEVEL;
    int byte_level = 0;
    for (size_t k = 0; k < t->n_pre; k++) byte_level |= t->pre[k].kind == PRE_BYTELEVEL;
    if (!byte_level) t->kind = MD_TOKENIZER_SENTENCEPIECE;
    /* Config; BOS defaults to the post-processor's first token. */
    int add_bos = -1;
    if (load_config(t, dir, &add_bos, err) || load_chat_template_file(t, dir, err)) goto fail;
    if (t->bos_id < 0 && t->post_prefix.n) t->bos_id = t->post_prefix.v[0];
    if (!t->has_post && add_bos == 1 && t->bos_id >= 0 && md_ivec_push(&t->post_prefix, t->bos_id)) {
        md_error_set(err, "out of memory");
        goto fail;
    }
    json_decref(root);
    *out = t;
    return MD_OK;
fail:
    json_decref(root);
    md_tokenizer_free(t);
    return MD_ERR;
}

void md_tokenizer_free(md_tokenizer *t)
{
    if (!t) return;
    md_bpe_free(&t->bpe);
    for (size_t i = 0; i < t->n_norm; i++) { free(t->norm[i].a); free(t->norm[i].b); }
    free(t->norm);
    for (size_t i = 0; i < t->n_pre; i++) { pcre2_code_free(t->pre[i].re); free(t->pre[i].repl); }
    free(t->pre);
    for (size_t i = 0; i < t->n_dec; i++) { free(t->dec[i].a); free(t->dec[i].b); }
    free(t->dec);
    for (size_t i = 0; i < t->n_added; i++) { free(t->added[i].content); free(t->added[i].norm); }
    free(t->added);
    free(t->added_of_id);
    free(t->post_prefix.v);
    free(t->post_suffix.v);
    free(t->chat_template);
    free(t->chat_template_origin);
    free(t->path);
    free(t);
}

md_tokenizer_kind md_tokenizer_get_kind(const md_tokenizer *t) { return t->kind; }
int md_tokenizer_vocab_size(const md_tokenizer *t) { return t->n_vocab; }
int md_tokenizer_bos_id(const md_tokenizer *t) { return t->bos_id; }
int md_tokenizer_eos_id(const md_tokenizer *t) { return t->eos_id; }
const char *md_tokenizer_chat_template(const md_tokenizer *t) { return t->chat_template; }
const char *md_tokenizer_chat_template_origin(const md_tokenizer *t) { return t->chat_template_origin; }

const char *md_tokenizer_piece(const md_tokenizer *t, int id)
{
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (t->added_of_id[id] >= 0) return t->added[t->added_of_id[id]].content;
    return t->bpe.pieces[id];
}

int md_tokenizer_lookup(const md_tokenizer *t, const char *piece)
{
    for (size_t k = 0; k < t->n_added; k++)
        if (strcmp(t->added[k].content, piece) == 0) return t->added[k].id;
    return md_bpe_lookup(&t->bpe, piece, strlen(piece));
}

int md_tokenizer_is_special(const md_tokenizer *t, int id)
{
    return id >= 0 && id < t->n_vocab && t->added_of_id[id] >= 0 && t->added[t->added_of_id[id]].special;
}

/* --- encoding ---------------------------------------------------------------- */

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

/* Splits s into regex matches and the gaps between them (Isolated). */
static int regex_split(pcre2_code *re, const char *s, size_t n, int origin, slist *out, md_error *err)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) return md_error_set(err, "out of memory");
    size_t prev = 0, off = 0;
    int rc = MD_OK;
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
            off = a + u8len((unsigned char)s[a]);
            continue;
        }
        if (a > prev && sl_add(out, s + prev, a - prev, origin && prev == 0)) goto oom;
        if (sl_add(out, s + a, b - a, origin && a == 0)) goto oom;
        prev = off = b;
    }
    if (n > prev && sl_add(out, s + prev, n - prev, origin && prev == 0)) goto oom;
    goto out;
oom:
    rc = md_error_set(err, "out of memory");
out:
    pcre2_match_data_free(md);
    return rc;
}

static int pre_step(const md_tokenizer *t, const pre_op *op, const char *s, size_t n, int origin, slist *out,
                    md_error *err)
{
    if (op->kind == PRE_SPLIT) return regex_split(op->re, s, n, origin, out, err);
    if (op->kind == PRE_BYTELEVEL) {
        sbuf pre = {0};
        slist parts = {0};
        int rc = MD_ERR;
        if ((op->add_prefix_space && (n == 0 || s[0] != ' ') && sb_addc(&pre, ' ')) || sb_add(&pre, s, n)) goto bl_oom;
        if (op->re) {
            if (regex_split(op->re, pre.s, pre.n, origin, &parts, err)) goto bl_out;
        } else if (sl_add(&parts, pre.s, pre.n, origin)) goto bl_oom;
        for (size_t i = 0; i < parts.n; i++) {
            sbuf m = {0};
            for (size_t k = 0; k < parts.len[i]; k++) {
                const char *c = t->byte_char[(unsigned char)parts.s[i][k]];
                if (sb_add(&m, c, strlen(c))) { free(m.s); goto bl_oom; }
            }
            int r = sl_add(out, m.s ? m.s : "", m.n, parts.origin[i]);
            free(m.s);
            if (r) goto bl_oom;
        }
        rc = MD_OK;
        goto bl_out;
    bl_oom:
        md_error_set(err, "out of memory");
    bl_out:
        free(pre.s);
        sl_free(&parts);
        return rc;
    }
    /* Metaspace */
    sbuf m = {0};
    size_t rl = strlen(op->repl);
    int rc = MD_ERR;
    if (sb_replace(&m, s, n, " ", op->repl)) goto ms_oom;
    int want = op->prepend == PREPEND_ALWAYS || (op->prepend == PREPEND_FIRST && origin);
    if (want && !(m.n >= rl && memcmp(m.s, op->repl, rl) == 0)) {
        sbuf p = {0};
        if (sb_add(&p, op->repl, rl) || sb_add(&p, m.s, m.n)) { free(p.s); goto ms_oom; }
        free(m.s);
        m = p;
    }
    if (!op->split) {
        if (sl_add(out, m.s, m.n, origin)) goto ms_oom;
    } else {
        size_t start = 0;
        for (size_t i = 1; i + rl <= m.n; i++)
            if (memcmp(m.s + i, op->repl, rl) == 0) {
                if (sl_add(out, m.s + start, i - start, origin && start == 0)) goto ms_oom;
                start = i;
            }
        if (m.n > start && sl_add(out, m.s + start, m.n - start, origin && start == 0)) goto ms_oom;
    }
    rc = MD_OK;
    goto ms_out;
ms_oom:
    md_error_set(err, "out of memory");
ms_out:
    free(m.s);
    return rc;
}

/* Pre-tokenizes and BPE-encodes one normalized segment without added tokens. */
static int encode_plain(const md_tokenizer *t, const char *s, size_t n, int origin, md_ivec *out, md_error *err)
{
    if (n == 0) return MD_OK;
    slist cur = {0};
    int rc = MD_ERR;
    if (sl_add(&cur, s, n, origin)) { md_error_set(err, "out of memory"); goto out; }
    for (size_t k = 0; k < t->n_pre; k++) {
        slist next = {0};
        for (size_t i = 0; i < cur.n; i++)
            if (pre_step(t, &t->pre[k], cur.s[i], cur.len[i], cur.origin[i], &next, err)) {
                sl_free(&next);
                goto out;
            }
        sl_free(&cur);
        cur = next;
    }
    for (size_t i = 0; i < cur.n; i++)
        if (md_bpe_encode_word(&t->bpe, cur.s[i], cur.len[i], out, err)) goto out;
    rc = MD_OK;
out:
    sl_free(&cur);
    return rc;
}

/* Normalizes one raw segment, cuts normalized added tokens, encodes the rest. */
static int encode_segment(const md_tokenizer *t, const char *s, size_t n, int origin, md_ivec *out, md_error *err)
{
    sbuf nb = {0};
    if (apply_normalizer(t, s, n, &nb)) return md_error_set(err, "out of memory");
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
    size_t bad = u8invalid(text, n);
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

/* --- decoding ------------------------------------------------------------------ */

/* Appends the bytes that byte-level piece s stands for; a piece with any
 * character outside the byte map is taken verbatim (as tokenizers does). */
static int bytelevel_bytes(const md_tokenizer *t, const char *s, size_t n, sbuf *out)
{
    size_t start = out->n;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        size_t l = u8dec((const unsigned char *)s + i, n - i, &cp);
        if (cp < 0 || cp >= 324 || t->char_byte[cp] < 0) {
            out->n = start;
            return sb_add(out, s, n);
        }
        if (sb_addc(out, (char)t->char_byte[cp])) return MD_ERR;
        i += l;
    }
    return out->s ? MD_OK : sb_add(out, "", 0);
}

static int byte_token(const char *s, size_t n)
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

static int dec_step(const md_tokenizer *t, const dec_op *op, slist *toks, md_error *err)
{
    slist out = {0};
    sbuf acc = {0}, tmp = {0};
    if (op->kind == DEC_BYTELEVEL || op->kind == DEC_FUSE) {
        for (size_t i = 0; i < toks->n; i++) {
            int r = op->kind == DEC_FUSE ? sb_add(&acc, toks->s[i], toks->len[i])
                                         : bytelevel_bytes(t, toks->s[i], toks->len[i], &acc);
            if (r) goto oom;
        }
        if (op->kind == DEC_BYTELEVEL) {
            if (sb_add_lossy(&tmp, acc.s ? acc.s : "", acc.n) || sb_add(&tmp, "", 0)) goto oom;
            if (sl_add(&out, tmp.s, tmp.n, 0)) goto oom;
        } else if (sl_add(&out, acc.s ? acc.s : "", acc.n, 0)) goto oom;
    } else if (op->kind == DEC_REPLACE) {
        for (size_t i = 0; i < toks->n; i++) {
            tmp.n = 0;
            if (sb_replace(&tmp, toks->s[i], toks->len[i], op->a, op->b) || sl_add(&out, tmp.s, tmp.n, 0)) goto oom;
        }
    } else if (op->kind == DEC_BYTEFALLBACK) {
        for (size_t i = 0; i <= toks->n; i++) {
            int b = i < toks->n ? byte_token(toks->s[i], toks->len[i]) : -1;
            if (b >= 0) {
                if (sb_addc(&acc, (char)b)) goto oom;
                continue;
            }
            if (acc.n) {
                if (u8invalid(acc.s, acc.n) == (size_t)-1) {
                    if (sl_add(&out, acc.s, acc.n, 0)) goto oom;
                } else {
                    for (size_t k = 0; k < acc.n; k++)
                        if (sl_add(&out, "\xef\xbf\xbd", 3, 0)) goto oom;
                }
                acc.n = 0;
            }
            if (i < toks->n && sl_add(&out, toks->s[i], toks->len[i], 0)) goto oom;
        }
    } else if (op->kind == DEC_STRIP) {
        size_t cl = strlen(op->a);
        for (size_t i = 0; i < toks->n; i++) {
            const char *s = toks->s[i];
            size_t a = 0, b = toks->len[i];
            for (int k = 0; k < op->start && cl && a + cl <= b && memcmp(s + a, op->a, cl) == 0; k++) a += cl;
            for (int k = 0; k < op->stop && cl && b >= a + cl && memcmp(s + b - cl, op->a, cl) == 0; k++) b -= cl;
            if (sl_add(&out, s + a, b - a, 0)) goto oom;
        }
    } else { /* DEC_METASPACE: the first token drops the replacement, others map it to ' ' */
        for (size_t i = 0; i < toks->n; i++) {
            tmp.n = 0;
            const char *to = (i == 0 && op->prepend != PREPEND_NEVER) ? "" : " ";
            if (sb_replace(&tmp, toks->s[i], toks->len[i], op->a, to) || sl_add(&out, tmp.s, tmp.n, 0)) goto oom;
        }
    }
    free(acc.s);
    free(tmp.s);
    sl_free(toks);
    *toks = out;
    return MD_OK;
oom:
    free(acc.s);
    free(tmp.s);
    sl_free(&out);
    return md_error_set(err, "out of memory while decoding");
}

int md_tokenizer_decode(const md_tokenizer *t, const int *ids, size_t n_ids, int skip_special, char **text,
                        md_error *err)
{
    return md_tokenizer_decode_n(t, ids, n_ids, skip_special, text, NULL, err);
}

int md_tokenizer_decode_n(const md_tokenizer *t, const int *ids, size_t n_ids, int skip_special, char **text,
                          size_t *len, md_error *err)
{
    *text = NULL;
    if (len) *len = 0;
    slist toks = {0};
    sbuf out = {0};
    for (size_t i = 0; i < n_ids; i++) {
        const char *p = md_tokenizer_piece(t, ids[i]);
        if (!p) {
            md_error_set(err, "cannot decode id %d at position %zu: the vocabulary has ids 0..%d", ids[i], i,
                         t->n_vocab - 1);
            goto fail;
        }
        if (skip_special && md_tokenizer_is_special(t, ids[i])) continue;
        if (sl_add(&toks, p, strlen(p), 0)) goto oom;
    }
    for (size_t k = 0; k < t->n_dec; k++)
        if (dec_step(t, &t->dec[k], &toks, err)) goto fail;
    for (size_t i = 0; i < toks.n; i++)
        if ((!t->has_decoder && i && sb_addc(&out, ' ')) || sb_add(&out, toks.s[i], toks.len[i])) goto oom;
    if (!out.s && sb_add(&out, "", 0)) goto oom;
    sl_free(&toks);
    *text = out.s;
    if (len) *len = out.n;
    return MD_OK;
oom:
    md_error_set(err, "out of memory while decoding");
fail:
    sl_free(&toks);
    free(out.s);
    return MD_ERR;
}

int md_tokenizer_piece_text(const md_tokenizer *t, int id, char **out, size_t *len, md_error *err)
{
    *out = NULL;
    *len = 0;
    const char *p = md_tokenizer_piece(t, id);
    if (!p) return md_error_set(err, "id %d is outside the vocabulary (0..%d)", id, t->n_vocab - 1);
    sbuf b = {0};
    size_t n = strlen(p);
    int r;
    if (t->added_of_id[id] >= 0) r = sb_add(&b, p, n);
    else if (t->kind == MD_TOKENIZER_BYTE_LEVEL) r = bytelevel_bytes(t, p, n, &b);
    else if (byte_token(p, n) >= 0) r = sb_addc(&b, (char)byte_token(p, n));
    else r = sb_replace(&b, p, n, METASPACE, " ");
    if (r) { free(b.s); return md_error_set(err, "out of memory"); }
    *out = b.s;
    *len = b.n;
    return MD_OK;
}

/* --- single-token words ------------------------------------------------------- */

int md_tokenizer_single_token(const md_tokenizer *t, const char *word, md_error *err)
{
    static const char prefix[] = "The answer is:";
    int *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    int result = -1;
    size_t wl = strlen(word);
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
    md_error_set(err, "'%s' is not a single token after \"%s\" in %s: it encodes as %zu pieces: %s; choose a "
                 "word that is one token", word, prefix, t->path, nb - common, list);
out:
    free(joined);
    free(a);
    free(b);
    return result;
}
