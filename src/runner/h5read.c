/* h5read.c — reading a results file back (see include/mechdiff/h5out.h):
 * its identity (md_h5out_info), and the reader that finish_stage and merge
 * use (datasets of one experiment, done flags, a unit's regions). */
#include "mechdiff/h5out.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#include "mechdiff/plan.h"
#include "runner/h5declared.h"
#include "runner/h5util.h"

struct md_reader {
    hid_t file;
    char exp[128];
    char path[4096]; /* the file, for messages */
};

/* ---- info ------------------------------------------------------------ */

/* The attributes md_h5out_info reads: each absent or one value of its class
 * (job_sha256 required). */
static int info_check_attrs(const char *path, hid_t f, hid_t prov, md_error *err)
{
    static const struct { int prov; const char *name; H5T_class_t cls; int required; } attrs[] = {
        {0, "layout_version", H5T_INTEGER, 0}, {1, "mechdiff_version", H5T_STRING, 0},
        {1, "job_sha256", H5T_STRING, 1},      {1, "job_yaml", H5T_STRING, 0},
        {1, "generation", H5T_INTEGER, 0},     {1, "part_index", H5T_INTEGER, 0},
        {1, "part_count", H5T_INTEGER, 0},     {1, "finished", H5T_INTEGER, 0},
    };
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++) {
        char what[96];
        int ok = md_h5_attr_check(attrs[i].prov ? prov : f, attrs[i].name, attrs[i].cls, what, sizeof what);
        const char *where = attrs[i].prov ? "/provenance" : "/";
        if (ok < 0)
            return md_error_set(err, "%s: attribute '%s' of %s holds %s, not one %s: " MD_H5_EDITED_HINT, path,
                                attrs[i].name, where, what, attrs[i].cls == H5T_STRING ? "string" : "integer");
        if (ok == 0 && attrs[i].required)
            return md_error_set(err, "%s: attribute '%s' of %s is missing: " MD_H5_EDITED_HINT, path, attrs[i].name,
                                where);
    }
    return MD_OK;
}

/* The integers md_h5out_info reads as int, in the range a run writes
 * (a value beyond an int would be read as another one). */
static int info_check_ranges(const char *path, hid_t f, hid_t prov, md_error *err)
{
    static const struct { int prov; const char *name; int64_t lo, hi, def; } ints[] = {
        {0, "layout_version", 1, INT32_MAX, 1}, {1, "part_index", -1, INT32_MAX - 1, -1},
        {1, "part_count", 0, INT32_MAX, 0},     {1, "finished", 0, 1, 0},
        {1, "generation", 0, INT64_MAX, 0},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        int64_t x = md_h5_attr_read_i64(ints[i].prov ? prov : f, ints[i].name, ints[i].def);
        if (x < ints[i].lo || x > ints[i].hi)
            return md_error_set(err, "%s: attribute '%s' of %s is %lld, not in [%lld, %lld]: " MD_H5_EDITED_HINT, path,
                                ints[i].name, ints[i].prov ? "/provenance" : "/", (long long)x, (long long)ints[i].lo,
                                (long long)ints[i].hi);
    }
    return MD_OK;
}

int md_h5out_info(const char *path, md_h5info *info, md_error *err)
{
    memset(info, 0, sizeof *info);
    info->part_index = -1;
    hid_t fapl = md_h5_fapl_unlocked();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f < 0) return md_error_set(err, "%s: not a readable HDF5 file", path);
    if (!md_h5_exists(f, "/provenance")) {
        H5Fclose(f);
        return md_error_set(err, "%s: no /provenance group: not a mechdiff results file", path);
    }
    hid_t g = H5Gopen2(f, "/provenance", H5P_DEFAULT);
    if (g < 0 || info_check_attrs(path, f, g, err) != MD_OK) {
        if (g < 0) md_error_set(err, "%s: /provenance cannot be opened: " MD_H5_EDITED_HINT, path);
        if (g >= 0) H5Gclose(g);
        H5Fclose(f);
        return MD_ERR;
    }
    if (info_check_ranges(path, f, g, err) != MD_OK) {
        H5Gclose(g);
        H5Fclose(f);
        return MD_ERR;
    }
    info->layout = (int)md_h5_attr_read_i64(f, "layout_version", 1);
    char *ver = md_h5_attr_read_str(g, "mechdiff_version");
    snprintf(info->mechdiff_version, sizeof info->mechdiff_version, "%s", ver ? ver : "unknown");
    free(ver);
    char *sha = md_h5_attr_read_str(g, "job_sha256");
    snprintf(info->job_sha256, sizeof info->job_sha256, "%s", sha ? sha : "");
    free(sha);
    info->generation = (uint64_t)md_h5_attr_read_i64(g, "generation", 0);
    info->part_index = (int)md_h5_attr_read_i64(g, "part_index", -1);
    info->part_count = (int)md_h5_attr_read_i64(g, "part_count", 0);
    info->finished = (int)md_h5_attr_read_i64(g, "finished", 0);
    info->job_yaml = md_h5_attr_read_str(g, "job_yaml");
    H5Gclose(g);
    H5Fclose(f);
    return MD_OK;
}

