/* fuzz_chat_template.c — the Jinja interpreter on hostile chat templates:
 * the input is a template, parsed and, when it parses, rendered over a
 * fixed conversation (system, user, assistant, user; bos/eos tokens;
 * add_generation_prompt) as md_chat_render_jinja does. Either outcome is
 * fine; a failure must come with a message, and nothing may crash or leak. */
#include "fuzz_common.h"
#include "mechdiff/chat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *src = malloc(size + 1);
    if (!src) abort();
    memcpy(src, data, size);
    src[size] = '\0'; /* md_chat_render_jinja takes a C string: a NUL ends the template */
    md_chat_message msgs[] = {{"system", "Be brief."}, {"user", "  Hi  "}, {"assistant", "<think>x</think>Hello"},
                              {"user", "2+2?"}};
    md_chat_opts o = {"<s>", "</s>", 1, 1741944413};
    char *out = NULL;
    size_t len = 0;
    md_error err;
    md_error_clear(&err);
    if (md_chat_render_jinja(src, "fuzz.jinja", msgs, 4, &o, &out, &len, &err) == MD_OK) {
        if (!out || strlen(out) > len) abort();
        free(out);
    } else if (!err.msg[0] || out) {
        abort();
    }
    free(src);
    return 0;
}
