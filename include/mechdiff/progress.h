/* progress.h — what a run tells its user on stderr (rank 0): a first line
 * saying what is starting (job, models and their folders, ranks, output), a
 * plan line with the units of every experiment and stage known from the
 * start (the planned stages, and the later ones from md_kind.estimate;
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
 * ETA by cost: units of different kinds and stages cost very differently
 * (a knowledge pair block against a truth batch), so every unit carries its
 * estimated work (md_plan_cost: token passes, one token through every block
 * of the model; a row not tokenised at plan time = MD_COST_ROW_TOKENS
 * tokens; a forward of fewer than R rows is bound by its weight reads and
 * costs as R rows, exp_cost.h). A planned stage has its plan's costs, a
 * later one its kind's estimate (else MD_COST_ROW_TOKENS per unit). With B
 * the multiply-adds of a token through every block, k / L the share of the
 * L blocks a forward runs and lg = V d / B the logits of one position in
 * token passes (exp_cost.h: 0.075 for Llama-3.1-8B, 1.19 for the d=128
 * organism), the kinds count:
 *   knowledge   per pair of T tokens, N window positions, H heads patched
 *               one at a time (1 unless component: head), L layers:
 *               2 T (the clean runs) + H N(N+1)/2 (L-1)/2 (cell (l, t)
 *               reruns the T - t positions from t through the L - l - 1
 *               blocks after l; (L+1)/2 for hook points inside a block),
 *               bench/study_cost.py's grid_flops in token passes; a
 *               block's patched forwards (kn_compute.c) are priced by the
 *               read bound per block of weights they pass (nb pairs x the
 *               started layers x (T - t) rows, exp_cost.h)
 *   truth       per row of a batch its longest statement's tokens t (1 +
 *               bytes / 4, exp_cost.h: the batch runs padded); collect: rows
 *               x t x (layer + 1) / L (the forward stops after the layer it
 *               reads: 13/32 at the study's layer 12); intervention: rows x
 *               (t + the few-shot prefix's and the suffix's bytes / 4 + lg);
 *               the summary stage 1
 *   refusal     with t a batch's longest prompt in its role's template
 *               (rendered and tokenised as the run does, at plan time:
 *               md_refusal_price): collect: rows x t x (deepest layer read
 *               + 1) / L; generation: rows x t (x 1.2 with a direction
 *               hooked in) for the prompt, then max_new_tokens - 1 steps
 *               of one token a row and the logits of every new token,
 *               priced by the read bound (R = MD_COST_RIDGE_ROWS,
 *               exp_cost.h): (max_new_tokens - 1 + max_new_tokens x lg) x
 *               max(rows, R); the summary stage 1
 *   confidence  stage 0 (weights only): neurons x lg (a neuron's logit lens
 *               is V d multiply-adds); with t the batch's longest prompt's
 *               tokens (1 + bytes / 4): stage 1: rows x (t + lg); stage 2:
 *               rows x (t + lg) + top_k x (1/L + lg) x max(rows, R) (each
 *               ablated rerun of the last layer and the logits at one
 *               position reads those weights for the batch's few rows: the
 *               read bound)
 *   selftest    its `cost` pattern
 * Rough by design (attention's T^2, the real length of a text the kind
 * does not tokenise, and how well a backend batches beyond the one read
 * bound are left out): the ratios between stages are what matters.
 * bench/bench_unit_cost.sh measures seconds and GEMM FLOPs per
 * unit against these costs at 8B widths.
 * ETA = the cost left (sized stages) / the cost finished per second over the
 * last MD_PROGRESS_RATE_WINDOW units (from the finish of the unit before
 * them; from the start of the run while fewer have finished), measured up to
 * now so that it decays while nothing finishes. No unit finished yet in this
 * run: ETA unknown. Lines also give the share of the work (cost) done.
 *
 * Ownership: md_progress keeps no pointer to its arguments except the job,
 * which must outlive it; md_progress_free releases it. */
#ifndef MECHDIFF_PROGRESS_H
#define MECHDIFF_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "mechdiff/error.h"
#include "mechdiff/experiment.h"
#include "mechdiff/job.h"
#include "mechdiff/tokcache.h"

/* Stages per experiment the progress tracks (experiment.h). */
#define MD_PROGRESS_MAX_STAGES MD_KIND_MAX_STAGES
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
    double start;            /* md_clock_seconds() at the run's start (0 = at create; tests) */
} md_progress_opts;

int md_progress_create(md_progress **out, const md_progress_opts *opt, md_error *err);
void md_progress_free(md_progress *p);

/* The first line: job, models with their folders, ranks, output. */
void md_progress_print_start(md_progress *p);

/* A stage the coordinator planned: its n_units units, their costs (the
 * plan's; NULL = 1 each) and done flags (what the file already has; NULL =
 * none). Counts the units of this part. Replaces an estimate (a different
 * count than the estimate said is reported: a kind's estimate is
 * wrong). */
void md_progress_set_stage(md_progress *p, int exp, int stage, int64_t n_units, const double *cost,
                           const uint8_t *done);
/* The experiment ended after `stage` (no later stage will run here). */
void md_progress_end_exp(md_progress *p, int exp, int stage);
/* Sizes every later stage of every experiment from its kind's estimate
 * (one per experiment) and prints the plan line. Call once, after the first
 * stages are planned. toks: the tokenizers the plans used (tokcache.h;
 * borrowed, NULL: the estimates load their own). */
void md_progress_print_plan(md_progress *p, md_tokcache *toks);

/* One unit of (exp, stage) of this cost finished in this run (now, or at
 * clock time t). */
void md_progress_unit_done(md_progress *p, int exp, int stage, double cost);
void md_progress_unit_done_at(md_progress *p, int exp, int stage, double cost, double t);
/* Seconds left at clock time now (see "ETA by cost" above); -1 = unknown
 * (no unit finished in this run yet); 0 when nothing sized is left. */
double md_progress_eta(const md_progress *p, double now);
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
/* Cost done / cost of the sized stages (token passes; unit tests). */
void md_progress_work(const md_progress *p, double *done, double *total);
/* Units of u in [0, n) with u mod part_count == part_index (all when
 * part_count <= 0). */
int64_t md_progress_units_in_part(int64_t n, int part_index, int part_count);
/* "1h02m03s", "4m05s" or "6s" (s rounded; negative or not finite = 0s). */
void md_progress_duration(double s, char *buf, size_t len);
/* "2026-12-07T06:31:02Z" (the current UTC time) into buf (>= 21 bytes). */
void md_progress_utc(char *buf, size_t len);

#endif
