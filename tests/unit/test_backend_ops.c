/* test_backend_ops.c — memory, GEMMs and dtypes, element-wise ops of every
 * backend against the CPU reference (NMSE per op; the method, thresholds and
 * parts: backend_pair.h), and on the CPU alone: streamed vs cached bf16
 * weights, and an emulation of the CUDA backend's GEMM numerics (the bf16x3
 * split of fp32 activations is exact, bf16x3 GEMMs match fp32, bf16
 * rounding's measured NMSE sits under its threshold). Attention:
 * test_backend_attn.c; hooks and whole forwards: test_backend_forward.c.
 *   test_backend_ops [--gpu]   (ctest unit.test_backend_ops, gpu.test_backend_ops) */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu_convert.h"
#include "backend_pair.h"
#include "mechdiff/backend.h"
#include "mechdiff/dtype.h"
#include "testutil.h"

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

static void suite(const pair *p)
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
    op_elementwise(p, 5, 96);
    op_elementwise(p, 3, 4099);
    op_add_bias(p, MD_DTYPE_F32, 5, 96);
    op_add_bias(p, MD_DTYPE_BF16, 3, 1000);
}

/* large M, as batched patching's partial forwards (a block of pairs x layers
 * x positions): x3 partials stacked (< 64 MiB) and accumulated in three GEMMs
 * (> 64 MiB) */
static void gpu_only(const pair *p)
{
    op_matmul(p, MD_DTYPE_BF16, 1536, 1024, 1024);
    op_matmul(p, MD_DTYPE_BF16, 4096, 2048, 1024);
}

/* ------------------------------------------------------ CPU only */

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

static void cpu_only(void)
{
    stream_check();
    printf("cpu emulation of the cuda GEMM numerics:\n");
    emulation();
}

int main(int argc, char **argv)
{
    const bp_test t = {suite, cpu_only, gpu_only};
    return bp_main(argc, argv, &t);
}
