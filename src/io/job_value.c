/* job_value.c — one key of a job file: a YAML node checked against its
 * md_key into an md_value (scalar types and ranges, allowed values, lists,
 * maps, paths resolved against the job's folder, Hugging Face cache folders
 * resolved to their snapshot, files and folders that must exist), and the
 * parse context's error list and node helpers that job.c shares (see
 * src/io/job_value.h). */
#include "io/job_value.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "mechdiff/hub.h"

void md_job_add_error(md_job_pctx *pc, const yaml_node_t *at, const char *fmt, ...)
{
    char line[768];
    va_list ap;
    pc->n_errors++; /* also when the message no longer fits */
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    size_t used = strlen(pc->err->msg);
    if (used + 2 >= sizeof pc->err->msg) return;
    snprintf(pc->err->msg + used, sizeof pc->err->msg - used, "%s%s:%d:%d: %s", used ? "\n" : "",
             pc->source, at ? (int)at->start_mark.line + 1 : 1, at ? (int)at->start_mark.column + 1 : 1,
             line);
}

yaml_node_t *md_job_node_at(md_job_pctx *pc, int index)
{
    return yaml_document_get_node(&pc->doc, index);
}

const char *md_job_node_text(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : "";
}

const char *md_job_node_kind(const yaml_node_t *n)
{
    if (n->type == YAML_SEQUENCE_NODE) return "a list";
    if (n->type == YAML_MAPPING_NODE) return "a map";
    return "a scalar";
}

/* Shows what was found, for "expected X, got Y". */
void md_job_node_describe(const yaml_node_t *n, char *buf, size_t len)
{
    if (n->type == YAML_SCALAR_NODE)
        snprintf(buf, len, "'%.200s'", md_job_node_text(n));
    else
        snprintf(buf, len, "%s", md_job_node_kind(n));
}

/* dir/rel, or rel when absolute; canonicalised when it exists. Returns malloc'd. */
char *md_job_resolve_path(const char *dir, const char *rel)
{
    char joined[PATH_MAX];
    if (rel[0] == '/' || !dir || !dir[0])
        snprintf(joined, sizeof joined, "%s", rel);
    else
        snprintf(joined, sizeof joined, "%s/%s", dir, rel);
    char canon[PATH_MAX];
    if (realpath(joined, canon)) return strdup(canon);
    return strdup(joined);
}

/* When paths are checked: path must exist as a file (MD_KEY_FILE) or a
 * folder (MD_KEY_DIR). A missing dataset file is kept in pc->missing for
 * job.c to report once with the experiments that use it. */
static int check_path(md_job_pctx *pc, const yaml_node_t *at, const char *key, const char *path,
                      md_key_type type)
{
    if (!pc->check_paths || (type != MD_KEY_FILE && type != MD_KEY_DIR)) return MD_OK;
    struct stat st;
    pc->n_path_errors++; /* undone below when the path is fine */
    if (stat(path, &st) != 0 && pc->dataset && pc->n_missing < (int)(sizeof pc->missing / sizeof pc->missing[0])) {
        pc->missing[pc->n_missing].at = at;
        pc->missing[pc->n_missing++].name = pc->dataset;
        pc->n_errors++;
        return MD_ERR;
    }
    if (stat(path, &st) != 0) {
        md_job_add_error(pc, at,
                         "key '%s': %s '%s' does not exist (relative paths are relative to the job file's folder)",
                         key, type == MD_KEY_DIR ? "folder" : "file", path);
        return MD_ERR;
    }
    if (type == MD_KEY_DIR && !S_ISDIR(st.st_mode)) {
        md_job_add_error(pc, at, "key '%s': expected a folder, got file '%s' (give the folder that holds it)", key,
                         path);
        return MD_ERR;
    }
    if (type == MD_KEY_FILE && S_ISDIR(st.st_mode)) {
        md_job_add_error(pc, at, "key '%s': expected a file, got folder '%s'", key, path);
        return MD_ERR;
    }
    pc->n_path_errors--;
    return MD_OK;
}

/* A Hugging Face cache repo folder (models--org--name) becomes the snapshot
 * refs/main names (hub.h); the job keeps that path, so provenance records
 * which snapshot ran. Takes and returns ownership of path. */
static char *resolve_hub(md_job_pctx *pc, const yaml_node_t *at, const char *key, char *path)
{
    char snap[PATH_MAX];
    md_error e;
    if (md_hub_resolve_dir(path, snap, sizeof snap, &e) != MD_OK) {
        md_job_add_error(pc, at, "key '%s': %s", key, e.msg);
        return path;
    }
    if (strcmp(snap, path) == 0) return path;
    char *s = strdup(snap);
    if (!s) return path;
    free(path);
    return s;
}

