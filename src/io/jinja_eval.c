/* jinja_eval.c — renders a parsed Jinja template (see src/io/jinja_int.h).
 *
 * Values are Jansson references; NULL stands for Jinja's Undefined (prints
 * as "", is false, fails "is defined"). Scopes: the render context, then
 * one frame per for-loop body and macro call ("set" inside a loop does not
 * leak out, as in Jinja; namespace() objects carry values out).
 * Ownership: eval returns new references; frames own their variables. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "io/jinja_int.h"

#define MAX_DEPTH 64
#define MAX_STEPS (1 << 20) /* loop iterations and range() items in one render (a chat template: a few per message) */
#define MAX_WORK (1LL << 28)  /* bytes of strings and items of lists that one render's expressions make */
#define NS_MARK JV_NS_MARK
#define FN_MARK JV_FN_MARK

typedef struct jctx {
    const md_jinja *t;
    json_t *frames[MAX_DEPTH]; /* [0] = the caller's context (borrowed); others owned */
    int depth;
    const jnode *macros[64];
    int n_macros;
    md_sbuf out;
    time_t now;
    int brk; /* 1 break, 2 continue */
    long long steps; /* loop iterations and range() items so far (MAX_STEPS) */
    long long work;  /* string bytes and list items made so far (MAX_WORK) */
    jwalk walk;      /* what ==, in, str() and tojson may still walk over nested values */
    json_t *namespaces; /* every namespace() made: emptied at the end, which breaks any cycle through one */
    md_error *err;
} jctx;

static int ev(jctx *c, const jnode *n, json_t **out);
static int ev_node(jctx *c, const jnode *n, json_t **out);
static int exec_list(jctx *c, const jnode *n);

static int fail(jctx *c, const jnode *n, const char *what)
{
    return md_error_set(c->err, "%s:%d: %s", c->t->name, n->line, what);
}

static int oom(jctx *c)
{
    return md_error_set(c->err, "out of memory rendering %s", c->t->name);
}

/* The error of a walk over nested values that ran out (c->walk.over), at n. */
static int walk_fail(jctx *c, const jnode *n)
{
    jwalk_error(&c->walk, c->err);
    return md_error_prefix(c->err, "%s:%d", c->t->name, n->line);
}

/* Appends str(v) to b: out of memory or a walk that ran out is an error at n. */
static int add_str(jctx *c, const jnode *n, md_sbuf *b, const json_t *v)
{
    if (jv_str(b, v, &c->walk) == MD_OK) return MD_OK;
    return c->walk.over ? walk_fail(c, n) : oom(c);
}

/* A list or dict made at n holds item: it may nest at most JINJA_MAX_NEST
 * levels (Jansson frees values recursively: deeper ones would overflow the
 * stack; Python's own limit is near 1000). */
static int check_nest(jctx *c, const jnode *n, const json_t *item)
{
    int d = jv_depth(item, &c->walk);
    if (!c->walk.over && d + 1 > JINJA_MAX_NEST) c->walk.over = JWALK_DEEP;
    return c->walk.over ? walk_fail(c, n) : MD_OK;
}

static const char *const BUILTINS[] = {"raise_exception", "namespace", "range", "strftime_now", "dict", NULL};

static json_t *lookup(jctx *c, const char *name)
{
    for (int d = c->depth - 1; d >= 0; d--) {
        json_t *v = json_object_get(c->frames[d], name);
        if (v) return json_incref(v);
    }
    for (int k = 0; BUILTINS[k]; k++)
        if (strcmp(name, BUILTINS[k]) == 0) return json_pack("{ss}", FN_MARK, name);
    for (int k = 0; k < c->n_macros; k++)
        if (strcmp(name, c->macros[k]->str) == 0) return json_pack("{ss}", FN_MARK, name);
    return NULL;
}

/* --- operators ------------------------------------------------------------------ */

static int num(const json_t *v, double *d)
{
    if (json_is_integer(v)) *d = (double)json_integer_value(v);
    else if (json_is_real(v)) *d = json_real_value(v);
    else if (json_is_boolean(v)) *d = json_is_true(v);
    else return 0;
    return 1;
}

static int is_int(const json_t *v) { return json_is_integer(v) || json_is_boolean(v); }
static long long ival(const json_t *v) { return json_is_integer(v) ? json_integer_value(v) : json_is_true(v); }

/* i OP j on integers as Python does (floor division and modulo, j > 0
 * for **, j != 0 for // and %): 0 with *r, or 1 when the result (or a step
 * of the power) does not fit in 64 bits. */
