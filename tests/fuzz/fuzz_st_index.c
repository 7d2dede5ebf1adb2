/* fuzz_st_index.c — model.safetensors.index.json of a sharded checkpoint:
 * the input is the index, beside the four shards of the golden sharded
 * Llama-3 (tests/golden/models/llama3_sharded_f32, copied once). Any index
 * is refused with a message naming it, or opened; an opened checkpoint
 * maps every tensor of the weight map from the shard the map names, each
 * tensor's bytes inside its shard's mapping. */
#include "fuzz_common.h"
#include "mechdiff/dtype.h"
#include "mechdiff/safetensors.h"

#define GOLDEN "tests/golden/models/llama3_sharded_f32/"

static void copy_shards(void)
{
    static int done;
    if (done) return;
    char rel[256], name[64];
    for (int k = 1; k <= 4; k++) {
        snprintf(name, sizeof name, "model-%05d-of-00004.safetensors", k);
        snprintf(rel, sizeof rel, GOLDEN "%s", name);
        fuzz_copy_repo_file(rel, name);
    }
    done = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    copy_shards();
    fuzz_write("model.safetensors.index.json", data, size);
    md_safetensors *st = NULL;
    md_error err;
    md_error_clear(&err);
    if (md_safetensors_open_dir(&st, fuzz_dir(), &err) != MD_OK) {
        if (!err.msg[0] || st) abort(); /* every refusal says why */
        if (!strstr(err.msg, "model.safetensors.index.json")) {
            fprintf(stderr, "refusal names no file: %s\n", err.msg);
            abort();
        }
        return 0;
    }
    if (md_safetensors_file_count(st) < 1 || md_safetensors_file_count(st) > 4) abort();
    for (size_t i = 0; i < md_safetensors_count(st); i++) {
        const md_tensor_info *t = md_safetensors_at(st, i);
        if (md_safetensors_find(st, t->name) != t) abort();
        if (t->file_index < 0 || (size_t)t->file_index >= md_safetensors_file_count(st)) abort();
        if (md_tensor_numel(t) * md_dtype_size(t->dtype) != t->nbytes) abort();
        if (md_safetensors_check_finite(t, "fuzz", &err) != MD_OK) abort(); /* the golden weights are finite */
    }
    md_safetensors_close(st);
    return 0;
}
