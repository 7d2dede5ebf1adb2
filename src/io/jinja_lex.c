/* jinja_lex.c — splits a Jinja template into text and tag tokens (see
 * src/io/jinja_int.h).
 *
 * Whitespace follows transformers' environment: trim_blocks (the first
 * newline after a {% %} or {# #} tag is dropped), lstrip_blocks (spaces and
 * tabs before such a tag at the start of a line are dropped; "{%+" keeps
 * them) and "-" on a tag side strips all whitespace on that side.
 * Ownership: the token array and its strings belong to the jparser. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io/jinja_int.h"

/* --- tokens ------------------------------------------------------------------ */

static int push(jparser *p, int type, int line, const char *s, size_t len)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        jtok *nt = realloc(p->t, cap * sizeof *nt);
        if (!nt) return md_error_set(p->err, "out of memory parsing %s", p->name);
        p->t = nt;
        p->cap = cap;
    }
    jtok *t = &p->t[p->n];
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
static int lex_string(jparser *p, const char *s, size_t n, size_t *i, int line, md_sbuf *b)
{
    char q = s[(*i)++];
    while (*i < n && s[*i] != q) {
        char c = s[(*i)++];
        if (c != '\\' || *i >= n) {
            if (md_sbuf_add(b, &c, 1)) return MD_ERR;
            continue;
        }
        char e = s[(*i)++];
        const char *r = e == 'n' ? "\n" : e == 't' ? "\t" : e == 'r' ? "\r" : e == '\\' ? "\\" : e == '\'' ? "'"
                      : e == '"' ? "\"" : e == '0' ? "" : NULL;
        if (e == '0' && md_sbuf_add(b, "", 1)) return MD_ERR;
        if (r) {
            if (md_sbuf_add(b, r, strlen(r))) return MD_ERR;
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
            if (md_sbuf_add(b, u, ul)) return MD_ERR;
        } else {
            char two[2] = {'\\', e};
            if (md_sbuf_add(b, two, 2)) return MD_ERR;
        }
    }
    if (*i >= n) return md_error_set(p->err, "%s:%d: string literal is not closed", p->name, line);
    (*i)++;
    return MD_OK;
}

static const char *OPS[] = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=",
                            "(", ")", "[", "]", "{", "}", ".", ",", ":", "|"};

/* Tokens of one tag from s[*i] to its closer; *minus and *plus: the closer had "-" or "+". */
static int lex_tag(jparser *p, const char *s, size_t n, size_t *i, int *line, int var, int *minus, int *plus)
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
            size_t e = *i + 1 < n && (s[*i] | 0x20) == 'e' ? *i + 1 : n; /* an exponent: 1e15, 2.5E-3 */
            if (e < n && (s[e] == '+' || s[e] == '-')) e++;
            if (e < n && isdigit((unsigned char)s[e])) {
                fl = 1;
                for (*i = e; *i < n && isdigit((unsigned char)s[*i]);) (*i)++;
            }
            if (push(p, fl ? TK_FLOAT : TK_INT, *line, s + a, *i - a)) return MD_ERR;
            jtok *t = &p->t[p->n - 1];
            errno = 0;
            if (fl) t->f = strtod(t->s, NULL);
            else t->i = strtoll(t->s, NULL, 10);
            if (!fl && errno == ERANGE)
                return md_error_set(p->err, "%s:%d: the integer %.*s%s is beyond 64 bits", p->name, *line,
                                    (int)(*i - a > 24 ? 24 : *i - a), s + a, *i - a > 24 ? "..." : "");
        } else if (c == '\'' || c == '"') {
            md_sbuf b = {0};
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
static int emit_text(jparser *p, const char *s, size_t a, size_t b, int line, int lstrip_all, int trim_nl,
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

int jinja_tokenize(jparser *p, const char *s, size_t n)
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

