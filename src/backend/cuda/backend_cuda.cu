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
 * Errors. create/prepare return MD_ERR with a message (no GPU, architecture
 * mismatch, out of memory with sizes). The op table's compute ops return
 * void, so a CUDA failure inside them (a kernel fault, a failed scratch
 * allocation) prints what failed and aborts the process: continuing would
 * write wrong numbers into result files. alloc returns NULL (after printing
 * the sizes) so the caller reports it.
 *
 * Limits: attention keeps one score per key in shared memory, so a sequence
 * may hold up to (opt-in shared memory per block)/4 - head_dim - 32 keys
 * (≈ 58k on H100, 41k on A100); longer ones abort with that message. */
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "mechdiff/backend.h"
#include "backend/cuda/cuda_api.h"
}

#ifndef MECHDIFF_CUDA_ARCHS
#define MECHDIFF_CUDA_ARCHS "unknown"
#endif

/* ------------------------------------------------------------------ state */

/* One uploaded weight. dev is owned (cudaMalloc); host is the checkpoint's. */
typedef struct cu_record {
    const void *host;
    md_dtype host_dtype;
    int rows, cols;
    void *dev;
    md_dtype dev_dtype;     /* MD_DTYPE_BF16 or MD_DTYPE_F32 */
    size_t bytes;
    int refs;
} cu_record;

typedef enum cu_gemm_mode { CU_GEMM_X3 = 0, CU_GEMM_BF16 = 1 } cu_gemm_mode;

/* A growable device scratch buffer (owned). */
typedef struct cu_scratch {
    void *p;
    size_t bytes;
} cu_scratch;

typedef struct cu_impl {
    int device;
    char name[256];
    int cc_major, cc_minor;
    cudaStream_t stream;       /* owned */
    cublasHandle_t blas;       /* owned, bound to stream */
    md_dtype weight_dtype;     /* matrices on the device: BF16 or F32 */
    cu_gemm_mode gemm_mode;
    size_t attn_smem_max;      /* opt-in dynamic shared memory per block */
    cu_record *recs;           /* owned array */
    int n_recs, cap_recs;
    size_t weight_bytes;       /* device bytes held by recs */
    cu_scratch xs;             /* bf16 pieces of X */
    cu_scratch ts;             /* stacked partial products */
    cu_scratch stage;          /* upload staging for dtype conversion */
    cu_scratch vec;            /* host vector of add_vec/ablate */
    cu_scratch ints;           /* token ids */
    cu_scratch posd;           /* positions (device copy of pos_h) */
    cu_scratch freqd;          /* inv_freq (device copy of freq_h) */
    int *pos_h;                /* host mirror of what posd holds; owned */
    int pos_n, pos_cap;
    float *freq_h;             /* host mirror of what freqd holds; owned */
    int freq_n, freq_cap;
} cu_impl;

#define CU_STAGE_BYTES ((size_t)32 << 20)   /* conversion staging per chunk */
#define CU_TS_MAX_BYTES ((size_t)64 << 20)  /* stacked x3 partials; above: 3 GEMMs */

static cu_impl *impl_of(md_backend *be) { return (cu_impl *)be->impl; }

static double mib(size_t b) { return (double)b / (1024.0 * 1024.0); }

/* Fatal error inside a void op: say which op and what CUDA reported. */
static void cu_fatal(const cu_impl *c, const char *op, const char *what)
{
    fprintf(stderr, "mechdiff: cuda backend (device %d, %s): %s: %s\n", c ? c->device : -1,
            c ? c->name : "?", op, what);
    fflush(stderr);
    abort();
}

static void cu_check(const cu_impl *c, cudaError_t e, const char *op)
{
    if (e != cudaSuccess) cu_fatal(c, op, cudaGetErrorString(e));
}

static void cu_check_launch(const cu_impl *c, const char *op)
{
    cu_check(c, cudaGetLastError(), op);
}

static const char *cublas_status_name(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "cuBLAS not initialised";
    case CUBLAS_STATUS_ALLOC_FAILED: return "cuBLAS allocation failed (out of GPU memory)";
    case CUBLAS_STATUS_INVALID_VALUE: return "cuBLAS invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "cuBLAS architecture mismatch";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "cuBLAS execution failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "cuBLAS: not supported on this device";
    default: return "cuBLAS error";
    }
}

