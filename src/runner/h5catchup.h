/* h5catchup.h — private to src/runner (h5out.c): bringing OUT.h5.prev up to
 * date from the published OUT.h5 without compressing anything again.
 *
 * An incremental snapshot (the comment at the top of h5out.c) starts from
 * OUT.h5.prev, generation g-1, and first catches up with OUT.h5, generation
 * g: the units of the journal OUT.h5 folded last, and, in a run's first
 * snapshot, what a commit writes outside the journals (its segment and the
 * /provenance attributes). OUT.h5 already holds those units deflated, so
 * their chunks are copied as stored (H5Dread_chunk / H5Dwrite_chunk: no
 * inflate, no deflate) instead of writing the values again; a chunk of
 * OUT.h5 that a unit of that journal touched holds exactly what the same
 * chunk of OUT.h5.prev holds plus that journal's writes, so the copy gives
 * the bytes re-applying the journal would give.
 * Ownership: md_h5catchup owns its read-only handle on the published file,
 * its dataset handles, the sets of chunks copied and the chunk buffer. */
#ifndef MECHDIFF_RUNNER_H5CATCHUP_H
#define MECHDIFF_RUNNER_H5CATCHUP_H

#include <hdf5.h>
#include <stdint.h>

#include "mechdiff/error.h"
#include "mechdiff/plan.h"

typedef struct md_h5catchup md_h5catchup;

/* Takes the published file, open read-only (no HDF5 file lock: the writer
 * alone replaces it, under OUT.h5.lock); the handle is owned from here on,
 * also when this fails (out of memory). */
int md_h5catchup_open(md_h5catchup **out, hid_t published, md_error *err);
/* Copies every chunk that piece pc of dataset `full` (an absolute path)
 * touches from the published file into dst, the same dataset of the file
 * being written, each chunk once per md_h5catchup. Returns 1 when copied;
 * 0 when it cannot be copied (a variable-length string dataset, another
 * type, shape, chunk shape or filter pipeline, a chunk the published file
 * does not store): the caller writes the piece's values instead; MD_ERR
 * with err when a read or write failed. */
int md_h5catchup_copy_piece(md_h5catchup *cu, hid_t dst, const char *full, const md_piece *pc, md_error *err);
/* Makes the root and /provenance attributes and /provenance/segments of
 * dst_file those of the published file: attributes rewritten, segment
 * groups missing in dst_file copied whole (H5Ocopy). */
int md_h5catchup_copy_provenance(md_h5catchup *cu, hid_t dst_file, md_error *err);
/* Chunks copied so far and their stored (compressed) bytes. */
void md_h5catchup_counts(const md_h5catchup *cu, int64_t *chunks, double *bytes);
void md_h5catchup_close(md_h5catchup *cu);

#endif
