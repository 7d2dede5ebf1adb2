/* jinja_parse.c — tokenises a Jinja template and parses it into a tree
 * (see src/io/jinja_int.h).
 *
 * Whitespace follows transformers' environment: trim_blocks (the first
 * newline after a {% %} or {# #} tag is dropped), lstrip_blocks (spaces and
 * tabs before such a tag at the start of a line are dropped; "{%+" keeps
 * them) and "-" on a tag side strips all whitespace on that side.
 * Ownership: tokens own their strings until the parser moves them into
 * nodes; the tree is owned by md_jinja. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "io/jinja_int.h"

enum { TK_EOF, TK_TEXT, TK_BLOCK, TK_VAR, TK_END, TK_NAME, TK_STR, TK_INT, TK_FLOAT, TK_OP };

typedef struct tok {
    int type, line;
    char *s; /* text, name, string value or operator (owned) */
    size_t len;
    long long i;
    double f;
} tok;

typedef struct parser {
    tok *t;
    size_t n, cap, pos;
    const char *name;
    md_error *err;
} parser;

int jbuf_add(jbuf *b, const char *s, size_t n)
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

/* --- tokens ------------------------------------------------------------------ */

static int push(parser *p, int type, int line, const char *s, size_t len)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        tok *nt = realloc(p->t, cap * sizeof *nt);
        if (!nt) return md_error_set(p->err, "out of memory parsing %s", p->name);
        p->t = nt;
        p->cap = cap;
    }
    tok *t = &p->t[p->n];
    memset(t, 0, sizeof *t);
    t->type = type;
    t->line = line;
    if (s) {
        if (!(t->s = malloc(len + 1))) return md_error_set(p->err, "out of memory parsing %s", p->name);
        memcpy(t->s, s, len);
        t->s[len] = '\0';
        t->len = len;
    }
    p->n++;
    return MD_OK;
}

static int count_lines(const char *s, size_t a, size_t b)
{
    int k = 0;
    for (size_t i = a; i < b; i++) k += s[i] == '\n';
    return k;
}

/* Python string literal at s[*i] (quote q); appends the value to b. */
static int lex_string(parser *p, const char *s, size_t n, size_t *i, int line, jbuf *b)
{
    char q = s[(*i)++];
    while (*i < n && s[*i] != q) {
        char c = s[(*i)++];
        if (c != '\\' || *i >= n) {
            if (jbuf_add(b, &c, 1)) return MD_ERR;
            continue;
        }
        char e = s[(*i)++];
        const char *r = e == 'n' ? "\n" : e == 't' ? "\t" : e == 'r' ? "\r" : e == '\\' ? "\\" : e == '\'' ? "'"
                      : e == '"' ? "\"" : e == '0' ? "" : NULL;
        if (e == '0' && jbuf_add(b, "", 1)) return MD_ERR;
        if (r) {
            if (jbuf_add(b, r, strlen(r))) return MD_ERR;
        } else if (e == 'u' || e == 'x') {
            int nd = e == 'u' ? 4 : 2;
            unsigned cp = 0;
            for (int k = 0; k < nd; k++, (*i)++) {
                if (*i >= n || !isxdigit((unsigned char)s[*i]))
                    return md_error_set(p->err, "%s:%d: bad \\%c escape in a string", p->name, line, e);
                char h = s[*i];
                cp = cp * 16 + (unsigned)(isdigit((unsigned char)h) ? h - '0' : (tolower((unsigned char)h) - 'a' + 10));
            }
            char u[4];
            size_t ul = cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
            if (ul == 1) u[0] = (char)cp;
            else if (ul == 2) { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3F)); }
            else { u[0] = (char)(0xE0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[2] = (char)(0x80 | (cp & 0x3F)); }
            if (jbuf_add(b, u, ul)) return MD_ERR;
        } else {
            char two[2] = {'\\', e};
            if (jbuf_add(b, two, 2)) return MD_ERR;
        }
    }
    if (*i >= n) return md_error_set(p->err, "%s:%d: string literal is not closed", p->name, line);
    (*i)++;
    return MD_OK;
}

static const char *OPS[] = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=",
                            "(", ")", "[", "]", "{", "}", ".", ",", ":", "|"};

