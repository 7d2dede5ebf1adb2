/* plan.c — plans, results, blobs (see include/mechdiff/plan.h and
 * include/mechdiff/experiment.h). */
#include "mechdiff/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/result_check.h"

size_t md_h5type_size(md_h5type t)
{
    switch (t) {
    case MD_H5_F32: case MD_H5_I32: return 4;
    case MD_H5_F64: case MD_H5_I64: return 8;
    case MD_H5_U8: return 1;
    case MD_H5_STR: return 0;
    }
    return 0;
}

const char *md_h5type_name(md_h5type t)
{
    static const char *names[] = {"float32", "float64", "int32", "int64", "uint8", "string"};
    return (unsigned)t < 6 ? names[t] : "?";
}

int md_blob_set(md_blob *b, const void *data, size_t size, md_error *err)
{
    void *copy = malloc(size ? size : 1);
    if (!copy) return md_error_set(err, "out of memory (blob of %zu bytes)", size);
    if (size) memcpy(copy, data, size);
    free(b->data);
    b->data = copy;
    b->size = size;
    return MD_OK;
}

void md_blob_free(md_blob *b)
{
    free(b->data);
    b->data = NULL;
    b->size = 0;
}

void md_plan_init(md_plan *p, int stage)
{
    memset(p, 0, sizeof *p);
    p->stage = stage;
    md_result_init(&p->puts);
}

void md_plan_free(md_plan *p)
{
    md_plan_axes_free(p);
    for (int i = 0; i < p->n_attrs; i++) free(p->attrs[i].value);
    free(p->attrs);
    free(p->dsets);
    free(p->cost);
    md_result_free(&p->puts);
    memset(p, 0, sizeof *p);
}

const md_dset *md_plan_find(const md_plan *p, const char *path)
{
    for (int i = 0; i < p->n_dsets; i++)
        if (strcmp(p->dsets[i].path, path) == 0) return &p->dsets[i];
    return NULL;
}

static int valid_name(const char *s)
{
    if (!s[0] || s[0] == '/' || s[strlen(s) - 1] == '/') return 0;
    for (const char *c = s; *c; c++)
        if (*c == '.' && (c == s || c[-1] == '/')) return 0;
    return 1;
}

/* 1 when dataset a and b are in the same group and a is named like a
 * dimension of b (the dimension scale of b would take a's name). */
static int name_clash(const char *a_path, const md_dset *b)
{
    const char *a_base = strrchr(a_path, '/'), *b_base = strrchr(b->path, '/');
    size_t a_dir = a_base ? (size_t)(a_base - a_path) : 0, b_dir = b_base ? (size_t)(b_base - b->path) : 0;
    if (a_dir != b_dir || strncmp(a_path, b->path, a_dir) != 0) return 0;
    a_base = a_base ? a_base + 1 : a_path;
    for (int i = 0; i < b->rank; i++)
        if (strcmp(a_base, b->dim_names[i]) == 0) return 1;
    return 0;
}

