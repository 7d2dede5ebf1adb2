/* read_h5.c — a results file read from C with the HDF5 C API alone (no
 * mechdiff code): the example README.md ("Reading the results") points to,
 * compiled and run by tests/e2e/layout_doc.sh, which checks its output
 * against h5py.
 *
 *   h5cc -o read_h5 tests/e2e/lib/read_h5.c -lhdf5_hl   (leaves read_h5.o in the current folder)
 *   ./read_h5 OUT.h5 knowledge/cities/base->base/effect
 *
 * Prints the dataset's `units` and `description` attributes, one line per
 * dimension with its name and the labels of its dimension scale (numbers or
 * strings), and the values (numbers with %.9g, or strings). Exit 1 with a
 * message naming the file and object on any error. */
#include <hdf5.h>
#include <hdf5_hl.h>
#include <stdio.h>
#include <stdlib.h>

/* Prints the n elements of dataset d: strings when it holds strings, else
 * numbers read as double. 0 on success. */
static int print_values(hid_t d, hssize_t n)
{
    hid_t type = H5Dget_type(d), space = H5Dget_space(d);
    int rc = -1;
    if (H5Tget_class(type) == H5T_STRING) {
        hid_t mem = H5Tcopy(H5T_C_S1);
        char **s = malloc((size_t)(n > 0 ? n : 1) * sizeof *s); /* owned; the strings by HDF5 until reclaimed */
        H5Tset_size(mem, H5T_VARIABLE);
        H5Tset_cset(mem, H5T_CSET_UTF8);
        if (s && H5Dread(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, s) >= 0) {
            for (hssize_t i = 0; i < n; i++) printf(" %s", s[i]);
            H5Dvlen_reclaim(mem, space, H5P_DEFAULT, s);
            rc = 0;
        }
        free(s);
        H5Tclose(mem);
    } else {
        double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v); /* owned */
        if (v && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0) {
            for (hssize_t i = 0; i < n; i++) printf(" %.9g", v[i]);
            rc = 0;
        }
        free(v);
    }
    printf("\n");
    H5Sclose(space);
    H5Tclose(type);
    return rc;
}

/* H5DSiterate_scales callback: the scale's name and labels. */
static herr_t print_scale(hid_t d, unsigned dim, hid_t scale, void *unused)
{
    (void)d, (void)unused;
    char name[256] = "";
    hid_t space = H5Dget_space(scale);
    H5DSget_scale_name(scale, name, sizeof name);
    printf("dim %u %s:", dim, name);
    herr_t rc = print_values(scale, H5Sget_simple_extent_npoints(space)) == 0 ? 0 : -1;
    H5Sclose(space);
    return rc;
}

/* Prints string attribute `name` of object o, if it has one. */
static void print_attr(hid_t o, const char *name)
{
    if (H5Aexists(o, name) <= 0) return;
    hid_t a = H5Aopen(o, name, H5P_DEFAULT), type = H5Aget_type(a);
    char *v = NULL; /* allocated by HDF5, freed with H5free_memory */
    if (H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) > 0 && H5Aread(a, type, &v) >= 0) {
        printf("%s: %s\n", name, v);
        H5free_memory(v);
    }
    H5Tclose(type);
    H5Aclose(a);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: read_h5 FILE.h5 DATASET\n");
        return 2;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(argv[1], H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = f < 0 ? -1 : H5Dopen2(f, argv[2], H5P_DEFAULT);
    if (d < 0) {
        fprintf(stderr, "read_h5: %s: cannot open dataset '%s'\n", argv[1], argv[2]);
        if (f >= 0) H5Fclose(f);
        return 1;
    }
    hid_t space = H5Dget_space(d);
    int rank = H5Sget_simple_extent_ndims(space), rc = 0;
    print_attr(d, "units");
    print_attr(d, "description");
    for (int k = 0; k < rank && rc == 0; k++)
        if (H5DSget_num_scales(d, (unsigned)k) > 0 && H5DSiterate_scales(d, (unsigned)k, NULL, print_scale, NULL) < 0)
            rc = 1;
    printf("values:");
    if (rc == 0 && print_values(d, H5Sget_simple_extent_npoints(space)) != 0) rc = 1;
    if (rc) fprintf(stderr, "read_h5: %s: cannot read '%s' or its dimension scales\n", argv[1], argv[2]);
    H5Sclose(space);
    H5Dclose(d);
    H5Fclose(f);
    return rc;
}
