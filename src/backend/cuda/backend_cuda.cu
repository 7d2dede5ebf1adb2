/* backend_cuda.cu — the CUDA backend: the md_backend_ops table of
 * include/mechdiff/backend.h on one GPU, with the semantics of the CPU
 * reference (src/backend/cpu.c) op for op.
 *
 * Memory. Activations are fp32 device buffers (alloc/free). Weight matrices
 * are uploaded once per rank by prepare(): bf16 by default (a bf16 checkpoint
 * is then stored exactly; f16/f32 ones are rounded to bf16 on upload), or
 * fp32 with MECHDIFF_CUDA_WEIGHTS=f32. Vectors (RMSNorm gains) are stored
 * fp32 (exact for every checkpoint dtype). Uploads of the same host tensor
 * are shared (tied embeddings / lm_head are uploaded once, refcounted).
 *
 * GEMMs (cuBLAS, fp32 accumulation, fp32 output). With bf16 weights the fp32
 * activations X are split on the device into bf16 pieces before the GEMM:
 *   MECHDIFF_CUDA_GEMM=x3 (default): X = hi + mid + lo exactly (three bf16
 *     pieces hold fp32's 24-bit significand), all three pieces are stacked
 *     as 3n rows of one GEMM (W is read once), and the three partial
 *     products are summed small-first. bf16·bf16 products are exact in fp32,
 *     so the result differs from the CPU's sgemm only by fp32 accumulation
 *     order (NMSE ~1e-12) — the default, as it matches the reference best.
 *   MECHDIFF_CUDA_GEMM=bf16: X rounded to bf16 (one piece): 3x fewer flops,
 *     relative input error <= 2^-9 per element (GEMM NMSE ~1e-6).
 * With fp32 weights: cublasGemmEx fp32 with CUBLAS_COMPUTE_32F_PEDANTIC (no
 * TF32), the closest to cblas_sgemm, at twice the weight memory.
 *
 * Row-major vs cuBLAS's column-major: a row-major [r][c] buffer is the
 * column-major c×r matrix (its transpose) with ld = c. So X[n][in] is Xᵀ
 * (in×n, ld=in), W[out][in] is Wᵀ (in×out, ld=in) and Y[n][out] is Yᵀ
 * (out×n, ld=out). Y = X·Wᵀ  ⇔  Yᵀ = W·Xᵀ: cuBLAS computes C(m=out, n=rows)
 * = op(A)·op(B) with A = the stored Wᵀ and transa = T (giving W), B = the
 * stored Xᵀ with transb = N, k = in, lda = ldb = in, ldc = out.
 *
 * Streams: one non-blocking stream per backend; every op is enqueued on it
 * (so ops run in call order), to_host synchronises. Host inputs of ops
 * (hook vectors, token ids, positions, inv_freq) are copied into device
 * scratch first; pageable host→device cudaMemcpyAsync returns once the host
 * buffer has been staged, so the caller may reuse it at once.
 *
 * Errors. Every op returns a status: a CUDA or cuBLAS failure (a kernel
 * fault, a failed launch, out of memory for a scratch buffer, too many keys
 * for the attention kernel) becomes MD_ERR with a message naming the device
 * and the op; forward.c adds the layer and the step, the runner the unit.
 * alloc returns NULL (after printing the sizes) so the caller reports it.
 *
 * Limits: attention keeps one score per key in shared memory, so a sequence
 * may hold up to (opt-in shared memory per block)/4 - head_dim - 32 keys
 * (≈ 58k on H100, 41k on A100); longer ones fail with that message.
 *
 * Files: cuda_kernels.cu (kernels), cuda_memory.cu (errors, copies,
 * weights), this file (compute ops, op table, create, device queries). */
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/cuda_index.h"

extern "C" {
#include "backend/cuda/cuda_api.h"
}

#ifndef MECHDIFF_CUDA_ARCHS
#define MECHDIFF_CUDA_ARCHS "unknown"
#endif

/* ------------------------------------------------------------------- GEMM */

