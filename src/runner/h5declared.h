/* h5declared.h — private to src/runner (h5out_data.c writes it, verify.c
 * checks it): the record of the datasets a stage's plan declared, the
 * attribute `datasets` of /completion/<experiment>/stage<k>. It holds the
 * paths (relative to the experiment group /<experiment>) of the output
 * datasets that stage's plan declared (md_plan.dsets), in the plan's order,
 * as a 1-D array of variable-length UTF-8 strings: h5py reads it as an
 * array of str, netCDF-4/xarray as a list of strings, h5dump prints it,
 * the C API reads it with one H5Aread into char *[n]; a name holds any
 * character a dataset path may (no separator to split on).
 * Files written before the record (earlier builds of mechdiff) have
 * no such attribute: nothing to check. `mechdiff merge` reads it through
 * md_reader_declared and writes it through md_h5out_set_declared (h5out.h).
 * Ownership: the name arrays are malloc'd (md_h5declared_free_list). */
#ifndef MECHDIFF_RUNNER_H5DECLARED_H
#define MECHDIFF_RUNNER_H5DECLARED_H

#include <hdf5.h>
#include <stddef.h>

#include "mechdiff/plan.h"

/* The attribute's name. */
#define MD_H5DECLARED_ATTR "datasets"
/* More names than this are refused on reading (no plan comes near it: a
 * hand-made attribute); the reader's message says so. */
#define MD_H5DECLARED_MAX (1 << 20)

/* Writes the record of plan's datasets on the stage group sg (replacing
 * one there): MD_OK or MD_ERR. */
int md_h5declared_write_list(hid_t sg, const md_plan *plan);
/* The same for the dataset paths names[0..n) (merge: a record read back
 * from a part). */
int md_h5declared_write_names(hid_t sg, const char *const *names, int n);
/* Reads the record of the stage group sg: 1 with *names (n of them,
 * malloc'd) set; 0 when sg has none (an older file); -1 when the attribute
 * is not a 1-D array of strings (what it holds instead goes to what). */
int md_h5declared_read_list(hid_t sg, char ***names, int *n, char *what, size_t len);
void md_h5declared_free_list(char **names, int n);

#endif
