/* dirseq.h — private to src/exp: the direction sequence that the truth and
 * refusal kinds both follow (docs/methods.md, "Truthfulness" and "Refusal"):
 *
 *   stage 0  collect     unit = (model, set, batch of rows): the hook point of
 *                        each prompt at one or more (layer, position)
 *                        candidates, put into acts/<model>/<set>
 *   finish_stage(0)      directions from the stored activations -> the
 *                        stage-1 blob (md_dirseq_dirs)
 *   stage 1  intervene   unit = the kind's (target, condition, set, batch):
 *                        a forward or a generation with a direction added or
 *                        ablated
 *   finish_stage(1)      scores read back -> the stage-2 blob (doubles)
 *   stage 2  summary     one unit; the kind's plan writes the scores
 *
 * A kind supplies what differs as an md_dirseq (its md_kind.data) and sets
 * .prepare / .compute / .finish_stage to the md_dirseq_* callbacks below;
 * its plan and outputs table stay its own. Beside the sequence: the collect
 * stage's unit layout and activation read, the stage-1 blob of directions,
 * and the helpers of the intervention and score stages.
 *
 * Everything is deterministic and depends only on its arguments (the rules
 * of experiment.h). Ownership: stated per function; nothing keeps a pointer
 * to its arguments. */
#ifndef MECHDIFF_EXP_DIRSEQ_H
#define MECHDIFF_EXP_DIRSEQ_H

#include <stddef.h>
#include <stdint.h>

#include "mechdiff/error.h"
#include "mechdiff/exp_units.h"
#include "mechdiff/experiment.h"

struct md_model;

/* What a kind does in each step of the sequence. state is the kind's own
 * (built from the job and its files only, identical on every rank). */
typedef struct md_dirseq {
    const char *kind; /* for errors */
    int (*build)(const md_kind_ctx *ctx, void **state, md_error *err);
    void (*release)(void *state);
    /* stage 0 and stage 1 units */
    int (*collect)(const md_kind_ctx *ctx, md_worker *w, void *state, int64_t unit, md_result *out, md_error *err);
    int (*intervene)(const md_kind_ctx *ctx, md_worker *w, void *state, const md_blob *input, int64_t unit,
                     md_result *out, md_error *err);
    /* finish_stage(0): the directions blob; finish_stage(1): the scores blob */
    int (*directions)(void *state, md_reader *rd, md_blob *next, md_error *err);
    int (*scores)(void *state, const md_blob *input, md_reader *rd, md_blob *next, md_error *err);
    /* the number of units of stage 0 or 1, from the state */
    int64_t (*units)(const void *state, int stage);
    /* the cost of a unit of stage 0 or 1 (md_plan_cost), from the state */
    double (*unit_cost)(const void *state, int stage, int64_t unit);
    /* optional: what unit_cost needs beyond the state's build (prompts
     * tokenised, ...), done only where costs are wanted (plans, estimate) */
    int (*price)(const md_kind_ctx *ctx, void *state, md_error *err);
} md_dirseq;

/* The md_kind callbacks of a kind whose .data is its md_dirseq. */
int md_dirseq_prepare(const md_kind_ctx *ctx, md_worker *w, int stage, const md_blob *input, void **state,
                      md_error *err);
int md_dirseq_compute(const md_kind_ctx *ctx, md_worker *w, void *state, int stage, const md_blob *input,
                      int64_t unit, md_result *out, md_error *err);
int md_dirseq_finish(const md_kind_ctx *ctx, int stage, const md_blob *input, md_reader *rd, md_blob *next,
                     int *done, md_error *err);
/* md_kind.estimate: stages 0 and 1 from one build of the state (priced
 * when the kind has .price; units, their unit_cost summed), stage 2 one
 * unit at the default cost 1. */
