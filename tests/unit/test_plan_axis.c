/* test_plan_axis.c — named axes of a plan (md_plan_axis*, experiment.h) and
 * the dimension scales the writer makes of them (src/runner/h5scale.c):
 * the longest scope that holds a dataset (the dataset itself or a group
 * above it) wins; md_plan_output takes every size from the axes and refuses
 * a dimension without one (an internal error naming kind, dataset and
 * dimension); a category axis becomes a string scale with its labels, a
 * numeric one an int64 scale with its values, a size-only axis (and a
 * dimension without an axis) 0..n-1; datasets of one group share an equal
 * scale, and a different scale of the same name gets its own. */
#include <hdf5.h>
#include <hdf5_hl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/experiment.h"
#include "mechdiff/plan.h"
#include "runner/h5scale.h"
#include "runner/h5util.h"
#include "testutil.h"

static const md_output OUT_COND = {.path = "{ds}/{src}->{dst}/score", .type = MD_H5_F64, .dims = "condition,position",
                                   .description = "test"};

static void test_plan(void)
{
    md_plan p;
    md_error err;
    md_plan_init(&p, 0);
    int64_t rel[3] = {-3, -2, -1}, rel5[5] = {-5, -4, -3, -2, -1};
    CHECK(md_plan_axis_csv(&p, "", "condition", "none,dir_base,dir_instruct", "", &err) == MD_OK);
    CHECK(md_plan_axis_values(&p, "cities", "position", rel, 3, "from the end", &err) == MD_OK);
    CHECK(md_plan_axis_values(&p, "", "position", rel5, 5, NULL, &err) == MD_OK);
    CHECK(md_plan_axis_csv(&p, "", "condition", "a", "", &err) == MD_ERR); /* twice in one scope */
    const md_axis *a = md_plan_axis_find(&p, "cities/base->base/score", "position");
    CHECK(a && a->n == 3 && a->values[0] == -3 && !strcmp(a->scope, "cities"));
    a = md_plan_axis_find(&p, "citiesX/base->base/score", "position"); /* not under cities/ */
    CHECK(a && a->n == 5);
    a = md_plan_axis_find(&p, "x/score", "condition");
    CHECK(a && a->n == 3 && !strcmp(a->labels[1], "dir_base") && !strcmp(a->description, "names along this dimension"));
    CHECK(md_plan_axis_find(&p, "x/score", "layer") == NULL);

    const char *args[] = {"cities", "instruct", "base"};
    CHECK_MSG(md_plan_output(&p, &OUT_COND, args, &err) == MD_OK, "%s", err.msg); /* sizes from the axes */
    const md_dset *d = md_plan_find(&p, "cities/instruct->base/score");
    CHECK(d && d->dims[0] == 3 && d->dims[1] == 3);
    const char *args2[] = {"other", "instruct", "base"};
    CHECK_MSG(md_plan_output(&p, &OUT_COND, args2, &err) == MD_OK, "%s", err.msg);
    d = md_plan_find(&p, "other/instruct->base/score");
    CHECK(d && d->dims[0] == 3 && d->dims[1] == 5);
    /* size-only axes: one per group, and one for a dataset itself (a scope that is the dataset's path) */
    static const md_output OUT_PAIR = {.path = "{ds}/pairs/{what}", .type = MD_H5_I32, .dims = "pair",
                                       .description = "test"};
    CHECK(md_plan_axis_size(&p, "cities", "pair", 7, &err) == MD_OK);
    CHECK(md_plan_axis_size(&p, "cities/pairs/len", "pair", 2, &err) == MD_OK);
    CHECK(md_plan_axis_size(&p, "cities", "pair", 8, &err) == MD_ERR); /* twice in one scope */
    CHECK(md_plan_axis_size(&p, "", "hidden", 0, &err) == MD_ERR);      /* no entries */
    CHECK(md_plan_output(&p, &OUT_PAIR, (const char *[]){"cities", "ids"}, &err) == MD_OK);
    CHECK(md_plan_output(&p, &OUT_PAIR, (const char *[]){"cities", "len"}, &err) == MD_OK);
    CHECK(md_plan_output(&p, &OUT_PAIR, (const char *[]){"cities", "len2"}, &err) == MD_OK);
    CHECK((d = md_plan_find(&p, "cities/pairs/ids")) && d->dims[0] == 7);
    CHECK((d = md_plan_find(&p, "cities/pairs/len")) && d->dims[0] == 2);
    CHECK((d = md_plan_find(&p, "cities/pairs/len2")) && d->dims[0] == 7); /* "len" holds len, not len2 */
    a = md_plan_axis_find(&p, "cities/pairs/ids", "pair");
    CHECK(a && !a->labels && !a->values && !strcmp(a->description, "index along this dimension"));
    /* a dimension without an axis: an internal error naming the kind, the dataset and the dimension */
    p.kind = "testkind";
    CHECK(md_plan_output(&p, &OUT_PAIR, (const char *[]){"sp_en", "ids"}, &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "internal error") && strstr(err.msg, "testkind") && strstr(err.msg, "sp_en/pairs/ids") &&
                  strstr(err.msg, "'pair'"),
              "%s", err.msg);
    CHECK(md_plan_find(&p, "sp_en/pairs/ids") == NULL);
    /* a dataset named like a dimension of another in its group: refused (the scale takes that name) */
    static const md_output OUT_POS = {.path = "{ds}/{src}->{dst}/position", .type = MD_H5_I32, .dims = "pair",
                                      .description = "test"};
    CHECK(md_plan_axis_size(&p, "", "pair", 2, &err) == MD_OK);
    CHECK(md_plan_output(&p, &OUT_POS, args, &err) == MD_ERR && strstr(err.msg, "named like"));
    CHECK(md_plan_output(&p, &OUT_POS, (const char *[]){"x", "a", "b"}, &err) == MD_OK);
    md_plan_free(&p);
    CHECK(p.n_axes == 0 && p.axes == NULL);
}

