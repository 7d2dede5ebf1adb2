/* coord.h — private to src/runner: the coordinator's state (runner.c) and
 * the job life cycle around it (runner_job.c: load and share the job, lock
 * the output, recover a killed run, free). Ownership: coord owns everything
 * its fields say; md_coord_free releases it. */
#ifndef MECHDIFF_RUNNER_COORD_H
#define MECHDIFF_RUNNER_COORD_H

#include <mpi.h>
#include <stdint.h>

#include "mechdiff/experiment.h"
#include "mechdiff/h5out.h"
#include "mechdiff/inflight.h"
#include "mechdiff/job.h"
#include "mechdiff/journal.h"
#include "mechdiff/outlock.h"
#include "mechdiff/plan.h"
#include "mechdiff/progress.h"
#include "mechdiff/provenance.h"
#include "mechdiff/runner.h"
#include "worker.h"

enum { EXP_RUNNING = 0, EXP_PART_DONE, EXP_DONE };

typedef struct exp_state {
    int stage;
    md_blob input;             /* input of the current stage (owned) */
    md_plan plan;              /* plan of the current stage (owned) */
    md_dset *dsets;            /* every dataset declared so far (owned) */
    int n_dsets;
    uint8_t *done;             /* [plan.n_units] (owned) */
    int64_t remaining;         /* units of this part not yet done */
    int status;
    int needs_define;          /* plan not yet in the file */
} exp_state;

typedef struct queue_item {
    int exp;
    int stage;
    int64_t unit;
    double cost;
} queue_item;

typedef struct coord {
    const md_run_opts *opts;
    md_job *job;
    void **exp_opts;           /* [exp]: each experiment's options, bound once (md_kind_bind_opts; owned) */
    MPI_Comm comm;
    int world;
    int shard_k;               /* ranks per model copy (runtime.shard_ranks); units go to group leaders */
    char out[4096], jpath[4200];
    int part_index, part_count;
    exp_state *exps;
    queue_item *queue;         /* owned */
    int64_t q_head, q_len, q_cap;
    int *in_flight;            /* per rank */
    MPI_Request *send_req;     /* unit messages still being sent (owned) */
    unsigned char **send_buf;  /* their buffers, freed when the send completes (owned) */
    int n_send, cap_send;
    int **have_stage;          /* [rank][exp]: stage whose input the rank holds */
    md_journal *journal;
    md_inflight *inflight;     /* OUT.h5.inflight: units per rank, for a post-mortem (owned) */
    int lock_fd;               /* flock on OUT.h5.lock held for the run (owned) */
    int lock_held;             /* 1 when another run holds that lock */
    uint64_t generation;
    md_provenance prov;
    md_model_prov *models;
    int n_models;
    md_data_prov *data;
    int n_data;
    char identity[65];
    char *job_yaml;
    md_segment seg;
    md_prov_numerics numerics; /* this run's resolved backend/precision, recorded per segment (owned) */
    md_worker self;            /* rank 0's own worker (one-rank runs) */
    int failed;
    md_error fail;
    /* progress */
    int64_t done_units, run_units;
    double t_start, t_last_flush, t_last_snapshot;
    md_progress *progress;     /* rank 0's progress lines (owned; freed by md_run) */
    md_tokcache *toks;         /* rank 0's tokenizers of the start-up (validation, stage-0 plans, progress
                                  estimate; owned; freed once the progress plan line is out, or by md_coord_free) */
    md_prov_digests digests;   /* rank 0: start-up digests read by every node (hashshare.h; owned, freed by md_run) */
} coord;

/* runner.c: a snapshot of the output (fold the journal, commit), and the
 * completion of unit messages still being sent (wait = block until all). */
int md_coord_snapshot(coord *c, const char *exit_reason, md_error *err);
void md_coord_reap_sends(coord *c, int wait);
/* runner_job.c */
/* Rank 0: reads, parses and validates the job (c->job), sets the output. */
int md_coord_load_job(coord *c, md_error *err);
/* Broadcasts the resolved job from rank 0 (ok = rank 0 has one). */
int md_coord_share_job(coord *c, int rank, int ok, md_error *err);
/* Takes the flock on OUT.h5.lock (one run per output at a time). */
int md_coord_lock_output(coord *c, md_error *err);
/* Checks an existing output against the job and folds its journal. */
int md_coord_recover(coord *c, md_error *err);
void md_coord_free(coord *c);
/* Adds what to do to an error of writing the output on a full disk. */
void md_coord_explain_space(const coord *c, md_error *err);
/* Takes in one result message if one is waiting: its *n bytes into *buf
 * (grown as needed; *cap its size; the caller's, freed by it), *src the
 * sending rank. 1 received, 0 none waiting, -1 out of memory (*n set, the
 * message left waiting). */
int md_coord_recv_result(coord *c, unsigned char **buf, int *cap, int *n, int *src);
/* Tells every worker to stop, after taking in (and dropping) the results
 * still out; prints err and calls MPI_Abort with status when they are not
 * in within runtime.stop_grace s. */
void md_coord_stop_workers(coord *c, int status, const md_error *err);

#endif