static void cu_check_blas(const cu_impl *c, cublasStatus_t s, const char *op)
{
    if (s != CUBLAS_STATUS_SUCCESS) cu_fatal(c, op, cublas_status_name(s));
}

/* Grows a scratch to at least `need` bytes (contents are not kept). The
 * stream is synchronised first: earlier ops may still read the old buffer. */
static void *scratch_get(cu_impl *c, cu_scratch *s, size_t need, const char *op)
{
    if (need <= s->bytes && s->p) return s->p;
    size_t want = need + need / 4 + 256;
    cu_check(c, cudaStreamSynchronize(c->stream), op);
    if (s->p) cudaFree(s->p);
    s->p = NULL;
    s->bytes = 0;
    if (cudaMalloc(&s->p, want) != cudaSuccess) {
        cudaGetLastError();
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        char msg[256];
        snprintf(msg, sizeof msg, "out of GPU memory for a %.1f MiB scratch buffer (%.1f MiB free of %.1f MiB)",
                 mib(want), mib(fr), mib(tot));
        cu_fatal(c, op, msg);
    }
    s->bytes = want;
    return s->p;
}

static void scratch_free(cu_scratch *s)
{
    if (s->p) cudaFree(s->p);
    s->p = NULL;
    s->bytes = 0;
}

/* ---------------------------------------------------------------- kernels */

#define CU_THREADS 256

static unsigned grid_for(size_t n, int threads)
{
    size_t g = (n + (size_t)threads - 1) / (size_t)threads;
    if (g > 65535u * 32u) g = 65535u * 32u; /* kernels below use grid-stride loops */
    return (unsigned)(g ? g : 1);
}

__device__ static float load_as_f32(const void *src, int dtype, size_t i)
{
    switch (dtype) {
    case MD_DTYPE_BF16: return __bfloat162float(((const __nv_bfloat16 *)src)[i]);
    case MD_DTYPE_F16: return __half2float(((const __half *)src)[i]);
    default: return ((const float *)src)[i];
    }
}

/* dst[i] = convert(src[i]); dst is BF16 or F32 (round to nearest even). */
__global__ static void k_convert(void *dst, int dst_dtype, const void *src, int src_dtype, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float v = load_as_f32(src, src_dtype, i);
        if (dst_dtype == MD_DTYPE_BF16) ((__nv_bfloat16 *)dst)[i] = __float2bfloat16_rn(v);
        else ((float *)dst)[i] = v;
    }
}

/* Splits x[n] into bf16 pieces: out[p*n + i] for p < pieces. With 3 pieces
 * x == hi + mid + lo exactly: each residual is exact by Sterbenz's lemma
 * and the third holds the last <= 8 significant bits (for |x| > 2^-110). */
__global__ static void k_split_bf16(__nv_bfloat16 *out, const float *x, size_t n, int pieces)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float r = x[i];
        for (int p = 0; p < pieces; p++) {
            __nv_bfloat16 b = __float2bfloat16_rn(r);
            out[(size_t)p * n + i] = b;
            r = r - __bfloat162float(b);
        }
    }
}

/* y[i] = (t[2n+i] + t[n+i]) + t[i]: the x3 partials, smallest first. */
__global__ static void k_sum3(float *y, const float *t, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = (t[2 * n + i] + t[n + i]) + t[i];
}

/* Block-wide reductions (blockDim.x a multiple of 32, <= 1024); red holds 32
 * slots. Every thread gets the result. */
template <typename T> __device__ static T block_sum(T v, T *red)
{
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    __syncthreads();
    if (lane == 0) red[w] = v;
    __syncthreads();
    if (w == 0) {
        v = lane < nw ? red[lane] : T(0);
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == 0) red[0] = v;
    }
    __syncthreads();
    return red[0];
}

__device__ static float block_max_f(float v, float *red)
{
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    __syncthreads();
    if (lane == 0) red[w] = v;
    __syncthreads();
    if (w == 0) {
        v = lane < nw ? red[lane] : -INFINITY;
        for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
        if (lane == 0) red[0] = v;
    }
    __syncthreads();
    return red[0];
}

/* One block per row: y = g * (x * inv), inv = 1/sqrt(mean(x²) + eps) with
 * the sum of squares in double, as cpu.c. y may alias x (each thread writes
 * only the elements it read, after the reduction's barriers). */
