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

/* Reads a string attribute into a malloc'd copy (NULL when absent). */
char *md_h5_attr_read_str(hid_t loc, const char *name)
{
    if (H5Aexists(loc, name) <= 0) return NULL;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
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
        if (out) H5Aread(a, ft, out);
    }
    H5Tclose(ft);
    H5Aclose(a);
    return out;
}

int64_t md_h5_attr_read_i64(hid_t loc, const char *name, int64_t def)
{
    if (H5Aexists(loc, name) <= 0) return def;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    int64_t v = def;
    H5Aread(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
    return v;
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
    if (c == H5T_FLOAT) *out = sz == 4 ? MD_H5_F32 : MD_H5_F64;
    else if (c == H5T_INTEGER) *out = sz == 1 ? MD_H5_U8 : sz == 4 ? MD_H5_I32 : MD_H5_I64;
    else if (c == H5T_STRING) *out = MD_H5_STR;
    else rc = MD_ERR;
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

uint8_t *md_h5_read_flags(hid_t loc, const char *path, int64_t *n)
{
    *n = 0;
    hid_t d = H5Dopen2(loc, path, H5P_DEFAULT);
    if (d < 0) return NULL;
    hid_t sp = H5Dget_space(d);
    hsize_t len = 0;
    H5Sget_simple_extent_dims(sp, &len, NULL);
    H5Sclose(sp);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf && H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        free(buf);
        buf = NULL;
    }
    H5Dclose(d);
    if (buf) *n = (int64_t)len;
    return buf;
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
