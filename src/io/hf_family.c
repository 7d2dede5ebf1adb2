/* hf_family.c — the model families beyond Llama/Mistral in config.json:
 * which architectures mechdiff runs, the keys each family adds (norm
 * placement, q/k/v biases, q/k norms, activation, soft-caps, sliding
 * windows), their transformers defaults, and what two configs must share
 * for cross-model patching (see src/io/hf_family.h). Anything that changes
 * the computation and is not implemented is an error naming the key. */
#include "io/hf_family.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct family_row {
    const char *arch;        /* architectures[0] */
    const char *model_type;
    md_family family;
} family_row;

static const family_row FAMILIES[] = {
    {"LlamaForCausalLM", "llama", MD_FAMILY_LLAMA},     {"MistralForCausalLM", "mistral", MD_FAMILY_LLAMA},
    {"Qwen2ForCausalLM", "qwen2", MD_FAMILY_QWEN2},     {"Qwen3ForCausalLM", "qwen3", MD_FAMILY_QWEN3},
    {"Gemma2ForCausalLM", "gemma2", MD_FAMILY_GEMMA2},  {"Olmo2ForCausalLM", "olmo2", MD_FAMILY_OLMO2},
};
#define N_FAMILIES (sizeof FAMILIES / sizeof FAMILIES[0])

#define SUPPORTED "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, " \
                  "Gemma2ForCausalLM, Olmo2ForCausalLM"

int md_family_lookup(const char *arch, const char *model_type, md_family *fam, const char **arch_out,
                     const char **type_out, const char *src, md_error *err)
{
    const family_row *hit = NULL;
    for (size_t i = 0; i < N_FAMILIES && !hit; i++)
        if ((arch && strcmp(arch, FAMILIES[i].arch) == 0) || (!arch && strcmp(model_type, FAMILIES[i].model_type) == 0))
            hit = &FAMILIES[i];
    if (!hit && arch)
        return md_error_set(err, "%s: 'architectures'[0] = '%s' is not supported (%s)", src, arch, SUPPORTED);
    if (!hit)
        return md_error_set(err, "%s: 'model_type' = '%s' is not supported (llama, mistral, qwen2, qwen3, gemma2, "
                                 "olmo2)", src, model_type);
    int llama_type = model_type && (strcmp(model_type, "llama") == 0 || strcmp(model_type, "mistral") == 0);
    if (model_type && strcmp(model_type, hit->model_type) != 0 && !(hit->family == MD_FAMILY_LLAMA && llama_type))
        return md_error_set(err, "%s: 'model_type' = '%s' does not match 'architectures'[0] = '%s' (expected '%s')",
                            src, model_type, hit->arch, hit->model_type);
    *fam = hit->family;
    *arch_out = hit->arch;
    *type_out = model_type ? model_type : hit->model_type;
    return MD_OK;
}

/* ---------------------------------------------------------------- parsing */

static int absent(json_t *root, const char *key)
{
    json_t *v = json_object_get(root, key);
    return !v || json_is_null(v);
}

/* A positive number, or 0 when the key is null (a feature switched off);
 * `def` when absent. */
static int get_pos_or_null(json_t *root, const char *key, double def, double *out, const char *src, md_error *err)
{
    json_t *v = json_object_get(root, key);
    if (!v) {
        *out = def;
        return MD_OK;
    }
    if (json_is_null(v)) {
        *out = 0.0;
        return MD_OK;
    }
    if (!json_is_number(v) || !(json_number_value(v) > 0.0) || !isfinite(json_number_value(v)))
        return md_error_set(err, "%s: '%s' must be a positive number or null", src, key);
    *out = json_number_value(v);
    return MD_OK;
}

static int get_flag(json_t *root, const char *key, int *out, const char *src, md_error *err)
{
    json_t *v = json_object_get(root, key);
    *out = 0;
    if (!v || json_is_null(v)) return MD_OK;
    if (!json_is_boolean(v)) return md_error_set(err, "%s: key '%s' must be true or false", src, key);
    *out = json_is_true(v);
    return MD_OK;
}

/* The defaults of transformers' config classes that differ from Llama's,
 * for keys absent from config.json. */
