/* hashshare.h — the start-up digests of a job's weight files and datasets,
 * read by the nodes of the run together and gathered on rank 0 for its
 * provenance (md_prov_collect_with).
 *
 * Rank 0 lists the files and takes every digest the caches know (filehash.h:
 * the user's and the one next to the output); it shares the rest among the
 * nodes, largest file first to the least loaded node. One reader per node
 * (the lowest rank there) hashes its node's share with its threads
 * (md_filehash_many: up to min(files, CPUs, 8) files at once) and stores
 * the digests in both caches; the digests are combined on rank 0.
 * Why per node and not per rank: ranks on one node share its disk (or its
 * link to the parallel filesystem) and its cores; the reader's threads
 * already keep both busy, and more readers of one disk only make it seek.
 * Nodes have their own links, so they add bandwidth.
 * A file a node cannot read (a node-local path) is left to rank 0, which
 * hashes what is missing in md_prov_collect_with and names the file if it
 * cannot read it either.
 *
 * MECHDIFF_HASH_READERS=rank makes every rank a reader (a parallel
 * filesystem that one client cannot saturate; the tests use it to share
 * files among the ranks of one machine).
 *
 * Collective over comm. progress = lines on stderr from rank 0. */
#ifndef MECHDIFF_HASHSHARE_H
#define MECHDIFF_HASHSHARE_H

#include <mpi.h>

#include "mechdiff/error.h"
#include "mechdiff/job.h"
#include "mechdiff/provenance.h"

/* On rank 0 fills *out (md_prov_free_digests); on the other ranks *out is
 * left empty. MD_ERR only on rank 0 (listing the files, memory); a reader's
 * failure leaves its files to rank 0. */
int md_hashshare_run(const md_job *job, MPI_Comm comm, int progress, md_prov_digests *out, md_error *err);

#endif
