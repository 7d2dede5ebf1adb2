/* backend.h — the small compute interface the forward pass runs on.
 *
 * The forward loop (src/model/forward.c) only calls these ops; the CPU
 * backend (OpenBLAS, fp32) is the reference, a CUDA backend implements the
 * same table. All float pointers passed to ops are backend memory (host
 * memory for the CPU backend). Matrices are row-major; a weight W is stored
 * as Hugging Face stores it, [out][in], and matmul computes Y = X · Wᵀ. */
#ifndef MECHDIFF_BACKEND_H
#define MECHDIFF_BACKEND_H

#include <stddef.h>

#include "mechdiff/dtype.h"
#include "mechdiff/error.h"

/* One weight matrix or vector as the backend sees it. `host` points into the
 * mmap'd checkpoint (never owned); `prepared` is backend-owned (an fp32 copy
 * or a device buffer), or NULL when the backend converts on the fly. */
typedef struct md_weight {
    const void *host;
    md_dtype dtype;
    int rows;        /* out features (1 for vectors) */
    int cols;        /* in features */
    void *prepared;
} md_weight;

typedef struct md_backend md_backend;

/* 1 when a model binds w (optional tensors such as biases are absent: zeroed). */
static inline int md_weight_present(const md_weight *w)
{
    return w->host != NULL || w->prepared != NULL;
}

/* The gate activation of a gated MLP: h = act(gate) * up. */
typedef enum md_act {
    MD_ACT_SILU = 0,       /* Llama, Mistral, Qwen, OLMo-2 (SwiGLU) */
    MD_ACT_GELU_TANH = 1   /* Gemma-2: gelu with the tanh approximation */
} md_act;

/* What the attention op computes besides the causal softmax. */
typedef struct md_attn_shape {
    int n_heads, n_kv_heads, head_dim;
    float scale;      /* score = (q·k) * scale; 1/sqrtf(head_dim) for Llama */
    float softcap;    /* 0: none; else score = softcap * tanh(score / softcap) */
    int window;       /* 0: every earlier key; else only keys s with p - s < window */
} md_attn_shape;

/* Every op but alloc/free/release/destroy returns MD_OK, or MD_ERR with a
 * message in err that names the backend, the op and what failed (a CUDA
 * launch failure, out of device memory, an unsupported shape). The caller
 * (forward.c) adds the layer, the experiment runner the unit. After an
 * error the outputs of the op are undefined; the backend stays usable for
 * freeing. */
typedef struct md_backend_ops {
    const char *name;
    void *(*alloc)(md_backend *be, size_t bytes);                 /* zeroed; NULL when out of memory */
    void (*free)(md_backend *be, void *p);
    int (*to_device)(md_backend *be, void *dst, const void *src, size_t bytes, md_error *err);
    int (*to_host)(md_backend *be, void *dst, const void *src, size_t bytes, md_error *err);
    int (*copy)(md_backend *be, void *dst, const void *src, size_t bytes, md_error *err);
    int (*prepare)(md_backend *be, md_weight *w, md_error *err);
    void (*release)(md_backend *be, md_weight *w);
    /* y[n][w->rows] = x[n][w->cols] · Wᵀ  (fp32 accumulation) */
    int (*matmul)(md_backend *be, float *y, const float *x, const md_weight *w, int n, md_error *err);
    /* y[n][b->cols] += b  (a bias vector, rows == 1) */
    int (*add_bias)(md_backend *be, float *y, const md_weight *b, int n, md_error *err);
    /* y[n][d] = x / rms(x) * g   (y may alias x) */
    int (*rmsnorm)(md_backend *be, float *y, const float *x, const md_weight *g, int n, int d, float eps,
                   md_error *err);
    /* rotates n rows of n_heads heads of head_dim at positions pos[n] (half-split
     * layout as in HF's rotate_half); inv_freq[head_dim/2] */
    int (*rope)(md_backend *be, float *x, int n, int n_heads, int head_dim, const int *pos, const float *inv_freq,
                md_error *err);
    /* Causal attention for one sequence: q[nq][n_heads*hd] at absolute
     * positions q_pos0 .. q_pos0+nq-1; keys/values are k0/v0 for positions
     * [0, n0) (the shared prefix) then k1/v1 for positions [n0, n0+n1);
     * keys before `pad` are masked; out[nq][n_heads*hd]. probs (NULL: not
     * written) gets the attention probabilities [nq][n_heads][n0+n1], 0 at
     * the keys a query does not see. */
    int (*attention)(md_backend *be, float *out, const float *q, int nq, int q_pos0, const float *k0,
                     const float *v0, int n0, const float *k1, const float *v1, int n1, int pad,
                     const md_attn_shape *shape, float *probs, md_error *err);
    /* out = probs · V: the second half of attention from given probabilities
     * probs[nq][n_heads][n0+n1] (a patched pattern), over the keys each query
     * sees (as attention: causal, window, pad; other entries ignored), in
     * attention's summation order, so unedited probs give attention's out
     * bit for bit. */
    int (*attn_mix)(md_backend *be, float *out, const float *probs, int nq, int q_pos0, const float *v0, int n0,
                    const float *v1, int n1, int pad, const md_attn_shape *shape, md_error *err);
    /* h[i] = act(gate[i]) * up[i]  (h may alias gate) */
    int (*gated_act)(md_backend *be, float *h, const float *gate, const float *up, size_t n, md_act act,
                     md_error *err);
    /* y[i] += x[i] */
    int (*add)(md_backend *be, float *y, const float *x, size_t n, md_error *err);
    /* x[i] *= s */
    int (*scale)(md_backend *be, float *x, size_t n, float s, md_error *err);
    /* x[i][:] = E[tokens[i]][:] */
    int (*embed)(md_backend *be, float *x, const int *tokens, int n, const md_weight *e, md_error *err);
    /* x[row][:] += coef * v  for each of n rows (v: host pointer, d floats) */
    int (*add_vec)(md_backend *be, float *x, int n, int d, const float *v, float coef, md_error *err);
    /* x[row][:] -= (x·v) v for each of n rows (v: host pointer, unit) */
    int (*ablate)(md_backend *be, float *x, int n, int d, const float *v, md_error *err);
    void (*destroy)(md_backend *be);
    /* Optional (NULL: the caller runs attention once per sequence):
     * attention for n_seq sequences of nq queries in one call, with exactly
     * the numbers of attention per sequence and no probs. Sequence s reads
     * q and writes out at row s * nq, reads its prefix keys/values k0/v0
     * (NULL when n0 == 0) at (s mod n_par) * kv0_stride floats and its own
     * k1/v1 at s * kv1_stride floats; pads[n_seq] (host, NULL = none). The
     * partial forwards of batched patching run hundreds of sequences per
     * layer: one launch instead of one per sequence on a GPU. */
    int (*attention_seqs)(md_backend *be, float *out, const float *q, int n_seq, int nq, int q_pos0,
                          const float *k0, const float *v0, int n0, size_t kv0_stride, int n_par, const float *k1,
                          const float *v1, int n1, size_t kv1_stride, const int *pads, const md_attn_shape *shape,
                          md_error *err);
    /* The cells of a replace or add hook, all sequences in one call (one
     * launch on a GPU, not one copy per sequence): for
     * i < n, the w floats at x + off[i] become src[i][:] (add == 0), or get
     * coef * src[i][:] added as add_vec does (add != 0). off[n] and src[n][w]
     * are host memory, read before the call returns; cells do not overlap. */
    int (*put_cells)(md_backend *be, float *x, int n, int w, const size_t *off, const float *src, int add,
                     float coef, md_error *err);
    /* The reverse, for reads of scattered cells: dst[i][:] = the w floats
     * at x + off[i], for i < n; dst (host, [n][w]) is written when the call
     * returns (one gather and one copy back on a GPU). */
    int (*get_cells)(md_backend *be, float *dst, const float *x, int n, int w, const size_t *off, md_error *err);
} md_backend_ops;

