/* test_outputs.c — the declared outputs of every experiment kind: each kind
 * has a table; every entry is well formed (path, 1..MD_MAX_DIMS named dims, a
 * description) and unique; an instance made by md_plan_output (sizes from
 * the plan's axes only) matches its own entry and no other; a dimension
 * without a declared axis is an internal error naming the kind, the dataset
 * and the dimension; a dataset outside the table, or one whose description,
 * type or stage differs, is rejected by the runner's check. */
#include <stdio.h>
#include <string.h>

#include "mechdiff/experiment.h"
#include "mechdiff/plan.h"
#include "testutil.h"

static int count_dims(const char *dims)
{
    int n = dims && dims[0] ? 1 : 0;
    for (const char *c = dims; c && *c; c++) n += *c == ',';
    return n;
}

/* Declares an axis of size 2 in plan for each of o's dimensions but the
 * one numbered `skip` (-1 = none); returns that one's name in skipped. */
static void declare_axes(md_plan *plan, const md_output *o, int skip, char skipped[64])
{
    const char *c = o->dims;
    for (int i = 0; *c; i++) {
        char name[64];
        size_t len = strcspn(c, ",");
        snprintf(name, sizeof name, "%.*s", (int)len, c);
        c += len + (c[len] == ',');
        md_error err;
        if (i == skip)
            snprintf(skipped, 64, "%s", name);
        else if (!md_plan_axis_find(plan, "", name))
            CHECK_MSG(md_plan_axis_size(plan, "", name, 2, &err) == MD_OK, "%s: %s", o->path, err.msg);
    }
}

/* Declares an instance of o (placeholders "x0", "x1", ..., every axis of
 * size 2) into a plan of o's stage and checks it against the kind's table;
 * then, without the axis of its last dimension, the internal error. */
static void check_instance(const md_kind *k, const md_output *o)
{
    const char *args[] = {"x0", "x1", "x2", "x3", "x4", "x5"};
    char skipped[64] = "";
    md_plan plan;
    md_error err;
    md_plan_init(&plan, o->stage);
    plan.kind = k->name;
    declare_axes(&plan, o, -1, skipped);
    CHECK_MSG(md_plan_output(&plan, o, args, &err) == MD_OK, "%s %s: %s", k->name, o->path, err.msg);
    CHECK_MSG(md_plan_check_outputs(&plan, k->name, k->outputs, &err) == MD_OK, "%s %s: %s", k->name, o->path, err.msg);
    if (plan.n_dsets == 1) {
        CHECK_MSG(md_output_match(k->outputs, &plan.dsets[0]) == o, "%s %s matches another entry", k->name, o->path);
        CHECK(plan.dsets[0].rank == count_dims(o->dims));
        md_dset bad = plan.dsets[0];
        snprintf(bad.description, sizeof bad.description, "%s (changed)", o->description);
        CHECK_MSG(md_output_match(k->outputs, &bad) == NULL, "%s %s: description not checked", k->name, o->path);
        bad = plan.dsets[0];
        bad.stage = o->stage + 7;
        CHECK_MSG(md_output_match(k->outputs, &bad) == NULL, "%s %s: stage not checked", k->name, o->path);
        bad = plan.dsets[0];
        bad.type = o->type == MD_H5_F64 ? MD_H5_F32 : MD_H5_F64;
        CHECK_MSG(md_output_match(k->outputs, &bad) == NULL, "%s %s: type not checked", k->name, o->path);
    }
    char path[MD_PATH_MAX];
    snprintf(path, sizeof path, "%s", plan.n_dsets == 1 ? plan.dsets[0].path : "");
    md_plan_free(&plan);
    /* the same output with its last dimension's axis left out: an internal error naming kind, dataset, dimension */
    md_plan_init(&plan, o->stage);
    plan.kind = k->name;
    declare_axes(&plan, o, count_dims(o->dims) - 1, skipped);
    CHECK_MSG(md_plan_output(&plan, o, args, &err) == MD_ERR, "%s %s: no axis accepted", k->name, o->path);
    CHECK_MSG(strstr(err.msg, "internal error") && strstr(err.msg, k->name) && strstr(err.msg, path) &&
                  strstr(err.msg, skipped) && plan.n_dsets == 0,
              "%s %s: %s", k->name, o->path, err.msg);
    md_plan_free(&plan);
}

int main(void)
{
    int kinds = 0;
    for (const md_kind *const *kp = md_kinds(); *kp; kp++, kinds++) {
        const md_kind *k = *kp;
        CHECK_MSG(k->outputs && k->outputs[0].path, "kind %s has no outputs table", k->name);
        if (!k->outputs) continue;
        for (const md_output *o = k->outputs; o->path; o++) {
            int nd = count_dims(o->dims);
            CHECK_MSG(nd >= 1 && nd <= MD_MAX_DIMS, "%s %s: %d dims", k->name, o->path, nd);
            CHECK_MSG(o->description && o->description[0], "%s %s: no description", k->name, o->path);
            CHECK_MSG(o->path[0] && o->path[0] != '/', "%s: bad path '%s'", k->name, o->path);
            /* a path twice only with other dims (the refusal kind's point and sweep modes) */
            for (const md_output *q = k->outputs; q < o; q++)
                CHECK_MSG(strcmp(q->path, o->path) != 0 || strcmp(q->dims, o->dims) != 0, "%s: '%s' listed twice",
                          k->name, o->path);
            check_instance(k, o);
        }
        /* a dataset the table does not list */
        md_output stray = {.path = "not_declared", .type = MD_H5_F64, .dims = "x", .description = "stray"};
        md_plan plan;
        md_error err;
        md_plan_init(&plan, 0);
        CHECK(md_plan_axis_size(&plan, "", "x", 3, &err) == MD_OK);
        CHECK(md_plan_output(&plan, &stray, NULL, &err) == MD_OK);
        CHECK_MSG(md_plan_check_outputs(&plan, k->name, k->outputs, &err) == MD_ERR && strstr(err.msg, "not_declared"),
                  "kind %s accepted an undeclared dataset", k->name);
        md_plan_free(&plan);
    }
    CHECK(kinds >= 6);
    TEST_MAIN_END();
}
