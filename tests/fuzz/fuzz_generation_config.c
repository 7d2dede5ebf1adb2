/* fuzz_generation_config.c — generation_config.json, read for the BOS/EOS
 * ids when config.json lacks them: the input is the file, beside a fixed
 * config.json without token ids (the organism's, ids removed). Any file is
 * refused with a message naming it, or gives non-negative ids. */
#include "fuzz_common.h"
#include "mechdiff/hf_config.h"

static const char CONFIG[] =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"head_dim\": 32,"
    " \"hidden_size\": 128, \"intermediate_size\": 384, \"max_position_embeddings\": 512,"
    " \"num_attention_heads\": 4, \"num_hidden_layers\": 4, \"num_key_value_heads\": 2,"
    " \"rms_norm_eps\": 1e-05, \"rope_theta\": 500000.0, \"tie_word_embeddings\": false,"
    " \"torch_dtype\": \"bfloat16\", \"vocab_size\": 7310}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int config_written;
    if (!config_written) {
        fuzz_write("config.json", (const uint8_t *)CONFIG, sizeof CONFIG - 1);
        config_written = 1;
    }
    fuzz_write("generation_config.json", data, size);
    md_config c;
    md_error err;
    md_error_clear(&err);
    if (md_hf_config_load_dir(&c, fuzz_dir(), &err) != MD_OK) {
        if (!err.msg[0] || !strstr(err.msg, "generation_config.json")) abort(); /* names the file */
        return 0;
    }
    if (c.d_model != 128 || c.n_eos < 0 || c.n_eos > MD_MAX_EOS || c.bos_id < -1) abort();
    for (int i = 0; i < c.n_eos; i++)
        if (c.eos_ids[i] < 0) abort();
    return 0;
}