__global__ static void k_rmsnorm(float *y, const float *x, const float *g, int d, float eps)
{
    __shared__ double red[32];
    const float *xi = x + (size_t)blockIdx.x * d;
    float *yi = y + (size_t)blockIdx.x * d;
    double ss = 0.0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) ss += (double)xi[j] * xi[j];
    ss = block_sum<double>(ss, red);
    float inv = (float)(1.0 / sqrt(ss / d + eps));
    for (int j = threadIdx.x; j < d; j += blockDim.x) yi[j] = g[j] * (xi[j] * inv);
}

/* One thread per (row, frequency); rotates that pair in every head. The
 * angle and its cos/sin are computed as cpu.c does (float angle, double
 * trig rounded to float). */
__global__ static void k_rope(float *x, int n, int n_heads, int head_dim, const int *pos, const float *inv_freq)
{
    int half = head_dim / 2;
    size_t total = (size_t)n * half;
    for (size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x; t < total; t += (size_t)gridDim.x * blockDim.x) {
        int i = (int)(t / half), f = (int)(t % half);
        float angle = (float)pos[i] * inv_freq[f];
        float cs = (float)cos((double)angle), sn = (float)sin((double)angle);
        for (int h = 0; h < n_heads; h++) {
            float *v = x + ((size_t)i * n_heads + h) * head_dim;
            float a = v[f], b = v[f + half];
            v[f] = a * cs - b * sn;
            v[f + half] = b * cs + a * sn;
        }
    }
}

/* One block per (query i, head h). Shared memory: red[32], q[head_dim],
 * scores[p - lo + 1]. Scores, max, exp and sum as cpu.c (the dot products and
 * the sum are reduced in a different order); the weighted sum of values runs
 * over keys in cpu.c's order, one output element per thread. */
__global__ static void k_attention(float *out, const float *q, int q_pos0, const float *k0, const float *v0, int n0,
                                   const float *k1, const float *v1, int pad, int n_heads, int n_kv_heads,
                                   int head_dim, float scale)
{
    extern __shared__ float sm[];
    float *red = sm, *qs = sm + 32, *sc = qs + head_dim;
    int i = blockIdx.x, h = blockIdx.y;
    int p = q_pos0 + i;
    int lo = p < pad ? p : pad; /* a padding query attends to itself only */
    int cnt = p - lo + 1;
    int kvh = h / (n_heads / n_kv_heads);
    int kv_dim = n_kv_heads * head_dim;
    const float *qh = q + ((size_t)i * n_heads + h) * head_dim;
    for (int j = threadIdx.x; j < head_dim; j += blockDim.x) qs[j] = qh[j];
    __syncthreads();

    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int t = w; t < cnt; t += nw) {
        int s = lo + t;
        const float *ks = (s < n0 ? k0 + (size_t)s * kv_dim : k1 + (size_t)(s - n0) * kv_dim) + (size_t)kvh * head_dim;
        float dot = 0.0f;
        for (int j = lane; j < head_dim; j += 32) dot += qs[j] * ks[j];
        for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
        if (lane == 0) sc[t] = dot * scale;
    }
    __syncthreads();
    float m = -INFINITY;
    for (int t = threadIdx.x; t < cnt; t += blockDim.x) m = fmaxf(m, sc[t]);
    m = block_max_f(m, red);
    float part = 0.0f;
    for (int t = threadIdx.x; t < cnt; t += blockDim.x) {
        float e = expf(sc[t] - m);
        sc[t] = e;
        part += e;
    }
    float sum = block_sum<float>(part, red); /* its barriers also publish sc[] */
    float inv = 1.0f / sum;
    float *oh = out + ((size_t)i * n_heads + h) * head_dim;
    for (int j = threadIdx.x; j < head_dim; j += blockDim.x) {
        float acc = 0.0f;
        for (int t = 0; t < cnt; t++) {
            int s = lo + t;
            const float *vs = (s < n0 ? v0 + (size_t)s * kv_dim : v1 + (size_t)(s - n0) * kv_dim) + (size_t)kvh * head_dim;
            acc += (sc[t] * inv) * vs[j];
        }
        oh[j] = acc;
    }
}

__global__ static void k_swiglu(float *hh, const float *gate, const float *up, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float g = gate[i];
        hh[i] = (g / (1.0f + expf(-g))) * up[i];
    }
}

__global__ static void k_add(float *y, const float *x, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] += x[i];
}

