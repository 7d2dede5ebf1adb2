/* verify.h — `mechdiff verify`: whether a results file is complete and
 * internally consistent, from the file alone (no job file, models or CSVs).
 *
 * Checks (src/runner/verify*.c):
 *   - the root and /provenance attributes, /provenance/models, datasets and
 *     segments: present where every run writes them, one value of their class;
 *   - /completion: every stage's attributes, done flags (1-D, 0/1, n_units
 *     long), regions and `unit` scale; a finished file has every flag 1;
 *     every dataset the stage's record (attribute `datasets`) names is a
 *     dataset of its experiment group (stages of older files have none);
 *   - the experiments of the job stored in /provenance job_yaml: each has
 *     its group of its kind and its stages its index, no other group has
 *     stages (skipped when this build cannot parse that job);
 *   - every dataset of every experiment group: declared by its kind's
 *     outputs table (type, rank), attributes `units` (the table's) and
 *     `description`, every dimension's scale present, attached, 1-D, of the
 *     dimension's length and name; list attributes naming an axis (`models`,
 *     `sets`, `layers`, ...) as long as that dimension, equal to its scale;
 *   - values: every done unit read back through its regions (inside its
 *     datasets, finite where the kind never writes NaN: result_check.h; not
 *     empty in a stage whose units write datasets, selftest excepted), the
 *     plan-written datasets finite likewise, and each kind's true range
 *     invariants (rates and accuracies in [0,1], entropies and norms >= 0...);
 *   - the SHA-256 of each dataset's values (attribute `sha256`, written by
 *     the run that finished the whole job: h5digest.h) where present.
 * A partly done file is not a defect: it is reported as incomplete.
 * Ownership: the caller owns path and out; nothing is kept. */
#ifndef MECHDIFF_VERIFY_H
#define MECHDIFF_VERIFY_H

#include <stdint.h>
#include <stdio.h>

typedef struct md_verify_result {
    int64_t defects;         /* lines printed about what is wrong (0 = valid) */
    int incomplete;          /* valid so far but not a finished whole job */
    int64_t datasets;        /* result datasets checked */
    int64_t stages;          /* completion stages checked */
    int64_t units_read;      /* done units read back through their regions */
    int64_t digests_checked; /* datasets whose sha256 attribute matched */
    int64_t digests_absent;  /* datasets without one (files of older builds, unfinished files) */
    int64_t declared_present; /* datasets a stage's record (attribute `datasets`) names, found */
    int64_t stages_unrecorded; /* stages without that record (files of older builds: not checked) */
} md_verify_result;

/* Verifies the results file at path; every defect and every incomplete
 * stage is one line on out ("PATH: OBJECT: what is wrong", "PATH:
 * incomplete: ..."). MD_OK when the file could be examined (res says what
 * was found), MD_ERR when it is not a readable HDF5 results file (one line
 * on out). */
int md_verify_file(const char *path, FILE *out, md_verify_result *res);

#endif
