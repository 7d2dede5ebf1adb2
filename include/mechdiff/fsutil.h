/* fsutil.h — opening files the way untrusted paths need: inputs must be
 * regular files (a FIFO, a device or a directory is refused instead of
 * blocking or reading forever), outputs never follow a symbolic link, and
 * whole-file reads are bounded; and whether two stat results are one file.
 * Internal to the library (not installed).
 *
 * Every function fills err with a message naming the path and returns -1 /
 * NULL / MD_ERR on failure; the caller owns returned descriptors and
 * buffers. */
#ifndef MECHDIFF_FSUTIL_H
#define MECHDIFF_FSUTIL_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "mechdiff/error.h"

/* Opens an existing regular file read-only (following symlinks, as inputs
 * may be links into a model cache). Never blocks on a FIFO: the open is
 * non-blocking and the type is checked with fstat() before any read.
 * Returns the descriptor (close-on-exec, blocking again) or -1. */
int md_fsutil_open_input(const char *path, md_error *err);

/* Reads the whole regular file at path, NUL-terminated; *len (if not NULL)
 * gets its length. A file longer than max_bytes is an error naming the
 * limit. Returns a malloc'd buffer (caller frees) or NULL. */
char *md_fsutil_read_input(const char *path, size_t max_bytes, size_t *len, md_error *err);

/* Opens path for writing with O_NOFOLLOW: a symbolic link at path is an
 * error (it is never followed, so a planted link cannot redirect a write),
 * and so is anything but a regular file. flags are added to
 * O_WRONLY/O_RDWR as given (O_CREAT, O_TRUNC, O_EXCL, O_APPEND...); a
 * truncation requested with O_TRUNC happens only after the type check.
 * Returns the descriptor (close-on-exec) or -1. */
int md_fsutil_open_output(const char *path, int flags, mode_t mode, md_error *err);

/* 1 when a and b (from stat, lstat or fstat) describe the same file: the
 * same device and inode, whatever paths or descriptors they came from (two
 * spellings of a path, a symbolic or hard link, an open descriptor and the
 * path it was opened at); 0 otherwise. Size and times are not compared: a
 * file written between the two calls is still the same file. */
int md_fsutil_same_file(const struct stat *a, const struct stat *b);

#endif
