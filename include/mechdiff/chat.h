/* chat.h — built-in renderers for the chat templates of the model families
 * in use (we do not interpret Jinja). A template is recognised from the
 * tokenizer_config.json text or named explicitly; a user format string with
 * "{instruction}" is the escape hatch. The rendered text never contains BOS:
 * encode it with add_special=1. */
#ifndef MECHDIFF_CHAT_H
#define MECHDIFF_CHAT_H

#include "mechdiff/error.h"

typedef enum md_chat_kind {
    MD_CHAT_UNKNOWN = 0,
    MD_CHAT_LLAMA3,     /* <|start_header_id|>user<|end_header_id|>\n\n...<|eot_id|> */
    MD_CHAT_LLAMA2,     /* [INST] ... [/INST] with optional <<SYS>> */
    MD_CHAT_MISTRAL,    /* [INST] ... [/INST] */
    MD_CHAT_TULU,       /* <|user|>\n...\n<|assistant|>\n */
    MD_CHAT_BASE,       /* "User: {instruction}\nAssistant:" (the study's base template) */
    MD_CHAT_FORMAT      /* user-supplied format string */
} md_chat_kind;

/* Recognises a Jinja chat template; MD_CHAT_UNKNOWN when it matches none. */
md_chat_kind md_chat_detect(const char *jinja);
/* "llama3", "llama2", "mistral", "tulu", "base" → kind; MD_CHAT_UNKNOWN otherwise. */
md_chat_kind md_chat_parse_name(const char *name);
const char *md_chat_name(md_chat_kind kind);
/* Renders one user turn followed by the generation prompt. For MD_CHAT_FORMAT,
 * fmt must contain "{instruction}" exactly once. *out is malloc'd. */
int md_chat_render(md_chat_kind kind, const char *fmt, const char *instruction,
                   char **out, md_error *err);

#endif
