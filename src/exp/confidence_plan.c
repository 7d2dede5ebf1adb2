/* confidence_plan.c — the outputs of the `confidence` kind and its plans
 * (see confidence.c for the stages). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp/confidence.h"
#include "mechdiff/entropy.h"
#include "mechdiff/exp_cost.h"
#include "mechdiff/exp_output.h"
#include "mechdiff/exp_util.h"
#include "mechdiff/tokcache.h"

enum {
    CO_NORM, CO_LOGITVAR, CO_SELECTED, CO_THRESHOLD, CO_OVERLAP, CO_IOU, CO_D_NORM, CO_D_LOGITVAR, CO_PROMPTS,
    CO_ACTIVATION, CO_ENTROPY, CO_ACT_MEAN, CO_ENTROPY_ABLATED, CO_PROMPT_LEN, CO_LAST_TOKEN_ID, CO_LAST_TOKEN
};

const md_output MD_CONF_OUTPUTS[] = {
    [CO_NORM] = {.path = "{model}/norm", .type = MD_H5_F64, .dims = "neuron", .axes = "last-layer MLP neurons",
                 .units = "1", .description = "||w_out||: L2 norm of the neuron's column of the last layer's down_proj",
                 .stage = 0},
    [CO_LOGITVAR] = {.path = "{model}/logitvar", .type = MD_H5_F64, .dims = "neuron", .axes = "last-layer MLP neurons",
                     .units = "1",
                     .description = "LogitVar: unbiased variance over the vocabulary of cos(w_out, W_U[v]) with W_U "
                                    "gain-folded and centred over the vocabulary",
                     .stage = 0},
    [CO_SELECTED] = {.path = "{model}/selected", .type = MD_H5_I32, .dims = "rank", .units = "neuron index",
                     .description = "entropy neurons: norm above the percentile, then the smallest LogitVar, "
                                    "ascending LogitVar (-1: fewer neurons qualified)",
                     .stage = 1, .at_plan = 1},
    [CO_THRESHOLD] = {.path = "{model}/norm_threshold", .type = MD_H5_F64, .dims = "one", .units = "1",
                      .description = "the norm percentile (neurons strictly above it are kept)", .stage = 1,
                      .at_plan = 1},
    [CO_OVERLAP] = {.path = "pairs/{a}->{b}/overlap", .type = MD_H5_I32, .dims = "one", .units = "neurons",
                    .description = "|A ∩ B|: entropy neurons shared by the two models", .stage = 1, .at_plan = 1},
    [CO_IOU] = {.path = "pairs/{a}->{b}/iou", .type = MD_H5_F64, .dims = "one", .units = "1",
                .description = "|A ∩ B| / |A ∪ B| of the entropy-neuron sets", .stage = 1, .at_plan = 1},
    [CO_D_NORM] = {.path = "pairs/{a}->{b}/d_norm", .type = MD_H5_F64, .dims = "neuron", .units = "1",
                   .description = "norm(b) - norm(a) per neuron", .stage = 1, .at_plan = 1},
    [CO_D_LOGITVAR] = {.path = "pairs/{a}->{b}/d_logitvar", .type = MD_H5_F64, .dims = "neuron", .units = "1",
                       .description = "LogitVar(b) - LogitVar(a) per neuron", .stage = 1, .at_plan = 1},
    [CO_PROMPTS] = {.path = "prompts", .type = MD_H5_STR, .dims = "prompt", .units = "",
                    .description = "prompts of the behavioural measurements (bare text; what each model's "
                                   "tokenizer puts before it: the file's description)",
                    .stage = 1, .at_plan = 1},
    [CO_ACTIVATION] = {.path = "{model}/activation", .type = MD_H5_F32, .dims = "prompt,rank",
                       .axes = "prompts, {model}/selected", .units = "activation",
                       .description = "mlp_post of the entropy neuron (selected[rank]) at the last token", .stage = 1,
                       .nan_ok = 1},
    [CO_ENTROPY] = {.path = "{model}/entropy", .type = MD_H5_F64, .dims = "prompt", .axes = "prompts",
                    .units = "nats", .description = "entropy of the next-token distribution at the last token",
                    .stage = 1},
    [CO_ACT_MEAN] = {.path = "{model}/act_mean", .type = MD_H5_F64, .dims = "rank", .axes = "{model}/selected",
                     .units = "activation",
                     .description = "mean activation of the entropy neuron over the prompts (the ablation value)",
                     .stage = 2, .at_plan = 1},
    [CO_ENTROPY_ABLATED] = {.path = "{model}/entropy_ablated", .type = MD_H5_F64, .dims = "prompt,rank",
                            .axes = "prompts, {model}/selected", .units = "nats",
                            .description = "next-token entropy with entropy neuron selected[rank] mean-ablated at the "
                                           "last token",
                            .stage = 2, .nan_ok = 1},
    [CO_PROMPT_LEN] = {.path = "{model}/prompt_len", .type = MD_H5_I32, .dims = "prompt", .axes = "prompts",
                       .units = "tokens",
                       .description = "tokens of the prompt as this model reads it (the measured position is "
                                      "prompt_len - 1; BOS or not: the file's description)",
                       .stage = 1, .at_plan = 1},
    [CO_LAST_TOKEN_ID] = {.path = "{model}/last_token_id", .type = MD_H5_I32, .dims = "prompt", .axes = "prompts",
                          .description = "token id at the measured position (the prompt's last token)", .stage = 1,
                          .at_plan = 1},
    [CO_LAST_TOKEN] = {.path = "{model}/last_token", .type = MD_H5_STR, .dims = "prompt", .axes = "prompts",
                       .description = "decoded text of last_token_id (U+FFFD marks a byte of a character split over "
                                      "tokens)",
                       .stage = 1, .at_plan = 1},
    {0}};

#define OUT(x) (&MD_CONF_OUTPUTS[x])

/* Stage 0's units (the neuron blocks of every role) and their costs
 * (progress.h, "ETA by cost") into plan (NULL = none) and *est. A neuron's
 * logit lens is V d multiply-adds: the logits of a position in token passes
 * (md_exp_cost_logits). */
