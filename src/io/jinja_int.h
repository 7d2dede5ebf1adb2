/* jinja_int.h — internal: the parse tree of a Jinja template
 * (src/io/jinja_parse.c builds it), its evaluation (src/io/jinja_eval.c)
 * and the built-in filters, tests and methods (src/io/jinja_lib.c).
 * Ownership: every node owns its strings, literal values and children. */
#ifndef MECHDIFF_IO_JINJA_INT_H
#define MECHDIFF_IO_JINJA_INT_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

#include "mechdiff/sbuf.h"
#include "mechdiff/error.h"
#include "mechdiff/jinja.h"

typedef enum jnode_kind {
    /* statements */
    JN_TEXT, JN_OUT, JN_IF, JN_FOR, JN_SET, JN_MACRO, JN_BREAK, JN_CONTINUE, JN_BLOCK,
    /* expressions */
    JE_LIT, JE_NAME, JE_ATTR, JE_INDEX, JE_SLICE, JE_CALL, JE_FILTER, JE_TEST, JE_NOT, JE_NEG,
    JE_AND, JE_OR, JE_BIN, JE_COND, JE_LIST, JE_DICT
} jnode_kind;

typedef struct jnode jnode;
struct jnode {
    jnode_kind kind;
    int line;
    char *str;            /* text, name, attribute, filter/test or operator (owned) */
    size_t len;           /* length of str */
    json_t *lit;          /* JE_LIT value (owned reference) */
    jnode *a, *b, *c;     /* operands; JE_SLICE start/stop/step; JN_IF/JE_COND cond, JN_SET value;
                             JN_FOR: a the iterable, c the loop filter (for x in a if c) or NULL */
    jnode **args;         /* call/filter/test arguments, list items, dict keys+values (owned) */
    char **kw;            /* [n_args] keyword name or NULL (owned) */
    size_t n_args;
    jnode *body, *orelse; /* statement lists */
    char **targets;       /* for/set/macro names (owned) */
    size_t n_targets;
    int negate;           /* JE_TEST "is not", JE_BIN "not in" */
    jnode *next;          /* next statement in a list */
};

struct md_jinja {
    jnode *root;
    char *name; /* for messages (owned) */
};


/* Tokens (src/io/jinja_lex.c): text between tags, a tag's start ({% or {{),
 * the expression tokens inside it, and its end. */
enum { TK_EOF, TK_TEXT, TK_BLOCK, TK_VAR, TK_END, TK_NAME, TK_STR, TK_INT, TK_FLOAT, TK_OP };

typedef struct jtok {
    int type, line;
    char *s; /* text, name, string value or operator (owned) */
    size_t len;
    long long i;
    double f;
} jtok;

typedef struct jparser {
    jtok *t;
    size_t n, cap, pos;
    int depth; /* nesting of expressions and blocks, bounded (no stack overflow) */
    const char *name;
    md_error *err;
} jparser;

/* Appends the tokens of s[0..n) to p->t, ending with TK_EOF. */
int jinja_tokenize(jparser *p, const char *s, size_t n);

void jnode_free(jnode *n);

/* The longest string a render makes, output included: the builders below
 * (str, join, replace, tojson) stop a little past it, and jinja_eval.c
 * refuses any value or output longer (a message, never minutes of work or
 * gigabytes of memory on a hostile template). */
#define JINJA_MAX_TEXT ((size_t)1 << 24)

/* The budget of the recursive walks over nested values (==, in, the
 * equalto/in tests, str(), join, tojson): every list or dict a walk visits
 * costs one of JINJA_MAX_WALK steps, which one render shares, and a walk goes at
 * most JINJA_MAX_NEST levels deep. Lists that share items (a = [a, a]
 * repeated) are walked item by item, as Python does, so that a hostile
 * template could otherwise take exponential time or overflow the stack; a
 * walk past either bound stops with over set, and jwalk_error words the
 * message its caller gives. The lists and dicts a render makes nest at most
 * JINJA_MAX_NEST deep (jv_depth): Jansson frees values recursively. */
#define JINJA_MAX_WALK (1LL << 22)
#define JINJA_MAX_NEST 512

/* A list, dict or namespace that str() is printing now: one link a level,
 * on the C stack. Only a namespace() can make a cycle (it is the one value
 * a template changes in place), so while one is open, a value met again
 * inside itself prints as Python's repr does ([...], {...},
 * <Namespace {...}>) instead of walking round the cycle; the check looks
 * JV_OPEN_SCAN levels up (a longer cycle ends at JINJA_MAX_NEST). */
typedef struct jv_open {
    const json_t *v;
    const struct jv_open *up;
} jv_open;
#define JV_OPEN_SCAN 64

typedef struct jwalk {
    long long left;      /* steps left in this render */
    int depth;           /* levels of the walk now under way */
    int over;            /* 0, or JWALK_STEPS / JWALK_DEEP once a walk ran past a bound */
    const jv_open *open; /* what str() is inside of (NULL outside any) */
    int open_ns;         /* how many of those are namespaces */
} jwalk;

enum { JWALK_STEPS = 1, JWALK_DEEP = 2 };

