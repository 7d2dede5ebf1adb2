/* cuda_kernels.cu — the CUDA backend's kernels and their launchers (see
 * cuda_impl.h). Each kernel follows the CPU reference (src/backend/cpu.c)
 * element for element; where the summation order differs it says so. The
 * launchers enqueue on the given stream and return the launch status; they
 * hold no state. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/cuda_index.h"

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
/* Query i, head h of one sequence (one block): probs (optional) gets the
 * probabilities [nq][n_heads][n_keys], 0 at the keys the query does not see. */
__device__ static void attend(float *out, const float *q, int i, int h, int q_pos0, const float *k0, const float *v0,
                              int n0, const float *k1, const float *v1, int pad, int n_heads, int n_kv_heads,
                              int head_dim, float scale, float softcap, int window, float *probs, int n_keys)
{
    extern __shared__ float sm[];
    float *red = sm, *qs = sm + 32, *sc = qs + head_dim;
    int p = q_pos0 + i;
    int lo = cu_attn_first_key(p, pad, window);
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
        if (lane == 0) {
            float sv = dot * scale;
            sc[t] = softcap > 0.0f ? tanhf(sv / softcap) * softcap : sv;
        }
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
    if (probs) {
        float *ph = probs + ((size_t)i * n_heads + h) * n_keys;
        for (int s = threadIdx.x; s < n_keys; s += blockDim.x) ph[s] = s >= lo && s <= p ? sc[s - lo] * inv : 0.0f;
    }
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

__global__ static void k_attention(float *out, const float *q, int q_pos0, const float *k0, const float *v0, int n0,
                                   const float *k1, const float *v1, int pad, int n_heads, int n_kv_heads,
                                   int head_dim, float scale, float softcap, int window, float *probs, int n_keys)
{
    attend(out, q, blockIdx.x, blockIdx.y, q_pos0, k0, v0, n0, k1, v1, pad, n_heads, n_kv_heads, head_dim, scale,
           softcap, window, probs, n_keys);
}

/* attention_seqs: sequence z = z0 + blockIdx.z (a launch covers at most
 * CU_GRID_Z_MAX of them) reads q/out at z * nq rows, its prefix at
 * (z mod n_par) * kv0_stride, its own keys at z * kv1_stride, pads[z]
 * (cu_attn_seq_at); each block computes exactly what k_attention's would. */
__global__ static void k_attention_seqs(float *out, const float *q, int z0, int nq, int q_pos0, const float *k0,
                                        const float *v0, int n0, size_t kv0_stride, int n_par, const float *k1,
                                        const float *v1, size_t kv1_stride, const int *pads, int n_heads,
                                        int n_kv_heads, int head_dim, float scale, float softcap, int window,
                                        int n_keys)
{
    int z = z0 + (int)blockIdx.z;
    cu_seq_at a = cu_attn_seq_at(z, nq, n_heads, head_dim, kv0_stride, n_par, kv1_stride);
    attend(out + a.rows, q + a.rows, blockIdx.x, blockIdx.y, q_pos0, k0 ? k0 + a.kv0 : k0, v0 ? v0 + a.kv0 : v0, n0,
           k1 + a.kv1, v1 + a.kv1, pads ? pads[z] : 0, n_heads, n_kv_heads, head_dim, scale, softcap, window, NULL,
           n_keys);
}

/* out = probs · V over the keys each query sees, in k_attention's order
 * (equal probabilities give its bits). One block per (query i, head h). */
__global__ static void k_attn_mix(float *out, const float *probs, int q_pos0, const float *v0, int n0, const float *v1,
                                  int pad, int n_heads, int n_kv_heads, int head_dim, int window, int n_keys)
{
    int i = blockIdx.x, h = blockIdx.y;
    int p = q_pos0 + i, lo = cu_attn_first_key(p, pad, window);
    int kvh = h / (n_heads / n_kv_heads), kv_dim = n_kv_heads * head_dim;
    const float *ph = probs + ((size_t)i * n_heads + h) * n_keys;
    float *oh = out + ((size_t)i * n_heads + h) * head_dim;
    for (int j = threadIdx.x; j < head_dim; j += blockDim.x) {
        float acc = 0.0f;
        for (int s = lo; s <= p; s++) {
            const float *vs = (s < n0 ? v0 + (size_t)s * kv_dim : v1 + (size_t)(s - n0) * kv_dim) + (size_t)kvh * head_dim;
            acc += ph[s] * vs[j];
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

/* gelu(gate, tanh approximation) * up, as cpu.c */
__global__ static void k_geglu(float *hh, const float *gate, const float *up, size_t n)
{
    const float kk = 0.7978845608028654f; /* sqrt(2/pi) */
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float x = gate[i];
        hh[i] = (0.5f * x * (1.0f + tanhf(kk * (x + 0.044715f * x * x * x)))) * up[i];
    }
}

__global__ static void k_scale(float *x, size_t n, float s)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] *= s;
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

/* The cells of a batched hook: x[off[i] + j] = src[i][j], or += coef * src[i][j]
 * (no contraction: -fmad=false, as k_add_vec and cpu.c). */
__global__ static void k_put_cells(float *x, int n, int w, const size_t *off, const float *src, int add, float coef)
{
    size_t total = (size_t)n * w;
    for (size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x; t < total; t += (size_t)gridDim.x * blockDim.x) {
        float *cell = x + cu_cell_elem(off, t, w);
        if (add) *cell += coef * src[t];
        else *cell = src[t];
    }
}

/* dst[i][j] = x[off[i] + j]: the cells of a read, gathered. */
__global__ static void k_get_cells(float *dst, const float *x, int n, int w, const size_t *off)
{
    size_t total = (size_t)n * w;
    for (size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x; t < total; t += (size_t)gridDim.x * blockDim.x)
        dst[t] = x[cu_cell_elem(off, t, w)];
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

/* ------------------------------------------------------------- launchers */

cudaError_t cu_launch_convert(cudaStream_t st, void *dst, md_dtype dd, const void *src, md_dtype sd, size_t n)
{
    k_convert<<<cu_grid_for(n, CU_THREADS), CU_THREADS, 0, st>>>(dst, (int)dd, src, (int)sd, n);
    return cudaGetLastError();
}

cudaError_t cu_launch_split_bf16(cudaStream_t st, __nv_bfloat16 *out, const float *x, size_t n, int pieces)
{
    k_split_bf16<<<cu_grid_for(n, CU_THREADS), CU_THREADS, 0, st>>>(out, x, n, pieces);
    return cudaGetLastError();
}

cudaError_t cu_launch_sum3(cudaStream_t st, float *y, const float *t, size_t n)
{
    k_sum3<<<cu_grid_for(n, CU_THREADS), CU_THREADS, 0, st>>>(y, t, n);
    return cudaGetLastError();
}

cudaError_t cu_launch_rmsnorm(cudaStream_t st, float *y, const float *x, const float *g, int n, int d, float eps)
{
    k_rmsnorm<<<n, CU_THREADS, 0, st>>>(y, x, g, d, eps);
    return cudaGetLastError();
}

cudaError_t cu_launch_rope(cudaStream_t st, float *x, int n, int n_heads, int head_dim, const int *pos,
                           const float *inv_freq)
{
    size_t total = (size_t)n * (head_dim / 2);
    k_rope<<<cu_grid_for(total, CU_THREADS), CU_THREADS, 0, st>>>(x, n, n_heads, head_dim, pos, inv_freq);
    return cudaGetLastError();
}

cudaError_t cu_launch_attention(cudaStream_t st, size_t smem, float *out, const float *q, int nq, int q_pos0,
                                const float *k0, const float *v0, int n0, const float *k1, const float *v1, int n1,
                                int pad, const md_attn_shape *sh, float *probs)
{
    dim3 grid((unsigned)nq, (unsigned)sh->n_heads);
    k_attention<<<grid, 128, smem, st>>>(out, q, q_pos0, k0, v0, n0, k1, v1, pad, sh->n_heads, sh->n_kv_heads,
                                         sh->head_dim, sh->scale, sh->softcap, sh->window, probs, n0 + n1);
    return cudaGetLastError();
}

cudaError_t cu_launch_attention_seqs(cudaStream_t st, size_t smem, float *out, const float *q, int n_seq, int nq,
                                     int q_pos0, const float *k0, const float *v0, int n0, size_t kv0_stride,
                                     int n_par, const float *k1, const float *v1, int n1, size_t kv1_stride,
                                     const int *pads, const md_attn_shape *sh)
{
    for (int z0 = 0; z0 < n_seq; z0 += CU_GRID_Z_MAX) { /* gridDim.z <= 65535: chunks of sequences */
        dim3 grid((unsigned)nq, (unsigned)sh->n_heads, (unsigned)cu_z_chunk(n_seq, z0));
        k_attention_seqs<<<grid, 128, smem, st>>>(out, q, z0, nq, q_pos0, k0, v0, n0, kv0_stride, n_par, k1, v1,
                                                  kv1_stride, pads, sh->n_heads, sh->n_kv_heads, sh->head_dim,
                                                  sh->scale, sh->softcap, sh->window, n0 + n1);
        cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
}

cudaError_t cu_launch_attn_mix(cudaStream_t st, float *out, const float *probs, int nq, int q_pos0, const float *v0,
                               int n0, const float *v1, int n1, int pad, const md_attn_shape *sh)
{
    dim3 grid((unsigned)nq, (unsigned)sh->n_heads);
    k_attn_mix<<<grid, 128, 0, st>>>(out, probs, q_pos0, v0, n0, v1, pad, sh->n_heads, sh->n_kv_heads, sh->head_dim,
                                      sh->window, n0 + n1);
    return cudaGetLastError();
}

cudaError_t cu_attention_attributes(cudaFuncAttributes *fa)
{
    return cudaFuncGetAttributes(fa, k_attention);
}

cudaError_t cu_attention_set_smem(int bytes)
{
    cudaError_t e = cudaFuncSetAttribute(k_attention, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
    if (e != cudaSuccess) return e;
    return cudaFuncSetAttribute(k_attention_seqs, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
}

cudaError_t cu_launch_gated_act(cudaStream_t st, float *h, const float *gate, const float *up, size_t n, md_act act)
{
    if (act == MD_ACT_GELU_TANH) k_geglu<<<cu_grid_for(n, CU_THREADS), CU_THREADS, 0, st>>>(h, gate, up, n);
    else k_swiglu<<<cu_grid_for(n, CU_THREADS), CU_THREADS, 0, st>>>(h, gate, up, n);
    return cudaGetLastError();
}

cudaError_t cu_launch_add(cudaStream_t st, float *y, const float *x, size_t n)
{
    k_add<<<cu_grid_for(n, CU_THREADS), CU_THREADS, 0, st>>>(y, x, n);
    return cudaGetLastError();
}

cudaError_t cu_launch_scale(cudaStream_t st, float *x, size_t n, float s)
{
    k_scale<<<cu_grid_for(n, CU_THREADS), CU_THREADS, 0, st>>>(x, n, s);
    return cudaGetLastError();
}

cudaError_t cu_launch_add_rows(cudaStream_t st, float *x, int n, int d, const float *v, float coef)
{
    size_t total = (size_t)n * d;
    k_add_vec<<<cu_grid_for(total, CU_THREADS), CU_THREADS, 0, st>>>(x, n, d, v, coef);
    return cudaGetLastError();
}

cudaError_t cu_launch_embed(cudaStream_t st, float *x, const int *tokens, int n, int cols, const void *e,
                            md_dtype e_dtype)
{
    size_t total = (size_t)n * cols;
    k_embed<<<cu_grid_for(total, CU_THREADS), CU_THREADS, 0, st>>>(x, tokens, n, cols, e, (int)e_dtype);
    return cudaGetLastError();
}

cudaError_t cu_launch_ablate(cudaStream_t st, float *x, int n, int d, const float *v)
{
    k_ablate<<<n, CU_THREADS, 0, st>>>(x, d, v);
    return cudaGetLastError();
}

cudaError_t cu_launch_get_cells(cudaStream_t st, float *dst, const float *x, int n, int w, const size_t *off)
{
    size_t total = (size_t)n * w;
    k_get_cells<<<cu_grid_for(total, CU_THREADS), CU_THREADS, 0, st>>>(dst, x, n, w, off);
    return cudaGetLastError();
}

cudaError_t cu_launch_put_cells(cudaStream_t st, float *x, int n, int w, const size_t *off, const float *src,
                                int add, float coef)
{
    size_t total = (size_t)n * w;
    k_put_cells<<<cu_grid_for(total, CU_THREADS), CU_THREADS, 0, st>>>(x, n, w, off, src, add, coef);
    return cudaGetLastError();
}
