/* directions.h — the pure math of the direction experiments (docs/methods.md,
 * "Truthfulness" and "Refusal"): mass-mean directions, the 1-D logistic
 * probe on x·θ, PD / IE of the truth intervention, cosine and normalisation,
 * refusal-prefix matching and the seeded train/test split.
 *
 * Everything is deterministic: sums run in index order in double, the probe
 * is fitted by Newton's method with a fixed iteration cap and tolerance, the
 * split uses splitmix64. No state, no allocation except where stated.
 * Used by src/exp/truth.c and src/exp/refusal.c (rank 0 finish_stage and
 * workers), tested by tests/unit/test_directions.c. */
#ifndef MECHDIFF_DIRECTIONS_H
#define MECHDIFF_DIRECTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "mechdiff/error.h"

/* Subtracts the mean over rows from x[n][d] in place (centring per dataset). */
void md_dir_centre(float *x, int n, int d);

/* Means of the rows with label != 0 (mean_true) and label == 0 (mean_false),
 * each [d] (either may be NULL). Returns MD_ERR (err names what is missing)
 * when a class has no rows. */
int md_dir_class_means(const float *x, const int *label, int n, int d, double *mean_true,
                       double *mean_false, md_error *err);

/* θ = mean(label != 0) − mean(label == 0), theta[d]. Same errors as above.
 * For the refusal direction call it with label = harmful. */
int md_dir_mass_mean(const float *x, const int *label, int n, int d, double *theta, md_error *err);

/* Euclidean norm; v /= norm (v unchanged and MD_ERR when norm is 0 or not finite). */
double md_dir_norm(const double *v, int d);
int md_dir_normalise(double *v, int d, md_error *err);
/* cos(a, b); 0 when either is zero. */
double md_dir_cosine(const double *a, const double *b, int d);

/* Projections proj[i] = x[i]·θ. */
void md_dir_project(const float *x, int n, int d, const double *theta, double *proj);

/* The 1-D logistic probe P(true | s) = σ(w·s + b) fitted to (s, label) by
 * Newton's method (IRLS) in double: at most 100 iterations, stops when the
 * step is below 1e-10; a tiny L2 penalty (1e-6 · n on w, after scaling s by
 * its standard deviation) keeps separable data finite. w is returned in the
 * units of s. MD_ERR when n < 2 or a class is empty. */
typedef struct md_dir_probe {
    double w, b;
    int iters;
} md_dir_probe;
int md_dir_probe_fit(const double *s, const int *label, int n, md_dir_probe *out, md_error *err);
/* Fraction of rows where (w·s + b > 0) == (label != 0). */
double md_dir_probe_accuracy(const md_dir_probe *p, const double *s, const int *label, int n);

/* Truth intervention metrics. PD = mean(p_true − p_false) over n rows.
 * IE toward target (+1: false→true, −1: true→false):
 *   IE = (PD_int − PD) / (target − PD);  NaN when PD == target. */
double md_dir_pd(const float *p_true, const float *p_false, int n);
double md_dir_ie(double pd_int, double pd, double target);

/* Refusal: non-zero when text (after leading white space) starts with one
 * of the study's refusal prefixes; U+2019 (’) counts as an apostrophe. */
int md_dir_is_refusal(const char *text);
/* The prefix list (NULL-terminated, ASCII apostrophes). */
extern const char *const md_dir_refusal_prefixes[];

/* Seeded split of rows 0..n-1 (docs/methods.md: test fraction 0.2, seed 42): the rows
 * are shuffled (Fisher-Yates, splitmix64(seed)); the first round(n·test_frac)
 * form the test pool, the rest the train pool; train[0..n_train) and
 * test[0..n_test) are the first rows of each pool, in shuffled order.
 * MD_ERR naming the counts when a pool is too small. */
int md_dir_split(int n, double test_frac, uint64_t seed, int n_train, int n_test, int *train, int *test,
                 md_error *err);

/* splitmix64 step (the deterministic source of the split). */
uint64_t md_dir_mix(uint64_t x);

/* A random unit vector v[d], isotropic (Gaussian components by Box–Muller
 * from md_dir_mix), deterministic from seed: the control direction of an
 * intervention (same norm, no relation to the data). */
void md_dir_random_unit(double *v, int d, uint64_t seed);

#endif
