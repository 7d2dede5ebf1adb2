/* test_backend_ops.c — every backend op against the CPU reference, in the
 * style of llama.cpp's test-backend-ops: random inputs, the op run on the
 * reference (CPU, fp32 weight cache) and on the backend under test, and the
 * normalised mean squared error NMSE = Σ(out - ref)² / Σ ref² checked
 * against a per-op threshold that follows from the dtypes involved:
 *
 *   exact fp32 path (element-wise ops, RMSNorm, RoPE, attention, a GEMM
 *   whose inputs reach the multiplier unrounded): only the summation order
 *   differs, relative error ~ 2^-24·√K per element, NMSE ~ 1e-13
 *                                                      → threshold 1e-9;
 *   a GEMM or gather with operands rounded to bf16 (f16/f32 weights stored
 *   bf16, or MECHDIFF_CUDA_GEMM=bf16 rounding X): a rounded value carries a
 *   relative error <= 2^-9 whose mean square over random significands is
 *   ≈ 2.3e-6 (measured by the emulation below), and that carries over to a
 *   dot product of independent terms; two rounded operands ≈ 5e-6
 *                                                      → threshold 2e-5;
 *   CPU vs CPU (fp32 cache vs on-the-fly conversion)  → threshold 1e-12.
 *
 * Parts:
 *   1. CPU self check (always): cached vs on-the-fly CPU backends (ops, and
 *      golden-model forwards with every hook point, z and pattern included).
 *   2. CPU emulation of the CUDA GEMM numerics (always): the bf16x3 split of
 *      fp32 activations is exact, bf16x3 GEMM matches fp32, and the measured
 *      NMSE of bf16 rounding sits under the 1e-5 threshold.
 *   3. (Device binding and mode spellings: test_device.c.)
 *   4. CUDA vs CPU for each weight/GEMM mode, when built with CUDA and a GPU
 *      is visible; otherwise prints "cuda: skipped (no device)".
 *
 *   test_backend_ops          parts 1-4; no GPU is not a failure
 *   test_backend_ops --gpu    (ctest gpu.test_backend_ops) exits 77 = skip
 *                             without a GPU, else fails unless part 4 ran */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/backend.h"
#include "mechdiff/device.h"
#include "mechdiff/dtype.h"
#include "mechdiff/forward.h"
#include "backend/cpu_convert.h"
#include "testutil.h"

/* Runs a backend op (its last argument &op_err); a failure fails the test
 * with the backend's message. */
#define OP_OK(call)                                                              \
    do {                                                                         \
        md_error op_err;                                                         \
        md_error_clear(&op_err);                                                 \
        CHECK_MSG((call) == MD_OK, "op failed: %s", op_err.msg);                 \
    } while (0)

#define TOL_EXACT 1e-9
#define TOL_BF16 2e-5
#define TOL_CPU 1e-12

/* ---------------------------------------------------------------- helpers */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static double urand(void) /* [0, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}

static float frand(float lo, float hi) { return lo + (hi - lo) * (float)urand(); }

static float *rand_vec(size_t n, float lo, float hi)
{
    float *v = malloc((n ? n : 1) * sizeof(float));
    if (!v) abort();
    for (size_t i = 0; i < n; i++) v[i] = frand(lo, hi);
    return v;
}

static double nmse(const float *out, const float *ref, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)out[i] - (double)ref[i];
        num += e * e;
        den += (double)ref[i] * ref[i];
    }
    if (!(num == num)) return INFINITY; /* NaN */
    return den > 0.0 ? num / den : num;
}

/* A pair of backends under comparison. */
typedef struct pair {
    md_backend *ref, *be;
    const char *label;
    md_dtype wstore;   /* how `be` stores weight matrices: F32 or BF16 (CUDA), F32 for CPU */
    int x_rounded;     /* `be` rounds GEMM activations to bf16 */
    int is_cpu;
} pair;

static void report(const pair *p, const char *op, const char *what, double e, double tol)
{
    int ok = e <= tol;
    printf("  %-5s %-8s %-40s nmse=%.3e  max %.0e  %s\n", p->label, op, what, e, tol, ok ? "OK" : "FAIL");
    CHECK_MSG(ok, "%s %s %s: nmse %.3e > %.0e", p->label, op, what, e, tol);
}

/* Device copies of a host array on a backend. */
static float *dev_from(md_backend *be, const float *h, size_t n)
{
    float *d = be->ops->alloc(be, (n ? n : 1) * sizeof(float));
    if (!d) abort();
    OP_OK(be->ops->to_device(be, d, h, n * sizeof(float), &op_err));
    return d;
}

static float *host_from(md_backend *be, const float *d, size_t n)
{
    float *h = malloc((n ? n : 1) * sizeof(float));
    if (!h) abort();
    OP_OK(be->ops->to_host(be, h, d, n * sizeof(float), &op_err));
    return h;
}

/* A weight of `dtype` holding vals (converted); host buffer owned by caller. */
static void *weight_host(const float *vals, size_t n, md_dtype dtype)
{
    void *h = malloc(n * md_dtype_size(dtype) + 8);
    if (!h) abort();
    md_dtype_from_f32(h, vals, dtype, n);
    return h;
}

static double tol_weighted(const pair *p, md_dtype src, int gemm)
{
    if (p->is_cpu) return TOL_CPU;
    int w_rounded = p->wstore == MD_DTYPE_BF16 && src != MD_DTYPE_BF16;
    int x_rounded = gemm && p->x_rounded;
    return (w_rounded || x_rounded) ? TOL_BF16 : TOL_EXACT;
}

/* ------------------------------------------------------------------- ops */

static void op_memory(const pair *p)
{
    size_t n = 1000;
    float *d = p->be->ops->alloc(p->be, n * sizeof(float));
    float *h = host_from(p->be, d, n);
    int zeroed = 1;
    for (size_t i = 0; i < n; i++) zeroed &= h[i] == 0.0f;
    CHECK_MSG(zeroed, "%s: alloc did not zero", p->label);
    float *v = rand_vec(n, -1, 1);
    float *d2 = p->be->ops->alloc(p->be, n * sizeof(float));
    OP_OK(p->be->ops->to_device(p->be, d, v, n * sizeof(float), &op_err));
    OP_OK(p->be->ops->copy(p->be, d2, d, n * sizeof(float), &op_err));
    float *back = host_from(p->be, d2, n);
    CHECK_MSG(memcmp(back, v, n * sizeof(float)) == 0, "%s: to_device/copy/to_host round trip", p->label);
    printf("  %-5s %-8s alloc zeroed %s, round trip %s\n", p->label, "memory", zeroed ? "OK" : "FAIL",
           memcmp(back, v, n * sizeof(float)) == 0 ? "OK" : "FAIL");
    p->be->ops->free(p->be, d);
    p->be->ops->free(p->be, d2);
    free(h);
    free(v);
    free(back);
}

