/* exp_blob.h — stage blobs of the experiment kinds: n_hd int32 (a header of
 * sizes) then doubles, with the size checks every reader needs.
 * Ownership: stated per function; nothing keeps a pointer. */
#ifndef MECHDIFF_EXP_BLOB_H
#define MECHDIFF_EXP_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "mechdiff/error.h"
#include "mechdiff/experiment.h"

/* Stage blobs of n_hd int32 (a header: sizes) then doubles; n_hd even keeps
 * the doubles 8-byte aligned. A zeroed blob with header hd[0..n_hd) and room
 * for n_f64 doubles (*f64 points at them), *bytes its size; owned by the
 * caller (free), NULL when out of memory. */
void *md_exp_alloc_blob(const int32_t *hd, int n_hd, size_t n_f64, double **f64, size_t *bytes);
/* Copies the header of stage input b into hd[0..n_hd); the error "<kind>:
 * stage input is missing" when b is NULL or shorter than that. */
int md_exp_read_blob_header(const md_blob *b, const char *kind, int32_t *hd, int n_hd, md_error *err);
/* *f64 = the doubles after the header when b holds n_hd int32 and exactly
 * n_f64 doubles, else the error "<kind>: stage input has <size> bytes,
 * expected <size>". */
int md_exp_view_blob_f64(const md_blob *b, const char *kind, int n_hd, size_t n_f64, const double **f64,
                         md_error *err);

#endif
