/* h5out_int.h — private to src/runner/h5out.c (the snapshot: begin, commit,
 * provenance, segments) and src/runner/h5out_data.c (what a snapshot
 * writes: datasets and stages defined from a plan, units applied, the
 * caches flushed): the handle both fill, and what each calls of the other.
 * Ownership: md_h5out owns its HDF5 handles and caches (md_h5out_close_caches). */
#ifndef MECHDIFF_RUNNER_H5OUT_INT_H
#define MECHDIFF_RUNNER_H5OUT_INT_H

#include <hdf5.h>
#include <stdint.h>

#include "mechdiff/h5out.h"
#include "runner/h5catchup.h"

/* An open dataset of the snapshot, by full path. */
typedef struct md_h5out_dset {
    char path[MD_PATH_MAX + 160];
    hid_t id;
} md_h5out_dset;

/* A unit's region string waiting for the commit. */
typedef struct md_h5out_region {
    int64_t unit;
    char *text;                /* owned */
} md_h5out_region;

/* One stage's done flags and pending regions, written at the commit. */
typedef struct md_h5out_stage {
    char exp[128];
    int stage;
    hid_t done_id, regions_id;
    uint8_t *done;             /* [n] (owned) */
    int64_t n;
    md_h5out_region *regions;  /* pending region strings (owned) */
    int n_regions, cap_regions;
} md_h5out_stage;

struct md_h5out {
    char path[4096];
    char tmp[4200], prev[4200];
    hid_t file;
    uint64_t generation;
    int incremental;           /* started from OUT.h5.prev */
    int keep_prev;             /* commit keeps the replaced file as OUT.h5.prev */
    int defined;               /* md_h5out_define was called */
    md_h5catchup *catchup;     /* the published file, to catch up from (incremental; owned) */
    int copy_chunks;           /* catch up by copying compressed chunks (else write values) */
    int64_t kill_gen, kill_after, n_applied; /* MECHDIFF_TEST_KILL_SNAPSHOT */
    double t0, bytes_applied;  /* MECHDIFF_SNAPSHOT_LOG */
    md_h5out_dset *dsets;      /* owned */
    int n_dsets;
    md_h5out_stage *stages;    /* owned */
    int n_stages;
};

/* h5out.c: the test hook MECHDIFF_TEST_KILL_SNAPSHOT (SIGKILL when this
 * snapshot writes generation kill_gen and count reached kill_after). */
void md_h5out_test_kill_point(const md_h5out *h, int64_t count);

/* h5out_data.c: writes every cached stage's done flags and regions. */
int md_h5out_flush_stages(md_h5out *h, md_error *err);
/* h5out_data.c: closes the cached datasets and stages and frees the caches;
 * MD_ERR when a dataset's cached chunks could not be written (a full disk). */
int md_h5out_close_caches(md_h5out *h);

#endif
