/* refusal_common.h — private to src/exp: what the two refusal kinds
 * (refusal.c, refusal_sweep.c) do alike. Both take a harmful and a harmless
 * instruction CSV, split each into train and test rows with the same seeded
 * shuffle, read the hook point of the templated train prompts (stage 0),
 * compute mean(harmful) − mean(harmless) from them (finish_stage 0), and score
 * greedy generations of test prompts by refusal prefix (stage 1).
 *
 * Everything here is deterministic and depends only on its arguments (the
 * rules of experiment.h). Ownership: md_refusal_sets owns its CSVs and row
 * tables (md_refusal_free_sets); the functions keep no pointer to their
 * arguments; stated per function otherwise. */
#ifndef MECHDIFF_EXP_REFUSAL_COMMON_H
#define MECHDIFF_EXP_REFUSAL_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "mechdiff/csv.h"
#include "mechdiff/error.h"
#include "mechdiff/exp_units.h"
#include "mechdiff/experiment.h"
#include "mechdiff/forward.h"
#include "mechdiff/hf_config.h"

struct md_model;

#define MD_REFUSAL_MAX_ROLES 16
enum { MD_REFUSAL_HARMFUL = 0, MD_REFUSAL_HARMLESS = 1 };

/* Keys both kinds have, with the same meaning and default (one entry each,
 * spliced into their key tables). */
#define MD_REFUSAL_KEY_SETS                                                                                           \
    {.name = "harmful", .type = MD_KEY_STRING, .def = "harmful",                                                     \
     .doc = "Name (top-level datasets map) of the harmful instruction CSV (column `instruction`)."},                 \
    {.name = "harmless", .type = MD_KEY_STRING, .def = "harmless",                                                   \
     .doc = "Name (top-level datasets map) of the harmless instruction CSV (column `instruction`)."},               \
    {.name = "column", .type = MD_KEY_STRING, .def = "instruction",                                                  \
     .doc = "CSV column holding the instruction (AdvBench harmful_behaviors.csv: goal)."},                          \
    {.name = "test_fraction", .type = MD_KEY_FLOAT, .def = "0.2", .min = 0.01, .max = 0.99,                          \
     .doc = "Fraction of each set held out for generation (docs/methods.md: 0.2)."},                                \
    {.name = "split_seed", .type = MD_KEY_INT, .def = "42", .min = 0, .max = 2147483647,                             \
     .doc = "Seed of the train/test shuffle (docs/methods.md: 42; the same split in both refusal kinds for the "     \
            "same seed and sizes)."}
#define MD_REFUSAL_KEY_TEMPLATES                                                                                      \
    {.name = "templates", .type = MD_KEY_MAP, .def = "",                                                             \
     .doc = "Prompt template per role: 'base' (\"User: {instruction}\\nAssistant:\"), 'chat' (the model's own chat "  \
            "template), a template name (llama3, llama2, mistral, tulu) or a format string with {instruction}. "     \
            "Default: 'base' for roles whose name contains 'base', else 'chat'."},                                 \
    {.name = "hook", .type = MD_KEY_STRING, .def = "resid_pre", .allowed = "resid_pre|resid_mid|resid_post",        \
     .doc = "Hook point of the direction (docs/methods.md: resid_pre)."}
#define MD_REFUSAL_KEY_GENERATION                                                                                     \
    {.name = "max_new_tokens", .type = MD_KEY_INT, .def = "16", .min = 1, .max = 4096,                               \
     .doc = "Greedy new tokens per generation (docs/methods.md: 16)."},                                             \
    {.name = "batch", .type = MD_KEY_INT, .def = "16", .min = 1, .max = 4096,                                        \
     .doc = "Instructions per work unit (one batched forward / generation)."}

/* The keys both kinds have, parsed once (md_params_bind). A kind's options
 * struct has this as its member `c`; MD_REFUSAL_OPTS_BIND(T) lists the
 * bindings of these keys into T. Strings and lists point into the job. */
typedef struct md_refusal_opts {
    const md_value *models, *templates;
    const char *harmful, *harmless, *column, *hook;
    double test_fraction;
    int64_t split_seed, n_train, n_test, max_new_tokens, batch;
} md_refusal_opts;
#define MD_REFUSAL_OPT(T, f) {#f, offsetof(T, c) + offsetof(md_refusal_opts, f)}
#define MD_REFUSAL_OPTS_BIND(T)                                                                                       \
    MD_REFUSAL_OPT(T, models), MD_REFUSAL_OPT(T, harmful), MD_REFUSAL_OPT(T, harmless), MD_REFUSAL_OPT(T, column),   \
        MD_REFUSAL_OPT(T, test_fraction), MD_REFUSAL_OPT(T, split_seed), MD_REFUSAL_OPT(T, n_train),                \
        MD_REFUSAL_OPT(T, n_test), MD_REFUSAL_OPT(T, templates), MD_REFUSAL_OPT(T, hook),                           \
        MD_REFUSAL_OPT(T, max_new_tokens), MD_REFUSAL_OPT(T, batch)


