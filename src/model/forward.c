/* forward.c — the forward pass: one loop over layers, the hook points
 * visible in it, in the spirit of llama2.c's run.c.
 *
 * Rows of every activation buffer are ordered [seq][pos - t0]. With per-
 * sequence start layers (non-decreasing), the sequences active at layer l
 * are a prefix 0..na-1 of the batch, so each GEMM runs on the first na*np
 * rows only: a patch at (l, t) computes nothing below l and before t. */
#include "mechdiff/forward.h"

#include <stdlib.h>
#include <string.h>

#include "model/kvcache_impl.h"
#include "model/shard_impl.h"

static const char *HOOK_NAMES[MD_HOOK_COUNT] = {"resid_pre", "attn_out", "resid_mid",
                                                "mlp_out", "resid_post", "mlp_post"};

const char *md_hook_point_name(md_hook_point p)
{
    return (p >= 0 && p < MD_HOOK_COUNT) ? HOOK_NAMES[p] : "?";
}

int md_hook_point_parse(const char *name)
{
    for (int i = 0; i < MD_HOOK_COUNT; i++)
        if (strcmp(name, HOOK_NAMES[i]) == 0) return i;
    return -1;
}

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

size_t md_hook_read_count(const md_model *m, const md_forward *f, const md_hook *h)
{
    size_t L = h->layer == MD_ALL ? (size_t)m->cfg.n_layers : 1;
    size_t S = h->seq == MD_ALL ? (size_t)f->n_seq : 1;
    size_t P = h->pos == MD_ALL ? (size_t)(f->t1 - f->t0) : 1;
    return L * S * P * (size_t)md_model_hook_width(m, h->point);
}

/* Applies every hook registered at (point, layer) to buf, whose rows are
 * [seq][pos - t0] of `width` floats; only the first na sequences are live. */
static void run_hooks(md_model *m, const md_forward *f, md_hook_point point, int layer, float *buf,
                      int width, int na)
{
    md_backend *be = m->be;
    int np = f->t1 - f->t0;
    for (int i = 0; i < f->n_hooks; i++) {
        const md_hook *h = &f->hooks[i];
        if (h->point != point || (h->layer != MD_ALL && h->layer != layer)) continue;
        if (h->pos != MD_ALL && (h->pos < f->t0 || h->pos >= f->t1)) continue;
        int s_lo = h->seq == MD_ALL ? 0 : h->seq, s_hi = h->seq == MD_ALL ? na : h->seq + 1;
        if (s_hi > na) s_hi = na;
        int p_lo = h->pos == MD_ALL ? 0 : h->pos - f->t0;
        int p_n = h->pos == MD_ALL ? np : 1;
        for (int s = s_lo; s < s_hi; s++) {
            float *rows = buf + ((size_t)s * np + p_lo) * width;
            size_t bytes = (size_t)p_n * width * sizeof(float);
            switch (h->op) {
            case MD_HOOK_READ: {
                size_t S = h->seq == MD_ALL ? (size_t)f->n_seq : 1, P = (size_t)p_n;
                size_t li = h->layer == MD_ALL ? (size_t)layer : 0, si = h->seq == MD_ALL ? (size_t)s : 0;
                be->ops->to_host(be, h->out + ((li * S + si) * P) * width, rows, bytes);
                break;
            }
            case MD_HOOK_REPLACE: {
                const float *v = h->vec + (h->vec_per_seq ? (size_t)s * width : 0);
                for (int p = 0; p < p_n; p++)
                    be->ops->to_device(be, rows + (size_t)p * width, v, (size_t)width * sizeof(float));
                break;
            }
            case MD_HOOK_ADD:
                be->ops->add_vec(be, rows, p_n, width, h->vec, h->coef);
                break;
            case MD_HOOK_ABLATE:
                be->ops->ablate(be, rows, p_n, width, h->vec);
                break;
            }
        }
    }
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
    for (int i = 0; i < f->n_hooks; i++) {
        const md_hook *h = &f->hooks[i];
        if (h->point < 0 || h->point >= MD_HOOK_COUNT) return md_error_set(err, "forward: hook %d: bad point", i);
        if (h->op == MD_HOOK_READ ? !h->out : !h->vec)
            return md_error_set(err, "forward: hook %d (%s): missing %s buffer", i, md_hook_point_name(h->point),
                                h->op == MD_HOOK_READ ? "out" : "vec");
        if (h->seq != MD_ALL && (h->seq < 0 || h->seq >= f->n_seq))
            return md_error_set(err, "forward: hook %d: sequence %d outside the batch of %d", i, h->seq, f->n_seq);
        if (h->layer != MD_ALL && (h->layer < 0 || h->layer >= c->n_layers))
            return md_error_set(err, "forward: hook %d: layer %d outside [0, %d)", i, h->layer, c->n_layers);
    }
    return MD_OK;
}

