/* test_make_model_threads.c — make-model's parallel writer: the same
 * checkpoint bytes for 1, 3 and 8 generator threads (a small architecture
 * with a two-chunk embedding and 6 layers), each tensor's values those of
 * its own stream (md_normal_rng), norm gains 1.0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mechdiff/dtype.h"
#include "mechdiff/make_model.h"
#include "mechdiff/safetensors.h"
#include "testutil.h"

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (f && fseek(f, 0, SEEK_END) == 0) {
        long len = ftell(f);
        rewind(f);
        buf = len > 0 ? malloc((size_t)len) : NULL;
        if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
            free(buf);
            buf = NULL;
        }
        *n = buf ? (size_t)len : 0;
    }
    if (f) fclose(f);
    return buf;
}

/* The first k values of tensor `name` equal its stream's, rounded to bf16. */
static int matches_stream(const md_safetensors *st, const char *name, uint64_t seed, size_t k)
{
    const md_tensor_info *t = md_safetensors_find(st, name);
    if (!t || t->dtype != MD_DTYPE_BF16) return 0;
    float *want = malloc(k * sizeof(float));
    md_normal_rng r;
    md_normal_rng_init(&r, seed, name);
    md_normal_rng_fill(&r, want, k, 0.02f);
    int ok = 1;
    for (size_t i = 0; i < k; i++) ok &= ((const uint16_t *)t->data)[i] == md_f32_to_bf16(want[i]);
    free(want);
    return ok;
}

int main(void)
{
    md_config cfg;
    md_error err = {0};
    CHECK(md_make_model_config(&cfg, "llama3-8b", &err) == MD_OK);
    cfg.d_model = 96, cfg.d_ff = 160, cfg.n_heads = 3, cfg.n_kv_heads = 1, cfg.head_dim = 32;
    const int threads[3] = {1, 3, 8};
    char dir[3][512], path[2048];
    char *bytes[3] = {0};
    size_t len[3] = {0};
    for (int i = 0; i < 3; i++) {
        snprintf(dir[i], sizeof dir[i], "%s/test_make_model_threads.%ld.%d", tu_tmpdir(), (long)getpid(), i);
        /* vocab 12000 x 96 = 1.15M values: the embedding spans two generation chunks */
        md_make_model_opts o = {.like = "llama3-8b", .n_layers = 6, .seed = 5, .dtype = MD_DTYPE_BF16,
                                .vocab = 12000, .out_dir = dir[i], .config = &cfg, .threads = threads[i]};
        CHECK_MSG(md_make_model(&o, &err) == MD_OK, "%s", err.msg);
        snprintf(path, sizeof path, "%s/model.safetensors", dir[i]);
        bytes[i] = slurp(path, &len[i]);
        CHECK(bytes[i] != NULL && len[i] > 2 * 12000 * 96 * 2);
    }
    for (int i = 1; i < 3; i++)
        CHECK_MSG(bytes[0] && bytes[i] && len[i] == len[0] && memcmp(bytes[0], bytes[i], len[0]) == 0,
                  "threads %d and %d wrote different files", threads[0], threads[i]);
    md_safetensors *st = NULL;
    CHECK(md_safetensors_open_dir(&st, dir[1], &err) == MD_OK);
    if (st) {
        CHECK(md_safetensors_count(st) == 3 + 9 * 6);
        CHECK(matches_stream(st, "model.embed_tokens.weight", 5, (size_t)12000 * 96));
        CHECK(matches_stream(st, "model.layers.5.mlp.down_proj.weight", 5, (size_t)96 * 160));
        CHECK(matches_stream(st, "lm_head.weight", 5, 1000));
        const md_tensor_info *g = md_safetensors_find(st, "model.layers.3.input_layernorm.weight");
        CHECK(g && ((const uint16_t *)g->data)[0] == 0x3f80 && ((const uint16_t *)g->data)[95] == 0x3f80);
        md_safetensors_close(st);
    }
    for (int i = 0; i < 3; i++) {
        free(bytes[i]);
        const char *files[3] = {"config.json", "generation_config.json", "model.safetensors"};
        for (int f = 0; f < 3; f++) {
            snprintf(path, sizeof path, "%s/%s", dir[i], files[f]);
            remove(path);
        }
        rmdir(dir[i]);
    }
    TEST_MAIN_END();
}
