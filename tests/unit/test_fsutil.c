/* test_fsutil.c — md_fsutil_same_file: one file reached by two spellings of
 * its path, a symbolic link, a hard link, or an open descriptor and its path
 * is the same file; a copy with the same bytes, a folder and the file in it,
 * or a path a new file was put at after the old one was removed, is not. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mechdiff/fsutil.h"
#include "testutil.h"

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* 1 when stat(a) and stat(b) both work and name the same file. */
static int same_paths(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && md_fsutil_same_file(&sa, &sb);
}

int main(void)
{
    char dir[512], file[600], other[600], spelled[640], soft[600], hard[600];
    snprintf(dir, sizeof dir, "%s/test_fsutil.XXXXXX", tu_tmpdir());
    if (!mkdtemp(dir)) {
        fprintf(stderr, "cannot make a scratch folder under %s\n", tu_tmpdir());
        return 1;
    }
    snprintf(file, sizeof file, "%s/a.txt", dir);
    snprintf(other, sizeof other, "%s/b.txt", dir);
    snprintf(spelled, sizeof spelled, "%s/./../%s/a.txt", dir, strrchr(dir, '/') + 1);
    snprintf(soft, sizeof soft, "%s/soft", dir);
    snprintf(hard, sizeof hard, "%s/hard", dir);
    CHECK(write_file(file, "same bytes\n") == 0 && write_file(other, "same bytes\n") == 0);
    CHECK(symlink(file, soft) == 0 && link(file, hard) == 0);

    CHECK_MSG(same_paths(file, file), "a path and itself");
    CHECK_MSG(same_paths(file, spelled), "%s and %s", file, spelled);
    CHECK_MSG(same_paths(file, soft), "a file and a symbolic link to it");
    CHECK_MSG(same_paths(file, hard), "a file and a hard link to it");
    CHECK_MSG(!same_paths(file, other), "two files with the same bytes");
    CHECK_MSG(!same_paths(dir, file), "a folder and a file in it");

    struct stat link_itself, target, by_fd, now;
    CHECK(lstat(soft, &link_itself) == 0 && stat(file, &target) == 0);
    CHECK_MSG(!md_fsutil_same_file(&link_itself, &target), "lstat of a link is the link, not its target");

    int fd = open(file, O_RDONLY);
    CHECK(fd >= 0 && fstat(fd, &by_fd) == 0 && md_fsutil_same_file(&by_fd, &target));
    /* Removed and written anew at the same path while open: another file
     * (the old one stays alive through fd, so its inode is not reused). */
    CHECK(unlink(file) == 0 && write_file(file, "same bytes\n") == 0 && stat(file, &now) == 0);
    CHECK_MSG(!md_fsutil_same_file(&by_fd, &now), "an open file and a new file at its old path");
    if (fd >= 0) close(fd);

    unlink(hard), unlink(soft), unlink(other), unlink(file), rmdir(dir);
    TEST_MAIN_END();
}
