/* outlock.h — the output file of a run: its one canonical path and the lock
 * that keeps a second run off it. Internal to the library (not installed).
 *
 * The lock is an flock() on "<resolved output>.lock", where the resolved
 * output is the real path (folders resolved with realpath(), a symbolic
 * link at the output itself followed to its target). Two runs reaching the
 * same file through different names (a symlinked folder or file alias, a
 * relative and an absolute path) therefore take the same lock. The lock
 * file is opened with O_NOFOLLOW: a symbolic link planted at OUT.h5.lock is
 * refused, never written through. The kernel drops the lock when its
 * holder dies, so a crashed run never blocks the next one. A run that
 * completes its job removes the lock file (md_outlock_release) while it
 * still holds the lock; md_outlock_acquire then checks that the file it
 * locked is still the one at the name, else takes the new one: two runs
 * never both hold "the" lock. */
#ifndef MECHDIFF_OUTLOCK_H
#define MECHDIFF_OUTLOCK_H

#include <stddef.h>

#include "mechdiff/error.h"

/* The canonical path of `output`, creating nothing: absolute (a relative
 * path is taken from the current folder), its existing folders resolved
 * with realpath() (symbolic links followed, a link at the output itself
 * followed to its target), and ".", ".." and "//" removed from the folders
 * that do not exist yet (mkdir -p creates them as named, so ".." after one
 * of them is its parent). The path md_outlock_resolve gives once the
 * folders exist; messages name the output of a job by it (README.md,
 * "Paths in messages"), and `status` finds OUT.h5.lock, .journal and
 * .inflight beside it. */
int md_outlock_make_canonical(const char *output, char *buf, size_t len, md_error *err);

/* Creates the output's parent folders (mkdir -p) and writes its canonical
 * path into buf. A symbolic link at `output` is followed to its target,
 * which must exist; an existing output that is not a regular file (a
 * folder, a FIFO...) is an error. */
int md_outlock_resolve(const char *output, char *buf, size_t len, md_error *err);

/* Takes the run's exclusive lock on `resolved` (from md_outlock_resolve):
 * *fd gets the lock file's descriptor (the caller closes it at the end of
 * the run, which releases the lock). When another run holds it, returns
 * MD_ERR with *held_elsewhere = 1 and a message naming that run. */
int md_outlock_acquire(const char *resolved, int *fd, int *held_elsewhere, md_error *err);

/* Releases the lock taken by md_outlock_acquire (fd < 0: nothing); with
 * remove, first removes "<resolved>.lock" (a completed job: nothing left
 * beside OUT.h5 to tell of the run). */
void md_outlock_release(const char *resolved, int fd, int remove);

/* The run named in "<output>.lock" ("pid N on HOST", which
 * md_outlock_acquire writes and which stays after a run that did not
 * complete its job): 1 with *pid and host (len bytes) set; 0 when there is
 * no such file or it names no run. Reads only: never takes the lock. */
int md_outlock_holder(const char *output, long *pid, char *host, size_t len);

#endif
