/* snapfile.h — the file-level moves of a results-file snapshot (h5out.c
 * does the HDF5 part): copying OUT.h5 to OUT.h5.tmp, keeping the file a
 * commit replaces as OUT.h5.prev, and taking OUT.h5.prev back as the next
 * OUT.h5.tmp when it is safe to write it in place (why that is safe: the
 * comment at the top of src/runner/h5out.c). Internal to the library.
 *
 * Every path is a plain name in the output folder; nothing here follows a
 * symbolic link to write. Functions return MD_OK/MD_ERR with err filled,
 * except the predicates, which return 1/0. */
#ifndef MECHDIFF_SNAPFILE_H
#define MECHDIFF_SNAPFILE_H

#include <stdint.h>

#include "mechdiff/error.h"

/* The identity of one version of a file on disk: device, inode, size and
 * modification time (ns). Taken right after a snapshot is published and
 * kept in the journal header (journal.h); equal later = the same file,
 * untouched since (any write through HDF5 or otherwise moves mtime; a copy
 * put in its place is another inode). All zero = unknown, equal to nothing. */
typedef struct md_snapfile_mark {
    uint64_t dev, ino, size;
    int64_t mtime_s, mtime_ns;
} md_snapfile_mark;

/* The mark of the regular file `path` (never through a link); MD_ERR and
 * an all-zero mark when it is not one. */
int md_snapfile_mark_of(const char *path, md_snapfile_mark *mark);
/* 1 when `path` is a regular file whose mark is `mark` (a known one). */
int md_snapfile_mark_matches(const char *path, const md_snapfile_mark *mark);

/* Copies the regular file `from` to the new file `to` (which must not exist;
 * never through a link). Uses copy_file_range, which reflinks where the file
 * system can (XFS, btrfs) and copies in the kernel elsewhere. */
int md_snapfile_copy(const char *from, const char *to, md_error *err);

/* Takes `prev` as the working file: when it is a regular file (not a link)
 * whose mark is `prev_mark` (the version published one generation before,
 * untouched since), not the same file as `path` (a commit killed between
 * keeping and publishing leaves them linked), and no reader holds an HDF5
 * file lock on it, renames it to `tmp` and returns 1. Otherwise returns 0
 * and leaves the files as they are (the caller copies `path` instead). */
int md_snapfile_take_previous(const char *path, const char *prev, const char *tmp,
                              const md_snapfile_mark *prev_mark);

/* Makes `prev` a second name of the file now at `path` (a hard link), to be
 * taken back by the next snapshot. Best effort: where hard links are not
 * possible, `prev` is simply absent. */
void md_snapfile_keep_previous(const char *path, const char *prev);

/* fsync of a file or folder by name. */
int md_snapfile_fsync(const char *path);

/* ": <reason>" when errnum says why writing a file failed for want of room
 * or by the device (ENOSPC, EDQUOT, EFBIG, EIO, EROFS), else "": for the
 * messages of HDF5 calls, which report no reason themselves. */
const char *md_snapfile_io_reason(int errnum);

#endif
