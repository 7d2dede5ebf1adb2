/* outlock.c — canonical output path and the one-writer lock (see
 * include/mechdiff/outlock.h). */
#include "mechdiff/outlock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mechdiff/fsutil.h"

/* mkdir -p of dir (modified in place, restored before returning). */
static int make_dirs(char *dir, md_error *err)
{
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        int bad = mkdir(dir, 0755) != 0 && errno != EEXIST;
        *p = '/';
        if (bad) return md_error_set(err, "cannot create the output folder %.*s: %s", (int)(p - dir), dir,
                                     strerror(errno));
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return md_error_set(err, "cannot create the output folder %s: %s", dir, strerror(errno));
    return MD_OK;
}

/* Appends the components of rest to the canonical folder path buf (len
 * bytes): "" and "." skipped, ".." drops the last component (never "/"). */
static int append_normalized(char *buf, size_t len, const char *rest)
{
    while (*rest) {
        size_t n = strcspn(rest, "/"), used = strlen(buf);
        if (n == 2 && rest[0] == '.' && rest[1] == '.') {
            char *slash = strrchr(buf, '/');
            if (slash) slash[slash == buf ? 1 : 0] = '\0';
        } else if (n > 0 && !(n == 1 && rest[0] == '.')) {
            const char *sep = used > 0 && buf[used - 1] == '/' ? "" : "/";
            if (used + strlen(sep) + n >= len) return MD_ERR;
            snprintf(buf + used, len - used, "%s%.*s", sep, (int)n, rest);
        }
        rest += n;
        while (*rest == '/') rest++;
    }
    return MD_OK;
}

int md_outlock_make_canonical(const char *output, char *buf, size_t len, md_error *err)
{
    char path[PATH_MAX], real[PATH_MAX];
    if (!output[0]) return md_error_set(err, "the output path is empty");
    int n;
    if (output[0] == '/') {
        n = snprintf(path, sizeof path, "%s", output);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd)) return md_error_set(err, "%s: cannot read the current folder: %s", output,
                                                          strerror(errno));
        n = snprintf(path, sizeof path, "%s/%s", cwd, output);
    }
    if (n < 0 || n >= (int)sizeof path) return md_error_set(err, "%s: output path too long", output);
    /* the longest leading part that exists, resolved (links followed); the
     * components after it do not exist yet: mkdir -p creates them as named */
    size_t cut = (size_t)n;
    for (;;) {
        char keep = path[cut];
        path[cut] = '\0';
        const char *head = cut ? path : "/";
        int found = realpath(head, real) != NULL, why = errno;
        path[cut] = keep;
        if (found) break;
        if (why != ENOENT && why != ENOTDIR)
            return md_error_set(err, "%s: cannot resolve %s: %s", output, head, strerror(why));
        while (cut > 0 && path[cut - 1] == '/') cut--;
        while (cut > 0 && path[cut - 1] != '/') cut--;
    }
    if (append_normalized(real, sizeof real, path + cut) != MD_OK || strlen(real) >= len)
        return md_error_set(err, "%s: output path too long", output);
    snprintf(buf, len, "%s", real);
    return MD_OK;
}

int md_outlock_resolve(const char *output, char *buf, size_t len, md_error *err)
{
    char dir[PATH_MAX], real[PATH_MAX];
    if (!output[0]) return md_error_set(err, "the output path is empty");
    if (snprintf(dir, sizeof dir, "%s", output) >= (int)sizeof dir)
        return md_error_set(err, "%s: output path too long", output);
    struct stat st;
    if (lstat(output, &st) == 0 && S_ISLNK(st.st_mode)) {
        if (stat(output, &st) != 0)
            return md_error_set(err, "%s: a symbolic link whose target cannot be resolved (%s); give the real "
                                "path of the output", output, strerror(errno));
    } else {
        char *slash = strrchr(dir, '/');
        const char *base = slash ? slash + 1 : output;
        if (!base[0] || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
            return md_error_set(err, "%s: the output must name a file, not a folder", output);
        if (slash && slash != dir) {
            *slash = '\0';
            if (make_dirs(dir, err) != MD_OK) return MD_ERR;
        }
    }
    if (md_outlock_make_canonical(output, real, sizeof real, err) != MD_OK) return MD_ERR;
    if (stat(real, &st) == 0 && !S_ISREG(st.st_mode))
        return md_error_set(err, "%s: the output exists and is not a regular file (%s); give the path of an "
                            "HDF5 file to write", output, S_ISDIR(st.st_mode) ? "a folder" : "a special file");
    if (strlen(real) + 16 > len) /* room for ".journal", ".lock", ".tmp" */
        return md_error_set(err, "%s: output path too long", output);
    snprintf(buf, len, "%s", real);
    return MD_OK;
}

/* 1 when fd is the file at path now (not one a finished run removed). */
static int is_file_at(int fd, const char *path)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && lstat(path, &b) == 0 && md_fsutil_same_file(&a, &b);
}

int md_outlock_acquire(const char *resolved, int *fd, int *held_elsewhere, md_error *err)
{
    char path[PATH_MAX + 8], info[512], host[256] = "";
    *fd = -1;
    *held_elsewhere = 0;
    snprintf(path, sizeof path, "%s.lock", resolved);
    int lfd = -1;
    for (int tries = 0; lfd < 0; tries++) {
        lfd = md_fsutil_open_output(path, O_RDWR | O_CREAT, 0644, err);
        if (lfd < 0) return MD_ERR;
        if (flock(lfd, LOCK_EX | LOCK_NB) != 0) {
            ssize_t n = pread(lfd, info, sizeof info - 1, 0);
            info[n > 0 ? n : 0] = '\0';
            close(lfd);
            *held_elsewhere = 1;
            return md_error_set(err, "%s is being written by another run (%s): wait for it to end or stop it first",
                                resolved, n > 0 ? info : "unknown process");
        }
        if (!is_file_at(lfd, path)) { /* a run that finished removed it after we opened it: take the new one */
            close(lfd);
            lfd = -1;
            if (tries == 100) return md_error_set(err, "%s: the lock file keeps being replaced", path);
        }
    }
    gethostname(host, sizeof host - 1);
    int n = snprintf(info, sizeof info, "pid %ld on %s", (long)getpid(), host);
    if (ftruncate(lfd, 0) != 0 || pwrite(lfd, info, (size_t)n, 0) != n) { /* informative only */ }
    *fd = lfd;
    return MD_OK;
}

void md_outlock_release(const char *resolved, int fd, int remove)
{
    if (fd < 0) return;
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s.lock", resolved);
    if (remove && is_file_at(fd, path)) unlink(path); /* still held: a run that opens it now retries */
    close(fd);
}

int md_outlock_holder(const char *output, long *pid, char *host, size_t len)
{
    char path[PATH_MAX + 8], info[512], h[256] = "";
    snprintf(path, sizeof path, "%s.lock", output);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(info, 1, sizeof info - 1, f);
    fclose(f);
    info[n] = '\0';
    if (sscanf(info, "pid %ld on %255s", pid, h) != 2 || *pid <= 0) return 0;
    snprintf(host, len, "%s", h);
    return 1;
}