/* "harmful" / "harmless": the keys of the CSVs and the <set> of the paths. */
const char *md_refusal_set_name(int set);

/* The roles and the two instruction sets of a refusal experiment, derived
 * from the job and the CSVs only (identical on every rank). */
typedef struct md_refusal_sets {
    const char *roles[MD_REFUSAL_MAX_ROLES]; /* point into the job */
    int n_roles;
    md_csv *csv[2];          /* [set], owned */
    int col[2];              /* the `column` key's column of each CSV */
    int *train[2], *test[2]; /* [set][n_train], [set][n_test]: CSV rows (owned) */
    int n_train, n_test, batch, hook;
    md_refusal_opts opt;     /* the shared keys (md_refusal_init_sets) */
} md_refusal_sets;

/* First step of filling a zeroed s: the roles (md_exp_resolve_roles) and the
 * shared keys (s->opt; n_train, n_test, batch and hook also as ints). Errors
 * start with `where`. */
int md_refusal_init_sets(const md_kind_ctx *ctx, const char *where, md_refusal_sets *s, md_error *err);
/* Second step: reads the CSVs of the keys harmful and harmless, finds the
 * `column` key's column and draws the train/test rows (md_dir_split with the
 * keys test_fraction and split_seed). On error s holds what was read so far
 * (md_refusal_free_sets frees it). */
int md_refusal_load_sets(const md_kind_ctx *ctx, const char *where, md_refusal_sets *s, md_error *err);
/* Frees what s owns (not s itself); s may be partly filled. */
void md_refusal_free_sets(md_refusal_sets *s);

/* Validation of role i: loads its config (*c) and tokenizer, resolves its
 * instruction template, and checks its width against role 0's (*c0, set
 * when i is 0). Errors start with `where`. */
int md_refusal_check_role(const md_kind_ctx *ctx, const char *where, const md_refusal_sets *s, int i, md_config *c0,
                          md_config *c, md_error *err);

/* ---- plan ----------------------------------------------------------- */
/* The first entries of both kinds' outputs tables (experiment.h): the split
 * (same in both), then each kind's own acts/{model}/{set} entry. */
enum { MD_REFUSAL_OUT_INSTRUCTION = 0, MD_REFUSAL_OUT_CSV_ROW = 1, MD_REFUSAL_OUT_ACTS = 2 };
#define MD_REFUSAL_SPLIT_OUTPUTS                                                                                      \
    [MD_REFUSAL_OUT_INSTRUCTION] = {.path = "split/{set}/instruction", .type = MD_H5_STR, .dims = "row",             \
                                    .axes = "train rows, then test rows (attribute n_train)", .units = "",           \
                                    .description = "instructions: rows [0, n_train) train, then n_test test",        \
                                    .stage = 0, .at_plan = 1},                                                       \
    [MD_REFUSAL_OUT_CSV_ROW] = {.path = "split/{set}/csv_row", .type = MD_H5_I32, .dims = "row", .units = "",         \
                                .description = "0-based CSV row of each instruction", .stage = 0, .at_plan = 1}
/* The datasets of stage 0 and the group attributes both kinds share:
 * split/<set>/instruction (attribute n_train) and split/<set>/csv_row (the
 * train rows, then the test rows), then the kind's acts/<role>/<set>
 * (outputs[MD_REFUSAL_OUT_ACTS]) for every role, [row, hidden] when rank is
 * 2, [row, layer, position, hidden] when rank is 4 (n_layers x n_pos
 * candidates); then the group attributes models (the roles,
 * comma-separated) and hook. *c = the config of role 0 (its d_model is the
 * width of acts). */
int md_refusal_plan_acts(md_plan *plan, const md_kind_ctx *ctx, const md_refusal_sets *s, const md_output *outputs,
                         int rank, int n_layers, int n_pos, md_config *c, md_error *err);
/* Units of stage 0: (role, set, batch of train rows), in that order. */
int64_t md_refusal_count_act_units(const md_refusal_sets *s);

/* ---- compute -------------------------------------------------------- */
/* The role of stage-0 unit `unit`. */
int md_refusal_act_role(const md_refusal_sets *s, int64_t unit);
/* Stage-0 unit: encodes the unit's train prompts in the role's template, reads
 * the hook point at every (layers[i], positions[j]) (positions negative,
 * counted from the end of each prompt) and puts it into acts/<role>/<set>:
 * [row, hidden] when rank is 2 (then n_layers = n_pos = 1), [row, layer,
 * position, hidden] when rank is 4. Errors are prefixed "<kind> activations
 * (<role>, <set>, rows <r0>..)". */
int md_refusal_compute_acts(const md_kind_ctx *ctx, md_worker *w, const md_refusal_sets *s, int64_t unit,
                            const int *layers, int n_layers, const int *positions, int n_pos, int rank,
                            const char *kind, md_result *out, md_error *err);
/* hk[0..3) = directional ablation of vec (x -= (x·v)v, v unit) at resid_pre,
 * resid_mid and resid_post of every layer and position; returns 3. The hooks
 * point at vec (the caller's, kept alive while they are used). */