/* y = x·Wᵀ on both; also the forward's lm_head row views (logit ids). */
static void op_matmul(const pair *p, md_dtype dt, int n, int rows, int cols)
{
    size_t nw = (size_t)rows * cols, nx = (size_t)n * cols, ny = (size_t)n * rows;
    float *wv = rand_vec(nw, -0.1f, 0.1f), *x = rand_vec(nx, -2, 2);
    void *wh = weight_host(wv, nw, dt);
    md_weight wr = {wh, dt, rows, cols, NULL}, wb = wr;
    md_error err;
    CHECK(p->ref->ops->prepare(p->ref, &wr, &err) == MD_OK);
    CHECK_MSG(p->be->ops->prepare(p->be, &wb, &err) == MD_OK, "%s", err.msg);
    float *xr = dev_from(p->ref, x, nx), *xb = dev_from(p->be, x, nx);
    float *yr = p->ref->ops->alloc(p->ref, ny * sizeof(float)), *yb = p->be->ops->alloc(p->be, ny * sizeof(float));
    OP_OK(p->ref->ops->matmul(p->ref, yr, xr, &wr, n, &op_err));
    OP_OK(p->be->ops->matmul(p->be, yb, xb, &wb, n, &op_err));
    float *hr = host_from(p->ref, yr, ny), *hb = host_from(p->be, yb, ny);
    char what[96];
    snprintf(what, sizeof what, "%s n=%d out=%d in=%d", md_dtype_name(dt), n, rows, cols);
    report(p, "matmul", what, nmse(hb, hr, ny), tol_weighted(p, dt, 1));
    free(hr);
    free(hb);

    /* row views, built exactly as forward.c does for logit ids */
    int ids[3] = {0, rows / 2, rows - 1};
    float *lr = malloc(3 * (size_t)n * sizeof(float)), *lb = malloc(3 * (size_t)n * sizeof(float));
    for (int j = 0; j < 3; j++) {
        const md_weight *Us[2] = {&wr, &wb};
        md_backend *bes[2] = {p->ref, p->be};
        float *outs[2] = {lr, lb};
        for (int k = 0; k < 2; k++) {
            md_weight row = *Us[k];
            row.rows = 1;
            if (Us[k]->prepared) {
                row.prepared = (float *)Us[k]->prepared + (size_t)ids[j] * cols;
            } else {
                row.host = (const char *)Us[k]->host + (size_t)ids[j] * cols * md_dtype_size(dt);
                row.prepared = NULL;
            }
            OP_OK(bes[k]->ops->matmul(bes[k], k ? yb : yr, k ? xb : xr, &row, n, &op_err));
            OP_OK(bes[k]->ops->to_host(bes[k], outs[k] + (size_t)j * n, k ? yb : yr, (size_t)n * sizeof(float), &op_err));
        }
    }
    snprintf(what, sizeof what, "%s row views (logit ids) n=%d", md_dtype_name(dt), n);
    report(p, "matmul", what, nmse(lb, lr, 3 * (size_t)n), tol_weighted(p, dt, 1));
    free(lr);
    free(lb);

    p->ref->ops->free(p->ref, xr);
    p->ref->ops->free(p->ref, yr);
    p->be->ops->free(p->be, xb);
    p->be->ops->free(p->be, yb);
    p->ref->ops->release(p->ref, &wr);
    p->be->ops->release(p->be, &wb);
    free(wh);
    free(wv);
    free(x);
}

static void op_rmsnorm(const pair *p, md_dtype gdt, int n, int d, int in_place)
{
    size_t nx = (size_t)n * d;
    float *gv = rand_vec((size_t)d, 0.5f, 1.5f), *x = rand_vec(nx, -3, 3);
    void *gh = weight_host(gv, (size_t)d, gdt);
    md_weight gr = {gh, gdt, 1, d, NULL}, gb = gr;
    md_error err;
    CHECK(p->ref->ops->prepare(p->ref, &gr, &err) == MD_OK);
    CHECK_MSG(p->be->ops->prepare(p->be, &gb, &err) == MD_OK, "%s", err.msg);
    float *xr = dev_from(p->ref, x, nx), *xb = dev_from(p->be, x, nx);
    float *yr = in_place ? xr : p->ref->ops->alloc(p->ref, nx * sizeof(float));
    float *yb = in_place ? xb : p->be->ops->alloc(p->be, nx * sizeof(float));
    OP_OK(p->ref->ops->rmsnorm(p->ref, yr, xr, &gr, n, d, 1e-5f, &op_err));
    OP_OK(p->be->ops->rmsnorm(p->be, yb, xb, &gb, n, d, 1e-5f, &op_err));
    float *hr = host_from(p->ref, yr, nx), *hb = host_from(p->be, yb, nx);
    char what[96];
    snprintf(what, sizeof what, "gain %s n=%d d=%d%s", md_dtype_name(gdt), n, d, in_place ? " in place" : "");
    report(p, "rmsnorm", what, nmse(hb, hr, nx), p->is_cpu ? TOL_CPU : TOL_EXACT);
    if (!in_place) {
        p->ref->ops->free(p->ref, yr);
        p->be->ops->free(p->be, yb);
    }
    p->ref->ops->free(p->ref, xr);
    p->be->ops->free(p->be, xb);
    p->ref->ops->release(p->ref, &gr);
    p->be->ops->release(p->be, &gb);
    free(hr);
    free(hb);
    free(gh);
    free(gv);
    free(x);
}

static void op_rope(const pair *p, int n, int n_heads, int hd, int pos_shift)
{
    size_t nx = (size_t)n * n_heads * hd;
    float *x = rand_vec(nx, -2, 2);
    int *pos = malloc((size_t)n * sizeof(int));
    float *inv = malloc((size_t)(hd / 2) * sizeof(float));
    for (int i = 0; i < n; i++) pos[i] = i - 3 + pos_shift; /* padded rows have negative positions */
    for (int f = 0; f < hd / 2; f++) inv[f] = (float)(1.0 / pow(500000.0, 2.0 * f / hd));
    float *xr = dev_from(p->ref, x, nx), *xb = dev_from(p->be, x, nx);
    OP_OK(p->ref->ops->rope(p->ref, xr, n, n_heads, hd, pos, inv, &op_err));
    OP_OK(p->be->ops->rope(p->be, xb, n, n_heads, hd, pos, inv, &op_err));
    float *hr = host_from(p->ref, xr, nx), *hb = host_from(p->be, xb, nx);
    char what[96];
    snprintf(what, sizeof what, "n=%d heads=%d hd=%d pos from %d", n, n_heads, hd, pos[0]);
    report(p, "rope", what, nmse(hb, hr, nx), p->is_cpu ? TOL_CPU : TOL_EXACT);
    p->ref->ops->free(p->ref, xr);
    p->be->ops->free(p->be, xb);
    free(hr);
    free(hb);
    free(x);
    free(pos);
    free(inv);
}

