/* h5out.c — the results file (see include/mechdiff/h5out.h for the layout and
 * include/mechdiff/journal.h for why it is only replaced by rename). */
#include "mechdiff/h5out.h"
#include "mechdiff/provenance.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mechdiff/version.h"

typedef struct dset_cache {
    char path[MD_PATH_MAX + 160];
    hid_t id;
} dset_cache;

typedef struct region_rec {
    int64_t unit;
    char *text;                /* owned */
} region_rec;

typedef struct stage_cache {
    char exp[128];
    int stage;
    hid_t done_id, regions_id;
    uint8_t *done;             /* [n] (owned) */
    int64_t n;
    region_rec *regions;       /* pending region strings (owned) */
    int n_regions, cap_regions;
} stage_cache;

struct md_h5out {
    char path[4096];
    char tmp[4200];
    hid_t file;
    uint64_t generation;
    dset_cache *dsets;
    int n_dsets;
    stage_cache *stages;
    int n_stages;
};

struct md_reader {
    hid_t file;
    char exp[128];
};

/* ---- small HDF5 helpers ---------------------------------------------- */

static hid_t str_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

static int exists_path(hid_t loc, const char *path)
{
    char buf[MD_PATH_MAX + 256];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return 0; /* no object has a longer name (see MD_PATH_MAX) */
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (H5Lexists(loc, buf, H5P_DEFAULT) <= 0) return 0;
            if (c == '\0') return 1;
            *p = c;
        }
    }
}

static int attr_str(hid_t loc, const char *name, const char *value)
{
    if (H5Aexists(loc, name) > 0) H5Adelete(loc, name);
    hid_t t = str_type(), sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a >= 0 && H5Awrite(a, t, &value) >= 0 ? MD_OK : MD_ERR;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return rc;
}

static int attr_num(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, const void *value)
{
    if (H5Aexists(loc, name) > 0) H5Adelete(loc, name);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a >= 0 && H5Awrite(a, mem_type, value) >= 0 ? MD_OK : MD_ERR;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return rc;
}

