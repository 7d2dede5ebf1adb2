/* journal.c — append-only, checksummed result records (see
 * include/mechdiff/journal.h for the format and why it is crash safe). */
#include "mechdiff/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mechdiff/fsutil.h"
#include "mechdiff/plan.h"

#define JOURNAL_MAGIC "MDJRNL02"
#define JOURNAL_MAGIC_V1 "MDJRNL01" /* before the mark: read, never written */
#define RECORD_MAGIC 0x4352444du /* "MDRC" */
#define HEADER_SIZE 64           /* magic[8], u64 generation, mark (5 x 8), u32 crc, u32 pad */
#define HEADER_V1 24             /* magic[8], u64 generation, u32 crc, u32 pad */
#define RECORD_HEAD 24           /* u32 magic, u32 crc, u64 len, f64 time */

struct md_journal {
    int fd;
    char path[4096];
    unsigned char *buf;  /* records not yet written (owned) */
    size_t len, cap;
    int64_t pending;
};

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return MD_ERR;
        c += w;
        n -= (size_t)w;
    }
    return MD_OK;
}

/* The header bytes: magic, generation, the mark's five fields, crc of the 56 before it. */
static void encode_header(unsigned char h[HEADER_SIZE], uint64_t generation, const md_snapfile_mark *mark)
{
    md_snapfile_mark m = {0};
    if (mark) m = *mark;
    uint64_t f[5] = {m.dev, m.ino, m.size, (uint64_t)m.mtime_s, (uint64_t)m.mtime_ns};
    memset(h, 0, HEADER_SIZE);
    memcpy(h, JOURNAL_MAGIC, 8);
    memcpy(h + 8, &generation, 8);
    memcpy(h + 16, f, sizeof f);
    uint32_t crc = md_crc32(0, h, 56);
    memcpy(h + 56, &crc, 4);
}

/* Reads and checks the header at the start of f: its size (records follow),
 * or 0 when there is no valid one (missing, torn, another format). */
static size_t decode_header(FILE *f, uint64_t *generation, md_snapfile_mark *mark)
{
    unsigned char h[HEADER_SIZE];
    uint32_t crc;
    memset(mark, 0, sizeof *mark);
    if (fread(h, 1, HEADER_V1, f) != HEADER_V1) return 0;
    if (memcmp(h, JOURNAL_MAGIC_V1, 8) == 0) { /* an older mechdiff's: no mark (never matches) */
        memcpy(&crc, h + 16, 4);
        if (crc != md_crc32(0, h, 16)) return 0;
        memcpy(generation, h + 8, 8);
        return HEADER_V1;
    }
    if (memcmp(h, JOURNAL_MAGIC, 8) != 0 || fread(h + HEADER_V1, 1, HEADER_SIZE - HEADER_V1, f) != HEADER_SIZE - HEADER_V1)
        return 0;
    memcpy(&crc, h + 56, 4);
    if (crc != md_crc32(0, h, 56)) return 0;
    uint64_t m[5];
    memcpy(generation, h + 8, 8);
    memcpy(m, h + 16, sizeof m);
    *mark = (md_snapfile_mark){.dev = m[0], .ino = m[1], .size = m[2], .mtime_s = (int64_t)m[3],
                               .mtime_ns = (int64_t)m[4]};
    return HEADER_SIZE;
}

int md_journal_create(md_journal **out, const char *path, uint64_t generation, const md_snapfile_mark *mark,
                      md_error *err)
{
    *out = NULL;
    md_journal *j = calloc(1, sizeof *j);
    if (!j) return md_error_set(err, "journal: out of memory");
    snprintf(j->path, sizeof j->path, "%s", path);
    j->fd = md_fsutil_open_output(path, O_WRONLY | O_CREAT | O_TRUNC, 0644, err); /* never through a symlink */
    if (j->fd < 0) {
        md_error_prefix(err, "cannot create the journal");
        free(j);
        return MD_ERR;
    }
    unsigned char h[HEADER_SIZE];
    encode_header(h, generation, mark);
    if (write_all(j->fd, h, sizeof h) != MD_OK || fsync(j->fd) != 0) {
        md_error_set(err, "%s: cannot write journal header: %s", path, strerror(errno));
        md_journal_close(j);
        return MD_ERR;
    }
    *out = j;
    return MD_OK;
}

int md_journal_append(md_journal *j, double time, const void *payload, size_t len, md_error *err)
{
    size_t need = RECORD_HEAD + len;
    if (j->len + need > j->cap) {
        size_t cap = j->cap ? j->cap : 1 << 16;
        while (cap < j->len + need) cap *= 2;
        unsigned char *b = realloc(j->buf, cap);
        if (!b) return md_error_set(err, "journal: out of memory (%zu bytes)", cap);
        j->buf = b;
        j->cap = cap;
    }
    unsigned char *r = j->buf + j->len;
    uint32_t magic = RECORD_MAGIC;
    uint64_t l64 = len;
    memcpy(r, &magic, 4);
    memcpy(r + 8, &l64, 8);
    memcpy(r + 16, &time, 8);
    memcpy(r + RECORD_HEAD, payload, len);
    uint32_t crc = md_crc32(0, r + 8, 16 + len);
    memcpy(r + 4, &crc, 4);
    j->len += need;
    j->pending++;
    return MD_OK;
}

