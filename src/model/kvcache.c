/* kvcache.c — keys and values of past positions, per layer held and
 * sequence. A forked cache shares its parent's first prefix_len positions
 * read-only (one prefix run, many variants continued from it) and stores
 * only the positions after them. Layout of the own storage:
 * k[layer - layer_lo][seq][pos - prefix_len][kv_dim]. */
#include <stdlib.h>

#include "mechdiff/forward.h"
#include "model/kvcache_impl.h"
#include "model/exec_impl.h"

int md_kvcache_create(md_kvcache **out, const md_model *m, int n_seq, int max_len, md_error *err)
{
    *out = NULL;
    if (n_seq <= 0 || max_len <= 0)
        return md_error_set(err, "kv cache: need n_seq > 0 and max_len > 0 (got %d, %d)", n_seq, max_len);
    md_kvcache *c = calloc(1, sizeof *c);
    if (!c) return md_error_set(err, "kv cache: out of memory");
    c->be = m->be;
    c->n_seq = n_seq;
    c->max_len = max_len;
    c->kv_dim = m->cfg.n_kv_heads * m->cfg.head_dim;
    c->layer_lo = m->layer_lo;
    c->layer_hi = m->layer_hi;
    size_t n = (size_t)(c->layer_hi - c->layer_lo) * n_seq * max_len * c->kv_dim;
    c->k = c->be->ops->alloc(c->be, n * sizeof(float));
    c->v = c->be->ops->alloc(c->be, n * sizeof(float));
    if (!c->k || !c->v) {
        md_kvcache_free(c);
        return md_error_set(err, "kv cache: out of memory for %d sequences x %d positions (%zu MB)", n_seq,
                            max_len, 2 * n * sizeof(float) >> 20);
    }
    if (m->exec) {
        c->exec = m->exec;
        c->exec_ctx = m->exec_ctx;
        if (c->exec->cache_create(c->exec_ctx, c, err) != MD_OK) {
            c->exec = NULL; /* not made on the other side: nothing to free there */
            md_kvcache_free(c);
            return MD_ERR;
        }
    }
    *out = c;
    return MD_OK;
}

int md_kvcache_fork(md_kvcache **out, const md_kvcache *parent, int prefix_len, int n_seq, int max_extra,
                    md_error *err)
{
    *out = NULL;
    if (parent->parent)
        return md_error_set(err, "kv cache: cannot fork a forked cache (fork the root instead)");
    if (prefix_len < 0 || prefix_len > parent->len)
        return md_error_set(err, "kv cache: fork prefix %d is beyond the parent's %d filled positions",
                            prefix_len, parent->len);
    if (n_seq <= 0 || n_seq % parent->n_seq != 0)
        return md_error_set(err, "kv cache: a parent of %d sequences can only be forked into a multiple of %d "
                                 "sequences (got %d)", parent->n_seq, parent->n_seq, n_seq);
    md_kvcache *c = calloc(1, sizeof *c);
    if (!c) return md_error_set(err, "kv cache: out of memory");
    c->be = parent->be;
    c->n_seq = n_seq;
    c->max_len = max_extra > 0 ? max_extra : 1;
    c->kv_dim = parent->kv_dim;
    c->layer_lo = parent->layer_lo;
    c->layer_hi = parent->layer_hi;
    c->parent = parent;
    c->prefix_len = prefix_len;
    c->len = prefix_len;
    size_t n = (size_t)(c->layer_hi - c->layer_lo) * n_seq * c->max_len * c->kv_dim;
    c->k = c->be->ops->alloc(c->be, n * sizeof(float));
    c->v = c->be->ops->alloc(c->be, n * sizeof(float));
    if (!c->k || !c->v) {
        md_kvcache_free(c);
        return md_error_set(err, "kv cache: out of memory forking %d sequences", n_seq);
    }
    if (parent->exec) {
        c->exec = parent->exec;
        c->exec_ctx = parent->exec_ctx;
        if (c->exec->cache_fork(c->exec_ctx, c, parent, err) != MD_OK) {
            c->exec = NULL;
            md_kvcache_free(c);
            return MD_ERR;
        }
    }
    *out = c;
    return MD_OK;
}

void md_kvcache_free(md_kvcache *c)
{
    if (!c) return;
    if (c->exec) c->exec->cache_free(c->exec_ctx, c);
    if (c->k) c->be->ops->free(c->be, c->k);
    if (c->v) c->be->ops->free(c->be, c->v);
    free(c);
}

int md_kvcache_len(const md_kvcache *c)
{
    return c->len;
}

void md_kvcache_truncate(md_kvcache *c, int len)
{
    if (len < c->prefix_len) len = c->prefix_len;
    if (len < c->len) c->len = len;
    if (c->exec) c->exec->cache_truncate(c->exec_ctx, c, len);
}