struct md_backend {
    const md_backend_ops *ops;
    void *impl;
};

typedef enum md_backend_kind {
    MD_BACKEND_CPU = 0,
    MD_BACKEND_CUDA = 1
} md_backend_kind;

/* Precision of the CUDA backend (docs/cuda.md). AUTO = the environment
 * variable (MECHDIFF_CUDA_WEIGHTS = bf16|f32, MECHDIFF_CUDA_GEMM = x3|bf16)
 * when set, else the default: bf16 weights, x3 GEMMs (fp32-exact
 * activations, the closest match to the CPU reference). */
typedef enum md_cuda_weights {
    MD_CUDA_WEIGHTS_AUTO = 0,
    MD_CUDA_WEIGHTS_BF16 = 1,
    MD_CUDA_WEIGHTS_F32 = 2
} md_cuda_weights;

typedef enum md_cuda_gemm {
    MD_CUDA_GEMM_AUTO = 0,
    MD_CUDA_GEMM_X3 = 1,  /* activations split into three exact bf16 pieces */
    MD_CUDA_GEMM_BF16 = 2 /* activations rounded to bf16: 3x fewer flops */
} md_cuda_gemm;

/* The spellings used by the job keys and the environment variables:
 * "auto" | "bf16" | "f32" (or "fp32"), and "auto" | "x3" | "bf16".
 * Return 0 and set *out, or -1 (and leave *out alone) for any other string. */
int md_cuda_weights_parse(const char *s, md_cuda_weights *out);
int md_cuda_gemm_parse(const char *s, md_cuda_gemm *out);

/* Zero-initialise, then set what differs from the defaults. */
typedef struct md_backend_options {
    size_t fp32_cache_bytes;      /* CPU: keep an fp32 copy of bf16/f16 weights while the
                                     total stays below this budget, stream the rest: converted
                                     for each matmul on the GEMM's threads (0: cache nothing) */
    size_t cpu_panel_bytes;       /* CPU: largest fp32 panel of a streamed matrix (0: 256 MiB);
                                     a matrix that fits runs the cached path's exact GEMM */
    int device;                   /* CUDA: GPU ordinal */
    md_cuda_weights cuda_weights; /* CUDA: how weight matrices are stored on the GPU */
    md_cuda_gemm cuda_gemm;       /* CUDA: how activations enter bf16 GEMMs */
} md_backend_options;

/* Creates a backend of `kind` with `opt` (NULL = all defaults). */
int md_backend_create(md_backend **out, md_backend_kind kind, const md_backend_options *opt, md_error *err);
void md_backend_destroy(md_backend *be);

#endif
