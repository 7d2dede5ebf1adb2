/* jinja_lib.c — the built-in filters, tests and methods that chat
 * templates use (see src/io/jinja_int.h; the values' own Python behaviour,
 * truth, str(), == and tojson, is src/io/jinja_value.c). Strings are
 * byte arrays with a length (a NUL is a character like any other). Unknown names are errors that name them.
 * Ownership: results are new references; arguments stay the caller's. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/jinja_int.h"

#define HIDDEN_KEY(k) JV_HIDDEN_KEY(k)
#define KEY_LEN(k) json_object_iter_key_len(json_object_key_to_iter(k)) /* keys may hold NUL */

/* v[key] for a string key (NULL when v is no dict or has no such key). */
static json_t *get_key(const json_t *v, const json_t *key)
{
    json_t *x = json_is_string(key) ? json_object_getn(v, json_string_value(key), json_string_length(key)) : NULL;
    return jv_is_undefined_slot(x) ? NULL : x; /* a namespace's undefined attribute */
}

/* The byte offset of the first (last: rev) s[0..sl) in h[0..hl), or -1. */
static long long mem_find(const char *h, size_t hl, const char *s, size_t sl, int rev)
{
    if (sl > hl) return -1;
    for (size_t k = 0; k <= hl - sl; k++) {
        size_t i = rev ? hl - sl - k : k;
        if (memcmp(h + i, s, sl) == 0) return (long long)i;
    }
    return -1;
}

/* --- helpers -------------------------------------------------------------------------- */

static int bad(md_error *err, const char *what, const char *name, const json_t *v)
{
    return md_error_set(err, "%s '%s' cannot take a %s", what, name, jv_type(v));
}

static json_t *kwarg(json_t **args, char **kw, size_t n, const char *name, size_t pos)
{
    size_t p = 0;
    for (size_t i = 0; i < n; i++) {
        if (kw && kw[i]) {
            if (strcmp(kw[i], name) == 0) return args[i];
        } else if (p++ == pos) {
            return args[i];
        }
    }
    return NULL;
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Python str.strip/lstrip/rstrip (chars NULL = whitespace). */
static json_t *strip(const json_t *v, const json_t *chars, int left, int right)
{
    const char *s = json_string_value(v);
    size_t a = 0, b = json_string_length(v);
    const char *cs = json_is_string(chars) ? json_string_value(chars) : NULL;
    size_t cl = cs ? json_string_length(chars) : 0;
#define STRIPPABLE(ch) (cs ? memchr(cs, (ch), cl) != NULL : is_space((unsigned char)(ch)))
    while (left && a < b && STRIPPABLE(s[a])) a++;
    while (right && b > a && STRIPPABLE(s[b - 1])) b--;
#undef STRIPPABLE
    return json_stringn(s + a, b - a);
}

static json_t *map_str(const json_t *v, int mode) /* 0 upper, 1 lower, 2 capitalize, 3 title */
{
    size_t n = json_string_length(v);
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, json_string_value(v), n + 1);
    int start = 1;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        int up = mode == 0 || ((mode == 2 && i == 0) || (mode == 3 && start));
        if (ch >= 'a' && ch <= 'z' && up) s[i] = (char)(ch - 32);
        else if (ch >= 'A' && ch <= 'Z' && !up) s[i] = (char)(ch + 32);
        start = !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'));
    }
    json_t *r = json_stringn(s, n);
    free(s);
    return r;
}

static json_t *replace(const json_t *v, const json_t *from, const json_t *to, long long count)
{
    const char *s = json_string_value(v), *f = json_string_value(from), *t = json_string_value(to);
    size_t n = json_string_length(v), fl = json_string_length(from), tl = json_string_length(to);
    md_sbuf b = {0};
    int bad_ = 0;
    for (size_t i = 0; i <= n && !bad_ && b.n <= JINJA_MAX_TEXT;) { /* longer: refused by the caller */
        if (count != 0 && fl && i + fl <= n && memcmp(s + i, f, fl) == 0) {
            bad_ = md_sbuf_add(&b, t, tl);
            i += fl;
            count--;
        } else if (i < n) {
            bad_ = md_sbuf_add(&b, s + i, 1);
            i++;
        } else {
            break;
        }
    }
    json_t *r = bad_ ? NULL : json_stringn(b.s ? b.s : "", b.n);
    free(b.s);
    return r;
}

