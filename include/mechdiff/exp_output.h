/* exp_output.h — helpers of a kind's plan for its outputs: declaring a
 * dataset (chunking and compression chosen here, once), comma-joined name
 * lists for attributes, and CSV strings as plan-time data.
 * Ownership: per function; nothing keeps a pointer to its arguments. */
#ifndef MECHDIFF_EXP_OUTPUT_H
#define MECHDIFF_EXP_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include "mechdiff/csv.h"
#include "mechdiff/error.h"
#include "mechdiff/experiment.h"

/* "a,b,c" of items[0..n) into val[cap] (cut at cap). */
void md_exp_join_names(char *val, size_t cap, const char *const *items, int n);
/* Declares dataset `path` of a plan: dims and dimension names [rank]; f32
 * matrices are chunked by 64 rows and deflated. */
int md_exp_declare_dset(md_plan *plan, const char *path, md_h5type type, int rank, const int64_t *dims,
                        const char *const *names, const char *units, const char *desc, md_error *err);
/* md_plan_put of the strings of rows idx[0..n) of a CSV column at offset off
 * of a 1-D string dataset. */
int md_exp_put_csv_strings(md_plan *plan, const char *path, const md_csv *t, int col, const int *idx, int n, int64_t off,
                           md_error *err);

#endif