void md_h5out_info_free(md_h5info *info)
{
    free(info->job_yaml);
    info->job_yaml = NULL;
}

/* ---- reading --------------------------------------------------------- */

int md_reader_open(md_reader **out, const char *path, const char *exp_name, md_error *err)
{
    *out = NULL;
    md_reader *r = calloc(1, sizeof *r);
    if (!r) return md_error_set(err, "out of memory");
    hid_t fapl = md_h5_fapl_unlocked();
    r->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (r->file < 0) {
        free(r);
        return md_error_set(err, "%s: cannot open results file", path);
    }
    /* Hold this version while reading it: a run writing `path` never takes a
     * locked version back as its next OUT.h5.tmp (h5out.c). Best effort. */
    void *fd = NULL;
    if (H5Fget_vfd_handle(r->file, H5P_DEFAULT, &fd) >= 0 && fd) flock(*(int *)fd, LOCK_SH | LOCK_NB);
    snprintf(r->exp, sizeof r->exp, "%s", exp_name);
    snprintf(r->path, sizeof r->path, "%s", path);
    *out = r;
    return MD_OK;
}

void md_reader_select(md_reader *r, const char *exp_name)
{
    snprintf(r->exp, sizeof r->exp, "%s", exp_name);
}

void md_reader_close(md_reader *r)
{
    if (!r) return;
    H5Fclose(r->file);
    free(r);
}

static hid_t reader_dataset(md_reader *r, const char *path, md_error *err)
{
    char full[MD_PATH_MAX + 160];
    snprintf(full, sizeof full, "/%s/%s", r->exp, path);
    if (!md_h5_exists(r->file, full)) {
        md_error_set(err, "%s: results file has no dataset %s: " MD_H5_EDITED_HINT, r->path, full);
        return -1;
    }
    return H5Dopen2(r->file, full, H5P_DEFAULT);
}

int md_reader_dims(md_reader *r, const char *path, int64_t dims[MD_MAX_DIMS], md_error *err)
{
    hid_t d = reader_dataset(r, path, err);
    if (d < 0) return MD_ERR;
    hid_t sp = H5Dget_space(d);
    hsize_t h[MD_MAX_DIMS];
    int rank = H5Sget_simple_extent_ndims(sp);
    int ok = rank >= 0 && rank <= MD_MAX_DIMS && H5Sget_simple_extent_dims(sp, h, NULL) == rank;
    for (int i = 0; ok && i < rank; i++) dims[i] = (int64_t)h[i];
    H5Sclose(sp);
    H5Dclose(d);
    if (!ok && rank > MD_MAX_DIMS)
        return md_error_set(err, "%s: /%s/%s has %d dimensions, more than the %d of a results dataset: " MD_H5_EDITED_HINT,
                            r->path, r->exp, path, rank, MD_MAX_DIMS);
    if (!ok)
        return md_error_set(err, "%s: /%s/%s: its dataspace cannot be read: " MD_H5_EDITED_HINT, r->path, r->exp, path);
    return rank;
}

