/* exp_units.h — batches and unit tables of the experiment kinds: which
 * items a batch holds, the (model, set, batch, ...) tuple each unit of a
 * stage stands for, and the default readable unit name.
 * Ownership: md_exp_units owns its table (md_exp_free_units). */
#ifndef MECHDIFF_EXP_UNITS_H
#define MECHDIFF_EXP_UNITS_H

#include <stddef.h>
#include <stdint.h>

#include "mechdiff/error.h"
#include "mechdiff/experiment.h"

/* Batches of `batch` items that cover n items. */
int md_exp_count_batches(int n, int batch);
/* Batch b of n items: *first = its first item; returns how many it holds. */
int md_exp_slice_batch(int n, int batch, int b, int *first);

/* A stage's unit table: unit u stands for the tuple key[u][0..4) (model, set,
 * batch ... as the kind defines them; unused columns 0). Owned by the kind's
 * state: md_exp_free_units. */
typedef struct md_exp_units {
    int n;         /* units added */
    int (*key)[4]; /* [capacity][4] */
} md_exp_units;
/* Room for cap units (n = 0). */
int md_exp_alloc_units(md_exp_units *u, int cap, md_error *err);
/* Appends a unit (the caller allocated room for it). */
void md_exp_add_unit(md_exp_units *u, int k0, int k1, int k2, int k3);
void md_exp_free_units(md_exp_units *u);
/* The name of a unit in progress lines and errors: "<exp>/stage <s>/unit <u>". */
void md_exp_name_unit(const md_kind_ctx *ctx, int stage, int64_t unit, char *buf, size_t len);

#endif
