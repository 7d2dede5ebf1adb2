/* exp_output.h — helpers of a kind's plan beside md_plan_output
 * (experiment.h): comma-joined name lists for attributes, and CSV strings as
 * plan-time data.
 * Ownership: per function; nothing keeps a pointer to its arguments. */
#ifndef MECHDIFF_EXP_OUTPUT_H
#define MECHDIFF_EXP_OUTPUT_H

#include <stddef.h>
#include <stdint.h>

#include "mechdiff/csv.h"
#include "mechdiff/error.h"
#include "mechdiff/experiment.h"
#include "mechdiff/tokenizer.h"

/* "a,b,c" of items[0..n) into val[cap] (cut at cap). */
void md_exp_join_names(char *val, size_t cap, const char *const *items, int n);
/* md_plan_put of the strings of rows idx[0..n) of a CSV column at offset off
 * of a 1-D string dataset. */
int md_exp_put_csv_strings(md_plan *plan, const char *path, const md_csv *t, int col, const int *idx, int n, int64_t off,
                           md_error *err);

/* Declares the role axes of a plan (md_plan_axis, scope ""): the model
 * roles roles[0..n) label every dimension named model, model_b, source,
 * target (a kind whose result compares or transfers between models). */
int md_exp_axis_roles(md_plan *plan, const char *const *roles, int n, md_error *err);

/* The decoded text of each of ids[0..n) (one token each), NUL-terminated
 * strings back to back as md_plan_put takes them for a string dataset: a
 * NUL or a byte that is not valid UTF-8 (part of a character split over
 * tokens) reads as U+FFFD; a negative id gives "". *out is malloc'd
 * (the caller frees), *nbytes its length. */
int md_exp_token_strings(const md_tokenizer *tok, const int *ids, int64_t n, char **out, size_t *nbytes,
                         md_error *err);
/* The tokens at relative positions rel[0..n_rel) (negative: counted from
 * the end, -1 = the last token) of each of texts[0..n) as tok encodes it
 * (add_special as md_tokenizer_encode): ids[n * n_rel], their absolute
 * index pos[n * n_rel] (-1 and id -1 where the text is shorter) and their
 * decoded strings (md_exp_token_strings: "" where id is -1; *strs
 * malloc'd). */
int md_exp_tokens_at(const md_tokenizer *tok, const char *const *texts, int n, int add_special, const int *rel,
                     int n_rel, int32_t *ids, int32_t *pos, char **strs, size_t *nbytes, md_error *err);
/* What the tokenizer puts before a prompt, for descriptions: "the BOS token
 * '<s>' first" or "no BOS token: this tokenizer adds none". */
int md_exp_bos_note(const md_tokenizer *tok, char *buf, size_t cap, md_error *err);

#endif
