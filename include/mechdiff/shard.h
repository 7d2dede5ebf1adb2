/* shard.h — one model split by layer ranges over a group of MPI ranks (a
 * pipeline), for models too big for one GPU / one node's memory.
 *
 * Group rank 0, the leader, runs the experiments and uses the model exactly
 * like a local one: md_model_forward, KV caches (create/fork/free) and
 * generation work unchanged. Behind them the leader runs its own layers, then
 * sends the residual states to each member in turn (star, not ring: simple
 * and deadlock-free; the states are small next to the compute), which runs
 * its layer range and sends them back with its hook reads and, from the last
 * member, the logits. Each member keeps the KV cache of its layers under the
 * cache's id. Members sit in md_shard_serve() until the leader closes the
 * group. Results equal the unsharded model's bit for bit (the same local
 * forward runs on the same rows; only the owner of each layer changes).
 * The communicator must carry nothing else while the group lives: make one
 * for it on all its ranks (MPI_Comm_split / MPI_Comm_dup) before the leader
 * calls md_shard_group_create and the members md_shard_serve; neither call
 * is collective. Ownership: the caller owns the communicator; models loaded
 * with md_shard_load are freed by md_model_free as usual. */
#ifndef MECHDIFF_SHARD_H
#define MECHDIFF_SHARD_H

#include <mpi.h>

#include "mechdiff/error.h"
#include "mechdiff/model.h"

typedef struct md_shard_group md_shard_group;

/* Layers [*lo, *hi) of member `rank` of `size` for n_layers: consecutive
 * ranges, sizes differing by at most one, the leader's first. */
void md_shard_layer_range(int n_layers, int size, int rank, int *lo, int *hi);

/* Leader: the group of the ranks of comm (this rank must be rank 0 of it). */
int md_shard_group_create(md_shard_group **out, MPI_Comm comm, md_error *err);
/* Leader: loads DIR split over the group (every member loads its range). */
int md_shard_load(md_shard_group *g, md_model **out, const char *dir, const md_model_options *opt,
                  md_error *err);
/* Leader: releases the members from md_shard_serve and frees the group. Free
 * the group's models before. */
void md_shard_group_close(md_shard_group *g);

/* Member (rank > 0 of comm): serves the leader until it closes the group.
 * MD_ERR when the leader vanished or a message was malformed. */
int md_shard_serve(MPI_Comm comm, md_error *err);

#endif