int md_refusal_ablation_hooks(const float *vec, md_hook hk[3]);
/* Greedy generation (key max_new_tokens) of test rows [r0, r0 + n) of `set`
 * in the role's template, hooks applied (may be none), as
 * md_exp_generate_refusals: puts the decoded texts into the 1-D string
 * dataset text_path at rows [r0, r0 + n) and sets refused[n] (the caller's;
 * it puts them where its layout wants them). */
int md_refusal_generate(const md_kind_ctx *ctx, struct md_model *m, const md_refusal_sets *s, int role, int set,
                        int r0, int n, const md_hook *hooks, int n_hooks, const char *text_path, int32_t *refused,
                        md_result *out, md_error *err);

/* ---- finish_stage --------------------------------------------------- */
/* mean(harmful) − mean(harmless) of the train activations of role m into
 * r[d]: rows [0, n_train) of acts/<role>/<set>, all of it when rank is 2,
 * candidate (li, pi) when rank is 4. */
int md_refusal_read_mean_diff(md_reader *rd, const md_refusal_sets *s, int m, int rank, int li, int pi, int d,
                              double *r, md_error *err);
/* Mean of the n values of `path` at offset/count (the count's product is
 * n): the refusal rate of n 0/1 flags. */
int md_refusal_read_rate(md_reader *rd, const char *path, const int64_t *offset, const int64_t *count, int n,
                         double *rate, md_error *err);

/* ---- the shared stage sequence ------------------------------------- */
/* Both kinds run: stage 0 activations of the train prompts, finish_stage(0)
 * directions, stage 1 greedy generations under an intervention, finish_stage
 * (1) refusal rates, stage 2 (one unit) the scores written by the plan. The
 * state, prepare, compute and finish_stage below are that sequence once; a
 * kind supplies what differs as an md_refusal_variant. */
typedef struct md_refusal_state {
    md_refusal_sets sets;  /* roles, CSVs, train/test rows (owned) */
    int *layers, n_layers; /* candidate layers (refusal_sweep; owned) */
    int *positions, n_pos; /* candidate positions, negative (refusal_sweep; owned) */
    md_exp_units gen;      /* stage 1: the variant's unit tuples */
} md_refusal_state;

typedef struct md_refusal_variant {
    const char *kind; /* for errors */
    /* Optional, between md_refusal_init_sets and md_refusal_load_sets: the
     * candidates (layers, positions). */
    int (*candidates)(const md_kind_ctx *ctx, const char *where, md_refusal_state *s, md_error *err);
    /* The stage-1 unit table (s->gen). */
    int (*gen_units)(md_refusal_state *s, md_error *err);
    /* Stage 0 and stage 1 units. */
    int (*acts)(const md_kind_ctx *ctx, md_worker *w, md_refusal_state *s, int64_t unit, md_result *out,
                md_error *err);
    int (*gen)(const md_kind_ctx *ctx, md_worker *w, md_refusal_state *s, const md_blob *input, int64_t unit,
               md_result *out, md_error *err);
    /* finish_stage(0): the directions blob; finish_stage(1): the scores blob. */
    int (*directions)(md_refusal_state *s, md_reader *rd, md_blob *next, md_error *err);
    int (*scores)(md_refusal_state *s, const md_blob *input, md_reader *rd, md_blob *next, md_error *err);
} md_refusal_variant;

/* The state of an experiment of variant v (*out owned by the caller:
 * md_refusal_free_state). Errors start with the experiment's file:line:col. */
int md_refusal_build_state(const md_kind_ctx *ctx, const md_refusal_variant *v, md_refusal_state **out,
                           md_error *err);
void md_refusal_free_state(void *state);
/* The md_kind callbacks of both kinds; the variant is the kind's .data. */
int md_refusal_prepare(const md_kind_ctx *ctx, md_worker *w, int stage, const md_blob *input, void **state,
                       md_error *err);
/* md_kind.estimate_units of both kinds: stage 0 the activation batches,
 * stage 1 the generation units, stage 2 one (from the job: state only). */
int64_t md_refusal_estimate_units(const md_kind_ctx *ctx, int stage);
int md_refusal_compute(const md_kind_ctx *ctx, md_worker *w, void *state, int stage, const md_blob *input,
                       int64_t unit, md_result *out, md_error *err);
int md_refusal_finish(const md_kind_ctx *ctx, int stage, const md_blob *input, md_reader *rd, md_blob *next, int *done,
                      md_error *err);
/* The unit direction of model m at candidate (li, pi) (acts of `rank`, as
 * md_refusal_read_mean_diff): raw[d] = mean(harmful) - mean(harmless),
 * *norm its norm, dir[d] = raw / norm (raw and dir may be the same buffer).
 * A zero difference gives dir = 0 when zero_ok, else an error. */
int md_refusal_direction(md_reader *rd, const md_refusal_sets *s, int m, int rank, int li, int pi, int d, double *raw,
                         double *dir, double *norm, int zero_ok, md_error *err);

#endif
