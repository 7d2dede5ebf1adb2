/* refusal.h — private to the `refusal` kind (refusal.c: keys, options,
 * state, validate, the kind and its `refusal_sweep` alias; refusal_sets.c:
 * the instruction sets, their split, prompts and generations;
 * refusal_plan.c: the outputs table and plans; refusal_run.c: the units and
 * finish_stage math). See refusal.c for the stages and docs/methods.md,
 * "Refusal", for the method.
 *
 * The kind runs the direction sequence of dirseq.h in one of two modes:
 *  - point (sweep: false): one direction per model at (layer, position),
 *    its cosine across models, generations under no intervention, ablation
 *    and activation addition, refusal_score;
 *  - sweep (sweep: true, or kind: refusal_sweep): a direction per model and
 *    candidate (layer, position), generations of harmful test prompts with
 *    each ablated, score and the best candidate per model (reported only).
 *
 * Everything here is deterministic and depends only on its arguments (the
 * rules of experiment.h). Ownership: md_refusal_state owns its CSVs, row
 * tables, candidates and unit tables (md_refusal_free_state). */
#ifndef MECHDIFF_EXP_REFUSAL_H
#define MECHDIFF_EXP_REFUSAL_H

#include <stddef.h>
#include <stdint.h>

#include "exp/dirseq.h"
#include "mechdiff/csv.h"
#include "mechdiff/error.h"
#include "mechdiff/exp_units.h"
#include "mechdiff/experiment.h"
#include "mechdiff/forward.h"
#include "mechdiff/hf_config.h"

struct md_model;

#define MD_REFUSAL_MAX_ROLES 16
#define MD_REFUSAL_MAX_CAND 4096
enum { MD_REFUSAL_HARMFUL = 0, MD_REFUSAL_HARMLESS = 1 };

/* The kind's keys, bound once by the caller of the kind (md_kind_bind_opts
 * with the kind's .opts: ctx->opts; the alias binds its layers/positions to
 * sweep_layers/sweep_positions).
 * Strings and lists point into the job. */
typedef struct md_refusal_opts {
    const md_value *models, *templates, *positions, *coefficients, *sweep_layers, *sweep_positions;
    const char *harmful, *harmless, *column, *hook, *addition_vector;
    double test_fraction;
    int64_t split_seed, n_train, n_test, max_new_tokens, batch, layer, position, addition_layer;
    int sweep;
} md_refusal_opts;

/* Derived from the job and the CSVs only (identical on every rank). */
typedef struct md_refusal_state {
    md_refusal_opts opt;
    int sweep;                               /* 1 = sweep mode */
    const char *roles[MD_REFUSAL_MAX_ROLES]; /* point into the job */
    int n_roles;
    md_csv *csv[2];          /* [set], owned */
    int col[2];              /* the `column` key's column of each CSV */
    int *train[2], *test[2]; /* [set][n_train], [set][n_test]: CSV rows (owned) */
    int n_train, n_test, batch, hook;
    int *layers, n_layers;   /* sweep candidates (owned) */
    int *positions, n_pos;   /* sweep candidates, negative (owned) */
    md_exp_units acts;       /* stage 0: (model, set, batch) */
    md_exp_units gen;        /* stage 1: point (target, intervention, set, batch),
                                sweep (model, layer, position, batch) */
    double collect_share;    /* costs (exp_cost.h): a collect forward's blocks, (deepest + 1) / L, */
    double logits;           /* the logits of a position, V d / B, */
    double block_macs;       /* and B, of the first model */
    int *prompt_tokens;      /* [role][set][n_train + n_test]: tokens of each train, then test prompt in the
                                role's template (owned; NULL until md_refusal_price: costs only) */
} md_refusal_state;

/* refusal.c */
extern const md_dirseq MD_REFUSAL_SEQ;
int md_refusal_build_state(const md_kind_ctx *ctx, md_refusal_state **out, md_error *err);
void md_refusal_free_state(void *state);
/* Point mode: the direction's layer, or (addition) the activation-addition
 * layer, for a model of n_layers; the position of `role`. */
int md_refusal_layer(const md_refusal_opts *o, int n_layers, int addition);
int md_refusal_position(const md_refusal_opts *o, const char *role);
/* Point mode: the name of intervention iv: none, ablate_<src>, add_<src>. */
void md_refusal_interv_name(const md_refusal_state *s, int iv, char *buf, size_t n);

/* refusal_sets.c */
/* "harmful" / "harmless": the keys of the CSVs and the <set> of the paths. */
const char *md_refusal_set_name(int set);
/* Reads the CSVs of the keys harmful and harmless, finds the `column` key's
 * column and draws the train/test rows (md_dir_split with the keys
 * test_fraction and split_seed). On error s holds what was read so far. */
int md_refusal_load_sets(const md_kind_ctx *ctx, const char *where, md_refusal_state *s, md_error *err);
void md_refusal_free_sets(md_refusal_state *s);
/* Validation of role i: loads its config (*c) and tokenizer, resolves its
 * instruction template and checks that its prompts fit the context. A
 * failed check is added to err as a line starting with `where`
 * (md_error_add); returns MD_ERR only when the role cannot be loaded (*c
 * is not set). */