/* list(v): a list's items, a dict's keys, a string's characters (NULL for
 * anything else: a namespace is not iterable in jinja2 either). */
static json_t *to_list(const json_t *v)
{
    json_t *l = json_array();
    if (!l) return NULL;
    if (json_is_array(v)) {
        if (json_array_extend(l, (json_t *)v)) goto fail;
    } else if (jv_is_dict(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) if (!HIDDEN_KEY(k) && json_array_append_new(l, json_stringn(k, KEY_LEN(k)))) goto fail;
    } else if (json_is_string(v)) {
        const unsigned char *s = (const unsigned char *)json_string_value(v);
        size_t n = json_string_length(v);
        for (size_t i = 0; i < n;) {
            size_t cl = s[i] < 0x80 ? 1 : (s[i] & 0xE0) == 0xC0 ? 2 : (s[i] & 0xF0) == 0xE0 ? 3 : 4;
            if (i + cl > n) cl = n - i;
            if (json_array_append_new(l, json_stringn((const char *)s + i, cl))) goto fail;
            i += cl;
        }
    } else {
        goto fail;
    }
    return l;
fail:
    json_decref(l);
    return NULL;
}

static json_t *items(const json_t *v)
{
    json_t *l = json_array();
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x) {
        if (HIDDEN_KEY(k)) continue;
        if (!l || json_array_append_new(l, json_pack("[s%O]", k, KEY_LEN(k), x))) {
            json_decref(l);
            return NULL;
        }
    }
    return l;
}

/* transformers' tojson: json.dumps(v, ensure_ascii=False, indent=indent). */
static int tojson(json_t *v, json_t *indent, json_t **out, jwalk *w, md_error *err)
{
    md_sbuf b = {0};
    md_error_clear(err);
    /* Python writes ' ' * indent: a negative indent is 0 (newlines, no
     * spaces); one beyond an int is cut to INT_MAX (the text cap stops it) */
    json_int_t in = json_is_integer(indent) ? json_integer_value(indent) : -1;
    int ind = !json_is_integer(indent) ? -1 : in < 0 ? 0 : in > INT_MAX ? INT_MAX : (int)in;
    int rc = jv_json(&b, v ? v : json_null(), ind, 0, w, err);
    if (rc == MD_OK && !(*out = json_stringn(b.s ? b.s : "", b.n))) rc = MD_ERR;
    free(b.s);
    if (rc && !err->msg[0]) md_error_set(err, "out of memory");
    return rc;
}

static int join(json_t *v, json_t *sep, json_t *attr, json_t **out, jwalk *w, md_error *err)
{
    json_t *l = to_list(v);
    if (!l) return bad(err, "filter", "join", v);
    md_sbuf b = {0};
    size_t i;
    json_t *x;
    int rc = MD_OK;
    json_array_foreach(l, i, x) {
        if (b.n > JINJA_MAX_TEXT) break; /* too long already: the caller refuses it */
        if (i && json_is_string(sep) && md_sbuf_add(&b, json_string_value(sep), json_string_length(sep))) rc = MD_ERR;
        if (jv_str(&b, json_is_string(attr) ? get_key(x, attr) : x, w)) rc = MD_ERR;
    }
    json_decref(l);
    *out = rc ? NULL : json_stringn(b.s ? b.s : "", b.n);
    free(b.s);
    if (w->over) return jwalk_error(w, err);
    return *out ? MD_OK : md_error_set(err, "out of memory");
}

/* select/reject(test, args...), selectattr/rejectattr(attr[, test, args...]). */
static int select_items(const char *name, json_t *v, json_t **args, size_t n, json_t **out, jwalk *w, md_error *err)
{
    int by_attr = strstr(name, "attr") != NULL, keep = name[0] == 's';
    size_t t0 = by_attr ? 1 : 0;
    if (by_attr && (n < 1 || !json_is_string(args[0]))) return md_error_set(err, "%s needs an attribute name", name);
    if (n > t0 && !json_is_string(args[t0])) return md_error_set(err, "%s needs a test name", name);
    json_t *l = to_list(v), *r = json_array();
    size_t i;
    json_t *x;
    int rc = l && r ? MD_OK : bad(err, "filter", name, v);
    json_array_foreach(l, i, x) {
        if (rc) break;
        json_t *subject = by_attr ? get_key(x, args[0]) : x;
        int res;
        if (n > t0) rc = jlib_test(json_string_value(args[t0]), subject, args + t0 + 1, n - t0 - 1, &res, w, err);
        else res = jv_truthy(subject);
        if (rc == MD_OK && res == keep && json_array_append(r, x)) rc = md_error_set(err, "out of memory");
    }
    json_decref(l);
    if (rc) json_decref(r);
    else *out = r;
    return rc;
}

