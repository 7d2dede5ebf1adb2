/* jinja_parse.c — parses the tokens of a Jinja template (src/io/jinja_lex.c)
 * into a tree (see src/io/jinja_int.h) by recursive descent, with Jinja's
 * operator precedence: if-else, or, and, not, comparisons and in, + -, ~,
 * * / // %, **, unary -, then filters and tests, then . [] () postfixes.
 * Ownership: tokens own their strings until the parser moves them into
 * nodes; the tree is owned by md_jinja. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "io/jinja_int.h"

#define MAX_NESTING 200 /* expressions and blocks; deeper templates are refused, not a stack overflow */

/* --- tree ---------------------------------------------------------------------- */

void jnode_free(jnode *n)
{
    while (n) {
        jnode *next = n->next;
        free(n->str);
        json_decref(n->lit);
        jnode_free(n->a);
        jnode_free(n->b);
        jnode_free(n->c);
        for (size_t i = 0; i < n->n_args; i++) {
            jnode_free(n->args[i]);
            if (n->kw) free(n->kw[i]);
        }
        free(n->args);
        free(n->kw);
        jnode_free(n->body);
        jnode_free(n->orelse);
        for (size_t i = 0; i < n->n_targets; i++) free(n->targets[i]);
        free(n->targets);
        free(n);
        n = next;
    }
}

static jnode *mk(jparser *p, jnode_kind kind)
{
    jnode *n = calloc(1, sizeof *n);
    if (!n) {
        md_error_set(p->err, "out of memory parsing %s", p->name);
        return NULL;
    }
    n->kind = kind;
    n->line = p->t[p->pos < p->n ? p->pos : p->n - 1].line;
    return n;
}

static jtok *cur(jparser *p) { return &p->t[p->pos]; }

static int is_op(jparser *p, const char *op)
{
    return cur(p)->type == TK_OP && strcmp(cur(p)->s, op) == 0;
}

static int is_name(jparser *p, const char *nm)
{
    return cur(p)->type == TK_NAME && strcmp(cur(p)->s, nm) == 0;
}

static int fail_at(jparser *p, const char *what)
{
    jtok *t = cur(p);
    const char *got = t->type == TK_EOF ? "end of template" : t->type == TK_END ? "end of tag"
                    : t->type == TK_TEXT ? "text" : t->s ? t->s : "tag";
    return md_error_set(p->err, "%s:%d: expected %s, found '%s' (this Jinja construct is not supported)", p->name,
                        t->line, what, got);
}

static int expect_op(jparser *p, const char *op)
{
    if (!is_op(p, op)) {
        char w[16];
        snprintf(w, sizeof w, "'%s'", op);
        return fail_at(p, w);
    }
    p->pos++;
    return MD_OK;
}

static int expect_end(jparser *p)
{
    if (cur(p)->type != TK_END) return fail_at(p, "end of tag");
    p->pos++;
    return MD_OK;
}

/* Moves the current token's string into *dst. */
static char *take(jparser *p)
{
    char *s = cur(p)->s;
    cur(p)->s = NULL;
    p->pos++;
    return s;
}

static int add_arg(jparser *p, jnode *n, jnode *arg, char *kw)
{
    jnode **na = realloc(n->args, (n->n_args + 1) * sizeof *na);
    char **nk = na ? realloc(n->kw, (n->n_args + 1) * sizeof *nk) : NULL;
    if (na) n->args = na;
    if (!na || !nk) {
        jnode_free(arg);
        free(kw);
        return md_error_set(p->err, "out of memory parsing %s", p->name);
    }
    n->kw = nk;
    n->args[n->n_args] = arg;
    n->kw[n->n_args++] = kw;
    return MD_OK;
}

static int add_target(jparser *p, jnode *n, char *name)
{
    char **nt = realloc(n->targets, (n->n_targets + 1) * sizeof *nt);
    if (!nt) {
        free(name);
        return md_error_set(p->err, "out of memory parsing %s", p->name);
    }
    n->targets = nt;
    n->targets[n->n_targets++] = name;
    return MD_OK;
}

/* --- expressions ----------------------------------------------------------------- */

static jnode *parse_expr(jparser *p);
static jnode *parse_expr_inner(jparser *p);

