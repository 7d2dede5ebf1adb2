/* test_result_check.c — no silent NaN in a results file (issue 14 item 2):
 * a NaN or infinity in a worker's result piece or in a plan's put is an
 * error naming the dataset (path with the model role), the element's
 * coordinates by dimension name and the value; a dataset declared nan_ok
 * may hold NaN (its "no value" marker) but never an infinity; finite
 * values, integers and strings pass. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mechdiff/plan.h"
#include "mechdiff/result_check.h"
#include "testutil.h"

/* One piece of `data` (n doubles or floats) for path at offset {0, row}. */
static int check_one(md_plan *plan, const char *path, int f32, const double *vals, int n, md_error *err)
{
    md_result r;
    md_result_init(&r);
    float fv[8];
    for (int i = 0; i < n; i++) fv[i] = (float)vals[i];
    int64_t off[2] = {1, 0}, cnt[2] = {1, n};
    int rc = md_result_put(&r, path, 2, off, cnt, f32 ? (const void *)fv : (const void *)vals,
                           (size_t)n * (f32 ? sizeof(float) : sizeof(double)), err);
    size_t len, pos = 0;
    const void *bytes = md_result_bytes(&r, &len);
    md_piece pc;
    while (rc == MD_OK && md_result_next(bytes, len, &pos, &pc, err) == 1)
        rc = md_result_check_piece(&pc, plan->dsets, plan->n_dsets, err);
    md_result_free(&r);
    return rc;
}

int main(void)
{
    md_plan plan;
    md_plan_init(&plan, 0);
    md_error err;
    md_error_clear(&err);
    md_dset_decl eff = {.path = "instruct/effect", .type = MD_H5_F64, .rank = 2, .dims = {3, 4},
                        .dim_names = {"layer", "pair"}, .units = "logit"};
    md_dset_decl act = {.path = "base/activation", .type = MD_H5_F32, .rank = 2, .dims = {3, 4},
                        .dim_names = {"prompt", "rank"}, .units = "activation", .nan_ok = 1};
    md_dset_decl pd = {.path = "pd", .type = MD_H5_F64, .rank = 2, .dims = {3, 4},
                       .dim_names = {"target", "class"}, .units = "probability"};
    CHECK(md_plan_dataset(&plan, &eff, &err) == MD_OK && md_plan_dataset(&plan, &act, &err) == MD_OK &&
          md_plan_dataset(&plan, &pd, &err) == MD_OK);

    double ok[4] = {0.5, -1e300, 0, 3};
    CHECK_MSG(check_one(&plan, "instruct/effect", 0, ok, 4, &err) == MD_OK, "%s", err.msg);
    double withnan[4] = {0.5, 1, NAN, 3};
    CHECK(check_one(&plan, "instruct/effect", 0, withnan, 4, &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "'instruct/effect' [layer 1, pair 2]") && strstr(err.msg, "NaN"), "%s", err.msg);
    double withinf[4] = {INFINITY, 1, 2, 3};
    CHECK(check_one(&plan, "instruct/effect", 0, withinf, 4, &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "[layer 1, pair 0]") && strstr(err.msg, "+infinity"), "%s", err.msg);
    /* f32: a finite double that overflows float is an infinity */
    double big[4] = {1, 1e39, 2, 3};
    CHECK(check_one(&plan, "base/activation", 1, big, 4, &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "'base/activation' [prompt 1, rank 1]"), "%s", err.msg);
    /* nan_ok: NaN passes, -inf does not */
    CHECK_MSG(check_one(&plan, "base/activation", 1, withnan, 4, &err) == MD_OK, "%s", err.msg);
    double neginf[4] = {1, 2, 3, -INFINITY};
    CHECK(check_one(&plan, "base/activation", 1, neginf, 4, &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "-infinity"), "%s", err.msg);
    /* md_plan_allow_nan on a helper-declared dataset */
    CHECK(check_one(&plan, "pd", 0, withnan, 4, &err) == MD_ERR);
    CHECK(md_plan_allow_nan(&plan, "pd", &err) == MD_OK);
    CHECK_MSG(check_one(&plan, "pd", 0, withnan, 4, &err) == MD_OK, "%s", err.msg);
    CHECK(md_plan_allow_nan(&plan, "nope", &err) == MD_ERR);

    /* a plan's own data is checked the same way */
    int64_t off[2] = {2, 0}, cnt[2] = {1, 4};
    CHECK(md_plan_put(&plan, "instruct/effect", off, cnt, withnan, sizeof withnan, &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "plan") && strstr(err.msg, "[layer 2, pair 2]"), "%s", err.msg);
    CHECK_MSG(md_plan_put(&plan, "instruct/effect", off, cnt, ok, sizeof ok, &err) == MD_OK, "%s", err.msg);

    /* integers pass whatever their bits */
    md_dset_decl ids = {.path = "ids", .type = MD_H5_I32, .rank = 1, .dims = {2}, .dim_names = {"i"}};
    CHECK(md_plan_dataset(&plan, &ids, &err) == MD_OK);
    const md_dset *d = md_plan_find(&plan, "ids");
    int32_t iv[2] = {0x7fc00000, -1};
    int64_t o1 = 0, c1 = 2;
    CHECK(d && md_result_check_values(d, &o1, &c1, iv, sizeof iv, &err) == MD_OK);
    md_plan_free(&plan);
    TEST_MAIN_END();
}
