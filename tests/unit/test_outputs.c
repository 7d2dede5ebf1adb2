/* test_outputs.c — the declared outputs of every experiment kind: each kind
 * has a table; every entry is well formed (path, 1..MD_MAX_DIMS named dims, a
 * description) and unique; an instance made by md_plan_output matches its
 * own entry and no other; a dataset outside the table, or one whose
 * description, type or stage differs, is rejected by the runner's check. */
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

/* Declares an instance of o (placeholders "x0", "x1", ..., sizes 2) into a
 * plan of o's stage and checks it against the kind's table. */
static void check_instance(const md_kind *k, const md_output *o)
{
    const char *args[] = {"x0", "x1", "x2", "x3", "x4", "x5"};
    int64_t dims[MD_MAX_DIMS] = {2, 2, 2, 2, 2, 2};
    md_plan plan;
    md_error err;
    md_plan_init(&plan, o->stage);
    CHECK_MSG(md_plan_output(&plan, o, args, dims, &err) == MD_OK, "%s %s: %s", k->name, o->path, err.msg);
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
        int64_t n = 3;
        md_plan_init(&plan, 0);
        CHECK(md_plan_output(&plan, &stray, NULL, &n, &err) == MD_OK);
        CHECK_MSG(md_plan_check_outputs(&plan, k->name, k->outputs, &err) == MD_ERR && strstr(err.msg, "not_declared"),
                  "kind %s accepted an undeclared dataset", k->name);
        md_plan_free(&plan);
    }
    CHECK(kinds >= 6);
    TEST_MAIN_END();
}
