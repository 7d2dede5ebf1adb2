/* kn_compute.h — private to the `knowledge` kind: the state knowledge.c
 * (keys, validate, plan) builds from the job and kn_compute.c (a unit's
 * partial forwards) reads. See knowledge.c for the method and the outputs.
 * Ownership: kn_state owns its datasets, combinations and unit table
 * (kn_state_free in knowledge.c); strings and lists point into the job. */
#ifndef MECHDIFF_EXP_KN_COMPUTE_H
#define MECHDIFF_EXP_KN_COMPUTE_H

#include <stdint.h>

#include "mechdiff/experiment.h"
#include "mechdiff/knowledge.h"

/* Pairs per unit when the job's pair_block is 0. CPU: 16 pairs give every
 * GEMM of a block's partial forwards >= 16 rows per layer patched below it
 * (bench_paper_cpu.sh at 8B widths, 4 layers: 3.1x the cells/s of one pair
 * per unit, GEMMs at sgemm speed); a GPU wants hundreds of rows per GEMM. */
#define KN_PAIR_BLOCK_CPU 16
#define KN_PAIR_BLOCK_CUDA 64

typedef struct kn_combo {
    const char *target, *source; /* roles (point into the job) */
} kn_combo;

/* The kind's keys, parsed once (md_params_bind); strings and lists point
 * into the job. */
typedef struct kn_opts {
    const md_value *datasets, *models, *cross;
    const char *hook, *component, *suffix, *true_word, *false_word;
    int64_t n_toks, n_shots, shot_seed, max_pairs, pair_block;
    int naive, store_activations;
} kn_opts;

/* Everything derived from the job (same on every rank). Owned. */
typedef struct kn_state {
    kn_opts opt;
    md_kn_dataset *ds;
    int n_ds;
    kn_combo *combos;
    int n_combos;
    int n_self;                  /* the first n_self combos are target == source */
    int block;                   /* pairs per unit (pair_block, or the backend's default) */
    int64_t *unit_base;          /* [n_ds + 1]: first unit of each dataset */
    int hook;
    int n_heads;                 /* component head: heads patched one at a time; else 1 */
    int id_true, id_false;
    int n_layers, width;
    double block_macs;           /* md_exp_cost_block_macs of the model (unit costs) */
} kn_state;

/* Blocks of s->block pairs in dataset ds (units per combination). */
static inline int kn_blocks(const kn_state *s, const md_kn_dataset *ds)
{
    return (ds->n_pairs + s->block - 1) / s->block;
}

/* The unit's dataset, combination and block: pairs [*p0, *p0 + *nb). */
void md_kn_locate_unit(const kn_state *s, int64_t unit, int *d, int *c, int *p0, int *nb);

/* The kind's compute callback (md_kind.compute): one block of pairs of one
 * (dataset, target, source). */
int md_kn_compute_unit(const md_kind_ctx *ctx, md_worker *w, void *state, int stage, const md_blob *input,
                       int64_t unit, md_result *out, md_error *err);

#endif
