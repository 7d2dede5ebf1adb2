/* exec_impl.h — how a model is run: the interface behind md_model_forward
 * and the KV-cache calls (not installed).
 *
 * A model loaded by md_model_load runs locally: m->exec is NULL, the forward
 * is md_forward_local (forward.c) over the layers it holds. Another
 * implementation sets m->exec / m->exec_ctx (shard.c: the leader of a
 * layer-sharded model runs its layers, then the members' over MPI). The
 * forward and the cache functions call through the table and know nothing
 * of what is behind it, so forward.c, kvcache.c and model.c never call
 * shard.c; shard.c calls them. */
#ifndef MECHDIFF_EXEC_IMPL_H
#define MECHDIFF_EXEC_IMPL_H

#include "mechdiff/forward.h"

struct md_kvcache;

typedef struct md_model_exec {
    const char *name;
    /* The forward over every layer; its arguments are already checked
     * against the whole model (all layers, the head). */
    int (*forward)(void *ctx, md_model *m, const md_forward *f, md_error *err);
    /* Mirrors of the cache operations; c is set up locally already (n_seq,
     * max_len, prefix_len, parent), the call names it in c->exec_id. */
    int (*cache_create)(void *ctx, struct md_kvcache *c, md_error *err);
    int (*cache_fork)(void *ctx, struct md_kvcache *c, const struct md_kvcache *parent, md_error *err);
    void (*cache_free)(void *ctx, struct md_kvcache *c);
    void (*cache_truncate)(void *ctx, struct md_kvcache *c, int len);
    /* Frees ctx (md_model_free, before the model's own memory). */
    void (*free)(void *ctx);
} md_model_exec;

/* The forward on the layers this rank holds (forward.c). */
int md_forward_local(md_model *m, const md_forward *f, md_error *err);

#endif
