/* progress.h — what a run tells its user on stderr (rank 0): a first line
 * saying what is starting (job, models and their folders, ranks, output), a
 * plan line with the units of every experiment and stage known from the
 * start (the planned stages, and the later ones from md_kind.estimate_units;
 * stages whose size is not known yet are listed apart and not counted), then
 * progress against that total, and a last line saying what was written.
 *
 * Every line starts "mechdiff: <UTC time> ". Progress is a live one-line
 * bar (\r) when stderr is a terminal and the run is not under mpirun / srun
 * (OMPI_COMM_WORLD_SIZE > 1, PMI_SIZE > 1 or SLURM_STEP_ID set: ranks'
 * output is forwarded and a bar would garble it), else a line every
 * runtime.progress_interval seconds. MECHDIFF_PROGRESS=bar|lines overrides
 * the choice.
 *
 * The total counts only this part's units (`--part i/n`: unit u belongs to
 * part u mod n); a part run stops at the end of its current stage, so its
 * total holds no later stage.
 *
 * Ownership: md_progress keeps no pointer to its arguments except the job,
 * which must outlive it; md_progress_free releases it. */
#ifndef MECHDIFF_PROGRESS_H
#define MECHDIFF_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "mechdiff/error.h"
#include "mechdiff/job.h"

/* Stages per experiment the progress tracks (the kinds have at most 3). */
#define MD_PROGRESS_MAX_STAGES 8
/* Units finished whose times give the rate and ETA of progress lines. */
#define MD_PROGRESS_RATE_WINDOW 32

typedef struct md_progress md_progress;

typedef struct md_progress_opts {
    const md_job *job;       /* the job (borrowed; outlives the progress) */
    void *const *exp_opts;   /* its experiments' bound options (md_kind_bind_opts; borrowed) */
    const char *output;      /* the results file */
    int world;               /* MPI ranks */
    int shard_k;             /* ranks per model copy (runtime.shard_ranks) */
    int part_index, part_count; /* --part i/n (part_count 0 = whole job) */
    int enabled;             /* 0 = print nothing (mechdiff run --quiet) */
} md_progress_opts;

int md_progress_create(md_progress **out, const md_progress_opts *opt, md_error *err);
void md_progress_free(md_progress *p);

/* The first line: job, models with their folders, ranks, output. */
void md_progress_print_start(md_progress *p);

/* A stage the coordinator planned: its units in this part and how many of
 * them the file already has. Replaces an estimate (a different count than
 * the estimate said is reported: a kind's estimate_units is wrong). */
void md_progress_set_stage(md_progress *p, int exp, int stage, int64_t units, int64_t done);
/* The experiment ended after `stage` (no later stage will run here). */
void md_progress_end_exp(md_progress *p, int exp, int stage);
/* Sizes every later stage of every experiment from its kind's
 * estimate_units and prints the plan line. Call once, after the first
 * stages are planned. */
void md_progress_print_plan(md_progress *p);

/* One unit of (exp, stage) finished in this run. */
void md_progress_unit_done(md_progress *p, int exp, int stage);
/* A progress line / bar update when its interval has passed (final: now,
 * and end the bar's line). */
void md_progress_tick(md_progress *p, int final);
/* Ends a live bar's line before another message (no-op for lines). */
void md_progress_break_line(md_progress *p);
/* The last line: how the run ended, the file written (NULL = the output
 * given at create), its datasets and size, units done (this run and in
 * all), wall time since md_progress_create. */
void md_progress_print_end(md_progress *p, const char *how, const char *file, int n_datasets);

/* Units done / known total (also the figures of the lines; unit tests). */
void md_progress_counts(const md_progress *p, int64_t *done, int64_t *total, int *unsized_stages);
/* Units of u in [0, n) with u mod part_count == part_index (all when
 * part_count <= 0). */
int64_t md_progress_units_in_part(int64_t n, int part_index, int part_count);
/* "2026-12-07T06:31:02Z" (the current UTC time) into buf (>= 21 bytes). */
void md_progress_utc(char *buf, size_t len);

#endif
