/* hf_config.c — config.json / generation_config.json of a Llama or Mistral
 * Hugging Face folder (see include/mechdiff/hf_config.h).
 *
 * Defaults follow transformers' LlamaConfig / MistralConfig for keys that are
 * absent; the widths (hidden_size, intermediate_size, num_hidden_layers,
 * num_attention_heads, vocab_size) are required, since a guessed width would
 * only fail later with a less helpful message. */
#include "mechdiff/hf_config.h"

#include "io/hf_family.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mechdiff/fsutil.h"

/* Upper bounds of the integer widths: far above every released model, low
 * enough that products such as n_heads * head_dim and d_model * vocab_size
 * cannot overflow the int / size_t arithmetic that uses them. */
#define MAX_WIDTH (1 << 20)     /* hidden_size, intermediate_size */
#define MAX_COUNT 4096          /* layers, heads, kv heads */
#define MAX_HEAD_DIM 65536
#define MAX_VOCAB (1 << 24)
#define MAX_POSITION 0x7fffffff /* int */
#define MAX_CONFIG_BYTES (16u << 20) /* config.json, generation_config.json */
#define MAX_ROPE_FACTOR 1e6
#define MAX_ROPE_THETA 1e30

/* Reads an integer key into *out, which must lie in [1, max]. */
static int get_int(json_t *root, const char *key, int required, int def, long long max, int *out,
                   const char *src, md_error *err)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (required) return md_error_set(err, "%s: missing required key '%s'", src, key);
        *out = def;
        return MD_OK;
    }
    if (!json_is_integer(v))
        return md_error_set(err, "%s: key '%s' must be an integer", src, key);
    json_int_t x = json_integer_value(v);
    if (x <= 0 || x > max)
        return md_error_set(err, "%s: key '%s' = %lld is out of range (must be an integer in 1..%lld)", src, key,
                            (long long)x, max);
    *out = (int)x;
    return MD_OK;
}

/* Reads the number obj[key] into *out, which must be finite and lie in
 * [lo, hi]; `parent` ("" or "rope_scaling.") prefixes the key in errors. */
static int get_num(json_t *obj, const char *parent, const char *key, int required, double def, double lo,
                   double hi, double *out, const char *src, md_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required) return md_error_set(err, "%s: missing required key '%s%s'", src, parent, key);
        *out = def;
        return MD_OK;
    }
    if (!json_is_number(v)) return md_error_set(err, "%s: key '%s%s' must be a number", src, parent, key);
    double x = json_number_value(v);
    if (!isfinite(x) || x < lo || x > hi)
        return md_error_set(err, "%s: key '%s%s' = %g is out of range (must be in [%g, %g])", src, parent, key, x,
                            lo, hi);
    *out = x;
    return MD_OK;
}

static int get_bool(json_t *root, const char *key, int def, int *out, const char *src, md_error *err)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return MD_OK;
    }
    if (!json_is_boolean(v)) return md_error_set(err, "%s: key '%s' must be true or false", src, key);
    *out = json_is_true(v);
    return MD_OK;
}

/* Parses a rope scaling object (`rope_scaling` or `rope_parameters`; `key`
 * names it in errors). */