/* x[i][:] = E[tokens[i]][:] converted to fp32. */
__global__ static void k_embed(float *x, const int *tokens, int n, int cols, const void *e, int e_dtype)
{
    size_t total = (size_t)n * cols;
    for (size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x; t < total; t += (size_t)gridDim.x * blockDim.x) {
        size_t i = t / cols, j = t % cols;
        x[t] = load_as_f32(e, e_dtype, (size_t)tokens[i] * cols + j);
    }
}

__global__ static void k_add_vec(float *x, int n, int d, const float *v, float coef)
{
    size_t total = (size_t)n * d;
    for (size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x; t < total; t += (size_t)gridDim.x * blockDim.x)
        x[t] += coef * v[t % d];
}

/* One block per row: x -= (x·v) v with the dot product in double, as cpu.c. */
__global__ static void k_ablate(float *x, int d, const float *v)
{
    __shared__ double red[32];
    float *xi = x + (size_t)blockIdx.x * d;
    double dot = 0.0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) dot += (double)xi[j] * v[j];
    dot = block_sum<double>(dot, red);
    float fd = (float)dot;
    for (int j = threadIdx.x; j < d; j += blockDim.x) xi[j] -= fd * v[j];
}

/* ------------------------------------------------------- memory and copies */

static void *cu_alloc(md_backend *be, size_t bytes)
{
    cu_impl *c = impl_of(be);
    void *p = NULL;
    if (bytes == 0) bytes = 64;
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
        cudaGetLastError();
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        fprintf(stderr,
                "mechdiff: cuda backend (device %d, %s): out of GPU memory: %.1f MiB needed, %.1f MiB free of "
                "%.1f MiB (weights hold %.1f MiB); use smaller batches, layer sharding over more ranks, or "
                "the CPU backend\n",
                c->device, c->name, mib(bytes), mib(fr), mib(tot), mib(c->weight_bytes));
        return NULL;
    }
    if (cudaMemsetAsync(p, 0, bytes, c->stream) != cudaSuccess) {
        cudaGetLastError();
        cudaFree(p);
        return NULL;
    }
    return p;
}

static void cu_free(md_backend *be, void *p)
{
    cu_impl *c = impl_of(be);
    if (!p) return;
    cu_check(c, cudaStreamSynchronize(c->stream), "free");
    cu_check(c, cudaFree(p), "free");
}

static void cu_to_device(md_backend *be, void *dst, const void *src, size_t bytes)
{
    cu_impl *c = impl_of(be);
    if (!bytes) return;
    cu_check(c, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream), "to_device");
}

static void cu_to_host(md_backend *be, void *dst, const void *src, size_t bytes)
{
    cu_impl *c = impl_of(be);
    if (bytes) cu_check(c, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream), "to_host");
    cu_check(c, cudaStreamSynchronize(c->stream), "to_host (an earlier op failed)");
}

static void cu_copy(md_backend *be, void *dst, const void *src, size_t bytes)
{
    cu_impl *c = impl_of(be);
    if (!bytes || dst == src) return;
    cu_check(c, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream), "copy");
}

/* ----------------------------------------------------------------- weights */

static cu_record *rec_by_dev(cu_impl *c, const void *dev)
{
    for (int i = 0; i < c->n_recs; i++)
        if (c->recs[i].dev == dev) return &c->recs[i];
    return NULL;
}

/* Uploads host data (dtype hd, n elements) into dst (dtype dd) on the
 * stream: a plain copy when the dtypes agree, else staged and converted on
 * the device CU_STAGE_BYTES at a time. */
static int upload(cu_impl *c, void *dst, md_dtype dd, const void *host, md_dtype hd, size_t n, md_error *err)
{
    size_t hs = md_dtype_size(hd), ds = md_dtype_size(dd);
    cudaError_t e;
    if (hd == dd) {
        e = cudaMemcpyAsync(dst, host, n * hs, cudaMemcpyHostToDevice, c->stream);
        if (e != cudaSuccess) goto fail;
        return MD_OK;
    }
    if (!c->stage.p) {
        e = cudaMalloc(&c->stage.p, CU_STAGE_BYTES);
        if (e != cudaSuccess) goto fail;
        c->stage.bytes = CU_STAGE_BYTES;
    }
    {
        size_t per = CU_STAGE_BYTES / hs;
        for (size_t off = 0; off < n; off += per) {
            size_t k = n - off < per ? n - off : per;
            e = cudaMemcpyAsync(c->stage.p, (const char *)host + off * hs, k * hs, cudaMemcpyHostToDevice, c->stream);
            if (e != cudaSuccess) goto fail;
            k_convert<<<grid_for(k, CU_THREADS), CU_THREADS, 0, c->stream>>>((char *)dst + off * ds, dd, c->stage.p,
                                                                             hd, k);
            e = cudaGetLastError();
            if (e != cudaSuccess) goto fail;
        }
    }
    return MD_OK;
fail:
    cudaGetLastError();
    return md_error_set(err, "cuda backend: uploading a weight to device %d failed: %s", c->device,
                        cudaGetErrorString(e));
}

