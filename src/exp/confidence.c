/* confidence.c — the `confidence` kind: entropy neurons (docs/methods.md
 * "Confidence") per model, their overlap across models, and (beyond the
 * study) what they do on a prompt set.
 *
 * Stage 0, unit = (role, block of `neuron_block` last-layer neurons): the
 *   neurons' norm and LogitVar (src/exp/entropy.c). Reads only the last
 *   layer's down_proj, model.norm and W_U straight from the mmap'd checkpoint
 *   (no model is loaded; W_U is streamed in `wu_block`-row blocks).
 * finish 0: selection per role (norm > percentile, then top_k smallest
 *   LogitVar) -> blob.
 * Stage 1 (plan puts the selection and every pair's comparison); when
 *   `prompts` names a dataset, unit = (role, batch of `prompt_batch` prompts):
 *   one forward per batch reading mlp_post of the last layer at the last
 *   token (the entropy neurons' activations) and the next-token entropy.
 * finish 1: mean activation of each entropy neuron over the prompts -> blob.
 * Stage 2, same units: mean-ablation of each entropy neuron in turn at the
 *   last token (mlp_post REPLACE with the clean row where that one neuron is
 *   set to its mean), next-token entropy again. The last layer's MLP only
 *   acts on its own position, so the ablated run is a partial forward of the
 *   last layer at the last position from the clean run's residual and cache.
 * Units depend on the job only, never on the number of ranks.
 *
 * Output (/<name>/...):
 *   <role>/norm [neuron]               f64  ||W_down[:, i]||
 *   <role>/logitvar [neuron]           f64  unbiased var over vocab of cos(w_i, Uc[v])
 *   <role>/selected [rank]             i32  entropy neurons, ascending LogitVar (-1 = fewer qualified)
 *   <role>/norm_threshold [1]          f64  the percentile of the norms
 *   pairs/<a>-><b>/overlap [1]         i32  |A ∩ B|
 *   pairs/<a>-><b>/iou [1]             f64
 *   pairs/<a>-><b>/d_norm, d_logitvar [neuron]  f64  b - a
 *   prompts [prompt]                   str  (when `prompts` is set)
 *   <role>/activation [prompt, rank]   f32  mlp_post of the entropy neuron, last token
 *   <role>/entropy [prompt]            f64  next-token entropy (nats)
 *   <role>/act_mean [rank]             f64  mean activation over the prompts
 *   <role>/entropy_ablated [prompt, rank] f64  entropy with that neuron mean-ablated */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp/confidence.h"
#include "mechdiff/csv.h"
#include "mechdiff/entropy.h"
#include "mechdiff/exp_batch.h"
#include "mechdiff/exp_units.h"
#include "mechdiff/exp_util.h"
#include "mechdiff/experiment.h"
#include "mechdiff/forward.h"
#include "mechdiff/hf_config.h"
#include "mechdiff/model.h"
#include "mechdiff/tokcache.h"


static const md_key CONFIDENCE_KEYS[] = {
    {.name = "models", .type = MD_KEY_STRLIST, .def = "",
     .doc = "Roles analysed (empty = every role in `models`); every pair of them is compared."},
    {.name = "percentile", .type = MD_KEY_FLOAT, .def = "75", .min = 0, .max = 100,
     .doc = "Norm filter: keep neurons whose ||w_out|| is strictly above this percentile (linear interpolation, as numpy)."},
    {.name = "top_k", .type = MD_KEY_INT, .def = "10", .min = 1, .max = 4096,
     .doc = "Entropy neurons per model: the top_k smallest LogitVar among the kept neurons."},
    {.name = "neuron_block", .type = MD_KEY_INT, .def = "1024", .min = 1, .max = 1e7,
     .doc = "Neurons per work unit of the static stage (each unit streams W_U once)."},
    {.name = "wu_block", .type = MD_KEY_INT, .def = "1024", .min = 1, .max = 1e7,
     .doc = "Rows of W_U converted to fp32 at a time (memory: wu_block x d_model floats)."},
    {.name = "prompts", .type = MD_KEY_STRING, .def = "",
     .doc = "Dataset (top-level `datasets` name) whose prompts measure activations, entropy and mean-ablation; empty = static analysis only."},
    {.name = "prompt_column", .type = MD_KEY_STRING, .def = "statement", .doc = "CSV column holding the prompts."},
    {.name = "max_prompts", .type = MD_KEY_INT, .def = "64", .min = 0, .max = 1e7,
     .doc = "First N rows of the prompt dataset (0 = all)."},
    {.name = "prompt_batch", .type = MD_KEY_INT, .def = "8", .min = 1, .max = 4096,
     .doc = "Prompts per work unit of the behavioural stages."},
    {0}};