static int parse_rope(md_config *cfg, json_t *rs, const char *key, const char *src, md_error *err)
{
    if (!json_is_object(rs)) return md_error_set(err, "%s: '%s' must be an object or null", src, key);
    json_t *t = json_object_get(rs, "rope_type");
    const char *tkey = "rope_type";
    if (!t || json_is_null(t)) {
        t = json_object_get(rs, "type");
        tkey = "type";
    }
    const char *type = "default";
    if (t && !json_is_null(t)) {
        if (!json_is_string(t)) return md_error_set(err, "%s: '%s.%s' must be a string", src, key, tkey);
        type = json_string_value(t);
    }
    char parent[64];
    snprintf(parent, sizeof parent, "%s.", key);
    if (strcmp(type, "default") == 0) {
        cfg->rope_type = MD_ROPE_DEFAULT;
        cfg->rope_factor = 1.0;
        return MD_OK;
    }
    if (strcmp(type, "linear") == 0) {
        cfg->rope_type = MD_ROPE_LINEAR;
        return get_num(rs, parent, "factor", 1, 0, 1.0, MAX_ROPE_FACTOR, &cfg->rope_factor, src, err);
    }
    if (strcmp(type, "llama3") == 0) {
        cfg->rope_type = MD_ROPE_LLAMA3;
        double orig = 0;
        if (get_num(rs, parent, "factor", 1, 0, 1.0, MAX_ROPE_FACTOR, &cfg->rope_factor, src, err) ||
            get_num(rs, parent, "low_freq_factor", 1, 0, DBL_MIN, MAX_ROPE_FACTOR, &cfg->rope_low_freq_factor, src,
                    err) ||
            get_num(rs, parent, "high_freq_factor", 1, 0, DBL_MIN, MAX_ROPE_FACTOR, &cfg->rope_high_freq_factor,
                    src, err) ||
            get_num(rs, parent, "original_max_position_embeddings", 1, 0, 1, MAX_POSITION, &orig, src, err))
            return MD_ERR;
        if (orig != floor(orig))
            return md_error_set(err, "%s: '%soriginal_max_position_embeddings' = %g must be an integer", src, parent,
                                orig);
        cfg->rope_original_max_position = (int)orig;
        if (!(cfg->rope_high_freq_factor > cfg->rope_low_freq_factor))
            return md_error_set(err, "%s: '%s' llama3 parameters out of range (need low_freq_factor < "
                                "high_freq_factor)", src, key);
        return MD_OK;
    }
    return md_error_set(err, "%s: '%s.%s' = '%s' is not supported (only default, linear, llama3); "
                        "this rope scaling is not implemented by the engine", src, key, tkey, type);
}

/* Reads bos_token_id / eos_token_id from obj into cfg where cfg lacks them. */
static int parse_special_ids(md_config *cfg, json_t *obj, const char *src, md_error *err)
{
    json_t *b = json_object_get(obj, "bos_token_id");
    if (cfg->bos_id < 0 && b && !json_is_null(b)) {
        if (!json_is_integer(b) || json_integer_value(b) < 0 || json_integer_value(b) > 0x7fffffff)
            return md_error_set(err, "%s: 'bos_token_id' must be a non-negative integer", src);
        cfg->bos_id = (int)json_integer_value(b);
    }
    json_t *e = json_object_get(obj, "eos_token_id");
    if (cfg->n_eos == 0 && e && !json_is_null(e)) {
        if (json_is_integer(e)) {
            if (json_integer_value(e) < 0 || json_integer_value(e) > 0x7fffffff)
                return md_error_set(err, "%s: 'eos_token_id' must be non-negative", src);
            cfg->eos_ids[cfg->n_eos++] = (int)json_integer_value(e);
        } else if (json_is_array(e)) {
            size_t n = json_array_size(e);
            if (n > MD_MAX_EOS)
                return md_error_set(err, "%s: 'eos_token_id' lists %zu ids, at most %d supported", src, n,
                                    MD_MAX_EOS);
            for (size_t i = 0; i < n; i++) {
                json_t *x = json_array_get(e, i);
                if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > 0x7fffffff)
                    return md_error_set(err, "%s: 'eos_token_id'[%zu] must be a non-negative integer", src, i);
                cfg->eos_ids[cfg->n_eos++] = (int)json_integer_value(x);
            }
        } else {
            return md_error_set(err, "%s: 'eos_token_id' must be an integer or a list of integers", src);
        }
    }
    return MD_OK;
}

static int parse_torch_dtype(md_config *cfg, json_t *root, const char *src, md_error *err)
{
    const char *key = "torch_dtype";
    json_t *d = json_object_get(root, key);
    if (!d || json_is_null(d)) {
        key = "dtype"; /* transformers >= 4.56 */
        d = json_object_get(root, key);
    }
    cfg->torch_dtype = MD_DTYPE_INVALID;
    if (!d || json_is_null(d)) return MD_OK;
    if (!json_is_string(d)) return md_error_set(err, "%s: '%s' must be a string", src, key);
    const char *s = json_string_value(d);
    if (strcmp(s, "bfloat16") == 0) cfg->torch_dtype = MD_DTYPE_BF16;
    else if (strcmp(s, "float16") == 0) cfg->torch_dtype = MD_DTYPE_F16;
    else if (strcmp(s, "float32") == 0) cfg->torch_dtype = MD_DTYPE_F32;
    else
        return md_error_set(err, "%s: '%s' = '%s' is not supported (bfloat16, float16, float32)", src, key, s);
    return MD_OK;
}

/* Architecture and model type: cfg->family, architecture, model_type;
 * *mistral says whether model_type is "mistral". */
