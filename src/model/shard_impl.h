/* shard_impl.h — the leader's side of a layer-sharded model, shared by
 * forward.c, kvcache.c, model.c and shard.c only (not installed). */
#ifndef MECHDIFF_SHARD_IMPL_H
#define MECHDIFF_SHARD_IMPL_H

#include "mechdiff/forward.h"
#include "mechdiff/shard.h"

typedef struct md_shard_link {
    md_shard_group *group;  /* not owned */
    int model_id;           /* the members' name for this model */
    int size;               /* ranks in the group */
    int *lo, *hi;           /* [size] layer range of each member (owned) */
} md_shard_link;

/* The forward on this rank's layers only (forward.c). */
int md_forward_local(md_model *m, const md_forward *f, md_error *err);
/* The forward over the whole group (shard.c); arguments already checked. */
int md_shard_forward(md_model *m, const md_forward *f, md_error *err);
/* Mirrors of the cache operations on every member (shard.c). */
int md_shard_cache_create(md_shard_link *link, struct md_kvcache *c, int n_seq, int max_len, md_error *err);
int md_shard_cache_fork(struct md_kvcache *c, const struct md_kvcache *parent, int prefix_len, int n_seq,
                        int max_extra, md_error *err);
void md_shard_cache_free(struct md_kvcache *c);
void md_shard_cache_truncate(struct md_kvcache *c, int len);
/* Frees the members' copies and the link (model.c, from md_model_free). */
void md_shard_link_free(md_shard_link *link);

#endif