static hid_t make_dset(hid_t g, const char *name, hsize_t n)
{
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(g, name, H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Sclose(sp);
    return d;
}

/* The name of the scale attached to dimension 0 of d. */
static herr_t scale_name(hid_t did, unsigned dim, hid_t sid, void *out)
{
    (void)did;
    (void)dim;
    H5Iget_name(sid, out, 128);
    return 1;
}

static void test_scales(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/test_plan_axis.h5", tu_tmpdir());
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(f >= 0);
    md_plan p;
    md_error err;
    md_plan_init(&p, 0);
    int64_t layers[3] = {2, 5, 9};
    CHECK(md_plan_axis_csv(&p, "", "condition", "none,dir_base,dir_instruct", "", &err) == MD_OK);
    CHECK(md_plan_axis_values(&p, "", "layer", layers, 3, "layer index", &err) == MD_OK);
    CHECK(md_plan_axis_size(&p, "", "row", 3, &err) == MD_OK);
    const md_axis *cond = md_plan_axis_find(&p, "a", "condition"), *lay = md_plan_axis_find(&p, "a", "layer");
    const md_axis *row = md_plan_axis_find(&p, "a", "row");
    hid_t d1 = make_dset(f, "a", 3), d2 = make_dset(f, "b", 3), d3 = make_dset(f, "c", 3), d4 = make_dset(f, "d", 3);
    CHECK(md_h5scale_attach(f, d1, 0, "condition", 3, cond) == MD_OK);
    CHECK(md_h5scale_attach(f, d2, 0, "condition", 3, cond) == MD_OK);   /* shares the scale */
    CHECK(md_h5scale_attach(f, d3, 0, "condition", 3, NULL) == MD_OK);   /* 0..2: another scale */
    CHECK(md_h5scale_attach(f, d4, 0, "layer", 3, lay) == MD_OK);
    /* a size-only axis makes the very scale of a dimension without one: they share it */
    hid_t d5 = make_dset(f, "e", 3), d6 = make_dset(f, "g", 3);
    CHECK(md_h5scale_attach(f, d5, 0, "row", 3, row) == MD_OK);
    CHECK(md_h5scale_attach(f, d6, 0, "row", 3, NULL) == MD_OK);
    char n5[128] = "", n6[128] = "";
    H5DSiterate_scales(d5, 0, NULL, scale_name, n5);
    H5DSiterate_scales(d6, 0, NULL, scale_name, n6);
    CHECK_MSG(!strcmp(n5, "/row") && !strcmp(n6, "/row"), "%s %s", n5, n6);
    hid_t rs = H5Dopen2(f, "row", H5P_DEFAULT);
    char *desc = md_h5_attr_read_str(rs, "description");
    CHECK_MSG(desc && !strcmp(desc, "index along this dimension"), "%s", desc ? desc : "(none)");
    free(desc);
    H5Dclose(rs);
    H5Dclose(d5), H5Dclose(d6);
    char n1[128] = "", n2[128] = "", n3[128] = "", n4[128] = "";
    H5DSiterate_scales(d1, 0, NULL, scale_name, n1);
    H5DSiterate_scales(d2, 0, NULL, scale_name, n2);
    H5DSiterate_scales(d3, 0, NULL, scale_name, n3);
    H5DSiterate_scales(d4, 0, NULL, scale_name, n4);
    CHECK_MSG(!strcmp(n1, "/condition") && !strcmp(n2, "/condition"), "%s %s", n1, n2);
    CHECK_MSG(!strcmp(n3, "/condition_3"), "%s", n3);
    CHECK_MSG(!strcmp(n4, "/layer"), "%s", n4);
    hid_t s = H5Dopen2(f, "condition", H5P_DEFAULT), t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    char *got[3] = {0};
    CHECK(H5Dread(s, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, got) >= 0);
    CHECK(got[2] && !strcmp(got[2], "dir_instruct") && got[0] && !strcmp(got[0], "none"));
    for (int i = 0; i < 3; i++) H5free_memory(got[i]);
    H5Tclose(t);
    H5Dclose(s);
    int64_t v[3] = {0};
    s = H5Dopen2(f, "layer", H5P_DEFAULT);
    CHECK(H5Dread(s, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0 && v[0] == 2 && v[2] == 9);
    H5Dclose(s);
    s = H5Dopen2(f, "condition_3", H5P_DEFAULT);
    CHECK(H5Dread(s, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0 && v[0] == 0 && v[2] == 2);
    H5Dclose(s);
    H5Dclose(d1), H5Dclose(d2), H5Dclose(d3), H5Dclose(d4);
    H5Fclose(f);
    md_plan_free(&p);
    remove(path);
}

int main(void)
{
    test_plan();
    test_scales();
    TEST_MAIN_END();
}
