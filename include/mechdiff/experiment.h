/* experiment.h — the plug-in interface of experiment kinds.
 *
 * An experiment kind (src/exp/<kind>.c, one line in src/exp/registry.c) is a
 * static md_kind: its keys (schema), a semantic validate hook, and three
 * callbacks the runner drives; the runner knows nothing else about it.
 *
 *   rank 0    plan(stage, input)          instantiate declared outputs + number of units
 *   workers   compute(stage, input, unit) -> result pieces (dataset, hyperslab, data)
 *   rank 0    finish_stage(stage, input, reader) -> next stage's input blob, or done
 *
 * Rules that make results independent of the number of ranks and of the order
 * units finish in (and make resume exact):
 *  - units are defined by the job and the stage input only, never by ranks;
 *  - compute(unit) depends only on (job, stage, input, unit) and writes only
 *    its own fixed hyperslabs; no two units write the same element;
 *  - finish_stage reads what it needs from the results file (the reader), so
 *    after a resume the blob is recomputed from the file, identically;
 *  - plan, compute and finish_stage are deterministic.
 * Stage inputs are small blobs (a direction, a mean vector), not datasets.
 * Ownership: the runner owns plans, results and blobs passed in; callbacks fill
 * the out-structures through the md_plan_* / md_result_* / md_blob_* helpers. */
#ifndef MECHDIFF_EXPERIMENT_H
#define MECHDIFF_EXPERIMENT_H

#include <stddef.h>
#include <stdint.h>

#include "mechdiff/error.h"
#include "mechdiff/job.h"
#include "mechdiff/schema.h"

#define MD_MAX_DIMS 6
#define MD_PATH_MAX 256

struct md_model;

/* Element types of output datasets. MD_H5_STR = variable-length UTF-8 string
 * (result data: NUL-terminated strings back to back). */
typedef enum md_h5type {
    MD_H5_F32 = 0, MD_H5_F64, MD_H5_I32, MD_H5_I64, MD_H5_U8, MD_H5_STR
} md_h5type;

/* Bytes per element in result data (0 for MD_H5_STR). */
size_t md_h5type_size(md_h5type t);
const char *md_h5type_name(md_h5type t);


/* One declared output of a kind: the output-side twin of md_key. A kind lists
 * every dataset it writes in a static table (terminated by {0}); its plan
 * declares the named axes (md_plan_axis*: labels, values or sizes) and
 * instantiates an entry with md_plan_output (the names that fill the path's
 * {placeholders}; every size from the axes); the runner checks every dataset a plan
 * declares against the table, and `mechdiff validate --keys` prints it into
 * jobs/README.md. */
typedef struct md_output {
    const char *path;        /* template under /<experiment>/: "acts/{model}/{set}" */
    md_h5type type;
    const char *dims;        /* named dimensions, comma-separated: "statement,hidden" */
    const char *axes;        /* what indexes each dimension (docs): "statements/{set} rows, d_model" */
    const char *units;       /* attribute "units" ("" for none) */
    const char *description; /* attribute "description" */
    int stage;               /* stage whose plan declares it */
    int at_plan;             /* 1 = the plan writes the data, 0 = the stage's units */
    int chunk_rows;          /* chunk rows of the first dimension (0 = whole) */
    int deflate;             /* 0 = none, 1..9 = gzip level */
    int nan_ok;              /* 1 = NaN marks "no value" here (say so in the description);
                                otherwise a NaN or infinity in a result is an error */
} md_output;

/* Everything a callback may look at: the job, this experiment, its index,
 * and its options: the kind's options struct (md_kind.opts, .opts_size),
 * bound once by whoever built the context (md_kind_bind_opts) and owned
 * there; NULL for a kind without options. toks: the tokenizers of the
 * caller's phase (tokcache.h; borrowed, NULL = none: each use loads its
 * own), set by callers that plan, validate or estimate several times. */
struct md_tokcache;
typedef struct md_kind_ctx {
    const md_job *job;
    const md_exp_spec *exp;
    int exp_index;
    const void *opts;
    struct md_tokcache *toks;
} md_kind_ctx;

/* A stage's input (output of the previous finish_stage). */
typedef struct md_blob {
    void *data;   /* owned by whoever holds the blob */
    size_t size;
} md_blob;

int md_blob_set(md_blob *b, const void *data, size_t size, md_error *err);
void md_blob_free(md_blob *b);

/* ---- plan (rank 0) ---------------------------------------------------- */
typedef struct md_plan md_plan;

/* What one job can hold: units per stage (the coordinator keeps a few bytes
 * per unit) and bytes per dataset (at 8 bytes per element). A plan beyond
 * them is an error before anything is allocated. */
#define MD_PLAN_MAX_UNITS ((int64_t)1 << 24)
#define MD_PLAN_MAX_DSET_BYTES ((double)(1ull << 40))

