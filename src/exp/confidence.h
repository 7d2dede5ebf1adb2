/* confidence.h — private to the `confidence` kind (confidence.c: keys,
 * validate, workers, finish; confidence_plan.c: outputs table and plans).
 * See confidence.c for the stages. */
#ifndef MECHDIFF_EXP_CONFIDENCE_H
#define MECHDIFF_EXP_CONFIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include "mechdiff/csv.h"
#include "mechdiff/error.h"
#include "mechdiff/experiment.h"
#include "mechdiff/hf_config.h"

#define CONF_MAX_ROLES 16

/* The kind's keys, parsed once by the caller of the kind (md_kind_bind_opts
 * with MD_CONF_OPTS; md_conf_opts_of = ctx->opts). Strings and lists point
 * into the job. */
typedef struct md_conf_opts {
    const md_value *models;
    double percentile;
    int64_t top_k, neuron_block, wu_block, max_prompts, prompt_batch;
    const char *prompts, *prompt_column;
} md_conf_opts;
extern const md_opt_bind MD_CONF_OPTS[];
const md_conf_opts *md_conf_opts_of(const md_kind_ctx *ctx);

/* Stage 1 input: header, then int32 selected[R][k], then per role double
 * norm[d_ff], logitvar[d_ff]. Stage 2 input: the same, then double
 * act_mean[R][k]. */
typedef struct conf_hdr {
    int32_t n_roles, k;
    int32_t d_ff[CONF_MAX_ROLES];
    int32_t n_sel[CONF_MAX_ROLES];
    double threshold[CONF_MAX_ROLES];
} conf_hdr;

typedef struct conf_view { /* pointers into a blob (not owned) */
    const conf_hdr *h;
    const int32_t *sel;           /* [R][k] */
    const double *norm[CONF_MAX_ROLES], *lv[CONF_MAX_ROLES];
    const double *act_mean;       /* [R][k] or NULL */
} conf_view;

/* Bytes of a stage-1 blob; a view of a stage input (with_means: stage 2). */
size_t md_conf_blob1_size(const conf_hdr *h);
int md_conf_view_blob(const md_blob *b, int with_means, conf_view *v, md_error *err);
/* The model folder of role r, its config (families the kernel cannot read
 * refused), and the blocks of nb neurons of d_ff. */
const char *md_conf_role_dir(const md_kind_ctx *ctx, int r);
int md_conf_role_cfg(const md_kind_ctx *ctx, int r, md_config *cfg, md_error *err);
int64_t md_conf_n_blocks(int d_ff, int64_t nb);
/* The `prompts` dataset: set?, its size, its rows (*csv owned, *out array
 * owned, pointing into it), batches of prompt_batch. */
int md_conf_has_prompts(const md_kind_ctx *ctx);
int md_conf_n_prompts(const md_kind_ctx *ctx, int *n, md_error *err);
int md_conf_load_prompts(const md_kind_ctx *ctx, md_csv **csv, const char ***out, int *n, md_error *err);
int64_t md_conf_n_batches(const md_kind_ctx *ctx, int np);

/* confidence_plan.c */
extern const md_output MD_CONF_OUTPUTS[];
/* md_kind.estimate: stage 0 the neuron blocks of every role, stage 1 the
 * prompt batches per role (one empty unit without prompts), stage 2 the
 * same batches (only with prompts), with the costs confidence_plan.c's
 * plans give them (progress.h, "ETA by cost"). */
int md_conf_estimate(const md_kind_ctx *ctx, md_stage_estimate *out, md_error *err);
int md_conf_plan(const md_kind_ctx *ctx, int stage, const md_blob *input, md_plan *plan, md_error *err);

#endif
