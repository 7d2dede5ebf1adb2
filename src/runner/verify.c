/* verify.c — `mechdiff verify` (see include/mechdiff/verify.h): opens the
 * file, checks the root and /provenance attributes, the run segments and
 * /completion, then calls the dataset (verify_dsets.c) and value
 * (verify_values.c) checks, and says what is incomplete. */
#include "mechdiff/verify.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#include "mechdiff/h5out.h"
#include "mechdiff/job.h"
#include "runner/h5declared.h"
#include "runner/h5util.h"
#include "runner/verify_int.h"

void md_verify_defect(md_vctx *v, const char *object, const char *fmt, ...)
{
    v->res->defects++;
    if (v->printed++ >= MD_VERIFY_MAX_LINES) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    md_h5_one_line(msg); /* whatever text of the file it quotes */
    fprintf(v->out, "%s: %s: %s\n", v->path, object, msg);
}

int md_verify_attr(md_vctx *v, hid_t obj, const char *object, const char *name, H5T_class_t want, int required)
{
    char what[96];
    int ok = md_h5_attr_check(obj, name, want, what, sizeof what);
    const char *cls = want == H5T_STRING ? "string" : want == H5T_INTEGER ? "integer" : "number";
    if (ok < 0) md_verify_defect(v, object, "attribute '%s' holds %s, not one %s", name, what, cls);
    if (ok == 0 && required) md_verify_defect(v, object, "attribute '%s' is missing", name);
    return ok;
}

/* The attributes every run writes on / and /provenance (h5out.c). */
static void check_root(md_vctx *v)
{
    static const char *const root_str[] = {"title", "mechdiff_version", "job_name", "job_sha256", "provenance"};
    static const char *const prov_str[] = {"job_yaml", "job_sha256", "job_sha256_covers", "mechdiff_version",
                                           "git_revision", "created", "start_time", "end_time", "hostname"};
    static const char *const prov_int[] = {"generation", "finished", "part_index", "part_count", "world_size"};
    for (size_t i = 0; i < sizeof root_str / sizeof *root_str; i++)
        md_verify_attr(v, v->file, "/", root_str[i], H5T_STRING, 1);
    md_verify_attr(v, v->file, "/", "layout_version", H5T_INTEGER, 1);
    hid_t p = H5Gopen2(v->file, "/provenance", H5P_DEFAULT);
    for (size_t i = 0; i < sizeof prov_str / sizeof *prov_str; i++)
        md_verify_attr(v, p, "/provenance", prov_str[i], H5T_STRING, 1);
    for (size_t i = 0; i < sizeof prov_int / sizeof *prov_int; i++)
        md_verify_attr(v, p, "/provenance", prov_int[i], H5T_INTEGER, 1);
    /* layout-2 files written before 2026-12-07 08:00 have no defined_generation */
    md_verify_attr(v, p, "/provenance", "defined_generation", H5T_INTEGER, 0);
    v->finished = (int)md_h5_attr_read_i64(p, "finished", 0);
    v->part_count = (int)md_h5_attr_read_i64(p, "part_count", 0);
    int64_t part = md_h5_attr_read_i64(p, "part_index", -1);
    v->part_index = (int)part;
    if (v->finished != 0 && v->finished != 1)
        md_verify_defect(v, "/provenance", "attribute 'finished' is %d, not 0 or 1", v->finished);
    int whole = v->part_count == 0 && part == -1, a_part = v->part_count > 0 && part >= 0 && part < v->part_count;
    if (!whole && !a_part)
        md_verify_defect(v, "/provenance", "part_index %lld and part_count %d do not name a part (or -1 and 0: the "
                         "whole job)", (long long)part, v->part_count);
    char *root_sha = md_h5_attr_read_str(v->file, "job_sha256"), *prov_sha = md_h5_attr_read_str(p, "job_sha256");
    if (root_sha && prov_sha && strcmp(root_sha, prov_sha) != 0)
        md_verify_defect(v, "/", "attribute 'job_sha256' differs from /provenance's");
    free(root_sha);
    free(prov_sha);
    H5Gclose(p);
}

typedef struct walk {
    md_vctx *v;
    const char *parent;      /* path of the group being listed */
    int index;               /* children seen */
} walk;

