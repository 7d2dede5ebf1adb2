/* jinja_value.c — the Python behaviour of template values (see
 * src/io/jinja_int.h): truth, type names, == , str() and tojson
 * (json.dumps as transformers' tojson calls it), and the budget that bounds
 * every recursive walk over nested values (jwalk).
 * Ownership: nothing here keeps a reference; md_sbuf contents are the caller's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/jinja_int.h"
#include "io/tok_text.h"
#include "mechdiff/numfmt.h"

#define HIDDEN_KEY(k) JV_HIDDEN_KEY(k)
#define KEY_LEN(k) json_object_iter_key_len(json_object_key_to_iter(k)) /* keys may hold NUL */
#define NS_MARK JV_NS_MARK
#define FN_MARK JV_FN_MARK

/* --- the walk budget -------------------------------------------------------------- */

int jwalk_enter(jwalk *w)
{
    if (w->over) return 1;
    if (w->left <= 0) w->over = JWALK_STEPS;
    else if (w->depth >= JINJA_MAX_NEST) w->over = JWALK_DEEP;
    if (w->over) return 1;
    w->left--;
    w->depth++;
    return 0;
}

void jwalk_leave(jwalk *w)
{
    w->depth--;
}

int jwalk_error(const jwalk *w, md_error *err)
{
    if (w->over == JWALK_DEEP)
        return md_error_set(err, "the template makes or walks a value nested more than %d levels deep (a chat "
                                 "template's are a few levels)", JINJA_MAX_NEST);
    return md_error_set(err, "the template is too expensive: comparing, printing or nesting its values walks more "
                             "than %lld lists and dicts in all (lists that share items count each time they are "
                             "reached; a chat template walks a few hundred)", JINJA_MAX_WALK);
}

int jv_depth(const json_t *v, jwalk *w)
{
    if (!json_is_array(v) && !(json_is_object(v) && !json_object_get(v, NS_MARK))) return 0;
    if (jwalk_enter(w)) return 0;
    int d = 0;
    const json_t *prev = NULL, *x;
    void *it = json_is_object(v) ? json_object_iter((json_t *)v) : NULL;
    for (size_t i = 0; !w->over; i++, it = it ? json_object_iter_next((json_t *)v, it) : NULL) {
        x = json_is_array(v) ? json_array_get(v, i) : it ? json_object_iter_value(it) : NULL;
        if (!x) break;
        int e = x == prev ? 0 : jv_depth(x, w); /* [a, a]: a once */
        d = e > d ? e : d;
        prev = x;
    }
    jwalk_leave(w);
    return d + 1;
}

/* --- truth and type ---------------------------------------------------------------- */

int jv_is_namespace(const json_t *v) { return json_is_object(v) && json_object_get(v, NS_MARK) != NULL; }
int jv_is_function(const json_t *v) { return json_is_object(v) && json_object_get(v, FN_MARK) != NULL; }
int jv_is_dict(const json_t *v)
{
    return json_is_object(v) && !jv_is_namespace(v) && !jv_is_function(v) && !jv_is_undefined_slot(v);
}
json_t *jv_undefined_slot(void) { return json_pack("{sb}", JV_UNDEF_MARK, 1); }
int jv_is_undefined_slot(const json_t *v) { return json_is_object(v) && json_object_get(v, JV_UNDEF_MARK) != NULL; }
json_t *jv_member(const json_t *obj, const char *key, size_t len)
{
    json_t *x = json_object_getn(obj, key, len);
    return jv_is_undefined_slot(x) ? NULL : json_incref(x);
}

int jv_truthy(const json_t *v)
{
    if (!v || json_is_null(v) || json_is_false(v)) return 0;
    if (json_is_integer(v)) return json_integer_value(v) != 0;
    if (json_is_real(v)) return json_real_value(v) != 0.0;
    if (json_is_string(v)) return json_string_length(v) != 0;
    if (json_is_array(v)) return json_array_size(v) != 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) if (!HIDDEN_KEY(k)) return 1;
        return !jv_is_dict(v); /* a function or an empty namespace */
    }
    return 1;
}