static jnode *bin(jparser *p, jnode_kind kind, const char *op, jnode *a, jnode *b)
{
    if (!a || !b) {
        jnode_free(a);
        jnode_free(b);
        return NULL;
    }
    jnode *n = mk(p, kind);
    if (!n || (op && !(n->str = strdup(op)))) {
        jnode_free(n);
        jnode_free(a);
        jnode_free(b);
        return NULL;
    }
    n->a = a;
    n->b = b;
    return n;
}

/* Arguments of a call, filter or test: "(" [expr | name=expr] {"," ...} ")". */
static int parse_args(jparser *p, jnode *n)
{
    if (expect_op(p, "(")) return MD_ERR;
    while (!is_op(p, ")")) {
        char *kw = NULL;
        if (cur(p)->type == TK_NAME && p->t[p->pos + 1].type == TK_OP && strcmp(p->t[p->pos + 1].s, "=") == 0) {
            kw = take(p);
            p->pos++;
        }
        jnode *a = parse_expr(p);
        if (!a) {
            free(kw);
            return MD_ERR;
        }
        if (add_arg(p, n, a, kw)) return MD_ERR;
        if (!is_op(p, ",")) break;
        p->pos++;
    }
    return expect_op(p, ")");
}

/* "[" items "]", "(" items ")" (a tuple, kept as a list) and "{" k: v "}". */
static jnode *parse_collection(jparser *p, const char *close, int dict)
{
    jnode *n = mk(p, dict ? JE_DICT : JE_LIST);
    if (!n) return NULL;
    p->pos++;
    while (!is_op(p, close)) {
        jnode *a = parse_expr(p);
        if (!a || add_arg(p, n, a, NULL)) goto fail;
        if (dict) {
            if (expect_op(p, ":")) goto fail;
            jnode *v = parse_expr(p);
            if (!v || add_arg(p, n, v, NULL)) goto fail;
        }
        if (!is_op(p, ",")) break;
        p->pos++;
    }
    if (expect_op(p, close) == MD_OK) return n;
fail:
    jnode_free(n);
    return NULL;
}

static jnode *parse_primary(jparser *p)
{
    jtok *t = cur(p);
    jnode *n = NULL;
    if (t->type == TK_STR) {
        md_sbuf b = {0};
        while (cur(p)->type == TK_STR) { /* adjacent literals concatenate */
            if (md_sbuf_add(&b, cur(p)->s, cur(p)->len)) break;
            p->pos++;
        }
        if ((n = mk(p, JE_LIT))) n->lit = json_stringn(b.s ? b.s : "", b.n);
        free(b.s);
    } else if (t->type == TK_INT || t->type == TK_FLOAT) {
        if ((n = mk(p, JE_LIT))) n->lit = t->type == TK_INT ? json_integer(t->i) : json_real(t->f);
        p->pos++;
    } else if (t->type == TK_NAME) {
        const char *s = t->s;
        int tr = !strcmp(s, "true") || !strcmp(s, "True"), fa = !strcmp(s, "false") || !strcmp(s, "False");
        int no = !strcmp(s, "none") || !strcmp(s, "None");
        if (!(n = mk(p, tr || fa || no ? JE_LIT : JE_NAME))) return NULL;
        if (tr || fa || no) {
            n->lit = tr ? json_true() : fa ? json_false() : json_null();
            p->pos++;
        } else {
            n->str = take(p);
        }
        return n;
    } else if (is_op(p, "(")) {
        p->pos++;
        n = parse_expr(p);
        if (n && is_op(p, ",")) { /* a tuple */
            jnode *l = mk(p, JE_LIST);
            if (!l || add_arg(p, l, n, NULL)) { jnode_free(l); return NULL; }
            while (is_op(p, ",")) {
                p->pos++;
                if (is_op(p, ")")) break;
                jnode *a = parse_expr(p);
                if (!a || add_arg(p, l, a, NULL)) { jnode_free(l); return NULL; }
            }
            n = l;
        }
        if (n && expect_op(p, ")")) { jnode_free(n); return NULL; }
        return n;
    } else if (is_op(p, "[")) {
        return parse_collection(p, "]", 0);
    } else if (is_op(p, "{")) {
        return parse_collection(p, "}", 1);
    } else {
        fail_at(p, "an expression");
        return NULL;
    }
    if (n && !n->lit) {
        md_error_set(p->err, "out of memory parsing %s", p->name);
        jnode_free(n);
        return NULL;
    }
    return n;
}