/* /provenance/models/<role> and /provenance/datasets/<name>. */
static herr_t prov_child(hid_t g, const char *name, const H5L_info_t *info, void *arg)
{
    (void)info;
    walk *w = arg;
    char object[600];
    snprintf(object, sizeof object, "%s/%s", w->parent, name);
    hid_t c = H5Oopen(g, name, H5P_DEFAULT);
    H5O_info_t oi;
    if (c < 0 || H5Oget_info2(c, &oi, H5O_INFO_BASIC) < 0 || oi.type != H5O_TYPE_GROUP) {
        md_verify_defect(w->v, object, "not a group");
        if (c >= 0) H5Oclose(c);
        return 0;
    }
    int models = strcmp(w->parent, "/provenance/models") == 0;
    static const char *const model_attrs[] = {"path", "config_json", "weight_sha256", "weight_sha256_format"};
    static const char *const data_attrs[] = {"path", "sha256"};
    const char *const *names = models ? model_attrs : data_attrs;
    for (int i = 0; i < (models ? 4 : 2); i++) md_verify_attr(w->v, c, object, names[i], H5T_STRING, 1);
    H5Oclose(c);
    return 0;
}

/* A dataset of a segment's done_at_start/<experiment>/stage<k>: done flags. */
static herr_t done_copy(hid_t g, const char *name, const H5O_info_t *info, void *arg)
{
    walk *w = arg;
    if (info->type != H5O_TYPE_DATASET) return 0;
    char object[900];
    snprintf(object, sizeof object, "%s/done_at_start/%s", w->parent, name);
    md_error err;
    int64_t n = 0;
    uint8_t *flags = md_h5_read_flags(g, name, &n, &err);
    if (!flags) md_verify_defect(w->v, object, "not 1-D done flags of 0 and 1 (%s)", err.msg);
    free(flags);
    return 0;
}

/* One /provenance/segments/<k>: named 0000, 0001... in order, with the
 * attributes of a run segment (h5out.c write_segment, provenance.h). */
static herr_t segment(hid_t g, const char *name, const H5L_info_t *info, void *arg)
{
    (void)info;
    walk *w = arg;
    md_vctx *v = w->v;
    char object[600], want[16];
    snprintf(object, sizeof object, "/provenance/segments/%s", name);
    snprintf(want, sizeof want, "%04d", w->index++);
    if (strcmp(name, want) != 0) md_verify_defect(v, object, "segment %d is named '%s', not '%s'", w->index - 1, name, want);
    if (H5Lexists(g, name, H5P_DEFAULT) <= 0 || H5Oexists_by_name(g, name, H5P_DEFAULT) <= 0) return 0;
    hid_t s = H5Gopen2(g, name, H5P_DEFAULT);
    if (s < 0) {
        md_verify_defect(v, object, "not a group");
        return 0;
    }
    static const char *const strs[] = {"start_time", "end_time", "hostname", "exit", "git_revision"};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) md_verify_attr(v, s, object, strs[i], H5T_STRING, 1);
    if (md_verify_attr(v, s, object, "world_size", H5T_INTEGER, 1) == 1 && md_h5_attr_read_i64(s, "world_size", 0) < 1)
        md_verify_defect(v, object, "attribute 'world_size' is %lld, not >= 1",
                         (long long)md_h5_attr_read_i64(s, "world_size", 0));
    static const char *const exits[] = {"running", "finished", "part done", "stopped (signal)", "error", "recovered", "merged"};
    char *ex = md_h5_attr_read_str(s, "exit");
    int known = !ex;
    for (size_t i = 0; ex && i < sizeof exits / sizeof *exits; i++) known |= strcmp(ex, exits[i]) == 0;
    if (!known) md_verify_defect(v, object, "attribute 'exit' is '%s', not one a run writes", ex);
    char *t0 = md_h5_attr_read_str(s, "start_time"), *t1 = md_h5_attr_read_str(s, "end_time");
    if (t0 && t1 && strcmp(t0, t1) > 0) md_verify_defect(v, object, "end_time %s is before start_time %s", t1, t0);
    /* the numeric setup: all or none (segments of builds before it have none) */
    static const char *const num[] = {"numeric_setup", "backend", "weight_precision", "gemm_precision", "blas", "devices"};
    if (H5Aexists(s, num[0]) > 0)
        for (size_t i = 0; i < sizeof num / sizeof *num; i++) md_verify_attr(v, s, object, num[i], H5T_STRING, 1);
    if (H5Lexists(s, "done_at_start", H5P_DEFAULT) > 0) { /* a resume with --allow-mixed-numerics */
        hid_t dg = H5Gopen2(s, "done_at_start", H5P_DEFAULT);
        walk dw = {v, object, 0};
        if (dg >= 0) H5Ovisit2(dg, H5_INDEX_NAME, H5_ITER_INC, done_copy, &dw, H5O_INFO_BASIC);
        else md_verify_defect(v, object, "done_at_start is not a group");
        if (dg >= 0) H5Gclose(dg);
    }
    free(ex);
    free(t0);
    free(t1);
    H5Gclose(s);
    return 0;
}

