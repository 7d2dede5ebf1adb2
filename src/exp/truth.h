/* truth.h — private to the `truth` kind (truth.c: keys, state, validate,
 * compute; truth_plan.c: outputs table and plans; truth_finish.c: the
 * finish_stage math). See truth.c for the stages and docs/methods.md,
 * "Truthfulness", for the method.
 * Ownership: md_truth_state owns its CSVs and tables (md_truth_free_state). */
#ifndef MECHDIFF_EXP_TRUTH_H
#define MECHDIFF_EXP_TRUTH_H

#include <stdint.h>

#include "exp/dirseq.h"
#include "mechdiff/csv.h"
#include "mechdiff/error.h"
#include "mechdiff/exp_units.h"
#include "mechdiff/experiment.h"
#include "mechdiff/tokenizer.h"

#define TR_MAX_ROLES 16
#define TR_MAX_CONTROL 16
#define TR_MAX_DS 64
#define TR_MAX_POS 16
#define TR_MAX_SHOTS 32

/* One dataset (train and/or test). Owned by md_truth_state. */
typedef struct tr_ds {
    const char *name;  /* points into the job */
    md_csv *csv;       /* owned */
    int n;             /* statements kept */
    int *row;          /* [n] CSV row (0-based, header excluded) */
    int *label;        /* [n] 1 = true */
    char *few_shot;    /* the few-shot prefix (test datasets) */
    int n_iv;          /* statements intervened on: kept minus few-shot rows */
    int *iv;           /* [n_iv] indices into [0, n) */
} tr_ds;

/* The kind's keys, bound once by the caller of the kind (md_kind_bind_opts
 * with MD_TRUTH_OPTS: ctx->opts; the state keeps a copy). Strings
 * and lists point into the job. */
typedef struct md_truth_opts {
    const md_value *models, *train_datasets, *test_datasets, *intervention_positions;
    const char *hook, *intervention_layers, *suffix, *true_word, *false_word;
    int64_t layer, token, n_shots, shot_seed, max_statements, batch, control_directions;
    double coefficient;
} md_truth_opts;
extern const md_opt_bind MD_TRUTH_OPTS[];

/* Derived from the job and the CSVs only (identical on every rank). Owned. */
typedef struct md_truth_state {
    md_truth_opts opt;
    const char *roles[TR_MAX_ROLES];
    int n_roles;
    tr_ds ds[TR_MAX_DS];
    int n_ds;
    int train[TR_MAX_DS], n_train; /* indices into ds */
    int test[TR_MAX_DS], n_test;
    int pos[TR_MAX_POS], n_pos;
    int batch, hook, token;
    int n_control;      /* random control directions (conditions after the models') */
    uint64_t shot_seed; /* seed of the control directions too */
    md_exp_units u0;    /* stage 0: (model, ds, batch) */
    md_exp_units u1;    /* stage 1: (target, test, condition, batch) */
    double collect_share; /* costs (exp_cost.h): a collect forward's blocks, (layer + 1) / L, */
    double logits;        /* and the logits of a position, V d / B, of the first model */
} md_truth_state;

/* Stage-1 input: the directions blob of dirseq.h with one candidate (raw =
 * theta, the mass mean; dir = theta / norm) and extra = probe[M][2],
 * train_acc[M], acc[M][M][T] (T test datasets); a view of it. */
typedef struct md_truth_dirs {
    int M, d, T;
    const double *theta, *norm, *cos, *probe, *train_acc, *acc;
    md_dirseq_dirs all; /* the whole blob (md_dirseq_source_vec) */
} md_truth_dirs;

int md_truth_build_state(const md_kind_ctx *ctx, md_truth_state **out, md_error *err);
void md_truth_free_state(void *p);
/* The statement of kept row i of dataset k. */
const char *md_truth_stmt(const md_truth_state *s, int k, int i);
/* The `layer` key resolved for a model of n_layers. */
int md_truth_layer(const md_truth_opts *o, int n_layers);
/* The `intervention_layers` key: [*lo, *hi] inclusive; MD_ERR when malformed. */
int md_truth_iv_layers(const md_truth_opts *o, int n_layers, int *lo, int *hi);
/* Extra doubles of the stage-1 blob, and a view of it. */
size_t md_truth_count_extra(int M, int T);
int md_truth_view_dirs(const md_blob *b, md_truth_dirs *v, md_error *err);
/* truth.c: encodes "<few_shot><statement><suffix>" with tok (BOS as the
 * tokenizer adds it): *ids malloc'd, *len, *stmt_end = the statement's last
 * token (intervention positions count from it: stmt_end + 1 + pos). */
int md_truth_encode_prompt(const md_tokenizer *tok, const char *few_shot, const char *stmt, const char *suffix,
                           int **ids, int *len, int *stmt_end, md_error *err);
/* truth_labels.c: stage 1, per role and test dataset, the tokens the
 * intervention is added at (out[0..2]: the entries of
 * interv/{dataset}/tokens/{model}/token_id, token, token_position). */
int md_truth_plan_interv_tokens(const md_kind_ctx *ctx, const md_truth_state *s, const md_output *out, md_plan *plan,
                                md_error *err);
/* truth_labels.c: the named axes of a plan (roles, test datasets,
 * conditions conds[0..n_cond), classes, effects, controls, probe params). */
int md_truth_plan_axes(const md_truth_state *s, const char *const *conds, int n_cond, const char *const *tests,
                       md_plan *plan, md_error *err);
/* truth_labels.c: per role and dataset, the token each activation is read
 * at (out[0..2]: the token_id, token and position entries of the outputs
 * table) and the acts' descriptions from the role's tokenizer. */
int md_truth_plan_tokens(const md_kind_ctx *ctx, const md_truth_state *s, const md_output *out, md_plan *plan,
                         md_error *err);
/* Control direction k: a seeded random unit vector v[d] (caller's). */
void md_truth_control_unit(const md_truth_state *s, int k, int d, double *v);

/* truth_plan.c */
extern const md_output MD_TRUTH_OUTPUTS[];
int md_truth_plan(const md_kind_ctx *ctx, int stage, const md_blob *input, md_plan *plan, md_error *err);
/* truth_finish.c: finish_stage(0) and (1) of the sequence (md_dirseq) */
int md_truth_directions(void *state, md_reader *rd, md_blob *next, md_error *err);
int md_truth_scores(void *state, const md_blob *input, md_reader *rd, md_blob *next, md_error *err);

#endif