static int int_arith(const char *op, long long i, long long j, long long *r)
{
    if (!strcmp(op, "+")) return __builtin_add_overflow(i, j, r);
    if (!strcmp(op, "-")) return __builtin_sub_overflow(i, j, r);
    if (!strcmp(op, "*")) return __builtin_mul_overflow(i, j, r);
    if (!strcmp(op, "//") || !strcmp(op, "%")) {
        if (i == LLONG_MIN && j == -1) return op[1] == '/' ? 1 : (*r = 0, 0);
        long long q = i / j, m = i % j;
        if (m != 0 && ((m < 0) != (j < 0))) q--, m += j;
        *r = op[1] == '/' ? q : m;
        return 0;
    }
    long long acc = 1; /* ** by squaring */
    for (; j > 0; j >>= 1) {
        if ((j & 1) && __builtin_mul_overflow(acc, i, &acc)) return 1;
        if (j > 1 && __builtin_mul_overflow(i, i, &i)) return 1;
    }
    *r = acc;
    return 0;
}

static int arith(jctx *c, const jnode *n, const char *op, json_t *a, json_t *b, json_t **out)
{
    double x, y;
    if (!strcmp(op, "+") && json_is_string(a) && json_is_string(b)) {
        md_sbuf s = {0};
        if (md_sbuf_add(&s, json_string_value(a), json_string_length(a)) ||
            md_sbuf_add(&s, json_string_value(b), json_string_length(b))) { free(s.s); return oom(c); }
        *out = json_stringn(s.s ? s.s : "", s.n);
        free(s.s);
        return *out ? MD_OK : oom(c);
    }
    if (!strcmp(op, "+") && json_is_array(a) && json_is_array(b)) {
        *out = json_copy(a); /* Python's list + list: a new list of the same items */
        if (!*out || json_array_extend(*out, b)) return oom(c);
        return MD_OK;
    }
    if (!num(a, &x) || !num(b, &y)) {
        char m[160];
        snprintf(m, sizeof m, "cannot apply '%s' to %s and %s", op, jv_type(a), jv_type(b));
        return fail(c, n, m);
    }
    if ((!strcmp(op, "/") || !strcmp(op, "//") || !strcmp(op, "%")) && y == 0) return fail(c, n, "division by zero");
    if (is_int(a) && is_int(b) && strcmp(op, "/") != 0 && (strcmp(op, "**") != 0 || ival(b) >= 0)) {
        long long r;
        if (int_arith(op, ival(a), ival(b), &r)) {
            char m[160];
            snprintf(m, sizeof m, "integer overflow: %lld %s %lld is beyond 64 bits", ival(a), op, ival(b));
            return fail(c, n, m);
        }
        *out = json_integer(r);
    } else if (!strcmp(op, "+")) *out = json_real(x + y);
    else if (!strcmp(op, "-")) *out = json_real(x - y);
    else if (!strcmp(op, "*")) *out = json_real(x * y);
    else if (!strcmp(op, "/")) *out = json_real(x / y);
    else if (!strcmp(op, "//")) *out = json_real(__builtin_floor(x / y));
    else if (!strcmp(op, "%")) *out = json_real(x - y * __builtin_floor(x / y));
    else *out = json_real(__builtin_pow(x, y)); /* ** */
    return *out ? MD_OK : oom(c);
}

static int compare(jctx *c, const jnode *n, json_t *a, json_t *b, int *res)
{
    const char *op = n->str;
    if (!strcmp(op, "==") || !strcmp(op, "!=")) {
        *res = jv_equal(a, b, &c->walk) == (op[0] == '=');
        return c->walk.over ? walk_fail(c, n) : MD_OK;
    }
    if (!strcmp(op, "in")) {
        if (jv_contains(b, a, res, &c->walk)) {
            char m[160];
            snprintf(m, sizeof m, "cannot test whether a %s is in a %s", jv_type(a), jv_type(b));
            return fail(c, n, m);
        }
        if (n->negate) *res = !*res;
        return c->walk.over ? walk_fail(c, n) : MD_OK;
    }
    double x, y;
    int cmp;
    if (json_is_string(a) && json_is_string(b)) {
        size_t la = json_string_length(a), lb = json_string_length(b);
        cmp = memcmp(json_string_value(a), json_string_value(b), la < lb ? la : lb);
        if (cmp == 0) cmp = la < lb ? -1 : la > lb;
    } else if (num(a, &x) && num(b, &y)) {
        cmp = x < y ? -1 : x > y;
    } else {
        char m[160];
        snprintf(m, sizeof m, "cannot compare %s with %s using '%s'", jv_type(a), jv_type(b), op);
        return fail(c, n, m);
    }
    *res = !strcmp(op, "<") ? cmp < 0 : !strcmp(op, ">") ? cmp > 0 : !strcmp(op, "<=") ? cmp <= 0 : cmp >= 0;
    return MD_OK;
}

