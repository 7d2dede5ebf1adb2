/* kn_compute.c — one unit of the `knowledge` kind: a block of up to
 * `pair_block` consecutive pairs of one (dataset, patched model B, source
 * model A). Units are fixed by the job (knowledge.c's plan), so results do
 * not depend on the number of ranks.
 *
 * The block's prompts are left-padded to its longest one, so the window of
 * the last n_toks positions sits at the same positions in every prompt
 * (padding changes no real position's numbers: RoPE positions count from
 * the first real token, and no real query attends to padding).
 *   1. A on the block's TRUE prompts (one batched run): the hook point in
 *      the window, every layer.
 *   2. B on the FALSE prompts: its cache (one sequence per pair) and the
 *      residual each partial forward starts from.
 *   3. For each window position t, one partial forward of B over [t, T)
 *      from that cache, with a sequence per (layer, pair) — sequence
 *      l * nb + p patches pair p at layer l and starts at layer l (l + 1
 *      for resid_post, where the patched state is the residual itself). The
 *      sequences that start at the same layer, from every pair of the block,
 *      go through each layer's weights together: one pass over the weights
 *      serves nb times the rows of a one-pair unit.
 *   component head: per (layer l, position t) one partial forward from l of
 *   n_heads x nb sequences (h * nb + p: head h of pair p).
 *   Patches through hooks (every point but resid_post, and heads) are
 *   batched hooks (forward.h): one replacement per hook point and layer for
 *   the whole block, not one per sequence.
 *   naive: true: pair by pair, one full forward per cell (the reference).
 * Only logit(true_word) and logit(false_word) at the last position are
 * computed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp/kn_compute.h"
#include "exp/kn_output.h"
#include "mechdiff/forward.h"
#include "mechdiff/model.h"

void md_kn_locate_unit(const kn_state *s, int64_t unit, int *d, int *c, int *p0, int *nb)
{
    int i = 0;
    while (i + 1 < s->n_ds && unit >= s->unit_base[i + 1]) i++;
    int64_t r = unit - s->unit_base[i];
    int blocks = kn_blocks(s, &s->ds[i]);
    *d = i;
    *c = (int)(r / blocks);
    *p0 = (int)(r % blocks) * s->block;
    *nb = s->ds[i].n_pairs - *p0 < s->block ? s->ds[i].n_pairs - *p0 : s->block;
}

/* A block's work. Buffers owned (kn_block_free); layouts are pair-major,
 * as the results are written. */
typedef struct kn_block {
    const kn_state *s;
    const md_kn_dataset *ds;
    const md_kn_pair *pr; /* the block's pairs pr[0 .. nb) */
    md_model *A, *B;
    int nb, L, N, W, d, H, V2[2], store, fast_post; /* H: heads patched one by one (else 1) */
    int T;               /* longest prompt of the block: every prompt is left-padded to T */
    int *pad;            /* [nb] left padding of each prompt */
    int *ids;            /* [nb][T] padded prompts of a clean run */
    float *src;          /* A's TRUE states at the hook point [nb][L][N][W] */
    float *fal;          /* B's FALSE states at the hook point (store) [nb][L][N][W] */
    float *pre;          /* B's FALSE residual each partial forward starts from [nb][L][N][d] */
    float *effect;       /* [nb][L][H][N] */
    float *ct, *cf;      /* [nb] clean logit differences (A on TRUE, B on FALSE) */
    float *rd;           /* window reads of a clean run [N][L][nb][d + W] */
    float *rin, *lg;     /* partial-forward input [S][N][d], logits [S][2]; S = nb * max(L, H) */
    int *starts, *spad;  /* per-sequence start layer and left padding [S] */
    float *vsrc;         /* the patches of a partial forward, row s for sequence s [S][W] */
    int *cpos, *chead;   /* batched hooks' cells: position [L][S] (one row per layer's hook), head [S] */
    md_hook *hooks;      /* [max(L, 2N)] */
    md_kvcache *root;    /* B's FALSE cache, nb sequences */
} kn_block;

static void kn_block_free(kn_block *u)
{
    md_kvcache_free(u->root);
    free(u->pad), free(u->ids), free(u->src), free(u->fal), free(u->pre), free(u->effect), free(u->ct);
    free(u->cf), free(u->rd), free(u->rin), free(u->lg), free(u->starts), free(u->spad), free(u->hooks);
    free(u->vsrc), free(u->cpos), free(u->chead);
}

