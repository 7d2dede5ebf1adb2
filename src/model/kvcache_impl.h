/* kvcache_impl.h — the KV cache's layout, shared by kvcache.c and forward.c
 * only (not installed). */
#ifndef MECHDIFF_KVCACHE_IMPL_H
#define MECHDIFF_KVCACHE_IMPL_H

#include "mechdiff/backend.h"

struct md_kvcache {
    md_backend *be;                   /* not owned */
    int n_seq, max_len, kv_dim;
    int layer_lo, layer_hi;
    float *k, *v;                     /* owned, backend memory */
    int len;                          /* positions filled, prefix included */
    const struct md_kvcache *parent;  /* shared prefix, not owned */
    int prefix_len;
    const struct md_model_exec *exec; /* the model's exec, NULL for a local model */
    void *exec_ctx;                   /* not owned */
    int exec_id;                      /* the exec's name for this cache (sharded: the members' twins) */
};

/* Own storage of (layer, seq): row r holds position prefix_len + r. */
static inline float *md_kvcache_k_at(const struct md_kvcache *c, int layer, int seq)
{
    return c->k + ((size_t)(layer - c->layer_lo) * c->n_seq + seq) * c->max_len * c->kv_dim;
}
static inline float *md_kvcache_v_at(const struct md_kvcache *c, int layer, int seq)
{
    return c->v + ((size_t)(layer - c->layer_lo) * c->n_seq + seq) * c->max_len * c->kv_dim;
}
#endif