static int attr_i64(hid_t loc, const char *name, int64_t v)
{
    return attr_num(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}

/* Reads a string attribute into a malloc'd copy (NULL when absent). */
static char *attr_read_str(hid_t loc, const char *name)
{
    if (H5Aexists(loc, name) <= 0) return NULL;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t ft = H5Aget_type(a);
    char *out = NULL;
    if (H5Tis_variable_str(ft) > 0) {
        hid_t t = str_type();
        char *v = NULL;
        if (H5Aread(a, t, &v) >= 0 && v) {
            out = strdup(v);
            H5free_memory(v);
        }
        H5Tclose(t);
    } else {
        size_t n = H5Tget_size(ft);
        out = calloc(n + 1, 1);
        if (out) H5Aread(a, ft, out);
    }
    H5Tclose(ft);
    H5Aclose(a);
    return out;
}

static int64_t attr_read_i64(hid_t loc, const char *name, int64_t def)
{
    if (H5Aexists(loc, name) <= 0) return def;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    int64_t v = def;
    H5Aread(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
    return v;
}

static hid_t group_open_or_create(hid_t loc, const char *path)
{
    if (exists_path(loc, path)) return H5Gopen2(loc, path, H5P_DEFAULT);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t g = H5Gcreate2(loc, path, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Pclose(lcpl);
    return g;
}

static hid_t file_type_of(md_h5type t)
{
    switch (t) {
    case MD_H5_F32: return H5Tcopy(H5T_IEEE_F32LE);
    case MD_H5_F64: return H5Tcopy(H5T_IEEE_F64LE);
    case MD_H5_I32: return H5Tcopy(H5T_STD_I32LE);
    case MD_H5_I64: return H5Tcopy(H5T_STD_I64LE);
    case MD_H5_U8: return H5Tcopy(H5T_STD_U8LE);
    case MD_H5_STR: return str_type();
    }
    return -1;
}

static hid_t mem_type_of(md_h5type t)
{
    switch (t) {
    case MD_H5_F32: return H5Tcopy(H5T_NATIVE_FLOAT);
    case MD_H5_F64: return H5Tcopy(H5T_NATIVE_DOUBLE);
    case MD_H5_I32: return H5Tcopy(H5T_NATIVE_INT32);
    case MD_H5_I64: return H5Tcopy(H5T_NATIVE_INT64);
    case MD_H5_U8: return H5Tcopy(H5T_NATIVE_UINT8);
    case MD_H5_STR: return str_type();
    }
    return -1;
}

/* The md_h5type of a dataset in a file. */
static int type_of_dataset(hid_t d, md_h5type *out)
{
    hid_t t = H5Dget_type(d);
    H5T_class_t c = H5Tget_class(t);
    size_t sz = H5Tget_size(t);
    int rc = MD_OK;
    if (c == H5T_FLOAT) *out = sz == 4 ? MD_H5_F32 : MD_H5_F64;
    else if (c == H5T_INTEGER) *out = sz == 1 ? MD_H5_U8 : sz == 4 ? MD_H5_I32 : MD_H5_I64;
    else if (c == H5T_STRING) *out = MD_H5_STR;
    else rc = MD_ERR;
    H5Tclose(t);
    return rc;
}

static double now_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void iso_time(double t, char *buf, size_t len)
{
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static hid_t fapl_unlocked(void)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    /* The file is only ever opened by one writer (rank 0) on a private .tmp,
     * and readers see renamed, closed files: no locks needed, and locks fail
     * on some parallel file systems. */
    H5Pset_file_locking(fapl, 0, 1);
    return fapl;
}

/* ---- info ------------------------------------------------------------ */

int md_h5out_info(const char *path, md_h5info *info, md_error *err)
{
    memset(info, 0, sizeof *info);
    info->part_index = -1;
    hid_t fapl = fapl_unlocked();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f < 0) return md_error_set(err, "%s: not a readable HDF5 file", path);
    if (!exists_path(f, "/provenance")) {
        H5Fclose(f);
        return md_error_set(err, "%s: no /provenance group: not a mechdiff results file", path);
    }
    hid_t g = H5Gopen2(f, "/provenance", H5P_DEFAULT);
    char *sha = attr_read_str(g, "job_sha256");
    snprintf(info->job_sha256, sizeof info->job_sha256, "%s", sha ? sha : "");
    free(sha);
    info->generation = (uint64_t)attr_read_i64(g, "generation", 0);
    info->part_index = (int)attr_read_i64(g, "part_index", -1);
    info->part_count = (int)attr_read_i64(g, "part_count", 0);
    info->finished = (int)attr_read_i64(g, "finished", 0);
    info->job_yaml = attr_read_str(g, "job_yaml");
    H5Gclose(g);
    H5Fclose(f);
    return MD_OK;
}

void md_h5out_info_free(md_h5info *info)
{
    free(info->job_yaml);
    info->job_yaml = NULL;
}

/* ---- snapshot -------------------------------------------------------- */

static int copy_file(const char *from, const char *to, md_error *err)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0) return md_error_set(err, "%s: cannot open: %s", from, strerror(errno));
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644); /* `to` was unlinked */
    if (out < 0) {
        close(in);
        return md_error_set(err, "%s: cannot create: %s", to, strerror(errno));
    }
    size_t cap = 4 << 20;
    char *buf = malloc(cap);
    int rc = buf ? MD_OK : md_error_set(err, "out of memory");
    while (rc == MD_OK) {
        ssize_t n = read(in, buf, cap);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) rc = md_error_set(err, "%s: read failed: %s", from, strerror(errno));
        if (n <= 0) break;
        for (ssize_t done = 0; done < n && rc == MD_OK;) {
            ssize_t w = write(out, buf + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) rc = md_error_set(err, "%s: write failed: %s", to, strerror(errno));
            else done += w;
        }
    }
    free(buf);
    close(in);
    close(out);
    return rc;
}

