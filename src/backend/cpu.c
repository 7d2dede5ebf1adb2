/* cpu.c — the reference backend: fp32 on the host, GEMMs on OpenBLAS.
 *
 * bf16/f16 weights: an fp32 copy is kept while the running total stays under
 * the budget given at creation; beyond it a matrix is streamed: converted
 * for every matmul, on the GEMM's threads (cpu_convert.c), into an fp32
 * panel of up to CPU_PANEL_BYTES, then multiplied. With >= CPU_WIDE_N rows
 * a matrix whose fp32 copy fits in one panel (every layer matrix up to 8B
 * widths: 14336 x 4096 x 4 B = 224 MiB) goes through the very sgemm call the
 * cached path makes, with the same fp32 values, so streamed and cached
 * results are equal bit for bit. Fewer rows (memory bound: decoding, short
 * batches) use cache-sized blocks of CPU_BLOCK_BYTES instead, and bigger
 * matrices (a 128k-vocabulary lm_head) run panel by panel
 * (other GEMM shapes: OpenBLAS may pick other kernels, NMSE <= 1e-13, not
 * always bit-identical; test_backend_ops measures it).
 * Peak memory ≈ mapped file + cache + one panel (allocated at the first
 * streamed matmul, grown to the largest streamed matrix, at most
 * CPU_PANEL_BYTES). fp32 weights are used in place from the mapping when
 * 4-byte aligned. */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu_convert.h"
#include "mechdiff/backend.h"

#define CPU_PANEL_BYTES ((size_t)256 << 20) /* default of md_backend_options.cpu_panel_bytes */
/* Below CPU_WIDE_N rows of x a matmul is memory bound: the panel is then a
 * cache-sized block (CPU_BLOCK_BYTES), converted and multiplied while it is
 * in cache, instead of a whole matrix written to and read back from DRAM. */
#define CPU_WIDE_N 64
#define CPU_BLOCK_BYTES ((size_t)4 << 20)

typedef struct cpu_impl {
    size_t cache_budget;   /* bytes of fp32 copies allowed */
    size_t cache_used;
    size_t panel_cap;      /* bytes of the largest panel */
    int streaming;         /* some matrix was left to be streamed */
    float *panel;          /* fp32 panel of a streamed matrix; owned */
    size_t panel_floats;
} cpu_impl;

static void *cpu_alloc(md_backend *be, size_t bytes)
{
    (void)be;
    void *p = NULL;
    if (bytes == 0) bytes = 64;
    if (posix_memalign(&p, 64, (bytes + 63) & ~(size_t)63) != 0) return NULL;
    memset(p, 0, bytes);
    return p;
}

static void cpu_free(md_backend *be, void *p)
{
    (void)be;
    free(p);
}

static int cpu_memcpy(md_backend *be, void *dst, const void *src, size_t bytes, md_error *err)
{
    (void)be;
    (void)err;
    if (bytes) memmove(dst, src, bytes);
    return MD_OK;
}

static int cpu_prepare(md_backend *be, md_weight *w, md_error *err)
{
    cpu_impl *c = be->impl;
    size_t n = (size_t)w->rows * (size_t)w->cols;
    int aligned = ((uintptr_t)w->host % sizeof(float)) == 0;
    w->prepared = NULL;
    if (w->dtype == MD_DTYPE_F32 && aligned) return MD_OK;
    int is_vector = w->rows == 1;
    if (!is_vector && w->dtype != MD_DTYPE_F32 && c->cache_used + n * sizeof(float) > c->cache_budget) {
        c->streaming = 1; /* converted panel by panel in matmul */
        return MD_OK;
    }
    float *p = cpu_alloc(be, n * sizeof(float));
    if (!p) return md_error_set(err, "cpu backend: out of memory converting a %dx%d weight to fp32",
                                w->rows, w->cols);
    md_dtype_to_f32(p, w->host, w->dtype, n);
    if (!is_vector) c->cache_used += n * sizeof(float);
    w->prepared = p;
    return MD_OK;
}

