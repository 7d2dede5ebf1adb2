/* fuzz_model.c — loading a model folder (md_model_load: the tensor names a
 * family needs, their shapes and dtypes against config.json, tied heads,
 * finite weights) on hostile safetensors headers. The input is the header's
 * JSON; the harness writes model.safetensors as its 8-byte length, the
 * input and the data section of the golden Qwen2 (bf16) checkpoint, beside
 * that checkpoint's config.json (both copied once). Any header is refused
 * with a message, or the model loads and frees. */
#include "fuzz_common.h"
#include "mechdiff/model.h"

#define GOLDEN MECHDIFF_SOURCE_DIR "/tests/golden/models/qwen2_bf16/"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *body; /* the golden file's data section (kept for the process's lifetime) */
    static size_t body_len;
    if (!body) {
        FILE *f = fopen(GOLDEN "model.safetensors", "rb");
        uint64_t hl = 0;
        if (!f || fread(&hl, 8, 1, f) != 1 || fseek(f, 0, SEEK_END) || fseek(f, 8 + (long)hl, SEEK_SET)) abort();
        body = malloc(1 << 20);
        body_len = body ? fread(body, 1, 1 << 20, f) : 0;
        fclose(f);
        fuzz_copy_repo_file("tests/golden/models/qwen2_bf16/config.json", "config.json");
    }
    uint64_t hl = size;
    uint8_t *file = malloc(8 + size + body_len);
    if (!file) abort();
    memcpy(file, &hl, 8);
    memcpy(file + 8, data, size);
    memcpy(file + 8 + size, body, body_len);
    fuzz_write("model.safetensors", file, 8 + size + body_len);
    free(file);
    md_model_options opt;
    md_model_options_init(&opt);
    opt.skip_tokenizer = 1;
    opt.fp32_cache_bytes = 64 << 20;
    md_model *m = NULL;
    md_error err;
    md_error_clear(&err);
    if (md_model_load(&m, fuzz_dir(), &opt, &err) == MD_OK) md_model_free(m);
    else if (!err.msg[0] || m) abort();
    return 0;
}
