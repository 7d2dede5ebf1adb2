/* result_check.c — finite values only (see include/mechdiff/result_check.h). */
#include "mechdiff/result_check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* "[layer 3, pair 12]" for element i of the hyperslab. */
static void coords(const md_dset *d, const int64_t *offset, const int64_t *count, size_t i, char *buf, size_t len)
{
    int64_t idx[MD_MAX_DIMS];
    for (int k = d->rank - 1; k >= 0; k--) {
        idx[k] = offset[k] + (int64_t)(i % (size_t)count[k]);
        i /= (size_t)count[k];
    }
    size_t off = 0;
    buf[0] = '\0';
    for (int k = 0; k < d->rank && off < len; k++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s %lld", k ? ", " : "[",
                                d->dim_names[k][0] ? d->dim_names[k] : "index", (long long)idx[k]);
    if (off < len) snprintf(buf + off, len - off, "]");
}

int md_result_check_values(const md_dset *d, const int64_t *offset, const int64_t *count, const void *data,
                           size_t nbytes, md_error *err)
{
    size_t n, bad = (size_t)-1;
    double value = 0;
    if (d->type == MD_H5_F32) {
        n = nbytes / sizeof(float);
        for (size_t i = 0; i < n; i++) {
            float x;
            memcpy(&x, (const char *)data + i * sizeof x, sizeof x); /* pieces are not aligned */
            if (!isfinite(x) && !(d->nan_ok && isnan(x))) {
                bad = i;
                value = x;
                break;
            }
        }
    } else if (d->type == MD_H5_F64) {
        n = nbytes / sizeof(double);
        for (size_t i = 0; i < n; i++) {
            double x;
            memcpy(&x, (const char *)data + i * sizeof x, sizeof x);
            if (!isfinite(x) && !(d->nan_ok && isnan(x))) {
                bad = i;
                value = x;
                break;
            }
        }
    }
    if (bad == (size_t)-1) return MD_OK;
    char where[512];
    coords(d, offset, count, bad, where, sizeof where);
    return md_error_set(err, "dataset '%s' %s: the value is %s (units '%s'): a NaN or infinity went into a result; "
                        "check the model's weights (mechdiff inspect) and its numerics at that layer", d->path, where,
                        isnan(value) ? "NaN" : value > 0 ? "+infinity" : "-infinity", d->units);
}

int md_result_check_piece(const md_piece *pc, const md_dset *dsets, int n_dsets, md_error *err)
{
    const md_dset *d = md_piece_check(pc, dsets, n_dsets, err);
    if (!d) return MD_ERR;
    return md_result_check_values(d, pc->offset, pc->count, pc->data, pc->nbytes, err);
}