static int parse_bool_text(const char *s, int64_t *out)
{
    static const char *yes[] = {"true", "yes", "on"}, *no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0) { *out = 1; return MD_OK; }
        if (strcasecmp(s, no[i]) == 0) { *out = 0; return MD_OK; }
    }
    return MD_ERR;
}

static int allowed_has(const char *allowed, const char *s)
{
    size_t n = strlen(s);
    for (const char *p = allowed; p && *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, s, n) == 0) return 1;
        p = bar ? bar + 1 : NULL;
    }
    return 0;
}

/* Converts scalar text to a scalar-typed value. Returns MD_ERR (message in
 * why) when the text is not of the key's type or out of range. */
static int scalar_value(const md_key *k, const char *text, md_value *v, char *why, size_t len)
{
    char *end = NULL;
    errno = 0;
    switch (k->type) {
    case MD_KEY_INT:
        v->i = strtoll(text, &end, 10);
        if (!text[0] || *end || errno) { snprintf(why, len, "expected int"); return MD_ERR; }
        if (k->min < k->max && ((double)v->i < k->min || (double)v->i > k->max)) {
            snprintf(why, len, "expected int in [%.17g, %.17g]", k->min, k->max);
            return MD_ERR;
        }
        return MD_OK;
    case MD_KEY_FLOAT:
        v->f = strtod(text, &end);
        if (!text[0] || *end || errno) { snprintf(why, len, "expected float"); return MD_ERR; }
        if (k->min < k->max && (v->f < k->min || v->f > k->max)) {
            snprintf(why, len, "expected float in [%g, %g]", k->min, k->max);
            return MD_ERR;
        }
        return MD_OK;
    case MD_KEY_BOOL:
        if (parse_bool_text(text, &v->i) != MD_OK) { snprintf(why, len, "expected bool (true/false)"); return MD_ERR; }
        return MD_OK;
    case MD_KEY_STRING:
    case MD_KEY_FILE:
    case MD_KEY_DIR:
        if (k->allowed && !allowed_has(k->allowed, text)) {
            snprintf(why, len, "expected one of %s", k->allowed);
            return MD_ERR;
        }
        v->s = strdup(text);
        return v->s ? MD_OK : (snprintf(why, len, "out of memory"), MD_ERR);
    default:
        snprintf(why, len, "expected %s", md_key_type_name(k->type));
        return MD_ERR;
    }
}

/* Appends a copy of key (and of val, for a map) to v's lists. */
static int push_item(md_value *v, const char *key, const char *val)
{
    char **l = realloc(v->list, (size_t)(v->n + 1) * sizeof *l);
    if (!l) return MD_ERR;
    v->list = l;
    if (val) {
        char **vs = realloc(v->vals, (size_t)(v->n + 1) * sizeof *vs);
        if (!vs) return MD_ERR;
        v->vals = vs;
    }
    char *kc = strdup(key), *vc = val ? strdup(val) : NULL;
    if (!kc || (val && !vc)) {
        free(kc);
        free(vc);
        return MD_ERR;
    }
    l[v->n] = kc;
    if (val) v->vals[v->n] = vc;
    v->n++;
    return MD_OK;
}

/* The default of a key (schema text). Lists: comma-separated; maps: empty. */
int md_job_default_value(const md_key *k, md_value *v)
{
    char why[128];
    if (k->type == MD_KEY_STRLIST) {
        for (const char *p = k->def; p && *p;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            char item[256];
            snprintf(item, sizeof item, "%.*s", (int)len, p);
            if (push_item(v, item, NULL) != MD_OK) return MD_ERR;
            p = comma ? comma + 1 : NULL;
        }
        return MD_OK;
    }
    if (k->type == MD_KEY_MAP) return MD_OK;
    if ((k->type == MD_KEY_STRING || k->type == MD_KEY_FILE || k->type == MD_KEY_DIR) && !k->def[0]) {
        v->s = strdup("");
        return v->s ? MD_OK : MD_ERR;
    }
    return scalar_value(k, k->def, v, why, sizeof why);
}