static int map_items(json_t *v, json_t **args, char **kw, size_t n, json_t **out, jwalk *w, md_error *err)
{
    json_t *attr = kwarg(args, kw, n, "attribute", 99), *l = to_list(v), *r = json_array();
    int rc = l && r ? MD_OK : bad(err, "filter", "map", v);
    size_t i;
    json_t *x;
    json_array_foreach(l, i, x) {
        if (rc) break;
        json_t *y = NULL;
        if (json_is_string(attr)) y = json_incref(get_key(x, attr));
        else if (n >= 1 && json_is_string(args[0]))
            rc = jlib_filter(json_string_value(args[0]), x, args + 1, kw ? kw + 1 : NULL, n - 1, &y, w, err);
        else rc = md_error_set(err, "map needs attribute=NAME or a filter name");
        if (rc == MD_OK && json_array_append_new(r, y ? y : json_null())) rc = md_error_set(err, "out of memory");
    }
    json_decref(l);
    if (rc) json_decref(r);
    else *out = r;
    return rc;
}

/* --- filters ------------------------------------------------------------------------ */

static long long length_of(const json_t *v)
{
    if (json_is_string(v)) {
        json_t *l = to_list(v);
        long long n = l ? (long long)json_array_size(l) : 0;
        json_decref(l);
        return n;
    }
    if (json_is_array(v)) return (long long)json_array_size(v);
    if (jv_is_dict(v)) {
        json_t *l = to_list(v);
        long long n = l ? (long long)json_array_size(l) : 0;
        json_decref(l);
        return n;
    }
    return -1;
}

static int str_filter(const char *name, json_t *v, json_t **args, char **kw, size_t n, json_t **out, jwalk *w,
                      md_error *err)
{
    static const char *const names[] = {"trim", "upper", "lower", "capitalize", "title", "replace", NULL};
    int known = 0;
    for (int k = 0; names[k]; k++) known |= !strcmp(name, names[k]);
    if (!known) return 1; /* not a string filter */
    if (!json_is_string(v)) { /* jinja2 takes str() of anything else: None -> 'None', undefined -> '' */
        md_sbuf b = {0};
        json_t *sv = NULL;
        int rc = jv_str(&b, v, w) ? (w->over ? jwalk_error(w, err) : md_error_set(err, "out of memory")) : MD_OK;
        if (rc == MD_OK && !(sv = json_stringn(b.s ? b.s : "", b.n))) rc = md_error_set(err, "out of memory");
        free(b.s);
        if (rc == MD_OK) rc = str_filter(name, sv, args, kw, n, out, w, err);
        json_decref(sv);
        return rc;
    }
    if (!strcmp(name, "trim")) *out = strip(v, kwarg(args, kw, n, "chars", 0), 1, 1);
    else if (!strcmp(name, "upper")) *out = map_str(v, 0);
    else if (!strcmp(name, "lower")) *out = map_str(v, 1);
    else if (!strcmp(name, "capitalize")) {
        json_t *low = map_str(v, 1);
        *out = low ? map_str(low, 2) : NULL;
        json_decref(low);
    } else if (!strcmp(name, "title")) *out = map_str(v, 3);
    else if (!strcmp(name, "replace")) {
        json_t *f = kwarg(args, kw, n, "old", 0), *t = kwarg(args, kw, n, "new", 1), *c = kwarg(args, kw, n, "count", 2);
        if (!json_is_string(f) || !json_is_string(t)) return md_error_set(err, "replace needs two strings");
        *out = replace(v, f, t, json_is_integer(c) ? json_integer_value(c) : -1);
    } else return 1; /* not a string filter */
    return *out ? MD_OK : md_error_set(err, "out of memory");
}

