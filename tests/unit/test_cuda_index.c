/* test_cuda_index.c — the CUDA kernels' index math (src/backend/cuda/
 * cuda_index.h, compiled here as plain C) on the host, against the CPU
 * reference, with no GPU and no CUDA build:
 *   - cu_attn_first_key: the keys [lo, p] a query sees are exactly those the
 *     op contract allows (causal, left padding, sliding window), and the
 *     scores fit the shared memory cu_attn_smem_floats gives;
 *   - attention_seqs: the CPU backend's attention run block by block at the
 *     offsets cu_attn_seq_at gives equals its attention_seqs bit for bit; the
 *     launches in chunks of gridDim.z (cu_z_chunk) cover every sequence once,
 *     also past 65535 sequences, and the offsets do not wrap at 32 bits;
 *   - put_cells / get_cells: a grid-stride launch (cu_grid_for blocks, or a
 *     forced small grid) through cu_cell_elem touches every element once and
 *     gives the CPU backend's results bit for bit. */
#include <stdint.h>
#include <string.h>

#include "backend/cuda/cuda_index.h"
#include "mechdiff/backend.h"
#include "testutil.h"

static uint64_t rng = 0x853C49E6748FEA9Bull;

static float urand(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng >> 40) / 16777216.0) - 0.5f;
}

static float *rand_vec(size_t n)
{
    float *v = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; v && i < n; i++) v[i] = urand();
    return v;
}

/* Key s is visible to the query at p (backend.h: causal, keys before pad
 * masked, p - s < window; a padding query sees only itself). */
static int visible(int s, int p, int pad, int window)
{
    if (p < pad) return s == p;
    return s >= pad && s <= p && (window <= 0 || p - s < window);
}

static void check_first_key(void)
{
    int bad = 0;
    for (int n_keys = 1; n_keys <= 24; n_keys++)
        for (int pad = 0; pad <= n_keys; pad++)
            for (int window = 0; window <= 9; window++)
                for (int p = 0; p < n_keys; p++) {
                    int lo = cu_attn_first_key(p, pad, window);
                    for (int s = 0; s < n_keys; s++) bad += visible(s, p, pad, window) != (s >= lo && s <= p);
                    /* the block's score array holds p - lo + 1 floats after red[32] and q[head_dim] */
                    bad += 32 + 64 + (size_t)(p - lo + 1) > cu_attn_smem_floats(64, n_keys);
                }
    CHECK_MSG(bad == 0, "%d (query, key) pairs where [first_key, p] != the visible keys", bad);
    CHECK(cu_attn_smem_floats(128, 0) == 32 + 128 + 1);
}

static void check_grid(void)
{
    CHECK(cu_grid_for(0, 256) == 1 && cu_grid_for(1, 256) == 1 && cu_grid_for(256, 256) == 1);
    CHECK(cu_grid_for(257, 256) == 2);
    CHECK(cu_grid_for((size_t)1 << 40, 256) == CU_GRID_X_CAP); /* the rest: grid-stride iterations */
    /* vocab 128256 x 8192 rows: capped, and the launch still reaches every item */
    size_t n = (size_t)128256 * 8192;
    CHECK((size_t)cu_grid_for(n, 256) * 256 < n && (size_t)cu_grid_for(n, 256) == CU_GRID_X_CAP);
}

/* Every sequence in exactly one launch, as cu_launch_attention_seqs loops. */
static void check_z_chunks(int n_seq)
{
    unsigned char *seen = calloc((size_t)n_seq, 1);
    int launches = 0, bad = 0;
    for (int z0 = 0; z0 < n_seq; z0 += CU_GRID_Z_MAX) {
        int nz = cu_z_chunk(n_seq, z0);
        bad += nz < 1 || nz > CU_GRID_Z_MAX;
        for (int bz = 0; bz < nz; bz++) seen[z0 + bz]++;
        launches++;
    }
    for (int z = 0; z < n_seq; z++) bad += seen[z] != 1;
    CHECK_MSG(bad == 0 && launches == (n_seq + CU_GRID_Z_MAX - 1) / CU_GRID_Z_MAX,
              "%d sequences: %d launches, %d sequences not covered exactly once", n_seq, launches, bad);
    free(seen);
}