static int stage0_costs(const md_kind_ctx *ctx, md_plan *plan, md_stage_estimate *est, md_error *err)
{
    int64_t nb = md_conf_opts_of(ctx)->neuron_block, u = 0;
    *est = (md_stage_estimate){0};
    for (int r = 0; r < md_exp_count_roles(ctx); r++) {
        md_config c;
        if (md_conf_role_cfg(ctx, r, &c, err) != MD_OK) return MD_ERR;
        for (int64_t b = 0; b < md_conf_n_blocks(c.d_ff, nb); b++, u++) {
            double cost = (double)((b + 1) * nb <= c.d_ff ? nb : c.d_ff - b * nb) * md_exp_cost_logits(&c);
            if (plan) md_plan_cost(plan, u, cost);
            est->cost += cost;
        }
    }
    est->units = u;
    return MD_OK;
}

/* Costs of stage 1 or 2's units (role, batch of the np prompts pr) into
 * plan (NULL = none) and *est: per row the batch's longest prompt at 4
 * bytes a token with its BOS and the logits of its last position
 * (exp_cost.h), and in stage 2 top_k reruns of the last layer at the last
 * position. A rerun's FLOPs are the batch's rows x (1/L + V d/B) token
 * passes (0.11 a row for Llama-3.1-8B), but it reads the last layer's and
 * the unembedding's weights for those few rows: priced by the read bound,
 * (1/L + V d/B) x max(rows, MD_COST_RIDGE_ROWS) (md_exp_cost_read_bound;
 * just the FLOPs for weights that stay in a cache). */
static int batch_costs(const md_kind_ctx *ctx, int stage, const char *const *pr, int np, md_plan *plan,
                       md_stage_estimate *est, md_error *err)
{
    const md_conf_opts *o = md_conf_opts_of(ctx);
    int64_t nbat = md_conf_n_batches(ctx, np), u = 0;
    *est = (md_stage_estimate){0};
    for (int r = 0; r < md_exp_count_roles(ctx); r++) {
        md_config c;
        if (md_conf_role_cfg(ctx, r, &c, err) != MD_OK) return MD_ERR;
        for (int64_t b = 0; b < nbat; b++, u++) {
            int64_t p0 = b * o->prompt_batch, rows = p0 + o->prompt_batch <= np ? o->prompt_batch : np - p0;
            double longest = 0;
            for (int64_t i = p0; i < p0 + rows; i++) {
                double t = md_exp_cost_text_tokens(pr[i]);
                longest = t > longest ? t : longest;
            }
            double lg = md_exp_cost_logits(&c), cost = (double)rows * (longest + lg);
            if (stage == 2) /* the reruns: the last block and the logits */
                cost += (double)o->top_k * md_exp_cost_read_bound(md_exp_cost_block_macs(&c), (double)rows,
                                                                   md_exp_cost_blocks(&c, 1) + lg);
            if (plan) md_plan_cost(plan, u, cost);
            est->cost += cost;
        }
    }
    est->units = u;
    return MD_OK;
}