/* Queries at positions q_pos0.. ; keys [0, n0) in k0/v0, [n0, n0+n1) in k1/v1.
 * Also the pattern: attention's probabilities (backend vs reference), each
 * row sums to 1 and is 0 outside the keys the query sees, and attn_mix on
 * them gives attention's output bit for bit on each backend (what lets a
 * pattern hook that writes back what it read leave the forward unchanged). */
static void op_attention(const pair *p, int nq, int q_pos0, int n0, int n1, int pad, int nh, int nkv, int hd,
                         float softcap, int window)
{
    md_attn_shape sh = {.n_heads = nh, .n_kv_heads = nkv, .head_dim = hd, .scale = 1.0f / sqrtf((float)hd),
                        .softcap = softcap, .window = window};
    if (softcap > 0.0f) sh.scale = 0.0625f; /* Gemma-2's query_pre_attn_scalar 256 */
    int nk = n0 + n1;
    size_t nqv = (size_t)nq * nh * hd, kv0 = (size_t)n0 * nkv * hd, kv1 = (size_t)n1 * nkv * hd;
    size_t npr = (size_t)nq * nh * nk;
    float *q = rand_vec(nqv, -1, 1), *k0 = rand_vec(kv0, -1, 1), *v0 = rand_vec(kv0, -1, 1);
    float *k1 = rand_vec(kv1, -1, 1), *v1 = rand_vec(kv1, -1, 1);
    md_backend *bes[2] = {p->ref, p->be};
    float *res[2], *pr[2];
    int mix_same[2];
    for (int b = 0; b < 2; b++) {
        md_backend *be = bes[b];
        float *qd = dev_from(be, q, nqv), *k0d = n0 ? dev_from(be, k0, kv0) : NULL;
        float *v0d = n0 ? dev_from(be, v0, kv0) : NULL;
        float *k1d = dev_from(be, k1, kv1), *v1d = dev_from(be, v1, kv1);
        float *od = be->ops->alloc(be, nqv * sizeof(float)), *md = be->ops->alloc(be, nqv * sizeof(float));
        float *pd = be->ops->alloc(be, npr * sizeof(float));
        OP_OK(be->ops->attention(be, od, qd, nq, q_pos0, k0d, v0d, n0, k1d, v1d, n1, pad, &sh, pd, &op_err));
        OP_OK(be->ops->attn_mix(be, md, pd, nq, q_pos0, v0d, n0, v1d, n1, pad, &sh, &op_err));
        res[b] = host_from(be, od, nqv);
        pr[b] = host_from(be, pd, npr);
        float *mh = host_from(be, md, nqv);
        mix_same[b] = memcmp(mh, res[b], nqv * sizeof(float)) == 0;
        free(mh);
        float *bufs[8] = {qd, k0d, v0d, k1d, v1d, od, md, pd};
        for (int i = 0; i < 8; i++)
            if (bufs[i]) be->ops->free(be, bufs[i]);
    }
    char what[96];
    snprintf(what, sizeof what, "nq=%d pos0=%d prefix=%d own=%d pad=%d h=%d/%d hd=%d cap=%g win=%d", nq, q_pos0,
             n0, n1, pad, nh, nkv, hd, softcap, window);
    report(p, "attn", what, nmse(res[1], res[0], nqv), p->is_cpu ? TOL_CPU : TOL_EXACT);
    report(p, "attn pattern", what, nmse(pr[1], pr[0], npr), p->is_cpu ? TOL_CPU : TOL_EXACT);
    CHECK_MSG(mix_same[0] && mix_same[1], "attn_mix(pattern) != attention bit for bit (%s)", what);
    double worst = 0.0;
    int outside = 0;
    for (int i = 0; i < nq; i++) {
        int pos = q_pos0 + i, lo = pos < pad ? pos : pad;
        if (pos >= pad && window > 0 && pos - window + 1 > lo) lo = pos - window + 1;
        for (int h = 0; h < nh; h++) {
            const float *row = pr[1] + ((size_t)i * nh + h) * nk;
            double sum = 0.0;
            for (int s = 0; s < nk; s++) sum += row[s], outside += (s < lo || s > pos) && row[s] != 0.0f;
            worst = fmax(worst, fabs(sum - 1.0));
        }
    }
    CHECK_MSG(worst < 1e-5 && outside == 0, "pattern rows: max |sum - 1| %.2e, %d nonzero masked keys (%s)", worst,
              outside, what);
    float *host[9] = {res[0], res[1], pr[0], pr[1], q, k0, v0, k1, v1};
    for (int i = 0; i < 9; i++) free(host[i]);
}

/* attention_seqs (one call for n_seq sequences, batched patching's partial
 * forwards) against the reference's attention run once per sequence: n_par
 * prefixes (sequence s reads prefix s mod n_par, as a forked cache's), own
 * keys at a stride of max_len >= n1 rows, per-sequence left padding. A
 * backend without the op (NULL) has nothing to check. */