static int ev_bin(jctx *c, const jnode *n, json_t **out)
{
    json_t *a = NULL, *b = NULL;
    int rc = MD_ERR, res;
    if (ev(c, n->a, &a) || ev(c, n->b, &b)) goto out;
    const char *op = n->str;
    if (!strcmp(op, "~")) {
        md_sbuf s = {0};
        rc = add_str(c, n, &s, a) || add_str(c, n, &s, b) ? MD_ERR : MD_OK;
        if (rc == MD_OK && !(*out = json_stringn(s.s ? s.s : "", s.n))) rc = oom(c);
        free(s.s);
    } else if (!strcmp(op, "==") || !strcmp(op, "!=") || !strcmp(op, "in") || op[0] == '<' || op[0] == '>') {
        if ((rc = compare(c, n, a, b, &res)) == MD_OK) *out = json_boolean(res);
    } else {
        rc = arith(c, n, op, a, b, out);
    }
out:
    json_decref(a);
    json_decref(b);
    return rc;
}

/* --- attribute, index, slice ------------------------------------------------------ */

static int ev_index(jctx *c, const jnode *n, json_t *obj, json_t *key, json_t **out)
{
    *out = NULL;
    if (json_is_object(obj) && json_is_string(key)) {
        *out = jv_member(obj, json_string_value(key), json_string_length(key));
    } else if ((json_is_array(obj) || json_is_string(obj)) && is_int(key)) {
        long long i = ival(key), len;
        if (json_is_array(obj)) {
            len = (long long)json_array_size(obj);
            if (i < 0) i += len;
            if (i >= 0 && i < len) *out = json_incref(json_array_get(obj, (size_t)i));
        } else {
            json_t *chars = NULL;
            if (jlib_filter("list", obj, NULL, NULL, 0, &chars, &c->walk, c->err)) return MD_ERR;
            len = (long long)json_array_size(chars);
            if (i < 0) i += len;
            if (i >= 0 && i < len) *out = json_incref(json_array_get(chars, (size_t)i));
            json_decref(chars);
        }
    } else if (obj == NULL) {
        return fail(c, n, "cannot index an undefined value");
    }
    return MD_OK;
}

static int ev_slice(jctx *c, const jnode *n, json_t **out)
{
    json_t *obj = NULL, *part[3] = {NULL, NULL, NULL}, *items = NULL;
    int rc = MD_ERR;
    if (ev(c, n->a, &obj)) goto out;
    for (int k = 0; k < 3; k++) {
        if (n->args[k] && ev(c, n->args[k], &part[k])) goto out;
        if (part[k] && !json_is_null(part[k]) && !is_int(part[k])) { fail(c, n, "slice bounds must be integers"); goto out; }
    }
    if (json_is_string(obj)) {
        if (jlib_filter("list", obj, NULL, NULL, 0, &items, &c->walk, c->err)) goto out;
    } else if (json_is_array(obj)) {
        items = json_incref(obj);
    } else {
        char m[96];
        snprintf(m, sizeof m, "cannot slice a %s", jv_type(obj));
        fail(c, n, m);
        goto out;
    }
    long long len = (long long)json_array_size(items);
    long long step = part[2] && is_int(part[2]) ? ival(part[2]) : 1;
    if (step == 0) { fail(c, n, "slice step cannot be zero"); goto out; }
    if (step > len || step < -len) step = step > 0 ? len + 1 : -len - 1; /* one item either way; i + step stays in range */
    long long lo = step > 0 ? 0 : len - 1, hi = step > 0 ? len : -1;
    for (int k = 0; k < 2; k++) {
        if (!part[k] || !is_int(part[k])) continue;
        long long v = ival(part[k]);
        if (v < 0) v += len;
        if (step > 0) v = v < 0 ? 0 : v > len ? len : v;
        else v = v < -1 ? -1 : v > len - 1 ? len - 1 : v;
        if (k == 0) lo = v;
        else hi = v;
    }
    json_t *res = json_array();
    md_sbuf s = {0};
    for (long long i = lo; res && (step > 0 ? i < hi : i > hi); i += step) {
        json_t *v = json_array_get(items, (size_t)i);
        if (json_is_string(obj) ? md_sbuf_add(&s, json_string_value(v), json_string_length(v)) : json_array_append(res, v)) {
            json_decref(res);
            res = NULL;
        }
    }
    if (res && json_is_string(obj)) {
        json_decref(res);
        res = json_stringn(s.s ? s.s : "", s.n);
    }
    free(s.s);
    if (!(*out = res)) { oom(c); goto out; }
    rc = MD_OK;
out:
    json_decref(obj);
    json_decref(items);
    for (int k = 0; k < 3; k++) json_decref(part[k]);
    return rc;
}

