/* exp_util.c — helpers shared by the experiment kinds (see exp_util.h). */
#include "mechdiff/exp_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/directions.h"
#include "mechdiff/forward.h"
#include "mechdiff/generate.h"
#include "mechdiff/model.h"

const char *md_exp_format_where(const md_kind_ctx *ctx, char *buf, size_t n)
{
    snprintf(buf, n, "%s:%d:%d: experiment '%s'", ctx->job->source, ctx->exp->line, ctx->exp->col, ctx->exp->name);
    return buf;
}

int md_exp_count_roles(const md_kind_ctx *ctx)
{
    int n = md_params_count(&ctx->exp->params, "models");
    return n > 0 ? n : md_params_count(&ctx->job->top, "models");
}

const char *md_exp_get_role(const md_kind_ctx *ctx, int i)
{
    return md_params_count(&ctx->exp->params, "models") > 0 ? md_params_item(&ctx->exp->params, "models", i)
                                                              : md_params_item(&ctx->job->top, "models", i);
}

int md_exp_resolve_roles(const md_kind_ctx *ctx, const char *where, const char **roles, int max, int *n,
                         md_error *err)
{
    int nr = md_exp_count_roles(ctx);
    if (nr < 1 || nr > max) return md_error_set(err, "%s: key 'models': %d roles (1 to %d allowed)", where, nr, max);
    for (int i = 0; i < nr; i++) {
        roles[i] = md_exp_get_role(ctx, i);
        if (!md_params_map_get(&ctx->job->top, "models", roles[i]))
            return md_error_set(err, "%s: key 'models': role '%s' is not in the job's models map", where, roles[i]);
    }
    *n = nr;
    return MD_OK;
}

int md_exp_load_role(const md_kind_ctx *ctx, const char *where, const char *role, md_config *cfg,
                     md_tokenizer **tok, md_error *err)
{
    const char *dir = md_params_map_get(&ctx->job->top, "models", role);
    if (md_hf_config_load_dir(cfg, dir, err) != MD_OK || md_tokenizer_load(tok, dir, err) != MD_OK)
        return md_error_prefix(err, "%s: model '%s'", where, role);
    return MD_OK;
}

int md_exp_check_widths(const char *where, const char *role0, const md_config *c0, const char *role,
                        const md_config *c, md_error *err)
{
    char why[256];
    if (md_hf_config_check_pair(c0, c, why, sizeof why) == MD_OK) return MD_OK;
    return md_error_set(err, "%s: models do not pair: '%s' and '%s': %s (directions cross between models: use a "
                             "base model and its own post-trained version)",
                        where, role0, role, why);
}

const char *md_exp_find_dataset(const md_kind_ctx *ctx, const char *where, const char *key, const char *name,
                                md_error *err)
{
    const char *path = md_params_map_get(&ctx->job->top, "datasets", name);
    if (!path)
        md_error_set(err, "%s: key '%s': '%s' is not in the job's datasets map (add it under datasets:)", where, key,
                     name);
    return path;
}

int md_exp_count_batches(int n, int batch)
{
    return (n + batch - 1) / batch;
}

int md_exp_slice_batch(int n, int batch, int b, int *first)
{
    *first = b * batch;
    return n - *first < batch ? n - *first : batch;
}

int md_exp_alloc_units(md_exp_units *u, int cap, md_error *err)
{
    u->n = 0;
    u->key = malloc((size_t)cap * sizeof *u->key);
    if (!u->key) return md_error_set(err, "out of memory");
    return MD_OK;
}

void md_exp_add_unit(md_exp_units *u, int k0, int k1, int k2, int k3)
{
    int *k = u->key[u->n++];
    k[0] = k0, k[1] = k1, k[2] = k2, k[3] = k3;
}

void md_exp_free_units(md_exp_units *u)
{
    free(u->key);
    u->key = NULL;
    u->n = 0;
}

void md_exp_join_names(char *val, size_t cap, const char *const *items, int n)
{
    size_t off = 0;
    val[0] = '\0';
    for (int i = 0; i < n && off < cap; i++) off += (size_t)snprintf(val + off, cap - off, "%s%s", i ? "," : "", items[i]);
}

int md_exp_declare_dset(md_plan *plan, const char *path, md_h5type type, int rank, const int64_t *dims,
                        const char *const *names, const char *units, const char *desc, md_error *err)
{
    md_dset_decl d = {.type = type, .rank = rank, .units = units, .description = desc};
    snprintf(d.path, sizeof d.path, "%s", path);
    for (int i = 0; i < rank; i++) {
        d.dims[i] = dims[i];
        d.dim_names[i] = names[i];
    }
    if (type == MD_H5_F32 && rank == 2) {
        d.chunk[0] = 64;
        d.deflate = 1;
    }
    return md_plan_dataset(plan, &d, err);
}

void md_exp_name_unit(const md_kind_ctx *ctx, int stage, int64_t unit, char *buf, size_t len)
{
    snprintf(buf, len, "%s/stage %d/unit %lld", ctx->exp->name, stage, (long long)unit);
}

void *md_exp_alloc_blob(const int32_t *hd, int n_hd, size_t n_f64, double **f64, size_t *bytes)
{
    size_t head = (size_t)n_hd * sizeof(int32_t);
    *bytes = head + sizeof(double) * n_f64;
    char *b = calloc(1, *bytes);
    if (!b) return NULL;
    memcpy(b, hd, head);
    *f64 = (double *)(b + head);
    return b;
}