/* Subscript after "[": an index or a slice a:b:c (parts may be empty). */
static jnode *parse_subscript(jparser *p, jnode *obj)
{
    jnode *parts[3] = {NULL, NULL, NULL};
    int k = 0, slice = 0;
    p->pos++;
    for (;;) {
        if (!is_op(p, ":") && !is_op(p, "]") && !(parts[k] = parse_expr(p))) goto fail;
        if (!is_op(p, ":") || k == 2) break;
        slice = 1;
        k++;
        p->pos++;
    }
    if (expect_op(p, "]")) goto fail;
    jnode *n = mk(p, slice ? JE_SLICE : JE_INDEX);
    if (!n) goto fail;
    n->a = obj;
    if (!slice) {
        if (!parts[0]) {
            jnode_free(n);
            fail_at(p, "an index");
            return NULL;
        }
        n->b = parts[0];
        return n;
    }
    for (int i = 0; i < 3; i++)
        if (add_arg(p, n, parts[i], NULL)) {
            parts[i] = NULL;
            for (int j = i + 1; j < 3; j++) jnode_free(parts[j]);
            jnode_free(n);
            return NULL;
        }
    return n;
fail:
    for (int i = 0; i < 3; i++) jnode_free(parts[i]);
    jnode_free(obj);
    return NULL;
}

static jnode *parse_postfix(jparser *p, jnode *n)
{
    while (n) {
        if (is_op(p, ".")) {
            p->pos++;
            if (cur(p)->type != TK_NAME) {
                fail_at(p, "an attribute name");
                jnode_free(n);
                return NULL;
            }
            jnode *a = mk(p, JE_ATTR);
            if (!a) { jnode_free(n); return NULL; }
            a->a = n;
            a->str = take(p);
            n = a;
        } else if (is_op(p, "[")) {
            n = parse_subscript(p, n);
        } else if (is_op(p, "(")) {
            jnode *c = mk(p, JE_CALL);
            if (!c) { jnode_free(n); return NULL; }
            c->a = n;
            n = c;
            if (parse_args(p, c)) { jnode_free(c); return NULL; }
        } else {
            break;
        }
    }
    return n;
}

static int starts_bare_test_arg(jparser *p)
{
    static const char *stop[] = {"and", "or", "else", "if", "in", "is", "not", "recursive"};
    jtok *t = cur(p);
    if (t->type == TK_STR || t->type == TK_INT || t->type == TK_FLOAT || is_op(p, "[") || is_op(p, "{")) return 1;
    if (t->type != TK_NAME) return 0;
    for (size_t i = 0; i < sizeof stop / sizeof stop[0]; i++)
        if (strcmp(t->s, stop[i]) == 0) return 0;
    return 1;
}

/* "| filter(args)" and "is [not] test [arg]" after a unary expression. */
static jnode *parse_filters(jparser *p, jnode *n)
{
    while (n && (is_op(p, "|") || is_name(p, "is"))) {
        int filter = is_op(p, "|");
        p->pos++;
        jnode *f = mk(p, filter ? JE_FILTER : JE_TEST);
        if (!f) { jnode_free(n); return NULL; }
        f->a = n;
        n = f;
        if (!filter && is_name(p, "not")) {
            f->negate = 1;
            p->pos++;
        }
        if (cur(p)->type != TK_NAME) {
            fail_at(p, filter ? "a filter name" : "a test name");
            jnode_free(n);
            return NULL;
        }
        f->str = take(p);
        if (is_op(p, "(")) {
            if (parse_args(p, f)) { jnode_free(n); return NULL; }
        } else if (!filter && starts_bare_test_arg(p)) {
            jnode *a = parse_primary(p); /* as jinja2: a primary and its postfix (x is sameas y.z) */
            if (a) a = parse_postfix(p, a);
            if (!a || add_arg(p, f, a, NULL)) { jnode_free(n); return NULL; }
        }
    }
    return n;
}

