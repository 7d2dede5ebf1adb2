/* entropy.h — entropy neurons (docs/methods.md, "Confidence"): pure math on
 * checkpoint tensors, no model, no forward pass.
 *
 * Definitions (W_U = unembedding [vocab][d], g = final RMSNorm gain [d],
 * W_down = last-layer down_proj.weight [d][d_ff], p = the last layer's
 * post_feedforward_layernorm gain [d] where the model normalises the MLP
 * output (Gemma-2, OLMo-2), else ones; with plus_one (Gemma-2) both norms
 * multiply by 1 + weight, so g and p are 1 + the stored tensors):
 *   U[v, :]   = W_U[v, :] * g                      (gain folded in)
 *   Uc[v, :]  = U[v, :] - mean_v U[v, :]           (centred over the vocabulary)
 *   w_i       = p * W_down[:, i]                   (neuron i's output direction;
 *               the post-MLP norm's division by the RMS of the whole MLP
 *               output is one positive factor per token, common to all
 *               neurons, so it changes no cosine and no ranking of norms)
 *   norm_i    = ||w_i||_2
 *   cos_iv    = w_i . Uc[v] / (||w_i|| ||Uc[v]||)  (0 when either norm is 0)
 *   LogitVar_i = unbiased variance over v of cos_iv  (divide by vocab - 1)
 * Entropy neurons: those with norm_i strictly above the q-th percentile of all
 * norms, then the k with the smallest LogitVar (ties: lower index first).
 * Percentile: linear interpolation between order statistics, as numpy's
 * default: sorted x[0..n-1], h = (n-1) q/100, P = x[floor h] + (h - floor h)
 * (x[floor h + 1] - x[floor h]).
 *
 * Streaming: W_U is read in blocks of `block_rows` rows straight from the
 * (mmap'd) tensor, converted to fp32 one block at a time; peak extra memory is
 * O(block_rows * d + n_neurons * d) floats, never vocab * d. Cosines are fp32
 * dot products (sgemm) of unit-normalised rows — norms, means and all sums in
 * double, accumulated in vocabulary order, so the result is deterministic for
 * a fixed BLAS thread count.
 * Ownership: callers own every array passed in and out. */
#ifndef MECHDIFF_ENTROPY_H
#define MECHDIFF_ENTROPY_H

#include <stdint.h>

#include "mechdiff/dtype.h"
#include "mechdiff/error.h"

/* The three tensors, as views into checkpoint memory (row-major). */
typedef struct md_entropy_src {
    const void *w_u;      /* [vocab][d] lm_head (or tied embedding) */
    md_dtype w_u_dtype;
    int64_t vocab;
    int d;
    const void *gain;     /* [d] model.norm.weight; NULL = all ones */
    md_dtype gain_dtype;
    int plus_one;         /* 1: the norms multiply by 1 + gain (Gemma-2) */
    const void *post_gain; /* [d] last layer post_feedforward_layernorm.weight; NULL = none */
    md_dtype post_gain_dtype;
    const void *w_down;   /* [d][d_ff] last layer mlp.down_proj.weight */
    md_dtype w_down_dtype;
    int d_ff;
    int drop_pages;       /* 1: after each W_U block, madvise(MADV_DONTNEED) its
                             whole pages, so even the file-backed resident set
                             stays O(block) (the pages are re-read from the page
                             cache if anyone touches them again); 0: leave them */
} md_entropy_src;

/* Default rows of W_U per block (1024 x 4096 fp32 = 16 MiB). */
#define MD_ENTROPY_BLOCK_ROWS 1024

/* mean[d] = mean over v of W_U[v, :] * g (double). block_rows <= 0: default. */
int md_entropy_wu_mean(const md_entropy_src *s, int block_rows, double *mean, md_error *err);

/* norm[i - n0] and logitvar[i - n0] for neurons n0 <= i < n1, given the mean
 * from md_entropy_wu_mean. One pass over W_U. */
int md_entropy_neurons(const md_entropy_src *s, const double *wu_mean, int n0, int n1, int block_rows,
                       double *norm, double *logitvar, md_error *err);

/* q-th percentile (0 <= q <= 100) of x[n], linear interpolation (see above).
 * n >= 1. */
double md_entropy_percentile(const double *x, int n, double q);

/* Selection: selected[k] = indices with norm > percentile(norm, q), the k
 * smallest LogitVar in ascending LogitVar order (ties: lower index); when
 * fewer than k neurons qualify, the rest of selected is -1. *n_selected and
 * *threshold (the percentile value) may be NULL. */
int md_entropy_select(const double *norm, const double *logitvar, int n, double q, int k, int *selected,
                      int *n_selected, double *threshold, md_error *err);

/* |A ∩ B| of two index sets (entries < 0 ignored, duplicates counted once)
 * and IoU = |A ∩ B| / |A ∪ B| (1 when both are empty). */
int md_entropy_overlap(const int *a, int na, const int *b, int nb, double *iou);

/* Shannon entropy (nats) of softmax(logits[n]), computed in double. */
double md_entropy_softmax(const float *logits, int n);

#endif
