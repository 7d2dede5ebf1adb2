/* tok_components.c — reads the normalizer, pre_tokenizer, decoder and
 * post_processor of a tokenizer.json into md_tokenizer tables (see
 * src/io/tokenizer_int.h). Anything else is rejected with an error naming
 * the component and the file.
 * Ownership: the tables go to the md_tokenizer (freed by md_tokenizer_free). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "io/tokenizer_int.h"

/* GPT-2's split regex, used by ByteLevel when use_regex is true. */
static const char GPT2_REGEX[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";


static pcre2_code *compile_regex(const char *pat, int literal, md_error *err)
{
    int ec;
    PCRE2_SIZE eo;
    uint32_t opts = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
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

int md_tk_get_bool(json_t *o, const char *key, int dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

static int parse_prepend_scheme(json_t *o)
{
    const char *s = json_string_value(json_object_get(o, "prepend_scheme"));
    if (s) return strcmp(s, "never") == 0 ? PREPEND_NEVER : strcmp(s, "first") == 0 ? PREPEND_FIRST : PREPEND_ALWAYS;
    return md_tk_get_bool(o, "add_prefix_space", 1) ? PREPEND_ALWAYS : PREPEND_NEVER;
}

int md_tk_parse_normalizer(md_tokenizer *t, json_t *n, md_error *err)
{
    if (!n || json_is_null(n)) return MD_OK;
    const char *type = json_string_value(json_object_get(n, "type"));
    if (!type) return md_error_set(err, "normalizer has no \"type\"");
    if (strcmp(type, "Sequence") == 0) {
        json_t *arr = json_object_get(n, "normalizers");
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) if (md_tk_parse_normalizer(t, v, err)) return MD_ERR;
        return MD_OK;
    }
    norm_op op = {0};
    if (strcmp(type, "Prepend") == 0) {
        const char *p = json_string_value(json_object_get(n, "prepend"));
        if (!p) return md_error_set(err, "normalizer Prepend has no \"prepend\" string");
        op.kind = NORM_PREPEND;
        op.a = strdup(p);
    } else if (strcmp(type, "Replace") == 0) {
        int is_re;
        const char *p = get_pattern(n, &is_re);
        const char *c = json_string_value(json_object_get(n, "content"));
        if (!p || !c || is_re || !*p)
            return md_error_set(err, "normalizer Replace: only a non-empty {\"String\": ...} pattern with a "
                                "\"content\" string is supported");
        op.kind = NORM_REPLACE;
        op.a = strdup(p);
        op.b = strdup(c);
    } else if (!strcmp(type, "NFC") || !strcmp(type, "NFD") || !strcmp(type, "NFKC") || !strcmp(type, "NFKD")) {
        op.kind = NORM_UNICODE;
        op.uform = UTF8PROC_STABLE | (type[2] == 'K' ? UTF8PROC_COMPAT : 0) |
                   (type[strlen(type) - 1] == 'C' ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE);
        op.a = strdup(type);
    } else {
        return md_error_set(err, "unsupported normalizer \"%s\" (supported: Sequence, Prepend, Replace, NFC, NFD, "
                            "NFKC, NFKD)", type);
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

/* A Split "behavior" name; -1 (err set) when unknown. */
static int parse_behavior(const char *beh, md_error *err)
{
    static const struct {
        const char *name;
        int behavior;
    } names[] = {{"Isolated", SPLIT_ISOLATED}, {"Removed", SPLIT_REMOVED}, {"MergedWithPrevious", SPLIT_MERGED_PREV},
                 {"MergedWithNext", SPLIT_MERGED_NEXT}, {"Contiguous", SPLIT_CONTIGUOUS}};
    for (size_t i = 0; beh && i < sizeof names / sizeof names[0]; i++)
        if (strcmp(beh, names[i].name) == 0) return names[i].behavior;
    md_error_set(err, "pre_tokenizer Split: behavior \"%s\" is not one of Isolated, Removed, MergedWithPrevious, "
                 "MergedWithNext, Contiguous", beh ? beh : "(missing)");
    return -1;
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

int md_tk_parse_pre_tokenizer(md_tokenizer *t, json_t *p, md_error *err)
{
    if (!p || json_is_null(p)) return MD_OK;
    const char *type = json_string_value(json_object_get(p, "type"));
    if (!type) return md_error_set(err, "pre_tokenizer has no \"type\"");
    pre_op op = {0};
    if (strcmp(type, "Sequence") == 0) {
        json_t *arr = json_object_get(p, "pretokenizers");
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) if (md_tk_parse_pre_tokenizer(t, v, err)) return MD_ERR;
        return MD_OK;
    } else if (strcmp(type, "Split") == 0) {
        int is_re;
        const char *pat = get_pattern(p, &is_re);
        if (!pat) return md_error_set(err, "pre_tokenizer Split has no pattern");
        op.kind = PRE_SPLIT;
        op.invert = md_tk_get_bool(p, "invert", 0);
        if ((op.behavior = parse_behavior(json_string_value(json_object_get(p, "behavior")), err)) < 0) return MD_ERR;
        op.re = compile_regex(pat, !is_re, err);
        if (!op.re) return md_error_prefix(err, "pre_tokenizer Split");
    } else if (strcmp(type, "Digits") == 0) { /* numeric characters, one by one or in runs */
        op.kind = PRE_SPLIT;
        op.behavior = md_tk_get_bool(p, "individual_digits", 0) ? SPLIT_ISOLATED : SPLIT_CONTIGUOUS;
        op.re = compile_regex("\\p{N}", 0, err);
        if (!op.re) return md_error_prefix(err, "pre_tokenizer Digits");
    } else if (strcmp(type, "ByteLevel") == 0) {
        op.kind = PRE_BYTELEVEL;
        op.add_prefix_space = md_tk_get_bool(p, "add_prefix_space", 1);
        if (md_tk_get_bool(p, "use_regex", 1)) {
            op.re = compile_regex(GPT2_REGEX, 0, err);
            if (!op.re) return md_error_prefix(err, "pre_tokenizer ByteLevel");
        }
    } else if (strcmp(type, "Metaspace") == 0) {
        const char *r = json_string_value(json_object_get(p, "replacement"));
        op.kind = PRE_METASPACE;
        op.repl = strdup(r ? r : METASPACE);
        op.prepend = parse_prepend_scheme(p);
        op.split = md_tk_get_bool(p, "split", 1);
        if (!op.repl) return md_error_set(err, "out of memory");
    } else {
        return md_error_set(err, "unsupported pre_tokenizer \"%s\" (supported: Sequence, Split, Digits, "
                            "ByteLevel, Metaspace)", type);
    }
    return add_pre(t, op, err);
}

int md_tk_parse_decoder(md_tokenizer *t, json_t *d, md_error *err)
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
        json_array_foreach(arr, i, v) if (md_tk_parse_decoder(t, v, err)) return MD_ERR;
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
        op.a = strdup(p);
        op.b = strdup(c);
        if (!op.a || !op.b) goto oom;
    } else if (strcmp(type, "Strip") == 0) {
        const char *c = json_string_value(json_object_get(d, "content"));
        op.kind = DEC_STRIP;
        op.a = strdup(c ? c : " ");
        op.start = (int)json_integer_value(json_object_get(d, "start"));
        op.stop = (int)json_integer_value(json_object_get(d, "stop"));
        if (!op.a) goto oom;
    } else if (strcmp(type, "Metaspace") == 0) {
        const char *r = json_string_value(json_object_get(d, "replacement"));
        op.kind = DEC_METASPACE;
        op.a = strdup(r ? r : METASPACE);
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

int md_tk_parse_post(md_tokenizer *t, json_t *pp, md_error *err)
{
    if (!pp || json_is_null(pp)) return MD_OK;
    const char *type = json_string_value(json_object_get(pp, "type"));
    if (!type) return md_error_set(err, "post_processor has no \"type\"");
    if (strcmp(type, "Sequence") == 0) {
        json_t *arr = json_object_get(pp, "processors");
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) if (md_tk_parse_post(t, v, err)) return MD_ERR;
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