#define CO(f) {#f, offsetof(md_conf_opts, f)}
const md_opt_bind MD_CONF_OPTS[] = {
    CO(models), CO(percentile), CO(top_k), CO(neuron_block), CO(wu_block), CO(prompts), CO(prompt_column),
    CO(max_prompts), CO(prompt_batch), {0}};
#undef CO

const md_conf_opts *md_conf_opts_of(const md_kind_ctx *ctx)
{
    return ctx->opts;
}

/* ---- roles ------------------------------------------------------------- */

/* Model folder of role r (md_exp_get_role: the experiment's models, else the job's). */
const char *md_conf_role_dir(const md_kind_ctx *ctx, int r)
{
    return md_params_map_get(&ctx->job->top, "models", md_exp_get_role(ctx, r));
}

int64_t md_conf_n_blocks(int d_ff, int64_t nb)
{
    return (d_ff + nb - 1) / nb;
}

/* ---- prompts ----------------------------------------------------------- */

/* The prompt texts (first max_prompts rows of the column). *out is a malloc'd
 * array of pointers into *csv (caller frees the array and the csv). */
int md_conf_load_prompts(const md_kind_ctx *ctx, md_csv **csv, const char ***out, int *n, md_error *err)
{
    const md_conf_opts o = *md_conf_opts_of(ctx);
    const char *ds = o.prompts;
    const char *path = md_params_map_get(&ctx->job->top, "datasets", ds);
    *csv = NULL;
    *out = NULL;
    *n = 0;
    if (!path) return md_error_set(err, "confidence: prompts '%s' is not in the job's datasets", ds);
    if (md_csv_read(csv, path, err) != MD_OK) return MD_ERR;
    int col = md_csv_column(*csv, o.prompt_column, err);
    if (col < 0) goto fail;
    int64_t mx = o.max_prompts;
    int np = (*csv)->n_rows;
    if (mx > 0 && mx < np) np = (int)mx;
    if (np < 1) {
        md_error_set(err, "confidence: %s has no prompts", path);
        goto fail;
    }
    *out = malloc((size_t)np * sizeof **out);
    if (!*out) {
        md_error_set(err, "confidence: out of memory");
        goto fail;
    }
    for (int i = 0; i < np; i++) (*out)[i] = md_csv_cell(*csv, i, col);
    *n = np;
    return MD_OK;
fail:
    md_csv_free(*csv);
    *csv = NULL;
    return MD_ERR;
}

int md_conf_n_prompts(const md_kind_ctx *ctx, int *n, md_error *err)
{
    md_csv *csv = NULL;
    const char **pr = NULL;
    if (md_conf_load_prompts(ctx, &csv, &pr, n, err) != MD_OK) return MD_ERR;
    free(pr);
    md_csv_free(csv);
    return MD_OK;
}

int md_conf_has_prompts(const md_kind_ctx *ctx)
{
    return md_conf_opts_of(ctx)->prompts[0] != '\0';
}

/* ---- blobs (layout in confidence.h) ------------------------------------ */

size_t md_conf_blob1_size(const conf_hdr *h)
{
    size_t s = sizeof *h + (size_t)h->n_roles * h->k * sizeof(int32_t);
    s = (s + 7) / 8 * 8;
    for (int r = 0; r < h->n_roles; r++) s += 2 * (size_t)h->d_ff[r] * sizeof(double);
    return s;
}

int md_conf_view_blob(const md_blob *b, int with_means, conf_view *v, md_error *err)
{
    memset(v, 0, sizeof *v);
    if (b->size < sizeof(conf_hdr)) return md_error_set(err, "confidence: stage input too small");
    v->h = b->data;
    if (v->h->n_roles < 1 || v->h->n_roles > CONF_MAX_ROLES) return md_error_set(err, "confidence: bad stage input");
    size_t need = md_conf_blob1_size(v->h) + (with_means ? (size_t)v->h->n_roles * v->h->k * sizeof(double) : 0);
    if (b->size != need) return md_error_set(err, "confidence: stage input has %zu bytes, expected %zu", b->size, need);
    const char *p = (const char *)b->data + sizeof(conf_hdr);
    v->sel = (const int32_t *)p;
    size_t off = sizeof(conf_hdr) + (size_t)v->h->n_roles * v->h->k * sizeof(int32_t);
    off = (off + 7) / 8 * 8;
    for (int r = 0; r < v->h->n_roles; r++) {
        v->norm[r] = (const double *)((const char *)b->data + off);
        off += (size_t)v->h->d_ff[r] * sizeof(double);
        v->lv[r] = (const double *)((const char *)b->data + off);
        off += (size_t)v->h->d_ff[r] * sizeof(double);
    }
    if (with_means) v->act_mean = (const double *)((const char *)b->data + off);
    return MD_OK;
}

