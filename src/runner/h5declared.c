/* h5declared.c — the record of a stage's declared datasets (h5declared.h;
 * md_h5out_set_declared of include/mechdiff/h5out.h). */
#include "runner/h5declared.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/error.h"
#include "mechdiff/h5out.h"
#include "runner/h5out_int.h"
#include "runner/h5util.h"

int md_h5declared_write_names(hid_t sg, const char *const *names, int n_names)
{
    int rc = MD_ERR;
    hid_t t = -1, sp = -1, a = -1;
    hsize_t n = (hsize_t)n_names;
    if (H5Aexists(sg, MD_H5DECLARED_ATTR) > 0 && H5Adelete(sg, MD_H5DECLARED_ATTR) < 0) goto done;
    if ((t = md_h5_str_type()) < 0 || (sp = H5Screate_simple(1, &n, NULL)) < 0) goto done;
    if ((a = H5Acreate2(sg, MD_H5DECLARED_ATTR, t, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0) goto done;
    rc = H5Awrite(a, t, names) >= 0 ? MD_OK : MD_ERR;
done:
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    return rc;
}

int md_h5declared_write_list(hid_t sg, const md_plan *plan)
{
    const char **names = malloc((size_t)(plan->n_dsets + 1) * sizeof *names);
    if (!names) return MD_ERR;
    for (int i = 0; i < plan->n_dsets; i++) names[i] = plan->dsets[i].path;
    int rc = md_h5declared_write_names(sg, names, plan->n_dsets);
    free(names);
    return rc;
}

int md_h5out_set_declared(md_h5out *h, const char *exp_name, int stage, char *const *names, int n, md_error *err)
{
    char path[512];
    snprintf(path, sizeof path, "/completion/%s/stage%d", exp_name, stage);
    hid_t sg = md_h5_exists(h->file, path) ? H5Gopen2(h->file, path, H5P_DEFAULT) : -1;
    int rc = sg >= 0 ? md_h5declared_write_names(sg, (const char *const *)names, n) : MD_ERR;
    if (sg >= 0) H5Gclose(sg);
    if (rc != MD_OK)
        return md_error_set(err, "%s: cannot write the attribute %s of %s (is its file system full or read-only? "
                                 "free space and run the same command again: finished units are kept)",
                            h->tmp, MD_H5DECLARED_ATTR, path);
    return MD_OK;
}

void md_h5out_free_declared(char **names, int n)
{
    md_h5declared_free_list(names, n);
}

void md_h5declared_free_list(char **names, int n)
{
    for (int i = 0; names && i < n; i++) free(names[i]);
    free(names);
}

/* The n strings of attribute a (file type ft) as malloc'd copies: variable
 * length ones as the writer stores them, fixed-length ones (an attribute
 * rewritten by hand with numpy bytes) NUL-terminated. */
static char **read_strings(hid_t a, hid_t ft, int n)
{
    char **out = calloc((size_t)n + 1, sizeof *out);
    if (!out) return NULL;
    int ok = 1;
    if (H5Tis_variable_str(ft) > 0) {
        char **vl = calloc((size_t)n + 1, sizeof *vl);
        hid_t t = md_h5_str_type();
        ok = vl && H5Aread(a, t, vl) >= 0;
        for (int i = 0; ok && i < n; i++) ok = (out[i] = strdup(vl[i] ? vl[i] : "")) != NULL;
        for (int i = 0; vl && i < n; i++) H5free_memory(vl[i]);
        H5Tclose(t);
        free(vl);
    } else {
        size_t size = H5Tget_size(ft);
        char *buf = size ? calloc((size_t)n + 1, size) : NULL;
        ok = buf && H5Aread(a, ft, buf) >= 0;
        for (int i = 0; ok && i < n; i++) ok = (out[i] = strndup(buf + (size_t)i * size, size)) != NULL;
        free(buf);
    }
    if (ok) return out;
    md_h5declared_free_list(out, n);
    return NULL;
}

int md_h5declared_read_list(hid_t sg, char ***names, int *n, char *what, size_t len)
{
    *names = NULL;
    *n = 0;
    if (H5Aexists(sg, MD_H5DECLARED_ATTR) <= 0) return 0;
    hid_t a = H5Aopen(sg, MD_H5DECLARED_ATTR, H5P_DEFAULT);
    if (a < 0) {
        snprintf(what, len, "an attribute that cannot be opened");
        return -1;
    }
    hid_t ft = H5Aget_type(a), sp = H5Aget_space(a);
    int rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    hssize_t count = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    H5T_class_t c = ft >= 0 ? H5Tget_class(ft) : H5T_NO_CLASS;
    int rc = -1;
    if (c != H5T_STRING || rank != 1 || count < 0)
        snprintf(what, len, "%s of rank %d", c == H5T_STRING ? "strings" : c == H5T_INTEGER ? "integers"
                                             : c == H5T_FLOAT ? "numbers" : "values of another class", rank);
    else if (count > MD_H5DECLARED_MAX)
        snprintf(what, len, "%lld strings (more than %d: no record mechdiff writes)", (long long)count,
                 MD_H5DECLARED_MAX);
    else if (!(*names = read_strings(a, ft, (int)count)))
        snprintf(what, len, "strings that cannot be read");
    else
        *n = (int)count, rc = 1;
    if (sp >= 0) H5Sclose(sp);
    if (ft >= 0) H5Tclose(ft);
    H5Aclose(a);
    return rc;
}