int md_model_forward(md_model *m, const md_forward *f, md_error *err)
{
    if (m->shard) {
        if (check_args(m, f, 0, m->cfg.n_layers, 1, err) != MD_OK) return MD_ERR;
        return md_shard_forward(m, f, err);
    }
    return md_forward_local(m, f, err);
}

int md_forward_local(md_model *m, const md_forward *f, md_error *err)
{
    if (check_args(m, f, m->layer_lo, m->layer_hi, m->has_head, err) != MD_OK) return MD_ERR;
    const md_config *c = &m->cfg;
    md_backend *be = m->be;
    md_kvcache *kc = f->cache;
    int d = c->d_model, hd = c->head_dim, nh = c->n_heads, nkv = c->n_kv_heads, ff = c->d_ff;
    int qd = nh * hd, kvd = nkv * hd;
    int np = f->t1 - f->t0, N = f->n_seq * np;
    int n_logit_rows = f->logits == MD_LOGITS_ALL ? N : f->logits == MD_LOGITS_LAST ? f->n_seq : 0;

    /* Scratch (backend memory, grows in m->ws):
     * x[N][d] xb[N][d] q[N][qd] k[N][kvd] v[N][kvd] att[N][qd] o[N][d] g[N][ff] u[N][ff] lg[rows][vocab] */
    size_t need = (size_t)N * (3 * d + 2 * qd + 2 * kvd + 2 * ff) + (size_t)n_logit_rows * c->vocab_size;
    if (need * sizeof(float) > m->ws_bytes) {
        if (m->ws) be->ops->free(be, m->ws);
        m->ws = be->ops->alloc(be, need * sizeof(float));
        m->ws_bytes = m->ws ? need * sizeof(float) : 0;
        if (!m->ws) return md_error_set(err, "forward: out of memory for %d rows of scratch", N);
    }
    float *x = m->ws, *xb = x + (size_t)N * d, *q = xb + (size_t)N * d, *k = q + (size_t)N * qd;
    float *v = k + (size_t)N * kvd, *att = v + (size_t)N * kvd, *o = att + (size_t)N * qd;
    float *g = o + (size_t)N * d, *u = g + (size_t)N * ff, *lg = u + (size_t)N * ff;
    int *pos = malloc((size_t)N * sizeof(int));
    if (!pos) return md_error_set(err, "forward: out of memory");
    for (int s = 0; s < f->n_seq; s++)
        for (int p = 0; p < np; p++) pos[s * np + p] = f->t0 + p - (f->n_pad ? f->n_pad[s] : 0);

    /* Input: the embedding, or the given residual of the start layer. */
    if (f->resid_in) be->ops->to_device(be, x, f->resid_in, (size_t)N * d * sizeof(float));
    else be->ops->embed(be, x, f->tokens, N, &m->embed);

    int l0 = f->seq_layer_start ? f->seq_layer_start[0] : f->layer_start;
    int na = f->n_seq;
    for (int l = l0; l < f->layer_end; l++) {
        const md_layer *L = &m->layers[l];
        if (f->seq_layer_start)
            for (na = 0; na < f->n_seq && f->seq_layer_start[na] <= l; na++) {}
        int n = na * np;
        run_hooks(m, f, MD_HOOK_RESID_PRE, l, x, d, na);

        /* attention: xb = norm(x); q,k,v = xb·Wqᵀ, xb·Wkᵀ, xb·Wvᵀ; rope; cache k,v */
        be->ops->rmsnorm(be, xb, x, &L->attn_norm, n, d, c->rms_eps);
        be->ops->matmul(be, q, xb, &L->wq, n);   /* [n][qd]  */
        be->ops->matmul(be, k, xb, &L->wk, n);   /* [n][kvd] */
        be->ops->matmul(be, v, xb, &L->wv, n);   /* [n][kvd] */
        be->ops->rope(be, q, n, nh, hd, pos, m->inv_freq);
        be->ops->rope(be, k, n, nkv, hd, pos, m->inv_freq);
        for (int s = 0; s < na; s++) {
            size_t off = (size_t)(f->t0 - kc->prefix_len) * kvd, bytes = (size_t)np * kvd * sizeof(float);
            be->ops->copy(be, md_kvcache_k_at(kc, l, s) + off, k + (size_t)s * np * kvd, bytes);
            be->ops->copy(be, md_kvcache_v_at(kc, l, s) + off, v + (size_t)s * np * kvd, bytes);
        }
        for (int s = 0; s < na; s++) {
            const float *k0 = NULL, *v0 = NULL;
            if (kc->parent) {
                int ps = kc->parent->n_seq == 1 ? 0 : s;
                k0 = md_kvcache_k_at(kc->parent, l, ps);
                v0 = md_kvcache_v_at(kc->parent, l, ps);
            }
            be->ops->attention(be, att + (size_t)s * np * qd, q + (size_t)s * np * qd, np, f->t0, k0, v0,
                               kc->prefix_len, md_kvcache_k_at(kc, l, s), md_kvcache_v_at(kc, l, s),
                               f->t1 - kc->prefix_len, f->n_pad ? f->n_pad[s] : 0, nh, nkv, hd);
        }
        be->ops->matmul(be, o, att, &L->wo, n);  /* [n][d] */
        run_hooks(m, f, MD_HOOK_ATTN_OUT, l, o, d, na);
        be->ops->add(be, x, o, (size_t)n * d);
        run_hooks(m, f, MD_HOOK_RESID_MID, l, x, d, na);

        /* MLP: h = silu(xb·Wgᵀ) * (xb·Wuᵀ); o = h·Wdᵀ */
        be->ops->rmsnorm(be, xb, x, &L->mlp_norm, n, d, c->rms_eps);
        be->ops->matmul(be, g, xb, &L->w_gate, n); /* [n][ff] */
        be->ops->matmul(be, u, xb, &L->w_up, n);   /* [n][ff] */
        be->ops->swiglu(be, g, g, u, (size_t)n * ff);
        run_hooks(m, f, MD_HOOK_MLP_POST, l, g, ff, na);
        be->ops->matmul(be, o, g, &L->w_down, n);  /* [n][d] */
        run_hooks(m, f, MD_HOOK_MLP_OUT, l, o, d, na);
        be->ops->add(be, x, o, (size_t)n * d);
        run_hooks(m, f, MD_HOOK_RESID_POST, l, x, d, na);
    }
    if (f->t1 > kc->len) kc->len = f->t1;

    if (f->resid_out) be->ops->to_host(be, f->resid_out, x, (size_t)N * d * sizeof(float));
    if (f->logits != MD_LOGITS_NONE) {
        /* logits = norm(x)·W_Uᵀ, at the last position of each sequence or everywhere */
        float *src = x;
        if (f->logits == MD_LOGITS_LAST) {
            for (int s = 0; s < f->n_seq; s++)
                be->ops->copy(be, xb + (size_t)s * d, x + ((size_t)s * np + np - 1) * d, (size_t)d * sizeof(float));
            src = xb;
        }
        be->ops->rmsnorm(be, xb, src, &m->final_norm, n_logit_rows, d, c->rms_eps);
        if (f->logit_ids) {
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
                be->ops->matmul(be, lg + (size_t)j * n_logit_rows, xb, &row, n_logit_rows);
            }
            float *tmp = malloc((size_t)n_logit_rows * f->n_logit_ids * sizeof(float));
            if (!tmp) {
                free(pos);
                return md_error_set(err, "forward: out of memory");
            }
            be->ops->to_host(be, tmp, lg, (size_t)n_logit_rows * f->n_logit_ids * sizeof(float));
            for (int j = 0; j < f->n_logit_ids; j++)
                for (int r = 0; r < n_logit_rows; r++)
                    f->logits_out[(size_t)r * f->n_logit_ids + j] = tmp[(size_t)j * n_logit_rows + r];
            free(tmp);
        } else {
            be->ops->matmul(be, lg, xb, &m->lm_head, n_logit_rows); /* [rows][vocab] */
            be->ops->to_host(be, f->logits_out, lg, (size_t)n_logit_rows * c->vocab_size * sizeof(float));
        }
    }
    free(pos);
    return MD_OK;
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
