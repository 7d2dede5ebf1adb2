/* sha256.c — SHA-256 through OpenSSL's EVP interface (see
 * include/mechdiff/sha256.h). */
#include "mechdiff/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

int md_sha256_init(md_sha256 *ctx, md_error *err)
{
    ctx->failed = 0;
    ctx->evp = EVP_MD_CTX_new();
    if (!ctx->evp) return md_error_set(err, "out of memory creating a SHA-256 context");
    if (EVP_DigestInit_ex(ctx->evp, EVP_sha256(), NULL) != 1) {
        md_sha256_free(ctx);
        return md_error_set(err, "libcrypto cannot initialise SHA-256 (is OpenSSL's default provider available?)");
    }
    return MD_OK;
}

void md_sha256_update(md_sha256 *ctx, const void *data, size_t len)
{
    if (!ctx->evp || ctx->failed) {
        ctx->failed = 1;
        return;
    }
    if (len && EVP_DigestUpdate(ctx->evp, data, len) != 1) ctx->failed = 1;
}

int md_sha256_final(md_sha256 *ctx, uint8_t digest[MD_SHA256_DIGEST_SIZE], md_error *err)
{
    unsigned int n = 0;
    int ok = ctx->evp && !ctx->failed && EVP_DigestFinal_ex(ctx->evp, digest, &n) == 1 &&
             n == MD_SHA256_DIGEST_SIZE;
    md_sha256_free(ctx);
    return ok ? MD_OK : md_error_set(err, "libcrypto failed while computing a SHA-256 digest");
}

void md_sha256_free(md_sha256 *ctx)
{
    EVP_MD_CTX_free(ctx->evp);
    ctx->evp = NULL;
}

void md_sha256_to_hex(const uint8_t digest[MD_SHA256_DIGEST_SIZE], char hex[MD_SHA256_HEX_SIZE])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < MD_SHA256_DIGEST_SIZE; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[64] = '\0';
}

int md_sha256_hex(const void *data, size_t len, char hex[MD_SHA256_HEX_SIZE], md_error *err)
{
    md_sha256 ctx;
    uint8_t d[MD_SHA256_DIGEST_SIZE];
    if (md_sha256_init(&ctx, err) != MD_OK) return MD_ERR;
    md_sha256_update(&ctx, data, len);
    if (md_sha256_final(&ctx, d, err) != MD_OK) return MD_ERR;
    md_sha256_to_hex(d, hex);
    return MD_OK;
}

int md_sha256_fd(int fd, const char *path, char hex[MD_SHA256_HEX_SIZE], md_error *err)
{
    enum { CHUNK = 256 << 10 }; /* reads that stay in L2 while they are hashed; syscalls are few enough */
    uint8_t *buf = malloc(CHUNK); /* owned: freed before return */
    if (!buf) return md_error_set(err, "%s: out of memory allocating the hash buffer", path);
    md_sha256 ctx;
    if (md_sha256_init(&ctx, err) != MD_OK) {
        free(buf);
        return md_error_prefix(err, "%s", path);
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    int rc = MD_OK;
    for (;;) {
        ssize_t n = read(fd, buf, CHUNK);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = md_error_set(err, "%s: read error while hashing: %s", path, strerror(errno));
            break;
        }
        if (n == 0) break;
        md_sha256_update(&ctx, buf, (size_t)n);
    }
    free(buf);
    uint8_t d[MD_SHA256_DIGEST_SIZE];
    if (rc != MD_OK) {
        md_sha256_free(&ctx);
        return MD_ERR;
    }
    if (md_sha256_final(&ctx, d, err) != MD_OK) return md_error_prefix(err, "%s", path);
    md_sha256_to_hex(d, hex);
    return MD_OK;
}

int md_sha256_file(const char *path, char hex[MD_SHA256_HEX_SIZE], md_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return md_error_set(err, "%s: cannot open for hashing: %s", path, strerror(errno));
    int rc = md_sha256_fd(fd, path, hex, err);
    close(fd);
    return rc;
}
