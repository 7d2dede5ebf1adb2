/* plan_axis.c — the named axes of a plan (see md_plan_axis in
 * include/mechdiff/experiment.h and md_axis in include/mechdiff/plan.h):
 * declared by a kind's plan, looked up by md_plan_output (sizes) and by the
 * writer (dimension scales, src/runner/h5scale.c). The plan owns them. */
#include "mechdiff/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void md_plan_axes_free(md_plan *p)
{
    for (int i = 0; i < p->n_axes; i++) {
        for (int64_t k = 0; p->axes[i].labels && k < p->axes[i].n; k++) free(p->axes[i].labels[k]);
        free(p->axes[i].labels);
        free(p->axes[i].values);
    }
    free(p->axes);
    p->axes = NULL;
    p->n_axes = 0;
}

/* A new, empty axis (name, scope, size) at the end of p->axes. */
static md_axis *axis_new(md_plan *p, const char *scope, const char *name, int64_t n, const char *description,
                         md_error *err)
{
    if (!name || !name[0] || strlen(name) >= sizeof p->axes[0].name || strlen(scope) >= MD_PATH_MAX) {
        md_error_set(err, "plan: axis '%s' (scope '%s'): bad name", name ? name : "", scope);
        return NULL;
    }
    if (n < 1 || n > MD_PLAN_MAX_UNITS) {
        md_error_set(err, "plan: axis '%s' has %lld entries", name, (long long)n);
        return NULL;
    }
    for (int i = 0; i < p->n_axes; i++)
        if (!strcmp(p->axes[i].name, name) && !strcmp(p->axes[i].scope, scope)) {
            md_error_set(err, "plan: axis '%s' declared twice in scope '%s'", name, scope);
            return NULL;
        }
    md_axis *grown = realloc(p->axes, (size_t)(p->n_axes + 1) * sizeof *grown);
    if (!grown) {
        md_error_set(err, "plan: out of memory");
        return NULL;
    }
    p->axes = grown;
    md_axis *a = &p->axes[p->n_axes++];
    memset(a, 0, sizeof *a);
    snprintf(a->scope, sizeof a->scope, "%s", scope);
    snprintf(a->name, sizeof a->name, "%s", name);
    snprintf(a->description, sizeof a->description, "%s", description ? description : "");
    a->n = n;
    return a;
}

int md_plan_axis(md_plan *p, const char *scope, const char *name, const char *const *labels, int64_t n,
                 const char *description, md_error *err)
{
    md_axis *a = axis_new(p, scope, name, n, description && description[0] ? description : "names along this dimension",
                          err);
    if (!a) return MD_ERR;
    a->labels = calloc((size_t)n, sizeof *a->labels);
    for (int64_t k = 0; a->labels && k < n; k++)
        if (!(a->labels[k] = strdup(labels[k] ? labels[k] : ""))) break;
    if (!a->labels || !a->labels[n - 1]) return md_error_set(err, "plan: out of memory (axis '%s')", name);
    return MD_OK;
}

int md_plan_axis_csv(md_plan *p, const char *scope, const char *name, const char *csv, const char *description,
                     md_error *err)
{
    char *copy = strdup(csv ? csv : "");
    int64_t n = 1;
    for (const char *c = copy; c && *c; c++) n += *c == ',';
    const char **items = copy ? malloc((size_t)n * sizeof *items) : NULL;
    if (!items) {
        free(copy);
        return md_error_set(err, "plan: out of memory (axis '%s')", name);
    }
    int64_t k = 0;
    items[k++] = copy;
    for (char *c = copy; *c; c++)
        if (*c == ',') {
            *c = '\0';
            items[k++] = c + 1;
        }
    int rc = md_plan_axis(p, scope, name, items, n, description, err);
    free(items);
    free(copy);
    return rc;
}

int md_plan_axis_size(md_plan *p, const char *scope, const char *name, int64_t n, md_error *err)
{
    /* no labels, no values: the writer stores 0..n-1, as for a dimension without an axis */
    return axis_new(p, scope, name, n, "index along this dimension", err) ? MD_OK : MD_ERR;
}

int md_plan_axis_values(md_plan *p, const char *scope, const char *name, const int64_t *values, int64_t n,
                        const char *description, md_error *err)
{
    md_axis *a = axis_new(p, scope, name, n, description && description[0] ? description : "value along this dimension",
                          err);
    if (!a) return MD_ERR;
    if (!(a->values = malloc((size_t)n * sizeof *a->values))) return md_error_set(err, "plan: out of memory");
    memcpy(a->values, values, (size_t)n * sizeof *a->values);
    return MD_OK;
}

/* 1 when scope holds path: "" holds everything, "a/b" holds the dataset
 * "a/b" itself and everything under it ("a/b/..."). */
static int scope_holds(const char *scope, const char *path)
{
    size_t n = strlen(scope);
    return n == 0 || (strncmp(scope, path, n) == 0 && (path[n] == '/' || path[n] == '\0'));
}

const md_axis *md_plan_axis_find(const md_plan *p, const char *path, const char *dim)
{
    const md_axis *best = NULL;
    for (int i = 0; p && i < p->n_axes; i++) {
        const md_axis *a = &p->axes[i];
        if (strcmp(a->name, dim) || !scope_holds(a->scope, path)) continue;
        if (!best || strlen(a->scope) > strlen(best->scope)) best = a;
    }
    return best;
}
