/* exp_batch.h — batches of encoded prompts through a model: left padding
 * and the batched forward that reads one hook point of every prompt.
 * Deterministic; depends only on its arguments. Ownership: per function. */
#ifndef MECHDIFF_EXP_BATCH_H
#define MECHDIFF_EXP_BATCH_H

#include <stddef.h>

#include "mechdiff/error.h"

struct md_model;

/* Frees ids[0..n) and ids (NULL allowed). */
void md_exp_free_ids(int **ids, int n);
/* Left-pads n encoded prompts ids[i][0..len[i]) to the longest (*T) with the
 * model's BOS (0 without one): *pad [n] pad lengths, *tok [n][T]; both owned
 * by the caller (free, also on error). */
int md_exp_pad_batch(const struct md_model *m, int **ids, const int *len, int n, int *T, int **pad, int **tok,
                     md_error *err);
/* One left-padded batched forward of n prompts, stopped after the deepest
 * of `layers`, that reads hook point `hook` at every (layers[li], pos[pi])
 * — positions counted from the end of every prompt (-1 = last token; the
 * caller checks len[i] >= -pos[pi]) — into acts[n_layers][n_pos][n][hook
 * width] (caller's). */
int md_exp_read_acts_grid(struct md_model *m, int **ids, const int *len, int n, int hook, const int *layers,
                          int n_layers, const int *pos, int n_pos, float *acts, md_error *err);
/* md_exp_read_acts_grid at one (layer, pos): acts[n][hook width]. */
int md_exp_read_acts(struct md_model *m, int **ids, const int *len, int n, int hook, int layer, int pos,
                     float *acts, md_error *err);

#endif
