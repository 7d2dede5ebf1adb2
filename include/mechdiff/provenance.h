/* provenance.h — the numeric setup of a run segment: what decided the
 * numbers (backend, weight and GEMM precision, BLAS, devices), resolved
 * (never "auto"), recorded with every run segment of a results file, and
 * the check that a resume does not mix numeric setups in one file.
 *
 * Recorded as attributes of /provenance/segments/<k> (numeric_setup,
 * backend, weight_precision, gemm_precision, blas, devices). When a resume
 * is allowed to mix setups (`mechdiff run --allow-mixed-numerics`), the
 * segment also stores done_at_start/<experiment>/stage<s>: the done flags at
 * its start, so the units of segment k are those done at the start of k+1
 * (or at the end) but not at the start of k.
 *
 * The model/dataset hashes and the job identity: md_prov_collect (h5out.h).
 * Ownership: md_prov_numerics owns its done-flag copies (md_prov_free_numerics). */
#ifndef MECHDIFF_PROVENANCE_H
#define MECHDIFF_PROVENANCE_H

#include <stdint.h>

#include "mechdiff/error.h"

struct md_job;

typedef struct md_prov_done_copy {
    char path[256];          /* "<experiment>/stage<s>" */
    uint8_t *done;           /* owned */
    int64_t n;
} md_prov_done_copy;

typedef struct md_prov_numerics {
    char backend[16];          /* cpu | cuda */
    char weights[96];          /* how weight matrices enter the GEMMs */
    char gemm[96];             /* GEMM arithmetic */
    char blas[256];            /* CPU BLAS library and its configuration */
    char devices[512];         /* CPU model / GPU names seen by rank 0 */
    char setup[256];           /* what a resume must match: backend, weights, gemm */
    char mixed_from[256];      /* the earlier setup when this segment was forced to mix ("" = none) */
    md_prov_done_copy *done_at_start; /* owned; only when mixing */
    int n_done;
} md_prov_numerics;

/* Resolves the numeric setup of a run of `job` on this process (rank 0):
 * runtime.backend (after MECHDIFF_BACKEND), cuda_weights / cuda_gemm "auto"
 * resolved as the CUDA backend does ($MECHDIFF_CUDA_WEIGHTS / _GEMM, else
 * bf16 / x3). Worker ranks resolve "auto" from their own environment, which
 * mpirun and srun pass on from the launching shell. */
int md_prov_resolve_numerics(const struct md_job *job, md_prov_numerics *out, md_error *err);
/* The same from the three runtime values (NULL = cpu / auto / auto): for
 * commands that run without a job (`mechdiff forward`). */
int md_prov_resolve_numerics_for(const char *backend, const char *cuda_weights, const char *cuda_gemm,
                                 md_prov_numerics *out, md_error *err);

/* Before resuming `path`: MD_ERR (message names both setups and the way
 * out) when its latest segment recorded another numeric setup and
 * allow_mixed is 0; with allow_mixed, records the mix in `now` (mixed_from,
 * done_at_start). A file whose segments predate the record passes. */
int md_prov_check_resume(const char *path, md_prov_numerics *now, int allow_mixed, md_error *err);

/* Writes the attributes (and done_at_start) into an open segment group
 * (an hid_t); 0 on success. */
int md_prov_write_numerics(int64_t group, const md_prov_numerics *n);

void md_prov_free_numerics(md_prov_numerics *n);

/* Digests of the files the provenance hashes, computed before
 * md_prov_collect_with (by one reader per node: hashshare.h). paths in
 * md_prov_collect's order; hex[i] "" = not computed (md_prov_collect_with
 * hashes it then). Owned (md_prov_free_digests). */
typedef struct md_prov_digests {
    char output_dir[4096];   /* the digest cache next to the output (filehash.h; "" = none) */
    char **paths;
    char (*hex)[65];
    int n;
} md_prov_digests;

/* Every file md_prov_collect hashes (the weight files of each model role
 * when runtime.hash_weights, then the datasets), hex all "". */
int md_prov_list_inputs(const struct md_job *job, md_prov_digests *out, md_error *err);
void md_prov_free_digests(md_prov_digests *d);

/* md_prov_collect (h5out.h) taking the digests in pre (may be NULL) as they
 * are and hashing only the rest. */
struct md_model_prov;
struct md_data_prov;
int md_prov_collect_with(const struct md_job *job, const md_prov_digests *pre, struct md_model_prov **models,
                         int *n_models, struct md_data_prov **data, int *n_data, char identity[65], int progress,
                         md_error *err);

/* One model folder's config.json, weight files and their SHA-256 through
 * the digest cache (m->role and m->dir set by the caller, the rest zero;
 * md_prov_free(m, 1, NULL) of h5out.h releases it): `mechdiff forward`. */
struct md_model_prov;
int md_prov_hash_model(struct md_model_prov *m, int progress, md_error *err);
/* Its attributes (path, config_json, weight_sha256 in sha256sum format) on
 * an open group (an hid_t), as /provenance/models/<role> of a job's file. */
int md_prov_write_model(int64_t group, const struct md_model_prov *m);

#endif
