/* forward.c — the forward pass: one loop over layers, the hook points
 * visible in it, in the spirit of llama2.c's run.c.
 *
 * Rows of every activation buffer are ordered [seq][pos - t0]. With per-
 * sequence start layers (non-decreasing), the sequences active at layer l
 * are a prefix 0..na-1 of the batch, so each GEMM runs on the first na*np
 * rows only: a patch at (l, t) computes nothing below l and before t. */
#include "mechdiff/forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/kvcache_impl.h"
#include "model/exec_impl.h"
#include "model/hooks_impl.h"

void md_forward_init(md_forward *f, const md_model *m)
{
    memset(f, 0, sizeof *f);
    f->layer_end = m->cfg.n_layers;
    f->logits = MD_LOGITS_LAST;
}

void md_forward_init_tokens(md_forward *f, const md_model *m, int n_seq, int t1, const int *tokens)
{
    md_forward_init(f, m);
    f->n_seq = n_seq;
    f->t0 = 0;
    f->t1 = t1;
    f->tokens = tokens;
}

/* lo_bound/hi_bound: the layers this call may cover (the held range, or the
 * whole model for the leader of a sharded one); with_head: logits possible. */
static int check_args(const md_model *m, const md_forward *f, int lo_bound, int hi_bound, int with_head,
                      md_error *err)
{
    const md_config *c = &m->cfg;
    const md_kvcache *kc = f->cache;
    if (f->n_seq <= 0 || f->t1 <= f->t0 || f->t0 < 0)
        return md_error_set(err, "forward: need n_seq > 0 and t0 < t1 (got %d, [%d, %d))", f->n_seq, f->t0, f->t1);
    if (!kc) return md_error_set(err, "forward: a KV cache is required");
    if (kc->n_seq != f->n_seq)
        return md_error_set(err, "forward: cache holds %d sequences, batch has %d", kc->n_seq, f->n_seq);
    if (f->t0 < kc->prefix_len || f->t0 > kc->len)
        return md_error_set(err, "forward: positions start at %d but the cache holds [0, %d) (shared prefix %d)",
                            f->t0, kc->len, kc->prefix_len);
    if (f->t1 - kc->prefix_len > kc->max_len)
        return md_error_set(err, "forward: position %d is beyond the cache's capacity %d", f->t1 - 1,
                            kc->prefix_len + kc->max_len);
    if (f->t1 > c->max_position && c->max_position > 0)
        return md_error_set(err, "forward: %d positions exceed max_position_embeddings %d of %s", f->t1,
                            c->max_position, m->dir);
    int lo = f->seq_layer_start ? f->seq_layer_start[0] : f->layer_start;
    if (lo < lo_bound || f->layer_end > hi_bound || lo > f->layer_end)
        return md_error_set(err, "forward: layers [%d, %d) are not inside the held range [%d, %d)", lo,
                            f->layer_end, lo_bound, hi_bound);
    if (f->seq_layer_start)
        for (int s = 1; s < f->n_seq; s++)
            if (f->seq_layer_start[s] < f->seq_layer_start[s - 1] || f->seq_layer_start[s] > f->layer_end)
                return md_error_set(err, "forward: seq_layer_start must be non-decreasing and <= layer_end");
    for (int s = 0; f->n_pad && s < f->n_seq; s++)
        if (f->n_pad[s] < 0 || f->n_pad[s] >= f->t1)
            return md_error_set(err, "forward: sequence %d has %d padding positions; need 0 <= n_pad < %d (at "
                                     "least one real token)", s, f->n_pad[s], f->t1);
    if (!f->resid_in) {
        if (!f->tokens || lo != 0 || f->seq_layer_start)
            return md_error_set(err, "forward: give tokens (starting at layer 0) or resid_in");
        if (!m->has_embed) return md_error_set(err, "forward: this shard does not hold the embedding");
        for (int i = 0; i < f->n_seq * (f->t1 - f->t0); i++)
            if (f->tokens[i] < 0 || f->tokens[i] >= c->vocab_size)
                return md_error_set(err, "forward: token id %d is outside the vocabulary [0, %d) of %s",
                                    f->tokens[i], c->vocab_size, m->dir);
    }
    if (f->logits != MD_LOGITS_NONE && (f->layer_end != c->n_layers || !with_head || !f->logits_out))
        return md_error_set(err, "forward: logits need layer_end == n_layers, the head, and logits_out");
    for (int j = 0; f->logit_ids && j < f->n_logit_ids; j++)
        if (f->logit_ids[j] < 0 || f->logit_ids[j] >= c->vocab_size)
            return md_error_set(err, "forward: logit id %d is outside the vocabulary", f->logit_ids[j]);
    return md_hooks_check(m, f, err);
}

