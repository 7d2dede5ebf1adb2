/* test_backend_attn.c — RoPE, attention (with its pattern and attn_mix) and
 * attention_seqs of every backend against the CPU reference (NMSE per op;
 * the method, thresholds and parts: backend_pair.h).
 *   test_backend_attn [--gpu]   (ctest unit.test_backend_attn, gpu.test_backend_attn) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_pair.h"
#include "mechdiff/backend.h"
#include "testutil.h"

static void op_rope(const pair *p, int n, int n_heads, int hd, int pos_shift)
{
    size_t nx = (size_t)n * n_heads * hd;
    float *x = rand_vec(nx, -2, 2);
    int *pos = malloc((size_t)n * sizeof(int));
    float *inv = malloc((size_t)(hd / 2) * sizeof(float));
    for (int i = 0; i < n; i++) pos[i] = i - 3 + pos_shift; /* padded rows have negative positions */
    for (int f = 0; f < hd / 2; f++) inv[f] = (float)(1.0 / pow(500000.0, 2.0 * f / hd));
    float *xr = dev_from(p->ref, x, nx), *xb = dev_from(p->be, x, nx);
    OP_OK(p->ref->ops->rope(p->ref, xr, n, n_heads, hd, pos, inv, &op_err));
    OP_OK(p->be->ops->rope(p->be, xb, n, n_heads, hd, pos, inv, &op_err));
    float *hr = host_from(p->ref, xr, nx), *hb = host_from(p->be, xb, nx);
    char what[96];
    snprintf(what, sizeof what, "n=%d heads=%d hd=%d pos from %d", n, n_heads, hd, pos[0]);
    report(p, "rope", what, nmse(hb, hr, nx), p->is_cpu ? TOL_CPU : TOL_EXACT);
    p->ref->ops->free(p->ref, xr);
    p->be->ops->free(p->be, xb);
    free(hr);
    free(hb);
    free(x);
    free(pos);
    free(inv);
}

/* Queries at positions q_pos0.. ; keys [0, n0) in k0/v0, [n0, n0+n1) in k1/v1.
 * Also the pattern: attention's probabilities (backend vs reference), each
 * row sums to 1 and is 0 outside the keys the query sees, and attn_mix on
 * them gives attention's output bit for bit on each backend (what lets a
 * pattern hook that writes back what it read leave the forward unchanged). */