static int plan_stage0(const md_kind_ctx *ctx, md_plan *plan, md_error *err)
{
    const md_conf_opts o = *md_conf_opts_of(ctx);
    int64_t nb = o.neuron_block, units = 0;
    char roles[1024] = "";
    for (int r = 0; r < md_exp_count_roles(ctx); r++) {
        md_config cfg;
        if (md_conf_role_cfg(ctx, r, &cfg, err) != MD_OK) return MD_ERR;
        const char *role = md_exp_get_role(ctx, r);
        if (md_plan_axis_size(plan, role, "neuron", cfg.d_ff, err) != MD_OK || /* widths may differ per role */
            md_plan_output(plan, OUT(CO_NORM), &role, err) != MD_OK ||
            md_plan_output(plan, OUT(CO_LOGITVAR), &role, err) != MD_OK)
            return MD_ERR;
        units += md_conf_n_blocks(cfg.d_ff, nb);
        if (strlen(roles) + strlen(role) + 2 < sizeof roles) {
            if (r) strcat(roles, ",");
            strcat(roles, role);
        }
    }
    char num[64];
    snprintf(num, sizeof num, "%g", o.percentile);
    if (md_plan_attr(plan, "", "roles", roles, err) != MD_OK || md_plan_attr(plan, "", "percentile", num, err) != MD_OK)
        return MD_ERR;
    snprintf(num, sizeof num, "%lld", (long long)o.top_k);
    if (md_plan_attr(plan, "", "top_k", num, err) != MD_OK) return MD_ERR;
    if (md_plan_attr(plan, "", "percentile_method",
                     "linear interpolation between order statistics (numpy default); norm strictly above", err) != MD_OK)
        return MD_ERR;
    md_stage_estimate est;
    if (md_plan_units(plan, units, err) != MD_OK) return MD_ERR;
    return stage0_costs(ctx, plan, &est, err);
}

/* Roles of the group pairs/<a>-><b> (a = source, the earlier role of the
 * job; b = target): the changes are b's minus a's. */
static int pair_attrs(md_plan *plan, const char *a, const char *b, md_error *err)
{
    char path[MD_PATH_MAX], desc[512];
    snprintf(path, sizeof path, "pairs/%s->%s", a, b);
    snprintf(desc, sizeof desc, "entropy neurons of %s (source) against %s (target): shared neurons, and per "
             "neuron target minus source", a, b);
    if (md_plan_attr(plan, path, "source", a, err) != MD_OK || md_plan_attr(plan, path, "target", b, err) != MD_OK)
        return MD_ERR;
    return md_plan_attr(plan, path, "description", desc, err);
}

/* What role r's tokenizer makes of the prompts: {model}/prompt_len,
 * last_token_id, last_token (the measured position) and, into note[cap],
 * what it puts before the text. */
static int plan_role_tokens(const md_kind_ctx *ctx, int r, const char **pr, int np, md_plan *plan, char *note,
                            size_t cap, md_error *err)
{
    const char *role = md_exp_get_role(ctx, r);
    md_config cfg;
    md_tokenizer *tok = NULL;
    int32_t *len = malloc((size_t)np * sizeof *len), *last = malloc((size_t)np * sizeof *last);
    char *txt = NULL;
    size_t nb = 0;
    int rc = len && last ? MD_OK : md_error_set(err, "confidence: out of memory");
    if (rc == MD_OK) rc = md_exp_load_role(ctx, ctx->exp->name, role, &cfg, &tok, err);
    if (rc == MD_OK) rc = md_exp_bos_note(tok, note, cap, err);
    for (int i = 0; rc == MD_OK && i < np; i++) {
        int *ids = NULL;
        size_t n = 0;
        rc = md_tokenizer_encode(tok, pr[i], 1, &ids, &n, err); /* as compute_batch (confidence.c) */
        if (rc == MD_OK && n == 0) rc = md_error_set(err, "confidence: prompt %d is empty", i);
        if (rc == MD_OK) {
            len[i] = (int32_t)n;
            last[i] = ids[n - 1];
        }
        free(ids);
    }
    if (rc == MD_OK) rc = md_exp_token_strings(tok, last, np, &txt, &nb, err);
    if (rc == MD_OK)
        rc = md_plan_output_put(plan, OUT(CO_PROMPT_LEN), &role, len, (size_t)np * sizeof *len, err) ||
             md_plan_output_put(plan, OUT(CO_LAST_TOKEN_ID), &role, last, (size_t)np * sizeof *last, err) ||
             md_plan_output_put(plan, OUT(CO_LAST_TOKEN), &role, txt, nb, err) ? MD_ERR : MD_OK;
    if (rc == MD_OK) {
        char path[MD_PATH_MAX], desc[512];
        snprintf(path, sizeof path, "%s/prompt_len", role);
        snprintf(desc, sizeof desc, "tokens of the prompt as %s reads it, %s (the measured position is prompt_len - 1)",
                 role, note);
        rc = md_plan_attr(plan, path, "description", desc, err);
    }
    md_tokcache_release(ctx->toks, tok);
    free(len);
    free(last);
    free(txt);
    return rc;
}

