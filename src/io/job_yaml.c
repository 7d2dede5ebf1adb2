/* job_yaml.c — YAML text of a job: the nesting pre-scan of a job file
 * (io/job_yaml.h), and the resolved job as YAML (md_job_to_yaml, see
 * include/mechdiff/job.h): every key with its value, defaults filled in, in
 * a form md_job_parse_string reads back to the same job. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/experiment.h"
#include "mechdiff/job.h"
#include "mechdiff/numfmt.h"
#include "mechdiff/sbuf.h"
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

/* A YAML double-quoted scalar. */
static void sb_quoted(md_sbuf *b, const char *s)
{
    md_sbuf_add_str(b, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') md_sbuf_add_format(b, "\\%c", *c);
        else if (*c == '\n') md_sbuf_add_str(b, "\\n");
        else if (*c == '\t') md_sbuf_add_str(b, "\\t");
        else if (*c < 0x20 || *c == 0x7f) md_sbuf_add_format(b, "\\x%02x", *c);
        else md_sbuf_add_char(b, (char)*c);
    }
    md_sbuf_add_str(b, "\"");
}

/* The shortest %g text that reads back as exactly v (numfmt.h). */
static void sb_float(md_sbuf *b, double v)
{
    char t[MD_NUMFMT_DOUBLE_LEN];
    md_numfmt_write_shortest(v, t, sizeof t);
    md_sbuf_add_format(b, "%s\n", t);
}

/* identity: the text provenance.c hashes into job_sha256 (floats as %.17g, "key: " before a
 * map's lines) stays byte for byte what it has always been, so files written
 * before keep resuming; the readable form (shortest floats, no trailing
 * space) is for the job shown and stored. */
static void emit_params(md_sbuf *b, const md_params *p, const char *indent, const char *first_indent,
                        const char *skip, int identity)
{
    int first = 1;
    for (int i = 0; i < p->n; i++) {
        const md_value *v = &p->v[i];
        if (skip && strcmp(skip, v->key->name) == 0) continue;
        int map_lines = v->key->type == MD_KEY_MAP && v->n;
        md_sbuf_add_format(b, "%s%s:%s", first ? first_indent : indent, v->key->name,
                           map_lines && !identity ? "" : " ");
        first = 0;
        switch (v->key->type) {
        case MD_KEY_INT: md_sbuf_add_format(b, "%lld\n", (long long)v->i); break;
        case MD_KEY_FLOAT:
            if (identity) md_sbuf_add_format(b, "%.17g\n", v->f);
            else sb_float(b, v->f);
            break;
        case MD_KEY_BOOL: md_sbuf_add_format(b, "%s\n", v->i ? "true" : "false"); break;
        case MD_KEY_STRLIST:
            md_sbuf_add_str(b, "[");
            for (int j = 0; j < v->n; j++) {
                if (j) md_sbuf_add_str(b, ", ");
                sb_quoted(b, v->list[j]);
            }
            md_sbuf_add_str(b, "]\n");
            break;
        case MD_KEY_MAP:
            if (!v->n) { md_sbuf_add_str(b, "{}\n"); break; }
            md_sbuf_add_str(b, "\n");
            for (int j = 0; j < v->n; j++) {
                md_sbuf_add_format(b, "%s  ", indent);
                sb_quoted(b, v->list[j]);
                md_sbuf_add_str(b, ": ");
                sb_quoted(b, v->vals[j]);
                md_sbuf_add_str(b, "\n");
            }
            break;
        default: sb_quoted(b, v->s ? v->s : ""); md_sbuf_add_str(b, "\n"); break;
        }
    }
}

char *md_job_to_yaml(const md_job *job, int flags)
{
    md_sbuf b = {0}; /* the text: handed to the caller */
    md_sbuf_add_str(&b, "# resolved mechdiff job (every key, defaults filled in)\n");
    int identity = (flags & MD_JOB_YAML_IDENTITY) != 0;
    emit_params(&b, &job->top, "", "", identity ? "output" : NULL, identity);
    if (!identity) {
        md_sbuf_add_str(&b, "runtime:\n");
        emit_params(&b, &job->runtime, "  ", "  ", NULL, identity);
    }
    md_sbuf_add_str(&b, "experiments:\n");
    for (int i = 0; i < job->n_exps; i++) emit_params(&b, &job->exps[i].params, "    ", "  - ", NULL, identity);
    return md_sbuf_take(&b); /* NULL when an add ran out of memory */
}
