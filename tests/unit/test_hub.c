/* test_hub.c — Hugging Face cache repo folders resolve to their snapshot:
 * refs/main, the only snapshot without refs/main, errors for several
 * snapshots / a missing one / none; other folders pass through. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mechdiff/hub.h"
#include "testutil.h"

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

int main(void)
{
    char root[1024], repo[1200], p[1400], out[2048];
    md_error err;
    snprintf(root, sizeof root, "%s/test_hub.%d", tu_tmpdir(), (int)getpid());
    snprintf(repo, sizeof repo, "%s/models--org--name", root);
    mkdir(root, 0755);
    mkdir(repo, 0755);
    snprintf(p, sizeof p, "%s/snapshots", repo), mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/refs", repo), mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/snapshots/aaa111", repo), mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/snapshots/aaa111/config.json", repo), put(p, "{}");

    /* the only snapshot, no refs/main */
    CHECK(md_hub_resolve_dir(repo, out, sizeof out, &err) == MD_OK);
    snprintf(p, sizeof p, "%s/snapshots/aaa111", repo);
    CHECK_MSG(strcmp(out, p) == 0, "%s", out);

    /* two snapshots, no refs/main: an error naming snapshots/ */
    snprintf(p, sizeof p, "%s/snapshots/bbb222", repo), mkdir(p, 0755);
    CHECK(md_hub_resolve_dir(repo, out, sizeof out, &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "2 snapshots") && strstr(err.msg, "snapshots/<sha>"), "%s", err.msg);

    /* refs/main picks one (trailing newline as written by huggingface_hub) */
    snprintf(p, sizeof p, "%s/refs/main", repo), put(p, "bbb222\n");
    CHECK(md_hub_resolve_dir(repo, out, sizeof out, &err) == MD_OK);
    snprintf(p, sizeof p, "%s/snapshots/bbb222", repo);
    CHECK_MSG(strcmp(out, p) == 0, "%s", out);

    /* refs/main names a snapshot that is not there */
    snprintf(p, sizeof p, "%s/refs/main", repo), put(p, "ccc333");
    CHECK(md_hub_resolve_dir(repo, out, sizeof out, &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "ccc333") && strstr(err.msg, "huggingface-cli download"), "%s", err.msg);

    /* a snapshot folder itself and an ordinary folder pass through */
    snprintf(p, sizeof p, "%s/snapshots/aaa111", repo);
    CHECK(md_hub_resolve_dir(p, out, sizeof out, &err) == MD_OK && strcmp(out, p) == 0);
    CHECK(md_hub_resolve_dir(root, out, sizeof out, &err) == MD_OK && strcmp(out, root) == 0);

    /* refs/main naming something that is not a snapshot folder: "..", a path, "/" resolved to the repo
     * folder, outside it or snapshots/ itself (found by fuzz_hub; tests/fuzz/regress/hub) */
    static const char *const bad[] = {"..\n", "../../x", "/", "bbb222/../..", "."};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(p, sizeof p, "%s/refs/main", repo), put(p, bad[i]);
        CHECK_MSG(md_hub_resolve_dir(repo, out, sizeof out, &err) == MD_ERR && strstr(err.msg, "refs/main") &&
                      strstr(err.msg, "is not a snapshot name"), "%s -> %s", bad[i], err.msg);
    }
    /* a FIFO as refs/main is refused, never read (it would block) */
    snprintf(p, sizeof p, "%s/refs/main", repo), unlink(p);
    CHECK(mkfifo(p, 0600) == 0);
    CHECK_MSG(md_hub_resolve_dir(repo, out, sizeof out, &err) == MD_ERR && strstr(err.msg, "refs/main"), "%s",
              err.msg);
    unlink(p);

    /* out too small */
    CHECK(md_hub_resolve_dir(root, out, 4, &err) == MD_ERR);

    char cmd[1400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
    TEST_MAIN_END();
}
