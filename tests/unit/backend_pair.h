/* backend_pair.h — what the backend op tests share (test_backend_ops.c:
 * memory, GEMMs, dtypes, element-wise ops, CPU emulation of the CUDA GEMM
 * numerics; test_backend_attn.c: RoPE and attention; test_backend_forward.c:
 * put_cells/get_cells and whole golden forwards with every hook op).
 *
 * In the style of llama.cpp's test-backend-ops: random inputs, the op run on
 * the reference (CPU, fp32 weight cache) and on the backend under test, and
 * the normalised mean squared error NMSE = Σ(out - ref)² / Σ ref² checked
 * against a per-op threshold that follows from the dtypes involved:
 *
 *   exact fp32 path (element-wise ops, RMSNorm, RoPE, attention, a GEMM
 *   whose inputs reach the multiplier unrounded): only the summation order
 *   differs, relative error ~ 2^-24·√K per element, NMSE ~ 1e-13
 *                                                      → threshold 1e-9;
 *   a GEMM or gather with operands rounded to bf16 (f16/f32 weights stored
 *   bf16, or MECHDIFF_CUDA_GEMM=bf16 rounding X): a rounded value carries a
 *   relative error <= 2^-9 whose mean square over random significands is
 *   ≈ 2.3e-6 (measured by test_backend_ops' emulation), and that carries
 *   over to a dot product of independent terms; two rounded operands ≈ 5e-6
 *                                                      → threshold 2e-5;
 *   CPU vs CPU (fp32 cache vs on-the-fly conversion)  → threshold 1e-12.
 *
 * Each program (bp_main) runs its suite on
 *   1. the CPU self check (always): a cached vs an on-the-fly CPU backend,
 *      then its CPU-only checks;
 *   2. CUDA vs CPU for each weight/GEMM mode (bf16+x3, bf16+bf16, f32+x3),
 *      then its GPU-only shapes, when built with CUDA and a GPU is visible;
 *      otherwise it prints "cuda: skipped (no device)".
 *   PROGRAM          parts 1-2; no GPU is not a failure
 *   PROGRAM --gpu    (ctest gpu.PROGRAM) part 2 only: exits 77 = skip
 *                    without a GPU, else fails unless part 2 ran
 * Every function here is static inline: each program uses a part of them. */
#ifndef MECHDIFF_TEST_BACKEND_PAIR_H
#define MECHDIFF_TEST_BACKEND_PAIR_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/backend.h"
#include "mechdiff/device.h"
#include "mechdiff/dtype.h"
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

/* ---------------------------------------------------------------- random */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static inline double urand(void) /* [0, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}

static inline float frand(float lo, float hi) { return lo + (hi - lo) * (float)urand(); }

/* n uniform values in [lo, hi); owned by the caller. */
static inline float *rand_vec(size_t n, float lo, float hi)
{
    float *v = malloc((n ? n : 1) * sizeof(float));
    if (!v) abort();
    for (size_t i = 0; i < n; i++) v[i] = frand(lo, hi);
    return v;
}

static inline double nmse(const float *out, const float *ref, size_t n)
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

/* ------------------------------------------------------------- the pair */

/* A pair of backends under comparison (not owned). */
typedef struct pair {
    md_backend *ref, *be;
    const char *label;
    md_dtype wstore;   /* how `be` stores weight matrices: F32 or BF16 (CUDA), F32 for CPU */
    int x_rounded;     /* `be` rounds GEMM activations to bf16 */
    int is_cpu;        /* `be` is the on-the-fly CPU backend (else CUDA) */
    int device;        /* `be`'s GPU ordinal (CUDA) */
} pair;

static inline void report(const pair *p, const char *op, const char *what, double e, double tol)
{
    int ok = e <= tol;
    printf("  %-5s %-8s %-40s nmse=%.3e  max %.0e  %s\n", p->label, op, what, e, tol, ok ? "OK" : "FAIL");
    CHECK_MSG(ok, "%s %s %s: nmse %.3e > %.0e", p->label, op, what, e, tol);
}

/* A device copy of a host array on a backend (free with be->ops->free). */
static inline float *dev_from(md_backend *be, const float *h, size_t n)
{
    float *d = be->ops->alloc(be, (n ? n : 1) * sizeof(float));
    if (!d) abort();
    OP_OK(be->ops->to_device(be, d, h, n * sizeof(float), &op_err));
    return d;
}

/* A host copy of a device array; owned by the caller. */
static inline float *host_from(md_backend *be, const float *d, size_t n)
{
    float *h = malloc((n ? n : 1) * sizeof(float));
    if (!h) abort();
    OP_OK(be->ops->to_host(be, h, d, n * sizeof(float), &op_err));
    return h;
}

/* A weight of `dtype` holding vals (converted); host buffer owned by caller. */
static inline void *weight_host(const float *vals, size_t n, md_dtype dtype)
{
    void *h = malloc(n * md_dtype_size(dtype) + 8);
    if (!h) abort();
    md_dtype_from_f32(h, vals, dtype, n);
    return h;
}

/* The NMSE threshold of an op on weights of checkpoint dtype `src` (gemm:
 * the op multiplies activations, which GEMM=bf16 rounds). */
static inline double tol_weighted(const pair *p, md_dtype src, int gemm)
{
    if (p->is_cpu) return TOL_CPU;
    int w_rounded = p->wstore == MD_DTYPE_BF16 && src != MD_DTYPE_BF16;
    int x_rounded = gemm && p->x_rounded;
    return (w_rounded || x_rounded) ? TOL_BF16 : TOL_EXACT;
}

/* ----------------------------------------------------------- the program */

/* One test program's parts (NULL members: none). */
typedef struct bp_test {
    void (*suite)(const pair *p);     /* on every pair: the CPU self check and each CUDA mode */
    void (*cpu_only)(void);           /* after the CPU self check */
    void (*gpu_only)(const pair *p);  /* after the suite on each CUDA mode (shapes too large for the CPU run) */
} bp_test;

/* Part 2: CUDA vs CPU for each weight/GEMM mode; *ran = 1 when it ran. */
static inline void bp_cuda_part(const bp_test *t, int *ran)
{
    *ran = 0;
    int n = 0;
    char why[512] = "";
    md_device_count(&n, why, sizeof why);
    if (n <= 0) {
        printf("cuda: skipped (no device): %s\n", why);
        return;
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
        return;
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
        pair p = {ref, be, modes[m].label, modes[m].wstore, modes[m].x_rounded, 0, dev};
        t->suite(&p);
        if (t->gpu_only) t->gpu_only(&p);
        md_backend_destroy(be);
        *ran = 1;
    }
    unsetenv("MECHDIFF_CUDA_WEIGHTS");
    unsetenv("MECHDIFF_CUDA_GEMM");
    md_backend_destroy(ref);
}

/* main() of a backend op test: parts 1-2, or 2 alone with --gpu. */
static inline int bp_main(int argc, char **argv, const bp_test *t)
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
        pair p = {a, b, "cpu", MD_DTYPE_F32, 0, 1, 0};
        t->suite(&p);
        md_backend_destroy(a);
        md_backend_destroy(b);
        if (t->cpu_only) t->cpu_only();
    }
    int ran = 0;
    bp_cuda_part(t, &ran);
    if (gpu_only) CHECK_MSG(ran, "the GPU comparison did not run");
    TEST_MAIN_END();
}

#endif