static void op_attention_seqs(const pair *p, int n_seq, int n_par, int nq, int n0, int n1, int max_len, int nh,
                              int nkv, int hd)
{
    if (!p->be->ops->attention_seqs) return;
    md_attn_shape sh = {.n_heads = nh, .n_kv_heads = nkv, .head_dim = hd, .scale = 1.0f / sqrtf((float)hd)};
    int kvd = nkv * hd, q_pos0 = n0 + n1 - nq;
    size_t nqv = (size_t)n_seq * nq * nh * hd, s0 = (size_t)n0 * kvd, s1 = (size_t)max_len * kvd;
    size_t kv0 = (n0 ? (size_t)n_par : 0) * s0, kv1 = (size_t)n_seq * s1, rows = (size_t)nq * nh * hd;
    float *q = rand_vec(nqv, -1, 1), *k0 = rand_vec(kv0, -1, 1), *v0 = rand_vec(kv0, -1, 1);
    float *k1 = rand_vec(kv1, -1, 1), *v1 = rand_vec(kv1, -1, 1);
    int *pads = malloc((size_t)n_seq * sizeof(int));
    for (int s = 0; s < n_seq; s++) pads[s] = (s * 7) % (n0 > 0 ? n0 : 1); /* 0 .. n0-1 */
    md_backend *bes[2] = {p->ref, p->be};
    float *res[2];
    for (int b = 0; b < 2; b++) {
        md_backend *be = bes[b];
        float *qd = dev_from(be, q, nqv), *k0d = n0 ? dev_from(be, k0, kv0) : NULL;
        float *v0d = n0 ? dev_from(be, v0, kv0) : NULL, *k1d = dev_from(be, k1, kv1), *v1d = dev_from(be, v1, kv1);
        float *od = be->ops->alloc(be, nqv * sizeof(float));
        if (b == 0) {
            for (int s = 0; s < n_seq; s++) {
                size_t o0 = (size_t)(s % n_par) * s0, o1 = (size_t)s * s1;
                OP_OK(be->ops->attention(be, od + s * rows, qd + s * rows, nq, q_pos0, n0 ? k0d + o0 : NULL,
                                         n0 ? v0d + o0 : NULL, n0, k1d + o1, v1d + o1, n1, pads[s], &sh, NULL,
                                         &op_err));
            }
        } else {
            OP_OK(be->ops->attention_seqs(be, od, qd, n_seq, nq, q_pos0, k0d, v0d, n0, s0, n_par, k1d, v1d, n1, s1,
                                          pads, &sh, &op_err));
        }
        res[b] = host_from(be, od, nqv);
        float *bufs[6] = {qd, k0d, v0d, k1d, v1d, od};
        for (int i = 0; i < 6; i++)
            if (bufs[i]) be->ops->free(be, bufs[i]);
    }
    char what[96];
    snprintf(what, sizeof what, "seqs=%d prefixes=%d nq=%d prefix=%d own=%d/%d h=%d/%d", n_seq, n_par, nq, n0, n1,
             max_len, nh, nkv);
    report(p, "attn seq", what, nmse(res[1], res[0], nqv), p->is_cpu ? TOL_CPU : TOL_EXACT);
    if (p->is_cpu) CHECK_MSG(memcmp(res[0], res[1], nqv * sizeof(float)) == 0, "cpu attention_seqs not bit-identical");
    float *host[7] = {res[0], res[1], q, k0, v0, k1, v1};
    for (int i = 0; i < 7; i++) free(host[i]);
    free(pads);
}

/* gated activations (in place, as forward.c calls them), add, scale,
 * add_vec, ablate */
static void op_elementwise(const pair *p, int n, int d)
{
    size_t nx = (size_t)n * d;
    float *a = rand_vec(nx, -8, 8), *b = rand_vec(nx, -2, 2), *v = rand_vec((size_t)d, -1, 1);
    double norm = 0.0;
    for (int j = 0; j < d; j++) norm += (double)v[j] * v[j];
    for (int j = 0; j < d; j++) v[j] = (float)(v[j] / sqrt(norm));
    const char *names[6] = {"swiglu", "geglu", "add", "scale", "add_vec", "ablate"};
    for (int op = 0; op < 6; op++) {
        md_backend *bes[2] = {p->ref, p->be};
        float *res[2];
        for (int k = 0; k < 2; k++) {
            md_backend *be = bes[k];
            float *ad = dev_from(be, a, nx), *bd = dev_from(be, b, nx);
            switch (op) {
            case 0: OP_OK(be->ops->gated_act(be, ad, ad, bd, nx, MD_ACT_SILU, &op_err)); break;
            case 1: OP_OK(be->ops->gated_act(be, ad, ad, bd, nx, MD_ACT_GELU_TANH, &op_err)); break;
            case 2: OP_OK(be->ops->add(be, ad, bd, nx, &op_err)); break;
            case 3: OP_OK(be->ops->scale(be, ad, nx, 7.9372539f, &op_err)); break;
            case 4: OP_OK(be->ops->add_vec(be, ad, n, d, v, -2.5f, &op_err)); break;
            default: OP_OK(be->ops->ablate(be, ad, n, d, v, &op_err)); break;
            }
            res[k] = host_from(be, ad, nx);
            be->ops->free(be, ad);
            be->ops->free(be, bd);
        }
        char what[64];
        snprintf(what, sizeof what, "n=%d d=%d", n, d);
        report(p, names[op], what, nmse(res[1], res[0], nx), p->is_cpu ? TOL_CPU : TOL_EXACT);
        free(res[0]);
        free(res[1]);
    }
    free(a);
    free(b);
    free(v);
}

/* put_cells (batched hooks): n cells of w floats at scattered offsets of a
 * [rows][d] buffer, replaced and added; the same numbers on both backends,
 * and on the tested one what to_device / add_vec cell by cell give (exact:
 * a copy, and x + coef * v without contraction in both); get_cells of the
 * replaced cells gives back exactly what was put. */
static void op_put_cells(const pair *p, int rows, int d, int n, int w)
{
    size_t nx = (size_t)rows * d, *off = malloc((size_t)n * sizeof *off);
    float *x = rand_vec(nx, -4, 4), *src = rand_vec((size_t)n * w, -1, 1), *res[3][2];
    for (int i = 0; i < n; i++) off[i] = (size_t)((i * 7 + 3) % rows) * d + (size_t)(i * 5) % (d - w + 1);
    md_backend *bes[3] = {p->ref, p->be, p->be};
    for (int add = 0; add < 2; add++)
        for (int k = 0; k < 3; k++) {
            md_backend *be = bes[k];
            float *xd = dev_from(be, x, nx);
            for (int i = 0; k == 2 && i < n; i++) { /* cell by cell, the single hooks' ops */
                if (add) OP_OK(be->ops->add_vec(be, xd + off[i], 1, w, src + (size_t)i * w, 0.7f, &op_err));
                else OP_OK(be->ops->to_device(be, xd + off[i], src + (size_t)i * w, (size_t)w * sizeof(float), &op_err));
            }
            if (k < 2) OP_OK(be->ops->put_cells(be, xd, n, w, off, src, add, 0.7f, &op_err));
            if (k < 2 && !add) {
                float *back = malloc((size_t)n * w * sizeof(float));
                OP_OK(be->ops->get_cells(be, back, xd, n, w, off, &op_err));
                CHECK_MSG(memcmp(back, src, (size_t)n * w * sizeof(float)) == 0, "%s: get_cells != the cells put",
                          k ? p->label : "reference");
                free(back);
            }
            res[k][add] = host_from(be, xd, nx);
            be->ops->free(be, xd);
        }
    char what[64];
    for (int add = 0; add < 2; add++) {
        snprintf(what, sizeof what, "%s n=%d w=%d", add ? "add" : "replace", n, w);
        report(p, "put_cells", what, nmse(res[1][add], res[0][add], nx), 0.0);
        CHECK_MSG(memcmp(res[1][add], res[2][add], nx * sizeof(float)) == 0,
                  "%s: put_cells %s != the same cells one by one", p->label, what);
        for (int k = 0; k < 3; k++) free(res[k][add]);
    }
    free(off);
    free(x);
    free(src);
}