/* A list of strings (a lone scalar: a list of one). */
static void list_value(md_job_pctx *pc, const md_key *k, yaml_node_t *n, md_value *v)
{
    if (n->type == YAML_SCALAR_NODE) {
        if (push_item(v, md_job_node_text(n), NULL) != MD_OK)
            md_job_add_error(pc, n, "key '%s': out of memory", k->name);
        return;
    }
    if (n->type != YAML_SEQUENCE_NODE) {
        md_job_add_error(pc, n, "key '%s': expected a list of strings, got %s", k->name, md_job_node_kind(n));
        return;
    }
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        yaml_node_t *item = md_job_node_at(pc, *it);
        if (item->type != YAML_SCALAR_NODE) {
            md_job_add_error(pc, item, "key '%s': expected a list of strings, got %s in the list", k->name,
                             md_job_node_kind(item));
            continue;
        }
        if (push_item(v, md_job_node_text(item), NULL) != MD_OK)
            md_job_add_error(pc, item, "key '%s': out of memory", k->name);
    }
}

/* One name -> value pair of a map; names of files and folders become HDF5
 * group names, their values paths (resolved, checked). */
static void map_item(md_job_pctx *pc, const md_key *k, yaml_node_t *kn, yaml_node_t *vn, md_value *v)
{
    const char *name = md_job_node_text(kn);
    if (md_params_map_get(&(md_params){.v = v, .n = 1}, k->name, name)) {
        md_job_add_error(pc, kn, "key '%s': '%s' given twice", k->name, name);
        return;
    }
    if ((k->item == MD_KEY_FILE || k->item == MD_KEY_DIR) &&
        (!name[0] || strchr(name, '/') || strcmp(name, ".") == 0 || (k->item == MD_KEY_DIR && strstr(name, "->")))) {
        md_job_add_error(pc, kn,
                         "key '%s': the name '%s' becomes an HDF5 group name in the results file (a role also "
                         "in '<source>-><target>'): give one that is not empty or '.' and has no '/'%s",
                         k->name, name, k->item == MD_KEY_DIR ? " or '->'" : "");
        return;
    }
    char full[300];
    snprintf(full, sizeof full, "%s.%s", k->name, name);
    if (k->item == MD_KEY_FILE || k->item == MD_KEY_DIR) {
        char *path = md_job_resolve_path(pc->dir, md_job_node_text(vn));
        if (path && k->item == MD_KEY_DIR && pc->check_paths) path = resolve_hub(pc, vn, full, path);
        pc->dataset = strcmp(k->name, "datasets") == 0 ? name : NULL;
        if (path) check_path(pc, vn, full, path, k->item);
        pc->dataset = NULL;
        if (push_item(v, name, path ? path : "") != MD_OK) md_job_add_error(pc, kn, "key '%s': out of memory", full);
        free(path);
    } else if (push_item(v, name, md_job_node_text(vn)) != MD_OK) {
        md_job_add_error(pc, kn, "key '%s': out of memory", full);
    }
}

/* A map of scalars (`key:` with nothing: empty). */
static void map_value(md_job_pctx *pc, const md_key *k, yaml_node_t *n, md_value *v)
{
    if (n->type == YAML_SCALAR_NODE && !md_job_node_text(n)[0]) return;
    if (n->type != YAML_MAPPING_NODE) {
        md_job_add_error(pc, n, "key '%s': expected a map, got %s", k->name, md_job_node_kind(n));
        return;
    }
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
        yaml_node_t *kn = md_job_node_at(pc, pr->key), *vn = md_job_node_at(pc, pr->value);
        if (kn->type != YAML_SCALAR_NODE || vn->type != YAML_SCALAR_NODE) {
            md_job_add_error(pc, vn, "key '%s': expected a map of scalars, got %s", k->name, md_job_node_kind(vn));
            continue;
        }
        map_item(pc, k, kn, vn, v);
    }
}

void md_job_parse_value(md_job_pctx *pc, const md_key *k, yaml_node_t *n, md_value *v)
{
    char why[160], got[256];
    v->line = (int)n->start_mark.line + 1;
    v->col = (int)n->start_mark.column + 1;
    if (k->type == MD_KEY_STRLIST) {
        list_value(pc, k, n, v);
        return;
    }
    if (k->type == MD_KEY_MAP) {
        map_value(pc, k, n, v);
        return;
    }
    if (n->type != YAML_SCALAR_NODE) {
        md_job_add_error(pc, n, "key '%s': expected %s, got %s", k->name, md_key_type_name(k->type),
                         md_job_node_kind(n));
        return;
    }
    if (scalar_value(k, md_job_node_text(n), v, why, sizeof why) != MD_OK) {
        md_job_node_describe(n, got, sizeof got);
        md_job_add_error(pc, n, "key '%s': %s, got %s", k->name, why, got);
        return;
    }
    if (k->type == MD_KEY_FILE || k->type == MD_KEY_DIR) {
        char *path = md_job_resolve_path(pc->dir, v->s);
        if (!path) return;
        free(v->s);
        v->s = path;
        check_path(pc, n, k->name, path, k->type);
    }
}