static int kn_block_alloc(kn_block *u, md_error *err)
{
    size_t nb = (size_t)u->nb, win = nb * u->L * u->N * u->W, res = nb * u->L * u->N * u->d;
    size_t S = nb * (size_t)(u->H > u->L ? u->H : u->L), nh = u->L > 2 * u->N ? (size_t)u->L : 2 * (size_t)u->N;
    u->T = 0;
    for (int p = 0; p < u->nb; p++) u->T = u->pr[p].len > u->T ? u->pr[p].len : u->T;
    u->pad = malloc(nb * sizeof(int));
    u->ids = malloc(nb * u->T * sizeof(int));
    u->src = malloc(win * sizeof(float));
    u->fal = u->store ? malloc(win * sizeof(float)) : NULL;
    u->pre = malloc(res * sizeof(float));
    u->effect = malloc(nb * u->L * u->H * u->N * sizeof(float));
    u->ct = malloc(nb * sizeof(float));
    u->cf = malloc(nb * sizeof(float));
    u->rd = malloc((size_t)u->N * u->L * nb * (u->d + u->W) * sizeof(float));
    u->rin = malloc(S * u->N * u->d * sizeof(float));
    u->lg = malloc(S * 2 * sizeof(float));
    u->starts = malloc(S * sizeof(int));
    u->spad = malloc(S * sizeof(int));
    u->hooks = calloc(nh, sizeof(md_hook));
    u->vsrc = malloc(S * u->W * sizeof(float));
    u->cpos = malloc(S * u->L * sizeof(int));
    u->chead = malloc(S * sizeof(int));
    if (!u->pad || !u->ids || !u->src || (u->store && !u->fal) || !u->pre || !u->effect || !u->ct || !u->cf ||
        !u->rd || !u->rin || !u->lg || !u->starts || !u->spad || !u->hooks || !u->vsrc || !u->cpos || !u->chead)
        return md_error_set(err, "out of memory for a block of %d pairs (lower pair_block)", u->nb);
    for (int p = 0; p < u->nb; p++) u->pad[p] = u->T - u->pr[p].len;
    return MD_OK;
}

/* One clean run of m on the block's TRUE (or FALSE) prompts, left-padded:
 * logit differences diff[nb] at the last position; READ hooks `reads`. */
static int kn_clean(kn_block *u, md_model *m, int use_true, const md_hook *reads, int n_reads, md_kvcache *kc,
                    float *diff, md_error *err)
{
    for (int p = 0; p < u->nb; p++) {
        const int *ids = use_true ? u->pr[p].true_ids : u->pr[p].false_ids;
        int *row = u->ids + (size_t)p * u->T;
        for (int i = 0; i < u->pad[p]; i++) row[i] = ids[0]; /* padding: never attended to */
        memcpy(row + u->pad[p], ids, (size_t)u->pr[p].len * sizeof(int));
    }
    md_forward f;
    md_forward_init_batch(&f, m, u->nb, u->T, u->ids, u->pad, kc);
    md_forward_set_hooks(&f, reads, n_reads);
    md_forward_set_logits(&f, MD_LOGITS_LAST, u->lg, u->V2, 2);
    if (md_model_forward(m, &f, err) != MD_OK) return MD_ERR;
    for (int p = 0; p < u->nb; p++) diff[p] = u->lg[2 * p] - u->lg[2 * p + 1];
    return MD_OK;
}

/* N READ hooks of `point` (cell width w), one per window position: hook j
 * writes out + j * L * nb * w as [L][nb][w]. */
static void kn_window_reads(const kn_block *u, int point, float *out, int w, md_hook *h)
{
    for (int j = 0; j < u->N; j++)
        h[j] = (md_hook){.point = point, .op = MD_HOOK_READ, .layer = MD_ALL, .seq = MD_ALL,
                         .pos = u->T - u->N + j, .head = MD_ALL, .out = out + (size_t)j * u->L * u->nb * w};
}

