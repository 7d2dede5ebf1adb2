/* test_hf_config.c — config.json parsing for Llama-3.1 / Llama-2 / Mistral
 * v0.3 folders, transformers-5 rope_parameters, BOS/EOS fallback to
 * generation_config.json, md_hf_config_write round trip, and errors that name
 * the offending key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mechdiff/hf_config.h"
#include "testutil.h"

static const char *LLAMA3 =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"attention_bias\": false, \"attention_dropout\": 0.0,"
    " \"bos_token_id\": 128000, \"eos_token_id\": 128001, \"hidden_act\": \"silu\", \"hidden_size\": 4096,"
    " \"initializer_range\": 0.02, \"intermediate_size\": 14336, \"max_position_embeddings\": 131072,"
    " \"mlp_bias\": false, \"model_type\": \"llama\", \"num_attention_heads\": 32, \"num_hidden_layers\": 32,"
    " \"num_key_value_heads\": 8, \"pretraining_tp\": 1, \"rms_norm_eps\": 1e-05,"
    " \"rope_scaling\": {\"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0,"
    "   \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"},"
    " \"rope_theta\": 500000.0, \"tie_word_embeddings\": false, \"torch_dtype\": \"bfloat16\","
    " \"transformers_version\": \"4.43.0.dev0\", \"use_cache\": true, \"vocab_size\": 128256}";

static const char *LLAMA2 =
    "{\"_name_or_path\": \"meta-llama/Llama-2-13b-hf\", \"architectures\": [\"LlamaForCausalLM\"],"
    " \"bos_token_id\": 1, \"eos_token_id\": 2, \"hidden_act\": \"silu\", \"hidden_size\": 5120,"
    " \"initializer_range\": 0.02, \"intermediate_size\": 13824, \"max_position_embeddings\": 4096,"
    " \"model_type\": \"llama\", \"num_attention_heads\": 40, \"num_hidden_layers\": 40,"
    " \"num_key_value_heads\": 40, \"pretraining_tp\": 1, \"rms_norm_eps\": 1e-05, \"rope_scaling\": null,"
    " \"tie_word_embeddings\": false, \"torch_dtype\": \"float16\", \"use_cache\": true, \"vocab_size\": 32000}";

static const char *MISTRAL =
    "{\"architectures\": [\"MistralForCausalLM\"], \"attention_dropout\": 0.0, \"bos_token_id\": 1,"
    " \"eos_token_id\": 2, \"hidden_act\": \"silu\", \"hidden_size\": 4096, \"initializer_range\": 0.02,"
    " \"intermediate_size\": 14336, \"max_position_embeddings\": 32768, \"model_type\": \"mistral\","
    " \"num_attention_heads\": 32, \"num_hidden_layers\": 32, \"num_key_value_heads\": 8,"
    " \"rms_norm_eps\": 1e-05, \"rope_theta\": 1000000.0, \"sliding_window\": null,"
    " \"tie_word_embeddings\": false, \"torch_dtype\": \"bfloat16\", \"vocab_size\": 32768}";

/* A minimal config plus one extra "key": value fragment. */
static void expect_error(const char *extra, const char *needle)
{
    char text[2048];
    snprintf(text, sizeof text,
             "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 128,"
             " \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 100%s%s}",
             extra[0] ? ", " : "", extra);
    md_config c;
    md_error err;
    md_error_clear(&err);
    int rc = md_hf_config_parse(&c, text, "cfg/config.json", &err);
    CHECK_MSG(rc == MD_ERR, "accepted: %s", extra);
    CHECK_MSG(strstr(err.msg, needle) != NULL, "message for %s lacks '%s': %s", extra, needle, err.msg);
    CHECK_MSG(strstr(err.msg, "cfg/config.json") != NULL, "message lacks the source: %s", err.msg);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); exit(1); }
    fputs(text, f);
    fclose(f);
}

/* Writes DIR/t.safetensors with one 1-element tensor per name, opens it and
 * returns md_hf_config_check_tensors() of a config with n_layers layers. */