const char *jv_type(const json_t *v)
{
    if (!v) return "undefined value";
    switch (json_typeof(v)) {
    case JSON_OBJECT: return jv_is_namespace(v) ? "namespace" : jv_is_function(v) ? "function" : "dict";
    case JSON_ARRAY: return "list";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "float";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    default: return "none";
    }
}

/* --- == ---------------------------------------------------------------------------- */

static int int_like(const json_t *v) { return json_is_integer(v) || json_is_boolean(v); }
static long long int_of(const json_t *v) { return json_is_integer(v) ? json_integer_value(v) : json_is_true(v); }

/* Python's == between numbers (bool is an int): exact, so that 2**53 + 1
 * differs from 2.0**53 as it does in Python. */
static int num_equal(const json_t *a, const json_t *b)
{
    if (int_like(a) && int_like(b)) return int_of(a) == int_of(b);
    if (json_is_real(a) && json_is_real(b)) return json_real_value(a) == json_real_value(b);
    const json_t *r = json_is_real(a) ? a : b, *i = json_is_real(a) ? b : a;
    double d = json_real_value(r);
    if (d != floor(d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0) return 0; /* also nan, inf */
    return (long long)d == int_of(i);
}

static int dict_equal(const json_t *a, const json_t *b, jwalk *w)
{
    const char *k;
    json_t *x;
    size_t na = 0, nb = 0;
    json_object_foreach((json_t *)b, k, x) nb++;
    json_object_foreach((json_t *)a, k, x) {
        json_t *y = json_object_getn(b, k, KEY_LEN(k));
        if (!y || !jv_equal(x, y, w)) return 0;
        na++;
    }
    return na == nb;
}

int jv_equal(const json_t *a, const json_t *b, jwalk *w)
{
    if (!a || !b) return !a && !b; /* undefined equals only undefined */
    int num_a = json_is_number(a) || json_is_boolean(a), num_b = json_is_number(b) || json_is_boolean(b);
    if (num_a || num_b) return num_a && num_b && num_equal(a, b);
    if (json_typeof(a) != json_typeof(b)) return 0;
    if (json_is_null(a)) return 1;
    if (a == b) return 1; /* Python compares items by identity first, too */
    if (json_is_string(a))
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    if (json_is_object(a) && (json_object_get(a, NS_MARK) || json_object_get(b, NS_MARK))) return 0; /* identity */
    if (json_is_object(a) && (json_object_get(a, FN_MARK) || json_object_get(b, FN_MARK)))
        return jv_equal(json_object_get(a, FN_MARK), json_object_get(b, FN_MARK), w);
    if (jwalk_enter(w)) return 0;
    int eq;
    if (json_is_array(a)) {
        eq = json_array_size(a) == json_array_size(b);
        for (size_t i = 0; eq && i < json_array_size(a); i++) eq = jv_equal(json_array_get(a, i), json_array_get(b, i), w);
    } else {
        eq = dict_equal(a, b, w);
    }
    jwalk_leave(w);
    return eq && !w->over;
}

int jv_contains(const json_t *hay, const json_t *needle, int *res, jwalk *w)
{
    *res = 0;
    if (!hay) return MD_OK; /* jinja2's Undefined iterates as empty: 'x' in undefined is False */
    if (json_is_string(hay)) {
        if (!json_is_string(needle)) return MD_ERR;
        const char *h = json_string_value(hay), *s = json_string_value(needle);
        size_t hl = json_string_length(hay), sl = json_string_length(needle);
        *res = sl == 0;
        for (size_t i = 0; !*res && i + sl <= hl; i++) *res = memcmp(h + i, s, sl) == 0;
        return MD_OK;
    }
    if (json_is_array(hay)) {
        for (size_t i = 0; !*res && !w->over && i < json_array_size(hay); i++)
            *res = jv_equal(json_array_get(hay, i), needle, w);
        return MD_OK;
    }
    if (jv_is_dict(hay)) {
        *res = json_is_string(needle) &&
               json_object_getn(hay, json_string_value(needle), json_string_length(needle)) != NULL;
        return MD_OK;
    }
    return MD_ERR;
}

/* --- str() ------------------------------------------------------------------------- */

/* Whether Python's repr() escapes code point u (str.isprintable is false:
 * controls, format characters, separators other than ' ', private use; the
 * unassigned code points are not listed). */
static int unprintable(unsigned u)
{
    static const unsigned R[][2] = {
        {0x00, 0x1f}, {0x7f, 0xa0}, {0xad, 0xad}, {0x600, 0x605}, {0x61c, 0x61c}, {0x6dd, 0x6dd},
        {0x70f, 0x70f}, {0x1680, 0x1680}, {0x180e, 0x180e}, {0x2000, 0x200f}, {0x2028, 0x202f},
        {0x205f, 0x2064}, {0x2066, 0x206f}, {0x3000, 0x3000}, {0xe000, 0xf8ff}, {0xfeff, 0xfeff},
        {0xfff9, 0xfffb}, {0xf0000, 0x10ffff}};
    for (size_t k = 0; k < sizeof R / sizeof R[0]; k++)
        if (u >= R[k][0] && u <= R[k][1]) return 1;
    return 0;
}

static int repr_str(md_sbuf *b, const char *s, size_t n)
{
    int dq = memchr(s, '\'', n) && !memchr(s, '"', n);
    char q = dq ? '"' : '\'';
    if (md_sbuf_add(b, &q, 1)) return MD_ERR;
    for (size_t i = 0, l; i < n; i += l) {
        int32_t cp;
        l = md_u8_dec((const unsigned char *)s + i, n - i, &cp);
        unsigned u = cp < 0 ? (unsigned char)s[i] : (unsigned)cp; /* a stray byte: itself */
        const char *e = u == '\\' ? "\\\\" : u == '\n' ? "\\n" : u == '\t' ? "\\t" : u == '\r' ? "\\r"
                      : u == (unsigned char)q ? (dq ? "\\\"" : "\\'") : NULL;
        char x[12];
        int rc;
        if (e) rc = md_sbuf_add(b, e, 2);
        else if (unprintable(u))
            rc = md_sbuf_add(b, x, (size_t)snprintf(x, sizeof x, u < 0x100 ? "\\x%02x" : u < 0x10000 ? "\\u%04x" : "\\U%08x", u));
        else rc = md_sbuf_add(b, s + i, l);
        if (rc) return MD_ERR;
    }
    return md_sbuf_add(b, &q, 1);
}

static int repr(md_sbuf *b, const json_t *v, jwalk *w)
{
    if (b->n > JINJA_MAX_TEXT) return MD_OK; /* too long already: the caller refuses it */
    return json_is_string(v) ? repr_str(b, json_string_value(v), json_string_length(v)) : jv_str(b, v, w);
}

/* repr(d) as Python writes it: the shortest digits that read back as d
 * (numfmt.h), in fixed notation for exponents -4..15 (100.0, 1e+16, 1e-05). */
static int float_str(md_sbuf *b, double d)
{
    char s[400], g[MD_NUMFMT_DOUBLE_LEN];
    if (isnan(d)) return md_sbuf_add(b, "nan", 3);
    if (isinf(d)) return d > 0 ? md_sbuf_add(b, "inf", 3) : md_sbuf_add(b, "-inf", 4);
    int p = md_numfmt_write_shortest(d, g, sizeof g);
    snprintf(s, sizeof s, "%.*e", p - 1, d);
    int x = atoi(strchr(s, 'e') + 1);
    if (x >= -4 && x < 16) {
        snprintf(s, sizeof s, "%.*f", p - 1 - x > 0 ? p - 1 - x : 0, d);
        if (!strchr(s, '.')) strcat(s, ".0");
    }
    return md_sbuf_add(b, s, strlen(s));
}

static int container_str(md_sbuf *b, const json_t *v, jwalk *w)
{
    const char *k;
    json_t *x;
    size_t i;
    int first = 1, rc = MD_OK;
    if (json_is_array(v)) {
        rc = md_sbuf_add(b, "[", 1);
        json_array_foreach((json_t *)v, i, x) {
            if (rc || w->over) break;
            rc = (i && md_sbuf_add(b, ", ", 2)) || repr(b, x, w);
        }
        return rc || w->over ? MD_ERR : md_sbuf_add(b, "]", 1);
    }
    rc = md_sbuf_add(b, "{", 1);
    json_object_foreach((json_t *)v, k, x) {
        if (rc || w->over) break;
        if (HIDDEN_KEY(k)) continue;
        rc = (!first && md_sbuf_add(b, ", ", 2)) || repr_str(b, k, KEY_LEN(k)) ||
             md_sbuf_add(b, ": ", 2) || repr(b, x, w);
        first = 0;
    }
    return rc || w->over ? MD_ERR : md_sbuf_add(b, "}", 1);
}

/* A container already open further out (a cycle through a namespace):
 * Python's repr writes [...], {...}, or <Namespace {...}> for jinja2's
 * Namespace.__repr__ of its dict. */
static int cycle_str(md_sbuf *b, const json_t *v, const jwalk *w, int *found)
{
    const jv_open *o = w->open;
    for (int k = 0; o && o->v != v && k < JV_OPEN_SCAN; k++) o = o->up;
    *found = o && o->v == v;
    if (!*found) return MD_OK;
    return json_is_array(v) ? md_sbuf_add(b, "[...]", 5)
         : jv_is_namespace(v) ? md_sbuf_add(b, "<Namespace {...}>", 17) : md_sbuf_add(b, "{...}", 5);
}

/* str() of a list, dict or namespace (<Namespace {'k': 1}>, as jinja2's
 * Namespace.__repr__), with v open in w while its items print. */
static int open_str(md_sbuf *b, const json_t *v, jwalk *w)
{
    int ns = jv_is_namespace(v), found = 0;
    if (w->open_ns && (cycle_str(b, v, w, &found) || found)) return found ? MD_OK : MD_ERR;
    jv_open here = {v, w->open};
    w->open = &here;
    w->open_ns += ns;
    int rc = (ns && md_sbuf_add(b, "<Namespace ", 11)) || container_str(b, v, w) || (ns && md_sbuf_add(b, ">", 1));
    w->open_ns -= ns;
    w->open = here.up;
    return rc ? MD_ERR : MD_OK;
}

int jv_str(md_sbuf *b, const json_t *v, jwalk *w)
{
    char s[32];
    if (!v) return md_sbuf_add(b, "", 0);
    switch (json_typeof(v)) {
    case JSON_STRING: return md_sbuf_add(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: snprintf(s, sizeof s, "%lld", (long long)json_integer_value(v)); return md_sbuf_add(b, s, strlen(s));
    case JSON_REAL: return float_str(b, json_real_value(v));
    case JSON_TRUE: return md_sbuf_add(b, "True", 4);
    case JSON_FALSE: return md_sbuf_add(b, "False", 5);
    case JSON_NULL: return md_sbuf_add(b, "None", 4);
    default: break;
    }
    if (jv_is_undefined_slot(v)) return md_sbuf_add(b, "Undefined", 9); /* repr(Undefined) in repr(ns) */
    if (jwalk_enter(w)) return MD_ERR;
    int rc = open_str(b, v, w);
    jwalk_leave(w);
    return rc;
}

/* --- tojson ------------------------------------------------------------------------ */

/* A JSON string as json.dumps(ensure_ascii=False) writes it. */
static int json_str(md_sbuf *b, const char *s, size_t n)
{
    int rc = md_sbuf_add(b, "\"", 1);
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char ch = (unsigned char)s[i];
        const char *e = ch == '"' ? "\\\"" : ch == '\\' ? "\\\\" : ch == '\n' ? "\\n" : ch == '\r' ? "\\r"
                      : ch == '\t' ? "\\t" : ch == '\b' ? "\\b" : ch == '\f' ? "\\f" : NULL;
        char u[8];
        if (e) rc = md_sbuf_add(b, e, 2);
        else if (ch < 0x20) rc = md_sbuf_add(b, u, (size_t)snprintf(u, sizeof u, "\\u%04x", ch));
        else rc = md_sbuf_add(b, s + i, 1);
    }
    return rc || md_sbuf_add(b, "\"", 1);
}

/* The newline and indentation before an item at level (indent < 0: none);
 * no more once the text is past JINJA_MAX_TEXT (the caller refuses it: an
 * indent of 2^31 would otherwise ask for gigabytes of spaces). */
static int json_newline(md_sbuf *b, int indent, int level)
{
    static const char spaces[] = "                                ";
    if (indent < 0) return MD_OK;
    if (md_sbuf_add(b, "\n", 1)) return MD_ERR;
    for (long long left = (long long)indent * level; left > 0 && b->n <= JINJA_MAX_TEXT;) {
        size_t k = left < (long long)(sizeof spaces - 1) ? (size_t)left : sizeof spaces - 1;
        if (md_sbuf_add(b, spaces, k)) return MD_ERR;
        left -= (long long)k;
    }
    return MD_OK;
}

static int json_container(md_sbuf *b, const json_t *v, int indent, int level, jwalk *w, md_error *err)
{
    int arr = json_is_array(v), rc = md_sbuf_add(b, arr ? "[" : "{", 1);
    const char *sep = indent < 0 ? ", " : ",";
    size_t n = 0, i;
    const char *k;
    json_t *x;
    if (arr) {
        json_array_foreach((json_t *)v, i, x) {
            if (rc || b->n > JINJA_MAX_TEXT) break;
            rc = (n++ && md_sbuf_add(b, sep, strlen(sep))) || json_newline(b, indent, level + 1) ||
                 jv_json(b, x, indent, level + 1, w, err);
        }
    } else {
        json_object_foreach((json_t *)v, k, x) {
            if (rc || b->n > JINJA_MAX_TEXT) break;
            if (HIDDEN_KEY(k)) continue;
            rc = (n++ && md_sbuf_add(b, sep, strlen(sep))) || json_newline(b, indent, level + 1) ||
                 json_str(b, k, KEY_LEN(k)) || md_sbuf_add(b, ": ", 2) ||
                 jv_json(b, x, indent, level + 1, w, err);
        }
    }
    if (!rc && n) rc = json_newline(b, indent, level);
    return rc || md_sbuf_add(b, arr ? "]" : "}", 1);
}

int jv_json(md_sbuf *b, const json_t *v, int indent, int level, jwalk *w, md_error *err)
{
    char s[32];
    if (b->n > JINJA_MAX_TEXT) return MD_OK; /* too long already: the caller refuses it */
    switch (json_typeof(v)) {
    case JSON_STRING: return json_str(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: snprintf(s, sizeof s, "%lld", (long long)json_integer_value(v)); return md_sbuf_add(b, s, strlen(s));
    case JSON_REAL: {
        double d = json_real_value(v);
        if (isnan(d)) return md_sbuf_add(b, "NaN", 3);
        if (isinf(d)) return d > 0 ? md_sbuf_add(b, "Infinity", 8) : md_sbuf_add(b, "-Infinity", 9);
        return float_str(b, d);
    }
    case JSON_TRUE: return md_sbuf_add(b, "true", 4);
    case JSON_FALSE: return md_sbuf_add(b, "false", 5);
    case JSON_NULL: return md_sbuf_add(b, "null", 4);
    default: break;
    }
    if (jv_is_function(v)) return md_error_set(err, "tojson: cannot serialise a function");
    if (jv_is_namespace(v))
        return md_error_set(err, "tojson: cannot serialise a namespace() (transformers' json.dumps raises "
                                 "'Object of type TemplateNamespace is not JSON serializable'); give tojson one "
                                 "of its attributes (ns.x | tojson)");
    if (jwalk_enter(w)) return jwalk_error(w, err);
    int rc = json_container(b, v, indent, level, w, err);
    jwalk_leave(w);
    return rc ? MD_ERR : MD_OK;
}