int md_plan_dataset(md_plan *p, const md_dset_decl *d, md_error *err)
{
    if (!valid_name(d->path))
        return md_error_set(err, "plan: dataset path '%s' is not a relative path like 'a/b'", d->path);
    if (md_plan_find(p, d->path)) return md_error_set(err, "plan: dataset '%s' declared twice", d->path);
    if (d->rank < 1 || d->rank > MD_MAX_DIMS)
        return md_error_set(err, "plan: dataset '%s' has rank %d (1..%d)", d->path, d->rank, MD_MAX_DIMS);
    if ((unsigned)d->type > MD_H5_STR) return md_error_set(err, "plan: dataset '%s' has a bad type", d->path);
    md_dset *grown = realloc(p->dsets, (size_t)(p->n_dsets + 1) * sizeof *grown);
    if (!grown) return md_error_set(err, "plan: out of memory");
    p->dsets = grown;
    md_dset *s = &p->dsets[p->n_dsets];
    memset(s, 0, sizeof *s);
    snprintf(s->path, sizeof s->path, "%s", d->path);
    s->type = d->type;
    s->rank = d->rank;
    s->deflate = d->deflate;
    s->stage = p->stage;
    s->nan_ok = d->nan_ok;
    double bytes = 8;
    for (int i = 0; i < d->rank; i++) bytes *= d->dims[i] > 0 ? (double)d->dims[i] : 1.0;
    if (bytes > MD_PLAN_MAX_DSET_BYTES)
        return md_error_set(err, "plan: dataset '%s' would hold %.3g bytes, more than a job can hold (at most "
                            "%.3g per dataset): lower the experiment's size keys", d->path, bytes,
                            (double)MD_PLAN_MAX_DSET_BYTES);
    for (int i = 0; i < d->rank; i++) {
        if (d->dims[i] < 1)
            return md_error_set(err, "plan: dataset '%s' dimension %d has size %lld", d->path, i,
                                (long long)d->dims[i]);
        s->dims[i] = d->dims[i];
        s->chunk[i] = d->chunk[i] > 0 && d->chunk[i] < d->dims[i] ? d->chunk[i] : d->dims[i];
        snprintf(s->dim_names[i], sizeof s->dim_names[i], "%s", d->dim_names[i] ? d->dim_names[i] : "");
    }
    if (name_clash(s->path, s))
        return md_error_set(err, "internal error: plan: dataset '%s' is named like one of its dimensions", s->path);
    for (int i = 0; i < p->n_dsets; i++)
        if (name_clash(s->path, &p->dsets[i]) || name_clash(p->dsets[i].path, s))
            return md_error_set(err, "internal error: plan: datasets '%s' and '%s' are in one group and one is named "
                                "like a dimension of the other (its dimension scale takes that name)",
                                p->dsets[i].path, s->path);
    snprintf(s->units, sizeof s->units, "%s", d->units ? d->units : "");
    snprintf(s->description, sizeof s->description, "%s", d->description ? d->description : "");
    p->n_dsets++;
    return MD_OK;
}

/* Splits the comma-separated dims of o into names[] (pointers into buf);
 * returns their number, or -1 when more than MD_MAX_DIMS. */
static int split_dims(const md_output *o, char buf[256], const char *names[MD_MAX_DIMS])
{
    int n = 0;
    snprintf(buf, 256, "%s", o->dims ? o->dims : "");
    if (!buf[0]) return 0;
    names[n++] = buf;
    for (char *q = buf; *q; q++)
        if (*q == ',') {
            if (n == MD_MAX_DIMS) return -1;
            *q = '\0';
            names[n++] = q + 1;
        }
    return n;
}

/* o->path with each {placeholder} replaced by the next of args. */
static int fill_path(const md_output *o, const char *const *args, char *out, size_t cap, md_error *err)
{
    size_t n = 0;
    int a = 0;
    for (const char *c = o->path; *c; c++) {
        if (*c == '{') {
            const char *end = strchr(c, '}');
            if (!end || !args || !args[a]) return md_error_set(err, "plan: output '%s': too few names", o->path);
            n += (size_t)snprintf(out + (n < cap ? n : cap), n < cap ? cap - n : 0, "%s", args[a++]);
            c = end;
        } else if (n + 1 < cap) {
            out[n++] = *c;
            out[n] = '\0';
        } else {
            n++;
        }
    }
    if (n >= cap) return md_error_set(err, "plan: output '%s': path too long", o->path);
    out[n] = '\0';
    return MD_OK;
}

int md_plan_output(md_plan *p, const md_output *o, const char *const *args, md_error *err)
{
    char buf[256];
    const char *names[MD_MAX_DIMS];
    md_dset_decl d = {.type = o->type, .units = o->units, .description = o->description, .deflate = o->deflate,
                      .nan_ok = o->nan_ok};
    if ((d.rank = split_dims(o, buf, names)) < 1) return md_error_set(err, "plan: output '%s': bad dims", o->path);
    if (fill_path(o, args, d.path, sizeof d.path, err) != MD_OK) return MD_ERR;
    for (int i = 0; i < d.rank; i++) { /* every size comes from the plan's axes */
        const md_axis *a = md_plan_axis_find(p, d.path, names[i]);
        if (!a)
            return md_error_set(err, "internal error: kind %s, dataset '%s': dimension '%s' has no declared axis "
                                "(the kind's plan declares one with md_plan_axis* before the dataset)",
                                p->kind ? p->kind : "?", d.path, names[i]);
        d.dims[i] = a->n;
        d.dim_names[i] = names[i];
    }
    d.chunk[0] = o->chunk_rows;
    return md_plan_dataset(p, &d, err);
}