static jnode *parse_unary(jparser *p)
{
    if (is_op(p, "-") || is_op(p, "+")) {
        int neg = is_op(p, "-");
        p->pos++;
        if (p->depth >= MAX_NESTING) {
            md_error_set(p->err, "%s:%d: more than %d signs in a row", p->name, cur(p)->line, MAX_NESTING);
            return NULL;
        }
        p->depth++;
        jnode *a = parse_unary(p);
        p->depth--;
        if (!a || !neg) return a;
        jnode *n = mk(p, JE_NEG);
        if (!n) { jnode_free(a); return NULL; }
        n->a = a;
        return parse_filters(p, n);
    }
    return parse_filters(p, parse_postfix(p, parse_primary(p)));
}

/* Binary levels, loosest first: compare, + -, ~, * / // %, **. */
static jnode *parse_level(jparser *p, int level)
{
    static const char *ops[][5] = {{"+", "-", NULL}, {"~", NULL}, {"*", "/", "//", "%", NULL}, {"**", NULL}};
    if (level == 4) return parse_unary(p);
    jnode *n = parse_level(p, level + 1);
    for (;;) {
        const char *op = NULL;
        for (int k = 0; ops[level][k]; k++)
            if (is_op(p, ops[level][k])) op = ops[level][k];
        if (!op || !n) return n;
        p->pos++;
        n = bin(p, JE_BIN, op, n, parse_level(p, level + 1));
    }
}

static jnode *parse_compare(jparser *p)
{
    static const char *ops[] = {"==", "!=", "<=", ">=", "<", ">"};
    jnode *n = parse_level(p, 0);
    while (n) {
        const char *op = NULL;
        int negate = 0;
        for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
            if (is_op(p, ops[k])) op = ops[k];
        if (is_name(p, "in")) op = "in";
        if (is_name(p, "not") && p->t[p->pos + 1].type == TK_NAME && strcmp(p->t[p->pos + 1].s, "in") == 0) {
            op = "in";
            negate = 1;
            p->pos++;
        }
        if (!op) break;
        p->pos++;
        n = bin(p, JE_BIN, op, n, parse_level(p, 0));
        if (n) n->negate = negate;
    }
    return n;
}

static jnode *parse_not(jparser *p)
{
    if (!is_name(p, "not")) return parse_compare(p);
    p->pos++;
    if (p->depth >= MAX_NESTING) {
        md_error_set(p->err, "%s:%d: more than %d 'not' in a row", p->name, cur(p)->line, MAX_NESTING);
        return NULL;
    }
    p->depth++;
    jnode *a = parse_not(p);
    p->depth--;
    if (!a) return NULL;
    jnode *n = mk(p, JE_NOT);
    if (!n) { jnode_free(a); return NULL; }
    n->a = a;
    return n;
}

static jnode *parse_andor(jparser *p, int is_or)
{
    jnode *n = is_or ? parse_andor(p, 0) : parse_not(p);
    while (n && is_name(p, is_or ? "or" : "and")) {
        p->pos++;
        n = bin(p, is_or ? JE_OR : JE_AND, NULL, n, is_or ? parse_andor(p, 0) : parse_not(p));
    }
    return n;
}

/* a if cond [else b] */
static jnode *parse_expr(jparser *p)
{
    if (p->depth >= MAX_NESTING) {
        md_error_set(p->err, "%s:%d: expressions nest more than %d deep", p->name, cur(p)->line, MAX_NESTING);
        return NULL;
    }
    p->depth++;
    jnode *n = parse_expr_inner(p);
    p->depth--;
    return n;
}

static jnode *parse_expr_inner(jparser *p)
{
    jnode *n = parse_andor(p, 1);
    while (n && is_name(p, "if")) {
        p->pos++;
        jnode *c = mk(p, JE_COND);
        if (!c) { jnode_free(n); return NULL; }
        c->b = n;
        if (!(c->a = parse_andor(p, 1))) { jnode_free(c); return NULL; }
        if (is_name(p, "else")) {
            p->pos++;
            if (!(c->c = parse_expr(p))) { jnode_free(c); return NULL; }
        }
        n = c;
    }
    return n;
}

/* --- statements ------------------------------------------------------------------ */

static int parse_list(jparser *p, const char *const *stops, const char **which, jnode **out);

static const char *const IF_STOPS[] = {"elif", "else", "endif", NULL};
static const char *const ENDIF[] = {"endif", NULL};
static const char *const FOR_STOPS[] = {"else", "endfor", NULL};
static const char *const ENDFOR[] = {"endfor", NULL};
static const char *const ENDSET[] = {"endset", NULL};
static const char *const ENDMACRO[] = {"endmacro", NULL};
static const char *const ENDGEN[] = {"endgeneration", NULL};

