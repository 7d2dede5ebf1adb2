/* h5util.c — small HDF5 helpers of the results file (see h5util.h). */
#include "runner/h5util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

hid_t md_h5_str_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

int md_h5_exists(hid_t loc, const char *path)
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

int md_h5_attr_str(hid_t loc, const char *name, const char *value)
{
    if (H5Aexists(loc, name) > 0) H5Adelete(loc, name);
    hid_t t = md_h5_str_type(), sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a >= 0 && H5Awrite(a, t, &value) >= 0 ? MD_OK : MD_ERR;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return rc;
}

int md_h5_attr_num(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, const void *value)
{
    if (H5Aexists(loc, name) > 0) H5Adelete(loc, name);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a >= 0 && H5Awrite(a, mem_type, value) >= 0 ? MD_OK : MD_ERR;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return rc;
}

int md_h5_attr_i64(hid_t loc, const char *name, int64_t v)
{
    return md_h5_attr_num(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}

/* The class of attribute a's values, and their number in *n. */
static H5T_class_t attr_class(hid_t a, hssize_t *n)
{
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    H5T_class_t c = H5Tget_class(t);
    *n = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    H5Tclose(t);
    return c;
}

/* The class of attribute a when it holds one value (scalar, or one element),
 * else H5T_NO_CLASS. */
static H5T_class_t attr_single_class(hid_t a)
{
    hssize_t n;
    H5T_class_t c = attr_class(a, &n);
    return n == 1 ? c : H5T_NO_CLASS;
}

/* A type class in messages about edited files. */
static const char *class_name(H5T_class_t c)
{
    return c == H5T_INTEGER ? "integer" : c == H5T_FLOAT ? "float" : c == H5T_STRING ? "string" : "other type";
}

int md_h5_attr_check(hid_t loc, const char *name, H5T_class_t want, char *what, size_t len)
{
    if (H5Aexists(loc, name) <= 0) return 0;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) {
        snprintf(what, len, "an attribute that cannot be opened");
        return -1;
    }
    hssize_t n;
    H5T_class_t c = attr_class(a, &n);
    H5Aclose(a);
    if (c == want && n == 1) return 1;
    snprintf(what, len, "%lld value%s of class %s", (long long)n, n == 1 ? "" : "s",
             c == H5T_INTEGER || c == H5T_FLOAT || c == H5T_STRING ? class_name(c) : "other");
    return -1;
}

char *md_h5_attr_read_str(hid_t loc, const char *name)
{
    if (H5Aexists(loc, name) <= 0) return NULL;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return NULL;
    if (attr_single_class(a) != H5T_STRING) {
        H5Aclose(a);
        return NULL;
    }
    hid_t ft = H5Aget_type(a);
    char *out = NULL;
    if (H5Tis_variable_str(ft) > 0) {
        hid_t t = md_h5_str_type();
        char *v = NULL;
        if (H5Aread(a, t, &v) >= 0 && v) {
            out = strdup(v);
            H5free_memory(v);
        }
        H5Tclose(t);
    } else {
        size_t n = H5Tget_size(ft);
        out = calloc(n + 1, 1);
        if (out && H5Aread(a, ft, out) < 0) {
            free(out);
            out = NULL;
        }
    }
    H5Tclose(ft);
    H5Aclose(a);
    return out;
}

int64_t md_h5_attr_read_i64(hid_t loc, const char *name, int64_t def)
{
    if (H5Aexists(loc, name) <= 0) return def;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return def;
    int64_t v = def;
    if (attr_single_class(a) != H5T_INTEGER || H5Aread(a, H5T_NATIVE_INT64, &v) < 0) v = def;
    H5Aclose(a);
    return v;
}

int md_h5_is_scale(hid_t d)
{
    char *cls = md_h5_attr_read_str(d, "CLASS");
    int yes = cls && strcmp(cls, "DIMENSION_SCALE") == 0;
    free(cls);
    return yes;
}

void md_h5_one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = '?';
}

int md_h5_parse_stage(const char *name)
{
    for (int k = 0; k < MD_KIND_MAX_STAGES; k++) { /* only the names the writer gives: "stage%d" */
        char want[16];
        snprintf(want, sizeof want, "stage%d", k);
        if (strcmp(name, want) == 0) return k;
    }
    return -1;
}