static int cu_prepare(md_backend *be, md_weight *w, md_error *err)
{
    cu_impl *c = impl_of(be);
    w->prepared = NULL;
    if (w->dtype != MD_DTYPE_F32 && w->dtype != MD_DTYPE_F16 && w->dtype != MD_DTYPE_BF16)
        return md_error_set(err, "cuda backend: unsupported weight dtype %d", (int)w->dtype);
    int is_vector = w->rows == 1;
    md_dtype dd = is_vector ? MD_DTYPE_F32 : c->weight_dtype;
    /* the same tensor uploaded already (tied embeddings): share it */
    for (int i = 0; i < c->n_recs; i++) {
        cu_record *r = &c->recs[i];
        if (r->host == w->host && r->host_dtype == w->dtype && r->rows == w->rows && r->cols == w->cols &&
            r->dev_dtype == dd) {
            r->refs++;
            w->prepared = r->dev;
            return MD_OK;
        }
    }
    if (c->n_recs == c->cap_recs) {
        int cap = c->cap_recs ? 2 * c->cap_recs : 64;
        cu_record *g = (cu_record *)realloc(c->recs, (size_t)cap * sizeof *g);
        if (!g) return md_error_set(err, "cuda backend: out of host memory");
        c->recs = g;
        c->cap_recs = cap;
    }
    size_t n = (size_t)w->rows * (size_t)w->cols;
    size_t bytes = n * md_dtype_size(dd);
    void *dev = NULL;
    if (cudaMalloc(&dev, bytes ? bytes : 64) != cudaSuccess) {
        cudaGetLastError();
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        return md_error_set(err,
                            "cuda backend: out of GPU memory uploading a %dx%d %s weight: %.1f MiB needed, %.1f MiB "
                            "free of %.1f MiB on device %d (%s), %.1f MiB of weights uploaded so far; hold fewer "
                            "layers per rank (layer sharding), use a GPU with more memory%s, or the CPU backend",
                            w->rows, w->cols, md_dtype_name(dd), mib(bytes), mib(fr), mib(tot), c->device, c->name,
                            mib(c->weight_bytes),
                            c->weight_dtype == MD_DTYPE_F32 ? ", bf16 weights (unset MECHDIFF_CUDA_WEIGHTS)" : "");
    }
    if (upload(c, dev, dd, w->host, w->dtype, n, err) != MD_OK) {
        cudaFree(dev);
        return MD_ERR;
    }
    cu_record *r = &c->recs[c->n_recs++];
    r->host = w->host;
    r->host_dtype = w->dtype;
    r->rows = w->rows;
    r->cols = w->cols;
    r->dev = dev;
    r->dev_dtype = dd;
    r->bytes = bytes;
    r->refs = 1;
    c->weight_bytes += bytes;
    w->prepared = dev;
    return MD_OK;
}

static void cu_release(md_backend *be, md_weight *w)
{
    cu_impl *c = impl_of(be);
    if (!w->prepared) return;
    cu_record *r = rec_by_dev(c, w->prepared);
    w->prepared = NULL;
    if (!r || --r->refs > 0) return;
    cu_check(c, cudaStreamSynchronize(c->stream), "release");
    cudaFree(r->dev);
    c->weight_bytes -= r->bytes;
    *r = c->recs[--c->n_recs];
}

/* Where a weight's elements live on the device. Besides a prepared weight
 * itself this resolves the two row views forward.c builds for logit ids: a
 * copy with rows = 1 whose `prepared` is (float *)U.prepared + id*cols (the
 * CPU backend's fp32 convention) and `host` still U's start, or one with
 * prepared = NULL and `host` pointing at the row in the mapping. */
typedef struct cu_view {
    const void *dev;
    md_dtype dtype;
} cu_view;

