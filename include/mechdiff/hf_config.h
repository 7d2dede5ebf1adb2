/* hf_config.h — the architecture hyper-parameters of a Hugging Face
 * LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM,
 * Gemma2ForCausalLM or Olmo2ForCausalLM folder (config.json, plus BOS/EOS
 * from generation_config.json when config.json lacks them). Anything the
 * engine does not implement (other architectures, MLP or o_proj biases,
 * other activations, other rope_scaling types, Mistral's sliding window
 * shorter than the context, ...) is an error naming the key, never a silent
 * guess. The families' own keys: src/io/hf_family.c. Plain data, no heap. */
#ifndef MECHDIFF_HF_CONFIG_H
#define MECHDIFF_HF_CONFIG_H

#include <stddef.h>

#include "mechdiff/dtype.h"
#include "mechdiff/error.h"
#include "mechdiff/safetensors.h"

#define MD_MAX_EOS 8

#define MD_MAX_LAYERS 512

/* The model family (config.json "architectures"). */
typedef enum md_family {
    MD_FAMILY_LLAMA = 0,   /* LlamaForCausalLM, MistralForCausalLM */
    MD_FAMILY_QWEN2 = 1,   /* Qwen2ForCausalLM (Qwen2, Qwen2.5) */
    MD_FAMILY_QWEN3 = 2,   /* Qwen3ForCausalLM */
    MD_FAMILY_GEMMA2 = 3,  /* Gemma2ForCausalLM */
    MD_FAMILY_OLMO2 = 4    /* Olmo2ForCausalLM */
} md_family;

/* Where a decoder layer's RMSNorms sit. */
typedef enum md_norm_place {
    MD_NORM_PRE = 0,       /* before attention and MLP (Llama, Mistral, Qwen) */
    MD_NORM_PRE_POST = 1,  /* before and after both (Gemma-2) */
    MD_NORM_POST = 2       /* after both, on the branch (OLMo-2) */
} md_norm_place;

/* hidden_act / hidden_activation. */
typedef enum md_hidden_act {
    MD_HIDDEN_SILU = 0,       /* "silu" */
    MD_HIDDEN_GELU_TANH = 1   /* "gelu_pytorch_tanh" (Gemma-2) */
} md_hidden_act;

/* Where q and k are RMS-normalised before RoPE. */
typedef enum md_qk_norm {
    MD_QK_NORM_NONE = 0,
    MD_QK_NORM_HEAD = 1,   /* per head, weight [head_dim] (Qwen3) */
    MD_QK_NORM_FULL = 2    /* over the whole projection, weight [n_heads*head_dim] (OLMo-2) */
} md_qk_norm;

typedef enum md_rope_type {
    MD_ROPE_DEFAULT = 0,   /* no scaling */
    MD_ROPE_LINEAR = 1,    /* positions divided by factor */
    MD_ROPE_LLAMA3 = 2     /* Llama-3.1 frequency-dependent scaling */
} md_rope_type;

typedef struct md_config {
    char architecture[64];       /* "LlamaForCausalLM", "Qwen2ForCausalLM", ... */
    char model_type[32];         /* "llama", "mistral", "qwen2", "qwen3", "gemma2", "olmo2" */
    int d_model;                 /* hidden_size */
    int d_ff;                    /* intermediate_size */
    int n_layers;                /* num_hidden_layers */
    int n_heads;                 /* num_attention_heads */
    int n_kv_heads;              /* num_key_value_heads (defaults to n_heads) */
    int head_dim;                /* head_dim (defaults to d_model / n_heads) */
    int vocab_size;
    int max_position;            /* max_position_embeddings */
    float rms_eps;               /* rms_norm_eps */
    double rope_theta;
    md_rope_type rope_type;
    double rope_factor;
    double rope_low_freq_factor;
    double rope_high_freq_factor;
    int rope_original_max_position;
    int tie_word_embeddings;
    int bos_id;                  /* -1 when none */
    int eos_ids[MD_MAX_EOS];
    int n_eos;
    md_dtype torch_dtype;        /* as declared (weights may differ) */
    /* Architecture variants beyond Llama (all 0 for Llama and Mistral): */
    md_family family;
    int qkv_bias;                /* q/k/v projections carry biases (Qwen2) */
    md_qk_norm qk_norm;          /* RMSNorm of q and k before RoPE (Qwen3, OLMo-2) */
    md_norm_place norm_place;    /* where the layer norms sit */
    int norm_plus_one;           /* RMSNorm scales by (1 + w) (Gemma) */
    md_hidden_act hidden_act;    /* gate activation of the MLP */
    float embed_scale;           /* embeddings multiplied by this (Gemma: √d); 0 = none */
    double query_pre_attn_scalar; /* scores scaled by its ^-1/2 (Gemma-2); 0 = head_dim */
    float attn_softcap;          /* attention logit soft-capping (Gemma-2); 0 = none */
    float final_softcap;         /* final logit soft-capping (Gemma-2); 0 = none */
    int sliding_window;          /* keys per query on sliding layers; 0 = none */
    unsigned char layer_sliding[MD_MAX_LAYERS]; /* 1: layer l uses the sliding window */
} md_config;

/* Reads DIR/config.json (and DIR/generation_config.json if present). */
int md_hf_config_load_dir(md_config *cfg, const char *dir, md_error *err);
/* Parses config.json text; `source` names it in errors. */
int md_hf_config_parse(md_config *cfg, const char *json_text, const char *source, md_error *err);
/* Checks that the checkpoint's layer tensors match cfg: every
 * "model.layers.N.*" tensor has N < n_layers, every layer below n_layers has
 * tensors, and no layer tensor is a bias except the q/k/v biases of qkv_bias configs.
 * `dir` names the checkpoint in errors. Missing or misshaped weights of a
 * layer are reported when the model binds them. */
int md_hf_config_check_tensors(const md_config *cfg, const md_safetensors *st, const char *dir, md_error *err);
/* Writes a config.json for cfg (used by make-model); transformers loads it
 * as LlamaForCausalLM / MistralForCausalLM. Written to PATH.tmp, renamed. */
int md_hf_config_write(const md_config *cfg, const char *path, md_error *err);
/* Writes a generation_config.json with cfg's BOS/EOS ids (greedy). */
int md_hf_config_write_generation(const md_config *cfg, const char *path, md_error *err);

/* Whether a residual of model a means the same in model b (cross-model
 * patching): every architectural field that changes the forward must agree
 * (family, widths, heads, RoPE, norms and their placement, biases, q/k norms,
 * activation, scales, soft-caps, sliding windows per layer). vocab_size may
 * differ: whether the vocabularies pair is a question for their tokenizers
 * (md_exp_check_pair, exp_util.h, holds the whole rule). MD_OK, or MD_ERR
 * with the first difference in why. */
int md_hf_config_check_pair(const md_config *a, const md_config *b, char *why, size_t why_len);

/* Notes: torch_dtype is MD_DTYPE_INVALID when config.json declares none.
 * Widths (hidden_size, intermediate_size, num_hidden_layers,
 * num_attention_heads, vocab_size) are required; other keys default as in
 * transformers (MistralConfig: max_position_embeddings 131072 and
 * sliding_window 4096 when absent). Every number is range-checked: counts
 * and widths are positive ints with generous upper bounds, rms_norm_eps is a
 * normal float32 in [FLT_MIN, 1], rope_theta is in [1, 1e30], rope factors
 * are finite and original_max_position_embeddings is an int.
 * `rope_parameters` (transformers >= 5, rope_theta inside) takes precedence
 * over rope_theta / rope_scaling. */

#endif
