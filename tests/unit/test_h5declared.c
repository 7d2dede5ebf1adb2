/* test_h5declared.c — the record of a stage's declared datasets
 * (src/runner/h5declared.h): written from a plan and read back in the
 * plan's order (three names, none); absent = 0; a fixed-length string
 * array (numpy bytes written by hand) reads too; an integer, a scalar
 * string and a 2-D array are -1 with what they hold; nothing is left
 * open. What verify makes of it on real files: tests/e2e/verify_declared.sh. */
#include <hdf5.h>
#include <stdio.h>
#include <string.h>

#include "runner/h5declared.h"
#include "testutil.h"

/* Reads the record of g and checks it is want[0..n-1]. */
static void check_names(hid_t g, const char *const *want, int n)
{
    char **names = NULL, what[96] = "";
    int got = 0;
    CHECK(md_h5declared_read_list(g, &names, &got, what, sizeof what) == 1);
    CHECK_MSG(got == n, "%d names, want %d", got, n);
    for (int i = 0; i < got && i < n; i++) CHECK_MSG(strcmp(names[i], want[i]) == 0, "%s vs %s", names[i], want[i]);
    md_h5declared_free_list(names, got);
}

/* Attribute "datasets" of g replaced by one of type t, rank rank (dims), from buf. */
static void put_attr(hid_t g, hid_t t, int rank, const hsize_t *dims, const void *buf)
{
    if (H5Aexists(g, MD_H5DECLARED_ATTR) > 0) H5Adelete(g, MD_H5DECLARED_ATTR);
    hid_t sp = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(g, MD_H5DECLARED_ATTR, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(a >= 0 && H5Awrite(a, t, buf) >= 0);
    H5Aclose(a);
    H5Sclose(sp);
}

/* The record of g is refused (-1) with `holds` in what, and no names. */
static void check_refused(hid_t g, const char *holds)
{
    char **names = NULL, what[96] = "";
    int n = 7;
    CHECK(md_h5declared_read_list(g, &names, &n, what, sizeof what) == -1);
    CHECK(names == NULL && n == 0);
    CHECK_MSG(strstr(what, holds) != NULL, "'%s' lacks '%s'", what, holds);
}

int main(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/test_h5declared.h5", tu_tmpdir());
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(f >= 0);
    hid_t g = H5Gcreate2(f, "stage0", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);

    char **names = NULL, what[96];
    int n = 5;
    CHECK(md_h5declared_read_list(g, &names, &n, what, sizeof what) == 0 && names == NULL && n == 0);

    md_dset d[3];
    memset(d, 0, sizeof d);
    const char *const paths[] = {"values", "cities/pairs/true_statement", "base->instruct/effect"};
    for (int i = 0; i < 3; i++) snprintf(d[i].path, sizeof d[i].path, "%s", paths[i]);
    md_plan plan;
    memset(&plan, 0, sizeof plan);
    plan.dsets = d;
    plan.n_dsets = 3;
    CHECK(md_h5declared_write_list(g, &plan) == MD_OK);
    check_names(g, paths, 3);
    plan.n_dsets = 0; /* rewritten: a stage that declares none */
    CHECK(md_h5declared_write_list(g, &plan) == MD_OK);
    check_names(g, paths, 0);

    hid_t fixed = H5Tcopy(H5T_C_S1);
    H5Tset_size(fixed, 6);
    hsize_t two = 2;
    put_attr(g, fixed, 1, &two, "valueslabel\0"); /* "values" without its NUL, then "label" */
    const char *const fixed_names[] = {"values", "label"};
    check_names(g, fixed_names, 2);
    H5Tclose(fixed);

    long long three = 3;
    put_attr(g, H5T_NATIVE_LLONG, 0, NULL, &three);
    check_refused(g, "integers of rank 0");
    hid_t vl = H5Tcopy(H5T_C_S1);
    H5Tset_size(vl, H5T_VARIABLE);
    const char *one = "values";
    put_attr(g, vl, 0, NULL, &one);
    check_refused(g, "strings of rank 0");
    hsize_t square[2] = {1, 1};
    put_attr(g, vl, 2, square, &one);
    check_refused(g, "strings of rank 2");
    H5Tclose(vl);

    H5Gclose(g);
    CHECK_MSG(H5Fget_obj_count(f, H5F_OBJ_ALL) == 1, "%lld objects open", (long long)H5Fget_obj_count(f, H5F_OBJ_ALL));
    H5Fclose(f);
    remove(path);
    TEST_MAIN_END();
}