int md_plan_output_put(md_plan *p, const md_output *o, const char *const *args, const void *data, size_t nbytes,
                       md_error *err)
{
    int64_t zero[MD_MAX_DIMS] = {0};
    if (md_plan_output(p, o, args, err) != MD_OK) return MD_ERR;
    const md_dset *d = &p->dsets[p->n_dsets - 1];
    return md_plan_put(p, d->path, zero, d->dims, data, nbytes, err);
}

/* 1 when path is an instance of template t: each {placeholder} stands for a
 * non-empty run of characters without '/'. */
static int path_matches(const char *t, const char *path)
{
    if (!*t) return !*path;
    if (*t == '{') {
        const char *end = strchr(t, '}');
        if (!end) return 0;
        for (const char *q = path + 1; q[-1] && q[-1] != '/'; q++)
            if (path_matches(end + 1, q)) return 1;
        return 0;
    }
    return *t == *path && path_matches(t + 1, path + 1);
}

const md_output *md_output_match(const md_output *outputs, const md_dset *d)
{
    char buf[256];
    const char *names[MD_MAX_DIMS];
    for (const md_output *o = outputs; o && o->path; o++) {
        if (!path_matches(o->path, d->path) || o->type != d->type || o->stage != d->stage) continue;
        if (split_dims(o, buf, names) != d->rank) continue;
        int same = !strcmp(o->units ? o->units : "", d->units) &&
                   !strcmp(o->description ? o->description : "", d->description) && o->deflate == d->deflate &&
                   o->nan_ok == d->nan_ok;
        for (int i = 0; i < d->rank && same; i++) same = !strcmp(names[i], d->dim_names[i]);
        if (same) return o;
    }
    return NULL;
}

int md_plan_check_outputs(const md_plan *p, const char *kind, const md_output *outputs, md_error *err)
{
    for (int i = 0; i < p->n_dsets; i++)
        if (!md_output_match(outputs, &p->dsets[i]))
            return md_error_set(err,
                                "internal error: kind '%s', stage %d declares dataset '%s' that its outputs table "
                                "does not list (path, type, dims, units, description, stage)",
                                kind, p->stage, p->dsets[i].path);
    return MD_OK;
}

/* Markdown cell text: '|' escaped. */
static void print_cell(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|') fputc('\\', f);
        fputc(*s, f);
    }
}

void md_output_print(const md_output *outputs, const char *title, FILE *f)
{
    fprintf(f, "%s\n\n| dataset | type | dims | units | stage | description |\n|---|---|---|---|---|---|\n", title);
    for (const md_output *o = outputs; o && o->path; o++) {
        fprintf(f, "| `%s` | %s | [", o->path, md_h5type_name(o->type));
        print_cell(f, o->dims);
        fputs("]", f);
        if (o->axes && o->axes[0]) {
            fputs(" (", f);
            print_cell(f, o->axes);
            fputs(")", f);
        }
        fputs(" | ", f);
        print_cell(f, o->units && o->units[0] ? o->units : "-");
        fprintf(f, " | %d%s | ", o->stage, o->at_plan ? " plan" : "");
        print_cell(f, o->description);
        fputs(" |\n", f);
    }
    fputc('\n', f);
}

int md_plan_allow_nan(md_plan *p, const char *path, md_error *err)
{
    md_dset *d = (md_dset *)md_plan_find(p, path);
    if (!d) return md_error_set(err, "plan: md_plan_allow_nan on '%s', which this stage did not declare", path);
    d->nan_ok = 1;
    return MD_OK;
}