int md_conf_role_cfg(const md_kind_ctx *ctx, int r, md_config *cfg, md_error *err)
{
    if (!md_conf_role_dir(ctx, r))
        return md_error_set(err, "confidence: model '%s' is not in the job's models", md_exp_get_role(ctx, r));
    if (md_hf_config_load_dir(cfg, md_conf_role_dir(ctx, r), err) != MD_OK)
        return md_error_prefix(err, "confidence: model '%s'", md_exp_get_role(ctx, r));
    return MD_OK;
}

/* ---- validate (the plans are confidence_plan.c) ------------------------ */

/* A confidence prompt for md_exp_check_fits; the role's tokenizer is
 * loaded at the first prompt that needs counting (owned: freed by the
 * caller). */
typedef struct conf_prompt {
    const md_kind_ctx *ctx;
    const char *where, *role, *text;
    md_tokenizer *tok;
} conf_prompt;

static int conf_count(void *arg, size_t *n, md_error *err)
{
    conf_prompt *p = arg;
    md_config c;
    int *ids = NULL;
    if (!p->tok && md_exp_load_role(p->ctx, p->where, p->role, &c, &p->tok, err) != MD_OK) return MD_ERR;
    int rc = md_tokenizer_encode(p->tok, p->text, 1, &ids, n, err);
    free(ids);
    return rc;
}

/* Every prompt fits the context of role's model (md_exp_check_fits; + 2
 * tokens for BOS/EOS). */
static int conf_check_context(const md_kind_ctx *ctx, const char *where, const char *role, const md_config *cfg,
                              const char *const *pr, int np, md_error *err)
{
    md_exp_fit fit = {.cfg = cfg, .where = where, .role = role, .key = "prompts",
                      .advice = "shorter prompts, or fewer with max_prompts", .count = conf_count};
    conf_prompt p = {.ctx = ctx, .where = where, .role = role};
    int rc = MD_OK;
    for (int i = 0; i < np && rc == MD_OK; i++) {
        p.text = pr[i];
        rc = md_exp_check_fits(&fit, &p, strlen(pr[i]) + 2, err, "the prompt of CSV row %d (0-based)", i);
    }
    md_tokcache_release(ctx->toks, p.tok);
    return rc;
}

/* Every role's config, and every role's prompts against its context: each
 * failed check a line of err (md_error_add). */
static int confidence_validate(const md_kind_ctx *ctx, md_error *err)
{
    const char *src = ctx->job->source, *roles[CONF_MAX_ROLES];
    char where[MD_EXP_WHERE_MAX];
    int R;
    if (md_exp_resolve_roles(ctx, md_exp_format_where(ctx, where, sizeof where), roles, CONF_MAX_ROLES, &R, err) !=
        MD_OK)
        return MD_ERR;
    md_config cfg[CONF_MAX_ROLES];
    int loaded[CONF_MAX_ROLES];
    md_error one;
    md_error_clear(err);
    for (int r = 0; r < R; r++) {
        loaded[r] = md_conf_role_cfg(ctx, r, &cfg[r], &one) == MD_OK;
        if (loaded[r]) continue;
        md_error_prefix(&one, "%s:%d:%d", src, ctx->exp->line, ctx->exp->col);
        md_error_add(err, &one);
    }
    md_csv *csv = NULL;
    const char **pr = NULL;
    int n;
    if (md_conf_has_prompts(ctx) && md_conf_load_prompts(ctx, &csv, &pr, &n, &one) != MD_OK) {
        md_error_prefix(&one, "%s:%d:%d", src, ctx->exp->line, ctx->exp->col);
        md_error_add(err, &one);
    }
    for (int r = 0; r < R && pr; r++)
        if (loaded[r] && conf_check_context(ctx, where, roles[r], &cfg[r], pr, n, &one) != MD_OK)
            md_error_add(err, &one);
    free(pr);
    md_csv_free(csv);
    return err->msg[0] ? MD_ERR : MD_OK;
}

int64_t md_conf_n_batches(const md_kind_ctx *ctx, int np)
{
    int64_t b = md_conf_opts_of(ctx)->prompt_batch;
    return (np + b - 1) / b;
}

/* ---- workers ------------------------------------------------------------ */

typedef struct conf_role { /* static stage: a role's checkpoint, opened lazily */
    md_safetensors *st;    /* owned */
    md_config cfg;
    double *mean;          /* [d] W_U mean (owned), NULL until computed */
} conf_role;