static void cpu_release(md_backend *be, md_weight *w)
{
    cpu_impl *c = be->impl;
    if (w->prepared) {
        if (w->rows != 1) c->cache_used -= (size_t)w->rows * (size_t)w->cols * sizeof(float);
        free(w->prepared);
        w->prepared = NULL;
    }
}

/* fp32 view of a weight or NULL when it must be converted on the fly. */
static const float *cpu_weight_f32(const md_weight *w)
{
    if (w->prepared) return w->prepared;
    if (w->dtype == MD_DTYPE_F32 && ((uintptr_t)w->host % sizeof(float)) == 0) return w->host;
    return NULL;
}

/* y[n][rows] = x[n][cols] · W[rows][cols]ᵀ, y's row stride ldy (one
 * panel of W's rows writes columns of y). */
static void gemm_f32(float *y, int ldy, const float *x, const float *w, int n, int rows, int cols)
{
    if (n == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0f, w, cols, x, 1, 0.0f, y, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, rows, cols, 1.0f, x, cols, w, cols, 0.0f, y, ldy);
}

/* Streams a matrix that is not cached: panels of its rows converted on the
 * GEMM's threads, each multiplied into its columns of y. */
static int matmul_streamed(cpu_impl *c, float *y, const float *x, const md_weight *w, int n, md_error *err)
{
    size_t cap = n >= CPU_WIDE_N || c->panel_cap < CPU_BLOCK_BYTES ? c->panel_cap : CPU_BLOCK_BYTES;
    size_t per = cap / ((size_t)w->cols * sizeof(float));
    int rows = per == 0 ? 1 : per >= (size_t)w->rows ? w->rows : (int)per;
    size_t need = (size_t)rows * (size_t)w->cols;
    if (need > c->panel_floats) {
        free(c->panel);
        c->panel_floats = 0;
        if (posix_memalign((void **)&c->panel, 64, need * sizeof(float)) != 0) {
            c->panel = NULL;
            return md_error_set(err, "cpu backend: matmul: out of memory for a %zu MiB weight panel "
                                     "(raise runtime.fp32_cache_mb to cache the weights instead)",
                                need * sizeof(float) >> 20);
        }
        c->panel_floats = need;
    }
    size_t esz = md_dtype_size(w->dtype);
    int threads = openblas_get_num_threads();
    for (int r0 = 0; r0 < w->rows; r0 += rows) {
        int nr = w->rows - r0 < rows ? w->rows - r0 : rows;
        md_cpu_convert_f32(c->panel, (const char *)w->host + (size_t)r0 * w->cols * esz, w->dtype,
                           (size_t)nr * w->cols, threads);
        gemm_f32(y + r0, w->rows, x, c->panel, n, nr, w->cols);
    }
    return MD_OK;
}

static int cpu_matmul(md_backend *be, float *y, const float *x, const md_weight *w, int n, md_error *err)
{
    cpu_impl *c = be->impl;
    const float *wf = cpu_weight_f32(w);
    if (n <= 0) return MD_OK;
    if (wf) {
        gemm_f32(y, w->rows, x, wf, n, w->rows, w->cols);
        return MD_OK;
    }
    if (!c->streaming || w->dtype == MD_DTYPE_F32)
        return md_error_set(err, "cpu backend: matmul: a %dx%d weight that was never prepared", w->rows, w->cols);
    return matmul_streamed(c, y, x, w, n, err);
}

static int cpu_add_bias(md_backend *be, float *y, const md_weight *b, int n, md_error *err)
{
    (void)be;
    const float *bf = cpu_weight_f32(b);
    if (!bf) return md_error_set(err, "cpu backend: add_bias: the bias vector was never prepared");
    for (int i = 0; i < n; i++)
        for (int j = 0; j < b->cols; j++) y[(size_t)i * b->cols + j] += bf[j];
    return MD_OK;
}