int md_plan_attr(md_plan *p, const char *path, const char *name, const char *value, md_error *err)
{
    md_attr_decl *grown = realloc(p->attrs, (size_t)(p->n_attrs + 1) * sizeof *grown);
    if (!grown) return md_error_set(err, "plan: out of memory");
    p->attrs = grown;
    md_attr_decl *a = &p->attrs[p->n_attrs];
    snprintf(a->path, sizeof a->path, "%s", path);
    snprintf(a->name, sizeof a->name, "%s", name);
    a->value = strdup(value);
    if (!a->value) return md_error_set(err, "plan: out of memory");
    p->n_attrs++;
    return MD_OK;
}

int md_plan_units(md_plan *p, int64_t n, md_error *err)
{
    if (n < 1) return md_error_set(err, "plan: %lld units (at least 1)", (long long)n);
    if (n > MD_PLAN_MAX_UNITS)
        return md_error_set(err, "plan: %lld units in one stage, more than a job can hold (at most %lld): lower "
                            "the experiment's size keys", (long long)n, (long long)MD_PLAN_MAX_UNITS);
    double *c = malloc((size_t)n * sizeof *c);
    if (!c) return md_error_set(err, "plan: out of memory for %lld units", (long long)n);
    for (int64_t i = 0; i < n; i++) c[i] = 1.0;
    free(p->cost);
    p->cost = c;
    p->n_units = n;
    return MD_OK;
}

void md_plan_cost(md_plan *p, int64_t unit, double cost)
{
    if (unit >= 0 && unit < p->n_units) p->cost[unit] = cost;
}

int md_plan_put(md_plan *p, const char *path, const int64_t *offset, const int64_t *count, const void *data,
                size_t nbytes, md_error *err)
{
    const md_dset *d = md_plan_find(p, path);
    if (!d) return md_error_set(err, "plan: md_plan_put to '%s', which this stage did not declare", path);
    if (md_result_check_values(d, offset, count, data, nbytes, err) != MD_OK) return md_error_prefix(err, "plan");
    return md_result_put(&p->puts, path, d->rank, offset, count, data, nbytes, err);
}

/* ---- results ----------------------------------------------------------- */

void md_result_init(md_result *r)
{
    memset(r, 0, sizeof *r);
}

void md_result_reset(md_result *r)
{
    r->len = 0;
    r->n_pieces = 0;
}

void md_result_free(md_result *r)
{
    free(r->buf);
    memset(r, 0, sizeof *r);
}

static int reserve(md_result *r, size_t more)
{
    if (r->len == 0) r->len = 4; /* room for n_pieces */
    if (r->len + more <= r->cap) return MD_OK;
    size_t cap = r->cap ? r->cap : 256;
    while (cap < r->len + more) cap *= 2;
    unsigned char *b = realloc(r->buf, cap);
    if (!b) return MD_ERR;
    r->buf = b;
    r->cap = cap;
    return MD_OK;
}

static void put_bytes(md_result *r, const void *p, size_t n)
{
    memcpy(r->buf + r->len, p, n);
    r->len += n;
}

int md_result_put(md_result *r, const char *path, int rank, const int64_t *offset, const int64_t *count,
                  const void *data, size_t nbytes, md_error *err)
{
    size_t plen = strlen(path);
    if (plen == 0 || plen >= MD_PATH_MAX) return md_error_set(err, "result: bad dataset path '%s'", path);
    if (rank < 1 || rank > MD_MAX_DIMS) return md_error_set(err, "result: '%s' rank %d", path, rank);
    size_t need = 2 + plen + 2 + 16 * (size_t)rank + 8 + nbytes;
    if (reserve(r, need) != MD_OK) return md_error_set(err, "result: out of memory (%zu bytes)", need);
    uint16_t l16 = (uint16_t)plen;
    uint8_t type = 0xff, rk = (uint8_t)rank; /* type is checked by rank 0 against the plan */
    uint64_t nb = nbytes;
    put_bytes(r, &l16, 2);
    put_bytes(r, path, plen);
    put_bytes(r, &type, 1);
    put_bytes(r, &rk, 1);
    put_bytes(r, offset, 8 * (size_t)rank);
    put_bytes(r, count, 8 * (size_t)rank);
    put_bytes(r, &nb, 8);
    if (nbytes) put_bytes(r, data, nbytes);
    r->n_pieces++;
    return MD_OK;
}