int md_model_forward(md_model *m, const md_forward *f, md_error *err)
{
    if (m->exec) {
        if (check_args(m, f, 0, m->cfg.n_layers, 1, err) != MD_OK) return MD_ERR;
        return m->exec->forward(m->exec_ctx, m, f, err);
    }
    return md_forward_local(m, f, err);
}

/* The forward's scratch (backend memory, carved from m->ws) and positions. */
typedef struct fw_bufs {
    float *x;      /* [N][d]   the residual stream */
    float *xb;     /* [N][d]   a normed copy of it */
    float *q;      /* [N][qd]  */
    float *k, *v;  /* [N][kvd] */
    float *att;    /* [N][qd]  attention output before o_proj (z) */
    float *pat;    /* [N][n_heads][t1] attention pattern, only with pattern hooks */
    float *o;      /* [N][d]   a branch output (attn_out, mlp_out) */
    float *g, *u;  /* [N][ff]  gate / up; g becomes mlp_post */
    float *lg;     /* [rows][vocab or n_logit_ids] */
    int *pos;      /* [N] rope positions (host) */
} fw_bufs;

/* Each step of a block: on failure the backend's message gets the step. */
#define STEP(name, call)                                                     \
    do {                                                                     \
        if ((call) != MD_OK) return md_error_prefix(err, "%s", name);        \
    } while (0)

/* q, k, v of the first n rows from x (with the pre-norm, biases and q/k
 * norms the family has), rotated; k, v written to the cache. */
static int qkv_block(md_model *m, const md_forward *f, int l, int na, fw_bufs *b, md_error *err)
{
    const md_config *c = &m->cfg;
    const md_layer *L = &m->layers[l];
    md_backend *be = m->be;
    const md_backend_ops *ops = be->ops;
    md_kvcache *kc = f->cache;
    int np = f->t1 - f->t0, n = na * np, hd = c->head_dim, nh = c->n_heads, nkv = c->n_kv_heads;
    int kvd = nkv * hd;
    const float *in = b->x;
    if (md_weight_present(&L->attn_norm)) { /* pre-norm families: xb = norm(x) */
        STEP("input norm", ops->rmsnorm(be, b->xb, b->x, &L->attn_norm, n, c->d_model, c->rms_eps, err));
        in = b->xb;
    }
    STEP("q projection", ops->matmul(be, b->q, in, &L->wq, n, err)); /* [n][qd]  */
    STEP("k projection", ops->matmul(be, b->k, in, &L->wk, n, err)); /* [n][kvd] */
    STEP("v projection", ops->matmul(be, b->v, in, &L->wv, n, err)); /* [n][kvd] */
    if (md_weight_present(&L->bq)) { /* Qwen2 */
        STEP("q bias", ops->add_bias(be, b->q, &L->bq, n, err));
        STEP("k bias", ops->add_bias(be, b->k, &L->bk, n, err));
        STEP("v bias", ops->add_bias(be, b->v, &L->bv, n, err));
    }
    if (md_weight_present(&L->q_norm)) { /* per head (Qwen3) or over the whole projection (OLMo-2) */
        int per_head = c->qk_norm == MD_QK_NORM_HEAD;
        STEP("q norm", ops->rmsnorm(be, b->q, b->q, &L->q_norm, per_head ? n * nh : n, per_head ? hd : nh * hd,
                                    c->rms_eps, err));
        STEP("k norm", ops->rmsnorm(be, b->k, b->k, &L->k_norm, per_head ? n * nkv : n, per_head ? hd : kvd,
                                    c->rms_eps, err));
    }
    STEP("rope q", ops->rope(be, b->q, n, nh, hd, b->pos, m->inv_freq, err));
    STEP("rope k", ops->rope(be, b->k, n, nkv, hd, b->pos, m->inv_freq, err));
    size_t off = (size_t)(f->t0 - kc->prefix_len) * kvd, bytes = (size_t)np * kvd * sizeof(float);
    if (off == 0 && kc->max_len == np) { /* the sequences' rows are contiguous in the cache: one copy */
        STEP("kv cache", ops->copy(be, md_kvcache_k_at(kc, l, 0), b->k, na * bytes, err));
        STEP("kv cache", ops->copy(be, md_kvcache_v_at(kc, l, 0), b->v, na * bytes, err));
        return MD_OK;
    }
    for (int s = 0; s < na; s++) {
        STEP("kv cache", ops->copy(be, md_kvcache_k_at(kc, l, s) + off, b->k + (size_t)s * np * kvd, bytes, err));
        STEP("kv cache", ops->copy(be, md_kvcache_v_at(kc, l, s) + off, b->v + (size_t)s * np * kvd, bytes, err));
    }
    return MD_OK;
}