static int write_provenance(hid_t f, const md_provenance *prov)
{
    char when[64];
    iso_time(now_wall(), when, sizeof when);
    int rc = MD_OK;
    rc |= attr_str(f, "title", "mechdiff results (base vs post-trained LLM, Du et al. 2025)");
    rc |= attr_str(f, "mechdiff_version", MECHDIFF_VERSION);
    rc |= attr_str(f, "job_name", prov->job_name);
    rc |= attr_str(f, "job_sha256", prov->job_sha256);
    rc |= attr_str(f, "provenance", "see /provenance (run-dependent: times, host, ranks)");
    hid_t g = group_open_or_create(f, "/provenance");
    if (g < 0) return MD_ERR;
    rc |= attr_str(g, "job_yaml", prov->job_yaml);
    rc |= attr_str(g, "job_sha256", prov->job_sha256);
    rc |= attr_str(g, "job_sha256_covers",
                   "resolved job without runtime/output, model weight and config hashes, dataset hashes");
    rc |= attr_str(g, "mechdiff_version", MECHDIFF_VERSION);
    rc |= attr_str(g, "git_revision", MECHDIFF_GIT_REV);
    rc |= attr_str(g, "created", when);
    rc |= attr_i64(g, "generation", 0);
    rc |= attr_i64(g, "finished", 0);
    rc |= attr_i64(g, "part_index", prov->part_index);
    rc |= attr_i64(g, "part_count", prov->part_count);
    for (int i = 0; i < prov->n_models; i++) {
        const md_model_prov *m = &prov->models[i];
        char path[200];
        snprintf(path, sizeof path, "/provenance/models/%s", m->role);
        hid_t mg = group_open_or_create(f, path);
        rc |= attr_str(mg, "path", m->dir);
        rc |= attr_str(mg, "config_json", m->config_json ? m->config_json : "");
        size_t cap = 1;
        for (int k = 0; k < m->n_files; k++) cap += strlen(m->files[k]) + 70;
        char *list = calloc(cap, 1);
        for (int k = 0; list && k < m->n_files; k++) {
            strcat(list, m->sha256[k]);
            strcat(list, "  ");
            strcat(list, m->files[k]);
            strcat(list, "\n");
        }
        rc |= attr_str(mg, "weight_sha256", list ? list : "");
        rc |= attr_str(mg, "weight_sha256_format", "sha256sum -c format, file names relative to path");
        free(list);
        H5Gclose(mg);
    }
    for (int i = 0; i < prov->n_data; i++) {
        char path[200];
        snprintf(path, sizeof path, "/provenance/datasets/%s", prov->data[i].name);
        hid_t dg = group_open_or_create(f, path);
        rc |= attr_str(dg, "path", prov->data[i].path);
        rc |= attr_str(dg, "sha256", prov->data[i].sha256);
        H5Gclose(dg);
    }
    H5Gclose(g);
    return rc ? MD_ERR : MD_OK;
}