/* Tokens of one tag from s[*i] to its closer; *minus and *plus: the closer had "-" or "+". */
static int lex_tag(parser *p, const char *s, size_t n, size_t *i, int *line, int var, int *minus, int *plus)
{
    const char *close = var ? "}}" : "%}";
    int depth = 0;
    for (;;) {
        while (*i < n && isspace((unsigned char)s[*i])) *line += s[(*i)++] == '\n';
        if (*i >= n) return md_error_set(p->err, "%s:%d: tag is not closed with '%s'", p->name, *line, close);
        size_t k = *i;
        *minus = *plus = 0;
        if ((s[k] == '-' || s[k] == '+') && k + 2 < n + 0 && memcmp(s + k + 1, close, 2) == 0) {
            *minus = s[k] == '-';
            *plus = s[k] == '+';
            k++;
        }
        if (depth == 0 && k + 2 <= n && memcmp(s + k, close, 2) == 0) {
            *i = k + 2;
            return push(p, TK_END, *line, NULL, 0);
        }
        char c = s[*i];
        if (isalpha((unsigned char)c) || c == '_') {
            size_t a = *i;
            while (*i < n && (isalnum((unsigned char)s[*i]) || s[*i] == '_')) (*i)++;
            if (push(p, TK_NAME, *line, s + a, *i - a)) return MD_ERR;
        } else if (isdigit((unsigned char)c)) {
            size_t a = *i;
            while (*i < n && isdigit((unsigned char)s[*i])) (*i)++;
            int fl = *i + 1 < n && s[*i] == '.' && isdigit((unsigned char)s[*i + 1]);
            if (fl) {
                (*i)++;
                while (*i < n && isdigit((unsigned char)s[*i])) (*i)++;
            }
            if (push(p, fl ? TK_FLOAT : TK_INT, *line, s + a, *i - a)) return MD_ERR;
            tok *t = &p->t[p->n - 1];
            if (fl) t->f = strtod(t->s, NULL);
            else t->i = strtoll(t->s, NULL, 10);
        } else if (c == '\'' || c == '"') {
            jbuf b = {0};
            int rc = lex_string(p, s, n, i, *line, &b);
            if (rc == MD_OK) rc = push(p, TK_STR, *line, b.s ? b.s : "", b.n);
            free(b.s);
            if (rc) return rc == MD_ERR && !p->err->msg[0] ? md_error_set(p->err, "out of memory") : MD_ERR;
        } else {
            size_t k2 = 0;
            for (; k2 < sizeof OPS / sizeof OPS[0]; k2++)
                if (*i + strlen(OPS[k2]) <= n && memcmp(s + *i, OPS[k2], strlen(OPS[k2])) == 0) break;
            if (k2 == sizeof OPS / sizeof OPS[0])
                return md_error_set(p->err, "%s:%d: unexpected character '%c' in a tag", p->name, *line, c);
            depth += (c == '{' || c == '(' || c == '[') - (c == '}' || c == ')' || c == ']');
            if (push(p, TK_OP, *line, OPS[k2], strlen(OPS[k2]))) return MD_ERR;
            *i += strlen(OPS[k2]);
        }
    }
}

/* Cuts the text between tags per the whitespace rules and emits it. */
static int emit_text(parser *p, const char *s, size_t a, size_t b, int line, int lstrip_all, int trim_nl,
                     int tag_minus, int tag_lstrip)
{
    if (lstrip_all)
        while (a < b && isspace((unsigned char)s[a])) a++;
    else if (trim_nl && a < b && s[a] == '\n') a++;
    else if (trim_nl && a + 1 < b && s[a] == '\r' && s[a + 1] == '\n') a += 2;
    if (tag_minus) {
        while (b > a && isspace((unsigned char)s[b - 1])) b--;
    } else if (tag_lstrip) {
        size_t j = b;
        while (j > a && (s[j - 1] == ' ' || s[j - 1] == '\t')) j--;
        if (j == 0 || s[j - 1] == '\n') b = j;
    }
    return b > a ? push(p, TK_TEXT, line, s + a, b - a) : MD_OK;
}