static void op_attention(const pair *p, int nq, int q_pos0, int n0, int n1, int pad, int nh, int nkv, int hd,
                         float softcap, int window)
{
    md_attn_shape sh = {.n_heads = nh, .n_kv_heads = nkv, .head_dim = hd, .scale = 1.0f / sqrtf((float)hd),
                        .softcap = softcap, .window = window};
    if (softcap > 0.0f) sh.scale = 0.0625f; /* Gemma-2's query_pre_attn_scalar 256 */
    int nk = n0 + n1;
    size_t nqv = (size_t)nq * nh * hd, kv0 = (size_t)n0 * nkv * hd, kv1 = (size_t)n1 * nkv * hd;
    size_t npr = (size_t)nq * nh * nk;
    float *q = rand_vec(nqv, -1, 1), *k0 = rand_vec(kv0, -1, 1), *v0 = rand_vec(kv0, -1, 1);
    float *k1 = rand_vec(kv1, -1, 1), *v1 = rand_vec(kv1, -1, 1);
    md_backend *bes[2] = {p->ref, p->be};
    float *res[2], *pr[2];
    int mix_same[2];
    for (int b = 0; b < 2; b++) {
        md_backend *be = bes[b];
        float *qd = dev_from(be, q, nqv), *k0d = n0 ? dev_from(be, k0, kv0) : NULL;
        float *v0d = n0 ? dev_from(be, v0, kv0) : NULL;
        float *k1d = dev_from(be, k1, kv1), *v1d = dev_from(be, v1, kv1);
        float *od = be->ops->alloc(be, nqv * sizeof(float)), *md = be->ops->alloc(be, nqv * sizeof(float));
        float *pd = be->ops->alloc(be, npr * sizeof(float));
        OP_OK(be->ops->attention(be, od, qd, nq, q_pos0, k0d, v0d, n0, k1d, v1d, n1, pad, &sh, pd, &op_err));
        OP_OK(be->ops->attn_mix(be, md, pd, nq, q_pos0, v0d, n0, v1d, n1, pad, &sh, &op_err));
        res[b] = host_from(be, od, nqv);
        pr[b] = host_from(be, pd, npr);
        float *mh = host_from(be, md, nqv);
        mix_same[b] = memcmp(mh, res[b], nqv * sizeof(float)) == 0;
        free(mh);
        float *bufs[8] = {qd, k0d, v0d, k1d, v1d, od, md, pd};
        for (int i = 0; i < 8; i++)
            if (bufs[i]) be->ops->free(be, bufs[i]);
    }
    char what[96];
    snprintf(what, sizeof what, "nq=%d pos0=%d prefix=%d own=%d pad=%d h=%d/%d hd=%d cap=%g win=%d", nq, q_pos0,
             n0, n1, pad, nh, nkv, hd, softcap, window);
    report(p, "attn", what, nmse(res[1], res[0], nqv), p->is_cpu ? TOL_CPU : TOL_EXACT);
    report(p, "attn pattern", what, nmse(pr[1], pr[0], npr), p->is_cpu ? TOL_CPU : TOL_EXACT);
    CHECK_MSG(mix_same[0] && mix_same[1], "attn_mix(pattern) != attention bit for bit (%s)", what);
    double worst = 0.0;
    int outside = 0;
    for (int i = 0; i < nq; i++) {
        int pos = q_pos0 + i, lo = pos < pad ? pos : pad;
        if (pos >= pad && window > 0 && pos - window + 1 > lo) lo = pos - window + 1;
        for (int h = 0; h < nh; h++) {
            const float *row = pr[1] + ((size_t)i * nh + h) * nk;
            double sum = 0.0;
            for (int s = 0; s < nk; s++) sum += row[s], outside += (s < lo || s > pos) && row[s] != 0.0f;
            worst = fmax(worst, fabs(sum - 1.0));
        }
    }
    CHECK_MSG(worst < 1e-5 && outside == 0, "pattern rows: max |sum - 1| %.2e, %d nonzero masked keys (%s)", worst,
              outside, what);
    float *host[9] = {res[0], res[1], pr[0], pr[1], q, k0, v0, k1, v1};
    for (int i = 0; i < 9; i++) free(host[i]);
}

/* attention_seqs (one call for n_seq sequences, batched patching's partial
 * forwards) against the reference's attention run once per sequence: n_par
 * prefixes (sequence s reads prefix s mod n_par, as a forked cache's), own
 * keys at a stride of max_len >= n1 rows, per-sequence left padding. A
 * backend without the op (NULL) has nothing to check. */