static void check_provenance_groups(md_vctx *v)
{
    static const char *const groups[] = {"/provenance/models", "/provenance/datasets", "/provenance/segments"};
    for (int i = 0; i < 3; i++) {
        if (!md_h5_exists(v->file, groups[i])) {
            if (i < 2) continue; /* a job without datasets has none */
            md_verify_defect(v, groups[i], "missing (every run records a segment)");
            continue;
        }
        hid_t g = H5Gopen2(v->file, groups[i], H5P_DEFAULT);
        if (g < 0) {
            md_verify_defect(v, groups[i], "not a group");
            continue;
        }
        walk w = {v, groups[i], 0};
        H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, i < 2 ? prov_child : segment, &w);
        if (i == 2 && w.index == 0) md_verify_defect(v, groups[i], "holds no segment (every run records one)");
        H5Gclose(g);
    }
}

/* The record of the datasets stage k of exp declared (attribute `datasets`
 * of the stage group sg, h5declared.h): each is a dataset of /<exp>. A
 * stage without one (written before the record) is counted, not checked. */
static void check_declared(md_vctx *v, hid_t sg, const char *exp, int k, const char *object)
{
    char **names = NULL, what[96];
    int n = 0, got = md_h5declared_read_list(sg, &names, &n, what, sizeof what);
    if (got == 0) v->res->stages_unrecorded++;
    if (got < 0)
        md_verify_defect(v, object, "attribute '%s' holds %s, not the 1-D list of strings the writer records",
                         MD_H5DECLARED_ATTR, what);
    for (int i = 0; i < n; i++) {
        char full[MD_PATH_MAX + 300];
        snprintf(full, sizeof full, "/%s/%s", exp, names[i]);
        H5O_info_t oi;
        H5L_info_t li;
        int bad_name = !names[i][0] || names[i][0] == '/' || strstr(names[i], "..") || strlen(full) > MD_PATH_MAX + 200;
        int there = !bad_name && md_h5_exists(v->file, full) && H5Oexists_by_name(v->file, full, H5P_DEFAULT) > 0 &&
                    H5Oget_info_by_name2(v->file, full, &oi, H5O_INFO_BASIC, H5P_DEFAULT) >= 0;
        int hard = there && H5Lget_info(v->file, full, &li, H5P_DEFAULT) >= 0 && li.type == H5L_TYPE_HARD;
        if (bad_name)
            md_verify_defect(v, object, "attribute '%s' entry %d '%s' is not a path under the experiment group /%s",
                             MD_H5DECLARED_ATTR, i, names[i], exp);
        else if (!there)
            md_verify_defect(v, full, "missing: dataset '%s' of experiment %s, declared by its stage %d (%s "
                             "attribute '%s')", names[i], exp, k, object, MD_H5DECLARED_ATTR);
        else if (!hard)
            md_verify_defect(v, full, "a soft or external link, not the dataset '%s' of experiment %s its stage %d "
                             "declared (%s attribute '%s')", names[i], exp, k, object, MD_H5DECLARED_ATTR);
        else if (oi.type != H5O_TYPE_DATASET)
            md_verify_defect(v, full, "not a dataset (a %s): dataset '%s' of experiment %s, declared by its stage %d "
                             "(%s attribute '%s')", oi.type == H5O_TYPE_GROUP ? "group" : "named type", names[i], exp,
                             k, object, MD_H5DECLARED_ATTR);
        else
            v->res->declared_present++;
    }
    md_h5declared_free_list(names, n);
}

