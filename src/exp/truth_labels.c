/* truth_labels.c — what labels the `truth` kind's results (truth.h): the
 * named axes of its plans (roles, test datasets, conditions, classes,
 * effects, control directions, probe parameters) and, per model and
 * dataset, the token each activation was read at (id, text, absolute index)
 * with descriptions true for that model's tokenizer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp/truth.h"
#include "mechdiff/exp_output.h"
#include "mechdiff/exp_util.h"
#include "mechdiff/tokcache.h"

int md_truth_plan_axes(const md_truth_state *s, const char *const *conds, int n_cond, const char *const *tests,
                       md_plan *plan, md_error *err)
{
    if (md_exp_axis_roles(plan, s->roles, s->n_roles, err) != MD_OK ||
        md_plan_axis(plan, "", "test_dataset", tests, s->n_test, "test dataset", err) != MD_OK ||
        md_plan_axis(plan, "", "condition", conds, n_cond,
                     "clean, a model's truth direction (dir_<role>) or a random control (random_<k>)", err) != MD_OK ||
        md_plan_axis_csv(plan, "", "class", "false,true", "statement label", err) != MD_OK ||
        md_plan_axis_csv(plan, "", "effect", "false_to_true,true_to_false,average", "intervention effect", err) !=
            MD_OK ||
        md_plan_axis_csv(plan, "", "param", "weight,bias", "probe parameter", err) != MD_OK)
        return MD_ERR;
    for (int j = 0; j < s->n_test; j++) { /* interv/<ds>: statements by their index into statements/<ds> */
        const tr_ds *ds = &s->ds[s->test[j]];
        char scope[MD_PATH_MAX], desc[256];
        int64_t *v = malloc((size_t)(ds->n_iv > 0 ? ds->n_iv : 1) * sizeof *v);
        if (!v) return md_error_set(err, "out of memory");
        for (int i = 0; i < ds->n_iv; i++) v[i] = ds->iv[i];
        snprintf(scope, sizeof scope, "interv/%s", ds->name);
        snprintf(desc, sizeof desc, "the statement's row in statements/%s (few-shot examples excluded)", ds->name);
        int rc = ds->n_iv > 0 ? md_plan_axis_values(plan, scope, "statement", v, ds->n_iv, desc, err) : MD_OK;
        free(v);
        if (rc != MD_OK) return MD_ERR;
    }
    if (s->n_control == 0) return MD_OK;
    const char *const *ctl = conds + 1 + s->n_roles; /* random_<k> follow clean and dir_<role> */
    return md_plan_axis(plan, "", "control", ctl, s->n_control, "random control direction (condition)", err);
}

/* Dataset k's read tokens for role m (tokenizer tok). */
static int put_tokens(const md_truth_state *s, int m, int k, const md_tokenizer *tok, const md_output *out,
                      md_plan *plan, md_error *err)
{
    const tr_ds *ds = &s->ds[k];
    int n = ds->n;
    const char **texts = malloc((size_t)(n ? n : 1) * sizeof *texts);
    int32_t *ids = malloc((size_t)(n ? n : 1) * sizeof *ids), *pos = malloc((size_t)(n ? n : 1) * sizeof *pos);
    char *strs = NULL;
    size_t nb = 0;
    int rel = s->token, rc = texts && ids && pos ? MD_OK : md_error_set(err, "out of memory");
    for (int i = 0; rc == MD_OK && i < n; i++) texts[i] = md_truth_stmt(s, k, i);
    if (rc == MD_OK) rc = md_exp_tokens_at(tok, texts, n, 1, &rel, 1, ids, pos, &strs, &nb, err); /* as tr_read_acts */
    const char *const args[] = {s->roles[m], ds->name};
    if (rc == MD_OK)
        rc = md_plan_output_put(plan, &out[0], args, ids, (size_t)n * sizeof *ids, err) ||
             md_plan_output_put(plan, &out[1], args, strs, nb, err) ||
             md_plan_output_put(plan, &out[2], args, pos, (size_t)n * sizeof *pos, err) ? MD_ERR : MD_OK;
    free(texts), free(ids), free(pos), free(strs);
    return rc;
}

