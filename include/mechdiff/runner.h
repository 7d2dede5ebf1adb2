/* runner.h — runs a job: rank 0 coordinates and writes, the other ranks
 * compute (MPI); one rank does both.
 *
 *   rank 0: parse + validate the job, broadcast the resolved YAML; recover
 *           the output (fold the journal of a killed run); plan each
 *           experiment's current stage; hand units to idle workers (costly
 *           first, dynamically, a few in flight per worker); check each result
 *           against the plan, journal it, mark it done; at a stage's end fold
 *           the journal into the file, call finish_stage, plan the next stage.
 *   workers: receive (experiment, stage, unit [, stage input]), compute,
 *           send the result (or the error).
 * Exit statuses (also the process status of `mechdiff run`): */
#ifndef MECHDIFF_RUNNER_H
#define MECHDIFF_RUNNER_H

#include <mpi.h>
#include <signal.h>
#include <stdint.h>

#include "mechdiff/error.h"

#define MD_EXIT_OK 0        /* job (or this part) complete */
#define MD_EXIT_ERROR 1     /* an error: message names the rank and unit */
#define MD_EXIT_USAGE 2     /* bad command line or job file */
#define MD_EXIT_LOCKED 73   /* the output is being written by another run (its lock
                               is held): wait for that run, or use another -o */
#define MD_EXIT_REQUEUE 75  /* stopped by SIGTERM/SIGUSR1 after saving everything
                               finished: run the same command again (Slurm requeue) */

typedef struct md_run_opts {
    const char *job_path;              /* rank 0 reads it */
    const char *output;                /* -o (NULL = the job's output) */
    int force_new;                     /* replace an output of a different job */
    int allow_mixed_numerics;          /* resume even when the numeric setup changed (provenance.h) */
    int part_index, part_count;        /* --part i/n (-1, 0 = the job's runtime keys) */
    volatile sig_atomic_t *stop;       /* set by SIGTERM/SIGUSR1 (owned by cmd_run) */
    int progress;                      /* 1 = progress bar / lines on stderr */
    int max_in_flight;                 /* units queued per worker (0 = 2) */
} md_run_opts;

typedef struct md_run_stats {
    int64_t units;                     /* units computed in this run (rank 0) */
    double seconds;                    /* wall time of the dispatch loop */
    int finished;
} md_run_stats;

/* Runs (or resumes) the job on every rank of comm (collective). Returns an
 * MD_EXIT_* status, the same on every rank where possible; err (rank 0 for
 * job errors, "rank r, unit u: ..." for worker errors) explains it. */
int md_run(const md_run_opts *opts, MPI_Comm comm, md_run_stats *stats, md_error *err);

/* The journal next to an output: "<output>.journal" into buf. */
void md_run_journal_path(const char *output, char *buf, size_t len);

#endif