static int parse_architecture(md_config *cfg, json_t *root, int *mistral, const char *src, md_error *err)
{
    json_t *archs = json_object_get(root, "architectures");
    json_t *mt = json_object_get(root, "model_type");
    const char *arch = NULL;
    if (json_is_array(archs) && json_array_size(archs) > 0 && json_is_string(json_array_get(archs, 0)))
        arch = json_string_value(json_array_get(archs, 0));
    const char *model_type = json_is_string(mt) ? json_string_value(mt) : NULL;
    if (!arch && !model_type)
        return md_error_set(err, "%s: neither 'architectures' nor 'model_type' is set; cannot tell the architecture",
                            src);
    if (md_family_lookup(arch, model_type, &cfg->family, &arch, &model_type, src, err) != MD_OK) return MD_ERR;
    *mistral = strcmp(model_type, "mistral") == 0;
    snprintf(cfg->architecture, sizeof cfg->architecture, "%s", arch);
    snprintf(cfg->model_type, sizeof cfg->model_type, "%s", model_type);
    return MD_OK;
}

/* Widths, head_dim and their consistency. */
static int parse_widths(md_config *cfg, json_t *root, int mistral, const char *src, md_error *err)
{
    if (get_int(root, "hidden_size", 1, 0, MAX_WIDTH, &cfg->d_model, src, err) ||
        get_int(root, "intermediate_size", 1, 0, MAX_WIDTH, &cfg->d_ff, src, err) ||
        get_int(root, "num_hidden_layers", 1, 0, MAX_COUNT, &cfg->n_layers, src, err) ||
        get_int(root, "num_attention_heads", 1, 0, MAX_COUNT, &cfg->n_heads, src, err) ||
        get_int(root, "vocab_size", 1, 0, MAX_VOCAB, &cfg->vocab_size, src, err) ||
        get_int(root, "num_key_value_heads", 0, cfg->n_heads, MAX_COUNT, &cfg->n_kv_heads, src, err) ||
        get_int(root, "max_position_embeddings", 0, mistral ? 4096 * 32 : 2048, MAX_POSITION,
                &cfg->max_position, src, err))
        return MD_ERR;
    if (!json_object_get(root, "head_dim") || json_is_null(json_object_get(root, "head_dim"))) {
        if (cfg->d_model % cfg->n_heads != 0)
            return md_error_set(err, "%s: 'hidden_size' %d is not divisible by 'num_attention_heads' %d (and no "
                                "'head_dim' is given)", src, cfg->d_model, cfg->n_heads);
        cfg->head_dim = cfg->d_model / cfg->n_heads;
    } else if (get_int(root, "head_dim", 1, 0, MAX_HEAD_DIM, &cfg->head_dim, src, err)) {
        return MD_ERR;
    }
    if (cfg->n_heads % cfg->n_kv_heads != 0)
        return md_error_set(err, "%s: 'num_attention_heads' %d is not divisible by 'num_key_value_heads' %d", src,
                            cfg->n_heads, cfg->n_kv_heads);
    if ((long long)cfg->n_heads * cfg->head_dim > MAX_WIDTH)
        return md_error_set(err, "%s: 'num_attention_heads' %d x 'head_dim' %d exceeds %d", src, cfg->n_heads,
                            cfg->head_dim, MAX_WIDTH);
    if (cfg->head_dim % 2 != 0)
        return md_error_set(err, "%s: 'head_dim' %d must be even for rotary embeddings", src, cfg->head_dim);
    return MD_OK;
}

/* Llama/Mistral's own keys: hidden_act, attention_bias, mlp_bias (only
 * checked when llama_like) and sliding_window. */