typedef struct conf_state {
    conf_role roles[CONF_MAX_ROLES];
    md_csv *csv;           /* owned (behavioural stages) */
    const char **prompts;  /* [n_prompts] into csv (array owned) */
    int n_prompts;
} conf_state;

static void confidence_release(void *state)
{
    conf_state *s = state;
    if (!s) return;
    for (int r = 0; r < CONF_MAX_ROLES; r++) {
        md_safetensors_close(s->roles[r].st);
        free(s->roles[r].mean);
    }
    free(s->prompts);
    md_csv_free(s->csv);
    free(s);
}

static int confidence_prepare(const md_kind_ctx *ctx, md_worker *w, int stage, const md_blob *input, void **state,
                              md_error *err)
{
    (void)w;
    (void)input;
    conf_state *s = calloc(1, sizeof *s);
    if (!s) return md_error_set(err, "confidence: out of memory");
    if (stage > 0 && md_conf_has_prompts(ctx) && md_conf_load_prompts(ctx, &s->csv, &s->prompts, &s->n_prompts, err) != MD_OK) {
        confidence_release(s);
        return MD_ERR;
    }
    *state = s;
    return MD_OK;
}

/* The three tensors of role r's checkpoint (opened on first use). */
static int role_src(const md_kind_ctx *ctx, conf_state *s, int r, md_entropy_src *src, md_error *err)
{
    conf_role *cr = &s->roles[r];
    const char *role = md_exp_get_role(ctx, r), *dir = md_conf_role_dir(ctx, r);
    if (!cr->st) {
        if (md_hf_config_load_dir(&cr->cfg, dir, err) != MD_OK || md_safetensors_open_dir(&cr->st, dir, err) != MD_OK)
            return md_error_prefix(err, "confidence: model '%s'", role);
    }
    /* Gemma-2: RMSNorms multiply by 1 + w; Gemma-2 and OLMo-2 normalise the MLP
     * output (post_feedforward_layernorm) before the residual add. The final
     * logit soft-cap (Gemma-2) is monotone and applies after W_U: LogitVar
     * reads the pre-cap unembedding directions (as TransformerLens's weights),
     * entropies come from the model's capped logits (docs/methods.md). */
    char name[128], post[128];
    snprintf(name, sizeof name, "model.layers.%d.mlp.down_proj.weight", cr->cfg.n_layers - 1);
    snprintf(post, sizeof post, "model.layers.%d.post_feedforward_layernorm.weight", cr->cfg.n_layers - 1);
    const md_tensor_info *pg = NULL;
    if (cr->cfg.norm_place != MD_NORM_PRE) {
        pg = md_safetensors_find(cr->st, post);
        if (!pg || pg->ndim != 1 || pg->shape[0] != cr->cfg.d_model)
            return md_error_set(err, "confidence: model '%s' (%s): %s is missing or not [%d]", role, dir, post,
                                cr->cfg.d_model);
    }
    const char *head = cr->cfg.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
    const md_tensor_info *wd = md_safetensors_find(cr->st, name), *g = md_safetensors_find(cr->st, "model.norm.weight"),
                         *wu = md_safetensors_find(cr->st, head);
    if (!wd || !g || !wu)
        return md_error_set(err, "confidence: model '%s' (%s) lacks %s", role, dir,
                            !wd ? name : !g ? "model.norm.weight" : head);
    if (wd->ndim != 2 || wd->shape[0] != cr->cfg.d_model || wd->shape[1] != cr->cfg.d_ff || wu->ndim != 2 ||
        wu->shape[1] != cr->cfg.d_model || g->ndim != 1 || g->shape[0] != cr->cfg.d_model)
        return md_error_set(err, "confidence: model '%s': %s, model.norm.weight or %s has an unexpected shape", role,
                            name, head);
    *src = (md_entropy_src){.w_u = wu->data, .w_u_dtype = wu->dtype, .vocab = wu->shape[0], .d = cr->cfg.d_model,
                            .gain = g->data, .gain_dtype = g->dtype, .plus_one = cr->cfg.norm_plus_one,
                            .post_gain = pg ? pg->data : NULL, .post_gain_dtype = pg ? pg->dtype : MD_DTYPE_F32,
                            .w_down = wd->data, .w_down_dtype = wd->dtype, .d_ff = cr->cfg.d_ff, .drop_pages = 1};
    return MD_OK;
}