static int reader_read(md_reader *r, const char *path, const int64_t *offset, const int64_t *count, hid_t mt,
                       void *out, md_error *err)
{
    hid_t d = reader_dataset(r, path, err);
    if (d < 0) return MD_ERR;
    hid_t fs = H5Dget_space(d);
    int rank = H5Sget_simple_extent_ndims(fs);
    hsize_t off[MD_MAX_DIMS], cnt[MD_MAX_DIMS];
    if (rank < 0 || rank > MD_MAX_DIMS) {
        H5Sclose(fs);
        H5Dclose(d);
        return md_error_set(err, "%s: read of /%s/%s: %s%d dimensions, not 0 to %d as a results dataset has: "
                            MD_H5_EDITED_HINT, r->path, r->exp, path, rank < 0 ? "its dataspace cannot be read, " : "",
                            rank, MD_MAX_DIMS);
    }
    for (int i = 0; i < rank; i++) {
        off[i] = (hsize_t)offset[i];
        cnt[i] = (hsize_t)count[i];
    }
    int rc = MD_OK;
    if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL) < 0 || H5Sselect_valid(fs) <= 0) {
        rc = md_error_set(err, "%s: read of /%s/%s: hyperslab outside the dataset", r->path, r->exp, path);
    } else {
        hid_t ms = H5Screate_simple(rank, cnt, NULL);
        if (H5Dread(d, mt, ms, fs, H5P_DEFAULT, out) < 0) rc = md_error_set(err, "%s: read of /%s/%s failed (not a dataset of numbers?): " MD_H5_EDITED_HINT, r->path, r->exp, path);
        H5Sclose(ms);
    }
    H5Sclose(fs);
    H5Dclose(d);
    return rc;
}

int md_reader_f64(md_reader *r, const char *path, const int64_t *offset, const int64_t *count, double *out,
                  md_error *err)
{
    return reader_read(r, path, offset, count, H5T_NATIVE_DOUBLE, out, err);
}

int md_reader_f32(md_reader *r, const char *path, const int64_t *offset, const int64_t *count, float *out,
                  md_error *err)
{
    return reader_read(r, path, offset, count, H5T_NATIVE_FLOAT, out, err);
}

int md_reader_done(md_reader *r, int stage, uint8_t **done, int64_t *n_units, md_error *err)
{
    *done = NULL;
    *n_units = 0;
    char path[512];
    snprintf(path, sizeof path, "/completion/%s/stage%d/done", r->exp, stage);
    if (!md_h5_exists(r->file, path)) return MD_OK;
    *done = md_h5_read_flags(r->file, path, n_units, err);
    snprintf(path, sizeof path, "/completion/%s/stage%d/regions", r->exp, stage);
    hid_t regions = *done ? md_h5_open_regions(r->file, path, *n_units, err) : -1;
    if (regions >= 0) H5Dclose(regions);
    if (regions >= 0) return MD_OK;
    free(*done);
    *done = NULL;
    *n_units = 0;
    return md_error_prefix(err, "%s", r->path);
}

int md_reader_declared(md_reader *r, int stage, char ***names, int *n, md_error *err)
{
    *names = NULL;
    *n = 0;
    char path[512], what[160];
    snprintf(path, sizeof path, "/completion/%s/stage%d", r->exp, stage);
    if (!md_h5_exists(r->file, path)) return 0;
    hid_t sg = H5Gopen2(r->file, path, H5P_DEFAULT);
    if (sg < 0) return md_error_set(err, "%s: %s cannot be opened: " MD_H5_EDITED_HINT, r->path, path);
    int got = md_h5declared_read_list(sg, names, n, what, sizeof what);
    H5Gclose(sg);
    if (got >= 0) return got;
    return md_error_set(err, "%s: %s: attribute '%s' holds %s, not a list of dataset paths: " MD_H5_EDITED_HINT,
                        r->path, path, MD_H5DECLARED_ATTR, what);
}

int md_reader_check_plan(md_reader *r, const md_plan *plan, md_error *err)
{
    for (int i = 0; i < plan->n_dsets; i++) {
        char full[MD_PATH_MAX + 160];
        snprintf(full, sizeof full, "/%s/%s", r->exp, plan->dsets[i].path);
        if (md_h5_check_dataset(r->file, full, &plan->dsets[i], r->exp, err) != MD_OK)
            return md_error_prefix(err, "%s", r->path);
    }
    return MD_OK;
}

typedef struct like_ctx {
    md_reader *r, *ref;
    md_error *err;
} like_ctx;