static int cpu_rmsnorm(md_backend *be, float *y, const float *x, const md_weight *g, int n, int d, float eps,
                       md_error *err)
{
    (void)be;
    const float *gf = cpu_weight_f32(g);
    if (!gf) return md_error_set(err, "cpu backend: rmsnorm: the gain vector was never prepared");
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * d;
        float *yi = y + (size_t)i * d;
        double ss = 0.0;
        for (int j = 0; j < d; j++) ss += (double)xi[j] * xi[j];
        float inv = (float)(1.0 / sqrt(ss / d + eps));
        for (int j = 0; j < d; j++) yi[j] = gf[j] * (xi[j] * inv);
    }
    return MD_OK;
}

static int cpu_rope(md_backend *be, float *x, int n, int n_heads, int head_dim, const int *pos,
                    const float *inv_freq, md_error *err)
{
    (void)be;
    (void)err;
    int half = head_dim / 2;
    for (int i = 0; i < n; i++) {
        for (int f = 0; f < half; f++) {
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
    return MD_OK;
}

/* The first key position a query at p may see: itself only while it is a
 * padding token, else from the first real token, within the window. */
static int first_key(int p, int pad, int window)
{
    if (p < pad) return p;
    int lo = pad;
    if (window > 0 && p - window + 1 > lo) lo = p - window + 1;
    return lo;
}

/* oh[hd] = sum over keys s in [lo, p] of w[s] * v_s (the head's value
 * slice), in key order: attention and attn_mix share it, so equal weights
 * give equal bits. */
static void mix_head(float *oh, const float *w, int lo, int p, const float *v0, int n0, const float *v1,
                     int kv_dim, int kv_off, int head_dim)
{
    memset(oh, 0, (size_t)head_dim * sizeof(float));
    for (int s = lo; s <= p; s++) {
        const float *vs = (s < n0 ? v0 + (size_t)s * kv_dim : v1 + (size_t)(s - n0) * kv_dim) + kv_off;
        float a = w[s];
        for (int j = 0; j < head_dim; j++) oh[j] += a * vs[j];
    }
}

static int cpu_attention(md_backend *be, float *out, const float *q, int nq, int q_pos0, const float *k0,
                         const float *v0, int n0, const float *k1, const float *v1, int n1, int pad,
                         const md_attn_shape *sh, float *probs, md_error *err)
{
    (void)be;
    int n_keys = n0 + n1;
    int n_heads = sh->n_heads, head_dim = sh->head_dim;
    int group = n_heads / sh->n_kv_heads;
    int kv_dim = sh->n_kv_heads * head_dim;
    float scale = sh->scale, cap = sh->softcap;
    float *scores = malloc((size_t)(n_keys > 0 ? n_keys : 1) * sizeof(float));
    if (!scores) return md_error_set(err, "cpu backend: attention: out of memory for %d scores", n_keys);
    for (int i = 0; i < nq; i++) {
        int p = q_pos0 + i;
        int lo = first_key(p, pad, sh->window);
        for (int h = 0; h < n_heads; h++) {
            const float *qh = q + ((size_t)i * n_heads + h) * head_dim;
            int kvh = h / group;
            float maxs = -INFINITY;
            for (int s = lo; s <= p; s++) {
                const float *ks = s < n0 ? k0 + (size_t)s * kv_dim : k1 + (size_t)(s - n0) * kv_dim;
                ks += (size_t)kvh * head_dim;
                float dot = 0.0f;
                for (int j = 0; j < head_dim; j++) dot += qh[j] * ks[j];
                scores[s] = dot * scale;
                if (cap > 0.0f) scores[s] = tanhf(scores[s] / cap) * cap;
                if (scores[s] > maxs) maxs = scores[s];
            }
            float sum = 0.0f;
            for (int s = lo; s <= p; s++) {
                scores[s] = expf(scores[s] - maxs);
                sum += scores[s];
            }
            float inv = 1.0f / sum;
            for (int s = lo; s <= p; s++) scores[s] *= inv;
            if (probs) {
                float *ph = probs + ((size_t)i * n_heads + h) * n_keys;
                memset(ph, 0, (size_t)n_keys * sizeof(float));
                memcpy(ph + lo, scores + lo, (size_t)(p - lo + 1) * sizeof(float));
            }
            mix_head(out + ((size_t)i * n_heads + h) * head_dim, scores, lo, p, v0, n0, v1, kv_dim,
                     kvh * head_dim, head_dim);
        }
    }
    free(scores);
    return MD_OK;
}

/* attention_seqs: the per-sequence op in a loop (the same numbers). */
static int cpu_attention_seqs(md_backend *be, float *out, const float *q, int n_seq, int nq, int q_pos0,
                              const float *k0, const float *v0, int n0, size_t kv0_stride, int n_par,
                              const float *k1, const float *v1, int n1, size_t kv1_stride, const int *pads,
                              const md_attn_shape *sh, md_error *err)
{
    size_t rows = (size_t)nq * sh->n_heads * sh->head_dim;
    for (int s = 0; s < n_seq; s++) {
        size_t o0 = (size_t)(s % n_par) * kv0_stride, o1 = (size_t)s * kv1_stride;
        if (cpu_attention(be, out + s * rows, q + s * rows, nq, q_pos0, k0 ? k0 + o0 : NULL, v0 ? v0 + o0 : NULL, n0,
                          k1 + o1, v1 + o1, n1, pads ? pads[s] : 0, sh, NULL, err) != MD_OK)
            return MD_ERR;
    }
    return MD_OK;
}

static int cpu_attn_mix(md_backend *be, float *out, const float *probs, int nq, int q_pos0, const float *v0,
                        int n0, const float *v1, int n1, int pad, const md_attn_shape *sh, md_error *err)
{
    (void)be;
    (void)err;
    int n_keys = n0 + n1, n_heads = sh->n_heads, head_dim = sh->head_dim;
    int group = n_heads / sh->n_kv_heads, kv_dim = sh->n_kv_heads * head_dim;
    for (int i = 0; i < nq; i++) {
        int p = q_pos0 + i, lo = first_key(p, pad, sh->window);
        for (int h = 0; h < n_heads; h++)
            mix_head(out + ((size_t)i * n_heads + h) * head_dim, probs + ((size_t)i * n_heads + h) * n_keys, lo, p,
                     v0, n0, v1, kv_dim, (h / group) * head_dim, head_dim);
    }
    return MD_OK;
}

/* gelu with the tanh approximation, as torch's gelu(approximate="tanh") */
static float gelu_tanh(float x)
{
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

static int cpu_gated_act(md_backend *be, float *h, const float *gate, const float *up, size_t n, md_act act,
                         md_error *err)
{
    (void)be;
    if (act == MD_ACT_GELU_TANH) {
        for (size_t i = 0; i < n; i++) h[i] = gelu_tanh(gate[i]) * up[i];
        return MD_OK;
    }
    if (act != MD_ACT_SILU) return md_error_set(err, "cpu backend: gated_act: unknown activation %d", (int)act);
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        h[i] = (g / (1.0f + expf(-g))) * up[i];
    }
    return MD_OK;
}

static int cpu_add(md_backend *be, float *y, const float *x, size_t n, md_error *err)
{
    (void)be;
    (void)err;
    for (size_t i = 0; i < n; i++) y[i] += x[i];
    return MD_OK;
}

static int cpu_scale(md_backend *be, float *x, size_t n, float s, md_error *err)
{
    (void)be;
    (void)err;
    for (size_t i = 0; i < n; i++) x[i] *= s;
    return MD_OK;
}

static int cpu_embed(md_backend *be, float *x, const int *tokens, int n, const md_weight *e, md_error *err)
{
    (void)be;
    (void)err;
    size_t esz = md_dtype_size(e->dtype);
    const float *ef = cpu_weight_f32(e);
    for (int i = 0; i < n; i++) {
        size_t off = (size_t)tokens[i] * e->cols;
        if (ef) memcpy(x + (size_t)i * e->cols, ef + off, (size_t)e->cols * sizeof(float));
        else md_dtype_to_f32(x + (size_t)i * e->cols, (const char *)e->host + off * esz, e->dtype, e->cols);
    }
    return MD_OK;
}

static int cpu_add_vec(md_backend *be, float *x, int n, int d, const float *v, float coef, md_error *err)
{
    (void)be;
    (void)err;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) x[(size_t)i * d + j] += coef * v[j];
    return MD_OK;
}

static int cpu_ablate(md_backend *be, float *x, int n, int d, const float *v, md_error *err)
{
    (void)be;
    (void)err;
    for (int i = 0; i < n; i++) {
        float *xi = x + (size_t)i * d;
        double dot = 0.0;
        for (int j = 0; j < d; j++) dot += (double)xi[j] * v[j];
        for (int j = 0; j < d; j++) xi[j] -= (float)dot * v[j];
    }
    return MD_OK;
}

static int cpu_put_cells(md_backend *be, float *x, int n, int w, const size_t *off, const float *src, int add,
                         float coef, md_error *err)
{
    (void)be;
    (void)err;
    for (int i = 0; i < n; i++) {
        float *cell = x + off[i];
        const float *v = src + (size_t)i * w;
        if (!add) memcpy(cell, v, (size_t)w * sizeof(float));
        else
            for (int j = 0; j < w; j++) cell[j] += coef * v[j]; /* as cpu_add_vec */
    }
    return MD_OK;
}

static int cpu_get_cells(md_backend *be, float *dst, const float *x, int n, int w, const size_t *off, md_error *err)
{
    (void)be;
    (void)err;
    for (int i = 0; i < n; i++) memcpy(dst + (size_t)i * w, x + off[i], (size_t)w * sizeof(float));
    return MD_OK;
}

static void cpu_destroy(md_backend *be)
{
    cpu_impl *c = be->impl;
    if (c) free(c->panel);
    free(c);
    free(be);
}

static const md_backend_ops CPU_OPS = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .to_device = cpu_memcpy,
    .to_host = cpu_memcpy,
    .copy = cpu_memcpy,
    .prepare = cpu_prepare,
    .release = cpu_release,
    .matmul = cpu_matmul,
    .add_bias = cpu_add_bias,
    .rmsnorm = cpu_rmsnorm,
    .rope = cpu_rope,
    .attention = cpu_attention,
    .attn_mix = cpu_attn_mix,
    .attention_seqs = cpu_attention_seqs,
    .gated_act = cpu_gated_act,
    .add = cpu_add,
    .scale = cpu_scale,
    .embed = cpu_embed,
    .add_vec = cpu_add_vec,
    .ablate = cpu_ablate,
    .put_cells = cpu_put_cells,
    .get_cells = cpu_get_cells,
    .destroy = cpu_destroy,
};

/* The streaming panel is allocated by the first streamed matmul. */
int md_backend_cpu_create(md_backend **out, const md_backend_options *opt, md_error *err)
{
    md_backend *be = calloc(1, sizeof *be);
    cpu_impl *c = calloc(1, sizeof *c);
    if (!be || !c) {
        free(c);
        free(be);
        return md_error_set(err, "cpu backend: out of memory");
    }
    c->cache_budget = opt->fp32_cache_bytes;
    c->panel_cap = opt->cpu_panel_bytes ? opt->cpu_panel_bytes : CPU_PANEL_BYTES;
    be->ops = &CPU_OPS;
    be->impl = c;
    *out = be;
    return MD_OK;
}
