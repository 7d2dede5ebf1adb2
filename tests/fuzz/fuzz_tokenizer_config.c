/* fuzz_tokenizer_config.c — tokenizer_config.json (special tokens,
 * add_bos_token, the chat template as a string or a list of named ones):
 * the input is the file, beside a fixed tokenizer.json (the golden
 * byte-level one, copied once). Any file is refused with a message naming
 * it, or loads; a loaded tokenizer's BOS/EOS ids are inside the vocabulary,
 * and its chat template (if any) renders a user turn to ids inside the
 * vocabulary or is refused with a message, as `mechdiff validate` does for
 * a refusal job. */
#include "fuzz_common.h"
#include "mechdiff/chat.h"
#include "mechdiff/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int copied;
    if (!copied) {
        fuzz_copy_repo_file("tests/golden/tokenizers/bytelevel/tokenizer.json", "tokenizer.json");
        setenv("SOURCE_DATE_EPOCH", "1741944413", 1); /* strftime_now: the same text every run */
        copied = 1;
    }
    fuzz_write("tokenizer_config.json", data, size);
    md_tokenizer *tok = NULL;
    md_error err;
    md_error_clear(&err);
    if (md_tokenizer_load(&tok, fuzz_dir(), &err) != MD_OK) {
        if (!err.msg[0] || tok || !strstr(err.msg, "tokenizer_config.json")) abort(); /* names the file */
        return 0;
    }
    int v = md_tokenizer_vocab_size(tok);
    if (md_tokenizer_bos_id(tok) >= v || md_tokenizer_eos_id(tok) >= v) abort();
    const char *jt = md_tokenizer_chat_template(tok);
    if (jt) {
        int *ids = NULL;
        size_t n = 0;
        md_error_clear(&err);
        if (md_chat_encode(tok, md_chat_detect(jt), NULL, "Is the sky blue?", &ids, &n, &err) == MD_OK) {
            for (size_t i = 0; i < n; i++)
                if (ids[i] < 0 || ids[i] >= v) abort();
        } else if (!err.msg[0]) {
            abort();
        }
        free(ids);
    }
    md_tokenizer_free(tok);
    return 0;
}
