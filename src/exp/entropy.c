/* entropy.c — entropy-neuron math (see include/mechdiff/entropy.h).
 * Everything here reads checkpoint memory block by block; nothing the size of
 * W_U is ever allocated. */
#include "mechdiff/entropy.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Rows [r0, r0+nr) of W_U are done: drop the whole pages they cover from
 * this process's resident set (read-only file mapping: nothing is lost). */
static void drop_rows(const md_entropy_src *s, int64_t r0, int nr)
{
    if (!s->drop_pages) return;
    long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0) return;
    size_t rb = (size_t)s->d * md_dtype_size(s->w_u_dtype);
    uintptr_t a = (uintptr_t)s->w_u + (uintptr_t)r0 * rb, b = a + (uintptr_t)nr * rb;
    a = (a + (uintptr_t)ps - 1) / (uintptr_t)ps * (uintptr_t)ps;
    b = b / (uintptr_t)ps * (uintptr_t)ps;
    if (b > a) (void)madvise((void *)a, b - a, MADV_DONTNEED);
}

static int check_src(const md_entropy_src *s, md_error *err)
{
    if (!s || !s->w_u || !s->w_down || s->vocab < 2 || s->d < 1 || s->d_ff < 1)
        return md_error_set(err, "entropy: need W_U with >= 2 rows, d >= 1 and a down_proj with d_ff >= 1");
    if (md_dtype_size(s->w_u_dtype) == 0 || md_dtype_size(s->w_down_dtype) == 0 ||
        (s->gain && md_dtype_size(s->gain_dtype) == 0) || (s->post_gain && md_dtype_size(s->post_gain_dtype) == 0))
        return md_error_set(err, "entropy: unsupported tensor dtype");
    return MD_OK;
}

/* A norm's effective gain g[d] in fp32: the tensor v (1 + v with plus_one),
 * ones when v is absent. */
static void load_norm_gain(const md_entropy_src *s, const void *v, md_dtype dt, float *g)
{
    if (v) {
        md_dtype_to_f32(g, v, dt, (size_t)s->d);
        if (s->plus_one)
            for (int j = 0; j < s->d; j++) g[j] += 1.0f;
    } else {
        for (int j = 0; j < s->d; j++) g[j] = 1.0f;
    }
}

static void load_gain(const md_entropy_src *s, float *g)
{
    load_norm_gain(s, s->gain, s->gain_dtype, g);
}

/* Rows [r0, r0+nr) of W_U, gain folded, into blk[nr][d] (fp32). */
static void load_rows(const md_entropy_src *s, const float *g, int64_t r0, int nr, float *blk)
{
    size_t es = md_dtype_size(s->w_u_dtype), d = (size_t)s->d;
    const char *base = (const char *)s->w_u + (size_t)r0 * d * es;
    md_dtype_to_f32(blk, base, s->w_u_dtype, (size_t)nr * d);
    for (int r = 0; r < nr; r++)
        for (size_t j = 0; j < d; j++) blk[r * d + j] *= g[j];
}

int md_entropy_wu_mean(const md_entropy_src *s, int block_rows, double *mean, md_error *err)
{
    if (check_src(s, err) != MD_OK) return MD_ERR;
    if (block_rows <= 0) block_rows = MD_ENTROPY_BLOCK_ROWS;
    size_t d = (size_t)s->d;
    float *g = malloc(d * sizeof *g);
    float *blk = malloc((size_t)block_rows * d * sizeof *blk); /* one block, owned */
    int rc = MD_ERR;
    if (!g || !blk) {
        md_error_set(err, "entropy: out of memory (W_U block of %d x %zu)", block_rows, d);
        goto done;
    }
    load_gain(s, g);
    memset(mean, 0, d * sizeof *mean);
    for (int64_t r0 = 0; r0 < s->vocab; r0 += block_rows) {
        int nr = (int)(r0 + block_rows <= s->vocab ? block_rows : s->vocab - r0);
        load_rows(s, g, r0, nr, blk);
        for (int r = 0; r < nr; r++)
            for (size_t j = 0; j < d; j++) mean[j] += blk[r * d + j];
        drop_rows(s, r0, nr);
    }
    for (size_t j = 0; j < d; j++) mean[j] /= (double)s->vocab;
    rc = MD_OK;
done:
    free(g);
    free(blk);
    return rc;
}