/* One /completion/<exp>/stage<k>. */
static void check_stage(md_vctx *v, hid_t eg, const char *exp, const char *name)
{
    char object[600], path[700];
    snprintf(object, sizeof object, "/completion/%s/%s", exp, name);
    int k = md_h5_parse_stage(name);
    if (k < 0) {
        md_verify_defect(v, object, "not a stage<k> group (k from 0 to %d)", MD_KIND_MAX_STAGES - 1);
        return;
    }
    hid_t sg = H5Gopen2(eg, name, H5P_DEFAULT);
    if (sg < 0) {
        md_verify_defect(v, object, "not a group");
        return;
    }
    md_verify_attr(v, sg, object, "kind", H5T_STRING, 1);
    md_verify_attr(v, sg, object, "experiment_index", H5T_INTEGER, 1);
    int64_t stage = md_verify_attr(v, sg, object, "stage", H5T_INTEGER, 1) == 1 ? md_h5_attr_read_i64(sg, "stage", -1) : k;
    int64_t n_units = md_verify_attr(v, sg, object, "n_units", H5T_INTEGER, 1) == 1
                          ? md_h5_attr_read_i64(sg, "n_units", -1) : -1;
    if (stage != k) md_verify_defect(v, object, "attribute 'stage' is %lld, the group's name says %d", (long long)stage, k);
    check_declared(v, sg, exp, k, object);
    char *kind = md_h5_attr_read_str(sg, "kind");
    snprintf(path, sizeof path, "/%s", exp);
    hid_t xg = md_h5_exists(v->file, path) ? H5Gopen2(v->file, path, H5P_DEFAULT) : -1;
    char *xkind = xg >= 0 ? md_h5_attr_read_str(xg, "kind") : NULL;
    if (xg < 0) md_verify_defect(v, object, "its experiment group /%s is missing", exp);
    else if (kind && xkind && strcmp(kind, xkind) != 0)
        md_verify_defect(v, object, "attribute 'kind' is '%s', /%s says '%s'", kind, exp, xkind);
    if (xg >= 0) H5Gclose(xg);
    free(kind);
    free(xkind);
    md_error err;
    md_vstage st = {.stage = k};
    snprintf(st.exp, sizeof st.exp, "%s", exp);
    snprintf(path, sizeof path, "%s/done", object);
    st.done = md_h5_exists(v->file, path) ? md_h5_read_flags(v->file, path, &st.n_units, &err) : NULL;
    if (!st.done) {
        md_verify_defect(v, path, "%s", md_h5_exists(v->file, path) ? err.msg : "missing");
        H5Gclose(sg);
        return;
    }
    if (n_units >= 0 && n_units != st.n_units)
        md_verify_defect(v, path, "holds %lld flags, the stage's n_units is %lld", (long long)st.n_units, (long long)n_units);
    snprintf(path, sizeof path, "%s/regions", object);
    hid_t reg = md_h5_open_regions(v->file, path, st.n_units, &err);
    if (reg < 0) md_verify_defect(v, path, "missing or not %lld strings (one per done flag)", (long long)st.n_units);
    const char *unit_dim[] = {"unit"};
    int64_t n = st.n_units;
    if (reg >= 0) {
        md_verify_scales(v, reg, path, 1, &n, unit_dim);
        H5Dclose(reg);
    }
    snprintf(path, sizeof path, "%s/done", object);
    hid_t d = H5Dopen2(v->file, path, H5P_DEFAULT);
    md_verify_scales(v, d, path, 1, &n, unit_dim);
    H5Dclose(d);
    H5Gclose(sg);
    for (int64_t u = 0; u < st.n_units; u++) st.n_done += st.done[u];
    if (v->n_stages == v->cap_stages) {
        int cap = v->cap_stages ? 2 * v->cap_stages : 16;
        md_vstage *grown = realloc(v->stages, (size_t)cap * sizeof *grown);
        if (!grown) {
            free(st.done);
            md_verify_defect(v, object, "out of memory");
            return;
        }
        v->stages = grown;
        v->cap_stages = cap;
    }
    v->stages[v->n_stages++] = st;
    v->res->stages++;
}

