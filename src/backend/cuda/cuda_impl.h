/* cuda_impl.h — what the CUDA backend's translation units share (C++ only,
 * not installed):
 *   cuda_kernels.cu  the kernels and their launchers (no backend state);
 *   cuda_memory.cu   errors, scratch, copies, weight upload/lookup;
 *   backend_cuda.cu  the compute ops, the op table, create/destroy, queries.
 * See backend_cuda.cu for the numerics, streams and limits. */
#ifndef MECHDIFF_CUDA_IMPL_H
#define MECHDIFF_CUDA_IMPL_H

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stddef.h>

extern "C" {
#include "mechdiff/backend.h"
}

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
    cu_scratch cells;          /* offsets and sources of put_cells / get_cells */
    cu_scratch ints;           /* token ids */
    cu_scratch pads;           /* left padding per sequence (attention_seqs) */
    cu_scratch posd;           /* positions (device copy of pos_h) */
    cu_scratch freqd;          /* inv_freq (device copy of freq_h) */
    int *pos_h;                /* host mirror of what posd holds; owned */
    int pos_n, pos_cap;
    float *freq_h;             /* host mirror of what freqd holds; owned */
    int freq_n, freq_cap;
    /* MECHDIFF_PROFILE (cuda_profile.cu): an event pair per open span */
    cudaEvent_t *prof_ev;      /* [2 * CU_PROF_SPANS]; owned; NULL until the first span */
    unsigned char *prof_cls;   /* [CU_PROF_SPANS] class of each span; owned */
    int prof_n;                /* spans recorded, not yet read */
    int prof_failed;           /* events could not be created: spans not timed */
} cu_impl;

/* Where a weight's elements live on the device (see cu_resolve). */
typedef struct cu_view {
    const void *dev;
    md_dtype dtype;
} cu_view;

#define CU_PROF_SPANS 2048                   /* open profiling spans before they are read */
#define CU_STAGE_BYTES ((size_t)32 << 20)   /* conversion staging per chunk */
#define CU_TS_MAX_BYTES ((size_t)64 << 20)  /* stacked x3 partials; above: 3 GEMMs */

static inline cu_impl *cu_impl_of(md_backend *be) { return (cu_impl *)be->impl; }
static inline double cu_mib(size_t b) { return (double)b / (1024.0 * 1024.0); }

/* ---- cuda_memory.cu */

/* An op failed: "cuda backend (device D, NAME): OP: WHAT" into err; MD_ERR. */
int cu_fail(const cu_impl *c, md_error *err, const char *op, const char *what);
/* MD_OK, or cu_fail with the runtime's / cuBLAS's message (the sticky
 * runtime error, if any, is cleared). */
int cu_check(const cu_impl *c, cudaError_t e, const char *op, md_error *err);
int cu_check_launch(const cu_impl *c, const char *op, md_error *err);
int cu_check_blas(const cu_impl *c, cublasStatus_t s, const char *op, md_error *err);
const char *cu_blas_status_name(cublasStatus_t s);
/* Grows a scratch to >= need bytes (contents not kept); NULL + err when the
 * GPU is out of memory. */
void *cu_scratch_get(cu_impl *c, cu_scratch *s, size_t need, const char *op, md_error *err);
void cu_scratch_free(cu_scratch *s);
/* The device elements of a prepared weight (or a row view of one); MD_ERR
 * when w was never prepared on this backend. */
int cu_resolve(cu_impl *c, const md_weight *w, cu_view *v, const char *op, md_error *err);

void *cu_alloc(md_backend *be, size_t bytes);
void cu_free(md_backend *be, void *p);
int cu_to_device(md_backend *be, void *dst, const void *src, size_t bytes, md_error *err);
int cu_to_host(md_backend *be, void *dst, const void *src, size_t bytes, md_error *err);
int cu_copy(md_backend *be, void *dst, const void *src, size_t bytes, md_error *err);
int cu_prepare(md_backend *be, md_weight *w, md_error *err);
void cu_release(md_backend *be, md_weight *w);

/* ---- cuda_profile.cu */

/* Destroys the profiling events (impl_free, after the stream is synchronised). */
void cu_profile_free(cu_impl *c);

/* ---- cuda_kernels.cu: enqueue on `st`; return cudaGetLastError() */

#define CU_THREADS 256

cudaError_t cu_launch_convert(cudaStream_t st, void *dst, md_dtype dd, const void *src, md_dtype sd, size_t n);
cudaError_t cu_launch_split_bf16(cudaStream_t st, __nv_bfloat16 *out, const float *x, size_t n, int pieces);
cudaError_t cu_launch_sum3(cudaStream_t st, float *y, const float *t, size_t n);
cudaError_t cu_launch_rmsnorm(cudaStream_t st, float *y, const float *x, const float *g, int n, int d, float eps);
cudaError_t cu_launch_rope(cudaStream_t st, float *x, int n, int n_heads, int head_dim, const int *pos,
                           const float *inv_freq);
cudaError_t cu_launch_attention(cudaStream_t st, size_t smem, float *out, const float *q, int nq, int q_pos0,
                                const float *k0, const float *v0, int n0, const float *k1, const float *v1, int n1,
                                int pad, const md_attn_shape *sh, float *probs);
/* n_seq sequences (grid z = sequence, one launch per CU_GRID_Z_MAX of them;
 * see attention_seqs in backend.h and cuda_index.h); no probabilities. */
cudaError_t cu_launch_attention_seqs(cudaStream_t st, size_t smem, float *out, const float *q, int n_seq, int nq,
                                     int q_pos0, const float *k0, const float *v0, int n0, size_t kv0_stride,
                                     int n_par, const float *k1, const float *v1, int n1, size_t kv1_stride,
                                     const int *pads, const md_attn_shape *sh);
cudaError_t cu_launch_attn_mix(cudaStream_t st, float *out, const float *probs, int nq, int q_pos0, const float *v0,
                               int n0, const float *v1, int n1, int pad, const md_attn_shape *sh);
/* The attention kernel's attributes; raising its (and attention_seqs') dynamic shared memory. */
cudaError_t cu_attention_attributes(cudaFuncAttributes *fa);
cudaError_t cu_attention_set_smem(int bytes);
cudaError_t cu_launch_gated_act(cudaStream_t st, float *h, const float *gate, const float *up, size_t n, md_act act);
cudaError_t cu_launch_add(cudaStream_t st, float *y, const float *x, size_t n);
cudaError_t cu_launch_scale(cudaStream_t st, float *x, size_t n, float s);
cudaError_t cu_launch_add_rows(cudaStream_t st, float *x, int n, int d, const float *v, float coef);
cudaError_t cu_launch_embed(cudaStream_t st, float *x, const int *tokens, int n, int cols, const void *e,
                            md_dtype e_dtype);
cudaError_t cu_launch_ablate(cudaStream_t st, float *x, int n, int d, const float *v);
/* dst[i][0..w) = x + off[i], for i < n; all on the device. */
cudaError_t cu_launch_get_cells(cudaStream_t st, float *dst, const float *x, int n, int w, const size_t *off);
/* x + off[i] gets src[i][0..w) (add: += coef * src), for i < n; off, src on the device. */
cudaError_t cu_launch_put_cells(cudaStream_t st, float *x, int n, int w, const size_t *off, const float *src,
                                int add, float coef);

#endif
