/* exp_prompt.c — see exp_prompt.h. */
#include "mechdiff/exp_prompt.h"

#include <stdlib.h>
#include <string.h>

#include "mechdiff/directions.h"
#include "mechdiff/generate.h"
#include "mechdiff/model.h"
#include "mechdiff/tokenizer.h"
#include "mechdiff/exp_util.h"

/* The template of a role: kind + format (fmt NULL unless MD_CHAT_FORMAT). */
int md_exp_instruction_template(const md_kind_ctx *ctx, const char *role, md_chat_kind model_chat, md_chat_kind *kind,
                                const char **fmt, md_error *err)
{
    char where[MD_EXP_WHERE_MAX];
    md_exp_format_where(ctx, where, sizeof where);
    const char *t = md_params_map_get(&ctx->exp->params, "templates", role);
    if (!t) t = strstr(role, "base") ? "base" : "chat";
    *fmt = NULL;
    if (strcmp(t, "chat") == 0) {
        if (model_chat == MD_CHAT_UNKNOWN)
            return md_error_set(err,
                                "%s: key 'templates': model '%s' has no chat template mechdiff recognises; set "
                                "templates: {%s: <llama3|llama2|mistral|tulu|base>} or a format string with "
                                "{instruction}",
                                where, role, role);
        *kind = model_chat;
        return MD_OK;
    }
    md_chat_kind k = md_chat_parse_name(t);
    if (k != MD_CHAT_UNKNOWN) {
        *kind = k;
        return MD_OK;
    }
    const char *a = strstr(t, "{instruction}");
    if (!a || strstr(a + 1, "{instruction}"))
        return md_error_set(err,
                            "%s: key 'templates': '%s' for role '%s' is neither 'base', 'chat', a template name "
                            "(llama3, llama2, mistral, tulu) nor a format string with {instruction} exactly once",
                            where, t, role);
    *kind = MD_CHAT_FORMAT;
    *fmt = t;
    return MD_OK;
}

/* Renders (in the role's template) and encodes the instructions of rows idx[0..n) of a CSV column. */
int md_exp_encode_instructions(const md_kind_ctx *ctx, struct md_model *m, const char *role, const md_csv *csv, int col,
                               const int *idx, int n, int **ids, int *len, md_error *err)
{
    if (!m->tok) return md_error_set(err, "model '%s' (%s) has no tokenizer.json", role, m->dir);
    return md_exp_encode_instructions_with(ctx, m->tok, m->chat, role, csv, col, idx, n, ids, len, err);
}

int md_exp_encode_instructions_with(const md_kind_ctx *ctx, const md_tokenizer *tok, md_chat_kind model_chat,
                                    const char *role, const md_csv *csv, int col, const int *idx, int n, int **ids,
                                    int *len, md_error *err)
{
    md_chat_kind kind;
    const char *fmt;
    if (md_exp_instruction_template(ctx, role, model_chat, &kind, &fmt, err) != MD_OK) return MD_ERR;
    for (int i = 0; i < n; i++) {
        size_t nid = 0;
        if (md_chat_encode(tok, kind, fmt, md_csv_cell(csv, idx[i], col), &ids[i], &nid, err) != MD_OK)
            return md_error_prefix(err, "model '%s'", role);
        len[i] = (int)nid;
    }
    return MD_OK;
}

int md_exp_generate_refusals(struct md_model *m, int **ids, const int *len, int n, int max_new, const md_hook *hooks,
                             int n_hooks, int32_t *refused, char **joined, size_t *total, md_error *err)
{
    md_generation g = {0};
    char **texts = calloc((size_t)(n > 0 ? n : 1), sizeof(char *));
    int rc = MD_ERR;
    *joined = NULL;
    *total = 0;
    if (!texts) return md_error_set(err, "out of memory");
    if (md_generate_greedy(m, n, (const int *const *)ids, len, max_new, n_hooks ? hooks : NULL, n_hooks, &g, err) !=
        MD_OK)
        goto done;
    for (int i = 0; i < n; i++) {
        if (md_tokenizer_decode_generated(m->tok, g.out_ids[i], (size_t)g.out_len[i], 1, &texts[i], err) != MD_OK)
            goto done;
        refused[i] = md_dir_is_refusal(texts[i]);
        *total += strlen(texts[i]) + 1;
    }
    if (!(*joined = malloc(*total ? *total : 1))) {
        md_error_set(err, "out of memory");
        goto done;
    }
    for (size_t i = 0, off = 0; i < (size_t)n; i++) {
        size_t l = strlen(texts[i]) + 1;
        memcpy(*joined + off, texts[i], l);
        off += l;
    }
    rc = MD_OK;
done:
    md_generation_free(&g);
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
    return rc;
}
