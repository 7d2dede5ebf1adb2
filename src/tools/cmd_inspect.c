/* cmd_inspect.c — `mechdiff inspect DIR`: architecture, sizes, dtypes,
 * tokenizer kind and recognised chat template of a model folder. */
#include <stdio.h>
#include <string.h>

#include "mechdiff/hub.h"
#include "mechdiff/model.h"
#include "tools/cmds.h"

static const char *rope_name(md_rope_type t)
{
    return t == MD_ROPE_LLAMA3 ? "llama3" : t == MD_ROPE_LINEAR ? "linear" : "none";
}

/* What the family changes in the layer (docs/architecture-model.md). */
static void print_variants(const md_model *m)
{
    const md_config *c = &m->cfg;
    static const char *const place[] = {"before attention and MLP", "before and after attention and MLP",
                                        "after attention and MLP (on the branch)"};
    static const char *const qk[] = {"none", "per head", "over the whole projection"};
    printf("norms:          %s%s\n", place[c->norm_place], c->norm_plus_one ? ", gain 1 + w" : "");
    printf("q/k:            bias %s, RMSNorm %s\n", c->qkv_bias ? "yes" : "no", qk[c->qk_norm]);
    printf("mlp:            %s-gated\n", c->hidden_act == MD_HIDDEN_GELU_TANH ? "GELU-tanh" : "SiLU");
    if (c->embed_scale > 0) printf("embedding:      x %.6g\n", c->embed_scale);
    printf("attention:      scores x %.6g", (double)md_model_attn_scale(m));
    if (c->attn_softcap > 0) printf(", soft-cap %g", c->attn_softcap);
    int n_sliding = 0;
    for (int l = 0; l < c->n_layers && l < MD_MAX_LAYERS; l++) n_sliding += c->layer_sliding[l];
    if (c->sliding_window > 0) printf(", sliding window %d on %d of %d layers", c->sliding_window, n_sliding,
                                      c->n_layers);
    printf("\n");
    if (c->final_softcap > 0) printf("logits:         soft-cap %g\n", c->final_softcap);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: mechdiff inspect DIR\n\nPrints the architecture, sizes, weight dtypes, tokenizer kind and\n"
               "recognised chat template of a Hugging Face model folder.\n");
}

int cmd_inspect(int argc, char **argv)
{
    int start = cmd_start_plain("inspect", usage, argc, argv);
    if (start >= 0) return start;
    if (argc < 2) return cmd_usage_error("inspect", usage, "no model folder given");
    if (argc > 2) return cmd_usage_error("inspect", usage, "one model folder at a time ('%s' is a second)", argv[2]);
    md_error err = {0};
    md_model *m = NULL;
    char dir[4096];
    if (cmd_model_dir("inspect", argv[1], 1, dir, sizeof dir)) return 1;
    if (md_model_load(&m, dir, NULL, &err) != MD_OK) {
        fprintf(stderr, "mechdiff inspect: %s\n", err.msg);
        return 1;
    }
    const md_config *c = &m->cfg;
    size_t params = 0, counts[3] = {0, 0, 0};
    for (size_t i = 0; i < md_safetensors_count(m->st); i++) {
        const md_tensor_info *t = md_safetensors_at(m->st, i);
        size_t n = 1;
        for (int j = 0; j < t->ndim; j++) n *= (size_t)t->shape[j];
        params += n;
        if (t->dtype >= 0 && t->dtype < 3) counts[t->dtype]++;
    }
    printf("model:          %s\n", m->dir);
    printf("architecture:   %s (%s)\n", c->architecture, c->model_type);
    printf("layers:         %d\n", c->n_layers);
    printf("d_model:        %d\n", c->d_model);
    printf("d_ff:           %d\n", c->d_ff);
    printf("heads:          %d (kv %d, head_dim %d)%s\n", c->n_heads, c->n_kv_heads, c->head_dim,
           c->n_kv_heads < c->n_heads ? " grouped-query" : "");
    printf("vocab:          %d\n", c->vocab_size);
    printf("rope:           theta %g, scaling %s", c->rope_theta, rope_name(c->rope_type));
    if (c->rope_type != MD_ROPE_DEFAULT) printf(" (factor %g)", c->rope_factor);
    printf("\nrms_norm_eps:   %g\n", c->rms_eps);
    printf("tied embedding: %s\n", c->tie_word_embeddings ? "yes" : "no");
    print_variants(m);
    printf("bos / eos:      %d /", c->bos_id);
    for (int i = 0; i < c->n_eos; i++) printf(" %d", c->eos_ids[i]);
    printf("\nparameters:     %zu (%.2f M)\n", params, params / 1e6);
    printf("weights:        %zu tensors in %zu file(s), %.1f MB (F32 %zu, F16 %zu, BF16 %zu)\n",
           md_safetensors_count(m->st), md_safetensors_file_count(m->st),
           md_safetensors_total_bytes(m->st) / 1e6, counts[0], counts[1], counts[2]);
    if (m->tok) {
        printf("tokenizer:      %s BPE, %d tokens, bos %d, eos %d\n",
               md_tokenizer_get_kind(m->tok) == MD_TOKENIZER_BYTE_LEVEL ? "byte-level" : "sentencepiece",
               md_tokenizer_vocab_size(m->tok), md_tokenizer_bos_id(m->tok), md_tokenizer_eos_id(m->tok));
        const char *tmpl = md_tokenizer_chat_template(m->tok);
        printf("chat template:  %s\n", !tmpl ? "none" : m->chat == MD_CHAT_UNKNOWN ? "present, not recognised"
                                                                                    : md_chat_name(m->chat));
    } else {
        printf("tokenizer:      none (no tokenizer.json)\n");
    }
    md_model_free(m);
    return 0;
}
