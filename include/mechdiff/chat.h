/* chat.h — chat prompts as `transformers`' apply_chat_template makes them.
 *
 * A model's own template (chat_template.jinja or the chat_template of
 * tokenizer_config.json) is rendered by the Jinja interpreter
 * (mechdiff/jinja.h) with the variables transformers passes: messages,
 * add_generation_prompt, tools = documents = None, bos_token and eos_token;
 * the text is then encoded without adding special tokens, as transformers
 * does, since the template writes BOS itself. Templates the interpreter
 * cannot render are errors that name the file, the line and the way out (a
 * format string); nothing falls back silently.
 *
 * Besides the model's template: the study's base-model template "base",
 * the fixed renderers "llama3", "llama2", "mistral", "tulu" (one user turn,
 * no system block; kept for jobs that name them), and a user format string
 * with "{instruction}" in which \n, \t and \\ are escapes. Their text never
 * contains BOS: they are encoded with add_special=1. */
#ifndef MECHDIFF_CHAT_H
#define MECHDIFF_CHAT_H

#include <stddef.h>
#include <time.h>

#include "mechdiff/error.h"
#include "mechdiff/tokenizer.h"

typedef enum md_chat_kind {
    MD_CHAT_UNKNOWN = 0,
    MD_CHAT_LLAMA3,     /* <|start_header_id|>user<|end_header_id|>\n\n...<|eot_id|> */
    MD_CHAT_LLAMA2,     /* [INST] ... [/INST] with optional <<SYS>> */
    MD_CHAT_MISTRAL,    /* [INST] ... [/INST] */
    MD_CHAT_TULU,       /* <|user|>\n...\n<|assistant|>\n */
    MD_CHAT_BASE,       /* "User: {instruction}\nAssistant:" (the study's base template) */
    MD_CHAT_FORMAT,     /* user-supplied format string */
    MD_CHAT_MODEL       /* the model's own Jinja template, rendered as transformers does */
} md_chat_kind;

typedef struct md_chat_message {
    const char *role;    /* "system", "user", "assistant" */
    const char *content;
} md_chat_message;

/* What the template sees besides the messages. */
typedef struct md_chat_opts {
    const char *bos_token; /* NULL: undefined in the template */
    const char *eos_token;
    int add_generation_prompt;
    time_t now;            /* what strftime_now formats (UTC); 0 = the current time */
} md_chat_opts;

/* MD_CHAT_MODEL when there is a template (jinja != NULL), else MD_CHAT_UNKNOWN. */
md_chat_kind md_chat_detect(const char *jinja);
/* "llama3", "llama2", "mistral", "tulu", "base", "model" → kind; MD_CHAT_UNKNOWN otherwise. */
md_chat_kind md_chat_parse_name(const char *name);
const char *md_chat_name(md_chat_kind kind);

/* Renders one user turn followed by the generation prompt with a fixed
 * renderer or a format string (kind MD_CHAT_FORMAT: fmt must contain
 * "{instruction}" exactly once). MD_CHAT_MODEL needs the tokenizer: use
 * md_chat_encode. *out is malloc'd. */
int md_chat_render(md_chat_kind kind, const char *fmt, const char *instruction, char **out, md_error *err);

/* Renders msgs[0..n) through the Jinja template src (origin names it in
 * messages). *out is malloc'd, NUL-terminated, *len bytes. */
int md_chat_render_jinja(const char *src, const char *origin, const md_chat_message *msgs, size_t n,
                         const md_chat_opts *opts, char **out, size_t *len, md_error *err);

/* The token ids of one user turn plus the generation prompt, as the model
 * sees it: for MD_CHAT_MODEL the tokenizer's template rendered with its
 * BOS/EOS strings and encoded without added specials; otherwise
 * md_chat_render encoded with BOS. strftime_now (Llama-3.2's "Today Date")
 * formats the current UTC time, or SOURCE_DATE_EPOCH when that is set, so
 * that a run can be reproduced. *ids is malloc'd. */
int md_chat_encode(const md_tokenizer *tok, md_chat_kind kind, const char *fmt, const char *instruction, int **ids,
                   size_t *n_ids, md_error *err);

#endif