static int parse_llama_keys(md_config *cfg, json_t *root, int llama_like, int mistral, const char *src,
                            md_error *err)
{
    json_t *act = llama_like ? json_object_get(root, "hidden_act") : NULL;
    if (act && !json_is_null(act)) {
        if (!json_is_string(act) ||
            (strcmp(json_string_value(act), "silu") != 0 && strcmp(json_string_value(act), "swish") != 0))
            return md_error_set(err, "%s: 'hidden_act' = '%s' is not supported (only silu)", src,
                                json_is_string(act) ? json_string_value(act) : "(not a string)");
    }
    int bias = 0;
    if (llama_like && get_bool(root, "attention_bias", 0, &bias, src, err)) return MD_ERR;
    if (bias)
        return md_error_set(err, "%s: 'attention_bias' = true is not supported (the engine has no attention "
                            "biases)", src);
    if (llama_like && get_bool(root, "mlp_bias", 0, &bias, src, err)) return MD_ERR;
    if (bias) return md_error_set(err, "%s: 'mlp_bias' = true is not supported (the engine has no MLP biases)", src);
    json_t *sw = llama_like ? json_object_get(root, "sliding_window") : NULL;
    int window = 0;
    if (!sw && mistral) window = 4096; /* MistralConfig default */
    if (sw && !json_is_null(sw)) {
        if (!json_is_integer(sw)) return md_error_set(err, "%s: 'sliding_window' must be an integer or null", src);
        json_int_t w = json_integer_value(sw);
        if (w < 0 || w > MAX_POSITION)
            return md_error_set(err, "%s: 'sliding_window' = %lld is out of range (0..%d, or null)", src,
                                (long long)w, MAX_POSITION);
        window = (int)w;
    }
    if (window > 0 && window < cfg->max_position)
        return md_error_set(err, "%s: 'sliding_window' = %d is smaller than 'max_position_embeddings' = %d; "
                            "sliding-window attention (e.g. Mistral-7B v0.1) is not implemented: use a model "
                            "without it (Mistral v0.2+)", src, window, cfg->max_position);
    return MD_OK;
}

/* Rotary embeddings: rope_parameters (transformers >= 5) or rope_theta + rope_scaling. */
static int parse_rotary(md_config *cfg, json_t *root, const char *src, md_error *err)
{
    json_t *rp = json_object_get(root, "rope_parameters");
    json_t *rs = json_object_get(root, "rope_scaling");
    cfg->rope_type = MD_ROPE_DEFAULT;
    cfg->rope_factor = 1.0;
    if (get_num(root, "", "rope_theta", 0, 10000.0, 1.0, MAX_ROPE_THETA, &cfg->rope_theta, src, err)) return MD_ERR;
    if (rp && !json_is_null(rp)) {
        if (!json_is_object(rp)) return md_error_set(err, "%s: 'rope_parameters' must be an object", src);
        if (get_num(rp, "rope_parameters.", "rope_theta", 0, cfg->rope_theta, 1.0, MAX_ROPE_THETA,
                    &cfg->rope_theta, src, err))
            return MD_ERR;
        return parse_rope(cfg, rp, "rope_parameters", src, err);
    }
    if (rs && !json_is_null(rs)) return parse_rope(cfg, rs, "rope_scaling", src, err);
    return MD_OK;
}

int md_hf_config_parse(md_config *cfg, const char *json_text, const char *source, md_error *err)
{
    const char *src = source ? source : "config.json";
    int rc = MD_ERR;
    memset(cfg, 0, sizeof *cfg);
    cfg->bos_id = -1;
    json_error_t jerr;
    json_t *root = json_loads(json_text, 0, &jerr);
    if (!root) {
        md_error_set(err, "%s: not valid JSON (%s, line %d)", src, jerr.text, jerr.line);
        goto fail;
    }
    if (!json_is_object(root)) {
        md_error_set(err, "%s: not a JSON object", src);
        goto fail;
    }
    int mistral = 0;
    if (parse_architecture(cfg, root, &mistral, src, err) || parse_widths(cfg, root, mistral, src, err)) goto fail;

    /* Stored as a float32 (as transformers adds it): a normal float32, so that
     * it neither rounds to 0 nor to infinity and writes back as itself. */
    double eps = 0;
    if (get_num(root, "", "rms_norm_eps", 0, 1e-6, FLT_MIN, 1.0, &eps, src, err)) goto fail;
    cfg->rms_eps = (float)eps;
    if (get_bool(root, "tie_word_embeddings", 0, &cfg->tie_word_embeddings, src, err)) goto fail;

    /* The other families' keys (src/io/hf_family.c); Llama/Mistral's here. */
    if (md_family_parse(cfg, root, src, err) != MD_OK ||
        parse_llama_keys(cfg, root, cfg->family == MD_FAMILY_LLAMA, mistral, src, err) ||
        parse_rotary(cfg, root, src, err) || parse_special_ids(cfg, root, src, err) ||
        parse_torch_dtype(cfg, root, src, err))
        goto fail;
    rc = MD_OK;
fail:
    json_decref(root);
    return rc;
}

/* If name is "model.layers.<N>.<rest>", returns N (or LLONG_MAX when N does
 * not fit) and points *rest at <rest>; else returns -1. */
