/* model.c — binds a Hugging Face Llama/Mistral folder to the backend:
 * config, tokenizer (when its files are there), and the mmap'd weights of the
 * layer range a rank holds. Shapes are checked against config.json with
 * errors naming the tensor. */
#include "mechdiff/model.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mechdiff/forward.h"
#include "mechdiff/sysmem.h"
#include "model/exec_impl.h"

size_t md_model_default_fp32_cache(void)
{
    size_t avail = md_sysmem_available();
    static const char *vars[] = {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"};
    long ranks = 1;
    for (int i = 0; i < 3 && ranks == 1; i++) { /* ranks sharing this node (the first launcher's word) */
        const char *ls = getenv(vars[i]);
        long v = ls ? strtol(ls, NULL, 10) : 1;
        ranks = v > 1 ? v : 1;
    }
    size_t budget = avail / 2 / (size_t)ranks, floor = (size_t)256 << 20;
    return budget > floor ? budget : floor;
}

void md_model_options_init(md_model_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->layer_lo = 0;
    opt->layer_hi = -1;
    opt->backend = MD_BACKEND_CPU;
}

/* Finds `name` in the checkpoint and checks its shape is [rows][cols] (or
 * [cols] for a vector, rows == 1); w points into the mapping. */
static int find_weight(md_model *m, md_weight *w, const char *name, int rows, int cols, md_error *err)
{
    const md_tensor_info *t = md_safetensors_find(m->st, name);
    if (!t)
        return md_error_set(err, "%s: tensor '%s' is missing from the checkpoint (is the folder complete?)",
                            m->dir, name);
    int ok = rows == 1 ? (t->ndim == 1 && t->shape[0] == cols)
                       : (t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols);
    if (!ok) {
        char got[128] = "";
        size_t off = 0;
        for (int i = 0; i < t->ndim && off < sizeof got - 24; i++)
            off += (size_t)snprintf(got + off, sizeof got - off, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        if (rows == 1)
            return md_error_set(err, "%s: tensor '%s' has shape [%s], config.json implies [%d]", m->dir, name,
                                got, cols);
        return md_error_set(err, "%s: tensor '%s' has shape [%s], config.json implies [%d, %d]", m->dir, name,
                            got, rows, cols);
    }
    if (!m->skip_finite_check && md_safetensors_check_finite(t, m->dir, err) != MD_OK)
        return MD_ERR; /* NaN/inf weights would make every result NaN */
    w->host = t->data;
    w->dtype = t->dtype;
    w->rows = rows;
    w->cols = cols;
    w->prepared = NULL;
    return MD_OK;
}

static int bind_weight(md_model *m, md_weight *w, const char *name, int rows, int cols, md_error *err)
{
    if (find_weight(m, w, name, rows, cols, err) != MD_OK) return MD_ERR;
    if (m->be->ops->prepare(m->be, w, err) != MD_OK) return md_error_prefix(err, "%s: %s", m->dir, name);
    return MD_OK;
}

/* An RMSNorm gain [cols]. Gemma scales by (1 + w): the model keeps an fp32
 * host copy of 1 + w (as transformers computes it, in fp32) and binds that. */
static int bind_norm(md_model *m, md_weight *w, const char *name, int cols, md_error *err)
{
    if (!m->cfg.norm_plus_one) return bind_weight(m, w, name, 1, cols, err);
    if (find_weight(m, w, name, 1, cols, err) != MD_OK) return MD_ERR;
    float *g = malloc((size_t)cols * sizeof(float));
    void **list = realloc(m->host_bufs, (size_t)(m->n_host_bufs + 1) * sizeof *list);
    if (!g || !list) {
        free(g);
        if (list) m->host_bufs = list;
        return md_error_set(err, "out of memory loading %s", m->dir);
    }
    m->host_bufs = list;
    m->host_bufs[m->n_host_bufs++] = g;
    md_dtype_to_f32(g, w->host, w->dtype, (size_t)cols);
    for (int j = 0; j < cols; j++) g[j] = 1.0f + g[j];
    w->host = g;
    w->dtype = MD_DTYPE_F32;
    if (m->be->ops->prepare(m->be, w, err) != MD_OK) return md_error_prefix(err, "%s: %s", m->dir, name);
    return MD_OK;
}

/* Binds layer l's tensors; which ones follow from the family's config flags
 * (docs/architecture-model.md lists them per family). */
static int bind_layer(md_model *m, int l, md_error *err)
{
    const md_config *c = &m->cfg;
    md_layer *L = &m->layers[l];
    int d = c->d_model, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd, ff = c->d_ff;
    char n[160];
#define NAME(suffix) (snprintf(n, sizeof n, "model.layers.%d.%s", l, suffix), n)
#define TRY(call) \
    if ((call) != MD_OK) return MD_ERR
    TRY(bind_weight(m, &L->wq, NAME("self_attn.q_proj.weight"), qd, d, err));
    TRY(bind_weight(m, &L->wk, NAME("self_attn.k_proj.weight"), kvd, d, err));
    TRY(bind_weight(m, &L->wv, NAME("self_attn.v_proj.weight"), kvd, d, err));
    TRY(bind_weight(m, &L->wo, NAME("self_attn.o_proj.weight"), d, qd, err));
    TRY(bind_weight(m, &L->w_gate, NAME("mlp.gate_proj.weight"), ff, d, err));
    TRY(bind_weight(m, &L->w_up, NAME("mlp.up_proj.weight"), ff, d, err));
    TRY(bind_weight(m, &L->w_down, NAME("mlp.down_proj.weight"), d, ff, err));
    if (c->qkv_bias) {
        TRY(bind_weight(m, &L->bq, NAME("self_attn.q_proj.bias"), 1, qd, err));
        TRY(bind_weight(m, &L->bk, NAME("self_attn.k_proj.bias"), 1, kvd, err));
        TRY(bind_weight(m, &L->bv, NAME("self_attn.v_proj.bias"), 1, kvd, err));
    }
    if (c->qk_norm != MD_QK_NORM_NONE) {
        int per_head = c->qk_norm == MD_QK_NORM_HEAD;
        TRY(bind_norm(m, &L->q_norm, NAME("self_attn.q_norm.weight"), per_head ? hd : qd, err));
        TRY(bind_norm(m, &L->k_norm, NAME("self_attn.k_norm.weight"), per_head ? hd : kvd, err));
    }
    int pre = c->norm_place != MD_NORM_POST, post = c->norm_place != MD_NORM_PRE;
    if (pre) {
        TRY(bind_norm(m, &L->attn_norm, NAME("input_layernorm.weight"), d, err));
        TRY(bind_norm(m, &L->mlp_norm, NAME(post ? "pre_feedforward_layernorm.weight"
                                                         : "post_attention_layernorm.weight"), d, err));
    }
    if (post) {
        TRY(bind_norm(m, &L->attn_post_norm, NAME("post_attention_layernorm.weight"), d, err));
        TRY(bind_norm(m, &L->mlp_post_norm, NAME("post_feedforward_layernorm.weight"), d, err));
    }
#undef TRY
#undef NAME
    return MD_OK;
}

/* inv_freq[i] = theta^(-2i/hd), then the config's rope scaling (as
 * transformers' _compute_default/linear/llama3_rope_parameters). */
static void compute_inv_freq(const md_config *c, float *inv_freq)
{
    int half = c->head_dim / 2;
    for (int i = 0; i < half; i++) {
        double f = 1.0 / pow(c->rope_theta, (double)(2 * i) / c->head_dim);
        if (c->rope_type == MD_ROPE_LINEAR) {
            f /= c->rope_factor;
        } else if (c->rope_type == MD_ROPE_LLAMA3) {
            double old_ctx = c->rope_original_max_position;
            double low_wl = old_ctx / c->rope_low_freq_factor;
            double high_wl = old_ctx / c->rope_high_freq_factor;
            double wl = 2.0 * M_PI / f;
            if (wl > low_wl) {
                f = f / c->rope_factor;
            } else if (wl >= high_wl) { /* medium band: interpolate */
                double smooth = (old_ctx / wl - c->rope_low_freq_factor) /
                                (c->rope_high_freq_factor - c->rope_low_freq_factor);
                f = (1.0 - smooth) * f / c->rope_factor + smooth * f;
            }
        }
        inv_freq[i] = (float)f;
    }
}

int md_model_load(md_model **out, const char *dir, const md_model_options *opt_in, md_error *err)
{
    md_model_options opt;
    if (opt_in) opt = *opt_in;
    else md_model_options_init(&opt);
    *out = NULL;
    md_model *m = calloc(1, sizeof *m);
    if (!m) return md_error_set(err, "out of memory loading %s", dir);
    snprintf(m->dir, sizeof m->dir, "%s", dir);
    m->skip_finite_check = opt.skip_finite_check;
    if (md_hf_config_load_dir(&m->cfg, dir, err) != MD_OK) goto fail;
    const md_config *c = &m->cfg;
    int lo = opt.layer_lo, hi = opt.layer_hi < 0 ? c->n_layers : opt.layer_hi;
    if (lo < 0 || hi > c->n_layers || lo >= hi) {
        md_error_set(err, "%s: layer range [%d, %d) is not inside the model's %d layers", dir, lo, hi,
                     c->n_layers);
        goto fail;
    }
    m->layer_lo = lo;
    m->layer_hi = hi;
    m->has_embed = lo == 0;
    m->has_head = hi == c->n_layers;

    char path[1200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (!opt.skip_tokenizer && access(path, R_OK) == 0) {
        if (md_tokenizer_load(&m->tok, dir, err) != MD_OK) goto fail;
        const char *tmpl = md_tokenizer_chat_template(m->tok);
        m->chat = tmpl ? md_chat_detect(tmpl) : MD_CHAT_UNKNOWN;
        if (md_tokenizer_vocab_size(m->tok) > c->vocab_size) {
            md_error_set(err, "%s: tokenizer has %d tokens but config.json vocab_size is %d", dir,
                         md_tokenizer_vocab_size(m->tok), c->vocab_size);
            goto fail;
        }
    }

    if (md_safetensors_open_dir(&m->st, dir, err) != MD_OK) goto fail;
    if (md_hf_config_check_tensors(c, m->st, dir, err) != MD_OK) goto fail;
    md_backend_options bopt = {.fp32_cache_bytes = opt.fp32_cache_bytes ? opt.fp32_cache_bytes
                                                                        : md_model_default_fp32_cache(),
                               .device = opt.device,
                               .cuda_weights = opt.cuda_weights,
                               .cuda_gemm = opt.cuda_gemm};
    if (md_backend_create(&m->be, opt.backend, &bopt, err) != MD_OK) goto fail;

    int d = c->d_model, hd = c->head_dim;
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    m->inv_freq = malloc((size_t)(hd / 2) * sizeof(float));
    if (!m->layers || !m->inv_freq) {
        md_error_set(err, "out of memory loading %s", dir);
        goto fail;
    }
    compute_inv_freq(c, m->inv_freq);

    if (m->has_embed || (m->has_head && c->tie_word_embeddings))
        if (bind_weight(m, &m->embed, "model.embed_tokens.weight", c->vocab_size, d, err) != MD_OK) goto fail;
    if (m->has_head) {
        if (bind_norm(m, &m->final_norm, "model.norm.weight", d, err) != MD_OK) goto fail;
        if (c->tie_word_embeddings) {
            m->lm_head = m->embed;
            m->lm_head.prepared = NULL; /* shares embed's; never released twice */
            if (m->be->ops->prepare(m->be, &m->lm_head, err) != MD_OK) goto fail;
        } else if (bind_weight(m, &m->lm_head, "lm_head.weight", c->vocab_size, d, err) != MD_OK) {
            goto fail;
        }
    }
    for (int l = lo; l < hi; l++)
        if (bind_layer(m, l, err) != MD_OK) goto fail;
    *out = m;
    return MD_OK;
fail:
    md_model_free(m);
    return MD_ERR;
}

void md_model_free(md_model *m)
{
    if (!m) return;
    if (m->exec) m->exec->free(m->exec_ctx);
    if (m->be) {
        if (m->layers) {
            for (int l = 0; l < m->cfg.n_layers; l++) {
                md_layer *L = &m->layers[l];
                md_weight *ws[] = {&L->attn_norm, &L->wq, &L->wk, &L->wv, &L->bq, &L->bk, &L->bv,
                                   &L->q_norm, &L->k_norm, &L->wo, &L->attn_post_norm, &L->mlp_norm,
                                   &L->w_gate, &L->w_up, &L->w_down, &L->mlp_post_norm};
                for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) m->be->ops->release(m->be, ws[i]);
            }
        }
        m->be->ops->release(m->be, &m->embed);
        m->be->ops->release(m->be, &m->final_norm);
        m->be->ops->release(m->be, &m->lm_head);
        if (m->ws) m->be->ops->free(m->be, m->ws);
        md_backend_destroy(m->be);
    }
    free(m->layers);
    free(m->inv_freq);
    for (int i = 0; i < m->n_host_bufs; i++) free(m->host_bufs[i]);
    free(m->host_bufs);
    md_safetensors_close(m->st);
    md_tokenizer_free(m->tok);
    free(m);
}

int md_model_hook_width(const md_model *m, int hook_point)
{
    switch (hook_point) {
    case MD_HOOK_MLP_POST: return m->cfg.d_ff;
    case MD_HOOK_Z: return m->cfg.n_heads * m->cfg.head_dim;
    case MD_HOOK_PATTERN: return 0;
    default: return m->cfg.d_model;
    }
}

float md_model_attn_scale(const md_model *m)
{
    if (m->cfg.query_pre_attn_scalar > 0.0) return (float)(1.0 / sqrt(m->cfg.query_pre_attn_scalar));
    return 1.0f / sqrtf((float)m->cfg.head_dim);
}

int md_model_layer_window(const md_model *m, int layer)
{
    const md_config *c = &m->cfg;
    return c->sliding_window > 0 && layer >= 0 && layer < MD_MAX_LAYERS && c->layer_sliding[layer]
               ? c->sliding_window
               : 0;
}