/* Unit u of stage 0 -> (role, first neuron, count). */
static int unit_block(const md_kind_ctx *ctx, int64_t unit, int *role, int *n0, int *n, md_error *err)
{
    int64_t nb = md_conf_opts_of(ctx)->neuron_block;
    for (int r = 0; r < md_exp_count_roles(ctx); r++) {
        md_config cfg;
        if (md_conf_role_cfg(ctx, r, &cfg, err) != MD_OK) return MD_ERR;
        int64_t b = md_conf_n_blocks(cfg.d_ff, nb);
        if (unit < b) {
            *role = r;
            *n0 = (int)(unit * nb);
            *n = (int)((unit + 1) * nb <= cfg.d_ff ? nb : cfg.d_ff - unit * nb);
            return MD_OK;
        }
        unit -= b;
    }
    return md_error_set(err, "confidence: unit out of range");
}

static int compute_static(const md_kind_ctx *ctx, conf_state *s, int64_t unit, md_result *out, md_error *err)
{
    int r, n0, n;
    md_entropy_src src;
    if (unit_block(ctx, unit, &r, &n0, &n, err) != MD_OK || role_src(ctx, s, r, &src, err) != MD_OK) return MD_ERR;
    int wb = (int)md_conf_opts_of(ctx)->wu_block;
    conf_role *cr = &s->roles[r];
    if (!cr->mean) {
        cr->mean = malloc((size_t)src.d * sizeof *cr->mean);
        if (!cr->mean) return md_error_set(err, "confidence: out of memory");
        if (md_entropy_wu_mean(&src, wb, cr->mean, err) != MD_OK) {
            free(cr->mean);
            cr->mean = NULL;
            return MD_ERR;
        }
    }
    double *norm = malloc((size_t)n * sizeof *norm), *lv = malloc((size_t)n * sizeof *lv);
    int rc = MD_ERR;
    char path[MD_PATH_MAX];
    int64_t off = n0, cnt = n;
    if (!norm || !lv) {
        md_error_set(err, "confidence: out of memory");
        goto done;
    }
    if (md_entropy_neurons(&src, cr->mean, n0, n0 + n, wb, norm, lv, err) != MD_OK) goto done;
    snprintf(path, sizeof path, "%s/norm", md_exp_get_role(ctx, r));
    if (md_result_put(out, path, 1, &off, &cnt, norm, (size_t)n * sizeof *norm, err) != MD_OK) goto done;
    snprintf(path, sizeof path, "%s/logitvar", md_exp_get_role(ctx, r));
    if (md_result_put(out, path, 1, &off, &cnt, lv, (size_t)n * sizeof *lv, err) != MD_OK) goto done;
    rc = MD_OK;
done:
    free(norm);
    free(lv);
    return rc;
}

/* Stage 2 of one batch of S prompts (padded to T, their clean cache kc, the
 * last layer's mlp_post post[S][ff] and resid_pre rpre[S][d] at the last
 * token): for each entropy neuron j of role r, the next-token entropy with
 * its mlp_post set to its mean, abl[S][k] (NaN for no neuron), from one
 * partial forward of the last layer at the last token. */
static int ablate_each(md_model *m, const conf_view *v, int r, int S, int T, const int *pad, md_kvcache *kc,
                       const float *post, const float *rpre, float *logits, double *abl, md_error *err)
{
    int k = v->h->k, L = m->cfg.n_layers - 1, ff = m->cfg.d_ff, V = m->cfg.vocab_size;
    float *vec = malloc((size_t)S * ff * sizeof *vec);
    if (!vec) return md_error_set(err, "confidence: out of memory (batch of %d prompts)", S);
    for (int j = 0; j < k; j++) {
        int32_t nj = v->sel[r * k + j];
        if (nj < 0 || nj >= ff) {
            for (int i = 0; i < S; i++) abl[(size_t)i * k + j] = NAN;
            continue;
        }
        memcpy(vec, post, (size_t)S * ff * sizeof *vec);
        for (int i = 0; i < S; i++) vec[(size_t)i * ff + nj] = (float)v->act_mean[r * k + j];
        md_hook rep = {.point = MD_HOOK_MLP_POST, .op = MD_HOOK_REPLACE, .layer = L, .seq = MD_ALL, .pos = T - 1,
                       .vec = vec, .vec_per_seq = 1};
        md_kvcache_truncate(kc, T - 1);
        md_forward g;
        md_forward_init_partial(&g, m, S, T - 1, T, L, rpre /* [S][1][d] */, pad, kc);
        md_forward_set_hooks(&g, &rep, 1);
        md_forward_set_logits(&g, MD_LOGITS_LAST, logits, NULL, 0);
        if (md_model_forward(m, &g, err) != MD_OK) {
            free(vec);
            return MD_ERR;
        }
        for (int i = 0; i < S; i++) abl[(size_t)i * k + j] = md_entropy_softmax(logits + (size_t)i * V, V);
    }
    free(vec);
    return MD_OK;
}

