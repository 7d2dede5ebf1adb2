/* h5out.h — the results file, written by rank 0 only (serial HDF5).
 *
 * Layout (readable with h5py, xarray, h5dump; no mechdiff code needed; the
 * users' description is the "Output layout" table of jobs/README.md, which
 * tests/e2e/layout_doc.sh checks against a results file):
 *   /                        attrs: title, mechdiff_version, job_name, job_sha256,
 *                            layout_version (MD_RESULTS_LAYOUT), provenance
 *   /provenance              attrs: job_yaml (resolved), job_sha256, job_sha256_covers,
 *                            mechdiff_version, git_revision, created, world_size, hostname,
 *                            start_time, end_time, finished, generation, part_index, part_count
 *   /provenance/models/<role>     attrs: path, config_json, weight_sha256 (sha256sum lines),
 *                                 weight_sha256_format
 *   /provenance/datasets/<name>   attrs: path, sha256
 *   /provenance/segments/<k>      attrs of each run segment (start_time, end_time, world_size,
 *                                 hostname, exit, git_revision, numeric setup: provenance.h)
 *   /<experiment>                 attr kind; the kind's datasets under it: chunked, deflate,
 *                                 attrs units and description, dimension scales named after the dims
 *   /completion/<experiment>/stage<k>  attrs kind, experiment_index, stage, n_units,
 *                            datasets (string[n]: the paths under /<experiment> of the
 *                            datasets the stage's plan declared; src/runner/h5declared.h)
 *   /completion/<experiment>/stage<k>/done     uint8[unit]  1 = the unit's data is in this file
 *   /completion/<experiment>/stage<k>/regions  string[unit] hyperslabs the unit wrote
 *                            ("values[17+1,0+4,0+8];label[17+1]"), used by merge
 *   /completion/<experiment>/stage<k>/unit     the unit dimension scale of both
 * Everything that varies between runs of the same job (times, host, ranks)
 * lives under /provenance, so `h5diff --exclude-path /provenance` compares
 * results only.
 *
 *   /provenance attr defined_generation: the generation whose snapshot last
 *                            created datasets or stages (h5out.c)
 *
 * Writes happen only inside a snapshot, on the private OUT.h5.tmp: either
 * md_h5out_begin_incremental takes back OUT.h5.prev (the version the last
 * commit replaced) to bring it up to date, or md_h5out_begin copies OUT.h5
 * (or creates it); the caller defines/applies; md_h5out_commit closes,
 * fsyncs and renames it over OUT.h5. Why this is crash safe and costs
 * O(new data): the comment at the top of src/runner/h5out.c.
 * Ownership: md_h5out owns its HDF5 handles and caches. */
#ifndef MECHDIFF_H5OUT_H
#define MECHDIFF_H5OUT_H

#include <stdint.h>

#include "mechdiff/error.h"
#include "mechdiff/plan.h"
#include "mechdiff/snapfile.h"

typedef struct md_model_prov {
    char role[64];
    char dir[4096];
    char *config_json;       /* owned */
    char **files;            /* weight file names (owned) */
    char **sha256;           /* hex digests (owned) */
    int n_files;
} md_model_prov;

typedef struct md_data_prov {
    char name[64];
    char path[4096];
    char sha256[65];
} md_data_prov;

/* Written when the file is created. */
typedef struct md_provenance {
    const char *job_yaml;
    const char *job_sha256;
    const char *job_name;
    int part_index, part_count;   /* -1, 0 = whole job */
    const md_model_prov *models;
    int n_models;
    const md_data_prov *data;
    int n_data;
} md_provenance;

/* One run segment (one `mechdiff run` invocation), updated at every commit. */
typedef struct md_segment {
    int id;                  /* -1 = next free id, chosen by begin */
    double start_time, end_time;
    int world_size;
    char hostname[256];
    const char *exit;        /* "running", "finished", "stopped (signal)", "part done", "error" */
    int finished;            /* the whole job (or this part) is complete */
    const struct md_prov_numerics *numerics; /* resolved numeric setup written with the segment (provenance.h), or NULL */
} md_segment;

/* Collects the provenance of a job (rank 0): per model role config.json and
 * the SHA-256 of every weight file (when runtime.hash_weights), per dataset
 * the SHA-256 of the CSV, and the identity hash that the resume check
 * compares: SHA-256 of the resolved job without runtime/output plus all of
 * those hashes (cached, parallel: filehash.h; progress = lines on stderr).
 * Arrays malloc'd; md_prov_free. */
struct md_job;
int md_prov_collect(const struct md_job *job, md_model_prov **models, int *n_models, md_data_prov **data,
                    int *n_data, char identity[65], int progress, md_error *err);
void md_prov_free(md_model_prov *models, int n_models, md_data_prov *data);

/* Version of the results layout this mechdiff writes (root and /provenance
 * attribute `layout_version`; a file without it is layout 1):
 *   1  cross-model groups <target>/<source>, category axes 0..n-1 with the
 *      names in comma-separated attributes (mechdiff before 2026-12-07);
 *   2  groups <source>-><target> with role attributes, string-valued
 *      dimension scales, token datasets beside the results.
 * A run refuses to resume a file of another layout (runner_job.c). */
#define MD_RESULTS_LAYOUT 2

typedef struct md_h5info {
    int layout;              /* layout_version (1 when absent) */
    char mechdiff_version[32];
    char job_sha256[65];
    uint64_t generation;
    int part_index, part_count;
    int finished;
    char *job_yaml;          /* owned; md_h5info_free */
} md_h5info;

typedef struct md_h5out md_h5out;

/* Reads the identity of an existing results file. */
int md_h5out_info(const char *path, md_h5info *info, md_error *err);
void md_h5out_info_free(md_h5info *info);

