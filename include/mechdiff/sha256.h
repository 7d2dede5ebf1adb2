/* sha256.h — SHA-256 (FIPS 180-4) for provenance: hashes of checkpoint
 * shards, job files and outputs. Streaming API plus a whole-file helper.
 * Plain data, no heap: the caller owns the md_sha256 context. */
#ifndef MECHDIFF_SHA256_H
#define MECHDIFF_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "mechdiff/error.h"

#define MD_SHA256_DIGEST_SIZE 32
#define MD_SHA256_HEX_SIZE 65 /* 64 hex digits + NUL */

typedef struct md_sha256 {
    uint32_t state[8];
    uint64_t total_bytes;  /* bytes hashed so far */
    uint8_t block[64];     /* pending partial block */
    size_t block_len;
} md_sha256;

void md_sha256_init(md_sha256 *ctx);
void md_sha256_update(md_sha256 *ctx, const void *data, size_t len);
/* Writes the 32-byte digest; ctx must be re-initialised before reuse. */
void md_sha256_final(md_sha256 *ctx, uint8_t digest[MD_SHA256_DIGEST_SIZE]);
/* Lower-case hex of a digest into hex[65] (NUL-terminated). */
void md_sha256_to_hex(const uint8_t digest[MD_SHA256_DIGEST_SIZE], char hex[MD_SHA256_HEX_SIZE]);
/* One-shot hash of a buffer, as lower-case hex. */
void md_sha256_hex(const void *data, size_t len, char hex[MD_SHA256_HEX_SIZE]);
/* Hashes the whole file at path (streamed, constant memory) into hex[65]. */
int md_sha256_file(const char *path, char hex[MD_SHA256_HEX_SIZE], md_error *err);

#endif
