/* forward.h — the batched, hookable, resumable forward pass.
 *
 * One call runs n_seq sequences of equal length over positions [t0, t1)
 * through layers [layer_start, layer_end), reading the KV cache for positions
 * [0, t0) and writing it for [t0, t1). Starting at layer_start > 0 from given
 * residual states is a "partial forward": a patch at (l, t) cannot change
 * layers < l or positions < t, so experiments start there. */
#ifndef MECHDIFF_FORWARD_H
#define MECHDIFF_FORWARD_H

#include "mechdiff/error.h"
#include "mechdiff/model.h"

/* Hook points, named as in TransformerLens, in every family (where each
 * sits in post-norm families: docs/architecture-model.md). */
typedef enum md_hook_point {
    MD_HOOK_RESID_PRE = 0,   /* block input (layer 0: the embedding, times √d in Gemma-2) */
    MD_HOOK_ATTN_OUT,        /* what attention adds to the residual: after o_proj, and after
                                the post-attention norm in Gemma-2 / OLMo-2 */
    MD_HOOK_RESID_MID,       /* resid_pre + attn_out */
    MD_HOOK_MLP_OUT,         /* what the MLP adds: after down_proj (and its post-norm) */
    MD_HOOK_RESID_POST,      /* resid_mid + mlp_out = block output */
    MD_HOOK_MLP_POST,        /* MLP hidden: act(gate) * up, the input of down_proj  [d_ff] */
    MD_HOOK_Z,               /* per-head attention output before o_proj (TransformerLens
                                hook_z): [n_heads][head_dim] per position, the input of
                                o_proj in every family; sum_h z_h · W_O[:, h]ᵀ = o_proj's output */
    MD_HOOK_PATTERN,         /* attention probabilities (hook_pattern): [n_heads][t1] per query
                                position, key positions 0..t1-1 (0 where masked) */
    MD_HOOK_COUNT
} md_hook_point;

typedef enum md_hook_op {
    MD_HOOK_READ = 0,        /* copy to `out` */
    MD_HOOK_REPLACE,         /* x = vec */
    MD_HOOK_ADD,             /* x += coef * vec */
    MD_HOOK_ABLATE           /* x -= (x·vec) vec   (vec unit) */
} md_hook_op;

#define MD_ALL (-1)

/* One hook. layer/seq/pos select cells (MD_ALL = every one); pos is an
 * absolute position. READ writes out[L][S][P][width] where L, S, P are 1 for
 * a fixed layer/seq/pos, else n_layers (absolute layer index), n_seq, and
 * t1 - t0 (index pos - t0). REPLACE reads vec[width] (same value in every
 * selected cell) unless vec_per_seq != 0, then vec[seq][width]. ADD adds
 * coef * vec[width]; ABLATE projects the cell off the unit vec[width].
 *
 * The per-head points (z, pattern) also select a head: `head` is a head
 * index or MD_ALL; the cell of a position is then that head's slice
 * ([head_dim] of z, [t1] key probabilities of pattern) or, for MD_ALL, the
 * whole row [n_heads][head_dim | t1]: width = md_hook_cell_width. `head` is
 * ignored by the other points (a zeroed hook selects head 0).
 * Pattern rows hold key positions 0..t1-1 of the whole sequence (the shared
 * prefix of a forked cache included). Editing a pattern (replace/add/ablate)
 * recomputes that layer's z as pattern · V over the keys the query may see
 * (causal, window, padding); values at other keys are ignored.
 *
 * Batched hook (REPLACE and ADD only): seq_pos != NULL selects one cell in
 * each of many sequences, applied as one backend op (one copy or kernel for
 * all of them, not one per sequence). seq and pos must be MD_ALL; sequence
 * s's cell is at absolute position seq_pos[s], or nowhere when seq_pos[s]
 * is negative (or outside [t0, t1)). For z / pattern, seq_head (NULL: use
 * `head`) gives the head of each sequence's cell, whose width is then one
 * head's slice. vec is read as for other hooks: vec[seq][width] with
 * vec_per_seq (row s for sequence s), else one vec[width] for all. E.g.
 * patching pair p at layer l in sequence l * nb + p: one hook per layer,
 * seq_pos[s] = t for that layer's sequences and -1 for the others.
 * seq_pos and seq_head are host arrays of n_seq ints, read during
 * md_model_forward only (the caller owns them, as vec). */
typedef struct md_hook {
    md_hook_point point;
    md_hook_op op;
    int layer;
    int seq;
    int pos;
    const float *vec;        /* host memory */
    int vec_per_seq;
    float coef;
    float *out;              /* host memory, READ only */
    int head;                /* z / pattern: head index or MD_ALL */
    const int *seq_pos;      /* batched: position of each sequence's cell [n_seq], or NULL */
    const int *seq_head;     /* batched z / pattern: head of each sequence's cell [n_seq], or NULL */
} md_hook;