/* Declares an instance of output o (an entry of the kind's table): its path
 * is o->path with each {placeholder} replaced, in order, by args[i] (NULL
 * when it has none); its rank is the number of o->dims and each dimension's
 * size is that of the plan's axis of that name (md_plan_axis*, below), the
 * only place a size comes from. A dimension without a declared axis is an
 * internal error naming the kind, the dataset and the dimension. */
int md_plan_output(md_plan *p, const md_output *o, const char *const *args, md_error *err);
/* md_plan_output, then its whole data (md_plan_put at offset 0). */
int md_plan_output_put(md_plan *p, const md_output *o, const char *const *args, const void *data, size_t nbytes,
                       md_error *err);
/* Named axes: a category axis (model roles, conditions, interventions,
 * sets) gets string labels, a numeric axis (layers, positions) its real
 * values where they are not 0..n-1, a width or count (hidden, neuron, pair)
 * only its size. A kind's plan declares each once, before the outputs that
 * use it; they size, and label (as the HDF5 dimension scale), the dimension
 * of that name of every output this plan declares under `scope` ("" = the
 * whole experiment, "cities" = the dataset cities and everything under
 * cities/; the longest scope wins, so one dimension name can have a
 * different size per group). description ("" = a default) is the scale's
 * attribute. Labels and values are copied. */
int md_plan_axis(md_plan *p, const char *scope, const char *name, const char *const *labels, int64_t n,
                 const char *description, md_error *err);
/* md_plan_axis with the labels comma-separated in one string ("a,b,c"). */
int md_plan_axis_csv(md_plan *p, const char *scope, const char *name, const char *csv, const char *description,
                     md_error *err);
int md_plan_axis_values(md_plan *p, const char *scope, const char *name, const int64_t *values, int64_t n,
                        const char *description, md_error *err);
/* An axis that is only a size (widths: hidden, neuron; counts: pair, row):
 * its scale holds 0..n-1, as the writer stores for a dimension without
 * labels or values. */
int md_plan_axis_size(md_plan *p, const char *scope, const char *name, int64_t n, md_error *err);

/* Attribute on the experiment group or on a declared dataset ("" = group). */
int md_plan_attr(md_plan *p, const char *path, const char *name, const char *value, md_error *err);
/* Number of work units of this stage (1..MD_PLAN_MAX_UNITS). */
int md_plan_units(md_plan *p, int64_t n, md_error *err);
/* The estimated work of a unit (default 1) in token passes: one token
 * through every block of the model = 1, so about the unit's FLOPs over
 * twice the model's weights. Costs compare across the stages and kinds of
 * a job: the coordinator hands out costly units first (so that ranks finish
 * together) and progress's ETA is the remaining cost over the cost finished
 * per second lately (progress.h lists each kind's formula; exp_cost.h
 * prices logits, partial forwards and texts from the model's widths). A
 * text the kind has read counts md_exp_cost_text_tokens, a row it has not
 * read (or whose template it does not render) at plan time
 * MD_COST_ROW_TOKENS tokens. */
void md_plan_cost(md_plan *p, int64_t unit, double cost);
#define MD_COST_ROW_TOKENS 32
/* Data known at plan time (pair tables, labels): written at the start of the
 * stage, rewritten identically on resume. Same layout as md_result_put. */
int md_plan_put(md_plan *p, const char *path, const int64_t *offset, const int64_t *count,
                const void *data, size_t nbytes, md_error *err);

/* ---- results (workers) ------------------------------------------------ */
typedef struct md_result md_result;

/* Adds a piece: data for dataset `path` at hyperslab offset/count (rank =
 * the dataset's rank). Data is copied, row-major, type of the dataset;
 * for MD_H5_STR, prod(count) NUL-terminated strings back to back. The runner
 * checks path, type size and bounds against the plan. */
int md_result_put(md_result *r, const char *path, int rank, const int64_t *offset,
                  const int64_t *count, const void *data, size_t nbytes, md_error *err);

/* ---- worker context ---------------------------------------------------- */
typedef struct md_worker md_worker;

/* The model of a role (job's `models:`), loaded on first use with the job's
 * runtime backend and kept for the life of the rank. The worker owns it. */
int md_worker_model(md_worker *w, const char *role, struct md_model **out, md_error *err);
int md_worker_rank(const md_worker *w);

/* ---- reading results back (rank 0, finish_stage) ---------------------- */
typedef struct md_reader md_reader;

/* Shape of a dataset of this experiment; returns its rank or MD_ERR. */
int md_reader_dims(md_reader *r, const char *path, int64_t dims[MD_MAX_DIMS], md_error *err);
/* Reads a hyperslab converted to double / float (numeric datasets). */
int md_reader_f64(md_reader *r, const char *path, const int64_t *offset, const int64_t *count,
                  double *out, md_error *err);
int md_reader_f32(md_reader *r, const char *path, const int64_t *offset, const int64_t *count,
                  float *out, md_error *err);

/* ---- estimates (rank 0, `mechdiff status`) --------------------------- */
/* Stages an experiment may have (the kinds have at most 3). */
#define MD_KIND_MAX_STAGES 8

