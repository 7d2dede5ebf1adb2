/* cuda_index.h — the index math of the CUDA kernels (cuda_kernels.cu) as
 * plain inline functions: __host__ __device__ under nvcc, ordinary C11
 * elsewhere, so tests/unit/test_cuda_index.c checks them on the host (no
 * GPU, no CUDA build) against the CPU reference's semantics (cpu.c): which
 * keys a query sees, where each sequence of attention_seqs reads and writes,
 * the launch chunks over grid z, and the element a thread of put_cells /
 * get_cells touches. Integer math only: nothing here rounds a float. */
#ifndef MECHDIFF_CUDA_INDEX_H
#define MECHDIFF_CUDA_INDEX_H

#include <stddef.h>

#ifdef __CUDACC__
#define CU_HD __host__ __device__
#else
#define CU_HD
#endif

#define CU_GRID_X_CAP (65535u * 32u) /* blocks of a grid-stride launch (kernels loop over the rest) */
#define CU_GRID_Z_MAX 65535          /* gridDim.z limit: attention_seqs launches in chunks of this */

/* Blocks for a grid-stride loop over n items with `threads` per block:
 * at least 1 (a 0-item launch is valid and does nothing), at most the cap. */
static inline CU_HD unsigned cu_grid_for(size_t n, int threads)
{
    size_t g = (n + (size_t)threads - 1) / (size_t)threads;
    if (g > CU_GRID_X_CAP) g = CU_GRID_X_CAP;
    return (unsigned)(g ? g : 1);
}

/* The first key a query at position p sees (cpu.c's first_key): itself
 * only while it is a padding token (p < pad), else from the first real
 * token, and within the sliding window when window > 0. It sees [lo, p]. */
static inline CU_HD int cu_attn_first_key(int p, int pad, int window)
{
    int lo = p < pad ? p : pad;
    if (p >= pad && window > 0 && p - window + 1 > lo) lo = p - window + 1;
    return lo;
}

/* Floats of an attention block's dynamic shared memory: the reduction's 32
 * slots, the query's head_dim values and one score per key (at least 1). */
static inline CU_HD size_t cu_attn_smem_floats(int head_dim, int n_keys)
{
    return (size_t)32 + (size_t)head_dim + (size_t)(n_keys > 0 ? n_keys : 1);
}

/* Where sequence z of attention_seqs reads and writes (floats from q/out,
 * k0/v0 and k1/v1): its nq query rows, prefix z mod n_par, own keys. */
typedef struct cu_seq_at {
    size_t rows; /* q and out */
    size_t kv0;  /* k0 and v0 */
    size_t kv1;  /* k1 and v1 */
} cu_seq_at;

static inline CU_HD cu_seq_at cu_attn_seq_at(int z, int nq, int n_heads, int head_dim, size_t kv0_stride,
                                             int n_par, size_t kv1_stride)
{
    cu_seq_at a;
    a.rows = (size_t)z * (size_t)nq * (size_t)n_heads * (size_t)head_dim;
    a.kv0 = (size_t)(z % n_par) * kv0_stride;
    a.kv1 = (size_t)z * kv1_stride;
    return a;
}

/* The sequences of the attention_seqs launch that starts at z0: at most
 * CU_GRID_Z_MAX (gridDim.z), block z of it is sequence z0 + z. */
static inline CU_HD int cu_z_chunk(int n_seq, int z0)
{
    int left = n_seq - z0;
    return left < CU_GRID_Z_MAX ? left : CU_GRID_Z_MAX;
}

/* put_cells / get_cells: item t of the flat [n][w] source (or destination)
 * is element t mod w of cell t / w, at this float offset of x. */
static inline CU_HD size_t cu_cell_elem(const size_t *off, size_t t, int w)
{
    return off[t / (size_t)w] + t % (size_t)w;
}

#endif