static int tokenize(parser *p, const char *s, size_t n)
{
    size_t pos = 0;
    int line = 1, lstrip_all = 0, trim_nl = 0;
    while (pos <= n) {
        size_t o = pos;
        while (o + 1 < n && !(s[o] == '{' && (s[o + 1] == '{' || s[o + 1] == '%' || s[o + 1] == '#'))) o++;
        if (o + 1 >= n) o = n;
        int found = o < n;
        char kind = found ? s[o + 1] : 0;
        int minus = found && o + 2 < n && s[o + 2] == '-';
        int plus = found && o + 2 < n && s[o + 2] == '+';
        if (emit_text(p, s, pos, o, line, lstrip_all, trim_nl, minus, found && kind != '{' && !plus)) return MD_ERR;
        line += count_lines(s, pos, o);
        if (!found) break;
        size_t i = o + 2 + (minus || plus);
        if (kind == '#') {
            const char *e = NULL;
            for (size_t k = i; k + 1 < n; k++)
                if (s[k] == '#' && s[k + 1] == '}') { e = s + k; break; }
            if (!e) return md_error_set(p->err, "%s:%d: comment is not closed with '#}'", p->name, line);
            size_t end = (size_t)(e - s);
            lstrip_all = end > i && s[end - 1] == '-';
            trim_nl = !lstrip_all;
            line += count_lines(s, o, end);
            pos = end + 2;
            continue;
        }
        if (push(p, kind == '{' ? TK_VAR : TK_BLOCK, line, NULL, 0)) return MD_ERR;
        int cm = 0, cp = 0;
        if (lex_tag(p, s, n, &i, &line, kind == '{', &cm, &cp)) return MD_ERR;
        lstrip_all = cm;
        trim_nl = kind == '%' && !cm && !cp;
        pos = i;
    }
    return push(p, TK_EOF, line, NULL, 0);
}

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

static jnode *mk(parser *p, jnode_kind kind)
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

static tok *cur(parser *p) { return &p->t[p->pos]; }

static int is_op(parser *p, const char *op)
{
    return cur(p)->type == TK_OP && strcmp(cur(p)->s, op) == 0;
}

static int is_name(parser *p, const char *nm)
{
    return cur(p)->type == TK_NAME && strcmp(cur(p)->s, nm) == 0;
}

static int fail_at(parser *p, const char *what)
{
    tok *t = cur(p);
    const char *got = t->type == TK_EOF ? "end of template" : t->type == TK_END ? "end of tag"
                    : t->type == TK_TEXT ? "text" : t->s ? t->s : "tag";
    return md_error_set(p->err, "%s:%d: expected %s, found '%s' (this Jinja construct is not supported)", p->name,
                        t->line, what, got);
}

static int expect_op(parser *p, const char *op)
{
    if (!is_op(p, op)) {
        char w[16];
        snprintf(w, sizeof w, "'%s'", op);
        return fail_at(p, w);
    }
    p->pos++;
    return MD_OK;
}

static int expect_end(parser *p)
{
    if (cur(p)->type != TK_END) return fail_at(p, "end of tag");
    p->pos++;
    return MD_OK;
}

/* Moves the current token's string into *dst. */
static char *take(parser *p)
{
    char *s = cur(p)->s;
    cur(p)->s = NULL;
    p->pos++;
    return s;
}

static int add_arg(parser *p, jnode *n, jnode *arg, char *kw)
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

static int add_target(parser *p, jnode *n, char *name)
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

static jnode *parse_expr(parser *p);

static jnode *bin(parser *p, jnode_kind kind, const char *op, jnode *a, jnode *b)
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
static int parse_args(parser *p, jnode *n)
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
static jnode *parse_collection(parser *p, const char *close, int dict)
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