static long long layer_of(const char *name, const char **rest)
{
    static const char prefix[] = "model.layers.";
    if (strncmp(name, prefix, sizeof prefix - 1) != 0) return -1;
    const char *p = name + sizeof prefix - 1;
    long long n = 0;
    if (*p < '0' || *p > '9') return -1;
    for (; *p >= '0' && *p <= '9'; p++) n = n > LLONG_MAX / 10 - 10 ? LLONG_MAX : n * 10 + (*p - '0');
    if (*p != '.') return -1;
    *rest = p + 1;
    return n;
}

/* rest ends in ".bias". */
static int is_bias(const char *rest)
{
    size_t n = strlen(rest);
    return n >= 5 && strcmp(rest + n - 5, ".bias") == 0;
}

/* rest is the bias of a q/k/v projection ("self_attn.{q,k,v}_proj.bias"). */
static int is_qkv_bias(const char *rest)
{
    return strcmp(rest, "self_attn.q_proj.bias") == 0 || strcmp(rest, "self_attn.k_proj.bias") == 0 ||
           strcmp(rest, "self_attn.v_proj.bias") == 0;
}

int md_hf_config_check_tensors(const md_config *cfg, const md_safetensors *st, const char *dir, md_error *err)
{
    unsigned char *seen = calloc((size_t)cfg->n_layers, 1);
    if (!seen) return md_error_set(err, "%s: out of memory", dir);
    int rc = MD_OK;
    size_t n = md_safetensors_count(st);
    for (size_t i = 0; i < n && rc == MD_OK; i++) {
        const char *name = md_safetensors_at(st, i)->name, *rest = NULL;
        long long l = layer_of(name, &rest);
        if (l < 0) continue;
        if (l >= cfg->n_layers)
            rc = md_error_set(err, "%s: tensor '%s' belongs to layer %lld, but config.json has "
                              "num_hidden_layers = %d: the config and the weights disagree (fix the config or use "
                              "the matching checkpoint)", dir, name, l, cfg->n_layers);
        else if (is_bias(rest) && !(cfg->qkv_bias && is_qkv_bias(rest)))
            rc = md_error_set(err, "%s: tensor '%s' is a bias, but the config declares none for it (only Qwen2's "
                              "q/k/v projections carry biases) and the engine would ignore it", dir, name);
        else
            seen[l] = 1;
    }
    for (int l = 0; l < cfg->n_layers && rc == MD_OK; l++)
        if (!seen[l])
            rc = md_error_set(err, "%s: config.json has num_hidden_layers = %d, but the checkpoint has no tensors "
                              "of layer %d (model.layers.%d.*): the config and the weights disagree", dir,
                              cfg->n_layers, l, l);
    free(seen);
    return rc;
}

int md_hf_config_load_dir(md_config *cfg, const char *dir, md_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = md_fsutil_read_input(path, MAX_CONFIG_BYTES, NULL, err);
    if (!text) return MD_ERR;
    int rc = md_hf_config_parse(cfg, text, path, err);
    free(text);
    if (rc != MD_OK) return rc;
    if (cfg->bos_id >= 0 && cfg->n_eos > 0) return MD_OK;
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    if (access(path, F_OK) != 0) return MD_OK;
    json_error_t jerr;
    text = md_fsutil_read_input(path, MAX_CONFIG_BYTES, NULL, err);
    if (!text) return MD_ERR;
    json_t *g = json_loads(text, 0, &jerr);
    free(text);
    if (!g || !json_is_object(g)) {
        json_decref(g);
        return md_error_set(err, "%s: not a valid JSON object (%s, line %d)", path, g ? "" : jerr.text,
                            g ? 0 : jerr.line);
    }
    rc = parse_special_ids(cfg, g, path, err);
    json_decref(g);
    return rc;
}

/* The shortest decimal that reads back as the float f, as a double (so that
 * 1e-5f is written "1e-05", not "9.9999997e-06"). */
static double float_as_decimal(float f)
{
    char buf[32];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)f);
        if ((float)strtod(buf, NULL) == f) break;
    }
    return strtod(buf, NULL);
}

static json_t *ids_json(const int *ids, int n)
{
    if (n == 0) return json_null();
    if (n == 1) return json_integer(ids[0]);
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_integer(ids[i]));
    return a;
}

