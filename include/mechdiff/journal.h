/* journal.h — the append-only result journal OUT.h5.journal.
 *
 * Why a journal (the crash-safety design, see also src/runner/runner.c):
 * serial HDF5 cannot promise a readable file if the writer is killed in the
 * middle of an update (metadata cache, free-space state). So OUT.h5 is never
 * modified in place: it is only ever replaced by rename(2) of a complete,
 * closed, fsync'd OUT.h5.tmp (a "snapshot"), so at every instant OUT.h5 is a
 * valid file. Results between snapshots go to this journal: each record is
 *     u32 magic 'MDRC', u32 crc32(time, len, payload), u64 len, f64 time, payload
 * appended and fsync'd in batches (runtime.flush_units / flush_interval); a
 * unit is "finished" only once its record is durable. kill -9 can tear only
 * the tail record, which the CRC detects; replay stops there.
 * The header (magic "MDJRNL02", u64 generation, the mark, u32 crc; 64
 * bytes) carries the generation of the snapshot the journal extends and
 * the mark (snapfile.h: device, inode, size, mtime) of that snapshot's file
 * right after it was published: a later snapshot starts incrementally only
 * while OUT.h5 and OUT.h5.prev still carry the marks of their journals
 * (src/runner/h5out.c). Journals of the older format ("MDJRNL01", 24-byte
 * header, no mark) are still read. A snapshot folds the journal into OUT.h5.tmp, stores generation g+1 in it,
 * renames, then rotates: the journal of g becomes OUT.h5.journal.prev (the
 * next incremental snapshot brings OUT.h5.prev, generation g, up to date
 * with it: src/runner/h5out.c) and a new journal of g+1 starts. A crash
 * between rename and rotation leaves a journal of generation g = file - 1,
 * whose records are all in the file already: it is discarded (no unit
 * counted twice; replay is also idempotent since every unit owns its
 * hyperslab and done flags are set, not added). OUT.h5.journal.prev only
 * ever holds records that OUT.h5 has.
 * Ownership: md_journal owns its fd and buffer. */
#ifndef MECHDIFF_JOURNAL_H
#define MECHDIFF_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mechdiff/error.h"
#include "mechdiff/snapfile.h"

typedef struct md_journal md_journal;

/* Creates (truncates) the journal at path with header `generation` and
 * `mark` (the published file it extends; NULL = unknown), fsync'd. */
int md_journal_create(md_journal **out, const char *path, uint64_t generation, const md_snapfile_mark *mark,
                      md_error *err);
/* Appends one record (buffered; durable after md_journal_sync). */
int md_journal_append(md_journal *j, double time, const void *payload, size_t len, md_error *err);
/* Writes the buffered records and fsyncs: they are durable on return. */
int md_journal_sync(md_journal *j, md_error *err);
/* Records appended but not yet durable. */
int64_t md_journal_pending(const md_journal *j);
/* After the snapshot that published `generation`: closes *j (may be NULL),
 * renames the journal at path (the one the snapshot just folded; after a
 * recovery, one this process did not write) to prev_path — or, when there
 * is none, writes an empty journal of generation-1 there (no records were
 * folded: the snapshot was a copy of the file now kept as OUT.h5.prev,
 * whose mark is prev_mark; NULL = unknown) — and creates a new journal of
 * `generation` and `mark` (of the file just published) at path. The next
 * snapshot checks prev_path's generation and mark before using it. */
int md_journal_rotate(md_journal **j, const char *path, const char *prev_path, uint64_t generation,
                      const md_snapfile_mark *mark, const md_snapfile_mark *prev_mark, md_error *err);
void md_journal_close(md_journal *j);

/* Called per valid record by md_journal_replay; return MD_ERR to stop. */
typedef int (*md_journal_fn)(void *arg, double time, const void *payload, size_t len, md_error *err);

/* Reads the journal at path: *generation from the header (0 and no records
 * when the file is missing or has no valid header), fn for every valid
 * record in order, stopping at a torn/corrupt tail (*n_records valid ones,
 * *torn = 1 when the tail was bad). fn may be NULL (count only). */
int md_journal_replay(const char *path, uint64_t *generation, md_journal_fn fn, void *arg, int64_t *n_records,
                      int *torn, md_error *err);

/* The header of the journal at path (never through a link): MD_OK with its
 * generation and mark (all zero for the older format), or MD_ERR with
 * generation 0 when it is missing or has no valid header. */
int md_journal_head(const char *path, uint64_t *generation, md_snapfile_mark *mark);

#endif