int jlib_filter(const char *name, json_t *v, json_t **args, char **kw, size_t n, json_t **out, jwalk *w,
                md_error *err)
{
    *out = NULL;
    if (!strcmp(name, "default") || !strcmp(name, "d")) {
        json_t *dflt = kwarg(args, kw, n, "default_value", 0), *boolean = kwarg(args, kw, n, "boolean", 1);
        int use = !v || (jv_truthy(boolean) && !jv_truthy(v));
        *out = use ? (dflt ? json_incref(dflt) : json_string("")) : json_incref(v); /* "" was a leaked reference */
        return MD_OK;
    }
    if (!strcmp(name, "safe") || !strcmp(name, "e") || !strcmp(name, "escape")) {
        int special = 0;
        for (size_t i = 0; json_is_string(v) && i < json_string_length(v); i++)
            special |= strchr("<>&'\"", json_string_value(v)[i]) != NULL && json_string_value(v)[i] != '\0';
        if (name[0] != 's' && special)
            return md_error_set(err, "filter 'escape' is not supported");
        *out = json_incref(v);
        return MD_OK;
    }
    if (!strcmp(name, "string")) {
        md_sbuf b = {0};
        if (jv_str(&b, v, w)) {
            free(b.s);
            return w->over ? jwalk_error(w, err) : md_error_set(err, "out of memory");
        }
        *out = json_stringn(b.s ? b.s : "", b.n);
        free(b.s);
        return *out ? MD_OK : md_error_set(err, "out of memory");
    }
    int r = str_filter(name, v, args, kw, n, out, w, err);
    if (r != 1) return r;
    if (!strcmp(name, "length") || !strcmp(name, "count")) {
        long long len = length_of(v);
        if (len < 0) return bad(err, "filter", name, v);
        *out = json_integer(len);
    } else if (!strcmp(name, "tojson")) {
        return tojson(v, kwarg(args, kw, n, "indent", 0), out, w, err);
    } else if (!strcmp(name, "list")) {
        if (!(*out = to_list(v))) return bad(err, "filter", name, v);
    } else if (!strcmp(name, "items")) {
        if (!jv_is_dict(v) || !(*out = items(v))) return bad(err, "filter", name, v);
    } else if (!strcmp(name, "first") || !strcmp(name, "last")) {
        json_t *l = to_list(v);
        size_t len = l ? json_array_size(l) : 0;
        if (!l) return bad(err, "filter", name, v);
        *out = len ? json_incref(json_array_get(l, name[0] == 'f' ? 0 : len - 1)) : NULL;
        json_decref(l);
        return MD_OK;
    } else if (!strcmp(name, "join")) {
        return join(v, kwarg(args, kw, n, "d", 0), kwarg(args, kw, n, "attribute", 1), out, w, err);
    } else if (!strcmp(name, "select") || !strcmp(name, "reject") || !strcmp(name, "selectattr") ||
               !strcmp(name, "rejectattr")) {
        return select_items(name, v, args, n, out, w, err);
    } else if (!strcmp(name, "map")) {
        return map_items(v, args, kw, n, out, w, err);
    } else if (!strcmp(name, "int") || !strcmp(name, "float") || !strcmp(name, "abs")) {
        double d = json_is_string(v) ? strtod(json_string_value(v), NULL) : json_is_number(v) ? json_number_value(v) : 0;
        if (!strcmp(name, "abs")) d = fabs(d);
        *out = name[0] == 'f' || (name[0] == 'a' && json_is_real(v)) ? json_real(d) : json_integer((json_int_t)d);
    } else {
        return md_error_set(err, "the filter '%s' is not supported by mechdiff's Jinja interpreter", name);
    }
    return *out ? MD_OK : md_error_set(err, "out of memory");
}

/* --- tests ----------------------------------------------------------------------------- */