int md_exp_read_blob_header(const md_blob *b, const char *kind, int32_t *hd, int n_hd, md_error *err)
{
    size_t head = (size_t)n_hd * sizeof(int32_t);
    if (!b || b->size < head) return md_error_set(err, "%s: stage input is missing", kind);
    memcpy(hd, b->data, head);
    return MD_OK;
}

int md_exp_view_blob_f64(const md_blob *b, const char *kind, int n_hd, size_t n_f64, const double **f64,
                         md_error *err)
{
    size_t need = (size_t)n_hd * sizeof(int32_t) + sizeof(double) * n_f64;
    if (!b || b->size != need)
        return md_error_set(err, "%s: stage input has %zu bytes, expected %zu", kind, b ? b->size : 0, need);
    *f64 = (const double *)((const char *)b->data + (size_t)n_hd * sizeof(int32_t));
    return MD_OK;
}

void md_exp_free_ids(int **ids, int n)
{
    if (!ids) return;
    for (int i = 0; i < n; i++) free(ids[i]);
    free(ids);
}

int md_exp_pad_batch(const md_model *m, int **ids, const int *len, int n, int *T_out, int **pad, int **tok,
                     md_error *err)
{
    int T = 0;
    for (int i = 0; i < n; i++)
        if (len[i] > T) T = len[i];
    *pad = malloc((size_t)n * sizeof(int));
    *tok = malloc((size_t)n * T * sizeof(int));
    if (!*pad || !*tok) return md_error_set(err, "out of memory");
    int fill = md_tokenizer_bos_id(m->tok) >= 0 ? md_tokenizer_bos_id(m->tok) : 0;
    for (int i = 0; i < n; i++) {
        (*pad)[i] = T - len[i];
        for (int t = 0; t < T; t++) (*tok)[(size_t)i * T + t] = t < (*pad)[i] ? fill : ids[i][t - (*pad)[i]];
    }
    *T_out = T;
    return MD_OK;
}

int md_exp_read_acts_grid(md_model *m, int **ids, const int *len, int n, int hook, const int *layers, int n_layers,
                          const int *pos, int n_pos, float *acts, md_error *err)
{
    int T = 0, *pad = NULL, *tok = NULL, rc = MD_ERR, deepest = 0;
    size_t width = (size_t)md_model_hook_width(m, hook);
    md_kvcache *kc = NULL;
    md_hook *rd = calloc((size_t)n_layers * n_pos, sizeof *rd);
    if (!rd) {
        md_error_set(err, "out of memory");
        goto done;
    }
    if (md_exp_pad_batch(m, ids, len, n, &T, &pad, &tok, err) != MD_OK) goto done;
    for (int li = 0; li < n_layers; li++) {
        if (layers[li] > deepest) deepest = layers[li];
        for (int pi = 0; pi < n_pos; pi++)
            rd[li * n_pos + pi] = (md_hook){.point = hook, .op = MD_HOOK_READ, .layer = layers[li], .seq = MD_ALL,
                                            .pos = T + pos[pi],
                                            .out = acts + (size_t)(li * n_pos + pi) * n * width};
    }
    md_forward f;
    md_forward_init_tokens(&f, m, n, T, tok);
    f.n_pad = pad, f.hooks = rd, f.n_hooks = n_layers * n_pos;
    f.layer_end = deepest + 1;
    f.logits = MD_LOGITS_NONE;
    if (md_kvcache_create(&kc, m, n, T, err) != MD_OK) goto done;
    f.cache = kc;
    rc = md_model_forward(m, &f, err);
done:
    md_kvcache_free(kc);
    free(rd), free(pad), free(tok);
    return rc;
}

int md_exp_read_acts(md_model *m, int **ids, const int *len, int n, int hook, int layer, int pos, float *acts,
                     md_error *err)
{
    return md_exp_read_acts_grid(m, ids, len, n, hook, &layer, 1, &pos, 1, acts, err);
}

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
    md_chat_kind kind;
    const char *fmt;
    if (!m->tok) return md_error_set(err, "model '%s' (%s) has no tokenizer.json", role, m->dir);
    if (md_exp_instruction_template(ctx, role, m->chat, &kind, &fmt, err) != MD_OK) return MD_ERR;
    for (int i = 0; i < n; i++) {
        size_t nid = 0;
        if (md_chat_encode(m->tok, kind, fmt, md_csv_cell(csv, idx[i], col), &ids[i], &nid, err) != MD_OK)
            return md_error_prefix(err, "model '%s'", role);
        len[i] = (int)nid;
    }
    return MD_OK;
}

/* Strings of rows idx[0..n) of a CSV column at offset off of a 1-D dataset. */
int md_exp_put_csv_strings(md_plan *plan, const char *path, const md_csv *t, int col, const int *idx, int n, int64_t off,
                           md_error *err)
{
    size_t total = 0;
    for (int i = 0; i < n; i++) total += strlen(md_csv_cell(t, idx[i], col)) + 1;
    char *buf = malloc(total ? total : 1), *q = buf;
    if (!buf) return md_error_set(err, "out of memory");
    for (int i = 0; i < n; i++) {
        size_t l = strlen(md_csv_cell(t, idx[i], col)) + 1;
        memcpy(q, md_csv_cell(t, idx[i], col), l);
        q += l;
    }
    int64_t cnt = n;
    int rc = md_plan_put(plan, path, &off, &cnt, buf, total, err);
    free(buf);
    return rc;
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
        if (md_tokenizer_decode(m->tok, g.out_ids[i], (size_t)g.out_len[i], 1, &texts[i], err) != MD_OK) goto done;
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
