/* test_hf_family.c — config.json of the families beyond Llama/Mistral
 * (src/io/hf_family.c): each family's switches and transformers' defaults,
 * the keys that change the computation and are not implemented (clear
 * errors, never a silently different forward), and the pair check of
 * cross-model patching (every field but vocab_size). The numbers of each
 * family are pinned by the goldens (test_forward). */
#include <stdio.h>
#include <string.h>

#include "mechdiff/hf_config.h"
#include "testutil.h"

#define WIDTHS "\"hidden_size\": 64, \"intermediate_size\": 72, \"num_hidden_layers\": 4, " \
               "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"vocab_size\": 300"

static int parse(md_config *c, const char *arch, const char *extra, md_error *err)
{
    char text[2048];
    snprintf(text, sizeof text, "{\"architectures\": [\"%s\"], " WIDTHS "%s%s}", arch, extra[0] ? ", " : "", extra);
    return md_hf_config_parse(c, text, "m/config.json", err);
}

static void expect_error(const char *arch, const char *extra, const char *want)
{
    md_config c;
    md_error err;
    md_error_clear(&err);
    int rc = parse(&c, arch, extra, &err);
    CHECK_MSG(rc == MD_ERR, "%s {%s}: accepted", arch, extra);
    CHECK_MSG(strstr(err.msg, want) && strstr(err.msg, "m/config.json"), "%s {%s}: '%s' lacks '%s'", arch, extra,
              err.msg, want);
}