/* What a stage will hold, from the job alone (md_kind.estimate). */
typedef struct md_stage_estimate {
    int64_t units; /* >= 1: exactly what plan will declare for the stage; 0: the job
                      has no such stage; -1: not known before the earlier stages end */
    double cost;   /* the summed cost (md_plan_cost) of those units; <= 0: not known
                      (progress then counts MD_COST_ROW_TOKENS per unit) */
} md_stage_estimate;

/* ---- the kind --------------------------------------------------------- */
typedef struct md_kind {
    const char *name;        /* value of `kind:` */
    const char *doc;         /* one paragraph for jobs/README.md */
    const md_key *keys;      /* kind-specific keys, {0}-terminated */
    const md_output *outputs; /* every dataset it writes, {0}-terminated */
    const md_opt_bind *opts;  /* its typed options: key -> field of its options struct
                                 (schema.h; every key bound once, test_params) */
    size_t opts_size;         /* sizeof that struct; callbacks read it as ctx->opts */
    const void *data;         /* optional: what callbacks shared by several kinds read
                                 (ctx->exp->impl->data), e.g. the md_dirseq of truth and refusal */
    const char *alias;        /* optional: this entry is another kind under an old name; what it
                                 maps to, in words (`validate` prints it) */

    /* Semantic checks beyond the schema (models pair, " TRUE" is one token).
     * Optional. Errors should start with the experiment's file:line:col. */
    int (*validate)(const md_kind_ctx *ctx, md_error *err);

    /* Rank 0: declare the datasets and units of `stage` (0, 1, ...). input is
     * empty for stage 0. */
    int (*plan)(const md_kind_ctx *ctx, int stage, const md_blob *input, md_plan *plan,
                md_error *err);

    /* Optional, every worker: prepare per-stage state once (tokenised
     * prompts, a cached clean run); *state is passed to compute and released
     * with release_state. */
    int (*prepare)(const md_kind_ctx *ctx, md_worker *w, int stage, const md_blob *input,
                   void **state, md_error *err);
    void (*release_state)(void *state);

    /* A worker: compute one unit. Must not depend on anything but its
     * arguments (no order, no rank). */
    int (*compute)(const md_kind_ctx *ctx, md_worker *w, void *state, int stage,
                   const md_blob *input, int64_t unit, md_result *out, md_error *err);

    /* Rank 0, after every unit of `stage` is in the file: set *next (input of
     * stage+1) and *done = 0, or *done = 1 when this was the last stage.
     * Optional: absent means one stage. */
    int (*finish_stage)(const md_kind_ctx *ctx, int stage, const md_blob *input,
                        md_reader *reader, md_blob *next, int *done, md_error *err);

    /* Optional: a readable unit name for messages ("cities/base/pair 17").
     * Default "unit <n>". */
    void (*unit_name)(const md_kind_ctx *ctx, int stage, int64_t unit, char *buf, size_t len);

    /* Optional, rank 0 and `mechdiff status`: every stage's units and cost
     * from the job alone (before the earlier stages ran), so that progress
     * shows the whole job's total and work from the start; see
     * md_stage_estimate. out[MD_KIND_MAX_STAGES] arrives zeroed (= no such
     * stage): fill the stages the kind has. One build of what the kind reads
     * (tokenizers, datasets; no model weights) for all of them. MD_ERR (err
     * says why: a file of the job is gone) when it cannot tell; callers then
     * count the stages as not known. Absent: stage 0 only when the kind has
     * no finish_stage, else later stages unknown (md_kind_estimate_stages). */
    int (*estimate)(const md_kind_ctx *ctx, md_stage_estimate *out, md_error *err);
} md_kind;

/* The registry (src/exp/registry.c): NULL-terminated list; lookup by name. */
const md_kind *const *md_kinds(void);
const md_kind *md_kind_find(const char *name);

/* Typed options, bound once per job by whoever calls the kinds (runner,
 * worker, validate): (*opts)[i] = experiment i's options struct, zeroed
 * storage of its kind's opts_size filled by md_params_bind (NULL for a kind
 * without options). Pointers inside point into the job, which must outlive
 * them. Owned by the caller: md_kind_free_opts (NULL-safe). */
int md_kind_bind_opts(const md_job *job, void ***opts, md_error *err);
void md_kind_free_opts(const md_job *job, void **opts);
/* The context of experiment i of job with its bound options (opts from
 * md_kind_bind_opts). */
md_kind_ctx md_kind_ctx_of(const md_job *job, void *const *opts, int i);
/* out[s] for every stage s < MD_KIND_MAX_STAGES of the experiment of ctx:
 * its kind's estimate, or without one the default: stage 0 not known, the
 * later stages not known either when the kind has finish_stage, else none.
 * MD_ERR when the kind's estimate failed (err says why): out then holds
 * the default. */
int md_kind_estimate_stages(const md_kind_ctx *ctx, md_stage_estimate out[MD_KIND_MAX_STAGES], md_error *err);

/* Keys every experiment has (kind, name), before the kind's own keys. */
extern const md_key MD_EXP_COMMON_KEYS[];

#endif