/* Enters one value of a walk: 0, or 1 (over set) when the walk is out of
 * steps or too deep. Each jwalk_enter that returns 0 pairs with a jwalk_leave. */
int jwalk_enter(jwalk *w);
void jwalk_leave(jwalk *w);
/* Sets err to why w stopped (the template is too expensive); returns MD_ERR. */
int jwalk_error(const jwalk *w, md_error *err);

/* The levels of lists and dicts in v (0 for a scalar or a namespace, whose
 * contents a render frees one by one); an item equal to the one before it
 * (the same value) is walked once. 0 with w->over set when w ran out. */
int jv_depth(const json_t *v, jwalk *w);

/* Values beyond JSON are objects with a hidden key (a key that starts with
 * \x01 is never printed, listed or serialised): a namespace() carries
 * JV_NS_MARK, a function or macro JV_FN_MARK (its name). A "dict" is an
 * object that is neither. */
#define JV_NS_MARK "\x01namespace"
#define JV_FN_MARK "\x01function"
#define JV_HIDDEN_KEY(k) ((k)[0] == '\x01')
int jv_is_namespace(const json_t *v);
int jv_is_function(const json_t *v);
int jv_is_dict(const json_t *v);
/* An undefined value kept as a namespace's attribute (`set ns.a = nope`,
 * namespace(a=nope)): jinja2 stores its Undefined, reads it back as
 * undefined and prints it as Undefined in repr(ns). Only a namespace holds
 * one: reads (jv_member) give NULL for it. jv_undefined_slot returns a new
 * reference (NULL when out of memory). */
#define JV_UNDEF_MARK "\x01undefined"
json_t *jv_undefined_slot(void);
int jv_is_undefined_slot(const json_t *v);
/* obj[key] (key of len bytes) as a new reference; NULL when obj has no
 * such key or holds an undefined slot there. */
json_t *jv_member(const json_t *obj, const char *key, size_t len);

/* Python truthiness of a value; v NULL is undefined (false); a namespace
 * is always true, as any Python object without __bool__ or __len__. */
int jv_truthy(const json_t *v);
/* Appends str(v) as Python prints it (None, True, 1.5, ['a'], {'k': 1},
 * <Namespace {'k': 1}> as jinja2's Namespace.__repr__).
 * MD_ERR when out of memory or when w ran out (w->over). Past
 * JINJA_MAX_TEXT it adds no more (the caller refuses the text). */
int jv_str(md_sbuf *b, const json_t *v, jwalk *w);
/* Python ==: numbers by value across int, float and bool, also inside
 * lists and dicts. 0 (with w->over set) when w ran out. */
int jv_equal(const json_t *a, const json_t *b, jwalk *w);
/* Python's `needle in hay` for a string, list or dict (not namespace) hay: *res 0/1
 * (0 with w->over set when w ran out; 0 for an undefined hay, as jinja2's
 * Undefined iterates as empty); MD_ERR for any other hay, or a
 * string hay with a needle that is not a string. */
int jv_contains(const json_t *hay, const json_t *needle, int *res, jwalk *w);
/* Appends json.dumps(v, ensure_ascii=False, indent) as transformers'
 * tojson writes it (indent < 0: none), v at nesting level `level`; stops
 * a little past JINJA_MAX_TEXT (the caller refuses the text). MD_ERR for
 * a function, a namespace (transformers' json.dumps raises) or a walk out of budget (err says which), or out of memory
 * (err left as it was: clear it first). */
int jv_json(md_sbuf *b, const json_t *v, int indent, int level, jwalk *w, md_error *err);
/* The type name used in messages ("string", "list", "namespace", ...). */
const char *jv_type(const json_t *v);

/* Applies filter `name` to v with positional args[0..n) and keyword args
 * (kw[i] != NULL). *out is a new reference (NULL = undefined). */
int jlib_filter(const char *name, json_t *v, json_t **args, char **kw, size_t n, json_t **out, jwalk *w,
                md_error *err);
/* Evaluates the test `name` (defined, none, string, ...); *out 0/1. */
int jlib_test(const char *name, json_t *v, json_t **args, size_t n, int *out, jwalk *w, md_error *err);
/* Calls method `name` of v (str.strip, dict.items, ...). */
int jlib_method(json_t *v, const char *name, json_t **args, char **kw, size_t n, json_t **out, jwalk *w,
                md_error *err);
/* dict(arg, k=v, ...) and namespace(arg, k=v, ...) (ns 1): the pairs of
 * arg (a dict or a list of [key, value] pairs), then the keyword arguments
 * (kw[i] != NULL); *out a new dict, or a namespace (marked JV_NS_MARK: the
 * caller remembers it, to empty it at the end of the render). Errors as
 * jinja2 raises them, and transformers' refusal of '_'-prefixed names. */
int jlib_mapping(int ns, json_t **args, char **kw, size_t n, json_t **out, jwalk *w, md_error *err);
/* MD_ERR (err set) when transformers' namespace() refuses name: one that starts with '_'. */
int jlib_check_ns_name(const char *name, size_t len, md_error *err);
/* Formats t (UTC) with a Python strftime format. */
int jlib_strftime(const char *fmt, time_t t, json_t **out, md_error *err);

#endif
