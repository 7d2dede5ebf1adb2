/* jinja_int.h — internal: the parse tree of a Jinja template
 * (src/io/jinja_parse.c builds it), its evaluation (src/io/jinja_eval.c)
 * and the built-in filters, tests and methods (src/io/jinja_lib.c).
 * Ownership: every node owns its strings, literal values and children. */
#ifndef MECHDIFF_IO_JINJA_INT_H
#define MECHDIFF_IO_JINJA_INT_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

#include "io/tok_text.h" /* md_sbuf */
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
    jnode *a, *b, *c;     /* operands; JE_SLICE start/stop/step; JN_IF/JE_COND cond, JN_SET value */
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

/* Python truthiness of a value; v NULL is undefined (false). */
int jv_truthy(const json_t *v);
/* Appends str(v) as Python prints it (None, True, 1.5, ['a'], {'k': 1}). */
int jv_str(md_sbuf *b, const json_t *v);
/* Python ==. */
int jv_equal(const json_t *a, const json_t *b);
/* The type name used in messages ("string", "list", ...). */
const char *jv_type(const json_t *v);

/* Applies filter `name` to v with positional args[0..n) and keyword args
 * (kw[i] != NULL). *out is a new reference (NULL = undefined). */
int jlib_filter(const char *name, json_t *v, json_t **args, char **kw, size_t n, json_t **out, md_error *err);
/* Evaluates the test `name` (defined, none, string, ...); *out 0/1. */
int jlib_test(const char *name, json_t *v, json_t **args, size_t n, int *out, md_error *err);
/* Calls method `name` of v (str.strip, dict.items, ...). */
int jlib_method(json_t *v, const char *name, json_t **args, char **kw, size_t n, json_t **out, md_error *err);
/* Formats t (UTC) with a Python strftime format. */
int jlib_strftime(const char *fmt, time_t t, json_t **out, md_error *err);

#endif
