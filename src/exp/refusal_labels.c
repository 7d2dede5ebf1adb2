/* refusal_labels.c — what labels the refusal kind's results
 * (refusal_common.h): the named axes of its plans (roles, sets,
 * interventions, candidate layers and positions), the roles of each
 * generation group with the instruction beside each completion, and the
 * tokens the activations are read at (per role: its template and
 * tokenizer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp/refusal_labels.h"
#include "mechdiff/chat.h"
#include "mechdiff/exp_output.h"
#include "mechdiff/exp_prompt.h"
#include "mechdiff/exp_util.h"

/* Axis `name` of the values v[0..n). */
static int int_axis(md_plan *plan, const char *name, const int *v, int n, const char *doc, md_error *err)
{
    int64_t *w = malloc((size_t)(n > 0 ? n : 1) * sizeof *w);
    if (!w) return md_error_set(err, "out of memory");
    for (int i = 0; i < n; i++) w[i] = v[i];
    int rc = md_plan_axis_values(plan, "", name, w, n, doc, err);
    free(w);
    return rc;
}

int md_refusal_plan_axes(md_plan *plan, const md_refusal_state *s, md_error *err)
{
    if (md_exp_axis_roles(plan, s->roles, s->n_roles, err) != MD_OK ||
        md_plan_axis_csv(plan, "", "set", "harmful,harmless", "instruction set", err) != MD_OK)
        return MD_ERR;
    if (s->sweep)
        return int_axis(plan, "layer", s->layers, s->n_layers, "candidate layer (its index in the model)", err) ||
               int_axis(plan, "position", s->positions, s->n_pos,
                        "candidate position, counted from the end of the prompt (-1 = its last token)", err)
                   ? MD_ERR : MD_OK;
    char val[2048];
    size_t off = 0;
    for (int iv = 0; iv < 1 + 2 * s->n_roles && off < sizeof val; iv++) {
        char ivn[128];
        md_refusal_interv_name(s, iv, ivn, sizeof ivn);
        off += (size_t)snprintf(val + off, sizeof val - off, "%s%s", iv ? "," : "", ivn);
    }
    return md_plan_axis_csv(plan, "", "intervention", val,
                            "none, ablate_<role> (that role's direction projected out at every layer) or "
                            "add_<role> (added at the addition layer)",
                            err);
}

int md_refusal_plan_sweep_labels(md_plan *plan, const md_refusal_state *s, const md_output *ins,
                                 const md_output *csv_row, md_error *err)
{
    int set = MD_REFUSAL_HARMFUL;
    if (md_plan_output(plan, ins, NULL, err) != MD_OK ||
        md_exp_put_csv_strings(plan, "test_instruction", s->csv[set], s->col[set], s->test[set], s->n_test, 0, err) !=
            MD_OK ||
        md_plan_output_put(plan, csv_row, NULL, s->test[set], (size_t)s->n_test * sizeof(int), err) != MD_OK)
        return MD_ERR;
    for (int m = 0; m < s->n_roles; m++)
        for (int li = 0; li < s->n_layers; li++)
            for (int pi = 0; pi < s->n_pos; pi++) {
                char group[MD_PATH_MAX], l[16], p[16], desc[512];
                snprintf(group, sizeof group, "gen/%s/layer%d_pos%d", s->roles[m], s->layers[li], s->positions[pi]);
                snprintf(l, sizeof l, "%d", s->layers[li]);
                snprintf(p, sizeof p, "%d", s->positions[pi]);
                snprintf(desc, sizeof desc, "greedy completions of %s on the harmful test instructions (rows of "
                         "test_instruction) with its own direction of layer %d, position %d ablated", s->roles[m],
                         s->layers[li], s->positions[pi]);
                const char *names[] = {"set", "target", "source", "operation", "layer", "position", "description"};
                const char *values[] = {"harmful", s->roles[m], s->roles[m], "ablate", l, p, desc};
                for (int i = 0; i < 7; i++)
                    if (md_plan_attr(plan, group, names[i], values[i], err) != MD_OK) return MD_ERR;
            }
    return MD_OK;
}