/* The window reads [N][L][nb][w] into dst [nb][L][N][w]. */
static void kn_scatter(const kn_block *u, const float *rd, int w, float *dst)
{
    for (int j = 0; j < u->N; j++)
        for (int l = 0; l < u->L; l++)
            for (int p = 0; p < u->nb; p++)
                memcpy(dst + (((size_t)p * u->L + l) * u->N + j) * w,
                       rd + (((size_t)j * u->L + l) * u->nb + p) * w, (size_t)w * sizeof(float));
}

/* 1. A on TRUE: the hook point in the window. */
static int kn_read_source(kn_block *u, md_error *err)
{
    md_kvcache *kc = NULL;
    kn_window_reads(u, u->s->hook, u->rd, u->W, u->hooks);
    int rc = md_kvcache_create(&kc, u->A, u->nb, u->T, err);
    if (rc == MD_OK) rc = kn_clean(u, u->A, 1, u->hooks, u->N, kc, u->ct, err);
    if (rc == MD_OK) kn_scatter(u, u->rd, u->W, u->src);
    md_kvcache_free(kc);
    return rc;
}

/* 2. B on FALSE: its cache, and the residual each partial forward starts
 *    from (resid_post of l for the resid_post fast path, else resid_pre of
 *    l), and (store) the hook point. */
static int kn_read_target(kn_block *u, int resid_point, md_error *err)
{
    float *rd_hook = u->rd + (size_t)u->N * u->L * u->nb * u->d;
    kn_window_reads(u, resid_point, u->rd, u->d, u->hooks);
    if (u->store) kn_window_reads(u, u->s->hook, rd_hook, u->W, u->hooks + u->N);
    if (md_kvcache_create(&u->root, u->B, u->nb, u->T, err) != MD_OK ||
        kn_clean(u, u->B, 0, u->hooks, u->store ? 2 * u->N : u->N, u->root, u->cf, err) != MD_OK)
        return MD_ERR;
    kn_scatter(u, u->rd, u->d, u->pre);
    if (u->store) kn_scatter(u, rd_hook, u->W, u->fal);
    return MD_OK;
}

/* Offsets into the pair-major buffers. */
static size_t kn_at(const kn_block *u, int p, int l, int j)
{
    return ((size_t)p * u->L + l) * u->N + j;
}

/* 3, naive (a block of one pair): one full forward of B per (layer,
 * [head,] position j) cell. */
static int kn_column_naive(kn_block *u, int j, md_error *err)
{
    int t = u->T - u->N + j, hw = u->W / u->H; /* a head's slice of z (the whole width when H = 1) */
    for (int c = 0; c < u->L * u->H; c++) {
        int l = c / u->H, hh = c % u->H;
        md_hook h = {.point = u->s->hook, .op = MD_HOOK_REPLACE, .layer = l, .seq = 0, .pos = t,
                     .vec = u->src + kn_at(u, 0, l, j) * u->W + (size_t)hh * hw, .head = u->H > 1 ? hh : MD_ALL};
        md_kvcache *kc = NULL;
        float diff;
        if (md_kvcache_create(&kc, u->B, 1, u->T, err) != MD_OK) return MD_ERR;
        int r = kn_clean(u, u->B, 0, &h, 1, kc, &diff, err);
        md_kvcache_free(kc);
        if (r != MD_OK) return MD_ERR;
        u->effect[((size_t)l * u->H + hh) * u->N + j] = diff; /* pair 0 of [nb][L][H][N] */
    }
    return MD_OK;
}

/* 3, heads: per layer l, one partial forward of B from layer l over
 *    [t, T) with n_heads x nb sequences, sequence h * nb + p getting pair
 *    p's TRUE z of head h at (l, t): one batched z hook for all of them. */
