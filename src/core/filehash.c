/* filehash.c — cached, parallel SHA-256 of files (see include/mechdiff/filehash.h). */
#include "mechdiff/filehash.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mechdiff/clock.h"

#define CACHE_MAGIC "mechdiff sha256 cache v2"
#define KEY_MAX 4400

void md_filehash_default_dir(char *buf, size_t len)
{
    const char *env = getenv("MECHDIFF_DIGEST_CACHE"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (env && *env) snprintf(buf, len, "%s", strcmp(env, "off") == 0 ? "" : env);
    else if (xdg && *xdg) snprintf(buf, len, "%s/mechdiff/sha256", xdg);
    else if (home && *home) snprintf(buf, len, "%s/.cache/mechdiff/sha256", home);
    else snprintf(buf, len, "%s", "");
}

static int cache_off(const char *dir)
{
    return !dir || !*dir || strcmp(dir, "off") == 0;
}

void md_filehash_output_dir(const char *output, char *buf, size_t len)
{
    const char *env = getenv("MECHDIFF_DIGEST_CACHE");
    const char *slash = strrchr(output, '/');
    if (!output[0] || (env && strcmp(env, "off") == 0)) snprintf(buf, len, "%s", "");
    else if (!slash) snprintf(buf, len, ".mechdiff-digests");
    else snprintf(buf, len, "%.*s/.mechdiff-digests", (int)(slash - output), output);
}

/* "2026-12-07T06:31:02Z " into buf: the time stamp of progress lines. */
static void utc_now(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ ", &tm);
}

/* The key line of a file's identity: changes with any write, replacement or
 * rename. No st_dev: a network filesystem gets another device number on
 * each node, and the cache next to the output must work on any node; the
 * resolved path stands for the filesystem instead. */
static void cache_key(const char *path, const struct stat *st, char *key, size_t len)
{
    char real[4096];
    if (!realpath(path, real)) snprintf(real, sizeof real, "%s", path);
    snprintf(key, len, "path %s ino %ju size %jd mtime %lld.%09ld ctime %lld.%09ld", real, (uintmax_t)st->st_ino,
             (intmax_t)st->st_size, (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec, (long long)st->st_ctim.tv_sec,
             st->st_ctim.tv_nsec);
}

static int is_hex64(const char *s)
{
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

/* dir/<sha256 of key> into path; MD_ERR when it does not fit. */
static int entry_path(const char *dir, const char *key, char *path, size_t len)
{
    char name[MD_SHA256_HEX_SIZE];
    if (md_sha256_hex(key, strlen(key), name, NULL) != MD_OK) return MD_ERR;
    return (size_t)snprintf(path, len, "%s/%s", dir, name) < len ? MD_OK : MD_ERR;
}

/* The cache is used only when dir is a real directory (not a symlink)
 * owned by this user. */
static int cache_dir_trusted(const char *dir)
{
    struct stat st;
    return lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid();
}

/* Creates dir and its parents (0700) when absent; then as cache_dir_trusted. */
static int cache_dir_ready(const char *dir)
{
    char p[4096];
    if ((size_t)snprintf(p, sizeof p, "%s", dir) >= sizeof p) return 0;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) return 0;
        *s = '/';
    }
    if (mkdir(p, 0700) != 0 && errno != EEXIST) return 0;
    return cache_dir_trusted(dir);
}

static int cache_lookup(const char *dir, const char *key, char hex[MD_SHA256_HEX_SIZE])
{
    char path[4200], buf[KEY_MAX + 128];
    if (entry_path(dir, key, path, sizeof path) != MD_OK) return 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return 0;
    struct stat st;
    ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, buf, sizeof buf - 1) : -1;
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    /* CACHE_MAGIC \n key \n hex \n, nothing else */
    size_t lm = strlen(CACHE_MAGIC), lk = strlen(key);
    if ((size_t)n != lm + 1 + lk + 1 + 64 + 1) return 0;
    if (memcmp(buf, CACHE_MAGIC "\n", lm + 1) != 0 || memcmp(buf + lm + 1, key, lk) != 0 || buf[lm + 1 + lk] != '\n')
        return 0;
    const char *h = buf + lm + lk + 2;
    if (!is_hex64(h) || h[64] != '\n') return 0;
    memcpy(hex, h, 64);
    hex[64] = '\0';
    if (st.st_mtime < time(NULL) - 86400) utimensat(AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW); /* in use: keep */
    return 1;
}

/* Removes entries not used for MD_FILEHASH_KEEP_DAYS and temporary files
 * left by a killed process (older than a day). Best effort. */
static void cache_prune(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        int entry = n == 64 && is_hex64(e->d_name), tmp = n > 69 && strstr(e->d_name, ".tmp.") == e->d_name + 64;
        if (!entry && !tmp) continue;
        char path[4200];
        struct stat st;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path) continue;
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (st.st_mtime < now - (entry ? MD_FILEHASH_KEEP_DAYS * 86400L : 86400L)) unlink(path);
    }
    closedir(d);
}

