/* filehash.h — SHA-256 of many (large) files: in parallel threads, with
 * digest caches so that a resumed, requeued or array-task run does not read
 * the same checkpoints again.
 *
 * Two caches, each one small file per entry in a folder:
 *  - the user's: $MECHDIFF_DIGEST_CACHE, else $XDG_CACHE_HOME/mechdiff/sha256,
 *    else ~/.cache/mechdiff/sha256;
 *  - the one next to the output: <output's folder>/.mechdiff-digests
 *    (md_filehash_output_dir), shared by the output, its --part files and
 *    every requeue, so a task on a node whose home is not shared, or whose
 *    home cache is empty, still finds the digests.
 * A hit in one is copied into the other. MECHDIFF_DIGEST_CACHE=off disables
 * both. An entry is keyed on the file's resolved path, inode, size,
 * mtime_ns and ctime_ns (no device number: a network filesystem has another
 * one on each node): any write, truncation, replacement or rename of the
 * file changes the key and the file is hashed again. Entries are written to
 * a temporary file and renamed into place (no symlink is followed), only for
 * files whose size and times did not change while they were read and whose
 * mtime is more than 2 s in the past (a write within the filesystem's
 * timestamp granularity could otherwise keep the key). A cache folder must
 * be a real directory owned by the user, else it is not used. A failure to
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
    const char *output_dir;  /* the cache next to the output (md_filehash_output_dir); NULL or "" = none */
    int threads;             /* 0 = min(files, online CPUs, 8) */
    const char *progress;    /* prefix of progress lines on stderr ("mechdiff: ", then a UTC time); NULL = quiet */
} md_filehash_opts;

typedef struct md_filehash_stats {
    int n_files, n_cached;           /* files, of which taken from the cache */
    uint64_t bytes_read, bytes_cached;
    double seconds;
    int threads;
} md_filehash_stats;

/* The default cache folder into buf ("" when caching is off). */
void md_filehash_default_dir(char *buf, size_t len);

/* The cache folder next to `output` into buf: "<folder>/.mechdiff-digests"
 * ("" when MECHDIFF_DIGEST_CACHE=off). */
void md_filehash_output_dir(const char *output, char *buf, size_t len);

/* 1 and the digest into hex when either cache knows the file as it is now
 * (nothing is read but the entry); 0 otherwise. */
int md_filehash_lookup(const char *path, const char *cache_dir, const char *output_dir, char hex[MD_SHA256_HEX_SIZE]);

/* Shares n files among n_readers (1..256) so that the largest reader's
 * bytes are small: largest file first, each to the least loaded reader
 * (ties: lowest index). owner[i] in [0, n_readers). Deterministic. */
void md_filehash_assign(const uint64_t *sizes, int n, int n_readers, int *owner);

/* Digest of one file, through the cache (cache_dir NULL/""/"off": none);
 * *from_cache (may be NULL) says whether the file was read. */
int md_filehash_one(const char *path, const char *cache_dir, char hex[MD_SHA256_HEX_SIZE], int *from_cache,
                    md_error *err);

/* Digests of n files into hex[i]. The first error (naming the file) wins;
 * stats may be NULL. */
int md_filehash_many(const char *const *paths, int n, char (*hex)[MD_SHA256_HEX_SIZE], const md_filehash_opts *opt,
                     md_filehash_stats *stats, md_error *err);

#endif
