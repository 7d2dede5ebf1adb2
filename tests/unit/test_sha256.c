/* test_sha256.c — SHA-256 (libcrypto wrapper) against the FIPS 180-4 / NIST
 * example vectors, incremental updates at odd split points, and the file
 * helper. The digest cache: tests/unit/test_filehash.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/sha256.h"
#include "testutil.h"

static void check_str(const char *msg, const char *want)
{
    char hex[MD_SHA256_HEX_SIZE];
    CHECK(md_sha256_hex(msg, strlen(msg), hex, NULL) == MD_OK);
    CHECK_MSG(strcmp(hex, want) == 0, "sha256(\"%.40s\") = %s, want %s", msg, hex, want);
}

int main(void)
{
    check_str("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    check_str("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check_str("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    check_str("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
              "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");

    /* One million 'a', fed in uneven pieces. */
    const char *want_million = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    static char a[1000];
    memset(a, 'a', sizeof a);
    md_sha256 ctx;
    CHECK(md_sha256_init(&ctx, NULL) == MD_OK);
    size_t left = 1000000, step = 1;
    while (left) {
        size_t n = step < left ? step : left;
        if (n > sizeof a) n = sizeof a;
        md_sha256_update(&ctx, a, n);
        left -= n;
        step = step * 7 % 997 + 1;
    }
    uint8_t d[MD_SHA256_DIGEST_SIZE];
    char hex[MD_SHA256_HEX_SIZE];
    CHECK(md_sha256_final(&ctx, d, NULL) == MD_OK);
    md_sha256_to_hex(d, hex);
    CHECK_MSG(strcmp(hex, want_million) == 0, "million a: %s", hex);

    /* Lengths around the 55/56/64-byte padding boundaries, split vs one-shot. */
    char buf[130];
    for (int i = 0; i < 130; i++) buf[i] = (char)('A' + i % 26);
    for (size_t len = 50; len <= 130; len++) {
        char h1[MD_SHA256_HEX_SIZE], h2[MD_SHA256_HEX_SIZE];
        CHECK(md_sha256_hex(buf, len, h1, NULL) == MD_OK);
        CHECK(md_sha256_init(&ctx, NULL) == MD_OK);
        md_sha256_update(&ctx, buf, len / 3);
        md_sha256_update(&ctx, buf + len / 3, len - len / 3);
        CHECK(md_sha256_final(&ctx, d, NULL) == MD_OK);
        md_sha256_to_hex(d, h2);
        CHECK_MSG(strcmp(h1, h2) == 0, "split mismatch at len %zu", len);
    }

    /* File helper. */
    char path[1024];
    snprintf(path, sizeof path, "%s/sha256_test.txt", tu_tmpdir());
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        fputs("abc", f);
        fclose(f);
        md_error err;
        md_error_clear(&err);
        CHECK(md_sha256_file(path, hex, &err) == MD_OK);
        CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
        remove(path);
        CHECK(md_sha256_file(path, hex, &err) == MD_ERR);
        CHECK(strstr(err.msg, "sha256_test.txt") != NULL);
    }
    TEST_MAIN_END();
}
