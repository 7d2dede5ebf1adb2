/* fuzz_config.c — config.json parsing: any text is refused with a message
 * or parsed into a config whose numbers are in range; a parsed config
 * written back with md_hf_config_write parses again to the same widths. */
#include <math.h>

#include "fuzz_common.h"
#include "mechdiff/hf_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    md_config c, back;
    md_error err;
    md_error_clear(&err);
    if (md_hf_config_parse(&c, text, "fuzz/config.json", &err) != MD_OK) {
        if (!err.msg[0]) abort();
        free(text);
        return 0;
    }
    free(text);
    if (!(c.rms_eps > 0) || !isfinite(c.rms_eps) || !isfinite(c.rope_theta) || c.d_model < 1 || c.n_layers < 1 ||
        c.head_dim < 2 || c.n_heads % c.n_kv_heads != 0)
        abort();
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", fuzz_dir());
    if (md_hf_config_write(&c, path, &err) != MD_OK) abort();
    if (md_hf_config_load_dir(&back, fuzz_dir(), &err) != MD_OK) {
        fprintf(stderr, "written config does not parse back: %s\n", err.msg);
        abort();
    }
    if (back.d_model != c.d_model || back.n_layers != c.n_layers || back.rms_eps != c.rms_eps ||
        back.rope_type != c.rope_type || back.vocab_size != c.vocab_size)
        abort();
    return 0;
}