static int kn_column_heads(kn_block *u, int j, md_error *err)
{
    int H = u->H, nb = u->nb, d = u->d, t = u->T - u->N + j, np = u->N - j, hd = u->W / H, S = H * nb, rc = MD_OK;
    for (int l = 0; l < u->L && rc == MD_OK; l++) {
        md_kvcache *fork = NULL;
        if (md_kvcache_fork(&fork, u->root, t, S, np, err) != MD_OK) return MD_ERR;
        for (int s = 0; s < S; s++) {
            int h = s / nb, p = s % nb;
            memcpy(u->rin + (size_t)s * np * d, u->pre + kn_at(u, p, l, j) * d, (size_t)np * d * sizeof(float));
            u->spad[s] = u->pad[p];
            memcpy(u->vsrc + (size_t)s * hd, u->src + kn_at(u, p, l, j) * u->W + (size_t)h * hd,
                   (size_t)hd * sizeof(float));
            u->cpos[s] = t;
            u->chead[s] = h;
        }
        u->hooks[0] = (md_hook){.point = MD_HOOK_Z, .op = MD_HOOK_REPLACE, .layer = l, .seq = MD_ALL, .pos = MD_ALL,
                                .vec = u->vsrc, .vec_per_seq = 1, .seq_pos = u->cpos, .seq_head = u->chead};
        md_forward f;
        md_forward_init_partial(&f, u->B, S, t, u->T, l, u->rin, u->spad, fork);
        md_forward_set_logits(&f, MD_LOGITS_LAST, u->lg, u->V2, 2);
        md_forward_set_hooks(&f, u->hooks, 1);
        rc = md_model_forward(u->B, &f, err);
        for (int s = 0; rc == MD_OK && s < S; s++)
            u->effect[(((size_t)(s % nb) * u->L + l) * H + s / nb) * u->N + j] = u->lg[2 * s] - u->lg[2 * s + 1];
        md_kvcache_free(fork);
    }
    return rc;
}

/* 3: every (layer, pair) at window position j in one batched partial
 *    forward of B from the FALSE cache's prefix; sequence l * nb + p is
 *    the patch of pair p at layer l (start layers non-decreasing). Hook
 *    points other than resid_post: one batched replace hook per layer, at
 *    position t of that layer's nb sequences. */
static int kn_column(kn_block *u, int j, md_error *err)
{
    int L = u->L, nb = u->nb, W = u->W, d = u->d, t = u->T - u->N + j, np = u->N - j, S = L * nb;
    md_kvcache *fork = NULL;
    if (md_kvcache_fork(&fork, u->root, t, S, np, err) != MD_OK) return MD_ERR;
    for (int s = 0; s < S; s++) {
        int l = s / nb, p = s % nb;
        /* sequence s: B's clean residual of pair p at positions [t, T) ... */
        memcpy(u->rin + (size_t)s * np * d, u->pre + kn_at(u, p, l, j) * d, (size_t)np * d * sizeof(float));
        u->spad[s] = u->pad[p];
        if (u->fast_post) {
            /* ... after layer l, with A's TRUE state at t: start at l+1 */
            u->starts[s] = l + 1;
            memcpy(u->rin + (size_t)s * np * d, u->src + kn_at(u, p, l, j) * W, (size_t)d * sizeof(float));
        } else {
            /* ... before layer l; layer l's hook puts A's state in at (l, t) */
            u->starts[s] = l;
            memcpy(u->vsrc + (size_t)s * W, u->src + kn_at(u, p, l, j) * W, (size_t)W * sizeof(float));
        }
    }
    for (int l = 0; l < L && !u->fast_post; l++) {
        int *pos = u->cpos + (size_t)l * S;
        for (int s = 0; s < S; s++) pos[s] = s / nb == l ? t : -1;
        u->hooks[l] = (md_hook){.point = u->s->hook, .op = MD_HOOK_REPLACE, .layer = l, .seq = MD_ALL,
                                .pos = MD_ALL, .vec = u->vsrc, .vec_per_seq = 1, .seq_pos = pos};
    }
    md_forward f;
    md_forward_init_partial(&f, u->B, S, t, u->T, 0, u->rin, u->spad, fork);
    f.seq_layer_start = u->starts;
    md_forward_set_logits(&f, MD_LOGITS_LAST, u->lg, u->V2, 2);
    md_forward_set_hooks(&f, u->fast_post ? NULL : u->hooks, u->fast_post ? 0 : L);
    int r = md_model_forward(u->B, &f, err);
    md_kvcache_free(fork);
    if (r != MD_OK) return MD_ERR;
    for (int s = 0; s < S; s++) u->effect[kn_at(u, s % nb, s / nb, j)] = u->lg[2 * s] - u->lg[2 * s + 1];
    return MD_OK;
}

/* The block's results at pairs [p0, p0 + nb): effect, clean differences,
 * (store) activations. */
