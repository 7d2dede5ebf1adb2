/* prompt_args.h — the prompt options shared by `forward` and `generate`:
 * --prompt TEXT | --chat TEXT | --ids 1,2,3, turned into token ids. */
#ifndef MECHDIFF_TOOLS_PROMPT_ARGS_H
#define MECHDIFF_TOOLS_PROMPT_ARGS_H

#include <stddef.h>

#include "mechdiff/error.h"
#include "mechdiff/model.h"

typedef struct prompt_args {
    const char *prompt;   /* raw text (BOS added) */
    const char *chat;     /* one user turn in the model's chat template */
    const char *ids;      /* comma-separated ids */
    const char *chat_format; /* --chat-template NAME|FORMAT override */
} prompt_args;

/* Consumes argv[*i] (and its value) when it is a prompt option: 1 consumed, 0
 * not a prompt option, -1 missing value. */
int prompt_args_parse(prompt_args *pa, int argc, char **argv, int *i);
/* NULL when the prompt options make sense together (exactly one of
 * --prompt, --chat, --ids; --chat-template only with --chat, and a name or
 * a format with {instruction}); else what is wrong (a static string for a
 * usage error, checked before a model is loaded). */
const char *prompt_args_check(const prompt_args *pa);
/* Token ids for the chosen option; *ids malloc'd (caller frees). */
int prompt_args_tokens(const prompt_args *pa, const md_model *m, int **ids, size_t *n, md_error *err);

#endif
