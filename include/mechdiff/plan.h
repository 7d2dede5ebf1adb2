/* plan.h — what the runner keeps of a kind's plan, and the result wire format.
 *
 * A result (md_result) is a byte string, the same bytes in the MPI message
 * from a worker, in the journal record and in the writer's apply step:
 *   piece := u16 path_len, path, u8 type, u8 rank, i64 offset[rank],
 *            i64 count[rank], u64 nbytes, data[nbytes]
 *   result := u32 n_pieces, piece...
 * (little-endian host order: every rank of a job runs on the same kind of
 * machine.) The runner wraps it with (experiment, stage, unit) — md_unit_msg.
 * Ownership: md_plan and md_result own their buffers; *_free releases them. */
#ifndef MECHDIFF_PLAN_H
#define MECHDIFF_PLAN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mechdiff/experiment.h"

/* One output dataset (md_plan_output fills it from a kind's md_output
 * entry; kinds do not declare datasets directly). path is relative to the experiment's
 * group (/<experiment name>/<path>); intermediate groups are created. */
typedef struct md_dset_decl {
    char path[MD_PATH_MAX];
    md_h5type type;
    int rank;
    int64_t dims[MD_MAX_DIMS];
    const char *dim_names[MD_MAX_DIMS]; /* HDF5 dimension scale names ("pair", "layer") */
    int64_t chunk[MD_MAX_DIMS];         /* 0 = whole dim, capped to ~1 MiB chunks */
    int deflate;                        /* 0 = none, 1..9 = gzip level */
    const char *units;                  /* attribute "units" ("logit", "" for none) */
    const char *description;            /* attribute "description" */
    int nan_ok;                         /* 1 = NaN marks "no value" here (documented in the
                                           description); otherwise a NaN or infinity in a
                                           result is an error (never an infinity) */
} md_dset_decl;

/* Declares a dataset of this stage (copied). Paths must be new. */
int md_plan_dataset(md_plan *p, const md_dset_decl *d, md_error *err);
/* Lets the declared dataset at path hold NaN as its "no value" marker (as
 * md_dset_decl.nan_ok; kinds set md_output.nan_ok instead). */
int md_plan_allow_nan(md_plan *p, const char *path, md_error *err);

/* A declared dataset with its strings copied in. */
typedef struct md_dset {
    char path[MD_PATH_MAX];
    md_h5type type;
    int rank;
    int64_t dims[MD_MAX_DIMS];
    int64_t chunk[MD_MAX_DIMS];
    char dim_names[MD_MAX_DIMS][64];
    int deflate;
    char units[64];
    char description[512];
    int stage;                 /* stage that declared it */
    int nan_ok;                /* NaN is this dataset's "no value" marker (result_check.h) */
} md_dset;

typedef struct md_attr_decl {
    char path[MD_PATH_MAX];
    char name[64];
    char *value;               /* owned */
} md_attr_decl;

struct md_result {
    unsigned char *buf;        /* u32 n_pieces then pieces (owned) */
    size_t len, cap;
    uint32_t n_pieces;
};

/* A named axis of a plan (md_plan_axis*, experiment.h): the size, and the
 * labels of a category axis or the values of a numeric one (neither: a
 * size-only axis, md_plan_axis_size), of the dimension of that name of every
 * dataset of the plan under `scope`; md_plan_output takes every size from
 * it. The writer stores it as the dimension scale (src/runner/h5scale.c). */
typedef struct md_axis {
    char scope[MD_PATH_MAX];   /* "" = the whole experiment, else a group path ("cities") */
    char name[64];             /* the dimension name ("condition", "position") */
    int64_t n;
    char **labels;             /* [n] category axis (owned), else NULL */
    int64_t *values;           /* [n] numeric axis (owned), else NULL */
    char description[256];     /* attribute "description" of the scale */
} md_axis;

struct md_plan {
    int stage;
    const char *kind;          /* the kind whose plan this is, named in errors (borrowed; NULL = unnamed) */
    md_axis *axes;             /* declared axes (owned) */
    int n_axes;
    md_dset *dsets;            /* this stage's new datasets (owned) */
    int n_dsets;
    md_attr_decl *attrs;       /* owned */
    int n_attrs;
    int64_t n_units;
    double *cost;              /* [n_units] (owned) */
    md_result puts;            /* plan-time data */
};

/* The entry of a kind's outputs table (experiment.h) that dataset d is an
 * instance of (path, type, dims, units, description, deflate, stage), or
 * NULL. */
const md_output *md_output_match(const md_output *outputs, const md_dset *d);
/* MD_OK when every dataset of plan p is an instance of an entry of outputs;
 * else an internal error naming the kind, stage and dataset. */
int md_plan_check_outputs(const md_plan *p, const char *kind, const md_output *outputs, md_error *err);
/* A kind's outputs table as Markdown (jobs/README.md), under `title`. */
void md_output_print(const md_output *outputs, const char *title, FILE *f);

/* A decoded piece (pointers into the result bytes). */
typedef struct md_piece {
    char path[MD_PATH_MAX];
    md_h5type type;
    int rank;
    int64_t offset[MD_MAX_DIMS];
    int64_t count[MD_MAX_DIMS];
    const void *data;
    size_t nbytes;
} md_piece;

/* The axis of plan p that labels dimension `dim` of the dataset at path:
 * the one of that name with the longest scope that holds path; NULL when
 * none (the writer then stores 0..n-1). */
const md_axis *md_plan_axis_find(const md_plan *p, const char *path, const char *dim);

void md_plan_init(md_plan *p, int stage);
/* Frees the declared axes (md_plan_free does). */
void md_plan_axes_free(md_plan *p);
void md_plan_free(md_plan *p);
const md_dset *md_plan_find(const md_plan *p, const char *path);

void md_result_init(md_result *r);
void md_result_reset(md_result *r);  /* empty, keeps the buffer */
void md_result_free(md_result *r);
/* Encoded bytes of the result (u32 n_pieces first). */
const void *md_result_bytes(md_result *r, size_t *len);

/* Iterates the pieces of encoded result bytes: *pos starts at 0; returns 1
 * and fills piece, 0 at the end, MD_ERR when malformed. */
int md_result_next(const void *bytes, size_t len, size_t *pos, md_piece *piece, md_error *err);

/* Checks a piece against the datasets declared so far (type, rank, bounds,
 * string count). Returns the dataset or NULL with err set. */
const md_dset *md_piece_check(const md_piece *pc, const md_dset *dsets, int n_dsets, md_error *err);

/* The unit header that prefixes a result in messages and journal records. */
typedef struct md_unit_hdr {
    uint32_t exp;
    uint32_t stage;
    int64_t unit;
    uint32_t status;           /* 0 = ok; else the payload is an error message */
    uint32_t reserved;
} md_unit_hdr;

/* CRC-32 (IEEE, as zlib) of a buffer, continuing from crc (start with 0). */
uint32_t md_crc32(uint32_t crc, const void *data, size_t len);

#endif