static void resolve(cu_impl *c, const md_weight *w, cu_view *v, const char *op)
{
    /* a row view of an uploaded matrix (checked first: the fp32-convention
     * pointer may run past the bf16 allocation and even hit another one) */
    for (int i = 0; w->rows == 1 && i < c->n_recs; i++) {
        cu_record *q = &c->recs[i];
        if (q->rows <= 1 || q->cols != w->cols || q->host_dtype != w->dtype) continue;
        size_t row_bytes;
        ptrdiff_t off;
        if (w->prepared) {
            if (q->host != w->host) continue;
            row_bytes = (size_t)q->cols * sizeof(float);
            off = (const char *)w->prepared - (const char *)q->dev;
        } else {
            row_bytes = (size_t)q->cols * md_dtype_size(q->host_dtype);
            off = (const char *)w->host - (const char *)q->host;
        }
        if (off < 0 || (size_t)off % row_bytes) continue;
        size_t row = (size_t)off / row_bytes;
        if (row >= (size_t)q->rows) continue;
        v->dev = (const char *)q->dev + row * (size_t)q->cols * md_dtype_size(q->dev_dtype);
        v->dtype = q->dev_dtype;
        return;
    }
    cu_record *r = w->prepared ? rec_by_dev(c, w->prepared) : NULL;
    if (r) {
        v->dev = r->dev;
        v->dtype = r->dev_dtype;
        return;
    }
    cu_fatal(c, op, "a weight that was never prepared on this backend was passed in");
}

/* ------------------------------------------------------------------- GEMM */

static void cu_matmul(md_backend *be, float *y, const float *x, const md_weight *w, int n)
{
    cu_impl *c = impl_of(be);
    if (n <= 0) return;
    cu_view v;
    resolve(c, w, &v, "matmul");
    int M = w->rows, K = w->cols;
    const float one = 1.0f, zero = 0.0f;
    /* Yᵀ(M×n, ld M) = W(M×K) · Xᵀ(K×n): A = stored Wᵀ with op T, B = stored Xᵀ. */
    if (v.dtype == MD_DTYPE_F32) {
        cu_check_blas(c,
                      cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, M, n, K, &one, v.dev, CUDA_R_32F, K, x,
                                   CUDA_R_32F, K, &zero, y, CUDA_R_32F, M, CUBLAS_COMPUTE_32F_PEDANTIC,
                                   CUBLAS_GEMM_DEFAULT),
                      "matmul (fp32)");
        return;
    }
    int pieces = c->gemm_mode == CU_GEMM_X3 ? 3 : 1;
    size_t nk = (size_t)n * K, nm = (size_t)n * M;
    __nv_bfloat16 *xs = (__nv_bfloat16 *)scratch_get(c, &c->xs, (size_t)pieces * nk * sizeof(__nv_bfloat16),
                                                     "matmul: activation scratch");
    k_split_bf16<<<grid_for(nk, CU_THREADS), CU_THREADS, 0, c->stream>>>(xs, x, nk, pieces);
    cu_check_launch(c, "matmul: split");
    if (pieces == 1) {
        cu_check_blas(c,
                      cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, M, n, K, &one, v.dev, CUDA_R_16BF, K, xs,
                                   CUDA_R_16BF, K, &zero, y, CUDA_R_32F, M, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                      "matmul (bf16)");
        return;
    }
    if (3 * nm * sizeof(float) <= CU_TS_MAX_BYTES) {
        /* one GEMM over the 3n stacked rows [hi; mid; lo] (W read once), then
         * y = (lo + mid) + hi */
        float *ts = (float *)scratch_get(c, &c->ts, 3 * nm * sizeof(float), "matmul: partial-product scratch");
        cu_check_blas(c,
                      cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, M, 3 * n, K, &one, v.dev, CUDA_R_16BF, K, xs,
                                   CUDA_R_16BF, K, &zero, ts, CUDA_R_32F, M, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                      "matmul (bf16x3)");
        k_sum3<<<grid_for(nm, CU_THREADS), CU_THREADS, 0, c->stream>>>(y, ts, nm);
        cu_check_launch(c, "matmul: sum");
        return;
    }
    /* many rows × wide output (logits): three GEMMs accumulating into y,
     * smallest piece first (beta = 1 adds in the GEMM's fp32 epilogue) */
    for (int p = 2; p >= 0; p--)
        cu_check_blas(c,
                      cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, M, n, K, &one, v.dev, CUDA_R_16BF, K,
                                   xs + (size_t)p * nk, CUDA_R_16BF, K, p == 2 ? &zero : &one, y, CUDA_R_32F, M,
                                   CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                      "matmul (bf16x3, accumulated)");
}