/* Best effort: write to a private temporary file, rename into place. */
static void cache_store(const char *dir, const char *key, const char hex[MD_SHA256_HEX_SIZE])
{
    static const char *hexd = "0123456789abcdef";
    char path[4200], tmp[4300], text[KEY_MAX + 128];
    if (entry_path(dir, key, path, sizeof path) != MD_OK) return;
    unsigned r = (unsigned)getpid() ^ (unsigned)(uintptr_t)&r ^ (unsigned)clock();
    char tag[9];
    for (int i = 0; i < 8; i++) tag[i] = hexd[(r >> (4 * i)) & 15];
    tag[8] = '\0';
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%s", path, (long)getpid(), tag);
    int n = snprintf(text, sizeof text, "%s\n%s\n%s\n", CACHE_MAGIC, key, hex);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return;
    int ok = n > 0 && (size_t)n < sizeof text && write(fd, text, (size_t)n) == n;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) unlink(tmp);
}

static int same_identity(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* The two caches of a pass: the user's and the one next to the output. */
typedef struct cache_pair {
    const char *dir[2];
} cache_pair;

/* Looks key up in each cache; a hit is copied into the cache that missed
 * (so both know it afterwards). */
static int pair_lookup(const cache_pair *cp, const char *key, char hex[MD_SHA256_HEX_SIZE])
{
    for (int k = 0; k < 2; k++) {
        if (cache_off(cp->dir[k]) || !cache_dir_trusted(cp->dir[k]) || !cache_lookup(cp->dir[k], key, hex)) continue;
        const char *other = cp->dir[1 - k];
        char again[MD_SHA256_HEX_SIZE];
        if (!cache_off(other) && !(cache_dir_trusted(other) && cache_lookup(other, key, again)) &&
            cache_dir_ready(other))
            cache_store(other, key, hex);
        return 1;
    }
    return 0;
}

static int hash_one(const char *path, const cache_pair *cp, char hex[MD_SHA256_HEX_SIZE], int *from_cache,
                    md_error *err)
{
    if (from_cache) *from_cache = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return md_error_set(err, "%s: cannot open for hashing: %s", path, strerror(errno));
    struct stat before, after;
    if (fstat(fd, &before) != 0) {
        close(fd);
        return md_error_set(err, "%s: cannot stat: %s", path, strerror(errno));
    }
    char key[KEY_MAX];
    cache_key(path, &before, key, sizeof key);
    int use_cache = S_ISREG(before.st_mode);
    if (use_cache && pair_lookup(cp, key, hex)) {
        close(fd);
        if (from_cache) *from_cache = 1;
        return MD_OK;
    }
    int rc = md_sha256_fd(fd, path, hex, err);
    int unchanged = rc == MD_OK && fstat(fd, &after) == 0 && same_identity(&before, &after);
    close(fd);
    for (int k = 0; k < 2; k++)
        if (unchanged && use_cache && !cache_off(cp->dir[k]) && before.st_mtim.tv_sec < time(NULL) - 2 &&
            cache_dir_ready(cp->dir[k]))
            cache_store(cp->dir[k], key, hex);
    return rc;
}

int md_filehash_one(const char *path, const char *cache_dir, char hex[MD_SHA256_HEX_SIZE], int *from_cache,
                    md_error *err)
{
    cache_pair cp = {{cache_dir, NULL}};
    return hash_one(path, &cp, hex, from_cache, err);
}

int md_filehash_lookup(const char *path, const char *cache_dir, const char *output_dir, char hex[MD_SHA256_HEX_SIZE])
{
    struct stat st;
    char key[KEY_MAX];
    cache_pair cp = {{cache_dir, output_dir}};
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    cache_key(path, &st, key, sizeof key);
    return pair_lookup(&cp, key, hex);
}

void md_filehash_assign(const uint64_t *sizes, int n, int n_readers, int *owner)
{
    uint64_t load[256] = {0};
    int r_max = n_readers < 1 ? 1 : n_readers > 256 ? 256 : n_readers;
    for (int i = 0; i < n; i++) owner[i] = -1;
    for (int done = 0; done < n; done++) {
        int big = -1; /* the largest file not yet given, first of equals */
        for (int i = 0; i < n; i++)
            if (owner[i] < 0 && (big < 0 || sizes[i] > sizes[big])) big = i;
        int r = 0; /* to the least loaded reader, lowest index of equals */
        for (int k = 1; k < r_max; k++)
            if (load[k] < load[r]) r = k;
        owner[big] = r;
        load[r] += sizes[big];
    }
}

/* Work shared by the hashing threads (guarded by mu). */
typedef struct pool {
    const char *const *paths;
    char (*hex)[MD_SHA256_HEX_SIZE];
    const uint64_t *sizes;
    cache_pair caches;
    int n, next, finished, failed;
    uint64_t bytes_read, bytes_cached;
    int n_cached;
    md_error err;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} pool;

static void *hash_thread(void *arg)
{
    pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int i = p->failed || p->next >= p->n ? p->n : p->next++;
        pthread_mutex_unlock(&p->mu);
        if (i >= p->n) return NULL;
        md_error e;
        md_error_clear(&e);
        int cached = 0;
        int rc = hash_one(p->paths[i], &p->caches, p->hex[i], &cached, &e);
        pthread_mutex_lock(&p->mu);
        if (rc != MD_OK && !p->failed) {
            p->failed = 1;
            p->err = e;
        }
        p->n_cached += cached;
        if (cached) p->bytes_cached += p->sizes[i];
        else p->bytes_read += p->sizes[i];
        p->finished++;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Waits for the threads, printing a line every 10 s when asked. */
static void wait_progress(pool *p, const char *prefix, uint64_t total, double t0)
{
    pthread_mutex_lock(&p->mu);
    while (p->failed ? p->finished < p->next : p->finished < p->n) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 10;
        if (pthread_cond_timedwait(&p->cv, &p->mu, &until) == ETIMEDOUT && prefix) {
            double dt = md_clock_seconds() - t0;
            char ts[32];
            utc_now(ts, sizeof ts);
            fprintf(stderr, "%s%shashing: %d of %d files, %.2f of %.2f GB (%.2f GB/s)\n", prefix, ts, p->finished,
                    p->n, (double)(p->bytes_read + p->bytes_cached) / 1e9, (double)total / 1e9,
                    (double)p->bytes_read / 1e9 / (dt > 0 ? dt : 1));
        }
    }
    pthread_mutex_unlock(&p->mu);
}

int md_filehash_many(const char *const *paths, int n, char (*hex)[MD_SHA256_HEX_SIZE], const md_filehash_opts *opt,
                     md_filehash_stats *stats, md_error *err)
{
    md_filehash_opts none = {0};
    if (!opt) opt = &none;
    char dir[4096];
    if (opt->cache_dir) snprintf(dir, sizeof dir, "%s", cache_off(opt->cache_dir) ? "" : opt->cache_dir);
    else md_filehash_default_dir(dir, sizeof dir);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int nt = opt->threads > 0 ? opt->threads : (int)(cpus > 8 ? 8 : cpus < 1 ? 1 : cpus);
    if (nt > n) nt = n;
    uint64_t *sizes = calloc((size_t)(n ? n : 1), sizeof *sizes);          /* owned */
    pthread_t *tids = calloc((size_t)(nt ? nt : 1), sizeof *tids);         /* owned */
    if (!sizes || !tids) {
        free(sizes);
        free(tids);
        return md_error_set(err, "out of memory");
    }
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        struct stat st;
        sizes[i] = stat(paths[i], &st) == 0 ? (uint64_t)st.st_size : 0;
        total += sizes[i];
    }
    char odir[4096], ts[32];
    snprintf(odir, sizeof odir, "%s", opt->output_dir && !cache_off(opt->output_dir) ? opt->output_dir : "");
    utc_now(ts, sizeof ts);
    if (opt->progress && n)
        fprintf(stderr, "%s%shashing %d files (%.2f GB) on %d threads; digest caches: %s and %s\n", opt->progress, ts,
                n, (double)total / 1e9, nt, *dir ? dir : "off", *odir ? odir : "none next to the output");
    if (*dir && n && cache_dir_trusted(dir)) cache_prune(dir);
    if (*odir && n && cache_dir_trusted(odir)) cache_prune(odir);
    pool p = {.paths = paths, .hex = hex, .sizes = sizes, .caches = {{dir, odir}}, .n = n};
    md_error_clear(&p.err);
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    double t0 = md_clock_seconds();
    int started = 0;
    for (; started < nt; started++)
        if (pthread_create(&tids[started], NULL, hash_thread, &p) != 0) break;
    if (started == 0) hash_thread(&p); /* no thread could start: hash here */
    else wait_progress(&p, opt->progress, total, t0);
    for (int t = 0; t < started; t++) pthread_join(tids[t], NULL);
    double dt = md_clock_seconds() - t0;
    utc_now(ts, sizeof ts);
    if (opt->progress && n && !p.failed)
        fprintf(stderr, "%s%shashed %d files in %.1f s: %d from the cache (%.2f GB not read), %.2f GB read at %.2f GB/s\n",
                opt->progress, ts, n, dt, p.n_cached, (double)p.bytes_cached / 1e9, (double)p.bytes_read / 1e9,
                dt > 0 ? (double)p.bytes_read / 1e9 / dt : 0.0);
    if (stats)
        *stats = (md_filehash_stats){.n_files = n, .n_cached = p.n_cached, .bytes_read = p.bytes_read,
                                     .bytes_cached = p.bytes_cached, .seconds = dt, .threads = started ? started : 1};
    pthread_cond_destroy(&p.cv);
    pthread_mutex_destroy(&p.mu);
    free(sizes);
    free(tids);
    if (p.failed && err) *err = p.err;
    return p.failed ? MD_ERR : MD_OK;
}
