/* tokcache.c — each folder's tokenizer loaded once per phase (see
 * include/mechdiff/tokcache.h). A job names a few model folders: a list
 * searched in order is all it needs. An entry is keyed by the folder's
 * identity (device and inode, md_fsutil_same_file), not its spelling. */
#include "mechdiff/tokcache.h"

#include <stdlib.h>
#include <sys/stat.h>

#include "mechdiff/fsutil.h"

typedef struct entry {
    struct stat folder; /* the folder's stat() when keyed */
    int keyed;          /* 0: the folder could not be stat'ed (the entry is only kept to be freed) */
    md_tokenizer *tok;  /* owned */
} entry;

struct md_tokcache {
    entry *e; /* [n] (owned) */
    int n;
};

int md_tokcache_create(md_tokcache **out, md_error *err)
{
    *out = calloc(1, sizeof **out);
    return *out ? MD_OK : md_error_set(err, "out of memory");
}

void md_tokcache_free(md_tokcache *c)
{
    if (!c) return;
    for (int i = 0; i < c->n; i++) md_tokenizer_free(c->e[i].tok);
    free(c->e);
    free(c);
}

int md_tokcache_acquire(md_tokcache *c, const char *dir, md_tokenizer **tok, md_error *err)
{
    *tok = NULL;
    if (!c) return md_tokenizer_load(tok, dir, err);
    struct stat folder;
    /* A folder that cannot be stat'ed is not looked up: the load reports it
     * (and were it to succeed after all, its entry matches nothing). */
    int keyed = stat(dir, &folder) == 0;
    for (int i = 0; keyed && i < c->n; i++)
        if (c->e[i].keyed && md_fsutil_same_file(&c->e[i].folder, &folder)) {
            *tok = c->e[i].tok;
            return MD_OK;
        }
    entry *grown = realloc(c->e, (size_t)(c->n + 1) * sizeof *grown);
    if (!grown) return md_error_set(err, "out of memory");
    c->e = grown;
    md_tokenizer *t = NULL;
    if (md_tokenizer_load(&t, dir, err) != MD_OK) return MD_ERR;
    c->e[c->n++] = (entry){.folder = keyed ? folder : (struct stat){0}, .keyed = keyed, .tok = t};
    *tok = t;
    return MD_OK;
}

void md_tokcache_release(md_tokcache *c, md_tokenizer *tok)
{
    if (!c) md_tokenizer_free(tok);
}