static int cu_matmul(md_backend *be, float *y, const float *x, const md_weight *w, int n, md_error *err)
{
    cu_impl *c = cu_impl_of(be);
    if (n <= 0) return MD_OK;
    cu_view v;
    if (cu_resolve(c, w, &v, "matmul", err) != MD_OK) return MD_ERR;
    int M = w->rows, K = w->cols;
    const float one = 1.0f, zero = 0.0f;
    /* Yᵀ(M×n, ld M) = W(M×K) · Xᵀ(K×n): A = stored Wᵀ with op T, B = stored Xᵀ. */
    if (v.dtype == MD_DTYPE_F32)
        return cu_check_blas(c,
                             cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, M, n, K, &one, v.dev, CUDA_R_32F, K, x,
                                          CUDA_R_32F, K, &zero, y, CUDA_R_32F, M, CUBLAS_COMPUTE_32F_PEDANTIC,
                                          CUBLAS_GEMM_DEFAULT),
                             "matmul (fp32)", err);
    int pieces = c->gemm_mode == CU_GEMM_X3 ? 3 : 1;
    size_t nk = (size_t)n * K, nm = (size_t)n * M;
    __nv_bfloat16 *xs = (__nv_bfloat16 *)cu_scratch_get(c, &c->xs, (size_t)pieces * nk * sizeof(__nv_bfloat16),
                                                        "matmul: activation scratch", err);
    if (!xs) return MD_ERR;
    if (cu_check(c, cu_launch_split_bf16(c->stream, xs, x, nk, pieces), "matmul: split", err) != MD_OK) return MD_ERR;
    if (pieces == 1)
        return cu_check_blas(c,
                             cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, M, n, K, &one, v.dev, CUDA_R_16BF, K, xs,
                                          CUDA_R_16BF, K, &zero, y, CUDA_R_32F, M, CUBLAS_COMPUTE_32F,
                                          CUBLAS_GEMM_DEFAULT),
                             "matmul (bf16)", err);
    if (3 * nm * sizeof(float) <= CU_TS_MAX_BYTES) {
        /* one GEMM over the 3n stacked rows [hi; mid; lo] (W read once), then
         * y = (lo + mid) + hi */
        float *ts = (float *)cu_scratch_get(c, &c->ts, 3 * nm * sizeof(float), "matmul: partial-product scratch",
                                            err);
        if (!ts) return MD_ERR;
        if (cu_check_blas(c,
                          cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, M, 3 * n, K, &one, v.dev, CUDA_R_16BF, K,
                                       xs, CUDA_R_16BF, K, &zero, ts, CUDA_R_32F, M, CUBLAS_COMPUTE_32F,
                                       CUBLAS_GEMM_DEFAULT),
                          "matmul (bf16x3)", err) != MD_OK)
            return MD_ERR;
        return cu_check(c, cu_launch_sum3(c->stream, y, ts, nm), "matmul: sum", err);
    }
    /* many rows × wide output (logits): three GEMMs accumulating into y,
     * smallest piece first (beta = 1 adds in the GEMM's fp32 epilogue) */
    for (int p = 2; p >= 0; p--)
        if (cu_check_blas(c,
                          cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, M, n, K, &one, v.dev, CUDA_R_16BF, K,
                                       xs + (size_t)p * nk, CUDA_R_16BF, K, p == 2 ? &zero : &one, y, CUDA_R_32F, M,
                                       CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                          "matmul (bf16x3, accumulated)", err) != MD_OK)
            return MD_ERR;
    return MD_OK;
}

/* ------------------------------------------------------------ other ops */

/* A prepared vector (a gain or a bias), fp32 on the device. */
static const float *vector_of(cu_impl *c, const md_weight *g, const char *op, md_error *err)
{
    cu_view v;
    if (cu_resolve(c, g, &v, op, err) != MD_OK) return NULL;
    if (v.dtype != MD_DTYPE_F32) {
        cu_fail(c, err, op, "the vector is not fp32 on the device");
        return NULL;
    }
    return (const float *)v.dev;
}

static int cu_rmsnorm(md_backend *be, float *y, const float *x, const md_weight *g, int n, int d, float eps,
                      md_error *err)
{
    cu_impl *c = cu_impl_of(be);
    if (n <= 0) return MD_OK;
    const float *gd = vector_of(c, g, "rmsnorm", err);
    if (!gd) return MD_ERR;
    return cu_check(c, cu_launch_rmsnorm(c->stream, y, x, gd, n, d, eps), "rmsnorm", err);
}

static int cu_add_bias(md_backend *be, float *y, const md_weight *b, int n, md_error *err)
{
    cu_impl *c = cu_impl_of(be);
    if (n <= 0) return MD_OK;
    const float *bd = vector_of(c, b, "add_bias", err);
    if (!bd) return MD_ERR;
    return cu_check(c, cu_launch_add_rows(c->stream, y, n, b->cols, bd, 1.0f), "add_bias", err);
}