/* --- calls --------------------------------------------------------------------------- */

typedef struct argv_ {
    json_t **v;
    char **kw;
    size_t n;
} argv_;

static void args_free(argv_ *a)
{
    for (size_t i = 0; i < a->n; i++) json_decref(a->v[i]);
    free(a->v);
}

static int ev_args(jctx *c, const jnode *n, argv_ *a)
{
    a->n = n->n_args;
    a->kw = n->kw;
    a->v = calloc(n->n_args + 1, sizeof *a->v);
    if (!a->v) return oom(c);
    for (size_t i = 0; i < n->n_args; i++)
        if (ev(c, n->args[i], &a->v[i])) return MD_ERR;
    return MD_OK;
}

static const jnode *find_macro(jctx *c, const char *name)
{
    for (int k = 0; k < c->n_macros; k++)
        if (strcmp(name, c->macros[k]->str) == 0) return c->macros[k];
    return NULL;
}

static int call_macro(jctx *c, const jnode *call, const jnode *m, argv_ *a, json_t **out)
{
    if (c->depth >= MAX_DEPTH) return fail(c, call, "macro calls nest too deeply");
    json_t *frame = json_object();
    if (!frame) return oom(c);
    size_t pos = 0;
    for (size_t i = 0; i < a->n; i++) {
        const char *name = a->kw[i] ? a->kw[i] : pos < m->n_targets ? m->targets[pos++] : NULL;
        if (!name) { json_decref(frame); return fail(c, call, "too many arguments in a macro call"); }
        if (a->v[i] && json_object_set(frame, name, a->v[i])) { json_decref(frame); return oom(c); }
    }
    c->frames[c->depth++] = frame;
    int rc = MD_OK;
    for (size_t i = 0; rc == MD_OK && i < m->n_targets; i++) {
        if (json_object_get(frame, m->targets[i]) || !m->args[i]) continue;
        json_t *d = NULL;
        rc = ev(c, m->args[i], &d);
        if (rc == MD_OK && d && json_object_set_new(frame, m->targets[i], d)) rc = oom(c);
    }
    md_sbuf saved = c->out;
    memset(&c->out, 0, sizeof c->out);
    if (rc == MD_OK) rc = exec_list(c, m->body);
    c->brk = 0;
    if (rc == MD_OK && !(*out = json_stringn(c->out.s ? c->out.s : "", c->out.n))) rc = oom(c);
    free(c->out.s);
    c->out = saved;
    json_decref(c->frames[--c->depth]);
    return rc;
}