int md_refusal_check_role(const md_kind_ctx *ctx, const char *where, const md_refusal_state *s, int i, md_config *c,
                          md_error *err);
/* Role r's tokenizer (*tok owned by the caller: md_tokenizer_free); the
 * error names the experiment and the role. */
int md_refusal_load_tokenizer(const md_kind_ctx *ctx, const md_refusal_state *s, int r, struct md_tokenizer **tok,
                              md_error *err);
/* Role r's train and test prompts rendered in its template and tokenised
 * as the units do (md_exp_encode_instructions_with, its tokenizer tok: no
 * model), their lengths into s->prompt_tokens (allocated for every role on
 * the first call). */
int md_refusal_price_role(const md_kind_ctx *ctx, md_refusal_state *s, int r, const struct md_tokenizer *tok,
                          md_error *err);
/* md_dirseq.price: md_refusal_price_role for every role, each tokenizer
 * loaded for it (a plan that has them loaded prices role by role). */
int md_refusal_price(const md_kind_ctx *ctx, void *state, md_error *err);
/* The tokens of role's prompts of set (test: its test rows, else its train
 * rows), indexed like s->train / s->test; NULL before md_refusal_price. */
int *md_refusal_prompt_tokens(const md_refusal_state *s, int role, int set, int test);
/* Stage-0 unit: encodes the unit's train prompts in the role's template and
 * puts the hook point at the candidates of `at` into acts/<role>/<set>. */
int md_refusal_collect(const md_kind_ctx *ctx, struct md_model *m, const md_refusal_state *s, int64_t unit,
                       const md_dirseq_at *at, md_result *out, md_error *err);
/* hk[0..3) = directional ablation of vec (x -= (x·v)v, v unit) at resid_pre,
 * resid_mid and resid_post of every layer and position; returns 3. */
int md_refusal_ablation_hooks(const float *vec, md_hook hk[3]);
/* Greedy generation (key max_new_tokens) of test rows [r0, r0 + n) of `set`
 * in the role's template, hooks applied (may be none): puts the decoded
 * texts into the 1-D string dataset text_path at rows [r0, r0 + n) and sets
 * refused[n] (the caller's). */
int md_refusal_generate(const md_kind_ctx *ctx, struct md_model *m, const md_refusal_state *s, int role, int set,
                        int r0, int n, const md_hook *hooks, int n_hooks, const char *text_path, int32_t *refused,
                        md_result *out, md_error *err);
/* The direction of model m at candidate (li, pi) (point mode: 0, 0) from
 * the train activations: raw[d] = mean(harmful) − mean(harmless), *norm its
 * norm, dir[d] = raw / norm. A zero difference gives dir = 0 when zero_ok,
 * else an error. */
int md_refusal_direction(md_reader *rd, const md_refusal_state *s, int m, int li, int pi, int d, double *raw,
                         double *dir, double *norm, int zero_ok, md_error *err);

/* refusal_plan.c: the outputs table (both modes) and the plans */
enum {
    MD_RO_INSTRUCTION, MD_RO_CSV_ROW,                                           /* both */
    MD_RO_ACTS, MD_RO_DIRECTION, MD_RO_MEAN_DIFF, MD_RO_MEAN_DIFF_NORM, MD_RO_COSINE, MD_RO_TEXT, MD_RO_REFUSED,
    MD_RO_SCORE,                                                                /* point */
    MD_RO_SW_ACTS, MD_RO_SW_DIRECTION, MD_RO_SW_REFUSED, MD_RO_SW_TEXT, MD_RO_SW_SCORE, /* sweep */
    MD_RO_TOKEN_ID, MD_RO_TOKEN, MD_RO_TOKEN_POSITION,                          /* both (refusal_labels.c) */
    MD_RO_GEN_INSTRUCTION, MD_RO_GEN_CSV_ROW,                                   /* point */
    MD_RO_SW_TEST_INSTRUCTION, MD_RO_SW_TEST_CSV_ROW                            /* sweep */
};
extern const md_output MD_REFUSAL_OUTPUTS[];
int md_refusal_plan(const md_kind_ctx *ctx, int stage, const md_blob *input, md_plan *plan, md_error *err);

/* refusal_run.c: the md_dirseq steps */
int md_refusal_gen_units(md_refusal_state *s, md_error *err);
int md_refusal_run_collect(const md_kind_ctx *ctx, md_worker *w, void *state, int64_t unit, md_result *out,
                           md_error *err);
int md_refusal_run_intervene(const md_kind_ctx *ctx, md_worker *w, void *state, const md_blob *input, int64_t unit,
                             md_result *out, md_error *err);
int md_refusal_run_directions(void *state, md_reader *rd, md_blob *next, md_error *err);
int md_refusal_run_scores(void *state, const md_blob *input, md_reader *rd, md_blob *next, md_error *err);

#endif
