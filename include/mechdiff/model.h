/* model.h — a loaded Hugging Face folder (Llama, Mistral, Qwen2, Qwen3,
 * Gemma-2, OLMo-2; see docs/architecture-model.md): config, tokenizer,
 * mmap'd weights bound to the backend, for a layer range (a shard).
 * Ownership: md_model owns its safetensors mapping, tokenizer, backend and
 * workspace; md_model_free releases all. */
#ifndef MECHDIFF_MODEL_H
#define MECHDIFF_MODEL_H

#include <stddef.h>

#include "mechdiff/backend.h"
#include "mechdiff/chat.h"
#include "mechdiff/error.h"
#include "mechdiff/hf_config.h"
#include "mechdiff/safetensors.h"
#include "mechdiff/tokenizer.h"

/* One decoder layer. Optional tensors (absent in a family) are zeroed, see
 * md_weight_present; which ones a family has: docs/architecture-model.md. */
typedef struct md_layer {
    md_weight attn_norm;      /* pre-attention norm [d] (input_layernorm; not in OLMo-2) */
    md_weight wq;             /* [n_heads*hd][d] */
    md_weight wk;             /* [n_kv*hd][d] */
    md_weight wv;             /* [n_kv*hd][d] */
    md_weight bq, bk, bv;     /* q/k/v biases [n_heads*hd], [n_kv*hd] (Qwen2) */
    md_weight q_norm, k_norm; /* [hd] (Qwen3) or [n_heads*hd], [n_kv*hd] (OLMo-2) */
    md_weight wo;             /* [d][n_heads*hd] */
    md_weight attn_post_norm; /* norm of the attention output [d] (Gemma-2, OLMo-2) */
    md_weight mlp_norm;       /* pre-MLP norm [d] (Llama's post_attention_layernorm) */
    md_weight w_gate;         /* [ff][d] */
    md_weight w_up;           /* [ff][d] */
    md_weight w_down;         /* [d][ff] */
    md_weight mlp_post_norm;  /* norm of the MLP output [d] (Gemma-2, OLMo-2) */
} md_layer;

typedef struct md_model_options {
    int layer_lo;              /* first layer held (default 0) */
    int layer_hi;              /* one past the last layer held (-1: all) */
    md_backend_kind backend;   /* default CPU */
    int device;                /* GPU ordinal */
    size_t fp32_cache_bytes;   /* see md_backend_options; 0 → md_model_default_fp32_cache() */
    md_cuda_weights cuda_weights; /* CUDA precision, see md_backend_options */
    md_cuda_gemm cuda_gemm;
    int skip_tokenizer;        /* 1: do not load tokenizer files */
    int skip_finite_check;     /* 1: do not read every weight for NaN/inf when binding
                                  (a structure-only check such as validate's) */
} md_model_options;

typedef struct md_model {
    md_config cfg;
    char dir[1024];
    md_safetensors *st;        /* owned */
    md_tokenizer *tok;         /* owned; NULL when skipped */
    md_chat_kind chat;         /* recognised chat template */
    md_backend *be;            /* owned */
    int layer_lo, layer_hi;
    int skip_finite_check;     /* md_model_options.skip_finite_check */
    int has_embed, has_head;   /* first / last shard */
    md_weight embed;           /* [vocab][d] */
    md_weight final_norm;      /* [d] */
    md_weight lm_head;         /* [vocab][d] (= embed when tied) */
    md_layer *layers;          /* [n_layers]; only [layer_lo, layer_hi) bound */
    float *inv_freq;           /* [head_dim/2], host, rope scaling applied */
    void **host_bufs;          /* owned: host tensors the model made (Gemma's 1 + w norm gains) */
    int n_host_bufs;
    const struct md_model_exec *exec; /* how the model runs: NULL = locally; else another
                                    implementation (src/model/exec_impl.h), e.g. the leader of
                                    a layer-sharded model (shard.h): forward/caches span the group */
    void *exec_ctx;            /* owned by exec (exec->free) */
    void *ws;                  /* forward scratch (backend memory), owned, grows */
    size_t ws_bytes;
} md_model;

void md_model_options_init(md_model_options *opt);
/* The CPU fp32 weight cache a model gets when its options say 0: half the
 * memory available at the call (MemAvailable, capped by the room under a
 * cgroup v2 limit), divided among the node's ranks (OMPI_COMM_WORLD_LOCAL_SIZE,
 * else MPI_LOCALNRANKS, else SLURM_NTASKS_PER_NODE),
 * at least 256 MiB. A pair loaded one after the other: the second model sees
 * what the first left. */
size_t md_model_default_fp32_cache(void);
int md_model_load(md_model **out, const char *dir, const md_model_options *opt, md_error *err);
void md_model_free(md_model *m);

/* Width of a hook point's activation per position: d_model, d_ff for
 * mlp_post, n_heads * head_dim for z; 0 for pattern, whose width depends
 * on the forward (md_hook_cell_width). */
int md_model_hook_width(const md_model *m, int hook_point);
/* The attention score scale: 1/sqrtf(head_dim), or query_pre_attn_scalar^-1/2. */
float md_model_attn_scale(const md_model *m);
/* Keys a query of layer l sees at most (0 = all). */
int md_model_layer_window(const md_model *m, int layer);

#endif
