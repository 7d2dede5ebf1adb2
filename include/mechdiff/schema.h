/* schema.h — typed keys of a YAML mapping (top level, runtime, one experiment
 * kind) and the resolved values they produce.
 *
 * A schema is a static array of md_key terminated by {0} (write the entries
 * with designated initializers). A NULL def means the key is required. Every key has a
 * default (written as YAML text, so the documented default is exactly what the
 * parser sees), a one-line doc and, for strings, an optional list of allowed
 * values. md_params holds the resolved values (defaults filled in) with the
 * line/column where each came from (0 when defaulted).
 * Ownership: md_params owns every string in it; md_params_free releases them. */
#ifndef MECHDIFF_SCHEMA_H
#define MECHDIFF_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include "mechdiff/error.h"

typedef enum md_key_type {
    MD_KEY_INT = 0,     /* 64-bit integer */
    MD_KEY_FLOAT,       /* double */
    MD_KEY_BOOL,        /* true/false */
    MD_KEY_STRING,      /* any scalar text */
    MD_KEY_STRLIST,     /* sequence of scalars (a single scalar is a list of one) */
    MD_KEY_MAP,         /* mapping of scalar -> scalar (e.g. role -> folder) */
    MD_KEY_FILE,        /* string, a path to an existing file (resolved) */
    MD_KEY_DIR          /* string, a path to an existing folder (resolved) */
} md_key_type;

typedef struct md_key {
    const char *name;
    md_key_type type;
    const char *def;      /* default as YAML text ("" = empty string/list/map) */
    const char *doc;      /* one line, shown by `mechdiff validate --keys` */
    const char *allowed;  /* "a|b|c" for strings; NULL = anything */
    double min, max;      /* numeric range when min < max */
    md_key_type item;     /* MAP only: MD_KEY_FILE / MD_KEY_DIR = values are
                             paths that must exist; anything else = text */
} md_key;

typedef struct md_value {
    const md_key *key;
    int line, col;        /* where it was set in the job file; 0 = default */
    int64_t i;            /* INT, BOOL */
    double f;             /* FLOAT */
    char *s;              /* STRING, FILE, DIR (owned) */
    char **list;          /* STRLIST items; MAP keys (owned) */
    char **vals;          /* MAP values (owned) */
    int n;                /* STRLIST/MAP length */
} md_value;

typedef struct md_params {
    md_value *v;          /* one per schema key, schema order (owned) */
    int n;
} md_params;

/* Lookup of a resolved key. md_params_find returns NULL for a name the
 * schema lacks. The typed getters treat a missing name or a key of another
 * type as a programming error: they abort naming the key (a misspelt
 * "max_pair" must not read as 0; tests/unit/test_params.c). int reads INT and
 * BOOL keys, str STRING/FILE/DIR, count/item STRLIST/MAP, map_* MAP. */
const md_value *md_params_find(const md_params *p, const char *name);
int64_t md_params_int(const md_params *p, const char *name);
double md_params_float(const md_params *p, const char *name);
int md_params_bool(const md_params *p, const char *name);
const char *md_params_str(const md_params *p, const char *name);
/* STRLIST/MAP: number of items and item i (MAP: key; md_params_map_val: value). */
int md_params_count(const md_params *p, const char *name);
const char *md_params_item(const md_params *p, const char *name, int i);
const char *md_params_map_val(const md_params *p, const char *name, int i);
/* MAP value for key k, or NULL. */
const char *md_params_map_get(const md_params *p, const char *name, const char *k);
/* The same on a bound MAP option (md_params_bind's const md_value *). */
const char *md_value_map_get(const md_value *map, const char *k);

void md_params_free(md_params *p);

/* Typed options: a kind's options struct is filled from its keys once
 * (md_params_bind), through a table of {key, offsetof(struct, field)}
 * terminated by {0}. The field's C type follows the key's type: INT int64_t,
 * FLOAT double, BOOL int, STRING/FILE/DIR const char * (points into p),
 * STRLIST/MAP const md_value * (points into p). A binding of a key the
 * schema lacks aborts (as the getters); tests/unit/test_params.c checks
 * that each kind binds every key of its schema exactly once. */
typedef struct md_opt_bind {
    const char *key;
    size_t offset;
} md_opt_bind;

void md_params_bind(const md_params *p, const md_opt_bind *bind, void *opts);

/* "int", "float", "bool", "string", "list of strings", "map", "file", "folder". */
const char *md_key_type_name(md_key_type t);

/* Writes the schema as a Markdown table (jobs/README.md is generated from it). */
void md_schema_print(const md_key *keys, const char *title, void *file /* FILE* */);

#endif
