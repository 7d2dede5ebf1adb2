/* h5scale.h — private to src/runner (h5out_data.c): the dimension scales of the
 * results file. A dimension with a declared axis (md_axis, plan.h) gets its
 * labels (a variable-length UTF-8 string scale: xarray/h5netcdf select by
 * them, ncdump shows them) or its values (int64); one without gets 0..n-1.
 * A scale lives in the group of the datasets it labels, is named after the
 * dimension, and is shared by every dataset of that group whose dimension
 * has the same name and the same entries. */
#ifndef MECHDIFF_RUNNER_H5SCALE_H
#define MECHDIFF_RUNNER_H5SCALE_H

#include <hdf5.h>
#include <stdint.h>

#include "mechdiff/plan.h"

/* Attaches dimension `dim` (named `name`, n long) of dataset d, in group
 * parent, to its scale: an equal scale named `name` in parent, else a new
 * one (named `name`, or `name`_<n>[_<k>] when parent already has a different
 * scale of that name). axis NULL = the indices 0..n-1. MD_OK or MD_ERR.
 * d must be a dataset just created (no scale attached yet): the writer only
 * attaches scales to the datasets it creates, so H5DSis_attached, which
 * dereferences every reference of an existing scale's REFERENCE_LIST (and
 * leaks inside libhdf5 1.10.8 on a dangling one in an edited file), is not
 * called. */
int md_h5scale_attach(hid_t parent, hid_t d, unsigned dim, const char *name, int64_t n, const md_axis *axis);

#endif