int md_h5out_begin(md_h5out **out, const char *path, const char *source, const md_provenance *prov,
                   md_error *err)
{
    *out = NULL;
    md_h5out *h = calloc(1, sizeof *h);
    if (!h) return md_error_set(err, "out of memory");
    h->file = -1;
    snprintf(h->path, sizeof h->path, "%s", path);
    snprintf(h->tmp, sizeof h->tmp, "%s.tmp", path);
    unlink(h->tmp);
    struct stat st;
    if (!source && stat(path, &st) == 0) source = path;
    hid_t fapl = fapl_unlocked();
    if (source) {
        if (copy_file(source, h->tmp, err) != MD_OK) goto fail;
        h->file = H5Fopen(h->tmp, H5F_ACC_RDWR, fapl);
        if (h->file < 0) {
            md_error_set(err, "%s: cannot open the copy of %s as HDF5", h->tmp, source);
            goto fail;
        }
        hid_t g = H5Gopen2(h->file, "/provenance", H5P_DEFAULT);
        if (g < 0) {
            md_error_set(err, "%s: no /provenance group: not a mechdiff results file", source);
            goto fail;
        }
        h->generation = (uint64_t)attr_read_i64(g, "generation", 0);
        H5Gclose(g);
    } else {
        h->file = H5Fcreate(h->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        if (h->file < 0) {
            md_error_set(err, "%s: cannot create HDF5 file (does the folder exist and is it writable?)", h->tmp);
            goto fail;
        }
        if (write_provenance(h->file, prov) != MD_OK) {
            md_error_set(err, "%s: cannot write provenance", h->tmp);
            goto fail;
        }
    }
    H5Pclose(fapl);
    *out = h;
    return MD_OK;
fail:
    H5Pclose(fapl);
    md_h5out_discard(h);
    return MD_ERR;
}

static hid_t cached_dataset(md_h5out *h, const char *full)
{
    for (int i = 0; i < h->n_dsets; i++)
        if (strcmp(h->dsets[i].path, full) == 0) return h->dsets[i].id;
    if (!exists_path(h->file, full)) return -1;
    hid_t id = H5Dopen2(h->file, full, H5P_DEFAULT);
    if (id < 0) return -1;
    dset_cache *grown = realloc(h->dsets, (size_t)(h->n_dsets + 1) * sizeof *grown);
    if (!grown) {
        H5Dclose(id);
        return -1;
    }
    h->dsets = grown;
    snprintf(h->dsets[h->n_dsets].path, sizeof h->dsets[0].path, "%s", full);
    h->dsets[h->n_dsets++].id = id;
    return id;
}

/* Attaches a dimension scale named `name` of length n next to dataset d. */
static void attach_scale(hid_t parent, hid_t d, unsigned dim, const char *name, int64_t n)
{
    char sname[128];
    snprintf(sname, sizeof sname, "%s", name);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (H5Lexists(parent, sname, H5P_DEFAULT) > 0) {
            hid_t s = H5Dopen2(parent, sname, H5P_DEFAULT);
            hid_t sp = H5Dget_space(s);
            hsize_t len = 0;
            int ok = H5DSis_scale(s) > 0 && H5Sget_simple_extent_ndims(sp) == 1 &&
                     H5Sget_simple_extent_dims(sp, &len, NULL) == 1 && (int64_t)len == n;
            H5Sclose(sp);
            if (ok && H5DSis_attached(d, s, dim) <= 0) H5DSattach_scale(d, s, dim);
            H5Dclose(s);
            if (ok) return;
            snprintf(sname, sizeof sname, "%s_%lld", name, (long long)n); /* clash: size-qualified name */
            continue;
        }
        hsize_t len = (hsize_t)n;
        hid_t sp = H5Screate_simple(1, &len, NULL);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        hsize_t ch = len < 65536 ? len : 65536;
        H5Pset_chunk(dcpl, 1, &ch);
        hid_t s = H5Dcreate2(parent, sname, H5T_STD_I64LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        int64_t *idx = malloc((size_t)n * sizeof *idx);
        for (int64_t i = 0; idx && i < n; i++) idx[i] = i;
        if (idx) H5Dwrite(s, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, idx);
        free(idx);
        H5DSset_scale(s, name);
        attr_str(s, "description", "index along this dimension");
        H5DSattach_scale(d, s, dim);
        H5Dclose(s);
        H5Pclose(dcpl);
        H5Sclose(sp);
        return;
    }
}

static int create_dataset(md_h5out *h, const char *full, const md_dset *ds, md_error *err)
{
    hsize_t dims[MD_MAX_DIMS], chunk[MD_MAX_DIMS];
    size_t esize = ds->type == MD_H5_STR ? 16 : md_h5type_size(ds->type), bytes = esize;
    for (int i = 0; i < ds->rank; i++) {
        dims[i] = (hsize_t)ds->dims[i];
        chunk[i] = (hsize_t)ds->chunk[i];
        bytes *= chunk[i];
    }
    /* Keep chunks at most ~4 MiB: halve the leading dimensions. */
    for (int i = 0; bytes > ((size_t)4 << 20) && i < ds->rank; i++)
        while (bytes > ((size_t)4 << 20) && chunk[i] > 1) {
            bytes /= chunk[i];
            chunk[i] = (chunk[i] + 1) / 2;
            bytes *= chunk[i];
        }
    hid_t ft = file_type_of(ds->type), sp = H5Screate_simple(ds->rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, ds->rank, chunk);
    if (ds->deflate > 0 && ds->type != MD_H5_STR && H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) {
        H5Pset_shuffle(dcpl);
        H5Pset_deflate(dcpl, (unsigned)ds->deflate);
    }
    if (ds->type == MD_H5_F32) {
        float nan = NAN;
        H5Pset_fill_value(dcpl, H5T_NATIVE_FLOAT, &nan); /* unwritten = NaN, visible in partial files */
    } else if (ds->type == MD_H5_F64) {
        double nan = NAN;
        H5Pset_fill_value(dcpl, H5T_NATIVE_DOUBLE, &nan);
    }
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t d = H5Dcreate2(h->file, full, ft, sp, lcpl, dcpl, H5P_DEFAULT);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Tclose(ft);
    if (d < 0) return md_error_set(err, "%s: cannot create dataset %s", h->tmp, full);
    attr_str(d, "units", ds->units);
    attr_str(d, "description", ds->description);
    char parent_path[MD_PATH_MAX + 160];
    snprintf(parent_path, sizeof parent_path, "%s", full);
    *strrchr(parent_path, '/') = '\0';
    hid_t parent = H5Gopen2(h->file, parent_path[0] ? parent_path : "/", H5P_DEFAULT);
    for (int i = 0; i < ds->rank; i++) {
        if (!ds->dim_names[i][0]) continue;
        H5DSset_label(d, (unsigned)i, ds->dim_names[i]);
        attach_scale(parent, d, (unsigned)i, ds->dim_names[i], ds->dims[i]);
    }
    H5Gclose(parent);
    H5Dclose(d);
    return MD_OK;
}

static stage_cache *get_stage(md_h5out *h, const char *exp, int stage, md_error *err)
{
    for (int i = 0; i < h->n_stages; i++)
        if (h->stages[i].stage == stage && strcmp(h->stages[i].exp, exp) == 0) return &h->stages[i];
    char path[1024];
    snprintf(path, sizeof path, "/completion/%s/stage%d", exp, stage);
    if (!exists_path(h->file, path)) {
        md_error_set(err, "%s: %s is not defined", h->tmp, path);
        return NULL;
    }
    stage_cache *grown = realloc(h->stages, (size_t)(h->n_stages + 1) * sizeof *grown);
    if (!grown) {
        md_error_set(err, "out of memory");
        return NULL;
    }
    h->stages = grown;
    stage_cache *s = &h->stages[h->n_stages];
    memset(s, 0, sizeof *s);
    snprintf(s->exp, sizeof s->exp, "%s", exp);
    s->stage = stage;
    char p2[1100];
    snprintf(p2, sizeof p2, "%s/done", path);
    s->done_id = H5Dopen2(h->file, p2, H5P_DEFAULT);
    snprintf(p2, sizeof p2, "%s/regions", path);
    s->regions_id = H5Dopen2(h->file, p2, H5P_DEFAULT);
    hid_t sp = H5Dget_space(s->done_id);
    hsize_t n = 0;
    H5Sget_simple_extent_dims(sp, &n, NULL);
    H5Sclose(sp);
    s->n = (int64_t)n;
    s->done = calloc(n ? n : 1, 1);
    if (!s->done || H5Dread(s->done_id, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->done) < 0) {
        free(s->done);
        md_error_set(err, "%s: cannot read %s/done", h->tmp, path);
        return NULL;
    }
    h->n_stages++;
    return s;
}

/* Writes one piece into /<exp>/<piece path>. Appends "path[o+c,...]" to region. */
static int write_piece(md_h5out *h, const char *exp, const md_piece *pc, char *region, size_t rlen,
                       md_error *err)
{
    char full[MD_PATH_MAX + 160];
    snprintf(full, sizeof full, "/%s/%s", exp, pc->path);
    hid_t d = cached_dataset(h, full);
    if (d < 0) return md_error_set(err, "%s: dataset %s does not exist", h->tmp, full);
    md_h5type type;
    if (type_of_dataset(d, &type) != MD_OK) return md_error_set(err, "%s: unsupported type", full);
    hsize_t off[MD_MAX_DIMS], cnt[MD_MAX_DIMS];
    size_t elems = 1;
    for (int i = 0; i < pc->rank; i++) {
        off[i] = (hsize_t)pc->offset[i];
        cnt[i] = (hsize_t)pc->count[i];
        elems *= cnt[i];
    }
    hid_t fs = H5Dget_space(d);
    if (H5Sget_simple_extent_ndims(fs) != pc->rank) {
        H5Sclose(fs);
        return md_error_set(err, "%s: rank mismatch", full);
    }
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL);
    hid_t ms = H5Screate_simple(pc->rank, cnt, NULL), mt = mem_type_of(type);
    herr_t st;
    if (type == MD_H5_STR) {
        const char **ptrs = malloc(elems * sizeof *ptrs);
        const char *s = pc->data;
        for (size_t i = 0; ptrs && i < elems; i++) {
            ptrs[i] = s;
            s += strlen(s) + 1;
        }
        st = ptrs ? H5Dwrite(d, mt, ms, fs, H5P_DEFAULT, ptrs) : -1;
        free(ptrs);
    } else {
        st = H5Dwrite(d, mt, ms, fs, H5P_DEFAULT, pc->data);
    }
    H5Tclose(mt);
    H5Sclose(ms);
    H5Sclose(fs);
    if (st < 0) return md_error_set(err, "%s: write to %s failed", h->tmp, full);
    if (region) {
        size_t used = strlen(region);
        used += (size_t)snprintf(region + used, rlen - used, "%s%s[", used ? ";" : "", pc->path);
        for (int i = 0; i < pc->rank && used < rlen; i++)
            used += (size_t)snprintf(region + used, rlen - used, "%s%lld+%lld", i ? "," : "",
                                     (long long)pc->offset[i], (long long)pc->count[i]);
        if (used < rlen) snprintf(region + used, rlen - used, "]");
    }
    return MD_OK;
}