/* After "if"/"elif": cond %} body {elif ...|else ...} endif %}. */
static jnode *parse_if(jparser *p)
{
    jnode *n = mk(p, JN_IF);
    const char *which = NULL;
    if (!n || !(n->a = parse_expr(p)) || expect_end(p) || parse_list(p, IF_STOPS, &which, &n->body)) goto fail;
    if (strcmp(which, "elif") == 0) {
        if (!(n->orelse = parse_if(p))) goto fail;
        return n;
    }
    if (strcmp(which, "else") == 0 && (expect_end(p) || parse_list(p, ENDIF, &which, &n->orelse))) goto fail;
    if (expect_end(p)) goto fail;
    return n;
fail:
    jnode_free(n);
    return NULL;
}

/* After "for": a[, b] in expr [if cond] %} body [else ...] endfor %}. As
 * in jinja2, the iterable is no "x if y else z" (an "if" after it starts
 * the loop filter, n->c). */
static jnode *parse_for(jparser *p)
{
    jnode *n = mk(p, JN_FOR);
    const char *which = NULL;
    if (!n) return NULL;
    do {
        if (cur(p)->type != TK_NAME) { fail_at(p, "a loop variable"); goto fail; }
        if (add_target(p, n, take(p))) goto fail;
    } while (is_op(p, ",") && ++p->pos);
    if (!is_name(p, "in")) { fail_at(p, "'in'"); goto fail; }
    p->pos++;
    if (!(n->a = parse_andor(p, 1))) goto fail;
    if (is_name(p, "if") && (++p->pos, !(n->c = parse_expr(p)))) goto fail;
    if (expect_end(p) || parse_list(p, FOR_STOPS, &which, &n->body)) goto fail;
    if (strcmp(which, "else") == 0 && (expect_end(p) || parse_list(p, ENDFOR, &which, &n->orelse))) goto fail;
    if (expect_end(p)) goto fail;
    return n;
fail:
    jnode_free(n);
    return NULL;
}

/* After "set": name[.attr] = expr %}, or name %} body endset %}. */
static jnode *parse_set(jparser *p)
{
    jnode *n = mk(p, JN_SET);
    const char *which = NULL;
    if (!n) return NULL;
    if (cur(p)->type != TK_NAME) { fail_at(p, "a variable name"); goto fail; }
    if (add_target(p, n, take(p))) goto fail;
    if (is_op(p, ".")) {
        p->pos++;
        if (cur(p)->type != TK_NAME) { fail_at(p, "an attribute name"); goto fail; }
        n->str = take(p);
    }
    if (is_op(p, "=")) {
        p->pos++;
        if (!(n->a = parse_expr(p)) || expect_end(p)) goto fail;
    } else if (expect_end(p) || parse_list(p, ENDSET, &which, &n->body) || expect_end(p)) {
        goto fail;
    }
    return n;
fail:
    jnode_free(n);
    return NULL;
}

/* After "macro": name(a, b=default) %} body endmacro %}. */
static jnode *parse_macro(jparser *p)
{
    jnode *n = mk(p, JN_MACRO);
    const char *which = NULL;
    if (!n) return NULL;
    if (cur(p)->type != TK_NAME) { fail_at(p, "a macro name"); goto fail; }
    n->str = take(p);
    if (expect_op(p, "(")) goto fail;
    while (!is_op(p, ")")) {
        if (cur(p)->type != TK_NAME) { fail_at(p, "a parameter name"); goto fail; }
        if (add_target(p, n, take(p))) goto fail;
        jnode *dflt = NULL;
        if (is_op(p, "=")) {
            p->pos++;
            if (!(dflt = parse_expr(p))) goto fail;
        }
        if (add_arg(p, n, dflt, NULL)) goto fail;
        if (!is_op(p, ",")) break;
        p->pos++;
    }
    if (expect_op(p, ")") || expect_end(p) || parse_list(p, ENDMACRO, &which, &n->body) || expect_end(p)) goto fail;
    return n;
fail:
    jnode_free(n);
    return NULL;
}

static jnode *parse_stmt_inner(jparser *p);