int main(void)
{
    md_config c, d;
    md_error err;
    char why[256];
    md_error_clear(&err);

    /* Each family's switches, from a config.json that names only widths. */
    CHECK(parse(&c, "Qwen2ForCausalLM", "", &err) == MD_OK);
    CHECK(c.family == MD_FAMILY_QWEN2 && c.qkv_bias && c.qk_norm == MD_QK_NORM_NONE && c.norm_place == MD_NORM_PRE &&
          c.max_position == 32768 && c.sliding_window == 0 && !c.tie_word_embeddings);
    CHECK(parse(&c, "Qwen3ForCausalLM", "", &err) == MD_OK);
    CHECK(c.family == MD_FAMILY_QWEN3 && !c.qkv_bias && c.qk_norm == MD_QK_NORM_HEAD && c.head_dim == 128);
    CHECK(parse(&c, "Olmo2ForCausalLM", "", &err) == MD_OK);
    CHECK(c.qk_norm == MD_QK_NORM_FULL && c.norm_place == MD_NORM_POST && c.rms_eps == 1e-5f && c.head_dim == 16);
    CHECK(parse(&c, "Gemma2ForCausalLM", "\"max_position_embeddings\": 8192", &err) == MD_OK);
    CHECK(c.norm_place == MD_NORM_PRE_POST && c.norm_plus_one && c.hidden_act == MD_HIDDEN_GELU_TANH &&
          c.head_dim == 256 && c.tie_word_embeddings && c.query_pre_attn_scalar == 256 && c.attn_softcap == 50.0f &&
          c.final_softcap == 30.0f && c.embed_scale == 8.0f && c.sliding_window == 4096);
    CHECK(c.layer_sliding[0] && !c.layer_sliding[1] && c.layer_sliding[2] && !c.layer_sliding[3]);
    /* layer_types wins over the default pattern; null soft-caps switch them off */
    CHECK(parse(&c, "Gemma2ForCausalLM", "\"layer_types\": [\"full_attention\", \"sliding_attention\", "
                "\"full_attention\", \"full_attention\"], \"sliding_window\": 8, \"attn_logit_softcapping\": null, "
                "\"final_logit_softcapping\": null", &err) == MD_OK);
    CHECK(!c.layer_sliding[0] && c.layer_sliding[1] && c.sliding_window == 8 && c.attn_softcap == 0 &&
          c.final_softcap == 0);
    /* a window that covers every position changes nothing: dropped */
    CHECK(parse(&c, "Gemma2ForCausalLM", "\"sliding_window\": 4096, \"max_position_embeddings\": 4096", &err) == MD_OK);
    CHECK(c.sliding_window == 0 && !c.layer_sliding[0]);
    /* Qwen's sliding window is honoured when switched on, from max_window_layers */
    CHECK(parse(&c, "Qwen2ForCausalLM", "\"use_sliding_window\": true, \"sliding_window\": 16, "
                "\"max_window_layers\": 2", &err) == MD_OK);
    CHECK(c.sliding_window == 16 && !c.layer_sliding[1] && c.layer_sliding[2] && c.layer_sliding[3]);
    /* max_window_layers past every layer, even past an int (fuzz_config): no layer slides */
    for (int k = 0; k < 2; k++) {
        const char *extra = k ? "\"use_sliding_window\": true, \"max_window_layers\": 1e28"
                              : "\"use_sliding_window\": true, \"max_window_layers\": 4";
        CHECK(parse(&c, "Qwen3ForCausalLM", extra, &err) == MD_OK);
        CHECK(!c.layer_sliding[0] && !c.layer_sliding[1] && !c.layer_sliding[2] && !c.layer_sliding[3]);
    }

    /* Not implemented: an error naming the key, never a different forward. */
    expect_error("Gemma3ForCausalLM", "", "Gemma3ForCausalLM");
    expect_error("Qwen2ForCausalLM", "\"model_type\": \"llama\"", "model_type");
    expect_error("Qwen2ForCausalLM", "\"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4}", "yarn");
    expect_error("Qwen2ForCausalLM", "\"hidden_act\": \"gelu\"", "hidden_act");
    expect_error("Qwen3ForCausalLM", "\"attention_bias\": true", "attention_bias");
    expect_error("Olmo2ForCausalLM", "\"mlp_bias\": true", "mlp_bias");
    expect_error("Olmo2ForCausalLM", "\"sliding_window\": 16", "sliding_window");
    expect_error("Gemma2ForCausalLM", "\"use_bidirectional_attention\": true", "use_bidirectional_attention");
    expect_error("Gemma2ForCausalLM", "\"hidden_activation\": \"gelu\"", "hidden_activation");
    expect_error("Gemma2ForCausalLM", "\"query_pre_attn_scalar\": -1", "query_pre_attn_scalar");
    expect_error("Gemma2ForCausalLM", "\"layer_types\": [\"full_attention\"]", "layer_types");
    expect_error("Gemma2ForCausalLM", "\"layer_types\": [\"chunked_attention\", \"full_attention\", "
                 "\"full_attention\", \"full_attention\"]", "chunked_attention");
    expect_error("Qwen2ForCausalLM", "\"use_sliding_window\": true, \"sliding_window\": null, "
                 "\"layer_types\": [\"sliding_attention\", \"full_attention\", \"full_attention\", "
                 "\"full_attention\"]", "sliding_window");

    /* The pair check: every architectural field, not only shapes. */
    CHECK(parse(&c, "Gemma2ForCausalLM", "", &err) == MD_OK);
    CHECK(parse(&d, "Gemma2ForCausalLM", "", &err) == MD_OK);
    CHECK(md_hf_config_check_pair(&c, &d, why, sizeof why) == MD_OK);
    CHECK(parse(&d, "Gemma2ForCausalLM", "\"final_logit_softcapping\": 20.0", &err) == MD_OK);
    CHECK(md_hf_config_check_pair(&c, &d, why, sizeof why) == MD_ERR && strstr(why, "final_softcap"));
    CHECK(parse(&d, "Gemma2ForCausalLM", "\"layer_types\": [\"full_attention\", \"sliding_attention\", "
                "\"full_attention\", \"sliding_attention\"]", &err) == MD_OK);
    CHECK(md_hf_config_check_pair(&c, &d, why, sizeof why) == MD_ERR && strstr(why, "layer 0"));
    CHECK(parse(&c, "Qwen2ForCausalLM", "", &err) == MD_OK);
    CHECK(parse(&d, "Qwen3ForCausalLM", "\"head_dim\": 16", &err) == MD_OK);
    CHECK(md_hf_config_check_pair(&c, &d, why, sizeof why) == MD_ERR && strstr(why, "architecture"));
    CHECK(parse(&d, "Qwen2ForCausalLM", "\"rope_theta\": 5000.0", &err) == MD_OK);
    CHECK(md_hf_config_check_pair(&c, &d, why, sizeof why) == MD_ERR && strstr(why, "rope_theta"));
    /* vocab_size is not the config's to judge: the tokenizers are (md_exp_check_pair, test_vocab_pair) */
    CHECK(parse(&d, "Qwen2ForCausalLM", "", &err) == MD_OK);
    d.vocab_size = c.vocab_size + 64;
    CHECK(md_hf_config_check_pair(&c, &d, why, sizeof why) == MD_OK);
    TEST_MAIN_END();
}