/* Copies `bytes` of host `src` into the scratch s unless its host mirror
 * (*mirror, *mirror_n elements of `elem` bytes) holds the same already: the
 * forward passes the same positions and inv_freq for every layer. */
static int upload_cached(cu_impl *c, cu_scratch *s, void **mirror, int *mirror_n, int *mirror_cap, const void *src,
                         int n, size_t elem, const char *op, md_error *err)
{
    size_t bytes = (size_t)n * elem;
    if (n == *mirror_n && memcmp(src, *mirror, bytes) == 0) return MD_OK;
    if (n > *mirror_cap) {
        void *g = realloc(*mirror, bytes);
        if (!g) return cu_fail(c, err, op, "out of host memory");
        *mirror = g;
        *mirror_cap = n;
    }
    if (!cu_scratch_get(c, s, bytes, op, err)) return MD_ERR;
    *mirror_n = -1; /* valid again only once the copy is enqueued */
    if (cu_check(c, cudaMemcpyAsync(s->p, src, bytes, cudaMemcpyHostToDevice, c->stream), op, err) != MD_OK)
        return MD_ERR;
    memcpy(*mirror, src, bytes);
    *mirror_n = n;
    return MD_OK;
}

static int cu_rope(md_backend *be, float *x, int n, int n_heads, int head_dim, const int *pos, const float *inv_freq,
                   md_error *err)
{
    cu_impl *c = cu_impl_of(be);
    int half = head_dim / 2;
    if (n <= 0 || half <= 0) return MD_OK;
    if (upload_cached(c, &c->posd, (void **)&c->pos_h, &c->pos_n, &c->pos_cap, pos, n, sizeof(int), "rope: positions",
                      err) != MD_OK ||
        upload_cached(c, &c->freqd, (void **)&c->freq_h, &c->freq_n, &c->freq_cap, inv_freq, half, sizeof(float),
                      "rope: inv_freq", err) != MD_OK)
        return MD_ERR;
    return cu_check(c,
                    cu_launch_rope(c->stream, x, n, n_heads, head_dim, (const int *)c->posd.p,
                                   (const float *)c->freqd.p),
                    "rope", err);
}

/* The attention kernels' dynamic shared memory for n_keys keys in *smem;
 * MD_ERR (naming the limit) when the device has too little. */
static int attn_smem(cu_impl *c, const md_attn_shape *sh, int n_keys, size_t *smem, const char *op, md_error *err)
{
    *smem = cu_attn_smem_floats(sh->head_dim, n_keys) * sizeof(float);
    if (*smem <= c->attn_smem_max) return MD_OK;
    char msg[256];
    snprintf(msg, sizeof msg, "%d keys need %zu bytes of shared memory per block, the device allows %zu "
             "(at most %zu keys with head_dim %d)", n_keys, *smem, c->attn_smem_max,
             c->attn_smem_max / sizeof(float) - 32 - (size_t)sh->head_dim, sh->head_dim);
    return cu_fail(c, err, op, msg);
}

static int cu_attention(md_backend *be, float *out, const float *q, int nq, int q_pos0, const float *k0,
                        const float *v0, int n0, const float *k1, const float *v1, int n1, int pad,
                        const md_attn_shape *sh, float *probs, md_error *err)
{
    cu_impl *c = cu_impl_of(be);
    size_t smem;
    if (nq <= 0) return MD_OK;
    if (attn_smem(c, sh, n0 + n1, &smem, "attention", err) != MD_OK) return MD_ERR;
    return cu_check(c, cu_launch_attention(c->stream, smem, out, q, nq, q_pos0, k0, v0, n0, k1, v1, n1, pad, sh, probs),
                    "attention", err);
}