static void op_attention_seqs(const pair *p, int n_seq, int n_par, int nq, int n0, int n1, int max_len, int nh,
                              int nkv, int hd)
{
    if (!p->be->ops->attention_seqs) return;
    md_attn_shape sh = {.n_heads = nh, .n_kv_heads = nkv, .head_dim = hd, .scale = 1.0f / sqrtf((float)hd)};
    int kvd = nkv * hd, q_pos0 = n0 + n1 - nq;
    size_t nqv = (size_t)n_seq * nq * nh * hd, s0 = (size_t)n0 * kvd, s1 = (size_t)max_len * kvd;
    size_t kv0 = (n0 ? (size_t)n_par : 0) * s0, kv1 = (size_t)n_seq * s1, rows = (size_t)nq * nh * hd;
    float *q = rand_vec(nqv, -1, 1), *k0 = rand_vec(kv0, -1, 1), *v0 = rand_vec(kv0, -1, 1);
    float *k1 = rand_vec(kv1, -1, 1), *v1 = rand_vec(kv1, -1, 1);
    int *pads = malloc((size_t)n_seq * sizeof(int));
    for (int s = 0; s < n_seq; s++) pads[s] = (s * 7) % (n0 > 0 ? n0 : 1); /* 0 .. n0-1 */
    md_backend *bes[2] = {p->ref, p->be};
    float *res[2];
    for (int b = 0; b < 2; b++) {
        md_backend *be = bes[b];
        float *qd = dev_from(be, q, nqv), *k0d = n0 ? dev_from(be, k0, kv0) : NULL;
        float *v0d = n0 ? dev_from(be, v0, kv0) : NULL, *k1d = dev_from(be, k1, kv1), *v1d = dev_from(be, v1, kv1);
        float *od = be->ops->alloc(be, nqv * sizeof(float));
        if (b == 0) {
            for (int s = 0; s < n_seq; s++) {
                size_t o0 = (size_t)(s % n_par) * s0, o1 = (size_t)s * s1;
                OP_OK(be->ops->attention(be, od + s * rows, qd + s * rows, nq, q_pos0, n0 ? k0d + o0 : NULL,
                                         n0 ? v0d + o0 : NULL, n0, k1d + o1, v1d + o1, n1, pads[s], &sh, NULL,
                                         &op_err));
            }
        } else {
            OP_OK(be->ops->attention_seqs(be, od, qd, n_seq, nq, q_pos0, k0d, v0d, n0, s0, n_par, k1d, v1d, n1, s1,
                                          pads, &sh, &op_err));
        }
        res[b] = host_from(be, od, nqv);
        float *bufs[6] = {qd, k0d, v0d, k1d, v1d, od};
        for (int i = 0; i < 6; i++)
            if (bufs[i]) be->ops->free(be, bufs[i]);
    }
    char what[96];
    snprintf(what, sizeof what, "seqs=%d prefixes=%d nq=%d prefix=%d own=%d/%d h=%d/%d", n_seq, n_par, nq, n0, n1,
             max_len, nh, nkv);
    report(p, "attn seq", what, nmse(res[1], res[0], nqv), p->is_cpu ? TOL_CPU : TOL_EXACT);
    if (p->is_cpu) CHECK_MSG(memcmp(res[0], res[1], nqv * sizeof(float)) == 0, "cpu attention_seqs not bit-identical");
    float *host[7] = {res[0], res[1], q, k0, v0, k1, v1};
    for (int i = 0; i < 7; i++) free(host[i]);
    free(pads);
}

static void suite(const pair *p)
{
    op_rope(p, 6, 3, 16, 0);
    op_rope(p, 6, 3, 16, 40); /* same n, new positions: the device copy must refresh */
    op_rope(p, 9, 4, 128, 0);
    op_attention(p, 5, 0, 0, 5, 0, 4, 2, 16, 0, 0);         /* plain causal, GQA */
    op_attention(p, 4, 6, 4, 6, 0, 4, 4, 16, 0, 0);         /* shared prefix of 4, queries at 6..9 */
    op_attention(p, 7, 0, 0, 7, 3, 4, 1, 32, 0, 0);         /* left padding 3 */
    op_attention(p, 3, 5, 5, 3, 2, 2, 2, 16, 0, 0);         /* prefix + padding */
    op_attention(p, 300, 0, 0, 300, 0, 8, 2, 64, 0, 0);     /* many keys per block */
    op_attention(p, 2, 2100, 2000, 102, 0, 2, 1, 128, 0, 0); /* long prefix */
    op_attention(p, 9, 0, 0, 9, 0, 4, 2, 16, 50.0f, 0);     /* Gemma-2 soft-capping */
    op_attention(p, 12, 0, 0, 12, 2, 4, 2, 16, 0, 4);       /* sliding window 4, padding 2 */
    op_attention(p, 4, 6, 4, 6, 0, 4, 2, 16, 50.0f, 3);     /* window across the prefix */
    op_attention_seqs(p, 12, 3, 4, 9, 4, 4, 4, 2, 16);      /* 4 pairs x 3 layers, own keys contiguous */
    op_attention_seqs(p, 5, 5, 2, 6, 3, 5, 4, 4, 32);       /* own keys at a stride of 5 rows */
    op_attention_seqs(p, 6, 1, 3, 0, 3, 3, 2, 1, 16);       /* no prefix */
}

/* 1024 sequences of attention in one launch, as batched patching's partial forwards */
static void gpu_only(const pair *p) { op_attention_seqs(p, 1024, 64, 6, 80, 6, 6, 8, 2, 128); }

int main(int argc, char **argv)
{
    const bp_test t = {suite, NULL, gpu_only};
    return bp_main(argc, argv, &t);
}
