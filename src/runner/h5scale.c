/* h5scale.c — dimension scales of the results file: string labels of
 * category axes, values of numeric axes, 0..n-1 otherwise (see h5scale.h). */
#include "runner/h5scale.h"

#include <hdf5_hl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/h5util.h"

/* The integers a numeric scale holds (malloc'd): the axis values or 0..n-1. */
static int64_t *scale_values(int64_t n, const md_axis *axis)
{
    int64_t *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; v && i < n; i++) v[i] = axis && axis->values ? axis->values[i] : i;
    return v;
}

/* 1 when the string scale s holds exactly the labels of axis. */
static int same_labels(hid_t s, int64_t n, const md_axis *axis)
{
    char **got = calloc((size_t)n, sizeof *got);
    hid_t t = md_h5_str_type();
    int same = got && H5Dread(s, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, got) >= 0;
    for (int64_t i = 0; same && i < n; i++) same = got[i] && !strcmp(got[i], axis->labels[i]);
    if (got) {
        hid_t sp = H5Dget_space(s);
        H5Dvlen_reclaim(t, sp, H5P_DEFAULT, got); /* frees the strings HDF5 allocated */
        H5Sclose(sp);
    }
    H5Tclose(t);
    free(got);
    return same;
}

/* 1 when the integer scale s holds exactly the values of axis (or 0..n-1). */
static int same_values(hid_t s, int64_t n, const md_axis *axis)
{
    int64_t *want = scale_values(n, axis), *got = malloc((size_t)n * sizeof *got);
    int same = want && got && H5Dread(s, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, got) >= 0 &&
               !memcmp(want, got, (size_t)n * sizeof *got);
    free(want);
    free(got);
    return same;
}

/* 1 when the existing dataset s is a scale equal to what axis asks for. */
static int scale_equal(hid_t s, int64_t n, const md_axis *axis)
{
    hid_t sp = H5Dget_space(s), ft = H5Dget_type(s);
    hsize_t len = 0;
    int ok = H5DSis_scale(s) > 0 && H5Sget_simple_extent_ndims(sp) == 1 &&
             H5Sget_simple_extent_dims(sp, &len, NULL) == 1 && (int64_t)len == n;
    int is_str = H5Tget_class(ft) == H5T_STRING, want_str = axis && axis->labels;
    H5Tclose(ft);
    H5Sclose(sp);
    if (!ok || is_str != want_str) return 0;
    return want_str ? same_labels(s, n, axis) : same_values(s, n, axis);
}

/* Creates the scale dataset sname in parent (labels, values or 0..n-1). */
static hid_t scale_create(hid_t parent, const char *sname, const char *dim_name, int64_t n, const md_axis *axis)
{
    hsize_t len = (hsize_t)n, ch = len < 65536 ? len : 65536;
    int str = axis && axis->labels;
    hid_t sp = H5Screate_simple(1, &len, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t ft = str ? md_h5_str_type() : H5Tcopy(H5T_STD_I64LE);
    H5Pset_chunk(dcpl, 1, &ch);
    hid_t s = H5Dcreate2(parent, sname, ft, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int ok = s >= 0;
    if (ok && str) {
        ok = H5Dwrite(s, ft, H5S_ALL, H5S_ALL, H5P_DEFAULT, axis->labels) >= 0;
    } else if (ok) {
        int64_t *v = scale_values(n, axis);
        ok = v && H5Dwrite(s, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
        free(v);
    }
    ok = ok && H5DSset_scale(s, dim_name) >= 0 &&
         md_h5_attr_str(s, "description", axis ? axis->description : "index along this dimension") == MD_OK;
    H5Tclose(ft);
    H5Pclose(dcpl);
    H5Sclose(sp);
    if (!ok && s >= 0) {
        H5Dclose(s);
        s = -1;
    }
    return s;
}

int md_h5scale_attach(hid_t parent, hid_t d, unsigned dim, const char *name, int64_t n, const md_axis *axis)
{
    char sname[128];
    snprintf(sname, sizeof sname, "%s", name);
    for (int attempt = 0; attempt < 16; attempt++) {
        if (attempt == 1) snprintf(sname, sizeof sname, "%s_%lld", name, (long long)n);
        if (attempt > 1) snprintf(sname, sizeof sname, "%s_%lld_%d", name, (long long)n, attempt);
        if (H5Lexists(parent, sname, H5P_DEFAULT) > 0) {
            hid_t s = H5Dopen2(parent, sname, H5P_DEFAULT);
            int ok = s >= 0 && scale_equal(s, n, axis);
            if (ok) ok = H5DSattach_scale(d, s, dim) >= 0; /* d is new: not attached yet */
            if (s >= 0) H5Dclose(s);
            if (ok) return MD_OK;
            continue; /* a different scale of that name: try the next name */
        }
        hid_t s = scale_create(parent, sname, name, n, axis);
        if (s < 0) return MD_ERR;
        int ok = H5DSattach_scale(d, s, dim) >= 0;
        H5Dclose(s);
        return ok ? MD_OK : MD_ERR;
    }
    return MD_ERR;
}
