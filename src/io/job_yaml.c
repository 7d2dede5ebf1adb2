/* job_yaml.c — YAML text of a job: the nesting pre-scan of a job file
 * (io/job_yaml.h), and the resolved job as YAML (md_job_to_yaml, see
 * include/mechdiff/job.h): every key with its value, defaults filled in, in
 * a form md_job_parse_string reads back to the same job. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/experiment.h"
#include "mechdiff/job.h"
#include "io/job_yaml.h"

/* Flow nesting: '[' and '{' outside quotes and comments; block nesting: a
 * level per "- " / "? " / ": " indicator and per 4 columns of indentation
 * before a line's first content character. */
int md_job_yaml_check_depth(const char *text, const char *source, int max_depth, md_error *err)
{
    int flow = 0, line = 1;
    const char *p = text;
    while (*p) {
        long spaces = 0, indicators = 0;
        for (;; p++) {
            if (*p == ' ' || *p == '\t') spaces++;
            else if ((*p == '-' || *p == '?' || *p == ':') && (p[1] == ' ' || p[1] == '\t')) indicators++;
            else break;
        }
        long depth = indicators + spaces / 4; /* block nesting; flow nesting is added */
        char quote = 0;
        for (; *p && *p != '\n'; p++) {
            if (quote) {
                if (*p == '\\' && quote == '"' && p[1] && p[1] != '\n') p++;
                else if (*p == quote) quote = 0;
            } else if (*p == '"' || *p == '\'') {
                quote = *p;
            } else if (*p == '#' && (p == text || p[-1] == ' ' || p[-1] == '\t')) {
                while (*p && *p != '\n') p++;
                break;
            } else if (*p == '[' || *p == '{') {
                if (++flow + depth > max_depth) break;
            } else if ((*p == ']' || *p == '}') && flow > 0) {
                flow--;
            }
        }
        if (depth + flow > max_depth)
            return md_error_set(err, "%s:%d: nesting deeper than %d levels; a job file is a few levels of maps and "
                                "lists", source, line, max_depth);
        if (*p == '\n') p++;
        line++;
    }
    return MD_OK;
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    if (!b->p) { /* vsnprintf(NULL + 0, 0, ...) would be pointer arithmetic on NULL */
        b->p = malloc(256);
        if (!b->p) { b->oom = 1; return; }
        b->cap = 256;
        b->len = 0;
    }
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)(n > 0 ? n : 0) + 256;
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = 1; return; }
        b->p = p;
        b->cap = cap;
    }
}

/* A YAML double-quoted scalar. */
static void sb_quoted(sbuf *b, const char *s)
{
    sb_printf(b, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') sb_printf(b, "\\%c", *c);
        else if (*c == '\n') sb_printf(b, "\\n");
        else if (*c == '\t') sb_printf(b, "\\t");
        else if (*c < 0x20 || *c == 0x7f) sb_printf(b, "\\x%02x", *c);
        else sb_printf(b, "%c", *c);
    }
    sb_printf(b, "\"");
}

/* The shortest %g text that reads back as exactly v (at most 17 digits). */
static void sb_float(sbuf *b, double v)
{
    char t[32];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(t, sizeof t, "%.*g", prec, v);
        if (strtod(t, NULL) == v) break;
    }
    sb_printf(b, "%s\n", t);
}

/* identity: the text provenance.c hashes into job_sha256 (floats as %.17g, "key: " before a
 * map's lines) stays byte for byte what it has always been, so files written
 * before keep resuming; the readable form (shortest floats, no trailing
 * space) is for the job shown and stored. */
static void emit_params(sbuf *b, const md_params *p, const char *indent, const char *first_indent,
                        const char *skip, int identity)
{
    int first = 1;
    for (int i = 0; i < p->n; i++) {
        const md_value *v = &p->v[i];
        if (skip && strcmp(skip, v->key->name) == 0) continue;
        int map_lines = v->key->type == MD_KEY_MAP && v->n;
        sb_printf(b, "%s%s:%s", first ? first_indent : indent, v->key->name, map_lines && !identity ? "" : " ");
        first = 0;
        switch (v->key->type) {
        case MD_KEY_INT: sb_printf(b, "%lld\n", (long long)v->i); break;
        case MD_KEY_FLOAT:
            if (identity) sb_printf(b, "%.17g\n", v->f);
            else sb_float(b, v->f);
            break;
        case MD_KEY_BOOL: sb_printf(b, "%s\n", v->i ? "true" : "false"); break;
        case MD_KEY_STRLIST:
            sb_printf(b, "[");
            for (int j = 0; j < v->n; j++) {
                if (j) sb_printf(b, ", ");
                sb_quoted(b, v->list[j]);
            }
            sb_printf(b, "]\n");
            break;
        case MD_KEY_MAP:
            if (!v->n) { sb_printf(b, "{}\n"); break; }
            sb_printf(b, "\n");
            for (int j = 0; j < v->n; j++) {
                sb_printf(b, "%s  ", indent);
                sb_quoted(b, v->list[j]);
                sb_printf(b, ": ");
                sb_quoted(b, v->vals[j]);
                sb_printf(b, "\n");
            }
            break;
        default: sb_quoted(b, v->s ? v->s : ""); sb_printf(b, "\n"); break;
        }
    }
}

char *md_job_to_yaml(const md_job *job, int flags)
{
    sbuf b = {0};
    sb_printf(&b, "# resolved mechdiff job (every key, defaults filled in)\n");
    int identity = (flags & MD_JOB_YAML_IDENTITY) != 0;
    emit_params(&b, &job->top, "", "", identity ? "output" : NULL, identity);
    if (!identity) {
        sb_printf(&b, "runtime:\n");
        emit_params(&b, &job->runtime, "  ", "  ", NULL, identity);
    }
    sb_printf(&b, "experiments:\n");
    for (int i = 0; i < job->n_exps; i++) emit_params(&b, &job->exps[i].params, "    ", "  - ", NULL, identity);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