/* attention for n_seq sequences in one launch (backend.h: attention_seqs). */
static int cu_attention_seqs(md_backend *be, float *out, const float *q, int n_seq, int nq, int q_pos0,
                             const float *k0, const float *v0, int n0, size_t kv0_stride, int n_par, const float *k1,
                             const float *v1, int n1, size_t kv1_stride, const int *pads, const md_attn_shape *sh,
                             md_error *err)
{
    cu_impl *c = cu_impl_of(be);
    size_t smem;
    if (nq <= 0 || n_seq <= 0) return MD_OK;
    if (n_par <= 0) return cu_fail(c, err, "attention (sequences)", "n_par (prefixes) must be >= 1");
    if (attn_smem(c, sh, n0 + n1, &smem, "attention (sequences)", err) != MD_OK) return MD_ERR;
    int *pd = NULL;
    if (pads) {
        pd = (int *)cu_scratch_get(c, &c->pads, (size_t)n_seq * sizeof(int), "attention: padding scratch", err);
        if (!pd) return MD_ERR;
        if (cu_check(c, cudaMemcpyAsync(pd, pads, (size_t)n_seq * sizeof(int), cudaMemcpyHostToDevice, c->stream),
                     "attention: padding to device", err) != MD_OK)
            return MD_ERR;
    }
    return cu_check(c, cu_launch_attention_seqs(c->stream, smem, out, q, n_seq, nq, q_pos0, k0, v0, n0, kv0_stride,
                                                n_par, k1, v1, n1, kv1_stride, pd, sh),
                    "attention (sequences)", err);
}

static int cu_attn_mix(md_backend *be, float *out, const float *probs, int nq, int q_pos0, const float *v0, int n0,
                       const float *v1, int n1, int pad, const md_attn_shape *sh, md_error *err)
{
    cu_impl *c = cu_impl_of(be);
    if (nq <= 0) return MD_OK;
    return cu_check(c, cu_launch_attn_mix(c->stream, out, probs, nq, q_pos0, v0, n0, v1, n1, pad, sh),
                    "attention from pattern", err);
}

static int cu_gated_act(md_backend *be, float *h, const float *gate, const float *up, size_t n, md_act act,
                        md_error *err)
{
    cu_impl *c = cu_impl_of(be);
    if (!n) return MD_OK;
    if (act != MD_ACT_SILU && act != MD_ACT_GELU_TANH) return cu_fail(c, err, "gated_act", "unknown activation");
    return cu_check(c, cu_launch_gated_act(c->stream, h, gate, up, n, act), "gated_act", err);
}

static int cu_add(md_backend *be, float *y, const float *x, size_t n, md_error *err)
{
    cu_impl *c = cu_impl_of(be);
    if (!n) return MD_OK;
    return cu_check(c, cu_launch_add(c->stream, y, x, n), "add", err);
}

static int cu_scale(md_backend *be, float *x, size_t n, float s, md_error *err)
{
    cu_impl *c = cu_impl_of(be);
    if (!n) return MD_OK;
    return cu_check(c, cu_launch_scale(c->stream, x, n, s), "scale", err);
}

static int cu_embed(md_backend *be, float *x, const int *tokens, int n, const md_weight *e, md_error *err)
{
    cu_impl *c = cu_impl_of(be);
    if (n <= 0) return MD_OK;
    cu_view v;
    if (cu_resolve(c, e, &v, "embed", err) != MD_OK) return MD_ERR;
    int *td = (int *)cu_scratch_get(c, &c->ints, (size_t)n * sizeof(int), "embed: token scratch", err);
    if (!td) return MD_ERR;
    if (cu_check(c, cudaMemcpyAsync(td, tokens, (size_t)n * sizeof(int), cudaMemcpyHostToDevice, c->stream),
                 "embed: tokens", err) != MD_OK)
        return MD_ERR;
    return cu_check(c, cu_launch_embed(c->stream, x, td, n, e->cols, v.dev, v.dtype), "embed", err);
}

/* The hook vector is a host pointer: copy it to a device scratch first. */
static const float *vec_to_device(cu_impl *c, const float *v, int d, const char *op, md_error *err)
{
    float *vd = (float *)cu_scratch_get(c, &c->vec, (size_t)d * sizeof(float), op, err);
    if (!vd) return NULL;
    if (cu_check(c, cudaMemcpyAsync(vd, v, (size_t)d * sizeof(float), cudaMemcpyHostToDevice, c->stream), op, err) !=
        MD_OK)
        return NULL;
    return vd;
}

static int cu_add_vec(md_backend *be, float *x, int n, int d, const float *v, float coef, md_error *err)
{
    cu_impl *c = cu_impl_of(be);
    if (n <= 0 || d <= 0) return MD_OK;
    const float *vd = vec_to_device(c, v, d, "add_vec", err);
    if (!vd) return MD_ERR;
    return cu_check(c, cu_launch_add_rows(c->stream, x, n, d, vd, coef), "add_vec", err);
}

