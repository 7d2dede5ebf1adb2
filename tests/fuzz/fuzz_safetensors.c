/* fuzz_safetensors.c — the safetensors header parser and the finite-weights
 * check on arbitrary files: every input is either refused with a message or
 * opened, and then every tensor's data lies inside the mapping (read in
 * full by md_safetensors_check_finite) and its size matches its shape. */
#include "fuzz_common.h"
#include "mechdiff/dtype.h"
#include "mechdiff/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("model.safetensors", data, size);
    md_safetensors *st = NULL;
    md_error err;
    md_error_clear(&err);
    if (md_safetensors_open_file(&st, path, &err) != MD_OK) {
        if (!err.msg[0]) abort(); /* every refusal says why */
        return 0;
    }
    for (size_t i = 0; i < md_safetensors_count(st); i++) {
        const md_tensor_info *t = md_safetensors_at(st, i);
        if (md_safetensors_find(st, t->name) != t) abort();
        if (md_tensor_numel(t) * md_dtype_size(t->dtype) != t->nbytes) abort();
        md_safetensors_check_finite(t, "fuzz", &err);
    }
    md_safetensors_close(st);
    return 0;
}