int jlib_test(const char *name, json_t *v, json_t **args, size_t n, int *out, jwalk *w, md_error *err)
{
    json_t *a = n ? args[0] : NULL;
    *out = 0;
    if (!strcmp(name, "defined")) *out = v != NULL;
    else if (!strcmp(name, "undefined")) *out = v == NULL;
    else if (!strcmp(name, "none")) *out = json_is_null(v);
    else if (!strcmp(name, "string")) *out = json_is_string(v);
    else if (!strcmp(name, "number")) *out = json_is_number(v);
    else if (!strcmp(name, "integer")) *out = json_is_integer(v);
    else if (!strcmp(name, "float")) *out = json_is_real(v);
    else if (!strcmp(name, "boolean")) *out = json_is_boolean(v);
    else if (!strcmp(name, "true")) *out = json_is_true(v);
    else if (!strcmp(name, "false")) *out = json_is_false(v);
    else if (!strcmp(name, "mapping")) *out = jv_is_dict(v);
    else if (!strcmp(name, "iterable") || !strcmp(name, "sequence"))
        *out = json_is_string(v) || json_is_array(v) || jv_is_dict(v);
    else if (!strcmp(name, "callable")) *out = jv_is_function(v);
    else if (!strcmp(name, "odd") || !strcmp(name, "even")) {
        if (!json_is_integer(v)) return bad(err, "test", name, v);
        *out = (json_integer_value(v) % 2 != 0) == (name[0] == 'o');
    } else if (!strcmp(name, "divisibleby")) {
        if (!json_is_integer(v) || !json_is_integer(a) || !json_integer_value(a)) return bad(err, "test", name, v);
        *out = json_integer_value(v) % json_integer_value(a) == 0;
    } else if (!strcmp(name, "equalto") || !strcmp(name, "eq") || !strcmp(name, "ne")) {
        *out = jv_equal(v, a, w) == (name[0] == 'e');
    } else if (!strcmp(name, "sameas")) { /* Python's "is": containers by identity, scalars by type and value */
        *out = v == a || (v && a && json_typeof(v) == json_typeof(a) && !json_is_array(v) && !json_is_object(v) &&
                          jv_equal(v, a, w));
    } else if (!strcmp(name, "in")) {
        if (jv_contains(a, v, out, w)) return bad(err, "test", name, a);
    } else {
        return md_error_set(err, "the test '%s' is not supported by mechdiff's Jinja interpreter", name);
    }
    return w->over ? jwalk_error(w, err) : MD_OK;
}

/* --- methods --------------------------------------------------------------------------- */

static int prefix_match(const json_t *v, const json_t *p, int end)
{
    if (json_is_array(p)) {
        size_t i;
        json_t *x;
        json_array_foreach((json_t *)p, i, x) if (prefix_match(v, x, end)) return 1;
        return 0;
    }
    if (!json_is_string(p)) return 0;
    size_t n = json_string_length(v), pl = json_string_length(p);
    return pl <= n && memcmp(json_string_value(v) + (end ? n - pl : 0), json_string_value(p), pl) == 0;
}

/* str.split(sep=None, maxsplit=-1) */
static json_t *split(const json_t *v, const json_t *sep, long long maxsplit)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v), i = 0;
    json_t *l = json_array();
    if (json_is_string(sep) && json_string_length(sep)) {
        const char *d = json_string_value(sep);
        size_t dl = json_string_length(sep), start = 0;
        for (i = 0; l && i + dl <= n && maxsplit != 0;) {
            if (memcmp(s + i, d, dl) != 0) { i++; continue; }
            if (json_array_append_new(l, json_stringn(s + start, i - start))) { json_decref(l); l = NULL; }
            i += dl;
            start = i;
            maxsplit--;
        }
        if (l && json_array_append_new(l, json_stringn(s + start, n - start))) { json_decref(l); l = NULL; }
        return l;
    }
    while (l && i < n) {
        while (i < n && is_space((unsigned char)s[i])) i++;
        if (i >= n) break;
        size_t a = i;
        if (maxsplit == 0) i = n;
        while (i < n && !is_space((unsigned char)s[i])) i++;
        size_t b = i;
        if (maxsplit == 0) while (b > a && is_space((unsigned char)s[b - 1])) b--;
        if (json_array_append_new(l, json_stringn(s + a, b - a))) { json_decref(l); l = NULL; }
        maxsplit--;
    }
    return l;
}

/* str.find/rfind/index/rindex/count(sub): the index in characters (as
 * Python counts them: code points), or the count. */