int md_refusal_plan_gen_group(md_plan *plan, const md_refusal_state *s, const md_output *instruction,
                              const md_output *csv_row, int set, const char *target, const char *intervention,
                              md_error *err)
{
    char group[MD_PATH_MAX], path[MD_PATH_MAX + 16], op[32] = "none", desc[512];
    const char *source = "";
    const char *us = strchr(intervention, '_');
    if (us && (size_t)(us - intervention) < sizeof op) { /* ablate_<role>, add_<role> */
        snprintf(op, sizeof op, "%.*s", (int)(us - intervention), intervention);
        source = us + 1;
    }
    const char *set_name = md_refusal_set_name(set);
    const char *args[] = {set_name, target, intervention};
    int64_t n = s->n_test;
    snprintf(group, sizeof group, "gen/%s/%s/%s", set_name, target, intervention);
    if (source[0])
        snprintf(desc, sizeof desc, "greedy completions of %s on the %s test instructions with the refusal direction "
                 "of %s (source) %s", target, set_name, source, !strcmp(op, "add") ? "added" : "ablated");
    else
        snprintf(desc, sizeof desc, "greedy completions of %s on the %s test instructions, no intervention", target,
                 set_name);
    snprintf(path, sizeof path, "%s/instruction", group);
    int64_t *rows = malloc((size_t)(n > 0 ? n : 1) * sizeof *rows);
    if (!rows) return md_error_set(err, "out of memory");
    for (int64_t i = 0; i < n; i++) rows[i] = s->n_train + i;
    char doc[128];
    snprintf(doc, sizeof doc, "the instruction's row in split/%s/instruction (test rows follow the n_train train rows)",
             set_name);
    int rc = md_plan_axis_values(plan, group, "row", rows, n, doc, err);
    free(rows);
    if (rc != MD_OK) return MD_ERR;
    if (md_plan_output(plan, instruction, args, err) != MD_OK ||
        md_exp_put_csv_strings(plan, path, s->csv[set], s->col[set], s->test[set], s->n_test, 0, err) != MD_OK ||
        md_plan_output_put(plan, csv_row, args, s->test[set], (size_t)s->n_test * sizeof(int), err) != MD_OK)
        return MD_ERR;
    const char *names[] = {"set", "target", "intervention", "operation", "source", "description"};
    const char *values[] = {set_name, target, intervention, op, source, desc};
    for (int i = 0; i < 6; i++)
        if (md_plan_attr(plan, group, names[i], values[i], err) != MD_OK) return MD_ERR;
    return MD_OK;
}

/* The train prompts of one set as role's model reads them, and the tokens
 * at rel[0..n_rel) of each: out[0..2] = token_id, token, position entries,
 * [row, position]. */
static int put_set_tokens(md_plan *plan, const md_kind_ctx *ctx, const md_refusal_state *s, const char *role,
                          const md_tokenizer *tok, int set, const int *rel, int n_rel, const md_output *out,
                          md_error *err)
{
    const char *jt = md_tokenizer_chat_template(tok);
    md_chat_kind kind;
    const char *fmt;
    if (md_exp_instruction_template(ctx, role, jt ? md_chat_detect(jt) : MD_CHAT_UNKNOWN, &kind, &fmt, err) != MD_OK)
        return MD_ERR;
    int n = s->n_train;
    size_t cells = (size_t)n * n_rel;
    int32_t *ids = malloc(cells * sizeof *ids), *pos = malloc(cells * sizeof *pos);
    char *strs = NULL;
    size_t nb = 0;
    int rc = ids && pos ? MD_OK : md_error_set(err, "out of memory");
    for (int i = 0; rc == MD_OK && i < n; i++) { /* as md_exp_encode_instructions (exp_prompt.c) */
        int *t = NULL;
        size_t nt = 0;
        rc = md_chat_encode(tok, kind, fmt, md_csv_cell(s->csv[set], s->train[set][i], s->col[set]), &t, &nt, err);
        for (int j = 0; rc == MD_OK && j < n_rel; j++) {
            int64_t p = (int64_t)nt + rel[j];
            pos[(size_t)i * n_rel + j] = p >= 0 && p < (int64_t)nt ? (int32_t)p : -1;
            ids[(size_t)i * n_rel + j] = p >= 0 && p < (int64_t)nt ? t[p] : -1;
        }
        free(t);
    }
    if (rc == MD_OK) rc = md_exp_token_strings(tok, ids, (int64_t)cells, &strs, &nb, err);
    const char *args[] = {role, md_refusal_set_name(set)};
    if (rc == MD_OK)
        rc = md_plan_output_put(plan, &out[0], args, ids, cells * sizeof *ids, err) ||
             md_plan_output_put(plan, &out[1], args, strs, nb, err) ||
             md_plan_output_put(plan, &out[2], args, pos, cells * sizeof *pos, err) ? MD_ERR : MD_OK;
    free(ids), free(pos), free(strs);
    return rc;
}

int md_refusal_plan_tokens(md_plan *plan, const md_kind_ctx *ctx, const md_refusal_state *s, int role,
                           const md_tokenizer *tok, const int *rel, int n_rel, const md_output *out, md_error *err)
{
    const char *name = s->roles[role];
    char scope[MD_PATH_MAX];
    int64_t v[64];
    if (n_rel < 1 || n_rel > 64) return md_error_set(err, "refusal: %d candidate positions (1..64)", n_rel);
    for (int j = 0; j < n_rel; j++) v[j] = rel[j];
    snprintf(scope, sizeof scope, "tokens/%s", name);
    if (md_plan_axis_values(plan, scope, "position", v, n_rel,
                            "token position counted from the end of the prompt (-1 = its last token)", err) != MD_OK)
        return MD_ERR;
    int rc = MD_OK;
    for (int k = 0; rc == MD_OK && k < 2; k++) rc = put_set_tokens(plan, ctx, s, name, tok, k, rel, n_rel, out, err);
    return rc;
}