int md_dirseq_estimate(const md_kind_ctx *ctx, md_stage_estimate *out, md_error *err);
/* A kind's plan of stage 0 or 1, after md_plan_units: every unit's
 * md_plan_cost from unit_cost (state: the kind's). */
void md_dirseq_plan_costs(const md_kind_ctx *ctx, const void *state, int stage, md_plan *plan);

/* ---- stage 0: collect ------------------------------------------------ */
/* The units of stage 0 into a zeroed u: (model, set, batch) for every model
 * in [0, n_models), set in [0, n_sets) and batch of `batch` of the set's
 * rows[set] rows, in that order (key[u] = {model, set, batch, 0}). */
int md_dirseq_collect_units(md_exp_units *u, int n_models, int n_sets, const int *rows, int batch, md_error *err);

/* Where the collect stage reads: the hook point at every (layers[i],
 * positions[j]) candidate (positions negative, counted from the end of each
 * prompt), stored as [row, hidden] when rank is 2 (one candidate) or
 * [row, layer, position, hidden] when rank is 4. */
typedef struct md_dirseq_at {
    int hook;
    const int *layers;
    int n_layers;
    const int *positions;
    int n_pos;
    int rank;
} md_dirseq_at;

/* Reads the n prompts ids[i][0..len[i]) at every candidate of `at` in one
 * batched forward of m and puts them into `path` at rows [r0, r0 + n). A
 * prompt shorter than a position is an error naming its row. */
int md_dirseq_put_acts(struct md_model *m, int **ids, const int *len, int n, const md_dirseq_at *at,
                       const char *path, int r0, md_result *out, md_error *err);

/* ---- the stage-1 blob: directions ------------------------------------ */
/* int32 M, L, P, d, n_extra, 0; f64 raw[M][L][P][d] (the difference of the
 * class means), dir[M][L][P][d] (raw / norm; 0 where the kind allows a zero
 * difference), norm[M][L][P], cos[M][M] (between the models' dir at
 * candidate 0), extra[n_extra] (what else the kind passes on to stage 1).
 * A view of a stage input is read-only; md_dirseq_alloc_dirs' is the
 * writer's. */
typedef struct md_dirseq_dirs {
    int M, L, P, d, n_extra;
    double *raw, *dir, *norm, *cos, *extra;
} md_dirseq_dirs;

/* A zeroed blob for M models, L x P candidates of width d and n_extra
 * doubles; *v points into it. Owned by the caller (free); NULL when out of
 * memory. */
void *md_dirseq_alloc_dirs(int M, int L, int P, int d, int n_extra, md_dirseq_dirs *v, size_t *bytes);
/* *v = the parts of stage input b; an error starting with `kind` when b is
 * missing or its size does not match its header. */
int md_dirseq_view_dirs(const md_blob *b, const char *kind, md_dirseq_dirs *v, md_error *err);
/* v->cos from v->dir at candidate 0 of every pair of models. */
void md_dirseq_fill_cosines(md_dirseq_dirs *v);

/* ---- stage 1: intervene ---------------------------------------------- */
/* vec[d] = (float) the direction of model src at candidate cand of v: the
 * unit one (dir) or the raw difference (raw). An error naming `role` (the
 * target model) when v's width is not d. */
int md_dirseq_source_vec(const md_dirseq_dirs *v, int src, int cand, int raw, int d, const char *role, float *vec,
                         md_error *err);

/* ---- finish_stage(1) and stage 2: scores ----------------------------- */
/* *rate = the mean of the n values of `path` at offset/count (the count's
 * product is n): the refusal rate of n 0/1 flags. */
int md_dirseq_read_rate(md_reader *rd, const char *path, const int64_t *offset, const int64_t *count, int n,
                        double *rate, md_error *err);
/* *scores = the doubles of stage 2's input when it holds exactly n of them,
 * else the error "<kind>: stage 2 input has the wrong size". */
int md_dirseq_view_scores(const md_blob *input, const char *kind, size_t n, const double **scores, md_error *err);

#endif