/* The unit directions wn[nn][d] of neurons n0..n0+nn and their norms:
 * w_i = p * W_down[:, i] (row r of W_down holds component r of every
 * neuron; p the post-MLP norm's gain, loaded into g). Scratch: g[d], row[nn],
 * nsq[nn] (zeroed). */
static void neuron_directions(const md_entropy_src *s, int n0, int nn, float *g, float *row, double *nsq, float *wn,
                              double *norm)
{
    size_t d = (size_t)s->d, ff = (size_t)s->d_ff, es = md_dtype_size(s->w_down_dtype);
    load_norm_gain(s, s->post_gain, s->post_gain_dtype, g);
    for (size_t r = 0; r < d; r++) {
        md_dtype_to_f32(row, (const char *)s->w_down + (r * ff + (size_t)n0) * es, s->w_down_dtype, (size_t)nn);
        for (int i = 0; i < nn; i++) {
            if (s->post_gain) row[i] *= g[r];
            wn[(size_t)i * d + r] = row[i];
            nsq[i] += (double)row[i] * row[i];
        }
    }
    for (int i = 0; i < nn; i++) {
        norm[i] = sqrt(nsq[i]);
        double inv = norm[i] > 0 ? 1.0 / norm[i] : 0.0;
        for (size_t r = 0; r < d; r++) wn[(size_t)i * d + r] = (float)(wn[(size_t)i * d + r] * inv);
    }
}

int md_entropy_neurons(const md_entropy_src *s, const double *wu_mean, int n0, int n1, int block_rows,
                       double *norm, double *logitvar, md_error *err)
{
    if (check_src(s, err) != MD_OK) return MD_ERR;
    if (n0 < 0 || n1 > s->d_ff || n0 >= n1)
        return md_error_set(err, "entropy: neuron range [%d, %d) outside [0, %d)", n0, n1, s->d_ff);
    if (block_rows <= 0) block_rows = MD_ENTROPY_BLOCK_ROWS;
    int nn = n1 - n0;
    size_t d = (size_t)s->d;
    /* Owned scratch: neuron directions, one W_U block, cosines of one block,
     * the gain, one down_proj row slice, and the double accumulators. */
    float *wn = malloc((size_t)nn * d * sizeof *wn);         /* [nn][d] unit w_i */
    float *blk = malloc((size_t)block_rows * d * sizeof *blk); /* [block][d] unit Uc rows */
    float *cs = malloc((size_t)block_rows * nn * sizeof *cs);  /* [block][nn] cosines */
    float *g = malloc(d * sizeof *g);
    float *row = malloc((size_t)nn * sizeof *row);
    double *s1 = calloc((size_t)nn, sizeof *s1), *s2 = calloc((size_t)nn, sizeof *s2);
    double *nsq = calloc((size_t)nn, sizeof *nsq);
    int rc = MD_ERR;
    if (!wn || !blk || !cs || !g || !row || !s1 || !s2 || !nsq) {
        md_error_set(err, "entropy: out of memory (%d neurons x %zu, W_U block of %d rows)", nn, d, block_rows);
        goto done;
    }
    neuron_directions(s, n0, nn, g, row, nsq, wn, norm);
    load_gain(s, g); /* g: the final norm's gain from here on */

    for (int64_t r0 = 0; r0 < s->vocab; r0 += block_rows) {
        int nr = (int)(r0 + block_rows <= s->vocab ? block_rows : s->vocab - r0);
        load_rows(s, g, r0, nr, blk);
        drop_rows(s, r0, nr);
        for (int r = 0; r < nr; r++) { /* centre and normalise in double */
            float *u = blk + (size_t)r * d;
            double ss = 0;
            for (size_t j = 0; j < d; j++) {
                double c = (double)u[j] - wu_mean[j];
                ss += c * c;
            }
            double inv = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
            for (size_t j = 0; j < d; j++) u[j] = (float)(((double)u[j] - wu_mean[j]) * inv);
        }
        /* cs[nr][nn] = blk[nr][d] · wn[nn][d]ᵀ */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, nn, (int)d, 1.0f, blk, (int)d, wn, (int)d, 0.0f,
                    cs, nn);
        for (int r = 0; r < nr; r++)
            for (int i = 0; i < nn; i++) {
                double c = cs[(size_t)r * nn + i];
                s1[i] += c;
                s2[i] += c * c;
            }
    }
    double V = (double)s->vocab;
    for (int i = 0; i < nn; i++) {
        double var = (s2[i] - s1[i] * s1[i] / V) / (V - 1.0);
        logitvar[i] = var > 0 ? var : 0.0;
    }
    rc = MD_OK;