/* The buffers of one batch of S prompts (owned; batch_free). */
typedef struct conf_batch {
    int S, T;                          /* prompts, padded length */
    int **ids, *len;                   /* [S][len[i]] each prompt's tokens with BOS */
    int *tokens, *pad;                 /* [S][T] left-padded, [S] padding of each */
    float *post, *rpre, *logits, *act; /* [S][ff], [S][d], [S][V], [S][k] at the last token of the last layer */
    double *ent, *abl;                 /* [S] clean entropy, [S][k] ablated */
    md_kvcache *kc;
} conf_batch;

static void batch_free(conf_batch *b)
{
    for (int i = 0; b->ids && i < b->S; i++) free(b->ids[i]);
    free(b->ids);
    free(b->len);
    free(b->pad);
    free(b->tokens);
    free(b->post);
    free(b->rpre);
    free(b->logits);
    free(b->act);
    free(b->ent);
    free(b->abl);
    md_kvcache_free(b->kc);
}

/* Tokenises prompts[0..b->S) with BOS and left-pads them (b->tokens, b->pad,
 * b->T). */
static int batch_tokenize(conf_batch *b, const md_model *m, const char *const *prompts, md_error *err)
{
    b->ids = calloc((size_t)b->S, sizeof *b->ids);
    b->len = calloc((size_t)b->S, sizeof *b->len);
    if (!b->ids || !b->len) return md_error_set(err, "confidence: out of memory (batch of %d prompts)", b->S);
    for (int i = 0; i < b->S; i++) {
        size_t n_ids = 0;
        if (md_tokenizer_encode(m->tok, prompts[i], 1, &b->ids[i], &n_ids, err) != MD_OK) return MD_ERR;
        b->len[i] = (int)n_ids;
    }
    if (md_exp_pad_batch(m, b->ids, b->len, b->S, &b->T, &b->pad, &b->tokens, err) != MD_OK) return MD_ERR;
    if (b->T < 1) return md_error_set(err, "confidence: empty prompt");
    return MD_OK;
}

/* The clean run: mlp_post and resid_pre of the last layer at the last
 * token, the next-token entropy, and the selected neurons' activations of
 * role r. */
static int batch_clean_run(conf_batch *b, md_model *m, const conf_view *v, int r, md_error *err)
{
    const md_config *c = &m->cfg;
    int L = c->n_layers - 1, ff = c->d_ff, V = c->vocab_size, k = v->h->k, S = b->S, T = b->T;
    if (md_kvcache_create(&b->kc, m, S, T, err) != MD_OK) return MD_ERR;
    md_hook hk[2] = {
        {.point = MD_HOOK_MLP_POST, .op = MD_HOOK_READ, .layer = L, .seq = MD_ALL, .pos = T - 1, .out = b->post},
        {.point = MD_HOOK_RESID_PRE, .op = MD_HOOK_READ, .layer = L, .seq = MD_ALL, .pos = T - 1, .out = b->rpre}};
    md_forward f;
    md_forward_init_batch(&f, m, S, T, b->tokens, b->pad, b->kc);
    md_forward_set_hooks(&f, hk, 2);
    md_forward_set_logits(&f, MD_LOGITS_LAST, b->logits, NULL, 0);
    if (md_model_forward(m, &f, err) != MD_OK) return MD_ERR;
    for (int i = 0; i < S; i++) {
        b->ent[i] = md_entropy_softmax(b->logits + (size_t)i * V, V);
        for (int j = 0; j < k; j++) {
            int32_t nj = v->sel[r * k + j];
            b->act[(size_t)i * k + j] = nj >= 0 && nj < ff ? b->post[(size_t)i * ff + nj] : NAN;
        }
    }
    return MD_OK;
}

/* One batch of prompts through role's model: tokenised with BOS, left-padded
 * to the longest. Clean run: mlp_post and resid_pre of the last layer at the
 * last token, next-token entropy. stage 2: then one partial forward of the
 * last layer at the last token per entropy neuron, with that neuron's
 * mlp_post set to its mean. */