/* Every role's prompt tokens, and the description of `prompts`: what each
 * role's tokenizer puts before them. */
static int plan_prompt_tokens(const md_kind_ctx *ctx, const char **pr, int np, md_plan *plan, md_error *err)
{
    char desc[1024], note[256];
    size_t off = (size_t)snprintf(desc, sizeof desc, "prompts of the behavioural measurements (bare text; before it");
    for (int r = 0; r < md_exp_count_roles(ctx); r++) {
        if (plan_role_tokens(ctx, r, pr, np, plan, note, sizeof note, err) != MD_OK) return MD_ERR;
        if (off < sizeof desc)
            off += (size_t)snprintf(desc + off, sizeof desc - off, "%s %s: %s", r ? ";" : "",
                                    md_exp_get_role(ctx, r), note);
    }
    if (off < sizeof desc) snprintf(desc + off, sizeof desc - off, ")");
    return md_plan_attr(plan, "prompts", "description", desc, err);
}

static int plan_pairs(const md_kind_ctx *ctx, const conf_view *v, md_plan *plan, md_error *err)
{
    int R = v->h->n_roles, k = v->h->k;
    char path[MD_PATH_MAX];
    double *dn = NULL, *dl = NULL;
    int rc = MD_ERR;
    for (int a = 0; a < R; a++)
        for (int b = a + 1; b < R; b++) {
            const char *ra = md_exp_get_role(ctx, a), *rb = md_exp_get_role(ctx, b);
            double iou;
            int32_t ov = md_entropy_overlap(v->sel + a * k, k, v->sel + b * k, k, &iou);
            const char *ab[] = {ra, rb};
            snprintf(path, sizeof path, "pairs/%s->%s/overlap", ra, rb);
            if (md_plan_output_put(plan, OUT(CO_OVERLAP), ab, &ov, sizeof ov, err) != MD_OK ||
                md_plan_output_put(plan, OUT(CO_IOU), ab, &iou, sizeof iou, err) != MD_OK ||
                md_plan_attr(plan, path, "a", ra, err) != MD_OK || md_plan_attr(plan, path, "b", rb, err) != MD_OK ||
                pair_attrs(plan, ra, rb, err) != MD_OK)
                goto done;
            if (v->h->d_ff[a] != v->h->d_ff[b]) continue; /* different widths: no per-neuron change */
            int64_t n = v->h->d_ff[a];
            snprintf(path, sizeof path, "pairs/%s->%s", ra, rb);
            if (md_plan_axis_size(plan, path, "neuron", n, err) != MD_OK) goto done;
            free(dn);
            free(dl);
            dn = malloc((size_t)n * sizeof *dn);
            dl = malloc((size_t)n * sizeof *dl);
            if (!dn || !dl) {
                md_error_set(err, "confidence: out of memory");
                goto done;
            }
            for (int64_t i = 0; i < n; i++) {
                dn[i] = v->norm[b][i] - v->norm[a][i];
                dl[i] = v->lv[b][i] - v->lv[a][i];
            }
            if (md_plan_output_put(plan, OUT(CO_D_NORM), ab, dn, (size_t)n * sizeof *dn, err) != MD_OK ||
                md_plan_output_put(plan, OUT(CO_D_LOGITVAR), ab, dl, (size_t)n * sizeof *dl, err) != MD_OK)
                goto done;
        }
    rc = MD_OK;
done:
    free(dn);
    free(dl);
    return rc;
}