static int cu_ablate(md_backend *be, float *x, int n, int d, const float *v, md_error *err)
{
    cu_impl *c = cu_impl_of(be);
    if (n <= 0 || d <= 0) return MD_OK;
    const float *vd = vec_to_device(c, v, d, "ablate", err);
    if (!vd) return MD_ERR;
    return cu_check(c, cu_launch_ablate(c->stream, x, n, d, vd), "ablate", err);
}

/* A batched hook's cells: offsets and sources copied into one scratch (two
 * copies), then one launch for every cell. */
static int cu_put_cells(md_backend *be, float *x, int n, int w, const size_t *off, const float *src, int add,
                        float coef, md_error *err)
{
    cu_impl *c = cu_impl_of(be);
    if (n <= 0 || w <= 0) return MD_OK;
    size_t ob = (size_t)n * sizeof(size_t), sb = (size_t)n * w * sizeof(float);
    char *d = (char *)cu_scratch_get(c, &c->cells, ob + sb, "put_cells", err);
    if (!d) return MD_ERR;
    if (cu_check(c, cudaMemcpyAsync(d, off, ob, cudaMemcpyHostToDevice, c->stream), "put_cells: offsets", err) !=
            MD_OK ||
        cu_check(c, cudaMemcpyAsync(d + ob, src, sb, cudaMemcpyHostToDevice, c->stream), "put_cells: sources", err) !=
            MD_OK)
        return MD_ERR;
    return cu_check(c, cu_launch_put_cells(c->stream, x, n, w, (const size_t *)d, (const float *)(d + ob), add, coef),
                    "put_cells", err);
}

/* A read's cells: offsets copied into a scratch, one gather into the same
 * scratch, one copy back (synchronous, as to_host). */
static int cu_get_cells(md_backend *be, float *dst, const float *x, int n, int w, const size_t *off, md_error *err)
{
    cu_impl *c = cu_impl_of(be);
    if (n <= 0 || w <= 0) return MD_OK;
    size_t ob = (size_t)n * sizeof(size_t), db = (size_t)n * w * sizeof(float);
    char *d = (char *)cu_scratch_get(c, &c->cells, ob + db, "get_cells", err);
    if (!d) return MD_ERR;
    float *dd = (float *)(d + ob);
    if (cu_check(c, cudaMemcpyAsync(d, off, ob, cudaMemcpyHostToDevice, c->stream), "get_cells: offsets", err) !=
            MD_OK ||
        cu_check(c, cu_launch_get_cells(c->stream, dd, x, n, w, (const size_t *)d), "get_cells", err) != MD_OK ||
        cu_check(c, cudaMemcpyAsync(dst, dd, db, cudaMemcpyDeviceToHost, c->stream), "get_cells: to host", err) !=
            MD_OK)
        return MD_ERR;
    return cu_check(c, cudaStreamSynchronize(c->stream), "get_cells (an earlier op failed)", err);
}

/* --------------------------------------------------------- create/destroy */

static void impl_free(cu_impl *c)
{
    if (!c) return;
    if (c->stream) cudaStreamSynchronize(c->stream);
    for (int i = 0; i < c->n_recs; i++) cudaFree(c->recs[i].dev);
    free(c->recs);
    cu_scratch_free(&c->xs);
    cu_scratch_free(&c->ts);
    cu_scratch_free(&c->stage);
    cu_scratch_free(&c->vec);
    cu_scratch_free(&c->cells);
    cu_scratch_free(&c->ints);
    cu_scratch_free(&c->pads);
    cu_scratch_free(&c->posd);
    cu_scratch_free(&c->freqd);
    free(c->pos_h);
    free(c->freq_h);
    cu_profile_free(c);
    if (c->blas) cublasDestroy(c->blas);
    if (c->stream) cudaStreamDestroy(c->stream);
    free(c);
}

static void cu_destroy(md_backend *be)
{
    impl_free(cu_impl_of(be));
    free(be);
}

static const md_backend_ops CUDA_OPS = {
    /* .name */ "cuda",
    /* .alloc */ cu_alloc,
    /* .free */ cu_free,
    /* .to_device */ cu_to_device,
    /* .to_host */ cu_to_host,
    /* .copy */ cu_copy,
    /* .prepare */ cu_prepare,
    /* .release */ cu_release,
    /* .matmul */ cu_matmul,
    /* .add_bias */ cu_add_bias,
    /* .rmsnorm */ cu_rmsnorm,
    /* .rope */ cu_rope,
    /* .attention */ cu_attention,
    /* .attn_mix */ cu_attn_mix,
    /* .gated_act */ cu_gated_act,
    /* .add */ cu_add,
    /* .scale */ cu_scale,
    /* .embed */ cu_embed,
    /* .add_vec */ cu_add_vec,
    /* .ablate */ cu_ablate,
    /* .destroy */ cu_destroy,
    /* .attention_seqs */ cu_attention_seqs,
    /* .put_cells */ cu_put_cells,
    /* .get_cells */ cu_get_cells,
};