static int dump_atomic(json_t *root, const char *path, md_error *err)
{
    size_t n = strlen(path) + 5;
    char *tmp = malloc(n);
    if (!tmp) return md_error_set(err, "%s: out of memory", path);
    snprintf(tmp, n, "%s.tmp", path);
    int rc = MD_OK;
    if (json_dump_file(root, tmp, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) != 0) {
        rc = md_error_set(err, "%s: cannot write: %s", tmp, strerror(errno));
        unlink(tmp);
    } else if (rename(tmp, path) != 0) {
        rc = md_error_set(err, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

int md_hf_config_write(const md_config *cfg, const char *path, md_error *err)
{
    int mistral = strcmp(cfg->model_type, "mistral") == 0;
    json_t *r = json_object();
    if (!r) return md_error_set(err, "%s: out of memory", path);
    json_t *archs = json_array();
    json_array_append_new(archs, json_string(cfg->architecture[0] ? cfg->architecture
                                             : mistral ? "MistralForCausalLM" : "LlamaForCausalLM"));
    json_object_set_new(r, "architectures", archs);
    json_object_set_new(r, "model_type", json_string(cfg->model_type[0] ? cfg->model_type : "llama"));
    json_object_set_new(r, "attention_bias", json_false());
    json_object_set_new(r, "attention_dropout", json_real(0.0));
    json_object_set_new(r, "bos_token_id", cfg->bos_id >= 0 ? json_integer(cfg->bos_id) : json_null());
    json_object_set_new(r, "eos_token_id", ids_json(cfg->eos_ids, cfg->n_eos));
    json_object_set_new(r, "head_dim", json_integer(cfg->head_dim));
    json_object_set_new(r, "hidden_act", json_string("silu"));
    json_object_set_new(r, "hidden_size", json_integer(cfg->d_model));
    json_object_set_new(r, "initializer_range", json_real(0.02));
    json_object_set_new(r, "intermediate_size", json_integer(cfg->d_ff));
    json_object_set_new(r, "max_position_embeddings", json_integer(cfg->max_position));
    if (!mistral) json_object_set_new(r, "mlp_bias", json_false());
    json_object_set_new(r, "num_attention_heads", json_integer(cfg->n_heads));
    json_object_set_new(r, "num_hidden_layers", json_integer(cfg->n_layers));
    json_object_set_new(r, "num_key_value_heads", json_integer(cfg->n_kv_heads));
    json_object_set_new(r, "rms_norm_eps", json_real(float_as_decimal(cfg->rms_eps)));
    json_t *rs = json_null();
    if (cfg->rope_type == MD_ROPE_LINEAR) {
        rs = json_object();
        json_object_set_new(rs, "factor", json_real(cfg->rope_factor));
        json_object_set_new(rs, "rope_type", json_string("linear"));
        json_object_set_new(rs, "type", json_string("linear"));
    } else if (cfg->rope_type == MD_ROPE_LLAMA3) {
        rs = json_object();
        json_object_set_new(rs, "factor", json_real(cfg->rope_factor));
        json_object_set_new(rs, "high_freq_factor", json_real(cfg->rope_high_freq_factor));
        json_object_set_new(rs, "low_freq_factor", json_real(cfg->rope_low_freq_factor));
        json_object_set_new(rs, "original_max_position_embeddings", json_integer(cfg->rope_original_max_position));
        json_object_set_new(rs, "rope_type", json_string("llama3"));
    }
    json_object_set_new(r, "rope_scaling", rs);
    json_object_set_new(r, "rope_theta", json_real(cfg->rope_theta));
    if (mistral) json_object_set_new(r, "sliding_window", json_null());
    json_object_set_new(r, "tie_word_embeddings", json_boolean(cfg->tie_word_embeddings));
    const char *dt = cfg->torch_dtype == MD_DTYPE_F16 ? "float16"
                     : cfg->torch_dtype == MD_DTYPE_F32 ? "float32" : "bfloat16";
    json_object_set_new(r, "torch_dtype", json_string(dt));
    json_object_set_new(r, "use_cache", json_true());
    json_object_set_new(r, "vocab_size", json_integer(cfg->vocab_size));
    md_family_write(cfg, r);
    int rc = dump_atomic(r, path, err);
    json_decref(r);
    return rc;
}

int md_hf_config_write_generation(const md_config *cfg, const char *path, md_error *err)
{
    json_t *r = json_object();
    if (!r) return md_error_set(err, "%s: out of memory", path);
    json_object_set_new(r, "_from_model_config", json_true());
    json_object_set_new(r, "bos_token_id", cfg->bos_id >= 0 ? json_integer(cfg->bos_id) : json_null());
    json_object_set_new(r, "eos_token_id", ids_json(cfg->eos_ids, cfg->n_eos));
    json_object_set_new(r, "do_sample", json_false());
    int rc = dump_atomic(r, path, err);
    json_decref(r);
    return rc;
}