/* One dataset of ref's experiment group: r has it with the same shape/type. */
static herr_t like_one(hid_t g, const char *name, const H5L_info_t *info, void *arg)
{
    (void)g;
    (void)info;
    like_ctx *c = arg;
    char full[MD_PATH_MAX + 160];
    snprintf(full, sizeof full, "/%s/%s", c->ref->exp, name);
    int rank_ref, rank;
    int64_t dims_ref[MD_MAX_DIMS] = {0}, dims[MD_MAX_DIMS] = {0};
    md_h5type type_ref, type;
    if (md_h5_dataset_shape(c->ref->file, full, &rank_ref, dims_ref, &type_ref) != 1) return 0; /* a group */
    int same = md_h5_dataset_shape(c->r->file, full, &rank, dims, &type) == 1 && rank == rank_ref &&
               type == type_ref && memcmp(dims, dims_ref, sizeof dims) == 0;
    if (same) return 0;
    md_error_set(c->err, "%s: dataset %s is missing or differs from the one of %s (shape or type): " MD_H5_EDITED_HINT,
                 c->r->path, full, c->ref->path);
    return -1;
}

int md_reader_check_like(md_reader *r, md_reader *ref, md_error *err)
{
    char group[160];
    snprintf(group, sizeof group, "/%s", ref->exp);
    hid_t g = md_h5_exists(ref->file, group) ? H5Gopen2(ref->file, group, H5P_DEFAULT) : -1;
    if (g < 0) return md_error_set(err, "%s: no group %s", ref->path, group);
    like_ctx c = {r, ref, err};
    md_error_clear(err);
    herr_t rc = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, like_one, &c);
    H5Gclose(g);
    if (rc >= 0) return MD_OK;
    return err->msg[0] ? MD_ERR : md_error_set(err, "%s: cannot list %s", ref->path, group);
}

/* ---- stages (mechdiff status) ---------------------------------------- */

typedef struct stage_list {
    md_h5stage *v;
    int n, cap;
    const char *exp; /* the experiment group being listed */
    md_error *err;   /* what is wrong, when the listing stops */
} stage_list;

/* One /completion/<exp>/stage<s> into the list (a group without done flags
 * is skipped). */
static herr_t list_stage(hid_t exp, const char *name, const H5L_info_t *info, void *arg)
{
    (void)info;
    stage_list *l = arg;
    char path[300], full[600];
    snprintf(path, sizeof path, "%s/done", name);
    snprintf(full, sizeof full, "/completion/%s/%s", l->exp, path);
    if (strncmp(name, "stage", 5) != 0 || !md_h5_exists(exp, path)) return 0;
    if (md_h5_parse_stage(name) < 0)
        return md_error_set(l->err, "/completion/%s/%s: not a stage<k> group (k from 0 to %d): " MD_H5_EDITED_HINT,
                            l->exp, name, MD_KIND_MAX_STAGES - 1), -1;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        md_h5stage *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return md_error_set(l->err, "out of memory"), -1;
        l->v = v, l->cap = cap;
    }
    md_h5stage *st = &l->v[l->n];
    *st = (md_h5stage){.stage = md_h5_parse_stage(name), .exp_index = -1};
    snprintf(st->exp, sizeof st->exp, "%s", l->exp);
    if (!(st->done = md_h5_read_flags(exp, full, &st->n_units, l->err))) return -1;
    hid_t g = H5Gopen2(exp, name, H5P_DEFAULT);
    if (g >= 0) st->exp_index = (int)md_h5_attr_read_i64(g, "experiment_index", -1);
    if (g >= 0) H5Gclose(g);
    l->n++;
    return 0;
}

static herr_t list_experiment(hid_t comp, const char *name, const H5L_info_t *info, void *arg)
{
    (void)info;
    stage_list *l = arg;
    hid_t e = H5Gopen2(comp, name, H5P_DEFAULT);
    if (e < 0) return 0;
    l->exp = name;
    herr_t rc = H5Literate(e, H5_INDEX_NAME, H5_ITER_INC, NULL, list_stage, l);
    H5Gclose(e);
    return rc;
}

int md_h5out_read_stages(const char *path, md_h5stage **stages, int *n, md_error *err)
{
    *stages = NULL;
    *n = 0;
    hid_t fapl = md_h5_fapl_unlocked();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f < 0) return md_error_set(err, "%s: cannot open results file", path);
    stage_list l = {.err = err};
    md_error_clear(err);
    herr_t rc = 0;
    if (md_h5_exists(f, "/completion")) {
        hid_t g = H5Gopen2(f, "/completion", H5P_DEFAULT);
        rc = g < 0 ? -1 : H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, list_experiment, &l);
        if (g >= 0) H5Gclose(g);
    }
    H5Fclose(f);
    if (rc < 0) {
        md_h5out_free_stages(l.v, l.n);
        if (!err->msg[0]) return md_error_set(err, "%s: cannot read /completion (a damaged file?)", path);
        return md_error_prefix(err, "%s", path);
    }
    *stages = l.v;
    *n = l.n;
    return MD_OK;
}