static int call_builtin(jctx *c, const jnode *call, const char *name, argv_ *a, json_t **out)
{
    if (!strcmp(name, "raise_exception")) {
        md_sbuf s = {0};
        if (a->n && add_str(c, call, &s, a->v[0])) {
            free(s.s);
            return MD_ERR;
        }
        md_error_set(c->err, "%s:%d: the template raised an exception: %s", c->t->name, call->line, s.s ? s.s : "");
        free(s.s);
        return MD_ERR;
    }
    if (!strcmp(name, "namespace") || !strcmp(name, "dict")) {
        int ns = name[0] == 'n';
        if (jlib_mapping(ns, a->v, a->kw, a->n, out, &c->walk, c->err))
            return md_error_prefix(c->err, "%s:%d", c->t->name, call->line);
        if (ns && json_array_append(c->namespaces, *out)) {
            json_decref(*out);
            *out = NULL;
            return oom(c);
        }
        return MD_OK;
    }
    if (!strcmp(name, "strftime_now")) {
        if (a->n != 1 || !json_is_string(a->v[0])) return fail(c, call, "strftime_now takes one format string");
        return jlib_strftime(json_string_value(a->v[0]), c->now, out, c->err);
    }
    /* range */
    long long r[3] = {0, 0, 1};
    if (a->n < 1 || a->n > 3) return fail(c, call, "range takes 1 to 3 integers");
    for (size_t i = 0; i < a->n; i++) {
        if (!is_int(a->v[i])) return fail(c, call, "range takes integers");
        r[a->n == 1 ? 1 : i] = ival(a->v[i]);
    }
    if (r[2] == 0) return fail(c, call, "range step cannot be zero");
    /* the item count in unsigned arithmetic: stop - start may not fit in 64 signed bits */
    unsigned long long span = r[2] > 0 ? (r[1] > r[0] ? (unsigned long long)r[1] - (unsigned long long)r[0] : 0)
                                       : (r[0] > r[1] ? (unsigned long long)r[0] - (unsigned long long)r[1] : 0);
    unsigned long long stride = r[2] > 0 ? (unsigned long long)r[2] : 0ull - (unsigned long long)r[2];
    unsigned long long count = span ? (span - 1) / stride + 1 : 0;
    if (count > (unsigned long long)(MAX_STEPS - c->steps)) {
        char m[200];
        snprintf(m, sizeof m, "range(%lld, %lld, %lld) makes %llu items, more than the %d items and loop steps a "
                 "template may make in all", r[0], r[1], r[2], count, MAX_STEPS);
        return fail(c, call, m);
    }
    c->steps += (long long)count;
    json_t *l = json_array();
    unsigned long long first = (unsigned long long)r[0], inc = (unsigned long long)r[2]; /* wraps, as it must */
    for (unsigned long long k = 0; l && k < count; k++)
        if (json_array_append_new(l, json_integer((long long)(first + k * inc)))) {
            json_decref(l);
            l = NULL;
        }
    return (*out = l) ? MD_OK : oom(c);
}

static int ev_call(jctx *c, const jnode *n, json_t **out)
{
    argv_ a = {0};
    json_t *obj = NULL;
    int rc = MD_ERR;
    if (ev_args(c, n, &a)) goto out;
    if (n->a->kind == JE_NAME) {
        const jnode *m = find_macro(c, n->a->str);
        int builtin = 0;
        for (int k = 0; BUILTINS[k]; k++) builtin |= !strcmp(n->a->str, BUILTINS[k]);
        if (m) rc = call_macro(c, n, m, &a, out);
        else if (builtin) rc = call_builtin(c, n, n->a->str, &a, out);
        else {
            char msg[200];
            snprintf(msg, sizeof msg, "'%.80s' is not a function mechdiff's Jinja interpreter knows", n->a->str);
            rc = fail(c, n, msg);
        }
    } else if (n->a->kind == JE_ATTR) {
        if (ev(c, n->a->a, &obj)) goto out;
        rc = jlib_method(obj, n->a->str, a.v, a.kw, a.n, out, &c->walk, c->err);
        if (rc) md_error_prefix(c->err, "%s:%d", c->t->name, n->line);
    } else {
        rc = fail(c, n, "only functions, macros and methods can be called");
    }
out:
    args_free(&a);
    json_decref(obj);
    return rc;
}

static int ev_filter_test(jctx *c, const jnode *n, json_t **out)
{
    json_t *v = NULL;
    argv_ a = {0};
    int rc = MD_ERR;
    if (ev(c, n->a, &v) || ev_args(c, n, &a)) goto out;
    if (n->kind == JE_FILTER) {
        rc = jlib_filter(n->str, v, a.v, a.kw, a.n, out, &c->walk, c->err);
    } else {
        int res = 0;
        rc = jlib_test(n->str, v, a.v, a.n, &res, &c->walk, c->err);
        if (rc == MD_OK) *out = json_boolean(n->negate ? !res : res);
    }
    if (rc) md_error_prefix(c->err, "%s:%d", c->t->name, n->line);
out:
    json_decref(v);
    args_free(&a);
    return rc;
}

/* --- expressions ------------------------------------------------------------------ */

static int ev_collection(jctx *c, const jnode *n, json_t **out)
{
    json_t *r = n->kind == JE_LIST ? json_array() : json_object();
    if (!r) return oom(c);
    for (size_t i = 0; i < n->n_args; i += n->kind == JE_LIST ? 1 : 2) {
        json_t *k = NULL, *v = NULL;
        int rc = ev(c, n->args[i], &k);
        if (rc == MD_OK && n->kind == JE_DICT) rc = ev(c, n->args[i + 1], &v);
        if (rc == MD_OK && n->kind == JE_DICT && !json_is_string(k)) rc = fail(c, n, "dict keys must be strings");
        if (rc == MD_OK) rc = check_nest(c, n, n->kind == JE_LIST ? k : v);
        if (rc == MD_OK) {
            int bad = n->kind == JE_LIST ? json_array_append(r, k ? k : json_null())
                                         : json_object_setn(r, json_string_value(k), json_string_length(k),
                                                            v ? v : json_null());
            if (bad) rc = oom(c);
        }
        json_decref(k);
        json_decref(v);
        if (rc) { json_decref(r); return MD_ERR; }
    }
    *out = r;
    return MD_OK;
}

