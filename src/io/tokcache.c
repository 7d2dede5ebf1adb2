/* tokcache.c — each folder's tokenizer loaded once per phase (see
 * include/mechdiff/tokcache.h). A job names a few model folders: a list
 * searched in order is all it needs. */
#include "mechdiff/tokcache.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char *dir;         /* owned */
    md_tokenizer *tok; /* owned */
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
    for (int i = 0; i < c->n; i++) free(c->e[i].dir), md_tokenizer_free(c->e[i].tok);
    free(c->e);
    free(c);
}

int md_tokcache_acquire(md_tokcache *c, const char *dir, md_tokenizer **tok, md_error *err)
{
    *tok = NULL;
    if (!c) return md_tokenizer_load(tok, dir, err);
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->e[i].dir, dir) == 0) {
            *tok = c->e[i].tok;
            return MD_OK;
        }
    entry *grown = realloc(c->e, (size_t)(c->n + 1) * sizeof *grown);
    if (!grown) return md_error_set(err, "out of memory");
    c->e = grown;
    char *name = strdup(dir);
    if (!name) return md_error_set(err, "out of memory");
    md_tokenizer *t = NULL;
    if (md_tokenizer_load(&t, dir, err) != MD_OK) {
        free(name);
        return MD_ERR;
    }
    c->e[c->n++] = (entry){.dir = name, .tok = t};
    *tok = t;
    return MD_OK;
}

void md_tokcache_release(md_tokcache *c, md_tokenizer *tok)
{
    if (!c) md_tokenizer_free(tok);
}