extern "C" const char *md_cuda_build_archs(void) { return MECHDIFF_CUDA_ARCHS; }

extern "C" int md_cuda_device_count(int *n, char *why, size_t why_len)
{
    *n = 0;
    cudaError_t e = cudaGetDeviceCount(n);
    if (e != cudaSuccess) {
        cudaGetLastError();
        *n = 0;
        if (why && why_len)
            snprintf(why, why_len, "the CUDA runtime reports: %s%s", cudaGetErrorString(e),
                     e == cudaErrorInsufficientDriver
                         ? " (no NVIDIA driver on this machine, or one older than this build's CUDA runtime)"
                         : "");
        return MD_OK;
    }
    if (*n == 0 && why && why_len) snprintf(why, why_len, "the CUDA runtime reports no device");
    return MD_OK;
}

/* Dense bf16 tensor-core flops per SM per clock, by compute capability. */
static double bf16_flops_per_sm_clock(int major, int minor)
{
    if (major == 8 && minor == 0) return 2048.0;  /* A100 */
    if (major == 8) return 1024.0;                /* A10/A40/L4/L40 class (8.6, 8.7, 8.9) */
    if (major == 9) return 4096.0;                /* H100/H200 */
    if (major == 10) return 8192.0;               /* B200 class */
    return 0.0;
}

extern "C" int md_cuda_device_query(int device, md_device_info *info, md_error *err)
{
    memset(info, 0, sizeof *info);
    cudaDeviceProp prop;
    cudaError_t e = cudaGetDeviceProperties(&prop, device);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return md_error_set(err, "GPU %d: %s", device, cudaGetErrorString(e));
    }
    info->ordinal = device;
    snprintf(info->name, sizeof info->name, "%s", prop.name);
    info->cc_major = prop.major;
    info->cc_minor = prop.minor;
    info->sm_count = prop.multiProcessorCount;
    int khz = 0;
    cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, device);
    info->clock_khz = khz;
    info->mem_total = prop.totalGlobalMem;
    int cur = -1;
    cudaGetDevice(&cur);
    if (cur == device) {
        size_t fr = 0, tot = 0;
        if (cudaMemGetInfo(&fr, &tot) == cudaSuccess) info->mem_free = fr;
    }
    info->bf16_peak_tflops = bf16_flops_per_sm_clock(prop.major, prop.minor) * prop.multiProcessorCount *
                             (double)khz * 1e3 / 1e12;
    const char *o = getenv("MECHDIFF_BF16_PEAK_TFLOPS");
    if (o && atof(o) > 0) info->bf16_peak_tflops = atof(o);
    cudaGetLastError();
    return MD_OK;
}

/* The job's modes; AUTO: MECHDIFF_CUDA_WEIGHTS = bf16 (default) | f32,
 * MECHDIFF_CUDA_GEMM = x3 (default) | bf16. */
static int read_modes(cu_impl *c, md_cuda_weights weights, md_cuda_gemm gemm, md_error *err)
{
    const char *wv = weights == MD_CUDA_WEIGHTS_AUTO ? getenv("MECHDIFF_CUDA_WEIGHTS") : NULL;
    if (wv && *wv && md_cuda_weights_parse(wv, &weights) != 0)
        return md_error_set(err, "MECHDIFF_CUDA_WEIGHTS='%s': use bf16 (default) or f32", wv);
    const char *gv = gemm == MD_CUDA_GEMM_AUTO ? getenv("MECHDIFF_CUDA_GEMM") : NULL;
    if (gv && *gv && md_cuda_gemm_parse(gv, &gemm) != 0)
        return md_error_set(err, "MECHDIFF_CUDA_GEMM='%s': use x3 (default, fp32-exact inputs) or bf16", gv);
    c->weight_dtype = weights == MD_CUDA_WEIGHTS_F32 ? MD_DTYPE_F32 : MD_DTYPE_BF16;
    c->gemm_mode = gemm == MD_CUDA_GEMM_BF16 ? CU_GEMM_BF16 : CU_GEMM_X3;
    return MD_OK;
}