static herr_t stage_child(hid_t g, const char *name, const H5L_info_t *info, void *arg)
{
    (void)info;
    walk *w = arg;
    check_stage(w->v, g, w->parent, name);
    return 0;
}

static herr_t completion_child(hid_t g, const char *name, const H5L_info_t *info, void *arg)
{
    (void)info;
    md_vctx *v = arg;
    hid_t eg = H5Gopen2(g, name, H5P_DEFAULT);
    if (eg < 0) {
        char object[300];
        snprintf(object, sizeof object, "/completion/%s", name);
        md_verify_defect(v, object, "not a group");
        return 0;
    }
    int first = v->n_stages;
    walk w = {v, name, 0};
    H5Literate(eg, H5_INDEX_NAME, H5_ITER_INC, NULL, stage_child, &w);
    H5Gclose(eg);
    /* stages 0..max, none missing in between */
    for (int s = 0, max = -1;; s++) {
        int found = 0;
        for (int i = first; i < v->n_stages; i++) {
            found |= v->stages[i].stage == s;
            if (v->stages[i].stage > max) max = v->stages[i].stage;
        }
        if (s > max) break;
        if (!found) {
            char object[300];
            snprintf(object, sizeof object, "/completion/%s/stage%d", name, s);
            md_verify_defect(v, object, "missing, but a later stage of %s is planned", name);
        }
    }
    return 0;
}

/* Done flags against /provenance finished; the incomplete lines. */
static void check_progress(md_vctx *v)
{
    int64_t undone = 0;
    for (int i = 0; i < v->n_stages; i++) undone += v->stages[i].n_units - v->stages[i].n_done;
    if (v->part_count > 0) { /* finished: every unit u with u % part_count == part_index is done */
        for (int i = 0; v->finished && v->part_index >= 0 && i < v->n_stages; i++) {
            int64_t missing = 0;
            for (int64_t u = v->part_index; u < v->stages[i].n_units; u += v->part_count) missing += !v->stages[i].done[u];
            char object[300];
            snprintf(object, sizeof object, "/completion/%s/stage%d/done", v->stages[i].exp, v->stages[i].stage);
            if (missing)
                md_verify_defect(v, object, "%lld units of part %d/%d not done, but /provenance says the part finished",
                                 (long long)missing, v->part_index, v->part_count);
        }
        v->res->incomplete = 1;
        fprintf(v->out, "%s: incomplete: a part of the job (part_count %d): combine the parts with mechdiff merge, then "
                        "run the job on the merged file\n", v->path, v->part_count);
        return;
    }
    if (v->finished && undone) {
        for (int i = 0; i < v->n_stages; i++)
            if (v->stages[i].n_done < v->stages[i].n_units) {
                char object[300];
                snprintf(object, sizeof object, "/completion/%s/stage%d/done", v->stages[i].exp, v->stages[i].stage);
                md_verify_defect(v, object, "%lld of %lld units not done, but /provenance says finished",
                                 (long long)(v->stages[i].n_units - v->stages[i].n_done), (long long)v->stages[i].n_units);
            }
        return;
    }
    if (v->finished) return;
    v->res->incomplete = 1;
    for (int i = 0; i < v->n_stages; i++)
        if (v->stages[i].n_done < v->stages[i].n_units)
            fprintf(v->out, "%s: incomplete: %s stage %d %lld/%lld units\n", v->path, v->stages[i].exp,
                    v->stages[i].stage, (long long)v->stages[i].n_done, (long long)v->stages[i].n_units);
    if (!undone)
        fprintf(v->out, "%s: incomplete: every planned unit is done but /provenance says not finished (later stages "
                        "not planned yet, or the run ended before its last snapshot): run the job again\n", v->path);
}

/* The experiments of the job stored in /provenance job_yaml against the
 * file: each has its group /<name> of its kind, and its stages the job's
 * index; no other experiment group. Skipped when this build cannot parse
 * the stored job (a key a later version renamed): not a defect. */
