/* exp_prompt.h — instruction prompts of the refusal kinds: the template of
 * a role (`templates` key), rendering + encoding CSV instructions in it, and
 * greedy generation scored by refusal prefix.
 * Ownership: per function; nothing keeps a pointer to its arguments. */
#ifndef MECHDIFF_EXP_PROMPT_H
#define MECHDIFF_EXP_PROMPT_H

#include <stddef.h>
#include <stdint.h>

#include "mechdiff/chat.h"
#include "mechdiff/csv.h"
#include "mechdiff/error.h"
#include "mechdiff/experiment.h"
#include "mechdiff/forward.h"

struct md_model;

/* Instruction prompts (refusal kinds). The template of a role from the
 * experiment's `templates` map: "base", "chat" (the model's own, recognised
 * from its tokenizer_config.json), a template name, or a format string with
 * {instruction} once; *fmt is NULL unless *kind is MD_CHAT_FORMAT. */
int md_exp_instruction_template(const md_kind_ctx *ctx, const char *role, md_chat_kind model_chat, md_chat_kind *kind,
                                const char **fmt, md_error *err);
/* Renders and encodes the instructions of rows idx[0..n) of column col of
 * csv in the role's template, BOS added: ids[i] malloc'd, len[i]. */
int md_exp_encode_instructions(const md_kind_ctx *ctx, struct md_model *m, const char *role, const md_csv *csv, int col,
                               const int *idx, int n, int **ids, int *len, md_error *err);
/* The same with the role's tokenizer and the chat template recognised in it
 * (md_chat_detect; what md_model_load sets as the model's chat), without a
 * model: what the prompts cost is known before a model is loaded. */
int md_exp_encode_instructions_with(const md_kind_ctx *ctx, const md_tokenizer *tok, md_chat_kind model_chat,
                                    const char *role, const md_csv *csv, int col, const int *idx, int n, int **ids,
                                    int *len, md_error *err);
/* Greedy generation of n prompts (hooks applied at every step, may be none),
 * decoded without special tokens and without the ids past the tokenizer (the
 * padding rows of a larger vocab_size: no text): refused[i] = starts with a refusal prefix,
 * *joined = the n texts NUL-terminated back to back (*total bytes; malloc'd,
 * the caller frees, NULL on error). */
int md_exp_generate_refusals(struct md_model *m, int **ids, const int *len, int n, int max_new, const md_hook *hooks,
                             int n_hooks, int32_t *refused, char **joined, size_t *total, md_error *err);

#endif