static int str_search(json_t *v, const char *name, json_t *sub, size_t n, json_t **out, md_error *err)
{
    if (n != 1 || !json_is_string(sub))
        return md_error_set(err, "str.%s takes one string here (start and end are not supported by mechdiff's Jinja "
                                 "interpreter)", name);
    const char *h = json_string_value(v), *s = json_string_value(sub);
    size_t hl = json_string_length(v), sl = json_string_length(sub);
    if (!strcmp(name, "count")) {
        long long k = 0;
        for (size_t i = 0; sl && i + sl <= hl;) {
            long long at = mem_find(h + i, hl - i, s, sl, 0);
            if (at < 0) break;
            k++;
            i += (size_t)at + sl;
        }
        if (!sl) /* '' occurs before each character and at the end */
            for (size_t i = 0; i <= hl; i++) k += i == hl || ((unsigned char)h[i] & 0xC0) != 0x80;
        *out = json_integer(k);
        return *out ? MD_OK : md_error_set(err, "out of memory");
    }
    long long at = mem_find(h, hl, s, sl, name[0] == 'r');
    if (at < 0 && strstr(name, "index")) return md_error_set(err, "str.%s: substring not found", name);
    long long chars = 0;
    for (long long i = 0; i < at; i++) chars += ((unsigned char)h[i] & 0xC0) != 0x80;
    *out = json_integer(at < 0 ? -1 : chars);
    return *out ? MD_OK : md_error_set(err, "out of memory");
}

static int str_method(json_t *v, const char *name, json_t **args, char **kw, size_t n, json_t **out, jwalk *w,
                      md_error *err)
{
    json_t *a = kwarg(args, kw, n, "", 0), *b = kwarg(args, kw, n, "", 1);
    if (!strcmp(name, "strip") || !strcmp(name, "lstrip") || !strcmp(name, "rstrip"))
        *out = strip(v, a, name[0] != 'r', name[0] != 'l');
    else if (!strcmp(name, "upper") || !strcmp(name, "lower") || !strcmp(name, "title") || !strcmp(name, "capitalize"))
        return jlib_filter(name, v, NULL, NULL, 0, out, w, err);
    else if (!strcmp(name, "startswith") || !strcmp(name, "endswith"))
        *out = json_boolean(prefix_match(v, a, name[0] == 'e'));
    else if (!strcmp(name, "replace")) {
        if (!json_is_string(a) || !json_is_string(b)) return md_error_set(err, "str.replace needs two strings");
        json_t *c = kwarg(args, kw, n, "count", 2);
        *out = replace(v, a, b, json_is_integer(c) ? json_integer_value(c) : -1);
    } else if (!strcmp(name, "split")) {
        json_t *sep = kwarg(args, kw, n, "sep", 0), *mx = kwarg(args, kw, n, "maxsplit", 1);
        *out = split(v, sep, json_is_integer(mx) ? json_integer_value(mx) : -1);
    } else if (!strcmp(name, "join")) {
        return join(a, v, NULL, out, w, err);
    } else if (!strcmp(name, "find") || !strcmp(name, "rfind") || !strcmp(name, "index") || !strcmp(name, "rindex") ||
               !strcmp(name, "count")) {
        return str_search(v, name, a, n, out, err);
    } else {
        return md_error_set(err, "the string method '%s' is not supported by mechdiff's Jinja interpreter", name);
    }
    return *out ? MD_OK : md_error_set(err, "out of memory");
}

int jlib_method(json_t *v, const char *name, json_t **args, char **kw, size_t n, json_t **out, jwalk *w,
                md_error *err)
{
    *out = NULL;
    if (json_is_string(v)) return str_method(v, name, args, kw, n, out, w, err);
    if (jv_is_namespace(v))
        return md_error_set(err, "a namespace() has no method '%s' (jinja2 raises: it has no attribute '%s'); "
                                 "read what it holds as ns.NAME", name, name);
    if (jv_is_dict(v)) {
        if (!strcmp(name, "items")) *out = items(v);
        else if (!strcmp(name, "keys")) *out = to_list(v);
        else if (!strcmp(name, "values")) {
            json_t *it = items(v);
            *out = it ? json_array() : NULL;
            size_t i;
            json_t *x;
            json_array_foreach(it, i, x) if (*out) json_array_append(*out, json_array_get(x, 1));
            json_decref(it);
        } else if (!strcmp(name, "get")) {
            json_t *k = n ? args[0] : NULL, *d = n > 1 ? args[1] : json_null();
            json_t *x = get_key(v, k);
            *out = json_incref(x ? x : d);
        } else {
            return md_error_set(err, "the dict method '%s' is not supported by mechdiff's Jinja interpreter", name);
        }
        return *out ? MD_OK : md_error_set(err, "out of memory");
    }
    return md_error_set(err, "a %s has no method '%s' in mechdiff's Jinja interpreter", jv_type(v), name);
}