static void family_defaults(md_config *cfg, json_t *root)
{
    int qwen = cfg->family == MD_FAMILY_QWEN2 || cfg->family == MD_FAMILY_QWEN3;
    if (absent(root, "max_position_embeddings"))
        cfg->max_position = qwen ? 32768 : cfg->family == MD_FAMILY_GEMMA2 ? 8192 : 2048;
    if (absent(root, "rms_norm_eps")) cfg->rms_eps = cfg->family == MD_FAMILY_OLMO2 ? 1e-5f : 1e-6f;
    if (absent(root, "head_dim") && cfg->family == MD_FAMILY_QWEN3) cfg->head_dim = 128;
    if (absent(root, "head_dim") && cfg->family == MD_FAMILY_GEMMA2) cfg->head_dim = 256;
    if (absent(root, "tie_word_embeddings") && cfg->family == MD_FAMILY_GEMMA2) cfg->tie_word_embeddings = 1;
}

static int parse_act(md_config *cfg, json_t *root, const char *src, md_error *err)
{
    const char *key = cfg->family == MD_FAMILY_GEMMA2 ? "hidden_activation" : "hidden_act";
    json_t *v = json_object_get(root, key);
    if (cfg->family == MD_FAMILY_GEMMA2 && (!v || json_is_null(v))) {
        key = "hidden_act"; /* older Gemma configs */
        v = json_object_get(root, key);
    }
    const char *def = cfg->family == MD_FAMILY_GEMMA2 ? "gelu_pytorch_tanh" : "silu";
    const char *a = !v || json_is_null(v) ? def : json_is_string(v) ? json_string_value(v) : NULL;
    if (a && (strcmp(a, "silu") == 0 || strcmp(a, "swish") == 0)) {
        cfg->hidden_act = MD_HIDDEN_SILU;
    } else if (a && (strcmp(a, "gelu_pytorch_tanh") == 0 || strcmp(a, "gelu_tanh") == 0)) {
        cfg->hidden_act = MD_HIDDEN_GELU_TANH;
    } else {
        return md_error_set(err, "%s: '%s' = '%s' is not supported (silu, gelu_pytorch_tanh)", src, key,
                            a ? a : "(not a string)");
    }
    return MD_OK;
}

/* layer_types (a list of "sliding_attention" / "full_attention"), or the
 * family's default pattern: Gemma-2 alternates (even layers slide), Qwen
 * slides from max_window_layers on when use_sliding_window. */
static int parse_layer_types(md_config *cfg, json_t *root, int window, const char *src, md_error *err)
{
    json_t *lt = json_object_get(root, "layer_types");
    if (lt && !json_is_null(lt)) {
        if (!json_is_array(lt) || (int)json_array_size(lt) != cfg->n_layers)
            return md_error_set(err, "%s: 'layer_types' must list one entry per layer (%d)", src, cfg->n_layers);
        for (int l = 0; l < cfg->n_layers; l++) {
            json_t *t = json_array_get(lt, (size_t)l);
            const char *s = json_is_string(t) ? json_string_value(t) : "";
            if (strcmp(s, "sliding_attention") == 0) cfg->layer_sliding[l] = 1;
            else if (strcmp(s, "full_attention") != 0)
                return md_error_set(err, "%s: 'layer_types'[%d] = '%s' is not supported (sliding_attention, "
                                         "full_attention)", src, l, s);
        }
        return MD_OK;
    }
    int from = 0;
    if (cfg->family == MD_FAMILY_QWEN2 || cfg->family == MD_FAMILY_QWEN3) {
        double mwl = 0;
        if (get_pos_or_null(root, "max_window_layers", 28, &mwl, src, err) != MD_OK) return MD_ERR;
        from = mwl >= cfg->n_layers ? cfg->n_layers : (int)mwl; /* 1e28 = no sliding layer (was an int overflow) */
    }
    for (int l = 0; l < cfg->n_layers && window > 0; l++)
        cfg->layer_sliding[l] = cfg->family == MD_FAMILY_GEMMA2 ? (l % 2 == 0) : l >= from;
    return MD_OK;
}

/* sliding_window: Gemma-2 always uses it on its sliding layers; Qwen only
 * with use_sliding_window: true (transformers sets it to None otherwise);
 * OLMo-2 has none. A window that covers max_position_embeddings changes
 * nothing and is dropped. */