/* ------------------------------------------------------------ other ops */

static void cu_rmsnorm(md_backend *be, float *y, const float *x, const md_weight *g, int n, int d, float eps)
{
    cu_impl *c = impl_of(be);
    if (n <= 0) return;
    cu_view v;
    resolve(c, g, &v, "rmsnorm");
    if (v.dtype != MD_DTYPE_F32) cu_fatal(c, "rmsnorm", "the gain vector is not fp32 on the device");
    k_rmsnorm<<<n, CU_THREADS, 0, c->stream>>>(y, x, (const float *)v.dev, d, eps);
    cu_check_launch(c, "rmsnorm");
}

/* Copies pos[n] and inv_freq[half] to the device unless the last call had
 * the same values (the forward passes the same arrays for every layer). */
static void cu_rope(md_backend *be, float *x, int n, int n_heads, int head_dim, const int *pos, const float *inv_freq)
{
    cu_impl *c = impl_of(be);
    int half = head_dim / 2;
    if (n <= 0 || half <= 0) return;
    if (n != c->pos_n || memcmp(pos, c->pos_h, (size_t)n * sizeof(int)) != 0) {
        if (n > c->pos_cap) {
            int *g = (int *)realloc(c->pos_h, (size_t)n * sizeof(int));
            if (!g) cu_fatal(c, "rope", "out of host memory");
            c->pos_h = g;
            c->pos_cap = n;
        }
        scratch_get(c, &c->posd, (size_t)n * sizeof(int), "rope: position scratch");
        memcpy(c->pos_h, pos, (size_t)n * sizeof(int));
        c->pos_n = n;
        cu_check(c, cudaMemcpyAsync(c->posd.p, pos, (size_t)n * sizeof(int), cudaMemcpyHostToDevice, c->stream),
                 "rope: positions");
    }
    if (half != c->freq_n || memcmp(inv_freq, c->freq_h, (size_t)half * sizeof(float)) != 0) {
        if (half > c->freq_cap) {
            float *g = (float *)realloc(c->freq_h, (size_t)half * sizeof(float));
            if (!g) cu_fatal(c, "rope", "out of host memory");
            c->freq_h = g;
            c->freq_cap = half;
        }
        scratch_get(c, &c->freqd, (size_t)half * sizeof(float), "rope: frequency scratch");
        memcpy(c->freq_h, inv_freq, (size_t)half * sizeof(float));
        c->freq_n = half;
        cu_check(c,
                 cudaMemcpyAsync(c->freqd.p, inv_freq, (size_t)half * sizeof(float), cudaMemcpyHostToDevice,
                                 c->stream),
                 "rope: inv_freq");
    }
    size_t total = (size_t)n * half;
    k_rope<<<grid_for(total, CU_THREADS), CU_THREADS, 0, c->stream>>>(x, n, n_heads, head_dim, (const int *)c->posd.p,
                                                                      (const float *)c->freqd.p);
    cu_check_launch(c, "rope");
}

static void cu_attention(md_backend *be, float *out, const float *q, int nq, int q_pos0, const float *k0,
                         const float *v0, int n0, const float *k1, const float *v1, int n1, int pad, int n_heads,
                         int n_kv_heads, int head_dim)
{
    cu_impl *c = impl_of(be);
    if (nq <= 0) return;
    int n_keys = n0 + n1;
    size_t smem = (size_t)(32 + head_dim + (n_keys > 0 ? n_keys : 1)) * sizeof(float);
    if (smem > c->attn_smem_max) {
        char msg[256];
        snprintf(msg, sizeof msg, "%d keys need %zu bytes of shared memory per block, the device allows %zu "
                 "(at most %zu keys with head_dim %d)", n_keys, smem, c->attn_smem_max,
                 c->attn_smem_max / sizeof(float) - 32 - (size_t)head_dim, head_dim);
        cu_fatal(c, "attention", msg);
    }
    dim3 grid((unsigned)nq, (unsigned)n_heads);
    k_attention<<<grid, 128, smem, c->stream>>>(out, q, q_pos0, k0, v0, n0, k1, v1, pad, n_heads, n_kv_heads,
                                                head_dim, 1.0f / sqrtf((float)head_dim));
    cu_check_launch(c, "attention");
}