void md_h5out_free_stages(md_h5stage *stages, int n)
{
    for (int i = 0; stages && i < n; i++) free(stages[i].done);
    free(stages);
}

/* The most bytes a unit's result can have: it travels from its worker as
 * one MPI message of an int count of bytes (worker.c). */
#define UNIT_MAX_BYTES ((uint64_t)INT32_MAX)

/* Parses "path[o+c,o+c]" at *s; advances past it and a following ';'. */
static int parse_region(const char **s, md_piece *pc)
{
    const char *br = strchr(*s, '[');
    if (!br || br == *s || (size_t)(br - *s) >= MD_PATH_MAX) return MD_ERR;
    memcpy(pc->path, *s, (size_t)(br - *s));
    pc->path[br - *s] = '\0';
    for (const char *c = pc->path; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) return MD_ERR; /* no dataset has such a name */
    const char *p = br + 1;
    pc->rank = 0;
    while (*p && *p != ']' && pc->rank < MD_MAX_DIMS) {
        char *end;
        pc->offset[pc->rank] = strtoll(p, &end, 10);
        if (*end != '+') return MD_ERR;
        pc->count[pc->rank] = strtoll(end + 1, &end, 10);
        pc->rank++;
        p = *end == ',' ? end + 1 : end;
    }
    if (*p != ']') return MD_ERR;
    p++;
    if (*p == ';') p++;
    *s = p;
    return MD_OK;
}

/* Whether piece pc lies inside dataset ds (rank, offsets and counts), before
 * anything is allocated for it. */
static int piece_fits(const md_reader *r, hid_t ds, const md_piece *pc, const char *regions, int64_t unit,
                      md_error *err)
{
    hid_t sp = H5Dget_space(ds);
    int rank = H5Sget_simple_extent_ndims(sp);
    hsize_t dims[MD_MAX_DIMS] = {0};
    int ok = rank == pc->rank && rank >= 0 && rank <= MD_MAX_DIMS && H5Sget_simple_extent_dims(sp, dims, NULL) == rank;
    H5Sclose(sp);
    for (int i = 0; ok && i < rank; i++)
        ok = pc->offset[i] >= 0 && pc->count[i] >= 0 && (uint64_t)pc->count[i] <= dims[i] &&
             (uint64_t)pc->offset[i] <= dims[i] - (uint64_t)pc->count[i];
    if (ok) return MD_OK;
    return md_error_set(err, "%s: %s[%lld] names a piece of /%s/%s outside the dataset (rank %d): " MD_H5_EDITED_HINT,
                        r->path, regions, (long long)unit, r->exp, pc->path, rank);
}

/* Entry unit of the regions dataset at path (regions) into *text
 * (HDF5's: H5free_memory). */
static int read_regions_entry(md_reader *r, const char *regions, int64_t unit, char **text, md_error *err)
{
    hid_t d = H5Dopen2(r->file, regions, H5P_DEFAULT);
    hid_t fs = H5Dget_space(d), t = md_h5_str_type();
    hsize_t coord = (hsize_t)unit, one = 1;
    H5Sselect_elements(fs, H5S_SELECT_SET, 1, &coord);
    hid_t ms = H5Screate_simple(1, &one, NULL);
    int rc = H5Dread(d, t, ms, fs, H5P_DEFAULT, text) >= 0
                 ? MD_OK
                 : md_error_set(err, "%s: cannot read %s[%lld]: " MD_H5_EDITED_HINT, r->path, regions, (long long)unit);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Tclose(t);
    H5Dclose(d);
    return rc;
}

/* The element count of piece pc (*elems), refused beyond UNIT_MAX_BYTES:
 * the counts lie inside the dataset's dims, which a file may declare huge. */
