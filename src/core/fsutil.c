/* fsutil.c — regular-file inputs, no-follow outputs, bounded reads, file
 * identity (see include/mechdiff/fsutil.h). */
#include "mechdiff/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *type_name(mode_t m)
{
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    if (S_ISLNK(m)) return "a symbolic link";
    return "not a plain file";
}

/* Checks fd is a regular file and clears O_NONBLOCK; closes fd on error. */
static int check_regular(int fd, const char *path, md_error *err)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        md_error_set(err, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        md_error_set(err, "%s: not a regular file (it is %s); give the path of a plain file", path,
                     type_name(sb.st_mode));
        close(fd);
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        md_error_set(err, "%s: fcntl: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int md_fsutil_open_input(const char *path, md_error *err)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        md_error_set(err, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    return check_regular(fd, path, err);
}

char *md_fsutil_read_input(const char *path, size_t max_bytes, size_t *len, md_error *err)
{
    int fd = md_fsutil_open_input(path, err);
    if (fd < 0) return NULL;
    char *buf = NULL;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || sb.st_size < 0) {
        md_error_set(err, "%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    if ((unsigned long long)sb.st_size > max_bytes) {
        md_error_set(err, "%s: %lld bytes, larger than the %zu bytes allowed for this file", path,
                     (long long)sb.st_size, max_bytes);
        goto fail;
    }
    size_t n = (size_t)sb.st_size, got = 0;
    buf = malloc(n + 1);
    if (!buf) {
        md_error_set(err, "%s: out of memory reading %zu bytes", path, n);
        goto fail;
    }
    while (got < n) { /* the file may shrink under us: stop at its end */
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            md_error_set(err, "%s: read error: %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    buf[got] = '\0';
    if (len) *len = got;
    close(fd);
    return buf;
fail:
    free(buf);
    close(fd);
    return NULL;
}

int md_fsutil_open_output(const char *path, int flags, mode_t mode, md_error *err)
{
    int trunc = flags & O_TRUNC;
    int fd = open(path, (flags & ~O_TRUNC) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, mode);
    if (fd < 0) {
        if (errno == ELOOP)
            return md_error_set(err, "%s: is a symbolic link; refusing to write through it (remove the link or "
                                "give the real path)", path), -1;
        return md_error_set(err, "%s: cannot open for writing: %s", path, strerror(errno)), -1;
    }
    if (check_regular(fd, path, err) < 0) return -1;
    if (trunc && ftruncate(fd, 0) != 0) {
        md_error_set(err, "%s: cannot truncate: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int md_fsutil_same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}
