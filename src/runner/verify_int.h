/* verify_int.h — private to src/runner/verify*.c: the state of one
 * `mechdiff verify` pass and the checks its files share. */
#ifndef MECHDIFF_RUNNER_VERIFY_INT_H
#define MECHDIFF_RUNNER_VERIFY_INT_H

#include <hdf5.h>
#include <stdio.h>

#include "mechdiff/experiment.h"
#include "mechdiff/verify.h"

/* One result dataset found under an experiment group. */
typedef struct md_vdset {
    char path[MD_PATH_MAX + 160];   /* full path in the file */
    char exp[128];                  /* its experiment group */
    const md_kind *kind;            /* that group's kind (NULL: unknown kind) */
    const md_output *out;           /* its outputs-table entry (NULL: none matched) */
    md_h5type type;
    int rank;
    int64_t dims[MD_MAX_DIMS];
} md_vdset;

/* One stage of /completion. */
typedef struct md_vstage {
    char exp[128];
    int stage;
    int64_t n_units, n_done;
    uint8_t *done;                  /* [n_units] (owned) */
} md_vstage;

/* An object of the file: its address (what an object reference holds) and type. */
typedef struct md_vobj {
    haddr_t addr;
    H5O_type_t type;
} md_vobj;

typedef struct md_vctx {
    const char *path;               /* the file, first word of every line */
    hid_t file;
    FILE *out;
    md_verify_result *res;
    int64_t printed;                /* lines printed (capped: MD_VERIFY_MAX_LINES) */
    md_vdset *dsets;                /* owned */
    int n_dsets, cap_dsets;
    md_vstage *stages;              /* owned */
    int n_stages, cap_stages;
    md_vobj *objs;                  /* every object reachable from / (owned; md_verify_list_objects), by address */
    int n_objs, cap_objs;
    int finished;                   /* /provenance finished */
    int part_count, part_index;     /* /provenance part_count (0 = the whole job), part_index */
} md_vctx;

#define MD_VERIFY_MAX_LINES 200

/* One defect: "PATH: OBJECT: message" (printf format). */
void md_verify_defect(md_vctx *v, const char *object, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Attribute name of obj (path object, for messages) is one value of class
 * want: 1 yes; 0 absent (a defect when required); -1 a defect printed. */
int md_verify_attr(md_vctx *v, hid_t obj, const char *object, const char *name, H5T_class_t want, int required);

/* verify_dsets.c: every object under each experiment group (the datasets
 * into v->dsets, with their table entries, attributes and scales checked). */
void md_verify_experiments(md_vctx *v);
/* Dimension scales of dataset d at object: dimension i named names[i] (NULL
 * = any name), attached, 1-D, dims[i] long. */
void md_verify_scales(md_vctx *v, hid_t d, const char *object, int rank, const int64_t *dims,
                      const char *const *names);

/* verify_scales.c: dimension scales without libhdf5_hl (whose H5DS*
 * follow references to deleted objects). md_verify_list_objects lists the
 * objects of v->file (before the scales are checked). */
void md_verify_list_objects(md_vctx *v);
/* The first scale attached to dimension dim of d (rank rank), opened;
 * -1 after a defect line on object (none attached, a reference to no
 * dataset of the file, DIMENSION_LIST not of its type); object NULL: -1
 * without one. */
hid_t md_verify_open_scale(md_vctx *v, hid_t d, unsigned dim, int rank, const char *object, const char *dname);
/* Whether scale s's REFERENCE_LIST lists dimension dim of d: 1 yes, 0 no
 * (or none), -1 it cannot be read or lists an object that is not a dataset
 * of the file. */
int md_verify_lists_back(const md_vctx *v, hid_t s, hid_t d, unsigned dim);
/* Attribute DIMENSION_LABELS of d, entry dim, into buf ("" when none). */
void md_verify_read_label(hid_t d, unsigned dim, char *buf, size_t len);

/* The name of dimension i in an outputs table's dims ("pair,layer,position"). */
void md_verify_dim_name(const char *dims, int i, char *buf, size_t len);

/* verify_values.c: every done unit's regions and values, the plan-written
 * datasets' values and the kinds' range invariants. */
void md_verify_values(md_vctx *v);
/* 1 when every range invariant names an entry of its kind's outputs table
 * (a renamed output would silently drop its check); else 0 with the first
 * that does not in bad. For tests/unit/test_verify.c. */
int md_verify_rules_known(char *bad, size_t len);

/* The outputs-table entry of kind whose path template matches rel (the path
 * under the experiment group) with this type and rank; NULL when none. */
const md_output *md_verify_match_output(const md_kind *kind, const char *rel, md_h5type type, int rank);

#endif