/* y += bias for a bias of each dtype (Qwen2's q/k/v biases). */
static void op_add_bias(const pair *p, md_dtype dt, int n, int d)
{
    size_t ny = (size_t)n * d;
    float *y = rand_vec(ny, -2, 2), *bias = rand_vec((size_t)d, -1, 1);
    void *bh = weight_host(bias, (size_t)d, dt);
    md_weight br = {bh, dt, 1, d, NULL}, bb = br;
    md_error err;
    CHECK(p->ref->ops->prepare(p->ref, &br, &err) == MD_OK);
    CHECK_MSG(p->be->ops->prepare(p->be, &bb, &err) == MD_OK, "%s", err.msg);
    float *yr = dev_from(p->ref, y, ny), *yb = dev_from(p->be, y, ny);
    OP_OK(p->ref->ops->add_bias(p->ref, yr, &br, n, &op_err));
    OP_OK(p->be->ops->add_bias(p->be, yb, &bb, n, &op_err));
    float *hr = host_from(p->ref, yr, ny), *hb = host_from(p->be, yb, ny);
    char what[64];
    snprintf(what, sizeof what, "%s n=%d d=%d", md_dtype_name(dt), n, d);
    report(p, "bias", what, nmse(hb, hr, ny), p->is_cpu ? TOL_CPU : TOL_EXACT);
    free(hr);
    free(hb);
    p->ref->ops->free(p->ref, yr);
    p->be->ops->free(p->be, yb);
    p->ref->ops->release(p->ref, &br);
    p->be->ops->release(p->be, &bb);
    free(bh);
    free(y);
    free(bias);
}

/* embed from each dtype; the tied lm_head (same host tensor prepared twice). */
static void op_embed(const pair *p, md_dtype dt, int vocab, int d, int n)
{
    size_t ne = (size_t)vocab * d, nx = (size_t)n * d;
    float *ev = rand_vec(ne, -1, 1);
    void *eh = weight_host(ev, ne, dt);
    int *tok = malloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) tok[i] = (int)(urand() * vocab);
    tok[0] = vocab - 1;
    md_weight er = {eh, dt, vocab, d, NULL}, eb = er, tied = er;
    md_error err;
    CHECK(p->ref->ops->prepare(p->ref, &er, &err) == MD_OK);
    CHECK_MSG(p->be->ops->prepare(p->be, &eb, &err) == MD_OK, "%s", err.msg);
    CHECK_MSG(p->be->ops->prepare(p->be, &tied, &err) == MD_OK, "%s", err.msg);
    float *xr = p->ref->ops->alloc(p->ref, nx * sizeof(float)), *xb = p->be->ops->alloc(p->be, nx * sizeof(float));
    OP_OK(p->ref->ops->embed(p->ref, xr, tok, n, &er, &op_err));
    OP_OK(p->be->ops->embed(p->be, xb, tok, n, &eb, &op_err));
    float *hr = host_from(p->ref, xr, nx), *hb = host_from(p->be, xb, nx);
    char what[64];
    snprintf(what, sizeof what, "%s vocab=%d d=%d n=%d", md_dtype_name(dt), vocab, d, n);
    report(p, "embed", what, nmse(hb, hr, nx), tol_weighted(p, dt, 0));
    p->be->ops->release(p->be, &tied);
    OP_OK(p->be->ops->embed(p->be, xb, tok, n, &eb, &op_err)); /* still usable after the tied copy's release */
    float *hb2 = host_from(p->be, xb, nx);
    CHECK_MSG(memcmp(hb, hb2, nx * sizeof(float)) == 0, "%s: embed changed after releasing a shared upload",
              p->label);
    p->ref->ops->free(p->ref, xr);
    p->be->ops->free(p->be, xb);
    p->ref->ops->release(p->ref, &er);
    p->be->ops->release(p->be, &eb);
    free(hr);
    free(hb);
    free(hb2);
    free(eh);
    free(ev);
    free(tok);
}

static void run_suite(const pair *p)
{
    op_memory(p);
    md_dtype dts[3] = {MD_DTYPE_F32, MD_DTYPE_F16, MD_DTYPE_BF16};
    for (int i = 0; i < 3; i++) {
        op_matmul(p, dts[i], 1, 64, 96);
        op_matmul(p, dts[i], 7, 130, 96);
        op_matmul(p, dts[i], 33, 300, 257);
        op_embed(p, dts[i], 50, 64, 9);
    }
    op_matmul(p, MD_DTYPE_BF16, 600, 96, 128);   /* many rows: x3 partials stacked in one GEMM */
    op_matmul(p, MD_DTYPE_BF16, 200, 30000, 64); /* wide output: x3 partials exceed 64 MiB → 3 GEMMs */
    op_rmsnorm(p, MD_DTYPE_F32, 5, 96, 0);
    op_rmsnorm(p, MD_DTYPE_BF16, 5, 1000, 1);
    op_rope(p, 6, 3, 16, 0);
    op_rope(p, 6, 3, 16, 40); /* same n, new positions: the device copy must refresh */
    op_rope(p, 9, 4, 128, 0);
    op_attention(p, 5, 0, 0, 5, 0, 4, 2, 16, 0, 0);         /* plain causal, GQA */
    op_attention(p, 4, 6, 4, 6, 0, 4, 4, 16, 0, 0);         /* shared prefix of 4, queries at 6..9 */
    op_attention(p, 7, 0, 0, 7, 3, 4, 1, 32, 0, 0);         /* left padding 3 */
    op_attention(p, 3, 5, 5, 3, 2, 2, 2, 16, 0, 0);         /* prefix + padding */
    op_attention(p, 300, 0, 0, 300, 0, 8, 2, 64, 0, 0);     /* many keys per block */
    op_attention(p, 2, 2100, 2000, 102, 0, 2, 1, 128, 0, 0); /* long prefix */
    op_attention(p, 9, 0, 0, 9, 0, 4, 2, 16, 50.0f, 0);     /* Gemma-2 soft-capping */
    op_attention(p, 12, 0, 0, 12, 2, 4, 2, 16, 0, 4);       /* sliding window 4, padding 2 */
    op_attention(p, 4, 6, 4, 6, 0, 4, 2, 16, 50.0f, 3);     /* window across the prefix */
    op_attention_seqs(p, 12, 3, 4, 9, 4, 4, 4, 2, 16);      /* 4 pairs x 3 layers, own keys contiguous */
    op_attention_seqs(p, 5, 5, 2, 6, 3, 5, 4, 4, 32);       /* own keys at a stride of 5 rows */
    op_attention_seqs(p, 6, 1, 3, 0, 3, 3, 2, 1, 16);       /* no prefix */
    op_elementwise(p, 5, 96);
    op_elementwise(p, 3, 4099);
    op_put_cells(p, 40, 96, 25, 96);  /* whole rows (a batched residual patch) */
    op_put_cells(p, 33, 256, 33, 16); /* one head's slice per row (batched z) */
    op_add_bias(p, MD_DTYPE_F32, 5, 96);
    op_add_bias(p, MD_DTYPE_BF16, 3, 1000);
}