static void check_job(md_vctx *v)
{
    hid_t p = H5Gopen2(v->file, "/provenance", H5P_DEFAULT);
    char *yaml = md_h5_attr_read_str(p, "job_yaml");
    H5Gclose(p);
    md_job *job = NULL;
    md_error err;
    if (!yaml || md_job_parse_string(yaml, "<job stored in the results file>", NULL, 0, &job, &err) != MD_OK) {
        free(yaml);
        return;
    }
    free(yaml);
    for (int i = 0; i < job->n_exps; i++) {
        char object[300];
        snprintf(object, sizeof object, "/%s", job->exps[i].name);
        hid_t g = md_h5_exists(v->file, object) ? H5Oopen(v->file, object, H5P_DEFAULT) : -1;
        char *kind = g >= 0 ? md_h5_attr_read_str(g, "kind") : NULL;
        const char *want = job->exps[i].kind;
        if (g < 0) md_verify_defect(v, object, "missing: the stored job's experiment %d (kind %s) writes it", i, want);
        else if (kind && strcmp(kind, want) != 0)
            md_verify_defect(v, object, "kind '%s', the stored job's experiment %d is of kind '%s'", kind, i, want);
        free(kind);
        if (g >= 0) H5Oclose(g);
        for (int s = 0; s < v->n_stages; s++) {
            if (strcmp(v->stages[s].exp, job->exps[i].name) != 0) continue;
            snprintf(object, sizeof object, "/completion/%s/stage%d", job->exps[i].name, v->stages[s].stage);
            hid_t sg = H5Gopen2(v->file, object, H5P_DEFAULT);
            int64_t x = sg >= 0 ? md_h5_attr_read_i64(sg, "experiment_index", -1) : -1;
            if (sg >= 0) H5Gclose(sg);
            if (x != i) md_verify_defect(v, object, "experiment_index %lld, the stored job lists it as %d", (long long)x, i);
        }
    }
    for (int s = 0; s < v->n_stages; s++) {
        int known = 0;
        for (int i = 0; i < job->n_exps; i++) known |= strcmp(v->stages[s].exp, job->exps[i].name) == 0;
        char object[300];
        snprintf(object, sizeof object, "/completion/%s/stage%d", v->stages[s].exp, v->stages[s].stage);
        if (!known) md_verify_defect(v, object, "an experiment the stored job (/provenance job_yaml) does not have");
    }
    md_job_free(job);
}

int md_verify_file(const char *path, FILE *out, md_verify_result *res)
{
    memset(res, 0, sizeof *res);
    md_h5info info;
    md_error err;
    if (md_h5out_info(path, &info, &err) != MD_OK) {
        fprintf(out, "%s\n", err.msg);
        return MD_ERR;
    }
    int layout = info.layout;
    md_h5out_info_free(&info);
    if (layout != MD_RESULTS_LAYOUT) {
        fprintf(out, "%s: written in results layout %d; this mechdiff verifies layout %d only\n", path, layout,
                MD_RESULTS_LAYOUT);
        return MD_ERR;
    }
    hid_t fapl = md_h5_fapl_unlocked();
    md_vctx v = {.path = path, .out = out, .res = res};
    v.file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (v.file < 0) {
        fprintf(out, "%s: not a readable HDF5 file\n", path);
        return MD_ERR;
    }
    /* hold this version while reading it, as md_reader_open does: a run
     * writing path never takes a locked version back (h5out.c) */
    void *fd = NULL;
    if (H5Fget_vfd_handle(v.file, H5P_DEFAULT, &fd) >= 0 && fd) flock(*(int *)fd, LOCK_SH | LOCK_NB);
    md_verify_list_objects(&v);
    check_root(&v);
    check_provenance_groups(&v);
    if (md_h5_exists(v.file, "/completion")) {
        hid_t g = H5Gopen2(v.file, "/completion", H5P_DEFAULT);
        if (g >= 0) H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, completion_child, &v);
        else md_verify_defect(&v, "/completion", "not a group");
        if (g >= 0) H5Gclose(g);
    } else {
        md_verify_defect(&v, "/completion", "missing (every run writes it with its first snapshot)");
    }
    check_job(&v);
    md_verify_experiments(&v);
    md_verify_values(&v);
    check_progress(&v);
    if (v.printed > MD_VERIFY_MAX_LINES)
        fprintf(out, "%s: ... %lld more defects not shown\n", path, (long long)(v.printed - MD_VERIFY_MAX_LINES));
    for (int i = 0; i < v.n_stages; i++) free(v.stages[i].done);
    free(v.stages);
    free(v.dsets);
    free(v.objs);
    H5Fclose(v.file);
    return MD_OK;
}
