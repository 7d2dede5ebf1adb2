/* sha256.h — SHA-256 (FIPS 180-4) for provenance: hashes of checkpoint
 * shards, job files and outputs. A thin wrapper over OpenSSL's libcrypto
 * (EVP, which uses the SHA-NI / AVX2 code paths of the CPU): a streaming
 * API, one-shot helpers for a buffer and a whole file. Cached, parallel
 * hashing of many files: filehash.h.
 *
 * Ownership: md_sha256 holds one libcrypto context (heap), created by
 * md_sha256_init and released by md_sha256_final or md_sha256_free. */
#ifndef MECHDIFF_SHA256_H
#define MECHDIFF_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "mechdiff/error.h"

#define MD_SHA256_DIGEST_SIZE 32
#define MD_SHA256_HEX_SIZE 65 /* 64 hex digits + NUL */

typedef struct md_sha256 {
    void *evp;        /* EVP_MD_CTX (owned); NULL after final/free */
    int failed;       /* libcrypto reported an error: final returns MD_ERR */
} md_sha256;

/* MD_ERR (with err set) when libcrypto cannot give a SHA-256 context. */
int md_sha256_init(md_sha256 *ctx, md_error *err);
void md_sha256_update(md_sha256 *ctx, const void *data, size_t len);
/* Writes the 32-byte digest and releases the context (re-init to reuse).
 * MD_ERR when any earlier step failed. */
int md_sha256_final(md_sha256 *ctx, uint8_t digest[MD_SHA256_DIGEST_SIZE], md_error *err);
/* Releases a context without a digest (error paths); safe after final. */
void md_sha256_free(md_sha256 *ctx);
/* Lower-case hex of a digest into hex[65] (NUL-terminated). */
void md_sha256_to_hex(const uint8_t digest[MD_SHA256_DIGEST_SIZE], char hex[MD_SHA256_HEX_SIZE]);
/* One-shot hash of a buffer, as lower-case hex. */
int md_sha256_hex(const void *data, size_t len, char hex[MD_SHA256_HEX_SIZE], md_error *err);
/* Hashes the whole file at path (streamed, constant memory) into hex[65]. */
int md_sha256_file(const char *path, char hex[MD_SHA256_HEX_SIZE], md_error *err);
/* The same for an open descriptor (read from its current offset to EOF). */
int md_sha256_fd(int fd, const char *path, char hex[MD_SHA256_HEX_SIZE], md_error *err);

#endif