static int parse_window(md_config *cfg, json_t *root, const char *src, md_error *err)
{
    int use = cfg->family == MD_FAMILY_GEMMA2;
    if (cfg->family == MD_FAMILY_QWEN2 || cfg->family == MD_FAMILY_QWEN3)
        if (get_flag(root, "use_sliding_window", &use, src, err) != MD_OK) return MD_ERR;
    double w = 0;
    if (get_pos_or_null(root, "sliding_window", use ? 4096 : 0, &w, src, err) != MD_OK) return MD_ERR;
    if (w > 0x7fffffff) return md_error_set(err, "%s: 'sliding_window' is out of range", src);
    int window = use ? (int)w : 0;
    if (cfg->family == MD_FAMILY_OLMO2 && !absent(root, "sliding_window"))
        return md_error_set(err, "%s: 'sliding_window' is set but OLMo-2 has no sliding-window attention", src);
    if (parse_layer_types(cfg, root, window, src, err) != MD_OK) return MD_ERR;
    int any = 0;
    for (int l = 0; l < cfg->n_layers; l++) any |= cfg->layer_sliding[l];
    if (any && window <= 0)
        return md_error_set(err, "%s: 'layer_types' has sliding layers but no 'sliding_window' is in use", src);
    cfg->sliding_window = any && window < cfg->max_position ? window : 0;
    if (!cfg->sliding_window) memset(cfg->layer_sliding, 0, sizeof cfg->layer_sliding);
    return MD_OK;
}

/* Gemma-2's scalars: query_pre_attn_scalar, the two soft-caps, √d. */
static int parse_gemma2(md_config *cfg, json_t *root, const char *src, md_error *err)
{
    double q = 0, ac = 0, fc = 0;
    if (get_pos_or_null(root, "query_pre_attn_scalar", 256, &q, src, err) != MD_OK ||
        get_pos_or_null(root, "attn_logit_softcapping", 50.0, &ac, src, err) != MD_OK ||
        get_pos_or_null(root, "final_logit_softcapping", 30.0, &fc, src, err) != MD_OK)
        return MD_ERR;
    if (q <= 0) return md_error_set(err, "%s: 'query_pre_attn_scalar' must be a positive number", src);
    int bidir = 0;
    if (get_flag(root, "use_bidirectional_attention", &bidir, src, err) != MD_OK) return MD_ERR;
    if (bidir) return md_error_set(err, "%s: 'use_bidirectional_attention' = true is not supported (causal only)", src);
    cfg->query_pre_attn_scalar = q;
    cfg->attn_softcap = (float)ac;
    cfg->final_softcap = (float)fc;
    cfg->embed_scale = (float)sqrt((double)cfg->d_model); /* as transformers: float32(hidden_size ** 0.5) */
    cfg->norm_plus_one = 1;
    cfg->norm_place = MD_NORM_PRE_POST;
    return MD_OK;
}

int md_family_parse(md_config *cfg, json_t *root, const char *src, md_error *err)
{
    if (cfg->family == MD_FAMILY_LLAMA) return MD_OK;
    family_defaults(cfg, root);
    if (parse_act(cfg, root, src, err) != MD_OK) return MD_ERR;
    int bias = 0;
    if (get_flag(root, "attention_bias", &bias, src, err) != MD_OK) return MD_ERR;
    if (bias && cfg->family != MD_FAMILY_QWEN2)
        return md_error_set(err, "%s: 'attention_bias' = true is not supported for %s (no o_proj bias in the engine)",
                            src, cfg->architecture);
    if (get_flag(root, "mlp_bias", &bias, src, err) != MD_OK) return MD_ERR;
    if (bias) return md_error_set(err, "%s: 'mlp_bias' = true is not supported (the engine has no MLP biases)", src);
    switch (cfg->family) {
    case MD_FAMILY_QWEN2: cfg->qkv_bias = 1; break;
    case MD_FAMILY_QWEN3: cfg->qk_norm = MD_QK_NORM_HEAD; break;
    case MD_FAMILY_OLMO2:
        cfg->qk_norm = MD_QK_NORM_FULL;
        cfg->norm_place = MD_NORM_POST;
        break;
    case MD_FAMILY_GEMMA2:
        if (parse_gemma2(cfg, root, src, err) != MD_OK) return MD_ERR;
        break;
    default: break;
    }
    if (cfg->n_layers > MD_MAX_LAYERS)
        return md_error_set(err, "%s: %d layers; at most %d supported", src, cfg->n_layers, MD_MAX_LAYERS);
    return parse_window(cfg, root, src, err);
}