/* Whether n makes a new value (a literal, a variable, an attribute or an
 * item is one that exists already: reading it costs nothing). */
static int made(const jnode *n)
{
    return n->kind != JE_LIT && n->kind != JE_NAME && n->kind != JE_ATTR && n->kind != JE_INDEX;
}

/* Evaluates n and charges what it made to the render's budget: a string
 * longer than JINJA_MAX_TEXT, a list of more than MAX_STEPS items, or more
 * than MAX_WORK bytes and items in all is an error naming the line. */
static int ev(jctx *c, const jnode *n, json_t **out)
{
    if (ev_node(c, n, out)) return MD_ERR;
    const char *what = NULL;
    if (json_is_string(*out)) {
        size_t len = json_string_length(*out);
        if (len > JINJA_MAX_TEXT) what = "a string longer than 16 MiB";
        else if (made(n)) c->work += (long long)len;
    } else if (json_is_array(*out)) {
        size_t items = json_array_size(*out);
        if (items > MAX_STEPS) what = "a list of more than 2^20 items";
        else if (made(n)) c->work += (long long)items;
    }
    if (!what && c->work > MAX_WORK) what = "more than 2^28 bytes of strings and list items in all";
    if (!what) return MD_OK;
    json_decref(*out);
    *out = NULL;
    char m[200];
    snprintf(m, sizeof m, "the template makes %s (a chat template makes a few kB)", what);
    return fail(c, n, m);
}

static int ev_node(jctx *c, const jnode *n, json_t **out)
{
    *out = NULL;
    json_t *a = NULL, *b = NULL;
    int rc = MD_OK;
    switch (n->kind) {
    case JE_LIT: *out = json_incref(n->lit); return MD_OK;
    case JE_NAME: *out = lookup(c, n->str); return MD_OK;
    case JE_ATTR:
        if (ev(c, n->a, &a)) return MD_ERR;
        if (!a) rc = fail(c, n, "cannot read an attribute of an undefined value");
        else if (json_is_object(a)) *out = jv_member(a, n->str, strlen(n->str));
        json_decref(a);
        return rc;
    case JE_INDEX:
        if (ev(c, n->a, &a) == MD_OK && ev(c, n->b, &b) == MD_OK) rc = ev_index(c, n, a, b, out);
        else rc = MD_ERR;
        json_decref(a);
        json_decref(b);
        return rc;
    case JE_SLICE: return ev_slice(c, n, out);
    case JE_CALL: return ev_call(c, n, out);
    case JE_FILTER:
    case JE_TEST: return ev_filter_test(c, n, out);
    case JE_NOT:
    case JE_NEG:
        if (ev(c, n->a, &a)) return MD_ERR;
        if (n->kind == JE_NOT) *out = json_boolean(!jv_truthy(a));
        else if (json_is_integer(a) && json_integer_value(a) == LLONG_MIN) rc = fail(c, n, "integer overflow: -(-2^63) is beyond 64 bits");
        else if (json_is_integer(a)) *out = json_integer(-json_integer_value(a));
        else if (json_is_real(a)) *out = json_real(-json_real_value(a));
        else rc = fail(c, n, "cannot negate a value that is not a number");
        json_decref(a);
        return rc;
    case JE_AND:
    case JE_OR:
        if (ev(c, n->a, &a)) return MD_ERR;
        if (jv_truthy(a) == (n->kind == JE_OR)) {
            *out = a;
            return MD_OK;
        }
        json_decref(a);
        return ev(c, n->b, out);
    case JE_BIN: return ev_bin(c, n, out);
    case JE_COND:
        if (ev(c, n->a, &a)) return MD_ERR;
        rc = jv_truthy(a) ? ev(c, n->b, out) : n->c ? ev(c, n->c, out) : MD_OK;
        json_decref(a);
        return rc;
    case JE_LIST:
    case JE_DICT: return ev_collection(c, n, out);
    default: return fail(c, n, "not an expression");
    }
}

/* --- statements --------------------------------------------------------------------- */

