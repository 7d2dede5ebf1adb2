/* csv.c — see include/mechdiff/csv.h. */
#include "mechdiff/csv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/fsutil.h"
#include "mechdiff/sbuf.h"

typedef struct strvec {
    char **v;
    int n, cap;
} strvec;

static int strvec_push(strvec *s, char *x)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        char **nv = realloc(s->v, (size_t)cap * sizeof(char *));
        if (!nv) return -1;
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    return 0;
}

/* Parses one record starting at *p; pushes its fields; advances *p past the
 * line end. Returns the number of fields, or -1 on a quoting error / OOM. */
static int parse_record(const char **p, strvec *out)
{
    const char *s = *p;
    int nf = 0;
    for (;;) {
        md_sbuf f = {0}; /* the field's text: handed to out */
        int quoted = *s == '"';
        if (quoted) s++;
        for (;;) {
            char c = *s;
            if (quoted) {
                if (c == '\0') {
                    md_sbuf_free(&f);
                    return -1;
                }
                if (c == '"') {
                    if (s[1] == '"') s++;
                    else {
                        s++;
                        break;
                    }
                }
            } else if (c == ',' || c == '\n' || c == '\r' || c == '\0') {
                break;
            }
            md_sbuf_add_char(&f, *s++); /* a failure shows in md_sbuf_take */
        }
        char *field = md_sbuf_take(&f);
        if (!field || strvec_push(out, field) != 0) {
            free(field);
            return -1;
        }
        nf++;
        if (*s == ',') {
            s++;
            continue;
        }
        if (*s != '\n' && *s != '\r' && *s != '\0') return -1; /* text after a closing quote */
        break;
    }
    if (*s == '\r') s++;
    if (*s == '\n') s++;
    *p = s;
    return nf;
}

/* Line ends (\n, or a \r not followed by \n) in [a, b); b is inside the
 * NUL-terminated text, so a[1] is readable. */
static int count_lines(const char *a, const char *b)
{
    int n = 0;
    for (; a < b; a++) n += *a == '\n' || (*a == '\r' && a[1] != '\n');
    return n;
}

int md_csv_read(md_csv **out, const char *path, md_error *err)
{
    *out = NULL;
    /* A regular file (a FIFO would block) of bounded size: every cell is
     * copied, so memory is a small multiple of it. */
    size_t text_len = 0;
    char *text = md_fsutil_read_input(path, MD_CSV_MAX_BYTES, &text_len, err);
    if (!text) return MD_ERR;
    const char *nul = memchr(text, '\0', text_len); /* would end the text early, dropping rows unseen */
    if (nul) {
        md_error_set(err, "%s: byte %zu is a NUL: not a UTF-8 text file (UTF-16, as some spreadsheets save CSV?); "
                          "save it as UTF-8 CSV", path, (size_t)(nul - text));
        free(text);
        return MD_ERR;
    }
    md_csv *t = calloc(1, sizeof *t);
    strvec cells = {0};
    if (!t || !(t->path = strdup(path))) {
        free(text);
        free(t);
        return md_error_set(err, "out of memory reading %s", path);
    }
    const char *p = text;
    if (strncmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3; /* UTF-8 byte order mark */
    int line = 1; /* of the record at p (a quoted field may hold line ends) */
    const char *start = p;
    int nh = *p ? parse_record(&p, &cells) : 0;
    if (nh <= 0) {
        md_error_set(err, "%s:1: missing or malformed header row", path);
        goto fail;
    }
    t->n_cols = nh;
    while (*p) {
        line += count_lines(start, p);
        start = p;
        if (*p == '\n' || *p == '\r') { /* blank line */
            if (*p == '\r') p++;
            if (*p == '\n') p++;
            continue;
        }
        int nf = parse_record(&p, &cells);
        if (nf < 0) {
            md_error_set(err, "%s:%d: malformed CSV (unbalanced quotes?)", path, line);
            goto fail;
        }
        if (nf != nh) {
            md_error_set(err, "%s:%d: %d fields, but the header has %d", path, line, nf, nh);
            goto fail;
        }
        t->n_rows++;
    }
    free(text);
    t->header = cells.v;
    t->cells = cells.v + nh;
    *out = t;
    return MD_OK;
fail:
    free(text);
    for (int i = 0; i < cells.n; i++) free(cells.v[i]);
    free(cells.v);
    free(t->path);
    free(t);
    return MD_ERR;
}

void md_csv_free(md_csv *t)
{
    if (!t) return;
    int n = t->n_cols * (t->n_rows + 1);
    for (int i = 0; i < n; i++) free(t->header[i]);
    free(t->header);
    free(t->path);
    free(t);
}

int md_csv_column(const md_csv *t, const char *name, md_error *err)
{
    for (int i = 0; i < t->n_cols; i++)
        if (strcmp(t->header[i], name) == 0) return i;
    char cols[512] = "";
    size_t off = 0;
    for (int i = 0; i < t->n_cols && off < sizeof cols - 64; i++)
        off += (size_t)snprintf(cols + off, sizeof cols - off, "%s%s", i ? ", " : "", t->header[i]);
    md_error_set(err, "%s: no column '%s' (columns: %s)", t->path, name, cols);
    return -1;
}