/* o = the attention branch's output for the first na sequences: attention
 * over the cache, o_proj, and the post-attention norm where the family has
 * one (so o is what is added to the residual: TransformerLens's attn_out). */
static int attn_block(md_model *m, const md_forward *f, int l, int na, fw_bufs *b, md_error *err)
{
    const md_config *c = &m->cfg;
    const md_layer *L = &m->layers[l];
    md_backend *be = m->be;
    md_kvcache *kc = f->cache;
    int np = f->t1 - f->t0, n = na * np, qd = c->n_heads * c->head_dim;
    if (qkv_block(m, f, l, na, b, err) != MD_OK) return MD_ERR;
    md_attn_shape sh = {.n_heads = c->n_heads, .n_kv_heads = c->n_kv_heads, .head_dim = c->head_dim,
                        .scale = md_model_attn_scale(m), .softcap = c->attn_softcap,
                        .window = md_model_layer_window(m, l)};
    /* the pattern is written only when a hook at this layer wants it */
    int want_pat = md_hooks_at(f, MD_HOOK_PATTERN, l, 0), edit_pat = md_hooks_at(f, MD_HOOK_PATTERN, l, 1);
    size_t pat_rows = (size_t)np * c->n_heads * f->t1; /* one sequence's [np][n_heads][t1] */
    if (!want_pat && be->ops->attention_seqs) { /* every sequence in one call (own keys: stride max_len rows) */
        const md_kvcache *pc = kc->parent;
        int kvd = c->n_kv_heads * c->head_dim;
        STEP("attention", be->ops->attention_seqs(be, b->att, b->q, na, np, f->t0, pc ? md_kvcache_k_at(pc, l, 0) : NULL,
                                                  pc ? md_kvcache_v_at(pc, l, 0) : NULL, kc->prefix_len,
                                                  pc ? (size_t)pc->max_len * kvd : 0, pc ? pc->n_seq : 1,
                                                  md_kvcache_k_at(kc, l, 0), md_kvcache_v_at(kc, l, 0),
                                                  f->t1 - kc->prefix_len, (size_t)kc->max_len * kvd, f->n_pad, &sh,
                                                  err));
    }
    for (int s = 0; (want_pat || !be->ops->attention_seqs) && s < na; s++) {
        const float *k0 = NULL, *v0 = NULL;
        if (kc->parent) {
            int ps = s % kc->parent->n_seq; /* the fork's sequence s continues the parent's s mod n */
            k0 = md_kvcache_k_at(kc->parent, l, ps);
            v0 = md_kvcache_v_at(kc->parent, l, ps);
        }
        STEP("attention", be->ops->attention(be, b->att + (size_t)s * np * qd, b->q + (size_t)s * np * qd, np, f->t0,
                                             k0, v0, kc->prefix_len, md_kvcache_k_at(kc, l, s),
                                             md_kvcache_v_at(kc, l, s), f->t1 - kc->prefix_len,
                                             f->n_pad ? f->n_pad[s] : 0, &sh,
                                             want_pat ? b->pat + s * pat_rows : NULL, err));
    }
    if (want_pat) STEP("pattern hooks", md_hooks_run(m, f, MD_HOOK_PATTERN, l, b->pat, na, err));
    for (int s = 0; edit_pat && s < na; s++) { /* z = edited pattern · V */
        const float *v0 = kc->parent ? md_kvcache_v_at(kc->parent, l, s % kc->parent->n_seq) : NULL;
        STEP("attention from pattern", be->ops->attn_mix(be, b->att + (size_t)s * np * qd, b->pat + s * pat_rows, np,
                                                         f->t0, v0, kc->prefix_len, md_kvcache_v_at(kc, l, s),
                                                         f->t1 - kc->prefix_len, f->n_pad ? f->n_pad[s] : 0, &sh,
                                                         err));
    }
    STEP("z hooks", md_hooks_run(m, f, MD_HOOK_Z, l, b->att, na, err));
    STEP("o projection", be->ops->matmul(be, b->o, b->att, &L->wo, n, err)); /* [n][d] */
    if (md_weight_present(&L->attn_post_norm))
        STEP("post-attention norm", be->ops->rmsnorm(be, b->o, b->o, &L->attn_post_norm, n, c->d_model,
                                                      c->rms_eps, err));
    return MD_OK;
}