/* The items a for-loop walks: a list as is, a dict's keys, a string's characters, none of an undefined value. */
static int loop_items(jctx *c, const jnode *n, json_t *v, json_t **items)
{
    if (json_is_array(v)) {
        *items = json_incref(v);
        return MD_OK;
    }
    if (!v) return (*items = json_array()) ? MD_OK : oom(c); /* jinja2's Undefined iterates as empty */
    if (jv_is_dict(v) || json_is_string(v)) return jlib_filter("list", v, NULL, NULL, 0, items, &c->walk, c->err);
    char m[96];
    snprintf(m, sizeof m, "cannot loop over a %s", jv_type(v));
    return fail(c, n, m);
}

/* Binds the loop variables of n to item in frame (for a, b in ...: item unpacked). */
static int bind_targets(jctx *c, const jnode *n, json_t *frame, json_t *item)
{
    if (n->n_targets == 1) return json_object_set(frame, n->targets[0], item) ? oom(c) : MD_OK;
    if (!json_is_array(item) || json_array_size(item) != n->n_targets)
        return fail(c, n, "cannot unpack a loop item into that many variables");
    for (size_t k = 0; k < n->n_targets; k++)
        if (json_object_set(frame, n->targets[k], json_array_get(item, k))) return oom(c);
    return MD_OK;
}

/* for x in items if cond: the items for which cond is true, as jinja2
 * filters them before the loop (loop.length, loop.last count only these).
 * Each item tested is a loop step. *kept is a new reference. */
static int filter_items(jctx *c, const jnode *n, json_t *frame, json_t *items, json_t **kept)
{
    *kept = json_array();
    if (!*kept) return oom(c);
    int rc = MD_OK;
    for (size_t i = 0; rc == MD_OK && i < json_array_size(items); i++) {
        json_t *item = json_array_get(items, i), *t = NULL;
        if (++c->steps > MAX_STEPS) rc = fail(c, n, "the loops run more than 2^20 steps in all, loop filters included");
        if (rc == MD_OK) rc = bind_targets(c, n, frame, item);
        if (rc == MD_OK) rc = ev(c, n->c, &t);
        if (rc == MD_OK && jv_truthy(t) && json_array_append(*kept, item)) rc = oom(c);
        json_decref(t);
    }
    json_object_clear(frame);
    if (rc) {
        json_decref(*kept);
        *kept = NULL;
    }
    return rc;
}

static int set_loop_vars(jctx *c, const jnode *n, json_t *frame, json_t *items, size_t i)
{
    size_t len = json_array_size(items);
    json_t *item = json_array_get(items, i);
    json_t *loop = json_pack("{sIsIsIsIsbsbsI}", "index", (json_int_t)i + 1, "index0", (json_int_t)i, "revindex",
                             (json_int_t)(len - i), "revindex0", (json_int_t)(len - i - 1), "first", i == 0, "last",
                             i + 1 == len, "length", (json_int_t)len);
    if (!loop) return oom(c);
    if ((i > 0 && json_object_set(loop, "previtem", json_array_get(items, i - 1))) ||
        (i + 1 < len && json_object_set(loop, "nextitem", json_array_get(items, i + 1))) ||
        json_object_set_new(frame, "loop", loop))
        return oom(c);
    return bind_targets(c, n, frame, item);
}

static int exec_for(jctx *c, const jnode *n)
{
    json_t *v = NULL, *items = NULL, *frame = NULL;
    int rc = MD_ERR;
    if (ev(c, n->a, &v) || loop_items(c, n, v, &items)) goto out;
    if (c->depth >= MAX_DEPTH) { fail(c, n, "loops nest too deeply"); goto out; }
    if (!(frame = json_object())) { oom(c); goto out; }
    c->frames[c->depth++] = frame;
    json_t *all = items;
    rc = n->c ? filter_items(c, n, frame, all, &items) : MD_OK;
    if (n->c) json_decref(all);
    for (size_t i = 0; rc == MD_OK && i < json_array_size(items); i++) {
        if (++c->steps > MAX_STEPS) {
            char m[128];
            snprintf(m, sizeof m, "the loops run more than %d steps in all, range() items included (a chat template "
                     "runs a few per message)", MAX_STEPS);
            rc = fail(c, n, m);
            break;
        }
        rc = set_loop_vars(c, n, frame, items, i);
        if (rc == MD_OK) rc = exec_list(c, n->body);
        int stop = c->brk == 1;
        c->brk = 0;
        if (stop) break;
    }
    json_decref(c->frames[--c->depth]);
    if (rc == MD_OK && json_array_size(items) == 0) rc = exec_list(c, n->orelse);
out:
    json_decref(v);
    json_decref(items);
    return rc;
}