/* --- dict() and namespace() ------------------------------------------------------------ */

int jlib_check_ns_name(const char *name, size_t len, md_error *err)
{
    if (len == 0 || name[0] != '_') return MD_OK;
    return md_error_set(err, "a namespace() cannot hold the name '%.*s': transformers refuses underscore-prefixed "
                             "attributes on a namespace (rename it)", len > 80 ? 80 : (int)len, name);
}

/* Sets o[k] = x (k of kl bytes), checking the name (a namespace) and that
 * the dict stays within JINJA_MAX_NEST levels. */
static int mapping_set(int ns, json_t *o, const char *k, size_t kl, json_t *x, jwalk *w, md_error *err)
{
    if (ns && jlib_check_ns_name(k, kl, err)) return MD_ERR;
    int d = jv_depth(x, w);
    if (!w->over && d + 1 > JINJA_MAX_NEST) w->over = JWALK_DEEP;
    if (w->over) return jwalk_error(w, err);
    return json_object_setn(o, k, kl, x) ? md_error_set(err, "out of memory") : MD_OK;
}

/* The pairs of a dict, or of a list of [key, value] pairs: the one
 * positional argument of dict() and namespace(), as Python's dict(arg) reads it. */
static int mapping_fill(int ns, json_t *o, json_t *from, jwalk *w, md_error *err)
{
    const char *what = ns ? "namespace" : "dict";
    if (jv_is_dict(from)) {
        const char *k;
        json_t *x;
        json_object_foreach(from, k, x) {
            if (!HIDDEN_KEY(k) && mapping_set(ns, o, k, KEY_LEN(k), x, w, err)) return MD_ERR;
        }
        return MD_OK;
    }
    if (!json_is_array(from)) {
        const char *t = jv_type(from);
        return md_error_set(err, "%s() takes a dict or a list of [key, value] pairs, not %s %s", what,
                            strchr("aeiou", t[0]) ? "an" : "a", t);
    }
    size_t i;
    json_t *p;
    json_array_foreach(from, i, p) {
        json_t *k = json_array_get(p, 0);
        if (!json_is_array(p) || json_array_size(p) != 2 || !json_is_string(k))
            return md_error_set(err, "%s(): item %zu of the list is not a [key, value] pair with a string key", what, i);
        if (mapping_set(ns, o, json_string_value(k), json_string_length(k), json_array_get(p, 1), w, err))
            return MD_ERR;
    }
    return MD_OK;
}

int jlib_mapping(int ns, json_t **args, char **kw, size_t n, json_t **out, jwalk *w, md_error *err)
{
    json_t *o = json_object();
    int rc = o ? MD_OK : md_error_set(err, "out of memory");
    for (size_t i = 0; rc == MD_OK && i < n; i++) {
        if (!kw[i] && i > 0)
            rc = md_error_set(err, "%s() takes at most one argument without a name", ns ? "namespace" : "dict");
        else if (!kw[i])
            rc = mapping_fill(ns, o, args[i], w, err);
        else if (ns && !args[i]) /* undefined: reads back as undefined, repr(ns) prints it as Undefined */
            rc = json_object_set_new(o, kw[i], jv_undefined_slot()) ? md_error_set(err, "out of memory") : MD_OK;
        else
            rc = mapping_set(ns, o, kw[i], strlen(kw[i]), args[i] ? args[i] : json_null(), w, err);
    }
    if (rc == MD_OK && ns && json_object_set_new(o, JV_NS_MARK, json_true())) rc = md_error_set(err, "out of memory");
    if (rc) {
        json_decref(o);
        return MD_ERR;
    }
    *out = o;
    return MD_OK;
}

int jlib_strftime(const char *fmt, time_t t, json_t **out, md_error *err)
{
    struct tm tm;
    char s[256];
    if (!gmtime_r(&t, &tm)) return md_error_set(err, "strftime_now: bad time");
    size_t n = strftime(s, sizeof s, fmt, &tm);
    if (n == 0 && fmt[0]) return md_error_set(err, "strftime_now: format '%s' gives no text", fmt);
    *out = json_stringn(s, n);
    return *out ? MD_OK : md_error_set(err, "out of memory");
}