static int piece_elems(const md_reader *r, const md_piece *pc, md_h5type type, const char *regions, int64_t unit,
                       size_t *elems_out, md_error *err)
{
    size_t elems = 1, esize = type == MD_H5_STR ? sizeof(char *) : md_h5type_size(type);
    int too_big = 0;
    for (int i = 0; i < pc->rank; i++) elems = pc->count[i] ? elems : 0;
    for (int i = 0; elems && i < pc->rank; i++) {
        too_big |= elems > UNIT_MAX_BYTES / esize / (uint64_t)pc->count[i];
        if (!too_big) elems *= (size_t)pc->count[i];
    }
    if (too_big)
        return md_error_set(err, "%s: %s[%lld] names a piece of /%s/%s larger than one unit's result can be (%lld "
                            "bytes): " MD_H5_EDITED_HINT, r->path, regions, (long long)unit, r->exp, pc->path,
                            (long long)UNIT_MAX_BYTES);
    *elems_out = elems;
    return MD_OK;
}

/* Reads piece pc (elems elements of type) from the file and puts it into
 * out; strings packed NUL-separated as md_result_put takes them. */
static int put_piece(md_reader *r, const md_piece *pc, md_h5type type, size_t elems, md_result *out, md_error *err)
{
    int rc;
    hid_t mt = md_h5_mem_type(type);
    if (type == MD_H5_STR) {
        char **strs = calloc(elems, sizeof *strs);
        rc = strs ? reader_read(r, pc->path, pc->offset, pc->count, mt, strs, err) : md_error_set(err, "out of memory");
        size_t total = 0;
        for (size_t i = 0; rc == MD_OK && i < elems; i++) total += strlen(strs[i] ? strs[i] : "") + 1;
        char *packed = rc == MD_OK ? malloc(total) : NULL;
        size_t at = 0;
        for (size_t i = 0; packed && i < elems; i++) {
            size_t l = strlen(strs[i] ? strs[i] : "") + 1;
            memcpy(packed + at, strs[i] ? strs[i] : "", l);
            at += l;
        }
        if (rc == MD_OK)
            rc = packed ? md_result_put(out, pc->path, pc->rank, pc->offset, pc->count, packed, total, err)
                        : md_error_set(err, "out of memory");
        for (size_t i = 0; strs && i < elems; i++) H5free_memory(strs[i]);
        free(strs);
        free(packed);
    } else {
        size_t nbytes = elems * md_h5type_size(type);
        void *buf = malloc(nbytes ? nbytes : 1);
        rc = buf ? reader_read(r, pc->path, pc->offset, pc->count, mt, buf, err) : md_error_set(err, "out of memory");
        if (rc == MD_OK) rc = md_result_put(out, pc->path, pc->rank, pc->offset, pc->count, buf, nbytes, err);
        free(buf);
    }
    H5Tclose(mt);
    return rc;
}

int md_reader_unit(md_reader *r, int stage, int64_t unit, md_result *out, md_error *err)
{
    char path[512];
    snprintf(path, sizeof path, "/completion/%s/stage%d/regions", r->exp, stage);
    if (!md_h5_exists(r->file, path)) return md_error_set(err, "%s: no %s: " MD_H5_EDITED_HINT, r->path, path);
    char *text = NULL;
    int rc = read_regions_entry(r, path, unit, &text, err);
    md_result_reset(out);
    for (const char *s = text ? text : ""; rc == MD_OK && *s;) {
        md_piece pc;
        if (parse_region(&s, &pc) != MD_OK) {
            char shown[160]; /* the entry on one line, cut */
            snprintf(shown, sizeof shown, "%s", text);
            md_h5_one_line(shown);
            rc = md_error_set(err, "%s: %s[%lld]: malformed region '%s': " MD_H5_EDITED_HINT, r->path, path,
                              (long long)unit, shown);
            break;
        }
        hid_t ds = reader_dataset(r, pc.path, err);
        if (ds < 0) { rc = MD_ERR; break; }
        md_h5type type = MD_H5_F64;
        rc = piece_fits(r, ds, &pc, path, unit, err);
        if (rc == MD_OK && md_h5_dataset_type(ds, &type) != MD_OK)
            rc = md_error_set(err, "%s: /%s/%s has a type mechdiff does not write: " MD_H5_EDITED_HINT, r->path, r->exp,
                              pc.path);
        H5Dclose(ds);
        size_t elems = 0;
        if (rc != MD_OK || (rc = piece_elems(r, &pc, type, path, unit, &elems, err)) != MD_OK) break;
        rc = put_piece(r, &pc, type, elems, out, err);
    }
    if (text) H5free_memory(text);
    return rc;
}