/* g = act(norm(x)·Wgᵀ) * (norm(x)·Wuᵀ)  (mlp_post), the norm where the
 * family has one before the MLP. */
static int mlp_in_block(md_model *m, int l, int n, fw_bufs *b, md_error *err)
{
    const md_config *c = &m->cfg;
    const md_layer *L = &m->layers[l];
    md_backend *be = m->be;
    const float *in = b->x;
    if (md_weight_present(&L->mlp_norm)) {
        STEP("pre-MLP norm", be->ops->rmsnorm(be, b->xb, b->x, &L->mlp_norm, n, c->d_model, c->rms_eps, err));
        in = b->xb;
    }
    STEP("gate projection", be->ops->matmul(be, b->g, in, &L->w_gate, n, err)); /* [n][ff] */
    STEP("up projection", be->ops->matmul(be, b->u, in, &L->w_up, n, err));     /* [n][ff] */
    STEP("gated activation", be->ops->gated_act(be, b->g, b->g, b->u, (size_t)n * c->d_ff,
                                                   c->hidden_act == MD_HIDDEN_GELU_TANH ? MD_ACT_GELU_TANH : MD_ACT_SILU, err));
    return MD_OK;
}

/* o = g·Wdᵀ, then the post-MLP norm where the family has one (mlp_out). */
static int mlp_out_block(md_model *m, int l, int n, fw_bufs *b, md_error *err)
{
    const md_layer *L = &m->layers[l];
    md_backend *be = m->be;
    STEP("down projection", be->ops->matmul(be, b->o, b->g, &L->w_down, n, err)); /* [n][d] */
    if (md_weight_present(&L->mlp_post_norm))
        STEP("post-MLP norm", be->ops->rmsnorm(be, b->o, b->o, &L->mlp_post_norm, n, m->cfg.d_model, m->cfg.rms_eps,
                                                err));
    return MD_OK;
}

/* logits = softcap(norm(x)·W_Uᵀ), at the last position of each sequence or
 * everywhere, for the whole vocabulary or f->logit_ids; written to host. */
static int head_block(md_model *m, const md_forward *f, int rows, fw_bufs *b, md_error *err)
{
    const md_config *c = &m->cfg;
    md_backend *be = m->be;
    const md_backend_ops *ops = be->ops;
    int d = c->d_model, np = f->t1 - f->t0;
    float *src = b->x;
    if (f->logits == MD_LOGITS_LAST) {
        for (int s = 0; s < f->n_seq; s++)
            STEP("last rows", ops->copy(be, b->xb + (size_t)s * d, b->x + ((size_t)s * np + np - 1) * d,
                                        (size_t)d * sizeof(float), err));
        src = b->xb;
    }
    STEP("final norm", ops->rmsnorm(be, b->xb, src, &m->final_norm, rows, d, c->rms_eps, err));
    size_t n_out = (size_t)rows * (f->logit_ids ? (size_t)f->n_logit_ids : (size_t)c->vocab_size);
    if (!f->logit_ids) {
        STEP("lm_head", ops->matmul(be, b->lg, b->xb, &m->lm_head, rows, err)); /* [rows][vocab] */
        STEP("logits to host", ops->to_host(be, f->logits_out, b->lg, n_out * sizeof(float), err));
    } else {
        /* one lm_head row per requested id: lg[j][r] = xb[r]·W_U[id_j] */
        const md_weight *U = &m->lm_head;
        for (int j = 0; j < f->n_logit_ids; j++) {
            md_weight row = *U;
            row.rows = 1;
            if (U->prepared) {
                row.prepared = (float *)U->prepared + (size_t)f->logit_ids[j] * d;
            } else {
                row.host = (const char *)U->host + (size_t)f->logit_ids[j] * d * md_dtype_size(U->dtype);
                row.prepared = NULL;
            }
            STEP("lm_head row", ops->matmul(be, b->lg + (size_t)j * rows, b->xb, &row, rows, err));
        }
        float *tmp = malloc(n_out * sizeof(float));
        if (!tmp) return md_error_set(err, "out of memory for %zu logits", n_out);
        int rc = ops->to_host(be, tmp, b->lg, n_out * sizeof(float), err);
        for (int j = 0; rc == MD_OK && j < f->n_logit_ids; j++)
            for (int r = 0; r < rows; r++)
                f->logits_out[(size_t)r * f->n_logit_ids + j] = tmp[(size_t)j * rows + r];
        free(tmp);
        if (rc != MD_OK) return md_error_prefix(err, "logits to host");
    }
    if (c->final_softcap > 0.0f) /* Gemma-2: cap * tanh(logit / cap), as transformers */
        for (size_t i = 0; i < n_out; i++) f->logits_out[i] = tanhf(f->logits_out[i] / c->final_softcap) *
                                                             c->final_softcap;
    return MD_OK;
}

