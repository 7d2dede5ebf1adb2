/* test_chat.c — chat-template rendering per family, detection from Jinja
 * snippets of the real templates, names, and format-string errors. */
#include <stdlib.h>
#include <string.h>

#include "mechdiff/chat.h"
#include "testutil.h"

static void check_render(md_chat_kind kind, const char *fmt, const char *msg, const char *want)
{
    char *out = NULL;
    md_error err = {{0}};
    int rc = md_chat_render(kind, fmt, msg, &out, &err);
    CHECK_MSG(rc == MD_OK && out && strcmp(out, want) == 0, "%s: got \"%s\" want \"%s\" (%s)", md_chat_name(kind),
              out ? out : "(null)", want, err.msg);
    free(out);
}

static void check_format_error(const char *fmt, const char *needle)
{
    char *out = NULL;
    md_error err = {{0}};
    CHECK(md_chat_render(MD_CHAT_FORMAT, fmt, "x", &out, &err) == MD_ERR && out == NULL);
    CHECK_MSG(strstr(err.msg, needle) != NULL, "error \"%s\" should contain \"%s\"", err.msg, needle);
}

/* Abridged from the published tokenizer_config.json templates. */
static const char LLAMA3_JINJA[] =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
static const char LLAMA2_JINJA[] =
    "{% if messages[0]['role'] == 'system' %}{% set system_message = '<<SYS>>\\n' + messages[0]['content'] | trim "
    "+ '\\n<</SYS>>\\n\\n' %}{% endif %}{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% endif %}{% endfor %}";
static const char MISTRAL01_JINJA[] =
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token}}{% endif %}{% endfor %}";
static const char MISTRAL03_JINJA[] =
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] %}{%- endif %}"
    "{{- bos_token }}{%- for message in loop_messages %}{%- if message['role'] == 'user' %}"
    "{{- '[INST] ' + message['content'] + '[/INST]' }}{%- elif message['role'] == 'assistant' %}"
    "{{- ' ' + message['content']|trim + eos_token}}{%- endif %}{%- endfor %}";
static const char TULU_JINJA[] =
    "{% for message in messages %}{% if message['role'] == 'user' %}{{ '<|user|>\\n' + message['content'] + '\\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ '<|assistant|>\\n' + message['content'] + eos_token + '\\n' }}"
    "{% endif %}{% if loop.last and add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}{% endfor %}";

int main(void)
{
    const char *q = "Is the sky blue?";
    check_render(MD_CHAT_LLAMA3, NULL, q,
                 "<|start_header_id|>user<|end_header_id|>\n\nIs the sky blue?<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n");
    check_render(MD_CHAT_LLAMA3, NULL, "  padded \n",
                 "<|start_header_id|>user<|end_header_id|>\n\npadded<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n");
    check_render(MD_CHAT_LLAMA2, NULL, q, "[INST] Is the sky blue? [/INST]");
    check_render(MD_CHAT_LLAMA2, NULL, " x ", "[INST] x [/INST]");
    check_render(MD_CHAT_MISTRAL, NULL, q, "[INST] Is the sky blue?[/INST]");
    check_render(MD_CHAT_TULU, NULL, q, "<|user|>\nIs the sky blue?\n<|assistant|>\n");
    check_render(MD_CHAT_TULU, NULL, " keep ", "<|user|>\n keep \n<|assistant|>\n");
    check_render(MD_CHAT_BASE, NULL, q, "User: Is the sky blue?\nAssistant:");
    check_render(MD_CHAT_FORMAT, "Q: {instruction}\nA:", q, "Q: Is the sky blue?\nA:");
    check_render(MD_CHAT_FORMAT, "{instruction}", "", "");
    check_render(MD_CHAT_BASE, NULL, "", "User: \nAssistant:");

    check_format_error("Q: A:", "{instruction}");
    check_format_error("{instruction} and {instruction}", "more than once");
    check_format_error(NULL, "{instruction}");
    char *out = NULL;
    md_error err = {{0}};
    CHECK(md_chat_render(MD_CHAT_UNKNOWN, NULL, "x", &out, &err) == MD_ERR && strstr(err.msg, "unknown"));
    CHECK(md_chat_render(MD_CHAT_BASE, NULL, NULL, &out, &err) == MD_ERR);

    CHECK(md_chat_detect(LLAMA3_JINJA) == MD_CHAT_LLAMA3);
    CHECK(md_chat_detect(LLAMA2_JINJA) == MD_CHAT_LLAMA2);
    CHECK(md_chat_detect(MISTRAL01_JINJA) == MD_CHAT_LLAMA2); /* renders "[INST] x [/INST]" like Llama-2 */
    CHECK(md_chat_detect(MISTRAL03_JINJA) == MD_CHAT_MISTRAL);
    CHECK(md_chat_detect(TULU_JINJA) == MD_CHAT_TULU);
    CHECK(md_chat_detect("{{ messages }}") == MD_CHAT_UNKNOWN);
    CHECK(md_chat_detect("<|user|> only") == MD_CHAT_UNKNOWN);
    CHECK(md_chat_detect(NULL) == MD_CHAT_UNKNOWN);

    const char *names[] = {"llama3", "llama2", "mistral", "tulu", "base"};
    md_chat_kind kinds[] = {MD_CHAT_LLAMA3, MD_CHAT_LLAMA2, MD_CHAT_MISTRAL, MD_CHAT_TULU, MD_CHAT_BASE};
    for (int i = 0; i < 5; i++) {
        CHECK(md_chat_parse_name(names[i]) == kinds[i]);
        CHECK(strcmp(md_chat_name(kinds[i]), names[i]) == 0);
    }
    CHECK(md_chat_parse_name("chatml") == MD_CHAT_UNKNOWN);
    CHECK(md_chat_parse_name(NULL) == MD_CHAT_UNKNOWN);
    CHECK(strcmp(md_chat_name(MD_CHAT_FORMAT), "format") == 0);
    CHECK(strcmp(md_chat_name(MD_CHAT_UNKNOWN), "unknown") == 0);
    TEST_MAIN_END();
}