static int plan_stage1(const md_kind_ctx *ctx, const md_blob *input, md_plan *plan, md_error *err)
{
    conf_view v;
    if (md_conf_view_blob(input, 0, &v, err) != MD_OK) return MD_ERR;
    int R = v.h->n_roles, k = v.h->k;
    if (md_plan_axis_size(plan, "", "rank", k, err) != MD_OK || md_plan_axis_size(plan, "", "one", 1, err) != MD_OK)
        return MD_ERR;
    for (int r = 0; r < R; r++) {
        const char *role = md_exp_get_role(ctx, r);
        if (md_plan_output_put(plan, OUT(CO_SELECTED), &role, v.sel + r * k, (size_t)k * sizeof(int32_t), err) !=
                MD_OK ||
            md_plan_output_put(plan, OUT(CO_THRESHOLD), &role, &v.h->threshold[r], sizeof(double), err) != MD_OK)
            return MD_ERR;
    }
    if (plan_pairs(ctx, &v, plan, err) != MD_OK) return MD_ERR;
    if (!md_conf_has_prompts(ctx)) return md_plan_units(plan, 1, err); /* one empty unit: nothing to measure */

    md_csv *csv = NULL;
    const char **pr = NULL;
    int np = 0, rc = MD_ERR;
    if (md_conf_load_prompts(ctx, &csv, &pr, &np, err) != MD_OK) return MD_ERR;
    size_t bytes = 0;
    for (int i = 0; i < np; i++) bytes += strlen(pr[i]) + 1;
    char *all = malloc(bytes ? bytes : 1), *q = all;
    if (!all) {
        md_error_set(err, "confidence: out of memory");
        goto done;
    }
    for (int i = 0; i < np; i++) {
        size_t l = strlen(pr[i]) + 1;
        memcpy(q, pr[i], l);
        q += l;
    }
    if (md_plan_axis_size(plan, "", "prompt", np, err) != MD_OK ||
        md_plan_output_put(plan, OUT(CO_PROMPTS), NULL, all, bytes, err) != MD_OK ||
        plan_prompt_tokens(ctx, pr, np, plan, err) != MD_OK)
        goto done;
    for (int r = 0; r < R; r++) {
        const char *role = md_exp_get_role(ctx, r);
        if (md_plan_output(plan, OUT(CO_ACTIVATION), &role, err) != MD_OK ||
            md_plan_output(plan, OUT(CO_ENTROPY), &role, err) != MD_OK)
            goto done;
    }
    rc = md_plan_units(plan, R * md_conf_n_batches(ctx, np), err);
    md_stage_estimate est;
    if (rc == MD_OK) rc = batch_costs(ctx, 1, pr, np, plan, &est, err);
done:
    free(all);
    free(pr);
    md_csv_free(csv);
    return rc;
}

static int plan_stage2(const md_kind_ctx *ctx, const md_blob *input, md_plan *plan, md_error *err)
{
    conf_view v;
    md_csv *csv = NULL;
    const char **pr = NULL;
    int np = 0, rc = MD_ERR;
    if (md_conf_view_blob(input, 1, &v, err) != MD_OK || md_conf_load_prompts(ctx, &csv, &pr, &np, err) != MD_OK)
        return MD_ERR;
    int R = v.h->n_roles, k = v.h->k;
    if (md_plan_axis_size(plan, "", "rank", k, err) != MD_OK || md_plan_axis_size(plan, "", "prompt", np, err) != MD_OK)
        goto done;
    for (int r = 0; r < R; r++) {
        const char *role = md_exp_get_role(ctx, r);
        if (md_plan_output_put(plan, OUT(CO_ACT_MEAN), &role, v.act_mean + r * k, (size_t)k * sizeof(double),
                               err) != MD_OK ||
            md_plan_output(plan, OUT(CO_ENTROPY_ABLATED), &role, err) != MD_OK)
            goto done;
    }
    md_stage_estimate est;
    if (md_plan_units(plan, R * md_conf_n_batches(ctx, np), err) == MD_OK)
        rc = batch_costs(ctx, 2, pr, np, plan, &est, err);
done:
    free(pr);
    md_csv_free(csv);
    return rc;
}

int md_conf_plan(const md_kind_ctx *ctx, int stage, const md_blob *input, md_plan *plan, md_error *err)
{
    if (stage == 0) return plan_stage0(ctx, plan, err);
    if (stage == 1) return plan_stage1(ctx, input, plan, err);
    return plan_stage2(ctx, input, plan, err);
}

int md_conf_estimate(const md_kind_ctx *ctx, md_stage_estimate *out, md_error *err)
{
    if (stage0_costs(ctx, NULL, &out[0], err) != MD_OK) return MD_ERR;
    if (!md_conf_has_prompts(ctx)) {
        out[1] = (md_stage_estimate){.units = 1, .cost = 1}; /* one empty unit at the default cost */
        return MD_OK;
    }
    md_csv *csv = NULL;
    const char **pr = NULL;
    int np = 0, rc = md_conf_load_prompts(ctx, &csv, &pr, &np, err);
    for (int stage = 1; rc == MD_OK && stage <= 2; stage++) rc = batch_costs(ctx, stage, pr, np, NULL, &out[stage], err);
    free(pr);
    md_csv_free(csv);
    return rc;
}
