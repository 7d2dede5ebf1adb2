/* bench_digest.c — SHA-256 throughput of mechdiff's file digest
 * (md_sha256_file: libcrypto EVP, 4 MiB reads) against `openssl dgst
 * -sha256` on the same file, both from the page cache (the file is read once
 * first), best of REPS runs each, the two alternated. Checks both print the same digest and
 * prints the ratio (goal >= 0.9). Also times md_filehash_many over N copies
 * of the file on 1 and on all threads (parallel hashing at start-up).
 *   build/bench/bench_digest [FILE | SIZE_MB=1024] [REPS=3]
 * With a size instead of a file, writes a file of that many MiB of
 * pseudo-random bytes in $TMPDIR (removed at exit). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mechdiff/filehash.h"
#include "mechdiff/sha256.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int make_file(const char *path, long mb)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    enum { N = 1 << 20 };
    static unsigned char buf[N];
    unsigned long long x = 88172645463325252ull;
    for (long m = 0; m < mb; m++) {
        for (int i = 0; i < N; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (unsigned char)x;
        }
        if (fwrite(buf, 1, N, f) != N) break;
    }
    return fclose(f);
}

/* Best wall time of `openssl dgst -sha256 path`; its digest into hex. */
static double time_openssl(const char *path, int reps, char hex[MD_SHA256_HEX_SIZE])
{
    char cmd[4200], line[4400];
    snprintf(cmd, sizeof cmd, "openssl dgst -sha256 -r '%s'", path);
    double best = 1e30;
    hex[0] = '\0';
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        FILE *p = popen(cmd, "r");
        if (!p) return -1;
        if (fgets(line, sizeof line, p) && strlen(line) >= 64) {
            memcpy(hex, line, 64);
            hex[64] = '\0';
        }
        if (pclose(p) != 0) return -1;
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    return best;
}

int main(int argc, char **argv)
{
    const char *arg = argc > 1 ? argv[1] : "1024";
    int reps = argc > 2 ? atoi(argv[2]) : 3;
    char path[4096], made[4096] = "";
    struct stat st;
    if (stat(arg, &st) == 0 && S_ISREG(st.st_mode)) {
        snprintf(path, sizeof path, "%s", arg);
    } else {
        const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(made, sizeof made, "%s/bench_digest.%ld.bin", tmp, (long)getpid());
        if (make_file(made, atol(arg)) != 0 || stat(made, &st) != 0) {
            fprintf(stderr, "bench_digest: cannot write %s\n", made);
            return 1;
        }
        snprintf(path, sizeof path, "%s", made);
    }
    double gb = (double)st.st_size / 1e9;
    char ours[MD_SHA256_HEX_SIZE], theirs[MD_SHA256_HEX_SIZE] = "";
    md_error err;
    md_error_clear(&err);
    if (md_sha256_file(path, ours, &err) != MD_OK) { /* warms the page cache */
        fprintf(stderr, "bench_digest: %s\n", err.msg);
        return 1;
    }
    /* Alternate the two so that both see the same load on a shared machine. */
    double best = 1e30, ossl = 1e30;
    for (int r = 0; r < reps && ossl > 0; r++) {
        double t0 = now_s();
        md_sha256_file(path, ours, &err);
        double dt = now_s() - t0;
        if (dt < best) best = dt;
        double o = time_openssl(path, 1, theirs);
        ossl = o < 0 ? -1 : o < ossl ? o : ossl;
    }
    printf("file %s, %.3f GB (page cache), best of %d\n", path, gb, reps);
    printf("mechdiff md_sha256_file   %7.3f s  %6.2f GB/s\n", best, gb / best);
    if (ossl > 0) {
        printf("openssl dgst -sha256      %7.3f s  %6.2f GB/s (includes its process start)\n", ossl, gb / ossl);
        printf("throughput ratio mechdiff/openssl: %.2f (goal >= 0.9: %s); digests %s\n", ossl / best,
               ossl / best >= 0.9 ? "met" : "NOT met", strcmp(ours, theirs) == 0 ? "equal" : "DIFFER");
    } else {
        printf("openssl dgst could not run: no ratio\n");
    }

    /* Parallel: the same file listed 4 times, 1 thread vs the default. */
    const char *paths[4] = {path, path, path, path};
    char hex[4][MD_SHA256_HEX_SIZE];
    md_filehash_stats s1, sn;
    md_filehash_opts o1 = {.cache_dir = "off", .threads = 1}, on = {.cache_dir = "off"};
    if (md_filehash_many(paths, 4, hex, &o1, &s1, &err) == MD_OK &&
        md_filehash_many(paths, 4, hex, &on, &sn, &err) == MD_OK)
        printf("4 files: 1 thread %.3f s, %d threads %.3f s: %.2fx\n", s1.seconds, sn.threads, sn.seconds,
               s1.seconds / sn.seconds);
    if (*made) unlink(made);
    return strcmp(ours, theirs) == 0 ? 0 : 1;
}