/* Offsets past 2^32 floats (a block of 4096 pairs x 32 layers at 8B widths). */
static void check_seq_offsets_wide(void)
{
    int z = 131071, nq = 14, nh = 32, hd = 128, n_par = 4096;
    size_t s0 = (size_t)80 * 8 * 128, s1 = (size_t)14 * 8 * 128;
    cu_seq_at a = cu_attn_seq_at(z, nq, nh, hd, s0, n_par, s1);
    unsigned long long rows = 131071ull * 14 * 32 * 128;
    CHECK(rows > 0xFFFFFFFFull && a.rows == rows);
    CHECK(a.kv0 == (unsigned long long)(z % n_par) * s0 && a.kv1 == 131071ull * s1);
}

/* CPU attention_seqs == CPU attention per sequence at cu_attn_seq_at's offsets. */
static void check_seq_offsets(md_backend *be, int n_seq, int n_par, int nq, int n0, int n1, int max_len, int nh,
                              int nkv, int hd, int window)
{
    md_attn_shape sh = {.n_heads = nh, .n_kv_heads = nkv, .head_dim = hd, .scale = 0.125f, .window = window};
    int kvd = nkv * hd, q_pos0 = n0 + n1 - nq;
    size_t nqv = (size_t)n_seq * nq * nh * hd, s0 = (size_t)n0 * kvd, s1 = (size_t)max_len * kvd;
    float *q = rand_vec(nqv), *k0 = rand_vec((size_t)n_par * s0), *v0 = rand_vec((size_t)n_par * s0);
    float *k1 = rand_vec((size_t)n_seq * s1), *v1 = rand_vec((size_t)n_seq * s1);
    float *ref = calloc(nqv, sizeof(float)), *blk = calloc(nqv, sizeof(float));
    int *pads = malloc((size_t)n_seq * sizeof(int));
    for (int s = 0; s < n_seq; s++) pads[s] = (s * 5) % (n0 + 1);
    md_error err = {0};
    CHECK_MSG(be->ops->attention_seqs(be, ref, q, n_seq, nq, q_pos0, n0 ? k0 : NULL, n0 ? v0 : NULL, n0, s0, n_par,
                                      k1, v1, n1, s1, pads, &sh, &err) == MD_OK, "%s", err.msg);
    for (int z0 = 0; z0 < n_seq; z0 += CU_GRID_Z_MAX)
        for (int bz = 0; bz < cu_z_chunk(n_seq, z0); bz++) {
            int z = z0 + bz;
            cu_seq_at a = cu_attn_seq_at(z, nq, nh, hd, s0, n_par, s1);
            CHECK_MSG(be->ops->attention(be, blk + a.rows, q + a.rows, nq, q_pos0, n0 ? k0 + a.kv0 : NULL,
                                         n0 ? v0 + a.kv0 : NULL, n0, k1 + a.kv1, v1 + a.kv1, n1, pads[z], &sh, NULL,
                                         &err) == MD_OK, "%s", err.msg);
        }
    CHECK_MSG(memcmp(ref, blk, nqv * sizeof(float)) == 0,
              "attention at cu_attn_seq_at's offsets != attention_seqs (%d seqs, %d prefixes, stride %d)", n_seq,
              n_par, max_len);
    free(q), free(k0), free(v0), free(k1), free(v1), free(ref), free(blk), free(pads);
}

/* The put_cells / get_cells kernels' loop on the host: `blocks` blocks of
 * 256 threads striding over the n*w items; hits counts each element. */
static void emulate_cells(float *x, float *dst, int n, int w, const size_t *off, const float *src, int add,
                          float coef, unsigned blocks, unsigned char *hits)
{
    size_t total = (size_t)n * w, stride = (size_t)blocks * 256;
    for (unsigned b = 0; b < blocks; b++)
        for (unsigned th = 0; th < 256; th++)
            for (size_t t = (size_t)b * 256 + th; t < total; t += stride) {
                size_t e = cu_cell_elem(off, t, w);
                hits[e]++;
                if (dst) dst[t] = x[e];
                else if (add) x[e] += coef * src[t];
                else x[e] = src[t];
            }
}

