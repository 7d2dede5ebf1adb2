/* test_outlock.c — md_outlock_make_canonical, the path messages name a job's
 * output by (README.md, "Paths in messages"): absolute, links of existing
 * folders and at the output itself followed, ".", ".." and "//" removed
 * from folders that do not exist yet (mkdir -p creates them as named), and
 * nothing created; md_outlock_resolve gives the same path once it made the
 * folders. */
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mechdiff/outlock.h"
#include "testutil.h"

static char g_root[PATH_MAX]; /* realpath of the scratch folder */

/* CHECKs that path canonicalises to g_root + want. */
static void expect(const char *path, const char *want)
{
    char got[PATH_MAX], full[PATH_MAX + 64];
    md_error err = {{0}};
    snprintf(full, sizeof full, "%s%s", g_root, want);
    int rc = md_outlock_make_canonical(path, got, sizeof got, &err);
    CHECK_MSG(rc == MD_OK && strcmp(got, full) == 0, "%s -> %s (want %s) %s", path, rc == MD_OK ? got : "error",
              full, err.msg);
}

int main(void)
{
    char dir[PATH_MAX], p[PATH_MAX + 128];
    snprintf(dir, sizeof dir, "%s/test_outlock.XXXXXX", tu_tmpdir());
    if (!mkdtemp(dir) || !realpath(dir, g_root)) {
        fprintf(stderr, "cannot make a scratch folder under %s\n", tu_tmpdir());
        return 1;
    }
    snprintf(p, sizeof p, "%s/real", g_root);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/alias", g_root);
    unlink(p);
    CHECK(symlink("real", p) == 0);

    snprintf(p, sizeof p, "%s/./out//x.h5", dir);
    expect(p, "/out/x.h5");
    snprintf(p, sizeof p, "%s/new/./a/../b//x.h5", dir);
    expect(p, "/new/b/x.h5");
    snprintf(p, sizeof p, "%s/new/a/../../x.h5", dir); /* ".." past the folders that do not exist */
    expect(p, "/x.h5");
    snprintf(p, sizeof p, "%s/alias/x.h5", dir); /* a symlinked folder */
    expect(p, "/real/x.h5");
    snprintf(p, sizeof p, "%s/alias/../x.h5", dir); /* ".." after a link: its target's parent, as the kernel does */
    expect(p, "/x.h5");
    snprintf(p, sizeof p, "%s/new", g_root);
    struct stat st;
    CHECK(stat(p, &st) != 0); /* nothing created */

    /* a link at the output itself: its target */
    snprintf(p, sizeof p, "%s/real/target.h5", g_root);
    FILE *f = fopen(p, "w");
    if (f) fclose(f);
    snprintf(p, sizeof p, "%s/link.h5", g_root);
    unlink(p);
    CHECK(symlink("real/target.h5", p) == 0);
    expect(p, "/real/target.h5");

    /* relative to the current folder */
    char cwd[PATH_MAX];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(chdir(g_root) == 0);
    expect("sub/../y.h5", "/y.h5");
    expect("y.h5", "/y.h5");
    CHECK(chdir(cwd) == 0);

    /* resolve: the same path, once it made the folders */
    char got[PATH_MAX], canon[PATH_MAX];
    md_error err = {{0}};
    snprintf(p, sizeof p, "%s/new/./a/../b//x.h5", dir);
    CHECK(md_outlock_make_canonical(p, canon, sizeof canon, &err) == MD_OK);
    CHECK_MSG(md_outlock_resolve(p, got, sizeof got, &err) == MD_OK && strcmp(got, canon) == 0, "%s vs %s %s", got,
              canon, err.msg);
    CHECK(md_outlock_make_canonical("", got, sizeof got, &err) == MD_ERR && strstr(err.msg, "empty"));
    TEST_MAIN_END();
}