/* ---------------------------------------------------------------- writing */

static json_t *layer_types_json(const md_config *cfg)
{
    json_t *a = json_array();
    for (int l = 0; a && l < cfg->n_layers; l++)
        json_array_append_new(a, json_string(cfg->layer_sliding[l] && cfg->sliding_window ? "sliding_attention"
                                                                                          : "full_attention"));
    return a;
}

void md_family_write(const md_config *cfg, json_t *r)
{
    if (cfg->family == MD_FAMILY_LLAMA) return;
    json_object_del(r, "mlp_bias");
    json_object_set_new(r, "attention_bias", json_false());
    if (cfg->family == MD_FAMILY_QWEN2 || cfg->family == MD_FAMILY_QWEN3) {
        json_object_set_new(r, "use_sliding_window", json_boolean(cfg->sliding_window > 0));
        json_object_set_new(r, "sliding_window", cfg->sliding_window ? json_integer(cfg->sliding_window) : json_null());
        json_object_set_new(r, "max_window_layers", json_integer(cfg->n_layers));
        if (cfg->family == MD_FAMILY_QWEN2) json_object_del(r, "attention_bias");
    }
    if (cfg->family == MD_FAMILY_GEMMA2) {
        json_object_del(r, "hidden_act");
        json_object_set_new(r, "hidden_activation", json_string("gelu_pytorch_tanh"));
        double q = cfg->query_pre_attn_scalar; /* an int in Gemma2Config (1e30 stays a real: no int overflow) */
        int whole = q < 0x1p53 && q == floor(q);
        json_object_set_new(r, "query_pre_attn_scalar", whole ? json_integer((long long)q) : json_real(q));
        json_object_set_new(r, "attn_logit_softcapping", cfg->attn_softcap > 0 ? json_real(cfg->attn_softcap) : json_null());
        json_object_set_new(r, "final_logit_softcapping",
                            cfg->final_softcap > 0 ? json_real(cfg->final_softcap) : json_null());
        json_object_set_new(r, "sliding_window", cfg->sliding_window ? json_integer(cfg->sliding_window) : json_null());
    }
    if (cfg->family != MD_FAMILY_OLMO2) json_object_set_new(r, "layer_types", layer_types_json(cfg));
}

/* ------------------------------------------------------------ pairing */

int md_hf_config_check_pair(const md_config *a, const md_config *b, char *why, size_t why_len)
{
#define SAME(field, fmt)                                                                                    \
    if (a->field != b->field) {                                                                             \
        snprintf(why, why_len, "%s differs (" fmt " vs " fmt ")", #field, a->field, b->field);              \
        return MD_ERR;                                                                                      \
    }
    if (strcmp(a->architecture, b->architecture) != 0) {
        snprintf(why, why_len, "architecture differs (%s vs %s)", a->architecture, b->architecture);
        return MD_ERR;
    }
    SAME(d_model, "%d") SAME(d_ff, "%d") SAME(n_layers, "%d") SAME(n_heads, "%d") SAME(n_kv_heads, "%d")
    SAME(head_dim, "%d") SAME(rms_eps, "%g") SAME(rope_theta, "%g")
    SAME(rope_type, "%d") SAME(rope_factor, "%g") SAME(rope_low_freq_factor, "%g")
    SAME(rope_high_freq_factor, "%g") SAME(rope_original_max_position, "%d") SAME(qkv_bias, "%d")
    SAME(qk_norm, "%d") SAME(norm_place, "%d") SAME(norm_plus_one, "%d") SAME(hidden_act, "%d")
    SAME(embed_scale, "%g") SAME(query_pre_attn_scalar, "%g") SAME(attn_softcap, "%g")
    SAME(final_softcap, "%g") SAME(sliding_window, "%d")
#undef SAME
    for (int l = 0; l < a->n_layers && l < MD_MAX_LAYERS; l++)
        if (a->layer_sliding[l] != b->layer_sliding[l]) {
            snprintf(why, why_len, "layer %d is %s in one model and %s in the other", l,
                     a->layer_sliding[l] ? "sliding-window" : "global", a->layer_sliding[l] ? "global" : "sliding-window");
            return MD_ERR;
        }
    return MD_OK;
}