int md_journal_sync(md_journal *j, md_error *err)
{
    if (j->len && write_all(j->fd, j->buf, j->len) != MD_OK)
        return md_error_set(err, "%s: journal write failed: %s", j->path, strerror(errno));
    if (fdatasync(j->fd) != 0) return md_error_set(err, "%s: journal fsync failed: %s", j->path, strerror(errno));
    j->len = 0;
    j->pending = 0;
    return MD_OK;
}

int64_t md_journal_pending(const md_journal *j)
{
    return j->pending;
}

int md_journal_rotate(md_journal **j, const char *path, const char *prev_path, uint64_t generation,
                      const md_snapfile_mark *mark, const md_snapfile_mark *prev_mark, md_error *err)
{
    if (rename(path, prev_path) != 0) { /* the journal just folded, open here or not */
        int none = errno == ENOENT;
        unlink(prev_path);
        md_journal *empty = NULL; /* none on disk: generation-1 had no records, say so */
        if (none && generation > 0 && md_journal_create(&empty, prev_path, generation - 1, prev_mark, err) != MD_OK)
            md_error_clear(err); /* without it the next snapshot copies: slower, not wrong */
        md_journal_close(empty);
    }
    md_journal_close(*j);
    *j = NULL;
    return md_journal_create(j, path, generation, mark, err);
}

void md_journal_close(md_journal *j)
{
    if (!j) return;
    if (j->fd >= 0) close(j->fd);
    free(j->buf);
    free(j);
}

/* The bytes of f after its read position (0 when unknown). */
static uint64_t bytes_left(FILE *f)
{
    struct stat sb;
    off_t pos = ftello(f);
    return fstat(fileno(f), &sb) == 0 && pos >= 0 && sb.st_size > pos ? (uint64_t)(sb.st_size - pos) : 0;
}

int md_journal_replay(const char *path, uint64_t *generation, md_journal_fn fn, void *arg, int64_t *n_records,
                      int *torn, md_error *err)
{
    *generation = 0;
    *n_records = 0;
    *torn = 0;
    struct stat sb;
    if (lstat(path, &sb) != 0) {
        if (errno == ENOENT) return MD_OK;
        return md_error_set(err, "%s: cannot stat the journal: %s", path, strerror(errno));
    }
    if (S_ISLNK(sb.st_mode))
        return md_error_set(err, "%s: the journal is a symbolic link; remove it (a journal is never a link)", path);
    int fd = md_fsutil_open_input(path, err);
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        if (fd >= 0) close(fd);
        return md_error_prefix(err, "cannot open the journal");
    }
    md_snapfile_mark mark;
    uint32_t crc;
    if (decode_header(f, generation, &mark) == 0) {
        fclose(f);
        *generation = 0;
        *torn = 1; /* a header torn by a crash right after creation: nothing in it */
        return MD_OK;
    }
    unsigned char *payload = NULL;
    size_t cap = 0;
    int rc = MD_OK;
    for (;;) {
        unsigned char rh[RECORD_HEAD];
        size_t got = fread(rh, 1, sizeof rh, f);
        if (got == 0 && feof(f)) break;
        uint32_t magic;
        uint64_t len;
        double time;
        memcpy(&magic, rh, 4);
        memcpy(&crc, rh + 4, 4);
        memcpy(&len, rh + 8, 8);
        memcpy(&time, rh + 16, 8);
        if (got != sizeof rh || magic != RECORD_MAGIC || len > ((uint64_t)1 << 40)) {
            *torn = 1;
            break;
        }
        if (len > cap && len > bytes_left(f)) { /* a length the file cannot hold: torn, never allocated */
            *torn = 1;
            break;
        }
        if (len > cap) {
            unsigned char *p = realloc(payload, (size_t)len);
            if (!p) {
                rc = md_error_set(err, "%s: out of memory reading a %llu-byte record", path,
                                  (unsigned long long)len);
                break;
            }
            payload = p;
            cap = (size_t)len;
        }
        if (fread(payload, 1, (size_t)len, f) != len ||
            md_crc32(md_crc32(0, rh + 8, 16), payload, (size_t)len) != crc) {
            *torn = 1;
            break;
        }
        if (fn && fn(arg, time, payload, (size_t)len, err) != MD_OK) {
            rc = MD_ERR;
            break;
        }
        (*n_records)++;
    }
    free(payload);
    fclose(f);
    return rc;
}

int md_journal_head(const char *path, uint64_t *generation, md_snapfile_mark *mark)
{
    *generation = 0;
    memset(mark, 0, sizeof *mark);
    struct stat sb;
    if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return MD_ERR;
    md_error err;
    int fd = md_fsutil_open_input(path, &err);
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        if (fd >= 0) close(fd);
        return MD_ERR;
    }
    size_t size = decode_header(f, generation, mark);
    fclose(f);
    if (size == 0) *generation = 0;
    return size ? MD_OK : MD_ERR;
}
