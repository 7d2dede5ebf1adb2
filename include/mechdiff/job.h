/* job.h — the YAML job file: parse, check against the schemas, resolve
 * defaults and paths, serialise back.
 *
 * One place parses configuration (SWIFT style): rank 0 calls
 * md_job_parse_file + md_job_validate, serialises the resolved job with
 * md_job_to_yaml and broadcasts the text; workers call md_job_parse_string on
 * it (paths already resolved and checked, so check_paths = 0 there).
 *
 * Paths: a relative path in a job file is relative to the directory of the job
 * file (not the cwd), so `jobs/x.yaml` can say `../models/...` and work from
 * anywhere; resolved paths are absolute.
 *
 * Errors name the place: "jobs/x.yaml:12:5: key 'units': expected int, got
 * 'ten'". Every problem found is reported (one per line), not just the first.
 * Ownership: md_job owns everything reachable from it; md_job_free. */
#ifndef MECHDIFF_JOB_H
#define MECHDIFF_JOB_H

#include "mechdiff/error.h"
#include "mechdiff/schema.h"
#include "mechdiff/tokcache.h"

struct md_kind;

typedef struct md_exp_spec {
    char *kind;                  /* "selftest", "knowledge", ... (owned) */
    char *name;                  /* output group /<name>; default = kind (owned) */
    const struct md_kind *impl;  /* registry entry (static) */
    md_params params;            /* the kind's keys, resolved */
    int line, col;               /* where the experiment starts in the file */
} md_exp_spec;

typedef struct md_job {
    char *source;       /* job file as given, or "<broadcast>" (owned) */
    char *dir;          /* absolute base directory for relative paths (owned) */
    md_params top;      /* name, output, seed, models, datasets */
    md_params runtime;  /* runtime: keys (do not change results) */
    md_exp_spec *exps;  /* experiments, file order (owned) */
    int n_exps;
} md_job;

/* Keys of the top level and of `runtime:` (the experiment keys live with each
 * kind, see experiment.h). Terminated by {0}. */
extern const md_key MD_JOB_TOP_KEYS[];
extern const md_key MD_JOB_RUNTIME_KEYS[];

/* Parses and checks a job file: YAML syntax, unknown keys, types, ranges,
 * allowed values, existence of files/folders. Does not run the kinds'
 * semantic hooks (md_job_validate does). A job file is at most 1 MiB, one
 * YAML document, nested at most 64 levels (all checked before libyaml
 * reads it); a regular file or a pipe. */
int md_job_parse_file(const char *path, md_job **out, md_error *err);

/* Same from text. source names the text in messages; base_dir resolves
 * relative paths (NULL = cwd); check_paths = 0 skips existence checks. */
int md_job_parse_string(const char *text, const char *source, const char *base_dir,
                        int check_paths, md_job **out, md_error *err);

/* Checks every model folder (md_folder_check; a folder that does not exist
 * was reported by the parse at its key) and runs every experiment kind's
 * semantic validate hook (rank 0 only), but not for an experiment that names
 * a missing dataset (md_job_missing_dataset: the parse reported it at the
 * dataset's key) or a model whose folder is missing (md_job_missing_model).
 * toks: the caller's tokenizers (tokcache.h; borrowed, NULL: each check
 * loads its own), so that a folder's tokenizer loads once. */
int md_job_validate(const md_job *job, md_tokcache *toks, md_error *err);

/* 1 when experiment exp names dataset `name` in one of its keys (a string
 * key, or an item of a list; not `kind` or `name`), else 0. */
int md_job_exp_uses_dataset(const md_job *job, int exp, const char *name);
/* The first dataset of the job's `datasets` map that experiment exp names
 * and whose file does not exist (or is a folder), or NULL (points into the
 * job). */
const char *md_job_missing_dataset(const md_job *job, int exp);
/* The first model of the job's `models` map that experiment exp uses (names
 * in one of its keys; with a `models` list of its own only those, even when
 * none of them is in the map; every model when it names none) whose folder
 * or folder/config.json is missing, or NULL (points into the job). */
const char *md_job_missing_model(const md_job *job, int exp);

/* md_job_parse_file + md_job_validate reporting every problem at once (what
 * `mechdiff validate` shows): *out is set whenever the file's structure is
 * sound, also when files or folders are missing or a kind's check failed,
 * so that the caller can plan its experiments and report those problems
 * too (the caller frees it). MD_OK only when nothing is wrong. toks: as
 * md_job_validate's. */
int md_job_check_file(const char *path, md_tokcache *toks, md_job **out, md_error *err);

/* Flags of md_job_to_yaml. */
#define MD_JOB_YAML_IDENTITY 1  /* leave out runtime: and output: (they do not
                                   change results) — what the resume check hashes */

/* The resolved job (every key, defaults filled in) as YAML text that
 * md_job_parse_string reads back to the same job. Returns malloc'd text
 * (caller frees) or NULL when out of memory. */
char *md_job_to_yaml(const md_job *job, int flags);

/* Output path of the job (resolved top-level `output`). */
const char *md_job_output(const md_job *job);
/* Replaces the job's output path by a copy of path (`run -o`, the part
 * file of `--part`, the canonical path of md_outlock_make_canonical). */
int md_job_set_output(md_job *job, const char *path, md_error *err);

void md_job_free(md_job *job);

#endif