const void *md_result_bytes(md_result *r, size_t *len)
{
    if (reserve(r, 0) != MD_OK) { *len = 0; return NULL; }
    memcpy(r->buf, &r->n_pieces, 4);
    *len = r->len;
    return r->buf;
}

int md_result_next(const void *bytes, size_t len, size_t *pos, md_piece *pc, md_error *err)
{
    const unsigned char *b = bytes;
    if (*pos == 0) {
        if (len < 4) return md_error_set(err, "result: truncated (%zu bytes)", len);
        *pos = 4;
    }
    if (*pos == len) return 0;
    size_t p = *pos;
    uint16_t plen;
    if (p + 2 > len) goto bad;
    memcpy(&plen, b + p, 2);
    p += 2;
    if (plen == 0 || plen >= MD_PATH_MAX || p + plen + 2 > len) goto bad;
    memcpy(pc->path, b + p, plen);
    pc->path[plen] = '\0';
    p += plen;
    pc->type = (md_h5type)b[p];
    pc->rank = b[p + 1];
    p += 2;
    if (pc->rank < 1 || pc->rank > MD_MAX_DIMS || p + 16 * (size_t)pc->rank + 8 > len) goto bad;
    memcpy(pc->offset, b + p, 8 * (size_t)pc->rank);
    p += 8 * (size_t)pc->rank;
    memcpy(pc->count, b + p, 8 * (size_t)pc->rank);
    p += 8 * (size_t)pc->rank;
    uint64_t nb;
    memcpy(&nb, b + p, 8);
    p += 8;
    if (nb > len - p) goto bad;
    pc->data = b + p;
    pc->nbytes = (size_t)nb;
    *pos = p + (size_t)nb;
    return 1;
bad:
    return md_error_set(err, "result: malformed piece at byte %zu of %zu", *pos, len);
}

const md_dset *md_piece_check(const md_piece *pc, const md_dset *dsets, int n_dsets, md_error *err)
{
    const md_dset *d = NULL;
    for (int i = 0; i < n_dsets && !d; i++)
        if (strcmp(dsets[i].path, pc->path) == 0) d = &dsets[i];
    if (!d) {
        md_error_set(err, "result for dataset '%s', which the plan did not declare", pc->path);
        return NULL;
    }
    if (pc->rank != d->rank) {
        md_error_set(err, "result for '%s' has rank %d, the dataset has rank %d", pc->path, pc->rank, d->rank);
        return NULL;
    }
    uint64_t elems = 1;
    for (int i = 0; i < d->rank; i++) {
        if (pc->offset[i] < 0 || pc->count[i] < 1 || pc->offset[i] + pc->count[i] > d->dims[i]) {
            md_error_set(err, "result for '%s' dimension %d (%s): [%lld, %lld) is outside [0, %lld)", pc->path, i,
                         d->dim_names[i], (long long)pc->offset[i], (long long)(pc->offset[i] + pc->count[i]),
                         (long long)d->dims[i]);
            return NULL;
        }
        elems *= (uint64_t)pc->count[i];
    }
    if (d->type == MD_H5_STR) {
        const char *s = pc->data;
        uint64_t nul = 0;
        for (size_t i = 0; i < pc->nbytes; i++) nul += s[i] == '\0';
        if (nul != elems || !pc->nbytes || s[pc->nbytes - 1] != '\0') {
            md_error_set(err, "result for string dataset '%s' holds %llu strings, the hyperslab has %llu", pc->path,
                         (unsigned long long)nul, (unsigned long long)elems);
            return NULL;
        }
    } else if (pc->nbytes != elems * md_h5type_size(d->type)) {
        md_error_set(err, "result for '%s' (%s) has %zu bytes, the hyperslab needs %llu", pc->path,
                     md_h5type_name(d->type), pc->nbytes,
                     (unsigned long long)(elems * md_h5type_size(d->type)));
        return NULL;
    }
    return d;
}

uint32_t md_crc32(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}
