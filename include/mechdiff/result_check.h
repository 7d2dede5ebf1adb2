/* result_check.h — no silent NaN in a results file: every floating-point
 * value a worker sends (and every value a plan writes) is checked before it
 * is journaled or written. A NaN or an infinity is an error naming the
 * dataset (whose path names the model role), the element's coordinates by
 * dimension name (layer, pair, neuron...) and the value; the runner adds
 * the rank and unit. A dataset declared with nan_ok (md_dset_decl) may hold
 * NaN as its documented "no value" marker, never an infinity. Internal to
 * the library (not installed). */
#ifndef MECHDIFF_RESULT_CHECK_H
#define MECHDIFF_RESULT_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "mechdiff/error.h"
#include "mechdiff/plan.h"

/* Checks the hyperslab [offset, offset + count) of dataset d holding data
 * (nbytes of d's type, row-major). MD_OK when every value is finite (or a
 * NaN where d allows it). */
int md_result_check_values(const md_dset *d, const int64_t *offset, const int64_t *count, const void *data,
                           size_t nbytes, md_error *err);

/* md_piece_check (the piece fits a declared dataset) and then its values. */
int md_result_check_piece(const md_piece *pc, const md_dset *dsets, int n_dsets, md_error *err);

#endif
