/* hub.c — Hugging Face cache repo folder → snapshot folder (see hub.h). */
#include "mechdiff/hub.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mechdiff/fsutil.h"

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* refs/main's sha (first line, whitespace trimmed) into sha: 1, or 0 when
 * refs/main is absent or empty, or MD_ERR (err set, naming the file) when
 * it cannot be read (a FIFO is refused, never read) or names no snapshot
 * folder (a path with '/', ".", "..", longer than sha). */
static int read_ref(const char *dir, char *sha, size_t len, md_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/refs/main", dir);
    if (access(path, F_OK) != 0) return 0;
    char *text = md_fsutil_read_input(path, 4096, NULL, err); /* owned */
    if (!text) return MD_ERR;
    size_t n = strcspn(text, " \t\r\n");
    text[n] = '\0';
    int rc = n > 0;
    if (n >= len || strchr(text, '/') || strcmp(text, ".") == 0 || strcmp(text, "..") == 0)
        rc = md_error_set(err, "%s: '%.80s' is not a snapshot name (a commit sha, a folder of %s/snapshots): fix "
                               "refs/main, or name a folder under %s/snapshots instead", path, text, dir, dir);
    else
        memcpy(sha, text, n + 1);
    free(text);
    return rc;
}

/* The only entry of DIR/snapshots into sha; returns the number of entries. */
static int only_snapshot(const char *dir, char *sha, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/snapshots", dir);
    DIR *d = opendir(path);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n++ == 0) snprintf(sha, len, "%s", e->d_name);
    }
    closedir(d);
    return n;
}

int md_hub_resolve_dir(const char *dir, char *out, size_t out_len, md_error *err)
{
    char path[4096], sha[256] = "";
    snprintf(path, sizeof path, "%s/config.json", dir);
    int repo = !is_file(path);
    snprintf(path, sizeof path, "%s/snapshots", dir);
    repo = repo && is_dir(path);
    if (!repo) {
        if ((size_t)snprintf(out, out_len, "%s", dir) >= out_len) return md_error_set(err, "%s: path too long", dir);
        return MD_OK;
    }
    int have_ref = read_ref(dir, sha, sizeof sha, err);
    if (have_ref == MD_ERR) return MD_ERR;
    if (!have_ref) {
        int n = only_snapshot(dir, sha, sizeof sha);
        if (n == 0)
            return md_error_set(err, "%s: Hugging Face cache folder without a snapshot (the download did not "
                                     "finish?): run `huggingface-cli download` again", dir);
        if (n > 1)
            return md_error_set(err, "%s: Hugging Face cache folder with %d snapshots and no refs/main: name one "
                                     "of %s/snapshots/<sha> instead", dir, n, dir);
    }
    if ((size_t)snprintf(out, out_len, "%s/snapshots/%s", dir, sha) >= out_len)
        return md_error_set(err, "%s: path too long", dir);
    if (!is_dir(out))
        return md_error_set(err, "%s: refs/main names snapshot %s, which is not in snapshots/ (partial download?): "
                                 "run `huggingface-cli download` again or name a folder under %s/snapshots",
                            dir, sha, dir);
    return MD_OK;
}