/* Carves the scratch for N rows out of m->ws (grown when too small). */
static int bufs_get(md_model *m, int N, int n_logit_rows, int n_logit_cols, size_t pat_floats, fw_bufs *b,
                    md_error *err)
{
    const md_config *c = &m->cfg;
    md_backend *be = m->be;
    int d = c->d_model, ff = c->d_ff, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    size_t need = (size_t)N * (3 * d + 2 * qd + 2 * kvd + 2 * ff) + (size_t)n_logit_rows * n_logit_cols + pat_floats;
    if (need * sizeof(float) > m->ws_bytes) {
        if (m->ws) be->ops->free(be, m->ws);
        m->ws = be->ops->alloc(be, need * sizeof(float));
        m->ws_bytes = m->ws ? need * sizeof(float) : 0;
        if (!m->ws) return md_error_set(err, "out of %s memory for %d rows of scratch (%zu MiB)", be->ops->name, N,
                                        need * sizeof(float) >> 20);
    }
    b->x = m->ws;
    b->xb = b->x + (size_t)N * d;
    b->q = b->xb + (size_t)N * d;
    b->k = b->q + (size_t)N * qd;
    b->v = b->k + (size_t)N * kvd;
    b->att = b->v + (size_t)N * kvd;
    b->o = b->att + (size_t)N * qd;
    b->g = b->o + (size_t)N * d;
    b->u = b->g + (size_t)N * ff;
    b->lg = b->u + (size_t)N * ff;
    b->pat = pat_floats ? b->lg + (size_t)n_logit_rows * n_logit_cols : NULL;
    return MD_OK;
}

/* Layer l's step failed: say where (the backend said what). */
#define LAYER_STEP(call)                                                           \
    do {                                                                           \
        if ((call) != MD_OK) {                                                     \
            rc = l < 0 ? md_error_prefix(err, "forward of %s: input", m->dir)      \
                       : md_error_prefix(err, "forward of %s: layer %d", m->dir, l); \
            goto done;                                                             \
        }                                                                          \
    } while (0)