/* ----------------------------------------------- whole forward, with hooks */

/* One golden model's forward on the reference (CPU) and on `kind` (with
 * `cache_bytes` for a CPU test backend): left padding, every hook op, all
 * logits, then logit ids (the row-view path). Compares logits and reads. */
static void op_forward(const pair *p, const char *dir, md_backend_kind kind, size_t cache_bytes, int device)
{
    md_model *mr = NULL, *mb = NULL;
    md_model_options o;
    md_error err;
    md_model_options_init(&o);
    o.skip_tokenizer = 1;
    if (md_model_load(&mr, dir, &o, &err) != MD_OK) {
        CHECK_MSG(0, "%s", err.msg);
        return;
    }
    o.backend = kind;
    o.device = device;
    o.fp32_cache_bytes = cache_bytes;
    if (md_model_load(&mb, dir, &o, &err) != MD_OK) {
        CHECK_MSG(0, "%s", err.msg);
        md_model_free(mr);
        return;
    }
    const md_config *c = &mr->cfg;
    int S = 2, T = 6, d = c->d_model, V = c->vocab_size;
    int tokens[12], pad[2] = {0, 2}, ids[2] = {5, V - 1};
    for (int i = 0; i < S * T; i++) tokens[i] = (int)(urand() * V);
    float *vec = rand_vec((size_t)d, -0.5f, 0.5f), *unit = rand_vec((size_t)d, -1, 1);
    double nn = 0.0;
    for (int j = 0; j < d; j++) nn += (double)unit[j] * unit[j];
    for (int j = 0; j < d; j++) unit[j] = (float)(unit[j] / sqrt(nn));
    size_t nread = (size_t)c->n_layers * S * T * d;
    size_t nz = (size_t)c->n_layers * S * T * c->n_heads * c->head_dim, npat = (size_t)c->n_layers * S * T * c->n_heads * T;
    float *lg[2], *rd[2], *li[2], *zr[2], *pr[2];
    md_model *ms[2] = {mr, mb};
    for (int k = 0; k < 2; k++) {
        md_model *m = ms[k];
        lg[k] = calloc((size_t)S * T * V, sizeof(float));
        rd[k] = calloc(nread, sizeof(float));
        li[k] = calloc((size_t)S * 2, sizeof(float));
        zr[k] = calloc(nz, sizeof(float));
        pr[k] = calloc(npat, sizeof(float));
        md_hook h[8] = {
            {MD_HOOK_RESID_MID, MD_HOOK_ADD, 0, MD_ALL, 3, vec, 0, 1.5f, NULL, 0, NULL, NULL},
            {MD_HOOK_MLP_OUT, MD_HOOK_ABLATE, c->n_layers - 1, MD_ALL, MD_ALL, unit, 0, 0.0f, NULL, 0, NULL, NULL},
            {MD_HOOK_RESID_PRE, MD_HOOK_REPLACE, c->n_layers - 1, 1, 2, vec, 0, 0.0f, NULL, 0, NULL, NULL},
            {MD_HOOK_RESID_POST, MD_HOOK_READ, MD_ALL, MD_ALL, MD_ALL, NULL, 0, 0.0f, rd[k], 0, NULL, NULL},
            /* per head: z and pattern read everywhere (before the edits below), one head's
             * z shifted at layer 0, one head's pattern shifted at the last layer */
            {MD_HOOK_Z, MD_HOOK_READ, MD_ALL, MD_ALL, MD_ALL, NULL, 0, 0.0f, zr[k], MD_ALL, NULL, NULL},
            {MD_HOOK_PATTERN, MD_HOOK_READ, MD_ALL, MD_ALL, MD_ALL, NULL, 0, 0.0f, pr[k], MD_ALL, NULL, NULL},
            {MD_HOOK_Z, MD_HOOK_ADD, 0, MD_ALL, MD_ALL, vec, 0, 0.7f, NULL, 1, NULL, NULL},
            {MD_HOOK_PATTERN, MD_HOOK_ADD, c->n_layers - 1, 0, MD_ALL, vec, 0, 0.2f, NULL, c->n_heads - 1, NULL, NULL},
        };
        md_kvcache *kc = NULL;
        CHECK_MSG(md_kvcache_create(&kc, m, S, T, &err) == MD_OK, "%s", err.msg);
        md_forward f;
        md_forward_init_tokens(&f, m, S, T, tokens);
        f.cache = kc;
        f.n_pad = pad;
        f.hooks = h;
        f.n_hooks = 8;
        f.logits = MD_LOGITS_ALL;
        f.logits_out = lg[k];
        CHECK_MSG(md_model_forward(m, &f, &err) == MD_OK, "%s", err.msg);
        md_kvcache_truncate(kc, 0);
        f.logits = MD_LOGITS_LAST;
        f.logit_ids = ids;
        f.n_logit_ids = 2;
        f.logits_out = li[k];
        f.n_hooks = 0;
        CHECK_MSG(md_model_forward(m, &f, &err) == MD_OK, "%s", err.msg);
        md_kvcache_free(kc);
    }
    md_dtype wdt = mr->layers[0].wq.dtype;
    double tol = tol_weighted(p, wdt, 1) * 10; /* errors compound over layers and the head */
    char what[128];
    const char *base = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
    snprintf(what, sizeof what, "%s logits (hooks, padding)", base);
    report(p, "forward", what, nmse(lg[1], lg[0], (size_t)S * T * V), tol);
    snprintf(what, sizeof what, "%s hook reads resid_post", base);
    report(p, "forward", what, nmse(rd[1], rd[0], nread), tol);
    snprintf(what, sizeof what, "%s logit ids", base);
    report(p, "forward", what, nmse(li[1], li[0], (size_t)S * 2), tol);
    snprintf(what, sizeof what, "%s hook reads z", base);
    report(p, "forward", what, nmse(zr[1], zr[0], nz), tol);
    snprintf(what, sizeof what, "%s hook reads pattern", base);
    report(p, "forward", what, nmse(pr[1], pr[0], npat), tol);
    for (int k = 0; k < 2; k++) {
        float *bufs[5] = {zr[k], pr[k], lg[k], rd[k], li[k]};
        for (int i = 0; i < 5; i++) free(bufs[i]);
    }
    free(vec);
    free(unit);
    md_model_free(mb);
    md_model_free(mr);
}

