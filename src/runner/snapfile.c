/* snapfile.c — file-level moves of a snapshot (see include/mechdiff/snapfile.h
 * and the design comment at the top of src/runner/h5out.c). */
#define _GNU_SOURCE /* copy_file_range */
#include "mechdiff/snapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mechdiff/fsutil.h"

/* Plain read/write copy from the current offsets on (copy_file_range refused). */
static int copy_rw(int in, int out, const char *from, const char *to, md_error *err)
{
    size_t cap = 4 << 20;
    char *buf = malloc(cap);
    int rc = buf ? MD_OK : md_error_set(err, "out of memory");
    while (rc == MD_OK) {
        ssize_t n = read(in, buf, cap);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) rc = md_error_set(err, "%s: read failed: %s", from, strerror(errno));
        if (n <= 0) break;
        for (ssize_t done = 0; done < n && rc == MD_OK;) {
            ssize_t w = write(out, buf + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) rc = md_error_set(err, "%s: write failed: %s", to, strerror(errno));
            else done += w;
        }
    }
    free(buf);
    return rc;
}

int md_snapfile_copy(const char *from, const char *to, md_error *err)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0) return md_error_set(err, "%s: cannot open: %s", from, strerror(errno));
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644); /* `to` was unlinked */
    if (out < 0) {
        close(in);
        return md_error_set(err, "%s: cannot create: %s", to, strerror(errno));
    }
    int rc = MD_OK, kernel = 1;
    for (;;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)1 << 30, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == ENOSYS || errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP)) {
            kernel = 0; /* not offered here: copy by hand from where it stopped */
            break;
        }
        if (n < 0) rc = md_error_set(err, "%s: copy to %s failed: %s", from, to, strerror(errno));
        if (n <= 0) break;
    }
    if (rc == MD_OK && !kernel) rc = copy_rw(in, out, from, to, err);
    close(in);
    if (close(out) != 0 && rc == MD_OK) rc = md_error_set(err, "%s: close failed: %s", to, strerror(errno));
    return rc;
}

int md_snapfile_mark_of(const char *path, md_snapfile_mark *mark)
{
    struct stat st;
    memset(mark, 0, sizeof *mark);
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) return MD_ERR;
    mark->dev = (uint64_t)st.st_dev;
    mark->ino = (uint64_t)st.st_ino;
    mark->size = (uint64_t)st.st_size;
    mark->mtime_s = (int64_t)st.st_mtim.tv_sec;
    mark->mtime_ns = (int64_t)st.st_mtim.tv_nsec;
    return MD_OK;
}

int md_snapfile_mark_matches(const char *path, const md_snapfile_mark *mark)
{
    md_snapfile_mark now;
    static const md_snapfile_mark unknown;
    if (memcmp(mark, &unknown, sizeof unknown) == 0 || md_snapfile_mark_of(path, &now) != MD_OK) return 0;
    return now.dev == mark->dev && now.ino == mark->ino && now.size == mark->size &&
           now.mtime_s == mark->mtime_s && now.mtime_ns == mark->mtime_ns;
}

int md_snapfile_take_previous(const char *path, const char *prev, const char *tmp,
                              const md_snapfile_mark *prev_mark)
{
    struct stat sp, sc;
    if (!md_snapfile_mark_matches(prev, prev_mark)) return 0; /* missing, a link, or written since */
    if (lstat(prev, &sp) != 0 || !S_ISREG(sp.st_mode) || stat(path, &sc) != 0) return 0;
    if (md_fsutil_same_file(&sp, &sc)) return 0; /* killed between keep and publish */
    int fd = open(prev, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return 0;
    /* An HDF5 reader with file locking on holds a shared lock while the file
     * is open: it may still be reading this older version, so leave it be. */
    int free_of_readers = flock(fd, LOCK_EX | LOCK_NB) == 0;
    int ok = free_of_readers && (unlink(tmp) == 0 || errno == ENOENT) && rename(prev, tmp) == 0;
    close(fd); /* releases the lock; the writer opens tmp next */
    return ok;
}

void md_snapfile_keep_previous(const char *path, const char *prev)
{
    unlink(prev);
    if (link(path, prev) != 0) unlink(prev);
}

int md_snapfile_fsync(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return MD_ERR;
    int rc = fsync(fd) == 0 ? MD_OK : MD_ERR;
    close(fd);
    return rc;
}

const char *md_snapfile_io_reason(int errnum)
{
    switch (errnum) {
    case ENOSPC: return ": No space left on device";
    case EDQUOT: return ": Disk quota exceeded";
    case EFBIG: return ": File too large";
    case EIO: return ": Input/output error";
    case EROFS: return ": Read-only file system";
    default: return "";
    }
}
