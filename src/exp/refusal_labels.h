/* refusal_labels.h — private to the refusal kind (refusal_labels.c): what
 * labels its results. */
#ifndef MECHDIFF_EXP_REFUSAL_LABELS_H
#define MECHDIFF_EXP_REFUSAL_LABELS_H

#include "exp/refusal.h"

/* The outputs table entries of md_refusal_plan_tokens (indices ID, TOK,
 * POS of the kind's table, declared at stage STAGE). */
#define MD_REFUSAL_TOKEN_OUTPUTS(ID, TOK, POS, STAGE)                                                            \
    [ID] = {.path = "tokens/{model}/{set}/token_id", .type = MD_H5_I32, .dims = "row,position",                 \
            .axes = "split/{set} train rows, positions read (from the end)",                                   \
            .description = "id of the token each activation of acts/<model>/<set> is read at", .stage = STAGE,   \
            .at_plan = 1},                                                                                       \
    [TOK] = {.path = "tokens/{model}/{set}/token", .type = MD_H5_STR, .dims = "row,position",                   \
             .axes = "split/{set} train rows, positions read (from the end)",                                  \
             .description = "decoded text of token_id (U+FFFD marks a byte of a character split over tokens)",  \
             .stage = STAGE, .at_plan = 1},                                                                      \
    [POS] = {.path = "tokens/{model}/{set}/token_position", .type = MD_H5_I32, .dims = "row,position",                \
             .axes = "split/{set} train rows, positions read (from the end)", .units = "token index",           \
             .description = "absolute index of that token in the prompt as the model reads it (its template; "  \
                            "0 = the first token)",                                                              \
             .stage = STAGE, .at_plan = 1}

/* The named axes: roles (model, model_b, source, target), set (harmful,
 * harmless), and point mode: the interventions; sweep mode: the candidate
 * layers and positions (their values). */
int md_refusal_plan_axes(md_plan *plan, const md_refusal_state *s, md_error *err);
/* Sweep mode: beside refused [model, layer, position, row], the harmful test
 * instruction and CSV row of each row (outputs ins and csv_row, [row]); on
 * every gen/<model>/layer<l>_pos<p> group its roles and candidate. */
int md_refusal_plan_sweep_labels(md_plan *plan, const md_refusal_state *s, const md_output *ins,
                                 const md_output *csv_row, md_error *err);
/* The generation group gen/<set>/<target>/<intervention>: attributes set,
 * target, intervention, operation (none, ablate, add), source (the role
 * whose direction is applied; "" for none), description; and beside the
 * completions the test instruction of each row and its CSV row (outputs
 * `instruction` and `csv_row` of the kind's table, [row]); the group's row
 * axis holds each row's index into split/<set>/instruction (n_train + i).
 * Call it before declaring the group's other datasets. */
int md_refusal_plan_gen_group(md_plan *plan, const md_refusal_state *s, const md_output *instruction,
                              const md_output *csv_row, int set, const char *target, const char *intervention,
                              md_error *err);
/* The tokens the activations of role `role` are read at: the position axis
 * rel[0..n_rel) (counted from the end) in scope tokens/<role>, and per set
 * the train prompts' token ids, texts and absolute indices [row, position]
 * (out[0..2]: the token_id, token and position entries of the table, path
 * tokens/{model}/{set}/...) in the role's template and tokenizer tok (the
 * caller's: md_refusal_load_tokenizer). */
int md_refusal_plan_tokens(md_plan *plan, const md_kind_ctx *ctx, const md_refusal_state *s, int role,
                           const struct md_tokenizer *tok, const int *rel, int n_rel, const md_output *out,
                           md_error *err);

#endif