int md_forward_local(md_model *m, const md_forward *f, md_error *err)
{
    if (check_args(m, f, m->layer_lo, m->layer_hi, m->has_head, err) != MD_OK) return MD_ERR;
    const md_config *c = &m->cfg;
    md_backend *be = m->be;
    int d = c->d_model;
    int np = f->t1 - f->t0, N = f->n_seq * np;
    int n_logit_rows = f->logits == MD_LOGITS_ALL ? N : f->logits == MD_LOGITS_LAST ? f->n_seq : 0;
    int n_logit_cols = f->logit_ids ? f->n_logit_ids : c->vocab_size;
    fw_bufs b = {0};
    size_t pat_floats = 0;
    for (int i = 0; i < f->n_hooks; i++)
        if (f->hooks[i].point == MD_HOOK_PATTERN) pat_floats = (size_t)N * c->n_heads * f->t1;
    if (bufs_get(m, N, n_logit_rows, n_logit_cols, pat_floats, &b, err) != MD_OK)
        return md_error_prefix(err, "forward");
    b.pos = malloc((size_t)N * sizeof(int));
    if (!b.pos) return md_error_set(err, "forward: out of memory");
    for (int s = 0; s < f->n_seq; s++)
        for (int p = 0; p < np; p++) b.pos[s * np + p] = f->t0 + p - (f->n_pad ? f->n_pad[s] : 0);
    int rc = MD_OK, l = -1;

    /* Input: the embedding (scaled by √d in Gemma), or the given residual. */
    if (f->resid_in) LAYER_STEP(be->ops->to_device(be, b.x, f->resid_in, (size_t)N * d * sizeof(float), err));
    else LAYER_STEP(be->ops->embed(be, b.x, f->tokens, N, &m->embed, err));
    if (!f->resid_in && c->embed_scale > 0.0f)
        LAYER_STEP(be->ops->scale(be, b.x, (size_t)N * d, c->embed_scale, err));

    int l0 = f->seq_layer_start ? f->seq_layer_start[0] : f->layer_start;
    int na = f->n_seq;
    for (l = l0; l < f->layer_end; l++) {
        if (f->seq_layer_start)
            for (na = 0; na < f->n_seq && f->seq_layer_start[na] <= l; na++) {}
        int n = na * np;
        LAYER_STEP(md_hooks_run(m, f, MD_HOOK_RESID_PRE, l, b.x, na, err));
        LAYER_STEP(attn_block(m, f, l, na, &b, err)); /* o = attention branch; pattern, z hooks inside */
        LAYER_STEP(md_hooks_run(m, f, MD_HOOK_ATTN_OUT, l, b.o, na, err));
        LAYER_STEP(be->ops->add(be, b.x, b.o, (size_t)n * d, err));   /* x += attn_out */
        LAYER_STEP(md_hooks_run(m, f, MD_HOOK_RESID_MID, l, b.x, na, err));
        LAYER_STEP(mlp_in_block(m, l, n, &b, err));                     /* g = act(gate) * up */
        LAYER_STEP(md_hooks_run(m, f, MD_HOOK_MLP_POST, l, b.g, na, err));
        LAYER_STEP(mlp_out_block(m, l, n, &b, err));                    /* o = MLP branch */
        LAYER_STEP(md_hooks_run(m, f, MD_HOOK_MLP_OUT, l, b.o, na, err));
        LAYER_STEP(be->ops->add(be, b.x, b.o, (size_t)n * d, err));   /* x += mlp_out */
        LAYER_STEP(md_hooks_run(m, f, MD_HOOK_RESID_POST, l, b.x, na, err));
    }
    if (f->t1 > f->cache->len) f->cache->len = f->t1;

    if (f->resid_out && be->ops->to_host(be, f->resid_out, b.x, (size_t)N * d * sizeof(float), err) != MD_OK)
        rc = md_error_prefix(err, "forward of %s: residual to host", m->dir);
    if (rc == MD_OK && f->logits != MD_LOGITS_NONE && head_block(m, f, n_logit_rows, &b, err) != MD_OK)
        rc = md_error_prefix(err, "forward of %s: head", m->dir);
done:
    free(b.pos);
    return rc;
}

void md_forward_init_batch(md_forward *f, const md_model *m, int n_seq, int t1, const int *tokens,
                           const int *n_pad, md_kvcache *cache)
{
    md_forward_init_tokens(f, m, n_seq, t1, tokens);
    f->n_pad = n_pad;
    f->cache = cache;
}

void md_forward_init_partial(md_forward *f, const md_model *m, int n_seq, int t0, int t1, int layer_start,
                             const float *resid_in, const int *n_pad, md_kvcache *cache)
{
    md_forward_init(f, m);
    f->n_seq = n_seq;
    f->t0 = t0;
    f->t1 = t1;
    f->layer_start = layer_start;
    f->resid_in = resid_in;
    f->n_pad = n_pad;
    f->cache = cache;
}

void md_forward_set_hooks(md_forward *f, const md_hook *hooks, int n_hooks)
{
    f->hooks = hooks;
    f->n_hooks = n_hooks;
}

void md_forward_set_logits(md_forward *f, md_logits_mode mode, float *out, const int *ids, int n_ids)
{
    f->logits = mode;
    f->logits_out = out;
    f->logit_ids = ids;
    f->n_logit_ids = n_ids;
}