/* Starts a snapshot of `path`: copies `source` (NULL = path itself, when it
 * exists) to path.tmp and opens it, or creates path.tmp from prov. */
int md_h5out_begin(md_h5out **out, const char *path, const char *source, const md_provenance *prov,
                   md_error *err);
/* Starts a snapshot of `path` from path.prev, the version the last commit
 * replaced (md_h5out_keep_previous), when that is safe: `path` still has
 * path_mark and path.prev prev_mark (the marks in the headers of the
 * journals of generations g and g-1: the files as they were published,
 * untouched since), path.prev is one generation behind with the same
 * datasets (h5out.c says every check). first_of_run: also take the root
 * and /provenance attributes and segments of `path` (what a commit writes
 * outside the journals). The caller then catches up with the records of
 * the journal of generation g-1 (md_h5out_catch_up) and applies those of
 * g. *out = NULL with MD_OK when it cannot (copy instead: md_h5out_begin);
 * MD_ERR only when out of memory. */
int md_h5out_begin_incremental(md_h5out **out, const char *path, const md_snapfile_mark *path_mark,
                               const md_snapfile_mark *prev_mark, int first_of_run, md_error *err);
/* Creates what a stage's plan declares (when absent), its completion arrays
 * and attributes, and writes the plan-time data. */
int md_h5out_define(md_h5out *h, const char *exp_name, int exp_index, const char *kind, const md_plan *plan,
                    md_error *err);
/* Writes one unit's encoded result (md_result bytes) and marks it done.
 * Datasets must have been defined (this or an earlier snapshot). */
int md_h5out_apply(md_h5out *h, const char *exp_name, int stage, int64_t unit, const void *result, size_t len,
                   md_error *err);
/* As md_h5out_apply, for a unit the published file already holds (the
 * journal of generation g-1 in an incremental snapshot): its chunks are
 * copied compressed from the published file where possible, not deflated
 * again (src/runner/h5catchup.h). */
int md_h5out_catch_up(md_h5out *h, const char *exp_name, int stage, int64_t unit, const void *result, size_t len,
                      md_error *err);
/* Done flags of a stage ([n_units], owned by h) or NULL when not defined. */
const uint8_t *md_h5out_done(md_h5out *h, const char *exp_name, int stage, int64_t *n_units, md_error *err);
/* Sets the part identity (merge clears it: -1, 0). */
int md_h5out_set_part(md_h5out *h, int part_index, int part_count, md_error *err);
/* Records the segment, stores generation+1, closes, fsyncs, renames to path. */
int md_h5out_commit(md_h5out *h, md_segment *seg, md_error *err);
/* Abandons the snapshot (removes path.tmp). */
void md_h5out_discard(md_h5out *h);
/* Makes the commit keep the file it replaces as path.prev (a hard link),
 * for the next md_h5out_begin_incremental. */
void md_h5out_keep_previous(md_h5out *h);
/* Removes path.prev (the end of a finished run: it is only a head start). */
void md_h5out_drop_previous(const char *path);

/* One stage in a results file's /completion: what `mechdiff status` counts. */
typedef struct md_h5stage {
    char exp[128];   /* the experiment's group name */
    int exp_index;   /* its index in the job (attribute experiment_index; -1 when absent) */
    int stage;
    int64_t n_units;
    uint8_t *done;   /* [n_units] done flags (owned by the array) */
} md_h5stage;

/* Every stage of every experiment in the file at path (name order; none
 * when it has no /completion), its done flags read as md_reader_done reads
 * them. *stages malloc'd (md_h5out_free_stages), *n of them. */
int md_h5out_read_stages(const char *path, md_h5stage **stages, int *n, md_error *err);
void md_h5out_free_stages(md_h5stage *stages, int n);

/* Reader for finish_stage: the experiment's datasets of a committed file. */
int md_reader_open(md_reader **out, const char *path, const char *exp_name, md_error *err);
/* Points r at another experiment of the same file (merge reads every
 * experiment of a part through one open). */
void md_reader_select(md_reader *r, const char *exp_name);
void md_reader_close(md_reader *r);

/* Done flags of a stage through a reader (*done malloc'd; NULL, 0 when the
 * stage is absent), and one done unit read back as encoded result bytes
 * (from its regions) into out: merge uses these. */
int md_reader_done(md_reader *r, int stage, uint8_t **done, int64_t *n_units, md_error *err);
/* Whether the file's datasets of this experiment can take the results plan
 * declares (rank, dims and type as declared; a missing one only while no
 * unit of its stage is done): MD_OK, else err names the file and dataset. */
int md_reader_check_plan(md_reader *r, const md_plan *plan, md_error *err);
/* Whether r has every dataset of ref's experiment group with the same rank,
 * dims and type (merge: a part against part 0): MD_OK, else err names both. */
int md_reader_check_like(md_reader *r, md_reader *ref, md_error *err);
int md_reader_unit(md_reader *r, int stage, int64_t unit, md_result *out, md_error *err);

/* The record of the datasets a stage's plan declared (attribute `datasets`
 * of /completion/<experiment>/stage<k>, src/runner/h5declared.h), read
 * through a reader: 1 with *names (n of them, malloc'd: free them with
 * md_h5out_free_declared); 0 when the stage or its record is absent (a
 * file of a build before the record); MD_ERR when the attribute is not a
 * list of strings (err names the file and the stage group). */
int md_reader_declared(md_reader *r, int stage, char ***names, int *n, md_error *err);
/* Writes the record names[0..n) on the stage of exp_name in h, replacing
 * the one there (merge: the first part was written before records, a later
 * part has one). The stage must be defined in h. */
int md_h5out_set_declared(md_h5out *h, const char *exp_name, int stage, char *const *names, int n, md_error *err);
void md_h5out_free_declared(char **names, int n);

#endif