static int tensors_vs_config_bias(const char *dir, int n_layers, int qkv_bias, const char *const *names, int n,
                                  md_error *err)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/t.safetensors", dir);
    md_safetensors_writer *w = NULL;
    int64_t shape[1] = {1};
    float one = 1.0f;
    if (md_safetensors_writer_create(&w, path, err) != MD_OK) return -2;
    for (int i = 0; i < n; i++)
        if (md_safetensors_writer_declare(w, names[i], MD_DTYPE_F32, 1, shape, err) != MD_OK) return -2;
    if (md_safetensors_writer_begin(w, err) != MD_OK) return -2;
    for (int i = 0; i < n; i++)
        if (md_safetensors_writer_put(w, &one, sizeof one, err) != MD_OK) return -2;
    if (md_safetensors_writer_finish(w, err) != MD_OK) return -2;
    md_safetensors *st = NULL;
    if (md_safetensors_open_file(&st, path, err) != MD_OK) return -2;
    md_config c;
    memset(&c, 0, sizeof c);
    c.n_layers = n_layers;
    c.qkv_bias = qkv_bias;
    int rc = md_hf_config_check_tensors(&c, st, "ckpt", err);
    md_safetensors_close(st);
    return rc;
}

static int tensors_vs_config(const char *dir, int n_layers, const char *const *names, int n, md_error *err)
{
    return tensors_vs_config_bias(dir, n_layers, 0, names, n, err);
}

/* Layer tensors the config does not mention, or the reverse (item 5). */
static void check_tensors(const char *dir)
{
    md_error err;
    const char *four[] = {"model.embed_tokens.weight", "model.layers.0.mlp.up_proj.weight",
                          "model.layers.1.mlp.up_proj.weight", "model.layers.2.mlp.up_proj.weight",
                          "model.layers.3.mlp.up_proj.weight", "model.norm.weight"};
    CHECK_MSG(tensors_vs_config(dir, 4, four, 6, &err) == MD_OK, "%s", err.msg);
    CHECK(tensors_vs_config(dir, 3, four, 6, &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "model.layers.3.mlp.up_proj.weight") && strstr(err.msg, "num_hidden_layers = 3"),
              "%s", err.msg);
    CHECK(tensors_vs_config(dir, 5, four, 6, &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "layer 4") && strstr(err.msg, "num_hidden_layers = 5"), "%s", err.msg);
    const char *bias[] = {"model.layers.0.self_attn.q_proj.bias", "model.layers.0.self_attn.q_proj.weight"};
    CHECK(tensors_vs_config(dir, 1, bias, 2, &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "q_proj.bias"), "%s", err.msg);
    /* Qwen2 (qkv_bias): q/k/v biases belong to the model, an o_proj bias does not */
    CHECK_MSG(tensors_vs_config_bias(dir, 1, 1, bias, 2, &err) == MD_OK, "%s", err.msg);
    const char *obias[] = {"model.layers.0.self_attn.o_proj.bias", "model.layers.0.self_attn.q_proj.weight"};
    CHECK(tensors_vs_config_bias(dir, 1, 1, obias, 2, &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "o_proj.bias"), "%s", err.msg);
    const char *huge[] = {"model.layers.0.a", "model.layers.99999999999999999999999.a"};
    CHECK(tensors_vs_config(dir, 1, huge, 2, &err) == MD_ERR);
    const char *odd[] = {"model.layers.0.a", "model.layers.x.a", "model.layers.", "model.layers.1"};
    CHECK_MSG(tensors_vs_config(dir, 1, odd, 4, &err) == MD_OK, "%s", err.msg);
}

