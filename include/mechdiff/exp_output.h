/* exp_output.h — helpers of a kind's plan beside md_plan_output
 * (experiment.h): comma-joined name lists for attributes, and CSV strings as
 * plan-time data.
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
/* md_plan_put of the strings of rows idx[0..n) of a CSV column at offset off
 * of a 1-D string dataset. */
int md_exp_put_csv_strings(md_plan *plan, const char *path, const md_csv *t, int col, const int *idx, int n, int64_t off,
                           md_error *err);

#endif
