/* test_make_model.c — the random-weights generator (deterministic per seed
 * and tensor name, piecewise == whole, N(0, 0.02²)) and the family presets. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mechdiff/make_model.h"
#include "testutil.h"

int main(void)
{
    enum { N = 20001 };
    static float a[N], b[N], c[N];
    md_normal_rng r;
    md_normal_rng_init(&r, 42, "model.layers.0.mlp.up_proj.weight");
    md_normal_rng_fill(&r, a, N, 0.02f);
    /* Same stream filled in odd-sized pieces. */
    md_normal_rng_init(&r, 42, "model.layers.0.mlp.up_proj.weight");
    size_t done = 0, step = 1;
    while (done < N) {
        size_t k = step < N - done ? step : N - done;
        md_normal_rng_fill(&r, b + done, k, 0.02f);
        done += k;
        step = step * 3 + 1;
    }
    CHECK(memcmp(a, b, sizeof a) == 0);
    double sum = 0, sq = 0;
    for (int i = 0; i < N; i++) sum += a[i];
    double mean = sum / N;
    for (int i = 0; i < N; i++) sq += (a[i] - mean) * (a[i] - mean);
    CHECK_NEAR(mean, 0.0, 1e-3);
    CHECK_NEAR(sqrt(sq / N), 0.02, 5e-4);
    /* Other seed or other tensor name: a different stream. */
    md_normal_rng_init(&r, 43, "model.layers.0.mlp.up_proj.weight");
    md_normal_rng_fill(&r, c, N, 0.02f);
    CHECK(memcmp(a, c, sizeof a) != 0);
    md_normal_rng_init(&r, 42, "model.layers.1.mlp.up_proj.weight");
    md_normal_rng_fill(&r, c, N, 0.02f);
    CHECK(memcmp(a, c, sizeof a) != 0);

    md_config cfg;
    md_error err;
    md_error_clear(&err);
    CHECK(md_make_model_config(&cfg, "llama3-8b", &err) == MD_OK);
    CHECK(cfg.d_model == 4096 && cfg.d_ff == 14336 && cfg.n_heads == 32 && cfg.n_kv_heads == 8 &&
          cfg.vocab_size == 128256 && cfg.rope_type == MD_ROPE_LLAMA3 && cfg.rope_factor == 8.0 &&
          cfg.rope_low_freq_factor == 1.0 && cfg.rope_high_freq_factor == 4.0 &&
          cfg.rope_original_max_position == 8192 && cfg.rope_theta == 500000.0 && !cfg.tie_word_embeddings);
    CHECK_NEAR(cfg.rms_eps, 1e-5, 1e-12);
    CHECK(md_make_model_config(&cfg, "llama2-13b", &err) == MD_OK);
    CHECK(cfg.d_model == 5120 && cfg.d_ff == 13824 && cfg.n_heads == 40 && cfg.n_kv_heads == 40 &&
          cfg.vocab_size == 32000 && cfg.rope_theta == 10000.0 && cfg.rope_type == MD_ROPE_DEFAULT);
    CHECK(md_make_model_config(&cfg, "mistral-7b", &err) == MD_OK);
    CHECK(cfg.d_model == 4096 && cfg.d_ff == 14336 && cfg.n_heads == 32 && cfg.n_kv_heads == 8 &&
          cfg.vocab_size == 32768 && cfg.rope_theta == 1e6 && strcmp(cfg.architecture, "MistralForCausalLM") == 0);
    CHECK(md_make_model_config(&cfg, "gpt2", &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "gpt2") != NULL, "%s", err.msg);
    int n = 0;
    while (md_make_model_families[n]) n++;
    CHECK(n == 7);
    /* Every preset's config.json reads back as the same architecture (the
     * writer's family keys, the parser's defaults), and transformers' names
     * for it: pairs with itself, not with another family. */
    md_config first;
    for (int i = 0; i < n; i++) {
        md_config back;
        char why[256] = "", path[] = "/tmp/md_test_make_model_XXXXXX";
        CHECK(md_make_model_config(&cfg, md_make_model_families[i], &err) == MD_OK);
        int fd = mkstemp(path);
        CHECK(fd >= 0);
        if (fd >= 0) close(fd);
        CHECK_MSG(md_hf_config_write(&cfg, path, &err) == MD_OK, "%s", err.msg);
        FILE *f = fopen(path, "rb");
        char text[8192] = "";
        size_t len = f ? fread(text, 1, sizeof text - 1, f) : 0;
        text[len] = '\0';
        if (f) fclose(f);
        remove(path);
        CHECK_MSG(md_hf_config_parse(&back, text, md_make_model_families[i], &err) == MD_OK, "%s: %s",
                  md_make_model_families[i], err.msg);
        CHECK_MSG(md_hf_config_check_pair(&cfg, &back, why, sizeof why) == MD_OK, "%s: %s", md_make_model_families[i],
                  why);
        CHECK(back.tie_word_embeddings == cfg.tie_word_embeddings && back.bos_id == cfg.bos_id);
        if (i == 0) first = back;
        else CHECK(md_hf_config_check_pair(&first, &back, why, sizeof why) == MD_ERR);
    }
    CHECK(md_make_model_config(&cfg, "gemma2-9b", &err) == MD_OK);
    CHECK(cfg.head_dim == 256 && cfg.norm_plus_one && cfg.layer_sliding[0] && !cfg.layer_sliding[1] &&
          cfg.sliding_window == 4096 && cfg.final_softcap == 30.0f && cfg.tie_word_embeddings);

    /* Bad options fail before writing anything. */
    md_make_model_opts o = {.like = "llama3-8b", .n_layers = 0, .seed = 1, .dtype = MD_DTYPE_BF16, .vocab = 0,
                            .out_dir = "/nonexistent-dir/never"};
    CHECK(md_make_model(&o, &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "--layers") != NULL, "%s", err.msg);
    TEST_MAIN_END();
}
