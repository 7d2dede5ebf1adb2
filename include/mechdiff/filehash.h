/* filehash.h — SHA-256 of many (large) files: in parallel threads, with a
 * digest cache so that a resumed, requeued or array-task run does not read
 * the same checkpoints again.
 *
 * Cache: one small file per entry in a folder (default
 * $MECHDIFF_DIGEST_CACHE, else $XDG_CACHE_HOME/mechdiff/sha256, else
 * ~/.cache/mechdiff/sha256; MECHDIFF_DIGEST_CACHE=off disables it). An entry
 * is keyed on the file's (st_dev, st_ino, size, mtime_ns, ctime_ns): any
 * write, truncation, replacement or rename of the file changes the key and
 * the file is hashed again. Entries are written to a temporary file and
 * renamed into place (no symlink is followed), only for files whose size
 * and times did not change while they were read and whose mtime is more
 * than 2 s in the past (a write within the filesystem's timestamp
 * granularity could otherwise keep the key). The folder must be a real
 * directory owned by the user, else the cache is not used. A failure to
 * store an entry never fails the hash. Entries not used for
 * MD_FILEHASH_KEEP_DAYS are removed (a hit refreshes an entry's time).
 *
 * Ownership: the caller owns paths and the hex array. */
#ifndef MECHDIFF_FILEHASH_H
#define MECHDIFF_FILEHASH_H

#include <stddef.h>
#include <stdint.h>

#include "mechdiff/error.h"
#include "mechdiff/sha256.h"

#define MD_FILEHASH_KEEP_DAYS 90

typedef struct md_filehash_opts {
    const char *cache_dir;   /* NULL = the default above; "" or "off" = no cache */
    int threads;             /* 0 = min(files, online CPUs, 8) */
    const char *progress;    /* prefix of progress lines on stderr ("mechdiff: rank 0: "); NULL = quiet */
} md_filehash_opts;

typedef struct md_filehash_stats {
    int n_files, n_cached;           /* files, of which taken from the cache */
    uint64_t bytes_read, bytes_cached;
    double seconds;
    int threads;
} md_filehash_stats;

/* The default cache folder into buf ("" when caching is off). */
void md_filehash_default_dir(char *buf, size_t len);

/* Digest of one file, through the cache (cache_dir NULL/""/"off": none);
 * *from_cache (may be NULL) says whether the file was read. */
int md_filehash_one(const char *path, const char *cache_dir, char hex[MD_SHA256_HEX_SIZE], int *from_cache,
                    md_error *err);

/* Digests of n files into hex[i]. The first error (naming the file) wins;
 * stats may be NULL. */
int md_filehash_many(const char *const *paths, int n, char (*hex)[MD_SHA256_HEX_SIZE], const md_filehash_opts *opt,
                     md_filehash_stats *stats, md_error *err);

#endif