int main(void)
{
    md_config c;
    md_error err;
    md_error_clear(&err);

    CHECK_MSG(md_hf_config_parse(&c, LLAMA3, "llama3", &err) == MD_OK, "%s", err.msg);
    CHECK(strcmp(c.architecture, "LlamaForCausalLM") == 0 && strcmp(c.model_type, "llama") == 0);
    CHECK(c.d_model == 4096 && c.d_ff == 14336 && c.n_layers == 32 && c.n_heads == 32 && c.n_kv_heads == 8);
    CHECK(c.head_dim == 128 && c.vocab_size == 128256 && c.max_position == 131072);
    CHECK_NEAR(c.rms_eps, 1e-5, 1e-12);
    CHECK_NEAR(c.rope_theta, 500000.0, 0);
    CHECK(c.rope_type == MD_ROPE_LLAMA3);
    CHECK_NEAR(c.rope_factor, 8.0, 0);
    CHECK_NEAR(c.rope_low_freq_factor, 1.0, 0);
    CHECK_NEAR(c.rope_high_freq_factor, 4.0, 0);
    CHECK(c.rope_original_max_position == 8192);
    CHECK(c.tie_word_embeddings == 0 && c.bos_id == 128000 && c.n_eos == 1 && c.eos_ids[0] == 128001);
    CHECK(c.torch_dtype == MD_DTYPE_BF16);

    CHECK_MSG(md_hf_config_parse(&c, LLAMA2, "llama2", &err) == MD_OK, "%s", err.msg);
    CHECK(c.d_model == 5120 && c.d_ff == 13824 && c.n_layers == 40 && c.n_heads == 40 && c.n_kv_heads == 40);
    CHECK(c.head_dim == 128 && c.vocab_size == 32000 && c.max_position == 4096);
    CHECK(c.rope_type == MD_ROPE_DEFAULT);
    CHECK_NEAR(c.rope_theta, 10000.0, 0);
    CHECK(c.torch_dtype == MD_DTYPE_F16 && c.bos_id == 1 && c.eos_ids[0] == 2);

    CHECK_MSG(md_hf_config_parse(&c, MISTRAL, "mistral", &err) == MD_OK, "%s", err.msg);
    CHECK(strcmp(c.architecture, "MistralForCausalLM") == 0 && strcmp(c.model_type, "mistral") == 0);
    CHECK(c.n_kv_heads == 8 && c.vocab_size == 32768 && c.max_position == 32768);
    CHECK_NEAR(c.rope_theta, 1e6, 0);

    /* Defaults as in transformers. */
    CHECK_MSG(md_hf_config_parse(&c, "{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 100,"
                              " \"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"vocab_size\": 10}",
                              "defaults", &err) == MD_OK, "%s", err.msg);
    CHECK(strcmp(c.architecture, "LlamaForCausalLM") == 0);
    CHECK(c.n_kv_heads == 4 && c.head_dim == 16 && c.max_position == 2048 && c.tie_word_embeddings == 0);
    CHECK_NEAR(c.rms_eps, 1e-6, 1e-13);
    CHECK_NEAR(c.rope_theta, 10000.0, 0);
    CHECK(c.bos_id == -1 && c.n_eos == 0 && c.torch_dtype == MD_DTYPE_INVALID);

    /* Linear scaling (both spellings of the type key), eos lists, explicit head_dim. */
    CHECK_MSG(md_hf_config_parse(&c, "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64,"
                              " \"intermediate_size\": 100, \"num_hidden_layers\": 1, \"num_attention_heads\": 4,"
                              " \"head_dim\": 32, \"vocab_size\": 10, \"rope_scaling\": {\"type\": \"linear\","
                              " \"factor\": 2.0}, \"eos_token_id\": [7, 8, 9], \"tie_word_embeddings\": true}",
                              "linear", &err) == MD_OK, "%s", err.msg);
    CHECK(c.rope_type == MD_ROPE_LINEAR && c.head_dim == 32 && c.tie_word_embeddings == 1);
    CHECK_NEAR(c.rope_factor, 2.0, 0);
    CHECK(c.n_eos == 3 && c.eos_ids[0] == 7 && c.eos_ids[2] == 9);

    /* transformers >= 5: rope_parameters with rope_theta inside. */
    CHECK_MSG(md_hf_config_parse(&c, "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64,"
                              " \"intermediate_size\": 100, \"num_hidden_layers\": 1, \"num_attention_heads\": 4,"
                              " \"vocab_size\": 10, \"rope_parameters\": {\"rope_type\": \"llama3\","
                              " \"rope_theta\": 500000.0, \"factor\": 8.0, \"low_freq_factor\": 1.0,"
                              " \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192},"
                              " \"dtype\": \"float32\"}", "v5", &err) == MD_OK, "%s", err.msg);
    CHECK(c.rope_type == MD_ROPE_LLAMA3 && c.rope_original_max_position == 8192 && c.torch_dtype == MD_DTYPE_F32);
    CHECK_NEAR(c.rope_theta, 500000.0, 0);
    CHECK_MSG(md_hf_config_parse(&c, "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64,"
                              " \"intermediate_size\": 100, \"num_hidden_layers\": 1, \"num_attention_heads\": 4,"
                              " \"vocab_size\": 10, \"rope_parameters\": {\"rope_type\": \"default\","
                              " \"rope_theta\": 1000000.0}}", "v5default", &err) == MD_OK, "%s", err.msg);
    CHECK(c.rope_type == MD_ROPE_DEFAULT);
    CHECK_NEAR(c.rope_theta, 1e6, 0);

    /* Unsupported or malformed: the message names the key. */
    expect_error("\"rope_scaling\": {\"type\": \"dynamic\", \"factor\": 2.0}", "rope_scaling.type");
    expect_error("\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}", "yarn");
    expect_error("\"rope_parameters\": {\"rope_type\": \"yarn\", \"rope_theta\": 10000.0}", "rope_parameters");
    expect_error("\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0}", "low_freq_factor");
    expect_error("\"rope_scaling\": {\"rope_type\": \"linear\"}", "rope_scaling.factor");
    expect_error("\"hidden_act\": \"gelu\"", "hidden_act");
    expect_error("\"attention_bias\": true", "attention_bias");
    expect_error("\"mlp_bias\": true", "mlp_bias");
    expect_error("\"sliding_window\": 4096, \"max_position_embeddings\": 32768", "sliding_window");
    expect_error("\"num_key_value_heads\": 3", "num_key_value_heads");
    expect_error("\"num_attention_heads\": 5", "num_attention_heads"); /* repeated key: the last one wins, 64 % 5 != 0 */
    expect_error("\"torch_dtype\": \"int8\"", "torch_dtype");
    expect_error("\"eos_token_id\": \"x\"", "eos_token_id");
    expect_error("\"model_type\": \"qwen2\"", "model_type");
    expect_error("\"rms_norm_eps\": \"small\"", "rms_norm_eps");
    CHECK(md_hf_config_parse(&c, "{\"architectures\": [\"PhiForCausalLM\"]}", "cfg/config.json", &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "architectures") && strstr(err.msg, "PhiForCausalLM"), "%s", err.msg);
    CHECK(md_hf_config_parse(&c, "{\"model_type\": \"llama\", \"intermediate_size\": 1}", "cfg/config.json", &err) ==
          MD_ERR);
    CHECK_MSG(strstr(err.msg, "hidden_size") != NULL, "%s", err.msg);
    CHECK(md_hf_config_parse(&c, "{\"model_type\": \"llama\", \"hidden_size\": 65, \"intermediate_size\": 1,"
                          " \"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"vocab_size\": 2}",
                          "cfg/config.json", &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "hidden_size") && strstr(err.msg, "divisible"), "%s", err.msg);
    CHECK(md_hf_config_parse(&c, "{\"model_type\": ", "cfg/config.json", &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "cfg/config.json") && strstr(err.msg, "JSON"), "%s", err.msg);
    /* Mistral v0.1-style config without sliding_window key defaults to 4096 < 131072. */
    CHECK(md_hf_config_parse(&c, "{\"model_type\": \"mistral\", \"hidden_size\": 64, \"intermediate_size\": 1,"
                          " \"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"vocab_size\": 2}",
                          "cfg/config.json", &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "sliding_window") != NULL, "%s", err.msg);

    /* Numbers out of their type's range (issue 14 item 5). */
    expect_error("\"rms_norm_eps\": 1e-50", "rms_norm_eps");       /* was stored as float 0 */
    expect_error("\"rms_norm_eps\": 1e300", "rms_norm_eps");       /* was float infinity */
    expect_error("\"rms_norm_eps\": 0", "rms_norm_eps");
    expect_error("\"rms_norm_eps\": -1e-5", "rms_norm_eps");
    expect_error("\"rope_theta\": 1e300", "rope_theta");
    expect_error("\"rope_theta\": 0.5", "rope_theta");
    expect_error("\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": -1}", "rope_parameters.rope_theta");
    expect_error("\"rope_parameters\": {\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0,"
                 " \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 1e30}",
                 "rope_parameters.original_max_position_embeddings");
    expect_error("\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0,"
                 " \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192.5}",
                 "original_max_position_embeddings");
    expect_error("\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 1e308, \"low_freq_factor\": 1.0,"
                 " \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}", "rope_scaling.factor");
    expect_error("\"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": 0.5}", "rope_scaling.factor");
    expect_error("\"sliding_window\": 99999999999", "sliding_window");
    expect_error("\"sliding_window\": -5", "sliding_window");
    expect_error("\"max_position_embeddings\": 4294967296", "max_position_embeddings");
    expect_error("\"num_hidden_layers\": 1000000", "num_hidden_layers");
    expect_error("\"vocab_size\": 2000000000", "vocab_size");
    expect_error("\"head_dim\": 1048576", "head_dim");
    expect_error("\"num_attention_heads\": 4096, \"head_dim\": 65536", "head_dim");
    /* The smallest accepted eps writes back as a config the parser accepts. */
    CHECK_MSG(md_hf_config_parse(&c, "{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 100,"
                                 " \"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"vocab_size\": 10,"
                                 " \"rms_norm_eps\": 1.2e-38}", "tiny", &err) == MD_OK, "%s", err.msg);
    CHECK(c.rms_eps > 0 && isfinite(c.rms_eps));

    /* Folder: BOS/EOS from generation_config.json; write + reload round trip. */
    char dir[1024], path[1200];
    snprintf(dir, sizeof dir, "%s/test_hf_config.%d", tu_tmpdir(), (int)getpid());
    mkdir(dir, 0777);
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_file(path, "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 100,"
                     " \"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"vocab_size\": 10}");
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    write_file(path, "{\"bos_token_id\": 5, \"eos_token_id\": [6, 7], \"do_sample\": true}");
    CHECK_MSG(md_hf_config_load_dir(&c, dir, &err) == MD_OK, "%s", err.msg);
    CHECK(c.bos_id == 5 && c.n_eos == 2 && c.eos_ids[0] == 6 && c.eos_ids[1] == 7);

    md_config a;
    CHECK(md_hf_config_parse(&a, LLAMA3, "llama3", &err) == MD_OK);
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK_MSG(md_hf_config_write(&a, path, &err) == MD_OK, "%s", err.msg);
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    CHECK_MSG(md_hf_config_write_generation(&a, path, &err) == MD_OK, "%s", err.msg);
    CHECK_MSG(md_hf_config_load_dir(&c, dir, &err) == MD_OK, "%s", err.msg);
    CHECK(memcmp(&a, &c, sizeof a) == 0 || (c.d_model == a.d_model && c.rope_type == a.rope_type &&
                                            c.rms_eps == a.rms_eps && c.rope_theta == a.rope_theta &&
                                            c.rope_factor == a.rope_factor && c.bos_id == a.bos_id &&
                                            c.eos_ids[0] == a.eos_ids[0] && c.n_kv_heads == a.n_kv_heads &&
                                            c.torch_dtype == a.torch_dtype && c.head_dim == a.head_dim));
    CHECK(md_hf_config_parse(&a, MISTRAL, "mistral", &err) == MD_OK);
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK(md_hf_config_write(&a, path, &err) == MD_OK);
    CHECK_MSG(md_hf_config_load_dir(&c, dir, &err) == MD_OK, "%s", err.msg);
    CHECK(strcmp(c.architecture, "MistralForCausalLM") == 0 && c.max_position == 32768 && c.rope_theta == 1e6);

    md_config tiny;
    CHECK(md_hf_config_parse(&tiny, "{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 100,"
                             " \"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"vocab_size\": 10,"
                             " \"rms_norm_eps\": 1.2e-38}", "tiny", &err) == MD_OK);
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK_MSG(md_hf_config_write(&tiny, path, &err) == MD_OK, "%s", err.msg);
    CHECK_MSG(md_hf_config_load_dir(&c, dir, &err) == MD_OK, "round trip of eps 1.2e-38: %s", err.msg);
    CHECK(c.rms_eps == tiny.rms_eps);

    /* Gemma-2's query_pre_attn_scalar far past a long long writes back as a real (fuzz_config: it was cast) */
    CHECK(md_hf_config_parse(&tiny, "{\"architectures\": [\"Gemma2ForCausalLM\"], \"hidden_size\": 64, "
                             "\"intermediate_size\": 72, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
                             "\"vocab_size\": 300, \"query_pre_attn_scalar\": 1e30}", "big", &err) == MD_OK);
    CHECK_MSG(md_hf_config_write(&tiny, path, &err) == MD_OK, "%s", err.msg);
    CHECK_MSG(md_hf_config_load_dir(&c, dir, &err) == MD_OK, "round trip of query_pre_attn_scalar 1e30: %s", err.msg);
    CHECK(c.query_pre_attn_scalar == tiny.query_pre_attn_scalar);

    check_tensors(dir);

    CHECK(md_hf_config_load_dir(&c, "/nonexistent-model-dir", &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "/nonexistent-model-dir/config.json") != NULL, "%s", err.msg);

    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (tu_failures == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_MAIN_END();
}
