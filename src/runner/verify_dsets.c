/* verify_dsets.c — `mechdiff verify`: the experiment groups and their
 * datasets against the kinds' outputs tables (experiment.h md_output):
 * type, rank, `units` and `description`, dimension scales, and the list
 * attributes that name an axis (see include/mechdiff/verify.h). */
#include <stdlib.h>
#include <string.h>

#include "runner/h5util.h"
#include "runner/verify_int.h"

/* Whether text matches template tpl, where each {name} stands for one or
 * more characters other than '/'. */
static int match_template(const char *tpl, const char *text)
{
    if (*tpl == '\0') return *text == '\0';
    if (*tpl == '{') {
        const char *close = strchr(tpl, '}');
        if (!close) return 0;
        for (const char *t = text; *t && *t != '/'; t++)
            if (match_template(close + 1, t + 1)) return 1;
        return 0;
    }
    return *tpl == *text && match_template(tpl + 1, text + 1);
}

static int dims_count(const char *dims)
{
    int n = dims && *dims ? 1 : 0;
    for (const char *p = dims; p && *p; p++) n += *p == ',';
    return n;
}

const md_output *md_verify_match_output(const md_kind *kind, const char *rel, md_h5type type, int rank)
{
    for (const md_output *o = kind ? kind->outputs : NULL; o && o->path; o++)
        if (o->type == type && dims_count(o->dims) == rank && match_template(o->path, rel)) return o;
    return NULL;
}

void md_verify_dim_name(const char *dims, int i, char *buf, size_t len)
{
    const char *p = dims;
    for (int k = 0; k < i && p; k++) p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL;
    size_t n = p ? strcspn(p, ",") : 0;
    snprintf(buf, len, "%.*s", (int)n, p ? p : "");
}

void md_verify_scales(md_vctx *v, hid_t d, const char *object, int rank, const int64_t *dims,
                      const char *const *names)
{
    for (int i = 0; i < rank; i++) {
        const char *dim = names && names[i] ? names[i] : "?";
        hid_t s = md_verify_open_scale(v, d, (unsigned)i, rank, object, dim);
        if (s < 0) continue;
        char *sname = md_h5_attr_read_str(s, "NAME"), label[128];
        md_verify_read_label(d, (unsigned)i, label, sizeof label);
        hid_t sp = H5Dget_space(s);
        hsize_t len = 0;
        int ok1d = H5Sget_simple_extent_ndims(sp) == 1 && H5Sget_simple_extent_dims(sp, &len, NULL) == 1;
        H5Sclose(sp);
        int is_scale = md_h5_is_scale(s), back = is_scale ? md_verify_lists_back(v, s, d, (unsigned)i) : 0;
        if (!is_scale)
            md_verify_defect(v, object, "dimension %d (%s): the attached dataset is not a dimension scale", i, dim);
        else if (back == 0)
            md_verify_defect(v, object, "dimension %d (%s): its scale '%s' does not list the dataset back "
                             "(REFERENCE_LIST)", i, dim, sname ? sname : "");
        else if (back < 0)
            md_verify_defect(v, object, "dimension %d (%s): its scale '%s' has a REFERENCE_LIST that cannot be read or "
                             "lists a dataset the file no longer has", i, dim, sname ? sname : "");
        if (!ok1d || (int64_t)len != dims[i])
            md_verify_defect(v, object, "dimension %d (%s) is %lld long, its scale '%s' %s%llu", i, dim,
                             (long long)dims[i], sname ? sname : "", ok1d ? "" : "is not 1-D: ", (unsigned long long)len);
        if (names && names[i] && strcmp(sname ? sname : "", names[i]) != 0)
            md_verify_defect(v, object, "dimension %d is labelled by the scale '%s', the kind names it '%s'", i,
                             sname ? sname : "", names[i]);
        if (names && names[i] && strcmp(label, names[i]) != 0)
            md_verify_defect(v, object, "dimension %d has the label '%s', not '%s'", i, label, names[i]);
        free(sname);
        H5Dclose(s);
    }
}

/* The scale of dimension i as text items (malloc'd array of malloc'd
 * strings, *n of them); NULL when it cannot be read. */
static char **scale_items(md_vctx *v, hid_t d, unsigned i, int rank, int64_t *n)
{
    hid_t s = md_verify_open_scale(v, d, i, rank, NULL, ""); /* md_verify_scales said what is wrong */
    if (s < 0) return NULL;
    hid_t sp = H5Dget_space(s), t = H5Dget_type(s);
    hsize_t len = 0;
    if (H5Sget_simple_extent_ndims(sp) != 1 || H5Sget_simple_extent_dims(sp, &len, NULL) != 1 ||
        len > (hsize_t)MD_PLAN_MAX_UNITS) { /* not 1-D, or longer than an axis can be: md_verify_scales says so */
        H5Tclose(t);
        H5Sclose(sp);
        H5Dclose(s);
        return NULL;
    }
    int is_str = H5Tget_class(t) == H5T_STRING;
    char **items = calloc(len ? len : 1, sizeof *items);
    void *raw = calloc(len ? len : 1, is_str ? sizeof(char *) : sizeof(int64_t));
    hid_t mt = is_str ? md_h5_str_type() : H5Tcopy(H5T_NATIVE_INT64);
    int ok = items && raw && H5Dread(s, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) >= 0;
    for (hsize_t k = 0; ok && k < len; k++) {
        char num[32];
        if (!is_str) snprintf(num, sizeof num, "%lld", (long long)((int64_t *)raw)[k]);
        const char *sv = is_str ? ((char **)raw)[k] : num;
        items[k] = strdup(sv ? sv : "");
    }
    if (ok && is_str) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, raw);
    H5Tclose(mt);
    H5Tclose(t);
    H5Sclose(sp);
    H5Dclose(s);
    free(raw);
    if (!ok) {
        free(items);
        return NULL;
    }
    *n = (int64_t)len;
    return items;
}

