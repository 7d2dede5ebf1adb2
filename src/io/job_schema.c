/* job_schema.c — resolved key values (md_params) and the schema table
 * printer (see include/mechdiff/schema.h). */
#include "mechdiff/schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const md_value *md_params_find(const md_params *p, const char *name)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->v[i].key->name, name) == 0) return &p->v[i];
    return NULL;
}

/* The value of key `name` of type class `want` (a '|'-list of md_key_type
 * bits). Asking for a key the schema does not have, or for the wrong type, is
 * a programming error (a misspelt "max_pair" must not read as 0 = "all"): it
 * aborts with the key and the keys there are, so the first test that reaches
 * the lookup fails. */
static const md_value *must_find(const md_params *p, const char *name, unsigned want, const char *fn)
{
    const md_value *v = md_params_find(p, name);
    if (v && (want & (1u << v->key->type))) return v;
    fprintf(stderr, "mechdiff: internal error: %s(\"%s\"): %s; keys of this schema:", fn, name,
            v ? "wrong type of key" : "no such key");
    for (int i = 0; i < p->n; i++) fprintf(stderr, " %s", p->v[i].key->name);
    fputc('\n', stderr);
    abort();
}

#define BIT(t) (1u << (t))
#define STR_TYPES (BIT(MD_KEY_STRING) | BIT(MD_KEY_FILE) | BIT(MD_KEY_DIR))
#define LIST_TYPES (BIT(MD_KEY_STRLIST) | BIT(MD_KEY_MAP))

int64_t md_params_int(const md_params *p, const char *name)
{
    return must_find(p, name, BIT(MD_KEY_INT) | BIT(MD_KEY_BOOL), __func__)->i;
}

double md_params_float(const md_params *p, const char *name)
{
    return must_find(p, name, BIT(MD_KEY_FLOAT), __func__)->f;
}

int md_params_bool(const md_params *p, const char *name)
{
    return (int)must_find(p, name, BIT(MD_KEY_BOOL), __func__)->i;
}

const char *md_params_str(const md_params *p, const char *name)
{
    const md_value *v = must_find(p, name, STR_TYPES, __func__);
    return v->s ? v->s : "";
}

int md_params_count(const md_params *p, const char *name)
{
    return must_find(p, name, LIST_TYPES, __func__)->n;
}

const char *md_params_item(const md_params *p, const char *name, int i)
{
    const md_value *v = must_find(p, name, LIST_TYPES, __func__);
    return i >= 0 && i < v->n ? v->list[i] : NULL;
}

const char *md_params_map_val(const md_params *p, const char *name, int i)
{
    const md_value *v = must_find(p, name, BIT(MD_KEY_MAP), __func__);
    return v->vals && i >= 0 && i < v->n ? v->vals[i] : NULL;
}

const char *md_params_map_get(const md_params *p, const char *name, const char *k)
{
    return md_value_map_get(must_find(p, name, BIT(MD_KEY_MAP), __func__), k);
}

const char *md_value_map_get(const md_value *map, const char *k)
{
    if (!map->vals) return NULL;
    for (int i = 0; i < map->n; i++)
        if (strcmp(map->list[i], k) == 0) return map->vals[i];
    return NULL;
}

void md_params_bind(const md_params *p, const md_opt_bind *bind, void *opts)
{
    const unsigned any = ~0u;
    for (const md_opt_bind *b = bind; b->key; b++) {
        const md_value *v = must_find(p, b->key, any, __func__);
        char *field = (char *)opts + b->offset;
        switch (v->key->type) {
        case MD_KEY_INT: memcpy(field, &v->i, sizeof v->i); break;
        case MD_KEY_FLOAT: memcpy(field, &v->f, sizeof v->f); break;
        case MD_KEY_BOOL: {
            int x = (int)v->i;
            memcpy(field, &x, sizeof x);
            break;
        }
        case MD_KEY_STRING: case MD_KEY_FILE: case MD_KEY_DIR: {
            const char *x = v->s ? v->s : "";
            memcpy(field, &x, sizeof x);
            break;
        }
        case MD_KEY_STRLIST: case MD_KEY_MAP: memcpy(field, &v, sizeof v); break;
        }
    }
}

void md_params_free(md_params *p)
{
    if (!p || !p->v) return;
    for (int i = 0; i < p->n; i++) {
        md_value *v = &p->v[i];
        free(v->s);
        for (int j = 0; j < v->n; j++) {
            free(v->list[j]);
            if (v->vals) free(v->vals[j]);
        }
        free(v->list);
        free(v->vals);
    }
    free(p->v);
    p->v = NULL;
    p->n = 0;
}

const char *md_key_type_name(md_key_type t)
{
    switch (t) {
    case MD_KEY_INT: return "int";
    case MD_KEY_FLOAT: return "float";
    case MD_KEY_BOOL: return "bool";
    case MD_KEY_STRING: return "string";
    case MD_KEY_STRLIST: return "list of strings";
    case MD_KEY_MAP: return "map";
    case MD_KEY_FILE: return "file";
    case MD_KEY_DIR: return "folder";
    }
    return "?";
}

void md_schema_print(const md_key *keys, const char *title, void *file)
{
    FILE *f = file;
    fprintf(f, "### %s\n\n| key | type | default | description |\n|---|---|---|---|\n", title);
    for (const md_key *k = keys; k->name; k++) {
        fprintf(f, "| `%s` | %s | `%s` | %s", k->name, md_key_type_name(k->type),
                k->def ? k->def : "(required)", k->doc ? k->doc : "");
        if (k->allowed) fprintf(f, " One of: `%s`.", k->allowed);
        if (k->min < k->max) fprintf(f, " Range [%g, %g].", k->min, k->max);
        fprintf(f, " |\n");
    }
    fprintf(f, "\n");
}
