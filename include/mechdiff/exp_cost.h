/* exp_cost.h — what a unit's forward passes cost in token passes, from the
 * model's widths (experiment.h, md_plan_cost; progress.h, "ETA by cost").
 *
 * One token through every block of the model = 1 token pass = B
 * multiply-adds: per layer the q, k, v and o projections (grouped key/value
 * heads) and the gated MLP's three matrices, 2 d (h + kv) + 3 d d_ff with
 * h = n_heads x head_dim and kv = n_kv_heads x head_dim. Attention's
 * T^2 part, norms and hooks are left out (under 2% of a token's work at
 * 8B widths and the prompt lengths of the study). What else a unit does is
 * priced in the same unit:
 *   - the logits of one position: V d multiply-adds, md_exp_cost_logits
 *     (0.075 token passes for Llama-3.1-8B; 1.19 for the shipped d=128
 *     organism, whose unembedding outweighs its four blocks);
 *   - a token through the first k of the L blocks (a forward that stops
 *     after the deepest layer it reads): md_exp_cost_blocks = k / L;
 *   - a text the kind does not tokenise at plan time: a BOS and one token
 *     per 4 bytes, md_exp_cost_text_tokens (what BPE vocabularies of
 *     32k-256k entries average on English; the few-shot prefixes and CSV
 *     rows of data/ come to 8-12 tokens a statement, not the
 *     MD_COST_ROW_TOKENS of a row the kind has not read).
 * Pure functions of their arguments. */
#ifndef MECHDIFF_EXP_COST_H
#define MECHDIFF_EXP_COST_H

#include "mechdiff/hf_config.h"

/* B: multiply-adds of one token through every block. */
double md_exp_cost_block_macs(const md_config *c);
/* V d / B: the logits of one position, in token passes. */
double md_exp_cost_logits(const md_config *c);
/* k / L: one token through the first k blocks, in token passes (k is
 * clamped to [0, L]). */
double md_exp_cost_blocks(const md_config *c, int k);
/* 1 + strlen(text) / 4: the tokens of a text with its BOS. */
double md_exp_cost_text_tokens(const char *text);

#endif