static jnode *parse_stmt(jparser *p)
{
    if (p->depth >= MAX_NESTING) {
        md_error_set(p->err, "%s:%d: blocks nest more than %d deep", p->name, cur(p)->line, MAX_NESTING);
        return NULL;
    }
    p->depth++;
    jnode *n = parse_stmt_inner(p);
    p->depth--;
    return n;
}

static jnode *parse_stmt_inner(jparser *p)
{
    jtok *t = cur(p);
    if (t->type != TK_NAME) {
        fail_at(p, "a tag name");
        return NULL;
    }
    const char *kw = t->s;
    p->pos++;
    if (!strcmp(kw, "if")) return parse_if(p);
    if (!strcmp(kw, "for")) return parse_for(p);
    if (!strcmp(kw, "set")) return parse_set(p);
    if (!strcmp(kw, "macro")) return parse_macro(p);
    if (!strcmp(kw, "break") || !strcmp(kw, "continue") || !strcmp(kw, "generation")) {
        jnode *n = mk(p, !strcmp(kw, "break") ? JN_BREAK : !strcmp(kw, "continue") ? JN_CONTINUE : JN_BLOCK);
        const char *which = NULL;
        if (!n || expect_end(p)) goto fail;
        if (n->kind == JN_BLOCK && (parse_list(p, ENDGEN, &which, &n->body) || expect_end(p))) goto fail;
        return n;
    fail:
        jnode_free(n);
        return NULL;
    }
    md_error_set(p->err, "%s:%d: the tag '{%% %s %%}' is not supported by mechdiff's Jinja interpreter", p->name,
                 t->line, kw);
    return NULL;
}

/* Statements up to "{% stop" (one of stops; *which = it, the tag's rest not
 * consumed) or the end of the template (stops == NULL). */
static int parse_list(jparser *p, const char *const *stops, const char **which, jnode **out)
{
    jnode *head = NULL, **tail = &head;
    int open_line = cur(p)->line;
    *which = NULL;
    *out = NULL;
    for (;;) {
        jtok *t = cur(p);
        jnode *n = NULL;
        if (t->type == TK_EOF) {
            if (!stops) break;
            size_t last = 0;
            while (stops[last + 1]) last++;
            md_error_set(p->err, "%s:%d: the block opened here is not closed: expected {%% %s %%}", p->name,
                         open_line, stops[last]);
            goto fail;
        }
        if (t->type == TK_TEXT) {
            size_t len = t->len;
            if ((n = mk(p, JN_TEXT))) {
                n->str = take(p);
                n->len = len;
            }
        } else if (t->type == TK_VAR) {
            p->pos++;
            if ((n = mk(p, JN_OUT)) && (!(n->a = parse_expr(p)) || expect_end(p))) {
                jnode_free(n);
                n = NULL;
            }
        } else if (t->type == TK_BLOCK) {
            p->pos++;
            for (size_t k = 0; stops && stops[k]; k++)
                if (is_name(p, stops[k])) {
                    *which = stops[k];
                    p->pos++;
                    *out = head;
                    return MD_OK;
                }
            n = parse_stmt(p);
        } else {
            fail_at(p, "text or a tag");
        }
        if (!n) goto fail;
        *tail = n;
        tail = &n->next;
    }
    *out = head;
    return MD_OK;
fail:
    jnode_free(head);
    return MD_ERR;
}

int md_jinja_parse(md_jinja **out, const char *src, size_t len, const char *name, md_error *err)
{
    *out = NULL;
    jparser p = {0};
    p.name = name ? name : "template";
    p.err = err;
    md_jinja *t = calloc(1, sizeof *t);
    int rc = MD_ERR;
    if (!t || !(t->name = strdup(p.name))) {
        md_error_set(err, "out of memory parsing %s", p.name);
        goto out;
    }
    if (jinja_tokenize(&p, src, len)) goto out;
    const char *which = NULL;
    if (parse_list(&p, NULL, &which, &t->root)) goto out;
    rc = MD_OK;
out:
    for (size_t i = 0; i < p.n; i++) free(p.t[i].s);
    free(p.t);
    if (rc) md_jinja_free(t);
    else *out = t;
    return rc;
}

void md_jinja_free(md_jinja *t)
{
    if (!t) return;
    jnode_free(t->root);
    free(t->name);
    free(t);
}