static const char *const GOLDEN_MODELS[] = {"tests/golden/models/llama3_bf16",  "tests/golden/models/llama2_tied_f32",
                                            "tests/golden/models/mistral_f32",  "tests/golden/models/qwen2_bf16",
                                            "tests/golden/models/qwen3_f32",    "tests/golden/models/gemma2_bf16",
                                            "tests/golden/models/olmo2_f32",    NULL};

/* Streamed bf16 weights (no fp32 cache) equal cached ones bit for bit in
 * one panel (the cached path's very GEMM), within TOL_CPU in panels of 64
 * rows (other sgemm/sgemv shapes); the threaded conversion equals
 * md_dtype_to_f32. */
static void stream_check(void)
{
    md_backend *be[3] = {NULL, NULL, NULL};
    md_backend_options o[3] = {{.fp32_cache_bytes = (size_t)1 << 30}, {0}, {.cpu_panel_bytes = 64 * 257 * 4}};
    md_error err;
    for (int k = 0; k < 3; k++) CHECK(md_backend_create(&be[k], MD_BACKEND_CPU, &o[k], &err) == MD_OK);
    int rows = 300, cols = 257, ns[3] = {1, 7, 64};
    float *wv = rand_vec((size_t)rows * cols, -0.1f, 0.1f), *x = rand_vec((size_t)64 * cols, -2, 2);
    void *wh = weight_host(wv, (size_t)rows * cols, MD_DTYPE_BF16);
    for (int i = 0; i < 3; i++) {
        float *y[3];
        for (int k = 0; k < 3; k++) {
            md_weight w = {wh, MD_DTYPE_BF16, rows, cols, NULL};
            y[k] = calloc((size_t)ns[i] * rows, sizeof(float));
            OP_OK(be[k]->ops->prepare(be[k], &w, &op_err));
            OP_OK(be[k]->ops->matmul(be[k], y[k], x, &w, ns[i], &op_err));
            be[k]->ops->release(be[k], &w);
        }
        size_t bytes = (size_t)ns[i] * rows * sizeof(float);
        CHECK_MSG(memcmp(y[1], y[0], bytes) == 0, "streamed (one panel) != cached, n=%d", ns[i]);
        double e = nmse(y[2], y[0], (size_t)ns[i] * rows); /* other GEMM shapes: summation may differ */
        CHECK_MSG(e <= TOL_CPU, "streamed (64-row panels) vs cached, n=%d: nmse %.3g", ns[i], e);
        printf("  streamed in 64-row panels vs cached, n=%d: %s (nmse %.1e)\n", ns[i],
               memcmp(y[2], y[0], bytes) == 0 ? "bit-identical" : "differs", e);
        for (int k = 0; k < 3; k++) free(y[k]);
    }
    size_t n = (size_t)3 << 20;
    uint16_t *h = malloc(n * sizeof(uint16_t));
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) h[i] = (uint16_t)(urand() * 65536.0);
    md_dtype_to_f32(a, h, MD_DTYPE_BF16, n);
    CHECK(md_cpu_convert_f32(b, h, MD_DTYPE_BF16, n - 5, 5) == 0); /* uneven split */
    CHECK(memcmp(a, b, (n - 5) * sizeof(float)) == 0);
    printf("  streamed vs cached bf16 matmul (n = 1, 7, 64; 1 and 5 panels), threaded conversion: checked\n");
    free(h);
    free(a);
    free(b);
    free(wh);
    free(wv);
    free(x);
    for (int k = 0; k < 3; k++) md_backend_destroy(be[k]);
}

/* ------------------------------------------------------- CPU emulation */

static void emulation(void)
{
    /* (a) the bf16x3 split of k_split_bf16 is exact: x == hi + mid + lo */
    size_t bad = 0, n = 200000;
    for (size_t i = 0; i < n; i++) {
        float x = (float)((urand() - 0.5) * pow(2.0, (double)(int)(urand() * 160) - 80));
        if (i < 8) x = (float[]){0.0f, -0.0f, 1.0f, -1.0f, 3.14159265f, 1e-30f, 6.5e37f, 1.00000012f}[i];
        float r = x, sum[3];
        for (int p = 0; p < 3; p++) {
            float b = md_bf16_to_f32(md_f32_to_bf16(r));
            sum[p] = b;
            r = r - b;
        }
        float back = (sum[2] + sum[1]) + sum[0];
        if (back != x || r != 0.0f) bad++;
    }
    printf("  emul  split    x == hi+mid+lo exactly for %zu values (|x| in 2^-80..2^80 + edge cases): %s\n", n,
           bad ? "FAIL" : "OK");
    CHECK_MSG(bad == 0, "%zu values not split exactly", bad);

    /* (b) GEMM numerics on random data: K = 512, bf16 weights */
    int N = 16, M = 64, K = 512;
    float *x = rand_vec((size_t)N * K, -2, 2), *w = rand_vec((size_t)M * K, -0.1f, 0.1f);
    float *wb = malloc((size_t)M * K * sizeof(float)), *xb = malloc((size_t)N * K * sizeof(float));
    float *ref = malloc((size_t)N * M * sizeof(float)), *x3 = malloc((size_t)N * M * sizeof(float));
    float *r1 = malloc((size_t)N * M * sizeof(float)), *r2 = malloc((size_t)N * M * sizeof(float));
    for (size_t i = 0; i < (size_t)M * K; i++) wb[i] = md_bf16_to_f32(md_f32_to_bf16(w[i]));
    for (size_t i = 0; i < (size_t)N * K; i++) xb[i] = md_bf16_to_f32(md_f32_to_bf16(x[i]));
    for (int i = 0; i < N; i++)
        for (int j = 0; j < M; j++) {
            float acc = 0.0f, accb = 0.0f, part[3] = {0, 0, 0};
            double both = 0.0;
            for (int k = 0; k < K; k++) {
                float xv = x[(size_t)i * K + k], wv = wb[(size_t)j * K + k];
                acc += xv * wv; /* the CPU reference on a bf16 checkpoint */
                float r = xv;
                for (int p = 0; p < 3; p++) {
                    float b = md_bf16_to_f32(md_f32_to_bf16(r));
                    part[p] += b * wv; /* bf16·bf16 product: exact in fp32 */
                    r -= b;
                }
                accb += xb[(size_t)i * K + k] * wv;                 /* X rounded (GEMM=bf16) */
                both += (double)xb[(size_t)i * K + k] * wv;        /* f32 checkpoint: both rounded */
            }
            ref[(size_t)i * M + j] = acc;
            x3[(size_t)i * M + j] = (part[2] + part[1]) + part[0];
            r1[(size_t)i * M + j] = accb;
            r2[(size_t)i * M + j] = (float)both;
        }
    double e_x3 = nmse(x3, ref, (size_t)N * M), e_b = nmse(r1, ref, (size_t)N * M);
    /* r2 against the f32 checkpoint's product in double */
    float *exact = malloc((size_t)N * M * sizeof(float));
    for (int i = 0; i < N; i++)
        for (int j = 0; j < M; j++) {
            double s = 0.0;
            for (int k = 0; k < K; k++) s += (double)x[(size_t)i * K + k] * w[(size_t)j * K + k];
            exact[(size_t)i * M + j] = (float)s;
        }
    double e_bb = nmse(r2, exact, (size_t)N * M);
    printf("  emul  matmul   bf16x3 vs fp32 reference (bf16 weights)    nmse=%.3e  max %.0e  %s\n", e_x3, TOL_EXACT,
           e_x3 <= TOL_EXACT ? "OK" : "FAIL");
    printf("  emul  matmul   X rounded to bf16 (GEMM=bf16)              nmse=%.3e  max %.0e  %s\n", e_b, TOL_BF16,
           e_b <= TOL_BF16 ? "OK" : "FAIL");
    printf("  emul  matmul   X and f32 weights both rounded to bf16     nmse=%.3e  max %.0e  %s\n", e_bb, TOL_BF16,
           e_bb <= TOL_BF16 ? "OK" : "FAIL");
    CHECK(e_x3 <= TOL_EXACT);
    CHECK(e_b <= TOL_BF16 && e_b > 1e-8);  /* rounding is visible, and well under the threshold */
    CHECK(e_bb <= TOL_BF16 && e_bb > 1e-8);
    free(x);
    free(w);
    free(wb);
    free(xb);
    free(ref);
    free(x3);
    free(r1);
    free(r2);
    free(exact);
}