static int compute_batch(const md_kind_ctx *ctx, md_worker *w, conf_state *s, int stage, const conf_view *v,
                         int64_t unit, md_result *out, md_error *err)
{
    int k = v->h->k;
    int64_t nbat = md_conf_n_batches(ctx, s->n_prompts), pb = md_conf_opts_of(ctx)->prompt_batch;
    int r = (int)(unit / nbat);
    int64_t p0 = (unit % nbat) * pb;
    int S = (int)(p0 + pb <= s->n_prompts ? pb : s->n_prompts - p0);
    const char *role = md_exp_get_role(ctx, r);
    md_model *m = NULL;
    if (md_worker_model(w, role, &m, err) != MD_OK) return MD_ERR;
    if (!m->tok) return md_error_set(err, "confidence: model '%s' has no tokenizer", role);
    const md_config *c = &m->cfg;
    int d = c->d_model, ff = c->d_ff, V = c->vocab_size;
    conf_batch b = {.S = S};
    int rc = MD_ERR;
    char path[MD_PATH_MAX];
    if (batch_tokenize(&b, m, s->prompts + p0, err) != MD_OK) goto done;
    b.post = malloc((size_t)S * ff * sizeof *b.post);
    b.rpre = malloc((size_t)S * d * sizeof *b.rpre);
    b.logits = malloc((size_t)S * V * sizeof *b.logits);
    b.act = malloc((size_t)S * k * sizeof *b.act);
    b.ent = malloc((size_t)S * sizeof *b.ent);
    if (!b.post || !b.rpre || !b.logits || !b.act || !b.ent) goto oom;
    if (batch_clean_run(&b, m, v, r, err) != MD_OK) goto done;
    int64_t off2[2] = {p0, 0}, cnt2[2] = {S, k}, off1 = p0, cnt1 = S;
    if (stage == 1) {
        snprintf(path, sizeof path, "%s/activation", role);
        if (md_result_put(out, path, 2, off2, cnt2, b.act, (size_t)S * k * sizeof *b.act, err) != MD_OK) goto done;
        snprintf(path, sizeof path, "%s/entropy", role);
        if (md_result_put(out, path, 1, &off1, &cnt1, b.ent, (size_t)S * sizeof *b.ent, err) != MD_OK) goto done;
        rc = MD_OK;
        goto done;
    }
    /* Stage 2: mean-ablation, one neuron at a time. */
    b.abl = malloc((size_t)S * k * sizeof *b.abl);
    if (!b.abl) goto oom;
    if (ablate_each(m, v, r, S, b.T, b.pad, b.kc, b.post, b.rpre, b.logits, b.abl, err) != MD_OK) goto done;
    snprintf(path, sizeof path, "%s/entropy_ablated", role);
    if (md_result_put(out, path, 2, off2, cnt2, b.abl, (size_t)S * k * sizeof *b.abl, err) != MD_OK) goto done;
    rc = MD_OK;
    goto done;
oom:
    md_error_set(err, "confidence: out of memory (batch of %d prompts)", S);
done:
    if (rc != MD_OK) md_error_prefix(err, "confidence: model '%s', prompts %lld..", role, (long long)p0);
    batch_free(&b);
    return rc;
}

static int confidence_compute(const md_kind_ctx *ctx, md_worker *w, void *state, int stage, const md_blob *input,
                              int64_t unit, md_result *out, md_error *err)
{
    conf_state *s = state;
    if (stage == 0) return compute_static(ctx, s, unit, out, err);
    if (!md_conf_has_prompts(ctx)) return MD_OK; /* stage 1 without prompts: the plan wrote everything */
    conf_view v;
    if (md_conf_view_blob(input, stage == 2, &v, err) != MD_OK) return MD_ERR;
    return compute_batch(ctx, w, s, stage, &v, unit, out, err);
}

/* ---- finish ------------------------------------------------------------- */

static int finish_stage0(const md_kind_ctx *ctx, md_reader *rd, md_blob *next, md_error *err)
{
    const md_conf_opts o = *md_conf_opts_of(ctx);
    conf_hdr h = {.n_roles = md_exp_count_roles(ctx), .k = (int32_t)o.top_k};
    for (int r = 0; r < h.n_roles; r++) {
        md_config cfg;
        if (md_conf_role_cfg(ctx, r, &cfg, err) != MD_OK) return MD_ERR;
        h.d_ff[r] = cfg.d_ff;
    }
    size_t size = md_conf_blob1_size(&h);
    char *b = calloc(1, size);
    int rc = MD_ERR;
    if (!b) return md_error_set(err, "confidence: out of memory");
    int32_t *sel = (int32_t *)(b + sizeof h);
    size_t off = (sizeof h + (size_t)h.n_roles * h.k * sizeof(int32_t) + 7) / 8 * 8;
    int *tmp = malloc((size_t)h.k * sizeof *tmp);
    if (!tmp) {
        md_error_set(err, "confidence: out of memory");
        goto done;
    }
    for (int r = 0; r < h.n_roles; r++) {
        double *norm = (double *)(b + off), *lv = norm + h.d_ff[r];
        int64_t zero = 0, n = h.d_ff[r];
        char path[MD_PATH_MAX];
        snprintf(path, sizeof path, "%s/norm", md_exp_get_role(ctx, r));
        if (md_reader_f64(rd, path, &zero, &n, norm, err) != MD_OK) goto done;
        snprintf(path, sizeof path, "%s/logitvar", md_exp_get_role(ctx, r));
        if (md_reader_f64(rd, path, &zero, &n, lv, err) != MD_OK) goto done;
        int ns;
        if (md_entropy_select(norm, lv, h.d_ff[r], o.percentile, h.k, tmp, &ns, &h.threshold[r],
                              err) != MD_OK)
            goto done;
        h.n_sel[r] = ns;
        for (int j = 0; j < h.k; j++) sel[r * h.k + j] = tmp[j];
        off += 2 * (size_t)h.d_ff[r] * sizeof(double);
    }
    memcpy(b, &h, sizeof h);
    rc = md_blob_set(next, b, size, err);
done:
    free(tmp);
    free(b);
    return rc;
}

