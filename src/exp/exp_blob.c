/* exp_blob.c — see exp_blob.h. */
#include "mechdiff/exp_blob.h"

#include <stdlib.h>
#include <string.h>

void *md_exp_alloc_blob(const int32_t *hd, int n_hd, size_t n_f64, double **f64, size_t *bytes)
{
    size_t head = (size_t)n_hd * sizeof(int32_t);
    *bytes = head + sizeof(double) * n_f64;
    char *b = calloc(1, *bytes);
    if (!b) return NULL;
    memcpy(b, hd, head);
    *f64 = (double *)(b + head);
    return b;
}

int md_exp_read_blob_header(const md_blob *b, const char *kind, int32_t *hd, int n_hd, md_error *err)
{
    size_t head = (size_t)n_hd * sizeof(int32_t);
    if (!b || b->size < head) return md_error_set(err, "%s: stage input is missing", kind);
    memcpy(hd, b->data, head);
    return MD_OK;
}

int md_exp_view_blob_f64(const md_blob *b, const char *kind, int n_hd, size_t n_f64, const double **f64,
                         md_error *err)
{
    size_t need = (size_t)n_hd * sizeof(int32_t) + sizeof(double) * n_f64;
    if (!b || b->size != need)
        return md_error_set(err, "%s: stage input has %zu bytes, expected %zu", kind, b ? b->size : 0, need);
    *f64 = (const double *)((const char *)b->data + (size_t)n_hd * sizeof(int32_t));
    return MD_OK;
}