/* --------------------------------------------------------------- main */

static int cuda_part(int *ran)
{
    *ran = 0;
    int n = 0;
    char why[512] = "";
    md_device_count(&n, why, sizeof why);
    if (n <= 0) {
        printf("cuda: skipped (no device): %s\n", why);
        return 0;
    }
    int dev = 0;
    md_error err;
    if (md_device_pick(&dev, &err) != MD_OK) dev = 0;
    struct {
        const char *weights, *gemm, *label;
        md_dtype wstore;
        int x_rounded;
    } modes[3] = {
        {"bf16", "x3", "cu-x3", MD_DTYPE_BF16, 0},
        {"bf16", "bf16", "cu-bf", MD_DTYPE_BF16, 1},
        {"f32", "x3", "cu-32", MD_DTYPE_F32, 0},
    };
    md_backend *ref = NULL;
    md_backend_options big_cache = {.fp32_cache_bytes = (size_t)1 << 30};
    if (md_backend_create(&ref, MD_BACKEND_CPU, &big_cache, &err) != MD_OK) {
        CHECK_MSG(0, "%s", err.msg);
        return 0;
    }
    for (int m = 0; m < 3; m++) {
        setenv("MECHDIFF_CUDA_WEIGHTS", modes[m].weights, 1);
        setenv("MECHDIFF_CUDA_GEMM", modes[m].gemm, 1);
        md_backend *be = NULL;
        md_backend_options on_dev = {.device = dev}; /* modes AUTO: the variables above */
        int rc = md_backend_create(&be, MD_BACKEND_CUDA, &on_dev, &err);
        CHECK_MSG(rc == MD_OK, "cuda backend on device %d: %s", dev, err.msg);
        if (rc != MD_OK) break;
        printf("cuda (device %d, weights %s, gemm %s):\n", dev, modes[m].weights, modes[m].gemm);
        pair p = {ref, be, modes[m].label, modes[m].wstore, modes[m].x_rounded, 0};
        run_suite(&p);
        /* large M, as batched patching's partial forwards (a block of pairs x layers x positions):
         * x3 partials stacked (< 64 MiB) and accumulated in three GEMMs (> 64 MiB); 1024 sequences
         * of attention in one launch */
        op_matmul(&p, MD_DTYPE_BF16, 1536, 1024, 1024);
        op_matmul(&p, MD_DTYPE_BF16, 4096, 2048, 1024);
        op_attention_seqs(&p, 1024, 64, 6, 80, 6, 6, 8, 2, 128);
        for (int i = 0; GOLDEN_MODELS[i]; i++) op_forward(&p, GOLDEN_MODELS[i], MD_BACKEND_CUDA, 0, dev);
        md_backend_destroy(be);
        *ran = 1;
    }
    unsetenv("MECHDIFF_CUDA_WEIGHTS");
    unsetenv("MECHDIFF_CUDA_GEMM");
    md_backend_destroy(ref);
    return 0;
}

int main(int argc, char **argv)
{
    int gpu_only = argc > 1 && strcmp(argv[1], "--gpu") == 0;
    if (gpu_only) {
        int n = 0;
        char why[512] = "";
        md_device_count(&n, why, sizeof why);
        if (n <= 0) {
            printf("cuda: skipped (no device): %s\n", why);
            return 77;
        }
    } else {
        md_backend *a = NULL, *b = NULL;
        md_error err;
        md_backend_options cached = {.fp32_cache_bytes = (size_t)1 << 30}, uncached = {0};
        CHECK(md_backend_create(&a, MD_BACKEND_CPU, &cached, &err) == MD_OK);
        CHECK(md_backend_create(&b, MD_BACKEND_CPU, &uncached, &err) == MD_OK);
        printf("cpu self check (fp32 cache vs on-the-fly conversion):\n");
        pair p = {a, b, "cpu", MD_DTYPE_F32, 0, 1};
        run_suite(&p);
        for (int i = 0; GOLDEN_MODELS[i]; i++) op_forward(&p, GOLDEN_MODELS[i], MD_BACKEND_CPU, 1, 0);
        md_backend_destroy(a);
        md_backend_destroy(b);
        stream_check();
        printf("cpu emulation of the cuda GEMM numerics:\n");
        emulation();
    }
    int ran = 0;
    cuda_part(&ran);
    if (gpu_only) CHECK_MSG(ran, "the GPU comparison did not run");
    TEST_MAIN_END();
}