static int finish_stage1(const md_kind_ctx *ctx, const md_blob *input, md_reader *rd, md_blob *next, md_error *err)
{
    conf_view v;
    int np;
    if (md_conf_view_blob(input, 0, &v, err) != MD_OK || md_conf_n_prompts(ctx, &np, err) != MD_OK) return MD_ERR;
    int R = v.h->n_roles, k = v.h->k;
    size_t extra = (size_t)R * k * sizeof(double);
    char *b = malloc(input->size + extra);
    double *act = malloc((size_t)np * k * sizeof *act);
    int rc = MD_ERR;
    if (!b || !act) {
        md_error_set(err, "confidence: out of memory");
        goto done;
    }
    memcpy(b, input->data, input->size);
    double *mean = (double *)(b + input->size);
    for (int r = 0; r < R; r++) {
        char path[MD_PATH_MAX];
        int64_t off[2] = {0, 0}, cnt[2] = {np, k};
        snprintf(path, sizeof path, "%s/activation", md_exp_get_role(ctx, r));
        if (md_reader_f64(rd, path, off, cnt, act, err) != MD_OK) goto done;
        for (int j = 0; j < k; j++) { /* prompt order: the same whatever order units finished in */
            double s = 0;
            for (int i = 0; i < np; i++) s += act[(size_t)i * k + j];
            mean[r * k + j] = s / np;
        }
    }
    rc = md_blob_set(next, b, input->size + extra, err);
done:
    free(b);
    free(act);
    return rc;
}

static int confidence_finish(const md_kind_ctx *ctx, int stage, const md_blob *input, md_reader *rd, md_blob *next,
                             int *done, md_error *err)
{
    *done = 0;
    if (stage == 0) return finish_stage0(ctx, rd, next, err);
    if (stage == 1 && md_conf_has_prompts(ctx)) return finish_stage1(ctx, input, rd, next, err);
    *done = 1;
    return MD_OK;
}

static void confidence_unit_name(const md_kind_ctx *ctx, int stage, int64_t unit, char *buf, size_t len)
{
    if (stage == 0) {
        int r, n0, n;
        md_error err;
        if (unit_block(ctx, unit, &r, &n0, &n, &err) == MD_OK) {
            snprintf(buf, len, "%s/%s/neurons %d..%d", ctx->exp->name, md_exp_get_role(ctx, r), n0, n0 + n - 1);
            return;
        }
    }
    md_exp_name_unit(ctx, stage, unit, buf, len);
}

const md_kind md_kind_confidence = {
    .name = "confidence",
    .doc = "Entropy neurons (docs/methods.md \"Confidence\"): per model the norm and LogitVar of every last-layer MLP "
           "neuron (W_U gain-folded, centred, streamed from the checkpoint), the entropy-neuron set (norm above "
           "`percentile`, then the `top_k` smallest LogitVar), overlap/IoU and per-neuron changes for every pair "
           "of models; with `prompts`, the neurons' activations, next-token entropy and the entropy after "
           "mean-ablating each entropy neuron.",
    .keys = CONFIDENCE_KEYS,
    .opts = MD_CONF_OPTS,
    .opts_size = sizeof(md_conf_opts),
    .outputs = MD_CONF_OUTPUTS,
    .validate = confidence_validate,
    .plan = md_conf_plan,
    .prepare = confidence_prepare,
    .release_state = confidence_release,
    .compute = confidence_compute,
    .finish_stage = confidence_finish,
    .unit_name = confidence_unit_name,
    .estimate = md_conf_estimate,
};
