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
#include "runner/h5util.h"

struct md_reader {
    hid_t file;
    char exp[128];
};

/* ---- info ------------------------------------------------------------ */

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
    info->layout = (int)md_h5_attr_read_i64(f, "layout_version", 1);
    hid_t g = H5Gopen2(f, "/provenance", H5P_DEFAULT);
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
    *out = r;
    return MD_OK;
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
        md_error_set(err, "results file has no dataset %s", full);
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
    if (rank > MD_MAX_DIMS) rank = MD_MAX_DIMS;
    H5Sget_simple_extent_dims(sp, h, NULL);
    for (int i = 0; i < rank; i++) dims[i] = (int64_t)h[i];
    H5Sclose(sp);
    H5Dclose(d);
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
    for (int i = 0; i < rank && i < MD_MAX_DIMS; i++) {
        off[i] = (hsize_t)offset[i];
        cnt[i] = (hsize_t)count[i];
    }
    int rc = MD_OK;
    if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL) < 0 || H5Sselect_valid(fs) <= 0) {
        rc = md_error_set(err, "read of %s/%s: hyperslab outside the dataset", r->exp, path);
    } else {
        hid_t ms = H5Screate_simple(rank, cnt, NULL);
        if (H5Dread(d, mt, ms, fs, H5P_DEFAULT, out) < 0) rc = md_error_set(err, "read of %s/%s failed", r->exp, path);
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
    *done = md_h5_read_flags(r->file, path, n_units);
    return *done ? MD_OK : md_error_set(err, "cannot read %s", path);
}

/* ---- stages (mechdiff status) ---------------------------------------- */

typedef struct stage_list {
    md_h5stage *v;
    int n, cap;
    const char *exp; /* the experiment group being listed */
} stage_list;

/* One /completion/<exp>/stage<s> into the list (a group without done flags
 * is skipped). */
static herr_t list_stage(hid_t exp, const char *name, const H5L_info_t *info, void *arg)
{
    (void)info;
    stage_list *l = arg;
    char path[300];
    snprintf(path, sizeof path, "%s/done", name);
    if (strncmp(name, "stage", 5) != 0 || !md_h5_exists(exp, path)) return 0;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        md_h5stage *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return -1;
        l->v = v, l->cap = cap;
    }
    md_h5stage *st = &l->v[l->n];
    *st = (md_h5stage){.stage = atoi(name + 5), .exp_index = -1};
    snprintf(st->exp, sizeof st->exp, "%s", l->exp);
    if (!(st->done = md_h5_read_flags(exp, path, &st->n_units))) return -1;
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
    stage_list l = {0};
    herr_t rc = 0;
    if (md_h5_exists(f, "/completion")) {
        hid_t g = H5Gopen2(f, "/completion", H5P_DEFAULT);
        rc = g < 0 ? -1 : H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, list_experiment, &l);
        if (g >= 0) H5Gclose(g);
    }
    H5Fclose(f);
    if (rc < 0) {
        md_h5out_free_stages(l.v, l.n);
        return md_error_set(err, "%s: cannot read /completion (out of memory or a damaged file)", path);
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

/* Parses "path[o+c,o+c]" at *s; advances past it and a following ';'. */
static int parse_region(const char **s, md_piece *pc)
{
    const char *br = strchr(*s, '[');
    if (!br || br == *s || (size_t)(br - *s) >= MD_PATH_MAX) return MD_ERR;
    memcpy(pc->path, *s, (size_t)(br - *s));
    pc->path[br - *s] = '\0';
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

int md_reader_unit(md_reader *r, int stage, int64_t unit, md_result *out, md_error *err)
{
    char path[512];
    snprintf(path, sizeof path, "/completion/%s/stage%d/regions", r->exp, stage);
    if (!md_h5_exists(r->file, path)) return md_error_set(err, "no %s", path);
    hid_t d = H5Dopen2(r->file, path, H5P_DEFAULT);
    hid_t fs = H5Dget_space(d), t = md_h5_str_type();
    hsize_t coord = (hsize_t)unit, one = 1;
    H5Sselect_elements(fs, H5S_SELECT_SET, 1, &coord);
    hid_t ms = H5Screate_simple(1, &one, NULL);
    char *text = NULL;
    int rc = H5Dread(d, t, ms, fs, H5P_DEFAULT, &text) >= 0 ? MD_OK : md_error_set(err, "cannot read %s", path);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Tclose(t);
    H5Dclose(d);
    md_result_reset(out);
    for (const char *s = text ? text : ""; rc == MD_OK && *s;) {
        md_piece pc;
        if (parse_region(&s, &pc) != MD_OK) {
            rc = md_error_set(err, "%s[%lld]: malformed region '%s'", path, (long long)unit, text);
            break;
        }
        hid_t ds = reader_dataset(r, pc.path, err);
        if (ds < 0) { rc = MD_ERR; break; }
        md_h5type type = MD_H5_F64;
        md_h5_dataset_type(ds, &type);
        H5Dclose(ds);
        size_t elems = 1;
        for (int i = 0; i < pc.rank; i++) elems *= (size_t)pc.count[i];
        hid_t mt = md_h5_mem_type(type);
        if (type == MD_H5_STR) {
            char **strs = calloc(elems, sizeof *strs);
            rc = strs ? reader_read(r, pc.path, pc.offset, pc.count, mt, strs, err) : md_error_set(err, "out of memory");
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
                rc = packed ? md_result_put(out, pc.path, pc.rank, pc.offset, pc.count, packed, total, err)
                            : md_error_set(err, "out of memory");
            for (size_t i = 0; strs && i < elems; i++) H5free_memory(strs[i]);
            free(strs);
            free(packed);
        } else {
            size_t nbytes = elems * md_h5type_size(type);
            void *buf = malloc(nbytes ? nbytes : 1);
            rc = buf ? reader_read(r, pc.path, pc.offset, pc.count, mt, buf, err) : md_error_set(err, "out of memory");
            if (rc == MD_OK) rc = md_result_put(out, pc.path, pc.rank, pc.offset, pc.count, buf, nbytes, err);
            free(buf);
        }
        H5Tclose(mt);
    }
    if (text) H5free_memory(text);
    return rc;
}
