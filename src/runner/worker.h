/* worker.h — private to src/dist: the worker side of the runner (a worker
 * rank, or rank 0 itself in a one-rank run).
 * Ownership: md_worker owns its models, stage inputs and kind states. */
#ifndef MECHDIFF_DIST_WORKER_H
#define MECHDIFF_DIST_WORKER_H

#include <mpi.h>
#include <stddef.h>

#include "mechdiff/experiment.h"
#include "mechdiff/plan.h"

enum { MD_TAG_UNIT = 11, MD_TAG_RESULT = 12, MD_TAG_STOP = 13 };

typedef struct worker_model {
    char role[64];
    struct md_model *model;    /* owned */
} worker_model;

typedef struct worker_exp {
    int stage;                 /* stage whose input is held (-1 = none) */
    md_blob input;             /* owned */
    void *state;               /* kind state from prepare (owned by the kind) */
    int prepared;
} worker_exp;

struct md_worker {
    const md_job *job;         /* borrowed */
    int rank;
    struct md_shard_group *shard; /* borrowed; non-NULL: this rank leads a layer-sharded group */
    worker_model *models;
    int n_models;
    worker_exp *exps;          /* [job->n_exps] */
    void **exp_opts;           /* [job->n_exps]: options bound once (md_kind_bind_opts; owned) */
    md_result result;          /* reused per unit */
    unsigned char *msg;        /* reused message buffer */
    size_t msg_cap;
};

int md_worker_init(md_worker *w, const md_job *job, int rank, md_error *err);
void md_worker_free(md_worker *w);
/* Sets the input of (exp, stage), releasing the previous stage's state. */
int md_worker_set_input(md_worker *w, int exp, int stage, const void *data, size_t size, md_error *err);
int md_worker_has_input(const md_worker *w, int exp, int stage);
/* Computes one unit into a message (md_unit_hdr + result bytes, or + error
 * text with status 1). *msg points into w (valid until the next call). */
int md_worker_compute(md_worker *w, int exp, int stage, int64_t unit, const unsigned char **msg, size_t *len);
/* A worker rank's loop: units from rank 0 until MD_TAG_STOP. */
int md_worker_loop(md_worker *w, MPI_Comm comm, md_error *err);

#endif