hid_t md_h5_group_open_or_create(hid_t loc, const char *path)
{
    if (md_h5_exists(loc, path)) return H5Gopen2(loc, path, H5P_DEFAULT);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t g = H5Gcreate2(loc, path, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Pclose(lcpl);
    return g;
}

hid_t md_h5_file_type(md_h5type t)
{
    switch (t) {
    case MD_H5_F32: return H5Tcopy(H5T_IEEE_F32LE);
    case MD_H5_F64: return H5Tcopy(H5T_IEEE_F64LE);
    case MD_H5_I32: return H5Tcopy(H5T_STD_I32LE);
    case MD_H5_I64: return H5Tcopy(H5T_STD_I64LE);
    case MD_H5_U8: return H5Tcopy(H5T_STD_U8LE);
    case MD_H5_STR: return md_h5_str_type();
    }
    return -1;
}

hid_t md_h5_mem_type(md_h5type t)
{
    switch (t) {
    case MD_H5_F32: return H5Tcopy(H5T_NATIVE_FLOAT);
    case MD_H5_F64: return H5Tcopy(H5T_NATIVE_DOUBLE);
    case MD_H5_I32: return H5Tcopy(H5T_NATIVE_INT32);
    case MD_H5_I64: return H5Tcopy(H5T_NATIVE_INT64);
    case MD_H5_U8: return H5Tcopy(H5T_NATIVE_UINT8);
    case MD_H5_STR: return md_h5_str_type();
    }
    return -1;
}

/* The md_h5type of a dataset in a file. */
int md_h5_dataset_type(hid_t d, md_h5type *out)
{
    hid_t t = H5Dget_type(d);
    H5T_class_t c = H5Tget_class(t);
    size_t sz = H5Tget_size(t);
    int rc = MD_OK;
    if (c == H5T_FLOAT && (sz == 4 || sz == 8)) *out = sz == 4 ? MD_H5_F32 : MD_H5_F64;
    else if (c == H5T_INTEGER && (sz == 1 || sz == 4 || sz == 8)) *out = sz == 1 ? MD_H5_U8 : sz == 4 ? MD_H5_I32 : MD_H5_I64;
    else if (c == H5T_STRING) *out = MD_H5_STR;
    else rc = MD_ERR; /* not a type mechdiff writes (float16, int16, compound...) */
    H5Tclose(t);
    return rc;
}

double md_h5_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void md_h5_iso_time(double t, char *buf, size_t len)
{
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

uint8_t *md_h5_read_flags(hid_t loc, const char *path, int64_t *n, md_error *err)
{
    *n = 0;
    hid_t d = H5Dopen2(loc, path, H5P_DEFAULT);
    if (d < 0) {
        md_error_set(err, "%s cannot be opened", path);
        return NULL;
    }
    hid_t sp = H5Dget_space(d), t = H5Dget_type(d);
    int rank = H5Sget_simple_extent_ndims(sp);
    H5T_class_t c = H5Tget_class(t);
    hsize_t len = 0;
    if (rank == 1) H5Sget_simple_extent_dims(sp, &len, NULL);
    H5Tclose(t);
    H5Sclose(sp);
    uint8_t *buf = NULL;
    if (rank != 1 || c != H5T_INTEGER) {
        md_error_set(err, "%s is not a 1-D integer dataset (rank %d, %s): " MD_H5_EDITED_HINT,
                     path, rank, class_name(c));
    } else if (len > (hsize_t)MD_PLAN_MAX_UNITS) { /* before allocating what a hostile file declares */
        md_error_set(err, "%s holds %llu flags, more than the %lld units a stage can have: " MD_H5_EDITED_HINT, path,
                     (unsigned long long)len, (long long)MD_PLAN_MAX_UNITS);
    } else if (!(buf = malloc(len ? len : 1))) {
        md_error_set(err, "out of memory reading %s", path);
    } else if (H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        md_error_set(err, "%s cannot be read", path);
        free(buf);
        buf = NULL;
    }
    for (hsize_t i = 0; buf && i < len; i++)
        if (buf[i] > 1) {
            md_error_set(err, "%s holds %u at unit %llu, not 0 or 1: " MD_H5_EDITED_HINT, path, (unsigned)buf[i],
                         (unsigned long long)i);
            free(buf);
            buf = NULL;
        }
    H5Dclose(d);
    if (buf) *n = (int64_t)len;
    return buf;
}

hid_t md_h5_open_regions(hid_t file, const char *path, int64_t n, md_error *err)
{
    hid_t d = md_h5_exists(file, path) ? H5Dopen2(file, path, H5P_DEFAULT) : -1;
    hid_t sp = d >= 0 ? H5Dget_space(d) : -1, t = d >= 0 ? H5Dget_type(d) : -1;
    hsize_t len = 0;
    int ok = sp >= 0 && t >= 0 && H5Sget_simple_extent_ndims(sp) == 1 && H5Tget_class(t) == H5T_STRING &&
             H5Sget_simple_extent_dims(sp, &len, NULL) == 1 && (int64_t)len == n;
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    if (ok) return d;
    if (d >= 0) H5Dclose(d);
    md_error_set(err, "%s is missing or not %lld strings (one per done flag): " MD_H5_EDITED_HINT, path, (long long)n);
    return -1;
}

/* "[a,b,c] of type" into buf. */
static void shape_text(char *buf, size_t len, int rank, const int64_t *dims, const char *type)
{
    size_t at = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < rank && at < len; i++) at += (size_t)snprintf(buf + at, len - at, "%s%lld", i ? "," : "", (long long)dims[i]);
    if (at < len) snprintf(buf + at, len - at, "] of %s", type);
}

int md_h5_dataset_shape(hid_t file, const char *full, int *rank, int64_t dims[MD_MAX_DIMS], md_h5type *type)
{
    hid_t d = md_h5_exists(file, full) ? H5Dopen2(file, full, H5P_DEFAULT) : -1;
    if (d < 0) return -1;
    hid_t sp = H5Dget_space(d);
    hsize_t h[MD_MAX_DIMS] = {0};
    *rank = H5Sget_simple_extent_ndims(sp);
    int got = *rank >= 0 && *rank <= MD_MAX_DIMS && H5Sget_simple_extent_dims(sp, h, NULL) == *rank ? 1 : -1;
    H5Sclose(sp);
    for (int i = 0; got == 1 && i < *rank; i++) dims[i] = (int64_t)h[i];
    if (got == 1 && md_h5_dataset_type(d, type) != MD_OK) got = 0;
    H5Dclose(d);
    return got;
}

int md_h5_check_dataset(hid_t file, const char *full, const md_dset *ds, const char *exp, md_error *err)
{
    if (!md_h5_exists(file, full)) {
        char path[MD_PATH_MAX + 64];
        snprintf(path, sizeof path, "/completion/%s/stage%d/done", exp, ds->stage);
        int64_t n = 0, any = 0;
        uint8_t *done = md_h5_exists(file, path) ? md_h5_read_flags(file, path, &n, err) : NULL;
        for (int64_t u = 0; done && u < n; u++) any |= done[u];
        free(done);
        return any ? md_error_set(err, "dataset %s is missing, but %s marks units done: " MD_H5_EDITED_HINT, full, path)
                   : MD_OK;
    }
    int rank;
    int64_t dims[MD_MAX_DIMS] = {0};
    md_h5type type;
    int got = md_h5_dataset_shape(file, full, &rank, dims, &type);
    if (got < 0) return md_error_set(err, "%s is not a dataset of at most %d dimensions: " MD_H5_EDITED_HINT, full,
                                     MD_MAX_DIMS);
    int same = got == 1 && type == ds->type && rank == ds->rank;
    for (int i = 0; same && i < rank; i++) same = dims[i] == ds->dims[i];
    if (same) return MD_OK;
    char has[256], want[256];
    shape_text(has, sizeof has, rank, dims, got == 1 ? md_h5type_name(type) : "another type");
    shape_text(want, sizeof want, ds->rank, ds->dims, md_h5type_name(ds->type));
    return md_error_set(err, "dataset %s is %s, the job declares %s: " MD_H5_EDITED_HINT, full, has, want);
}

hid_t md_h5_fapl_unlocked(void)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    /* The file is only ever opened by one writer (rank 0) on a private .tmp,
     * and readers see renamed, closed files: no locks needed, and locks fail
     * on some parallel file systems. */
    H5Pset_file_locking(fapl, 0, 1);
    return fapl;
}

