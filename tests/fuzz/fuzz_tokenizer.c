/* fuzz_tokenizer.c — tokenizer.json loading, then encode and decode: the
 * input is a tokenizer.json, a NUL byte, and a text to encode (the text may
 * hold more NULs). A loaded tokenizer encodes the text to ids inside its
 * vocabulary, and decodes them (and arbitrary ids) without crashing. */
#include "fuzz_common.h"
#include "mechdiff/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t json_len = nul ? (size_t)(nul - data) : size;
    const char *text = nul ? (const char *)nul + 1 : "";
    size_t text_len = nul ? size - json_len - 1 : 0;
    fuzz_write("tokenizer.json", data, json_len);
    md_tokenizer *tok = NULL;
    md_error err;
    md_error_clear(&err);
    if (md_tokenizer_load(&tok, fuzz_dir(), &err) != MD_OK) {
        if (!err.msg[0]) abort();
        return 0;
    }
    int *ids = NULL;
    size_t n = 0;
    if (md_tokenizer_encode_n(tok, text, text_len, 1, &ids, &n, &err) == MD_OK) {
        int v = md_tokenizer_vocab_size(tok);
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= v) abort();
        char *back = NULL;
        size_t blen = 0;
        if (md_tokenizer_decode_n(tok, ids, n, 0, &back, &blen, &err) == MD_OK) free(back);
    }
    free(ids);
    int odd[4] = {0, -1, 1 << 30, md_tokenizer_vocab_size(tok) - 1};
    char *s = NULL;
    if (md_tokenizer_decode(tok, odd, 4, 1, &s, &err) == MD_OK) free(s);
    md_tokenizer_free(tok);
    return 0;
}
