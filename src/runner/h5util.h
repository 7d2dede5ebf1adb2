/* h5util.h — private to src/runner (h5out*.c, h5read.c): the small HDF5
 * helpers both the results-file writer and its readers use. Every hid_t
 * returned is owned by the caller (close it); strings are malloc'd. */
#ifndef MECHDIFF_RUNNER_H5UTIL_H
#define MECHDIFF_RUNNER_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "mechdiff/experiment.h"
#include "mechdiff/plan.h"

/* Variable-length UTF-8 string type. */
hid_t md_h5_str_type(void);
/* The end of a message about a results file edited or damaged by hand. */
#define MD_H5_EDITED_HINT "the file was edited or damaged: restore it from a copy, or start over (another -o, or --force-new)"

/* 1 when every link of the absolute path exists. */
int md_h5_exists(hid_t loc, const char *path);
/* (Re)writes a scalar attribute: string, number of file/memory type, int64. */
int md_h5_attr_str(hid_t loc, const char *name, const char *value);
int md_h5_attr_num(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, const void *value);
int md_h5_attr_i64(hid_t loc, const char *name, int64_t v);
/* Reads a string attribute into a malloc'd copy (NULL when absent, or not a
 * single string: see md_h5_attr_check). */
char *md_h5_attr_read_str(hid_t loc, const char *name);
/* Reads an integer attribute, def when absent (or not a single integer). */
int64_t md_h5_attr_read_i64(hid_t loc, const char *name, int64_t def);
/* Whether attribute name of loc is one value of the class mechdiff writes
 * (H5T_STRING or H5T_INTEGER): 1 yes, 0 absent, -1 another type or more than
 * one value (a file edited by hand); what it holds instead goes to what. */
int md_h5_attr_check(hid_t loc, const char *name, H5T_class_t want, char *what, size_t len);
/* 1 when d is a dimension scale: its attribute CLASS is the string
 * DIMENSION_SCALE (H5DSis_scale leaks identifiers on a CLASS of another
 * string type, libhdf5_hl 1.10). */
int md_h5_is_scale(hid_t d);
/* Replaces each control character of s (a newline of a hand-edited
 * attribute or region) by '?': a message about the file stays one line. */
void md_h5_one_line(char *s);
/* The k of a /completion/<experiment>/stage<k> name as the writer gives
 * it ("stage%d", 0 <= k < MD_KIND_MAX_STAGES); -1 for any other name
 * ("stage01", "stage+1", "stage99999999999"). */
int md_h5_parse_stage(const char *name);
/* Opens group path, creating it (and its parents) when absent. */
hid_t md_h5_group_open_or_create(hid_t loc, const char *path);
/* File and memory HDF5 types of an md_h5type. */
hid_t md_h5_file_type(md_h5type t);
hid_t md_h5_mem_type(md_h5type t);
/* The md_h5type of a dataset in a file. */
int md_h5_dataset_type(hid_t d, md_h5type *out);
/* Wall-clock seconds, and their ISO-8601 UTC text. */
double md_h5_now(void);
void md_h5_iso_time(double t, char *buf, size_t len);
/* Reads the whole 1-D dataset of 0/1 flags at path (relative to loc): a
 * malloc'd array (caller frees) and its length in *n; NULL with err set
 * (naming path) when it cannot be opened or read, is not a 1-D integer
 * dataset, or holds a value other than 0 and 1. */
uint8_t *md_h5_read_flags(hid_t loc, const char *path, int64_t *n, md_error *err);
/* Opens the 1-D string dataset of n unit regions at path; -1 with err set
 * (naming path) when it is missing or of another shape. */
hid_t md_h5_open_regions(hid_t file, const char *path, int64_t n, md_error *err);
/* Rank, dims and type of the dataset at full: 1; 0 when its type is not one
 * mechdiff writes (rank and dims set); -1 when it is absent, not a dataset
 * or of more than MD_MAX_DIMS dimensions. */
int md_h5_dataset_shape(hid_t file, const char *full, int *rank, int64_t dims[MD_MAX_DIMS], md_h5type *type);
/* Whether the dataset full of file may take ds's results: MD_OK when it has
 * ds's rank, dims and type class/size, or is absent while no unit of its
 * stage (/completion/<exp>/stage<k>/done) is done; else err says which. */
int md_h5_check_dataset(hid_t file, const char *full, const md_dset *ds, const char *exp, md_error *err);
/* Called by md_h5_read_blocks with a block of n values (elements first ..
 * first + n - 1 of the dataset, row-major); nonzero stops the read. */
typedef int (*md_h5_block_fn)(void *buf, int64_t first, int64_t n, void *arg);
/* Reads dataset d in blocks of whole rows of its first dimension (a scalar:
 * one block of one value), each of at most block_bytes of values of
 * mem_type (esize bytes each; at least one row), and calls fn on each;
 * variable-length strings of a block are reclaimed after fn. 0 when every
 * block was read and passed; -1 when the space cannot be read, memory runs
 * out or H5Dread fails; else fn's nonzero value. */
int md_h5_read_blocks(hid_t d, hid_t mem_type, size_t esize, size_t block_bytes, md_h5_block_fn fn, void *arg);
/* File access properties without HDF5 file locking (NFS, Lustre). */
hid_t md_h5_fapl_unlocked(void);

#endif