extern "C" int md_backend_cuda_create(md_backend **out, int device, md_cuda_weights weights, md_cuda_gemm gemm,
                                      md_error *err)
{
    *out = NULL;
    md_backend *be = NULL;
    cu_impl *c = NULL;
    cudaError_t e;
    cudaFuncAttributes fa;
    cudaDeviceProp prop;
    int n = 0;
    char why[256] = "";
    md_cuda_device_count(&n, why, sizeof why);
    if (n <= 0) {
        const char *vis = getenv("CUDA_VISIBLE_DEVICES");
        return md_error_set(err, "cuda backend: no GPU visible (CUDA_VISIBLE_DEVICES=%s; %s); use the CPU backend "
                                 "(runtime: {backend: cpu} in the job file) or run where a GPU is allocated",
                            vis ? vis : "unset", why);
    }
    if (device < 0 || device >= n)
        return md_error_set(err, "cuda backend: GPU %d requested but %d visible (ordinals 0..%d; "
                                 "CUDA_VISIBLE_DEVICES renumbers them)", device, n, n - 1);
    be = (md_backend *)calloc(1, sizeof *be);
    c = (cu_impl *)calloc(1, sizeof *c);
    if (!be || !c) {
        md_error_set(err, "cuda backend: out of host memory");
        goto fail;
    }
    c->device = device;
    if (read_modes(c, weights, gemm, err) != MD_OK) goto fail;
    e = cudaSetDevice(device);
    if (e == cudaSuccess) e = cudaGetDeviceProperties(&prop, device);
    if (e != cudaSuccess) {
        md_error_set(err, "cuda backend: GPU %d: %s", device, cudaGetErrorString(e));
        goto fail;
    }
    snprintf(c->name, sizeof c->name, "%s", prop.name);
    c->cc_major = prop.major;
    c->cc_minor = prop.minor;
    /* Is there code for this device in the binary? */
    e = cu_attention_attributes(&fa);
    if (e != cudaSuccess) {
        cudaGetLastError();
        md_error_set(err, "cuda backend: this build has kernels for CUDA architectures %s but GPU %d (%s) has "
                          "compute capability %d.%d (%s); rebuild with -DCMAKE_CUDA_ARCHITECTURES=\"%d%d\"",
                     MECHDIFF_CUDA_ARCHS, device, prop.name, prop.major, prop.minor, cudaGetErrorString(e),
                     prop.major, prop.minor);
        goto fail;
    }
    if (prop.major < 8 && c->weight_dtype == MD_DTYPE_BF16) {
        md_error_set(err, "cuda backend: bf16 GEMMs need compute capability >= 8.0 but GPU %d (%s) is %d.%d; "
                          "set MECHDIFF_CUDA_WEIGHTS=f32 or use the CPU backend", device, prop.name, prop.major,
                     prop.minor);
        goto fail;
    }
    c->attn_smem_max = prop.sharedMemPerBlockOptin > prop.sharedMemPerBlock ? prop.sharedMemPerBlockOptin
                                                                            : prop.sharedMemPerBlock;
    e = cu_attention_set_smem((int)(c->attn_smem_max - fa.sharedSizeBytes));
    if (e != cudaSuccess) { /* fall back to the default 48 KiB */
        cudaGetLastError();
        c->attn_smem_max = prop.sharedMemPerBlock;
    } else {
        c->attn_smem_max -= fa.sharedSizeBytes;
    }
    e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        md_error_set(err, "cuda backend: GPU %d (%s): cannot create a stream: %s", device, prop.name,
                     cudaGetErrorString(e));
        goto fail;
    }
    {
        cublasStatus_t s = cublasCreate(&c->blas);
        if (s == CUBLAS_STATUS_SUCCESS) s = cublasSetStream(c->blas, c->stream);
        if (s != CUBLAS_STATUS_SUCCESS) {
            md_error_set(err, "cuda backend: GPU %d (%s): cuBLAS initialisation failed: %s", device, prop.name,
                         cu_blas_status_name(s));
            goto fail;
        }
    }
    be->ops = &CUDA_OPS;
    be->impl = c;
    *out = be;
    return MD_OK;
fail:
    cudaGetLastError();
    impl_free(c);
    free(be);
    return MD_ERR;
}