static jnode *parse_primary(parser *p)
{
    tok *t = cur(p);
    jnode *n = NULL;
    if (t->type == TK_STR) {
        jbuf b = {0};
        while (cur(p)->type == TK_STR) { /* adjacent literals concatenate */
            if (jbuf_add(&b, cur(p)->s, cur(p)->len)) break;
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
static jnode *parse_subscript(parser *p, jnode *obj)
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

static jnode *parse_postfix(parser *p, jnode *n)
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

static int starts_bare_test_arg(parser *p)
{
    static const char *stop[] = {"and", "or", "else", "if", "in", "is", "not", "recursive"};
    tok *t = cur(p);
    if (t->type == TK_STR || t->type == TK_INT || t->type == TK_FLOAT) return 1;
    if (t->type != TK_NAME) return 0;
    for (size_t i = 0; i < sizeof stop / sizeof stop[0]; i++)
        if (strcmp(t->s, stop[i]) == 0) return 0;
    return 1;
}

/* "| filter(args)" and "is [not] test [arg]" after a unary expression. */
static jnode *parse_filters(parser *p, jnode *n)
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
            jnode *a = parse_primary(p);
            if (!a || add_arg(p, f, a, NULL)) { jnode_free(n); return NULL; }
        }
    }
    return n;
}

static jnode *parse_unary(parser *p)
{
    if (is_op(p, "-") || is_op(p, "+")) {
        int neg = is_op(p, "-");
        p->pos++;
        jnode *a = parse_unary(p);
        if (!a || !neg) return a;
        jnode *n = mk(p, JE_NEG);
        if (!n) { jnode_free(a); return NULL; }
        n->a = a;
        return parse_filters(p, n);
    }
    return parse_filters(p, parse_postfix(p, parse_primary(p)));
}

/* Binary levels, loosest first: compare, + -, ~, * / // %, **. */
static jnode *parse_level(parser *p, int level)
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

static jnode *parse_compare(parser *p)
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

static jnode *parse_not(parser *p)
{
    if (!is_name(p, "not")) return parse_compare(p);
    p->pos++;
    jnode *a = parse_not(p);
    if (!a) return NULL;
    jnode *n = mk(p, JE_NOT);
    if (!n) { jnode_free(a); return NULL; }
    n->a = a;
    return n;
}

static jnode *parse_andor(parser *p, int is_or)
{
    jnode *n = is_or ? parse_andor(p, 0) : parse_not(p);
    while (n && is_name(p, is_or ? "or" : "and")) {
        p->pos++;
        n = bin(p, is_or ? JE_OR : JE_AND, NULL, n, is_or ? parse_andor(p, 0) : parse_not(p));
    }
    return n;
}

/* a if cond [else b] */
static jnode *parse_expr(parser *p)
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

static int parse_list(parser *p, const char *const *stops, const char **which, jnode **out);

static const char *const IF_STOPS[] = {"elif", "else", "endif", NULL};
static const char *const ENDIF[] = {"endif", NULL};
static const char *const FOR_STOPS[] = {"else", "endfor", NULL};
static const char *const ENDFOR[] = {"endfor", NULL};
static const char *const ENDSET[] = {"endset", NULL};
static const char *const ENDMACRO[] = {"endmacro", NULL};
static const char *const ENDGEN[] = {"endgeneration", NULL};

/* After "if"/"elif": cond %} body {elif ...|else ...} endif %}. */
static jnode *parse_if(parser *p)
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

/* After "for": a[, b] in expr %} body [else ...] endfor %}. */
static jnode *parse_for(parser *p)
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
    if (!(n->a = parse_expr(p)) || expect_end(p) || parse_list(p, FOR_STOPS, &which, &n->body)) goto fail;
    if (strcmp(which, "else") == 0 && (expect_end(p) || parse_list(p, ENDFOR, &which, &n->orelse))) goto fail;
    if (expect_end(p)) goto fail;
    return n;
fail:
    jnode_free(n);
    return NULL;
}

/* After "set": name[.attr] = expr %}, or name %} body endset %}. */
static jnode *parse_set(parser *p)
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
static jnode *parse_macro(parser *p)
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

static jnode *parse_stmt(parser *p)
{
    tok *t = cur(p);
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
static int parse_list(parser *p, const char *const *stops, const char **which, jnode **out)
{
    jnode *head = NULL, **tail = &head;
    int open_line = cur(p)->line;
    *which = NULL;
    *out = NULL;
    for (;;) {
        tok *t = cur(p);
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
    parser p = {0};
    p.name = name ? name : "template";
    p.err = err;
    md_jinja *t = calloc(1, sizeof *t);
    int rc = MD_ERR;
    if (!t || !(t->name = strdup(p.name))) {
        md_error_set(err, "out of memory parsing %s", p.name);
        goto out;
    }
    if (tokenize(&p, src, len)) goto out;
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