/* A list attribute that names the entries of dimension dim: `<dim>s`
 * (sets, layers, effects...), or `models` for a model-valued dimension. */
static int names_dim(const char *attr, const char *dim)
{
    size_t n = strlen(dim);
    if (strncmp(attr, dim, n) == 0 && strcmp(attr + n, "s") == 0) return 1;
    return strcmp(attr, "models") == 0 && (!strcmp(dim, "model") || !strcmp(dim, "model_b") ||
                                           !strcmp(dim, "source") || !strcmp(dim, "target"));
}

/* Whether text is items[0..n) joined by ',' (as the runner writes a list
 * attribute; a role or dataset name may itself hold a comma). */
static int joined_equal(const char *text, char *const *items, int64_t n)
{
    for (int64_t k = 0; k < n; k++) {
        size_t len = strlen(items[k]);
        if (strncmp(text, items[k], len) != 0) return 0;
        text += len;
        if (k + 1 < n && *text++ != ',') return 0;
    }
    return *text == '\0';
}

typedef struct axis_ctx {
    md_vctx *v;
    const md_vdset *ds;
} axis_ctx;

static herr_t axis_attr(hid_t d, const char *name, const H5A_info_t *info, void *arg)
{
    (void)info;
    axis_ctx *c = arg;
    if (!strcmp(name, "units") || !strcmp(name, "description") || !strcmp(name, "sha256")) return 0;
    char *val = md_h5_attr_read_str(d, name);
    for (int i = 0; val && i < c->ds->rank; i++) {
        char dim[64];
        md_verify_dim_name(c->ds->out->dims, i, dim, sizeof dim);
        if (!names_dim(name, dim)) continue;
        int64_t n = 0;
        char **items = scale_items(c->v, d, (unsigned)i, c->ds->rank, &n);
        if (items && n == c->ds->dims[i] && joined_equal(val, items, n)) { /* also when an entry holds a comma */
            for (int64_t j = 0; j < n; j++) free(items[j]);
            free(items);
            break;
        }
        int64_t count = 1, k = 0;
        for (const char *p = val; *p; p++) count += *p == ',';
        if (count != c->ds->dims[i])
            md_verify_defect(c->v, c->ds->path, "attribute '%s' lists %lld entries, dimension %d (%s) is %lld long", name,
                             (long long)count, i, dim, (long long)c->ds->dims[i]);
        for (char *tok = val, *next; items && count == n && tok; tok = next, k++) {
            next = strchr(tok, ',');
            if (next) *next++ = '\0';
            if (strcmp(tok, items[k]) != 0) {
                md_verify_defect(c->v, c->ds->path, "attribute '%s' entry %lld is '%s', the scale of %s holds '%s'",
                                 name, (long long)k, tok, dim, items[k]);
                break;
            }
        }
        for (int64_t j = 0; items && j < n; j++) free(items[j]);
        free(items);
        break;
    }
    free(val);
    return 0;
}

/* A result dataset: its table entry, attributes, scales, list attributes. */
static void check_result(md_vctx *v, hid_t d, md_vdset *ds, const char *rel)
{
    ds->out = md_verify_match_output(ds->kind, rel, ds->type, ds->rank);
    if (!ds->out) {
        md_verify_defect(v, ds->path, "%s of rank %d is not a dataset kind '%s' writes (its outputs table: jobs/README.md)",
                         md_h5type_name(ds->type), ds->rank, ds->kind->name);
        return;
    }
    if (md_verify_attr(v, d, ds->path, "units", H5T_STRING, 1) == 1) {
        char *u = md_h5_attr_read_str(d, "units");
        const char *want = ds->out->units ? ds->out->units : "";
        if (u && strcmp(u, want) != 0)
            md_verify_defect(v, ds->path, "attribute 'units' is '%s', kind '%s' writes '%s'", u, ds->kind->name, want);
        free(u);
    }
    if (md_verify_attr(v, d, ds->path, "description", H5T_STRING, 1) == 1) {
        char *desc = md_h5_attr_read_str(d, "description");
        if (desc && !desc[0]) md_verify_defect(v, ds->path, "attribute 'description' is empty");
        free(desc);
    }
    md_verify_attr(v, d, ds->path, "sha256", H5T_STRING, 0);
    char names[MD_MAX_DIMS][64];
    const char *ptrs[MD_MAX_DIMS];
    for (int i = 0; i < ds->rank; i++) {
        md_verify_dim_name(ds->out->dims, i, names[i], sizeof names[i]);
        ptrs[i] = names[i];
    }
    md_verify_scales(v, d, ds->path, ds->rank, ds->dims, ptrs);
    axis_ctx c = {v, ds};
    hsize_t idx = 0;
    H5Aiterate2(d, H5_INDEX_NAME, H5_ITER_INC, &idx, axis_attr, &c);
}

