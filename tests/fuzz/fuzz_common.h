/* fuzz_common.h — scratch files for the libFuzzer harnesses: a per-process
 * folder under /dev/shm (or $TMPDIR) that one input is written into, and
 * fixed files of the repository (MECHDIFF_SOURCE_DIR, set by CMake) copied
 * beside it once. */
#ifndef MECHDIFF_FUZZ_COMMON_H
#define MECHDIFF_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char fuzz_dir_buf[256];

static void fuzz_dir_remove(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir_buf);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", fuzz_dir_buf);
}

/* The harness's scratch folder (created once, removed at exit). */
static inline const char *fuzz_dir(void)
{
    if (fuzz_dir_buf[0]) return fuzz_dir_buf;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(fuzz_dir_buf, sizeof fuzz_dir_buf, "%s/mechdiff-fuzz.%d", base, (int)getpid());
    mkdir(fuzz_dir_buf, 0700);
    atexit(fuzz_dir_remove);
    return fuzz_dir_buf;
}

/* Writes data[0..size) to fuzz_dir()/name; returns the path (static). */
static inline const char *fuzz_write(const char *name, const uint8_t *data, size_t size)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return path;
}

/* Copies the repository file REL (relative to the source tree) to
 * fuzz_dir()/name; aborts when it is missing (a harness's fixed input). */
static inline void fuzz_copy_repo_file(const char *rel, const char *name)
{
    char src[1024];
    snprintf(src, sizeof src, "%s/%s", MECHDIFF_SOURCE_DIR, rel);
    FILE *f = fopen(src, "rb");
    if (!f) {
        fprintf(stderr, "fuzz: cannot open %s\n", src);
        abort();
    }
    size_t cap = 1 << 16, n = 0, got;
    uint8_t *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0)
        if ((n += got) == cap) buf = realloc(buf, cap *= 2);
    fclose(f);
    if (!buf) abort();
    fuzz_write(name, buf, n);
    free(buf);
}

/* A failed check of a harness: prints where and what (printf-style), aborts. */
#define FUZZ_FAIL(...)                                                                                                 \
    do {                                                                                                               \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                                               \
        fprintf(stderr, __VA_ARGS__);                                                                                  \
        fputc('\n', stderr);                                                                                           \
        abort();                                                                                                       \
    } while (0)

/* A NUL-terminated copy of data (caller frees). */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
