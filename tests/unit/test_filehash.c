/* test_filehash.c — the cached, parallel file digests (filehash.h): results
 * equal the plain digest; a second pass comes from the cache; a file
 * rewritten with the same size (new mtime) or replaced (new inode) is read
 * again and gives its new digest; a file modified less than 2 s ago is not
 * cached; a cache folder that is a symlink or a corrupt entry is never
 * trusted; entries unused for MD_FILEHASH_KEEP_DAYS are pruned, used ones
 * kept; a missing file names itself; the cache next to the output: its
 * folder, a hit there is copied into the user's cache (md_filehash_lookup);
 * the sharing of files among readers is balanced and deterministic. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mechdiff/filehash.h"
#include "testutil.h"

static void write_file(const char *path, const char *text, time_t mtime)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
    if (mtime) {
        struct timespec ts[2] = {{.tv_sec = mtime}, {.tv_sec = mtime}};
        CHECK(utimensat(AT_FDCWD, path, ts, 0) == 0);
    }
}

static void plain(const char *path, char hex[MD_SHA256_HEX_SIZE])
{
    CHECK(md_sha256_file(path, hex, NULL) == MD_OK);
}

static int count_entries(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "ls -A '%s' 2>/dev/null | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1) n = -1;
        pclose(p);
    }
    return n;
}

int main(void)
{
    char root[1024], cache[1100], a[1100], b[1100], c[1100], cmd[4000];
    snprintf(root, sizeof root, "%s/filehash_test.%ld", tu_tmpdir(), (long)getpid());
    snprintf(cache, sizeof cache, "%s/cache/sha256", root);
    snprintf(a, sizeof a, "%s/a.bin", root);
    snprintf(b, sizeof b, "%s/b.bin", root);
    snprintf(c, sizeof c, "%s/c.bin", root);
    CHECK(mkdir(root, 0700) == 0);
    time_t old = time(NULL) - 100;
    write_file(a, "first contents", old);
    write_file(b, "abc", old);
    write_file(c, "recently written", 0);

    const char *paths[3] = {a, b, c};
    char hex[3][MD_SHA256_HEX_SIZE], want[3][MD_SHA256_HEX_SIZE];
    for (int i = 0; i < 3; i++) plain(paths[i], want[i]);
    CHECK(strcmp(want[1], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);

    md_filehash_opts opt = {.cache_dir = cache, .threads = 2};
    md_filehash_stats st;
    md_error err;
    md_error_clear(&err);
    CHECK(md_filehash_many(paths, 3, hex, &opt, &st, &err) == MD_OK);
    for (int i = 0; i < 3; i++) CHECK_MSG(strcmp(hex[i], want[i]) == 0, "file %d: %s vs %s", i, hex[i], want[i]);
    CHECK(st.n_cached == 0 && st.n_files == 3);
    CHECK_MSG(count_entries(cache) == 2, "%d cache entries, want 2 (c.bin is too recent)", count_entries(cache));

    /* Warm: a and b from the cache, c read again. */
    CHECK(md_filehash_many(paths, 3, hex, &opt, &st, &err) == MD_OK);
    CHECK_MSG(st.n_cached == 2, "%d from cache, want 2", st.n_cached);
    for (int i = 0; i < 3; i++) CHECK(strcmp(hex[i], want[i]) == 0);

    /* Pruning: an entry unused for longer than MD_FILEHASH_KEEP_DAYS goes at
     * the next pass, a stray file that is not an entry stays. */
    snprintf(cmd, sizeof cmd, "%s/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", cache);
    write_file(cmd, "stale", time(NULL) - (MD_FILEHASH_KEEP_DAYS + 1) * 86400L);
    char keep[1200];
    snprintf(keep, sizeof keep, "%s/README", cache);
    write_file(keep, "not an entry", time(NULL) - (MD_FILEHASH_KEEP_DAYS + 1) * 86400L);
    CHECK(md_filehash_many(paths, 3, hex, &opt, &st, &err) == MD_OK && st.n_cached == 2);
    CHECK_MSG(access(cmd, F_OK) != 0, "a stale cache entry was not pruned");
    CHECK(access(keep, F_OK) == 0);
    CHECK(unlink(keep) == 0);

    /* Same size, new contents and a new (still old) mtime: re-hashed. */
    write_file(a, "other contents", old + 1);
    char want_a2[MD_SHA256_HEX_SIZE];
    plain(a, want_a2);
    CHECK(strcmp(want_a2, want[0]) != 0);
    int cached = -1;
    CHECK(md_filehash_one(a, cache, hex[0], &cached, &err) == MD_OK);
    CHECK_MSG(cached == 0 && strcmp(hex[0], want_a2) == 0, "changed file: cached=%d %s", cached, hex[0]);

    /* Same size, same mtime restored (as `touch -d` or rsync -t would): the
     * ctime still changed, so the old digest is not used. */
    write_file(a, "third contents", old + 1);
    char want_a3[MD_SHA256_HEX_SIZE];
    plain(a, want_a3);
    CHECK(md_filehash_one(a, cache, hex[0], &cached, &err) == MD_OK);
    CHECK_MSG(cached == 0 && strcmp(hex[0], want_a3) == 0, "mtime restored: cached=%d", cached);

    /* Replaced by a new file (new inode) with b's size and time. */
    snprintf(cmd, sizeof cmd, "%s.new", b);
    write_file(cmd, "xyz", old);
    CHECK(rename(cmd, b) == 0);
    CHECK(md_filehash_one(b, cache, hex[1], &cached, &err) == MD_OK);
    plain(b, want[1]);
    CHECK(cached == 0 && strcmp(hex[1], want[1]) == 0);

    /* A corrupted entry is ignored (and the digest is right). */
    snprintf(cmd, sizeof cmd, "for f in '%s'/*; do printf 'garbage' > \"$f\"; done", cache);
    CHECK(system(cmd) == 0);
    CHECK(md_filehash_one(b, cache, hex[1], &cached, &err) == MD_OK);
    CHECK(cached == 0 && strcmp(hex[1], want[1]) == 0);

    /* A cache folder that is a symlink is not used. */
    char link[1200];
    snprintf(link, sizeof link, "%s/link", root);
    CHECK(symlink(cache, link) == 0);
    CHECK(md_filehash_one(b, link, hex[1], NULL, &err) == MD_OK);
    CHECK(md_filehash_one(b, link, hex[1], &cached, &err) == MD_OK);
    CHECK_MSG(cached == 0, "entry read through a symlinked cache folder");

    /* No cache at all, and a missing file. */
    opt.cache_dir = "off";
    CHECK(md_filehash_many(paths, 3, hex, &opt, &st, &err) == MD_OK && st.n_cached == 0);
    const char *missing[2] = {a, "/nonexistent/x.safetensors"};
    CHECK(md_filehash_many(missing, 2, hex, &opt, NULL, &err) == MD_ERR);
    CHECK(strstr(err.msg, "/nonexistent/x.safetensors") != NULL);

    /* The cache next to the output, and a lookup through both caches. */
    char odir[1200], user2[1200], got[MD_SHA256_HEX_SIZE];
    md_filehash_output_dir("/data/run/out.h5", odir, sizeof odir);
    CHECK(strcmp(odir, "/data/run/.mechdiff-digests") == 0);
    md_filehash_output_dir("out.h5", odir, sizeof odir);
    CHECK(strcmp(odir, ".mechdiff-digests") == 0);
    snprintf(odir, sizeof odir, "%s/out/.mechdiff-digests", root);
    snprintf(user2, sizeof user2, "%s/user2", root);
    opt = (md_filehash_opts){.cache_dir = "off", .output_dir = odir};
    CHECK(md_filehash_many(paths, 2, hex, &opt, &st, &err) == MD_OK && st.n_cached == 0);
    CHECK(md_filehash_lookup(a, user2, odir, got) == 1 && strcmp(got, want_a3) == 0);
    CHECK_MSG(count_entries(user2) == 1, "the hit next to the output was not copied: %d", count_entries(user2));
    CHECK(md_filehash_lookup(a, user2, "", got) == 1);
    CHECK(md_filehash_lookup(c, user2, odir, got) == 0); /* too recent to be cached */

    /* Sharing: largest first to the least loaded reader. */
    uint64_t sizes[6] = {5, 9, 1, 9, 4, 2};
    int owner[6], again[6];
    md_filehash_assign(sizes, 6, 2, owner);
    uint64_t load[2] = {0, 0};
    for (int i = 0; i < 6; i++) {
        CHECK(owner[i] == 0 || owner[i] == 1);
        load[owner[i] < 0 ? 0 : owner[i]] += sizes[i];
    }
    CHECK_MSG(load[0] == 15 && load[1] == 15, "loads %llu %llu", (unsigned long long)load[0],
              (unsigned long long)load[1]);
    CHECK(owner[1] == 0 && owner[3] == 1); /* the two 9s go to different readers, the first to reader 0 */
    md_filehash_assign(sizes, 6, 2, again);
    CHECK(memcmp(owner, again, sizeof owner) == 0);
    md_filehash_assign(sizes, 6, 1, owner);
    for (int i = 0; i < 6; i++) CHECK(owner[i] == 0);
    md_filehash_assign(sizes, 2, 8, owner);
    CHECK(owner[0] != owner[1]);

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
    TEST_MAIN_END();
}
