/* fuzz_hub.c — the Hugging Face cache layout: refs/main of a repo folder
 * (models--org--name/) with two snapshots. The input is the content of
 * refs/main (the file walk is fixed; only what refs/main says varies). Any
 * content is refused with a message naming the folder and the ref, or
 * resolves to one of the snapshots: a folder directly under snapshots/,
 * never the repo folder itself or anything outside it. */
#include "fuzz_common.h"
#include "mechdiff/hub.h"

static const char *repo_dir(void)
{
    static char repo[512];
    if (repo[0]) return repo;
    char p[700];
    snprintf(repo, sizeof repo, "%s/models--org--name", fuzz_dir());
    mkdir(repo, 0700);
    snprintf(p, sizeof p, "%s/refs", repo), mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/snapshots", repo), mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/snapshots/0123abcd", repo), mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/snapshots/89efcafe", repo), mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/outside", fuzz_dir()), mkdir(p, 0700); /* beside the repo: never a snapshot */
    return repo;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *repo = repo_dir();
    fuzz_write("models--org--name/refs/main", data, size);
    char out[1024], snaps[600];
    md_error err;
    md_error_clear(&err);
    if (md_hub_resolve_dir(repo, out, sizeof out, &err) != MD_OK) {
        if (!err.msg[0] || !strstr(err.msg, repo)) abort(); /* names the folder */
        return 0;
    }
    snprintf(snaps, sizeof snaps, "%s/snapshots/", repo);
    const char *sha = out + strlen(snaps);
    if (strncmp(out, snaps, strlen(snaps)) != 0 || (strcmp(sha, "0123abcd") != 0 && strcmp(sha, "89efcafe") != 0)) {
        fprintf(stderr, "refs/main resolved to %s\n", out);
        abort();
    }
    return 0;
}