typedef enum md_logits_mode {
    MD_LOGITS_NONE = 0,
    MD_LOGITS_LAST,          /* logits_out[n_seq][vocab] at position t1-1 */
    MD_LOGITS_ALL            /* logits_out[n_seq][t1-t0][vocab] */
} md_logits_mode;

/* The KV cache of n_seq sequences for the layers a model holds. A forked
 * cache shares positions [0, prefix_len) with its parent (read-only; the
 * parent must outlive it). The parent holds P sequences, P dividing n_seq:
 * the fork's sequence s continues the parent's sequence s mod P (P = 1: one
 * prefix broadcast to all; P = n_seq: one each; else groups of P, e.g. a
 * block of P prompts times L variants, sequence l*P + p from prompt p). */
typedef struct md_kvcache md_kvcache;
int md_kvcache_create(md_kvcache **out, const md_model *m, int n_seq, int max_len, md_error *err);
int md_kvcache_fork(md_kvcache **out, const md_kvcache *parent, int prefix_len, int n_seq,
                    int max_extra, md_error *err);
void md_kvcache_free(md_kvcache *c);
int md_kvcache_len(const md_kvcache *c);
/* Drops positions >= len (to reuse a cache). */
void md_kvcache_truncate(md_kvcache *c, int len);

typedef struct md_forward {
    int n_seq;
    int t0, t1;
    const int *tokens;            /* [n_seq][t1-t0], when starting from the embedding */
    const float *resid_in;        /* [n_seq][t1-t0][d], resid_pre of the start layer (host) */
    int layer_start;              /* first layer computed (0 = from tokens) */
    const int *seq_layer_start;   /* optional per-sequence start layer, non-decreasing;
                                     rows of a sequence are skipped below it */
    int layer_end;                /* one past the last layer computed; n_layers = all */
    float *resid_out;             /* optional host [n_seq][t1-t0][d] after layer_end-1 */
    md_logits_mode logits;
    float *logits_out;            /* host */
    const int *logit_ids;         /* optional: only these vocabulary ids; logits_out
                                     is then [rows][n_logit_ids] (a patching metric
                                     needs 2 of 128k logits) */
    int n_logit_ids;
    const int *n_pad;             /* optional left padding per sequence, each in [0, t1) */
    const md_hook *hooks;
    int n_hooks;
    md_kvcache *cache;
} md_forward;

/* Sets defaults: layer_end = n_layers, logits = LAST, everything else 0/NULL. */
void md_forward_init(md_forward *f, const md_model *m);
/* md_forward_init, then a run of n_seq sequences over positions [0, t1) from
 * the embedding of `tokens` ([n_seq][t1], not copied). */
void md_forward_init_tokens(md_forward *f, const md_model *m, int n_seq, int t1, const int *tokens);
int md_model_forward(md_model *m, const md_forward *f, md_error *err);

const char *md_hook_point_name(md_hook_point p);
/* -1 when unknown. */
int md_hook_point_parse(const char *name);
/* Floats of one (layer, seq, pos) cell of h in this forward: the width of
 * its vec and of a READ's rows (pattern's depends on f->t1). */
size_t md_hook_cell_width(const md_model *m, const md_forward *f, const md_hook *h);
/* Floats a READ hook writes for this forward. */
size_t md_hook_read_count(const md_model *m, const md_forward *f, const md_hook *h);

/* ---- builder (used by src/exp): one call per concern instead of filling
 * md_forward field by field. Each keeps what it does not set. */
/* md_forward_init, then n_seq left-padded sequences (n_pad [n_seq] or NULL)
 * over positions [0, t1) from tokens [n_seq][t1]; cache may be NULL. */
void md_forward_init_batch(md_forward *f, const md_model *m, int n_seq, int t1, const int *tokens,
                           const int *n_pad, md_kvcache *cache);
/* md_forward_init, then a partial forward: n_seq rows over positions
 * [t0, t1) from resid_in [n_seq][t1-t0][d] at layer layer_start (0 with
 * per-sequence starts, set seq_layer_start after), reading the cache for
 * positions before t0; n_pad may be NULL. */
void md_forward_init_partial(md_forward *f, const md_model *m, int n_seq, int t0, int t1, int layer_start,
                             const float *resid_in, const int *n_pad, md_kvcache *cache);
/* The hooks of the run (not copied). */
void md_forward_set_hooks(md_forward *f, const md_hook *hooks, int n_hooks);
/* What the run returns: logits mode, its buffer, and (ids non-NULL) only the
 * logits of ids[0..n_ids). */
void md_forward_set_logits(md_forward *f, md_logits_mode mode, float *out, const int *ids, int n_ids);

#endif