static void check_cells(md_backend *be, int rows, int d, int n, int w)
{
    size_t nx = (size_t)rows * d, *off = malloc((size_t)n * sizeof *off);
    for (int i = 0; i < n; i++) off[i] = (size_t)((i * 7 + 3) % rows) * d + (size_t)((i * 5) % (d / w)) * w;
    float *x = rand_vec(nx), *src = rand_vec((size_t)n * w), *ref = malloc(nx * sizeof(float));
    float *emu = malloc(nx * sizeof(float)), *got = malloc((size_t)n * w * sizeof(float));
    float *want = malloc((size_t)n * w * sizeof(float));
    unsigned char *hits = malloc(nx);
    md_error err = {0};
    unsigned grids[2] = {cu_grid_for((size_t)n * w, 256), 3}; /* as launched; a small grid that strides */
    for (int add = 0; add < 2; add++)
        for (int g = 0; g < 2; g++) {
            memcpy(ref, x, nx * sizeof(float));
            memcpy(emu, x, nx * sizeof(float));
            memset(hits, 0, nx);
            CHECK_MSG(be->ops->put_cells(be, ref, n, w, off, src, add, 0.7f, &err) == MD_OK, "%s", err.msg);
            emulate_cells(emu, NULL, n, w, off, src, add, 0.7f, grids[g], hits);
            size_t once = 0, other = 0;
            for (size_t e = 0; e < nx; e++) once += hits[e] == 1, other += hits[e] > 1;
            CHECK_MSG(once == (size_t)n * w && other == 0, "put_cells: %zu elements hit once, %zu more often", once,
                      other);
            CHECK_MSG(memcmp(ref, emu, nx * sizeof(float)) == 0, "put_cells %s, %u blocks != the CPU backend's",
                      add ? "add" : "replace", grids[g]);
            memset(hits, 0, nx);
            CHECK_MSG(be->ops->get_cells(be, want, ref, n, w, off, &err) == MD_OK, "%s", err.msg);
            emulate_cells(ref, got, n, w, off, NULL, 0, 0.0f, grids[g], hits);
            CHECK_MSG(memcmp(want, got, (size_t)n * w * sizeof(float)) == 0, "get_cells, %u blocks != the CPU's",
                      grids[g]);
        }
    free(off), free(x), free(src), free(ref), free(emu), free(got), free(want), free(hits);
}

int main(void)
{
    check_first_key();
    check_grid();
    int nseqs[] = {1, 7, CU_GRID_Z_MAX, CU_GRID_Z_MAX + 1, 2 * CU_GRID_Z_MAX + 3};
    for (size_t i = 0; i < sizeof nseqs / sizeof nseqs[0]; i++) check_z_chunks(nseqs[i]);
    check_seq_offsets_wide();
    md_backend *be = NULL;
    md_error err = {0};
    CHECK_MSG(md_backend_create(&be, MD_BACKEND_CPU, NULL, &err) == MD_OK, "%s", err.msg);
    if (!be) TEST_MAIN_END();
    check_seq_offsets(be, 12, 3, 4, 9, 4, 4, 4, 2, 16, 0); /* 4 pairs x 3 layers, own keys contiguous */
    check_seq_offsets(be, 5, 5, 2, 6, 3, 5, 4, 4, 32, 3);  /* own keys at a stride of 5 rows, window 3 */
    check_seq_offsets(be, 6, 1, 3, 0, 3, 3, 2, 1, 16, 0);  /* no prefix */
    check_cells(be, 40, 96, 25, 96);   /* whole rows (a batched residual patch) */
    check_cells(be, 300, 256, 300, 16); /* one head's slice per row (batched z): 4800 items, 3 blocks stride */
    md_backend_destroy(be);
    printf("cuda index math: first keys, grid sizes, sequence offsets and chunks, cell elements checked\n");
    TEST_MAIN_END();
}