int md_h5_read_blocks(hid_t d, hid_t mem_type, size_t esize, size_t block_bytes, md_h5_block_fn fn, void *arg)
{
    hid_t fs = H5Dget_space(d);
    int rank = fs >= 0 ? H5Sget_simple_extent_ndims(fs) : -1;
    hsize_t dims[MD_MAX_DIMS] = {0}, row = 1;
    if (rank < 0 || rank > MD_MAX_DIMS || H5Sget_simple_extent_dims(fs, dims, NULL) < 0) {
        if (fs >= 0) H5Sclose(fs);
        return -1;
    }
    for (int k = 1; k < rank; k++) row *= dims[k];
    hsize_t n0 = rank ? dims[0] : 1, block = row > 0 ? block_bytes / (row * esize) : n0;
    if (block < 1) block = 1;
    if (block > n0) block = n0;
    void *buf = calloc((size_t)(block * row > 0 ? block * row : 1), esize);
    int rc = buf ? 0 : -1, vlen = H5Tis_variable_str(mem_type) > 0;
    for (hsize_t r0 = 0; rc == 0 && row > 0 && r0 < n0; r0 += block) {
        hsize_t off[MD_MAX_DIMS] = {0}, cnt[MD_MAX_DIMS], one = 1;
        for (int k = 0; k < rank; k++) cnt[k] = k ? dims[k] : n0 - r0 < block ? n0 - r0 : block;
        off[0] = r0;
        if (rank && H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL) < 0) {
            rc = -1;
            break;
        }
        hid_t ms = H5Screate_simple(rank ? rank : 1, rank ? cnt : &one, NULL);
        hsize_t n = (rank ? cnt[0] : 1) * row;
        if (ms < 0 || H5Dread(d, mem_type, ms, fs, H5P_DEFAULT, buf) < 0) rc = -1;
        else {
            rc = fn(buf, (int64_t)(r0 * row), (int64_t)n, arg);
            if (vlen) H5Dvlen_reclaim(mem_type, ms, H5P_DEFAULT, buf);
        }
        if (ms >= 0) H5Sclose(ms);
    }
    free(buf);
    H5Sclose(fs);
    return rc;
}