done:
    free(wn);
    free(blk);
    free(cs);
    free(g);
    free(row);
    free(s1);
    free(s2);
    free(nsq);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double md_entropy_percentile(const double *x, int n, double q)
{
    double *s = malloc((size_t)n * sizeof *s);
    if (!s || n < 1) {
        free(s);
        return NAN;
    }
    memcpy(s, x, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    if (q < 0) q = 0;
    if (q > 100) q = 100;
    double h = (n - 1) * q / 100.0;
    int lo = (int)floor(h);
    double p = lo + 1 < n ? s[lo] + (h - lo) * (s[lo + 1] - s[lo]) : s[n - 1];
    free(s);
    return p;
}

int md_entropy_select(const double *norm, const double *logitvar, int n, double q, int k, int *selected,
                      int *n_selected, double *threshold, md_error *err)
{
    if (n < 1 || k < 0 || q < 0 || q > 100)
        return md_error_set(err, "entropy: selection needs n >= 1, k >= 0, 0 <= q <= 100 (n=%d k=%d q=%g)", n,
                            k, q);
    double thr = md_entropy_percentile(norm, n, q);
    for (int j = 0; j < k; j++) selected[j] = -1;
    int m = 0;
    /* Insertion into the running k best, kept sorted (ascending LogitVar;
     * on a tie the earlier, lower index stays ahead). */
    for (int i = 0; i < n && k > 0; i++) {
        if (!(norm[i] > thr)) continue;
        if (m == k && !(logitvar[i] < logitvar[selected[k - 1]])) continue;
        int pos = m < k ? m : k - 1;
        while (pos > 0 && logitvar[selected[pos - 1]] > logitvar[i]) {
            selected[pos] = selected[pos - 1];
            pos--;
        }
        selected[pos] = i;
        if (m < k) m++;
    }
    if (n_selected) *n_selected = m;
    if (threshold) *threshold = thr;
    return MD_OK;
}

static int contains(const int *a, int n, int x)
{
    for (int i = 0; i < n; i++)
        if (a[i] == x) return 1;
    return 0;
}

int md_entropy_overlap(const int *a, int na, const int *b, int nb, double *iou)
{
    int inter = 0, ua = 0, ub = 0;
    for (int i = 0; i < na; i++) {
        if (a[i] < 0 || contains(a, i, a[i])) continue;
        ua++;
        if (contains(b, nb, a[i])) inter++;
    }
    for (int i = 0; i < nb; i++)
        if (b[i] >= 0 && !contains(b, i, b[i])) ub++;
    int uni = ua + ub - inter;
    if (iou) *iou = uni > 0 ? (double)inter / uni : 1.0;
    return inter;
}

double md_entropy_softmax(const float *logits, int n)
{
    double mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (logits[i] > mx) mx = logits[i];
    double z = 0, zl = 0;
    for (int i = 0; i < n; i++) {
        double e = exp((double)logits[i] - mx);
        z += e;
        zl += e * ((double)logits[i] - mx);
    }
    return log(z) - zl / z;
}