static int kn_put(const kn_block *u, const kn_combo *cb, int p0, md_result *out, md_error *err)
{
    char grp[MD_PATH_MAX], path[MD_PATH_MAX + 16]; /* md_result_put refuses a path over MD_PATH_MAX */
    md_kn_group(grp, sizeof grp, u->ds->name, cb->source, cb->target);
    int nb = u->nb, heads = u->H > 1;
    int64_t o4[4] = {p0, 0, 0, 0}, ce[4] = {nb, u->L, heads ? u->H : u->N, u->N}, o1[1] = {p0}, c1[1] = {nb};
    size_t win = (size_t)nb * u->L * u->N * u->W * sizeof(float);
    snprintf(path, sizeof path, "%s/%s", grp, heads ? "effect_head" : "effect");
    if (md_result_put(out, path, heads ? 4 : 3, o4, ce, u->effect, (size_t)nb * u->L * u->H * u->N * sizeof(float),
                      err) != MD_OK)
        return MD_ERR;
    snprintf(path, sizeof path, "%s/clean_true", grp);
    if (md_result_put(out, path, 1, o1, c1, u->ct, (size_t)nb * sizeof(float), err) != MD_OK) return MD_ERR;
    snprintf(path, sizeof path, "%s/clean_false", grp);
    if (md_result_put(out, path, 1, o1, c1, u->cf, (size_t)nb * sizeof(float), err) != MD_OK) return MD_ERR;
    if (!u->store) return MD_OK;
    int64_t ca[4] = {nb, u->L, u->N, u->W};
    snprintf(path, sizeof path, "%s/acts_true", grp);
    if (md_result_put(out, path, 4, o4, ca, u->src, win, err) != MD_OK) return MD_ERR;
    snprintf(path, sizeof path, "%s/acts_false", grp);
    return md_result_put(out, path, 4, o4, ca, u->fal, win, err);
}

/* Pairs [p0, p0 + nb) of dataset di, combination ci: the whole grid, put. */
static int kn_block_run(const kn_state *s, int di, int ci, int p0, int nb, md_model *A, md_model *B,
                        md_result *out, md_error *err)
{
    const md_kn_dataset *ds = &s->ds[di];
    kn_block u = {.s = s, .ds = ds, .pr = &ds->pairs[p0], .A = A, .B = B, .nb = nb, .L = s->n_layers,
                  .N = ds->n_toks, .W = s->width, .d = B->cfg.d_model, .H = s->n_heads,
                  .V2 = {s->id_true, s->id_false}};
    int naive = s->opt.naive;
    u.store = s->opt.store_activations && ci < s->n_self;
    u.fast_post = s->hook == MD_HOOK_RESID_POST && !naive;
    int rc = kn_block_alloc(&u, err);
    if (rc == MD_OK) rc = kn_read_source(&u, err);
    if (rc == MD_OK) rc = kn_read_target(&u, u.fast_post ? MD_HOOK_RESID_POST : MD_HOOK_RESID_PRE, err);
    for (int j = 0; j < u.N && rc == MD_OK; j++)
        rc = naive ? kn_column_naive(&u, j, err) : u.H > 1 ? kn_column_heads(&u, j, err) : kn_column(&u, j, err);
    if (rc == MD_OK) rc = kn_put(&u, &s->combos[ci], p0, out, err);
    kn_block_free(&u);
    return rc;
}

int md_kn_compute_unit(const md_kind_ctx *ctx, md_worker *w, void *state, int stage, const md_blob *input,
                       int64_t unit, md_result *out, md_error *err)
{
    (void)ctx, (void)stage, (void)input;
    const kn_state *s = state;
    int di, ci, p0, nb;
    md_kn_locate_unit(s, unit, &di, &ci, &p0, &nb);
    const kn_combo *cb = &s->combos[ci];
    md_model *A = NULL, *B = NULL;
    if (md_worker_model(w, cb->source, &A, err) != MD_OK || md_worker_model(w, cb->target, &B, err) != MD_OK)
        return MD_ERR;
    /* naive: the reference, pair by pair (a block of one: no padding) */
    int step = s->opt.naive ? 1 : nb, rc = MD_OK;
    for (int p = p0; p < p0 + nb && rc == MD_OK; p += step)
        rc = kn_block_run(s, di, ci, p, step, A, B, out, err);
    if (rc != MD_OK)
        md_error_prefix(err, "%s pairs %d-%d (%s -> %s)", s->ds[di].name, p0, p0 + nb - 1, cb->source, cb->target);
    return rc;
}