int md_truth_plan_tokens(const md_kind_ctx *ctx, const md_truth_state *s, const md_output *out, md_plan *plan,
                         md_error *err)
{
    for (int m = 0; m < s->n_roles; m++) {
        md_config cfg;
        md_tokenizer *tok = NULL;
        char note[256], path[MD_PATH_MAX], desc[512];
        if (md_exp_load_role(ctx, ctx->exp->name, s->roles[m], &cfg, &tok, err) != MD_OK) return MD_ERR;
        int rc = md_exp_bos_note(tok, note, sizeof note, err);
        snprintf(desc, sizeof desc, "the hook point at (layer, token) of the bare statement as %s reads it, %s (not "
                 "centred; the token: tokens/%s/<dataset>)", s->roles[m], note, s->roles[m]);
        for (int k = 0; rc == MD_OK && k < s->n_ds; k++) {
            snprintf(path, sizeof path, "acts/%s/%s", s->roles[m], s->ds[k].name);
            rc = put_tokens(s, m, k, tok, out, plan, err);
            if (rc == MD_OK) rc = md_plan_attr(plan, path, "description", desc, err);
        }
        md_tokcache_release(ctx->toks, tok);
        if (rc != MD_OK) return MD_ERR;
    }
    return MD_OK;
}

/* Test dataset j's intervention tokens for role m (tokenizer tok). */
static int put_interv_tokens(const md_truth_state *s, int m, int j, const md_tokenizer *tok, const md_output *out,
                             md_plan *plan, md_error *err)
{
    const tr_ds *ds = &s->ds[s->test[j]];
    int n = ds->n_iv, P = s->n_pos;
    size_t cells = (size_t)(n > 0 ? n : 1) * P;
    int32_t *ids = malloc(cells * sizeof *ids), *pos = malloc(cells * sizeof *pos);
    char *strs = NULL;
    size_t nb = 0;
    int rc = ids && pos ? MD_OK : md_error_set(err, "out of memory");
    for (int i = 0; rc == MD_OK && i < n; i++) { /* as tr_encode_batch (truth.c) */
        int *t = NULL, len = 0, end = 0;
        rc = md_truth_encode_prompt(tok, ds->few_shot, md_truth_stmt(s, s->test[j], ds->iv[i]), s->opt.suffix, &t,
                                    &len, &end, err);
        for (int q = 0; rc == MD_OK && q < P; q++) {
            int p = end + 1 + s->pos[q];
            pos[(size_t)i * P + q] = p >= 0 && p < len ? p : -1;
            ids[(size_t)i * P + q] = p >= 0 && p < len ? t[p] : -1;
        }
        free(t);
    }
    if (rc == MD_OK) rc = md_exp_token_strings(tok, ids, (int64_t)n * P, &strs, &nb, err);
    const char *const args[] = {ds->name, s->roles[m]};
    if (rc == MD_OK)
        rc = md_plan_output_put(plan, &out[0], args, ids, (size_t)n * P * sizeof *ids, err) ||
             md_plan_output_put(plan, &out[1], args, strs, nb, err) ||
             md_plan_output_put(plan, &out[2], args, pos, (size_t)n * P * sizeof *pos, err) ? MD_ERR : MD_OK;
    free(ids), free(pos), free(strs);
    return rc;
}

int md_truth_plan_interv_tokens(const md_kind_ctx *ctx, const md_truth_state *s, const md_output *out, md_plan *plan,
                                md_error *err)
{
    int64_t v[TR_MAX_POS];
    for (int q = 0; q < s->n_pos; q++) v[q] = s->pos[q];
    for (int j = 0; j < s->n_test; j++) {
        char scope[MD_PATH_MAX];
        snprintf(scope, sizeof scope, "interv/%s/tokens", s->ds[s->test[j]].name);
        if (s->ds[s->test[j]].n_iv > 0 &&
            md_plan_axis_values(plan, scope, "position", v, s->n_pos,
                                "intervention position, counted from the statement's last token (-1 = that token)",
                                err) != MD_OK)
            return MD_ERR;
    }
    for (int m = 0; m < s->n_roles; m++) {
        md_config cfg;
        md_tokenizer *tok = NULL;
        if (md_exp_load_role(ctx, ctx->exp->name, s->roles[m], &cfg, &tok, err) != MD_OK) return MD_ERR;
        int rc = MD_OK;
        for (int j = 0; rc == MD_OK && j < s->n_test; j++)
            if (s->ds[s->test[j]].n_iv > 0) rc = put_interv_tokens(s, m, j, tok, out, plan, err);
        md_tokcache_release(ctx->toks, tok);
        if (rc != MD_OK) return MD_ERR;
    }
    return MD_OK;
}