typedef struct exp_walk {
    md_vctx *v;
    const char *exp;
    const md_kind *kind;
} exp_walk;

/* A `<source>-><target>` group carries those two names as attributes. */
static void check_pair_group(md_vctx *v, hid_t g, const char *object, const char *name)
{
    const char *arrow = strstr(name, "->");
    if (!arrow) return;
    char *src = md_h5_attr_read_str(g, "source"), *tgt = md_h5_attr_read_str(g, "target");
    if (!src || !tgt) md_verify_defect(v, object, "a <source>-><target> group without its attributes 'source' and 'target'");
    else if (strlen(src) != (size_t)(arrow - name) || strncmp(name, src, strlen(src)) != 0 || strcmp(arrow + 2, tgt) != 0)
        md_verify_defect(v, object, "attributes source '%s' and target '%s' do not match the group's name", src, tgt);
    free(src);
    free(tgt);
}

static herr_t exp_object(hid_t g, const char *name, const H5O_info_t *info, void *arg)
{
    exp_walk *w = arg;
    md_vctx *v = w->v;
    if (!strcmp(name, ".")) return 0;
    char full[MD_PATH_MAX + 160];
    snprintf(full, sizeof full, "/%s/%s", w->exp, name);
    if (info->type == H5O_TYPE_GROUP) {
        hid_t sub = H5Gopen2(g, name, H5P_DEFAULT);
        const char *base = strrchr(name, '/');
        if (sub >= 0) check_pair_group(v, sub, full, base ? base + 1 : name);
        if (sub >= 0) H5Gclose(sub);
        return 0;
    }
    if (info->type != H5O_TYPE_DATASET) {
        md_verify_defect(v, full, "neither a group nor a dataset");
        return 0;
    }
    md_vdset ds = {.kind = w->kind};
    snprintf(ds.path, sizeof ds.path, "%s", full);
    snprintf(ds.exp, sizeof ds.exp, "%s", w->exp);
    int got = md_h5_dataset_shape(v->file, full, &ds.rank, ds.dims, &ds.type);
    if (got != 1) {
        md_verify_defect(v, full, got < 0 ? "more than %d dimensions" : "a type mechdiff does not write", MD_MAX_DIMS);
        return 0;
    }
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    if (md_h5_is_scale(d)) { /* a dimension scale: checked through the datasets it labels */
        if (ds.rank != 1) md_verify_defect(v, full, "a dimension scale of rank %d, not 1", ds.rank);
        H5Dclose(d);
        return 0;
    }
    v->res->datasets++;
    if (w->kind) check_result(v, d, &ds, name);
    H5Dclose(d);
    if (v->n_dsets == v->cap_dsets) {
        int cap = v->cap_dsets ? 2 * v->cap_dsets : 64;
        md_vdset *grown = realloc(v->dsets, (size_t)cap * sizeof *grown);
        if (!grown) return -1;
        v->dsets = grown;
        v->cap_dsets = cap;
    }
    v->dsets[v->n_dsets++] = ds;
    return 0;
}

static herr_t top_child(hid_t f, const char *name, const H5L_info_t *info, void *arg)
{
    (void)info;
    md_vctx *v = arg;
    if (!strcmp(name, "provenance") || !strcmp(name, "completion")) return 0;
    char object[300];
    snprintf(object, sizeof object, "/%s", name);
    H5O_info_t oi;
    if (H5Oget_info_by_name2(f, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_GROUP) {
        md_verify_defect(v, object, "not an experiment group (the top level holds groups only)");
        return 0;
    }
    hid_t g = H5Gopen2(f, name, H5P_DEFAULT);
    exp_walk w = {v, name, NULL};
    if (md_verify_attr(v, g, object, "kind", H5T_STRING, 1) == 1) {
        char *kind = md_h5_attr_read_str(g, "kind");
        w.kind = kind ? md_kind_find(kind) : NULL;
        if (!w.kind) md_verify_defect(v, object, "attribute 'kind' is '%s', not a kind this mechdiff knows", kind ? kind : "");
        free(kind);
    }
    char comp[320];
    snprintf(comp, sizeof comp, "/completion/%s", name);
    if (!md_h5_exists(v->file, comp)) md_verify_defect(v, object, "an experiment group without %s", comp);
    H5Ovisit2(g, H5_INDEX_NAME, H5_ITER_INC, exp_object, &w, H5O_INFO_BASIC);
    H5Gclose(g);
    return 0;
}

void md_verify_experiments(md_vctx *v)
{
    H5Literate(v->file, H5_INDEX_NAME, H5_ITER_INC, NULL, top_child, v);
}
