/* inflight.h — OUT.h5.inflight: which units each worker rank holds right now.
 *
 * When a worker rank dies (killed, out of memory, a crash in a library),
 * Open MPI ends the whole job at once, so the coordinator cannot report who
 * died doing what. Rank 0 therefore keeps this small file current: one
 * fixed-size line per rank, rewritten in place (pwrite, no fsync: it only has
 * to survive the processes being killed, not the machine) whenever it hands a
 * unit out or gets one back. After the job died, `mechdiff status OUT.h5` and
 * the next `mechdiff run` print it; mpirun/srun name the rank that died, this
 * file names the units it held. A run that ends normally removes it.
 * Ownership: md_inflight owns its fd and names. */
#ifndef MECHDIFF_INFLIGHT_H
#define MECHDIFF_INFLIGHT_H

#include "mechdiff/error.h"

typedef struct md_inflight md_inflight;

/* Creates (truncates) OUTPUT.inflight for ranks 0..world-1. */
int md_inflight_open(md_inflight **out, const char *output, int world, md_error *err);
/* Rank `rank` now computes `unit` / has returned it. */
void md_inflight_add(md_inflight *f, int rank, const char *unit);
void md_inflight_remove(md_inflight *f, int rank, const char *unit);
/* Closes; remove != 0 deletes the file (the run ended with nothing in flight). */
void md_inflight_close(md_inflight *f, int remove);
/* The lines of ranks that held units when a run stopped ("rank 2:
 * knowledge/stage 0/unit 17 (handed out 2026-12-07T12:03:04Z)\n" ...: each
 * unit with the UTC time it was handed out), malloc'd; NULL when there is no such
 * file or nothing was in flight. */
char *md_inflight_read(const char *output);
/* Removes OUTPUT.inflight: a one-rank run (which keeps none) once it has
 * reported the last run's list; that list is stale from then on. */
void md_inflight_drop(const char *output);

#endif
