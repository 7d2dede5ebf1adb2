/* chat.c — built-in chat-template renderers (see include/mechdiff/chat.h).
 *
 * Exact texts for one user turn plus the generation prompt (never BOS):
 *   LLAMA3  "<|start_header_id|>user<|end_header_id|>\n\n" + trim(msg) +
 *           "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
 *           (the Llama-3 template applies `| trim` to the content)
 *   LLAMA2  "[INST] " + strip(msg) + " [/INST]"
 *           (the Llama-2 template uses content.strip(); Mistral v0.1/v0.2
 *           templates render the same text without stripping)
 *   MISTRAL "[INST] " + msg + "[/INST]"   (Mistral v0.3 template)
 *   TULU    "<|user|>\n" + msg + "\n<|assistant|>\n"
 *   BASE    "User: " + msg + "\nAssistant:"
 *   FORMAT  fmt with its single "{instruction}" replaced by msg
 * trim/strip remove leading and trailing ASCII whitespace. */
#include "mechdiff/chat.h"

#include <stdlib.h>
#include <string.h>

static const char PLACEHOLDER[] = "{instruction}";

md_chat_kind md_chat_detect(const char *jinja)
{
    if (!jinja) return MD_CHAT_UNKNOWN;
    if (strstr(jinja, "<|start_header_id|>")) return MD_CHAT_LLAMA3;
    if (strstr(jinja, "<|user|>") && strstr(jinja, "<|assistant|>")) return MD_CHAT_TULU;
    if (strstr(jinja, "[INST]")) {
        if (strstr(jinja, "<<SYS>>") || strstr(jinja, ".strip()") || strstr(jinja, "' [/INST]'"))
            return MD_CHAT_LLAMA2;
        return MD_CHAT_MISTRAL;
    }
    return MD_CHAT_UNKNOWN;
}

static const struct {
    md_chat_kind kind;
    const char *name;
} NAMES[] = {
    {MD_CHAT_LLAMA3, "llama3"}, {MD_CHAT_LLAMA2, "llama2"}, {MD_CHAT_MISTRAL, "mistral"},
    {MD_CHAT_TULU, "tulu"},     {MD_CHAT_BASE, "base"},     {MD_CHAT_FORMAT, "format"},
};

md_chat_kind md_chat_parse_name(const char *name)
{
    if (!name) return MD_CHAT_UNKNOWN;
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (NAMES[i].kind != MD_CHAT_FORMAT && strcmp(name, NAMES[i].name) == 0) return NAMES[i].kind;
    return MD_CHAT_UNKNOWN;
}

const char *md_chat_name(md_chat_kind kind)
{
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (NAMES[i].kind == kind) return NAMES[i].name;
    return "unknown";
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* *out = a + msg[trimmed?] + b (malloc'd). */
static int wrap(const char *a, const char *msg, size_t ml, const char *b, char **out, md_error *err)
{
    size_t al = strlen(a), bl = strlen(b);
    char *s = malloc(al + ml + bl + 1);
    if (!s) return md_error_set(err, "out of memory rendering a chat prompt");
    memcpy(s, a, al);
    memcpy(s + al, msg, ml);
    memcpy(s + al + ml, b, bl + 1);
    *out = s;
    return MD_OK;
}

int md_chat_render(md_chat_kind kind, const char *fmt, const char *instruction, char **out, md_error *err)
{
    *out = NULL;
    if (!instruction) return md_error_set(err, "chat render: instruction is NULL");
    const char *msg = instruction;
    size_t ml = strlen(msg);
    if (kind == MD_CHAT_LLAMA3 || kind == MD_CHAT_LLAMA2) {
        while (ml && is_ws(*msg)) { msg++; ml--; }
        while (ml && is_ws(msg[ml - 1])) ml--;
    }
    switch (kind) {
    case MD_CHAT_LLAMA3:
        return wrap("<|start_header_id|>user<|end_header_id|>\n\n", msg, ml,
                    "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", out, err);
    case MD_CHAT_LLAMA2:
        return wrap("[INST] ", msg, ml, " [/INST]", out, err);
    case MD_CHAT_MISTRAL:
        return wrap("[INST] ", msg, ml, "[/INST]", out, err);
    case MD_CHAT_TULU:
        return wrap("<|user|>\n", msg, ml, "\n<|assistant|>\n", out, err);
    case MD_CHAT_BASE:
        return wrap("User: ", msg, ml, "\nAssistant:", out, err);
    case MD_CHAT_FORMAT: {
        if (!fmt) return md_error_set(err, "chat format: no format string given; pass one containing \"%s\"", PLACEHOLDER);
        const char *p = strstr(fmt, PLACEHOLDER);
        if (!p)
            return md_error_set(err, "chat format \"%s\" does not contain \"%s\"; put it where the instruction goes",
                                fmt, PLACEHOLDER);
        if (strstr(p + 1, PLACEHOLDER))
            return md_error_set(err, "chat format \"%s\" contains \"%s\" more than once; use it exactly once", fmt,
                                PLACEHOLDER);
        size_t head = (size_t)(p - fmt);
        size_t tail = strlen(p + sizeof PLACEHOLDER - 1);
        char *s = malloc(head + ml + tail + 1);
        if (!s) return md_error_set(err, "out of memory rendering a chat prompt");
        memcpy(s, fmt, head);
        memcpy(s + head, msg, ml);
        memcpy(s + head + ml, p + sizeof PLACEHOLDER - 1, tail + 1);
        *out = s;
        return MD_OK;
    }
    default:
        return md_error_set(err, "chat render: unknown chat kind %d; use llama3, llama2, mistral, tulu, base or a "
                            "format string with \"%s\"", (int)kind, PLACEHOLDER);
    }
}