int md_h5out_define(md_h5out *h, const char *exp_name, int exp_index, const char *kind, const md_plan *plan,
                    md_error *err)
{
    char path[512];
    snprintf(path, sizeof path, "/%s", exp_name);
    hid_t g = group_open_or_create(h->file, path);
    if (g < 0) return md_error_set(err, "%s: cannot create group %s", h->tmp, path);
    attr_str(g, "kind", kind);
    H5Gclose(g);
    for (int i = 0; i < plan->n_dsets; i++) {
        char full[MD_PATH_MAX + 160];
        snprintf(full, sizeof full, "/%s/%s", exp_name, plan->dsets[i].path);
        if (exists_path(h->file, full)) continue;
        if (create_dataset(h, full, &plan->dsets[i], err) != MD_OK) return MD_ERR;
    }
    for (int i = 0; i < plan->n_attrs; i++) {
        const md_attr_decl *a = &plan->attrs[i];
        char full[MD_PATH_MAX + 160];
        snprintf(full, sizeof full, "/%s%s%s", exp_name, a->path[0] ? "/" : "", a->path);
        hid_t o = H5Oopen(h->file, full, H5P_DEFAULT);
        if (o < 0) return md_error_set(err, "plan attribute '%s' on '%s', which does not exist", a->name, full);
        attr_str(o, a->name, a->value);
        H5Oclose(o);
    }
    snprintf(path, sizeof path, "/completion/%s/stage%d", exp_name, plan->stage);
    if (exists_path(h->file, path)) {
        hid_t sg = H5Gopen2(h->file, path, H5P_DEFAULT);
        int64_t n = attr_read_i64(sg, "n_units", -1);
        H5Gclose(sg);
        if (n != plan->n_units)
            return md_error_set(err, "%s: %s has %lld units, the plan now has %lld (a changed job? use --force-new)",
                                h->path, path, (long long)n, (long long)plan->n_units);
    } else {
        hid_t sg = group_open_or_create(h->file, path);
        if (sg < 0) return md_error_set(err, "%s: cannot create %s", h->tmp, path);
        attr_str(sg, "kind", kind);
        attr_i64(sg, "experiment_index", exp_index);
        attr_i64(sg, "stage", plan->stage);
        attr_i64(sg, "n_units", plan->n_units);
        hsize_t n = (hsize_t)plan->n_units, ch = n < 65536 ? n : 65536;
        hid_t sp = H5Screate_simple(1, &n, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_chunk(dcpl, 1, &ch);
        hid_t done = H5Dcreate2(sg, "done", H5T_STD_U8LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        attr_str(done, "description", "1 = this work unit's results are in the file");
        hid_t st = str_type();
        ch = n < 4096 ? n : 4096;
        H5Pset_chunk(dcpl, 1, &ch);
        hid_t reg = H5Dcreate2(sg, "regions", st, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        attr_str(reg, "description", "hyperslabs written by the unit: dataset[offset+count,...];...");
        H5Tclose(st);
        H5Dclose(done);
        H5Dclose(reg);
        H5Pclose(dcpl);
        H5Sclose(sp);
        H5Gclose(sg);
        if (done < 0 || reg < 0) return md_error_set(err, "%s: cannot create %s/done", h->tmp, path);
    }
    const void *bytes;
    size_t len, pos = 0;
    md_result *puts = (md_result *)&plan->puts;
    bytes = md_result_bytes(puts, &len);
    md_piece pc;
    int r;
    while (bytes && (r = md_result_next(bytes, len, &pos, &pc, err)) == 1)
        if (write_piece(h, exp_name, &pc, NULL, 0, err) != MD_OK) return MD_ERR;
    return bytes && r == MD_ERR ? MD_ERR : MD_OK;
}

int md_h5out_apply(md_h5out *h, const char *exp_name, int stage, int64_t unit, const void *result, size_t len,
                   md_error *err)
{
    stage_cache *s = get_stage(h, exp_name, stage, err);
    if (!s) return MD_ERR;
    if (unit < 0 || unit >= s->n)
        return md_error_set(err, "%s: unit %lld outside stage %d of %s (%lld units)", h->tmp, (long long)unit, stage,
                            exp_name, (long long)s->n);
    char region[4096] = "";
    size_t pos = 0;
    md_piece pc;
    int r;
    while ((r = md_result_next(result, len, &pos, &pc, err)) == 1)
        if (write_piece(h, exp_name, &pc, region, sizeof region, err) != MD_OK) return MD_ERR;
    if (r == MD_ERR) return MD_ERR;
    s->done[unit] = 1;
    if (s->n_regions == s->cap_regions) {
        int cap = s->cap_regions ? s->cap_regions * 2 : 256;
        region_rec *g = realloc(s->regions, (size_t)cap * sizeof *g);
        if (!g) return md_error_set(err, "out of memory");
        s->regions = g;
        s->cap_regions = cap;
    }
    s->regions[s->n_regions].unit = unit;
    s->regions[s->n_regions].text = strdup(region);
    if (!s->regions[s->n_regions].text) return md_error_set(err, "out of memory");
    s->n_regions++;
    return MD_OK;
}

const uint8_t *md_h5out_done(md_h5out *h, const char *exp_name, int stage, int64_t *n_units, md_error *err)
{
    *n_units = 0;
    char path[512];
    snprintf(path, sizeof path, "/completion/%s/stage%d", exp_name, stage);
    if (!exists_path(h->file, path)) return NULL;
    stage_cache *s = get_stage(h, exp_name, stage, err);
    if (!s) return NULL;
    *n_units = s->n;
    return s->done;
}

int md_h5out_set_part(md_h5out *h, int part_index, int part_count, md_error *err)
{
    hid_t g = H5Gopen2(h->file, "/provenance", H5P_DEFAULT);
    int rc = attr_i64(g, "part_index", part_index) | attr_i64(g, "part_count", part_count);
    H5Gclose(g);
    return rc ? md_error_set(err, "%s: cannot write part attributes", h->tmp) : MD_OK;
}

static int flush_stage(stage_cache *s, md_error *err)
{
    int rc = MD_OK;
    if (H5Dwrite(s->done_id, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->done) < 0)
        rc = md_error_set(err, "cannot write done flags of %s stage %d", s->exp, s->stage);
    if (rc == MD_OK && s->n_regions) {
        hsize_t *coords = malloc((size_t)s->n_regions * sizeof *coords);
        const char **texts = malloc((size_t)s->n_regions * sizeof *texts);
        if (!coords || !texts) {
            rc = md_error_set(err, "out of memory");
        } else {
            for (int i = 0; i < s->n_regions; i++) {
                coords[i] = (hsize_t)s->regions[i].unit;
                texts[i] = s->regions[i].text;
            }
            hsize_t n = (hsize_t)s->n_regions;
            hid_t fs = H5Dget_space(s->regions_id), ms = H5Screate_simple(1, &n, NULL), t = str_type();
            H5Sselect_elements(fs, H5S_SELECT_SET, n, coords);
            if (H5Dwrite(s->regions_id, t, ms, fs, H5P_DEFAULT, texts) < 0)
                rc = md_error_set(err, "cannot write regions of %s stage %d", s->exp, s->stage);
            H5Tclose(t);
            H5Sclose(ms);
            H5Sclose(fs);
        }
        free(coords);
        free(texts);
    }
    return rc;
}

static void close_caches(md_h5out *h)
{
    for (int i = 0; i < h->n_dsets; i++) H5Dclose(h->dsets[i].id);
    free(h->dsets);
    h->dsets = NULL;
    h->n_dsets = 0;
    for (int i = 0; i < h->n_stages; i++) {
        stage_cache *s = &h->stages[i];
        H5Dclose(s->done_id);
        H5Dclose(s->regions_id);
        free(s->done);
        for (int k = 0; k < s->n_regions; k++) free(s->regions[k].text);
        free(s->regions);
    }
    free(h->stages);
    h->stages = NULL;
    h->n_stages = 0;
}

static herr_t count_links(hid_t g, const char *name, const H5L_info_t *info, void *arg)
{
    (void)g;
    (void)name;
    (void)info;
    (*(int *)arg)++;
    return 0;
}

static int write_segment(md_h5out *h, md_segment *seg)
{
    hid_t segs = group_open_or_create(h->file, "/provenance/segments");
    if (segs < 0) return MD_ERR;
    if (seg->id < 0) {
        int n = 0;
        H5Literate(segs, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, count_links, &n);
        seg->id = n;
    }
    char name[32], t0[64], t1[64];
    snprintf(name, sizeof name, "%04d", seg->id);
    hid_t g = group_open_or_create(segs, name);
    iso_time(seg->start_time, t0, sizeof t0);
    iso_time(seg->end_time, t1, sizeof t1);
    int rc = attr_str(g, "start_time", t0) | attr_str(g, "end_time", t1) |
             attr_i64(g, "world_size", seg->world_size) | attr_str(g, "hostname", seg->hostname) |
             attr_str(g, "exit", seg->exit ? seg->exit : "") | attr_str(g, "git_revision", MECHDIFF_GIT_REV);
    if (seg->numerics) rc |= md_prov_write_numerics(g, seg->numerics);
    H5Gclose(g);
    H5Gclose(segs);
    hid_t p = H5Gopen2(h->file, "/provenance", H5P_DEFAULT);
    rc |= attr_str(p, "end_time", t1) | attr_i64(p, "world_size", seg->world_size) |
          attr_str(p, "hostname", seg->hostname) | attr_i64(p, "finished", seg->finished) |
          attr_i64(p, "generation", (int64_t)(h->generation + 1));
    if (H5Aexists(p, "start_time") <= 0) rc |= attr_str(p, "start_time", t0);
    H5Gclose(p);
    return rc ? MD_ERR : MD_OK;
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return MD_ERR;
    int rc = fsync(fd) == 0 ? MD_OK : MD_ERR;
    close(fd);
    return rc;
}

int md_h5out_commit(md_h5out *h, md_segment *seg, md_error *err)
{
    int rc = MD_OK;
    for (int i = 0; i < h->n_stages && rc == MD_OK; i++) rc = flush_stage(&h->stages[i], err);
    close_caches(h);
    if (rc == MD_OK && write_segment(h, seg) != MD_OK) rc = md_error_set(err, "%s: cannot write provenance", h->tmp);
    if (H5Fclose(h->file) < 0 && rc == MD_OK) rc = md_error_set(err, "%s: closing the HDF5 file failed", h->tmp);
    h->file = -1;
    if (rc == MD_OK && fsync_path(h->tmp) != MD_OK) rc = md_error_set(err, "%s: fsync failed", h->tmp);
    if (rc == MD_OK && rename(h->tmp, h->path) != 0)
        rc = md_error_set(err, "%s: rename to %s failed: %s", h->tmp, h->path, strerror(errno));
    if (rc == MD_OK) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", h->path);
        fsync_path(dirname(dir));
    }
    if (rc != MD_OK) unlink(h->tmp);
    free(h);
    return rc;
}

void md_h5out_discard(md_h5out *h)
{
    if (!h) return;
    close_caches(h);
    if (h->file >= 0) H5Fclose(h->file);
    unlink(h->tmp);
    free(h);
}

/* ---- reading --------------------------------------------------------- */

int md_reader_open(md_reader **out, const char *path, const char *exp_name, md_error *err)
{
    *out = NULL;
    md_reader *r = calloc(1, sizeof *r);
    if (!r) return md_error_set(err, "out of memory");
    hid_t fapl = fapl_unlocked();
    r->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (r->file < 0) {
        free(r);
        return md_error_set(err, "%s: cannot open results file", path);
    }
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
    if (!exists_path(r->file, full)) {
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
    if (!exists_path(r->file, path)) return MD_OK;
    hid_t d = H5Dopen2(r->file, path, H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hsize_t n = 0;
    H5Sget_simple_extent_dims(sp, &n, NULL);
    H5Sclose(sp);
    uint8_t *buf = calloc(n ? n : 1, 1);
    int rc = buf && H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0
                 ? MD_OK
                 : md_error_set(err, "cannot read %s", path);
    H5Dclose(d);
    if (rc != MD_OK) {
        free(buf);
        return rc;
    }
    *done = buf;
    *n_units = (int64_t)n;
    return MD_OK;
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
    if (!exists_path(r->file, path)) return md_error_set(err, "no %s", path);
    hid_t d = H5Dopen2(r->file, path, H5P_DEFAULT);
    hid_t fs = H5Dget_space(d), t = str_type();
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
        type_of_dataset(ds, &type);
        H5Dclose(ds);
        size_t elems = 1;
        for (int i = 0; i < pc.rank; i++) elems *= (size_t)pc.count[i];
        hid_t mt = mem_type_of(type);
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