static void cu_swiglu(md_backend *be, float *h, const float *gate, const float *up, size_t n)
{
    cu_impl *c = impl_of(be);
    if (!n) return;
    k_swiglu<<<grid_for(n, CU_THREADS), CU_THREADS, 0, c->stream>>>(h, gate, up, n);
    cu_check_launch(c, "swiglu");
}

static void cu_add(md_backend *be, float *y, const float *x, size_t n)
{
    cu_impl *c = impl_of(be);
    if (!n) return;
    k_add<<<grid_for(n, CU_THREADS), CU_THREADS, 0, c->stream>>>(y, x, n);
    cu_check_launch(c, "add");
}

static void cu_embed(md_backend *be, float *x, const int *tokens, int n, const md_weight *e)
{
    cu_impl *c = impl_of(be);
    if (n <= 0) return;
    cu_view v;
    resolve(c, e, &v, "embed");
    int *td = (int *)scratch_get(c, &c->ints, (size_t)n * sizeof(int), "embed: token scratch");
    cu_check(c, cudaMemcpyAsync(td, tokens, (size_t)n * sizeof(int), cudaMemcpyHostToDevice, c->stream),
             "embed: tokens");
    size_t total = (size_t)n * e->cols;
    k_embed<<<grid_for(total, CU_THREADS), CU_THREADS, 0, c->stream>>>(x, td, n, e->cols, v.dev, (int)v.dtype);
    cu_check_launch(c, "embed");
}

/* The hook vector is a host pointer: copy it to a device scratch first. */
static const float *vec_to_device(cu_impl *c, const float *v, int d, const char *op)
{
    float *vd = (float *)scratch_get(c, &c->vec, (size_t)d * sizeof(float), op);
    cu_check(c, cudaMemcpyAsync(vd, v, (size_t)d * sizeof(float), cudaMemcpyHostToDevice, c->stream), op);
    return vd;
}

static void cu_add_vec(md_backend *be, float *x, int n, int d, const float *v, float coef)
{
    cu_impl *c = impl_of(be);
    if (n <= 0 || d <= 0) return;
    const float *vd = vec_to_device(c, v, d, "add_vec");
    size_t total = (size_t)n * d;
    k_add_vec<<<grid_for(total, CU_THREADS), CU_THREADS, 0, c->stream>>>(x, n, d, vd, coef);
    cu_check_launch(c, "add_vec");
}

static void cu_ablate(md_backend *be, float *x, int n, int d, const float *v)
{
    cu_impl *c = impl_of(be);
    if (n <= 0 || d <= 0) return;
    const float *vd = vec_to_device(c, v, d, "ablate");
    k_ablate<<<n, CU_THREADS, 0, c->stream>>>(x, d, vd);
    cu_check_launch(c, "ablate");
}

/* --------------------------------------------------------- create/destroy */

static void impl_free(cu_impl *c)
{
    if (!c) return;
    if (c->stream) cudaStreamSynchronize(c->stream);
    for (int i = 0; i < c->n_recs; i++) cudaFree(c->recs[i].dev);
    free(c->recs);
    scratch_free(&c->xs);
    scratch_free(&c->ts);
    scratch_free(&c->stage);
    scratch_free(&c->vec);
    scratch_free(&c->ints);
    scratch_free(&c->posd);
    scratch_free(&c->freqd);
    free(c->pos_h);
    free(c->freq_h);
    if (c->blas) cublasDestroy(c->blas);
    if (c->stream) cudaStreamDestroy(c->stream);
    free(c);
}

static void cu_destroy(md_backend *be)
{
    impl_free(impl_of(be));
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
    /* .rmsnorm */ cu_rmsnorm,
    /* .rope */ cu_rope,
    /* .attention */ cu_attention,
    /* .swiglu */ cu_swiglu,
    /* .add */ cu_add,
    /* .embed */ cu_embed,
    /* .add_vec */ cu_add_vec,
    /* .ablate */ cu_ablate,
    /* .destroy */ cu_destroy,
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
    e = cudaFuncGetAttributes(&fa, k_attention);
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
    e = cudaFuncSetAttribute(k_attention, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             (int)(c->attn_smem_max - fa.sharedSizeBytes));
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
                         cublas_status_name(s));
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