static int exec_set(jctx *c, const jnode *n)
{
    json_t *v = NULL;
    if (n->a) {
        if (ev(c, n->a, &v)) return MD_ERR;
    } else {
        md_sbuf saved = c->out;
        memset(&c->out, 0, sizeof c->out);
        int rc = exec_list(c, n->body);
        v = rc == MD_OK ? json_stringn(c->out.s ? c->out.s : "", c->out.n) : NULL;
        free(c->out.s);
        c->out = saved;
        if (rc) return MD_ERR;
        if (!v) return oom(c);
    }
    int rc = MD_OK;
    if (n->str) { /* ns.attr = value */
        json_t *ns = lookup(c, n->targets[0]);
        if (!jv_is_namespace(ns))
            rc = fail(c, n, "'set x.attr = ...' needs x to be a namespace()");
        else if (jlib_check_ns_name(n->str, strlen(n->str), c->err))
            rc = md_error_prefix(c->err, "%s:%d", c->t->name, n->line);
        else if (!v) /* undefined: ns.attr reads back as undefined, repr(ns) prints it as Undefined */
            rc = json_object_set_new(ns, n->str, jv_undefined_slot()) ? oom(c) : MD_OK;
        else if (json_object_set(ns, n->str, v))
            rc = oom(c);
        json_decref(ns);
    } else if (v ? json_object_set(c->frames[c->depth - 1], n->targets[0], v)
                 : json_object_del(c->frames[c->depth - 1], n->targets[0]) && 0) {
        rc = oom(c);
    }
    json_decref(v);
    return rc;
}

static int exec_one(jctx *c, const jnode *n)
{
    json_t *v = NULL;
    int rc = MD_OK;
    switch (n->kind) {
    case JN_TEXT: return md_sbuf_add(&c->out, n->str, n->len) ? oom(c) : MD_OK;
    case JN_OUT:
        if (ev(c, n->a, &v)) return MD_ERR;
        rc = add_str(c, n, &c->out, v);
        json_decref(v);
        return rc;
    case JN_IF:
        if (ev(c, n->a, &v)) return MD_ERR;
        rc = exec_list(c, jv_truthy(v) ? n->body : n->orelse);
        json_decref(v);
        return rc;
    case JN_FOR: return exec_for(c, n);
    case JN_SET: return exec_set(c, n);
    case JN_MACRO:
        if (c->n_macros == (int)(sizeof c->macros / sizeof c->macros[0])) return fail(c, n, "too many macros");
        c->macros[c->n_macros++] = n;
        return MD_OK;
    case JN_BREAK: c->brk = 1; return MD_OK;
    case JN_CONTINUE: c->brk = 2; return MD_OK;
    case JN_BLOCK: return exec_list(c, n->body);
    default: return fail(c, n, "not a statement");
    }
}

static int exec_list(jctx *c, const jnode *n)
{
    for (; n && !c->brk; n = n->next) {
        if (exec_one(c, n)) return MD_ERR;
        if (c->out.n > JINJA_MAX_TEXT) return fail(c, n, "the template writes more than 16 MiB of text");
    }
    return MD_OK;
}

int md_jinja_render(const md_jinja *t, json_t *ctx, time_t now, char **out, size_t *len, md_error *err)
{
    *out = NULL;
    if (len) *len = 0;
    jctx c;
    memset(&c, 0, sizeof c);
    c.t = t;
    c.now = now;
    c.err = err;
    c.walk.left = JINJA_MAX_WALK;
    c.frames[0] = ctx;
    c.frames[1] = json_object(); /* the template's own top-level variables */
    c.depth = 2;
    c.namespaces = json_array();
    if (!c.frames[1] || !c.namespaces) {
        json_decref(c.frames[1]);
        json_decref(c.namespaces);
        return oom(&c);
    }
    int rc = exec_list(&c, t->root);
    json_decref(c.frames[1]);
    size_t i;
    json_t *ns;
    json_array_foreach(c.namespaces, i, ns) json_object_clear(ns);
    json_decref(c.namespaces);
    if (rc == MD_OK && !c.out.s && md_sbuf_add(&c.out, "", 0)) rc = oom(&c);
    if (rc) {
        free(c.out.s);
        return MD_ERR;
    }
    *out = c.out.s;
    if (len) *len = c.out.n;
    return MD_OK;
}
