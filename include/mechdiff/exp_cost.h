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
 *     MD_COST_ROW_TOKENS of a row the kind has not read);
 *   - a forward of only a few rows (positions) at a time: bound by reading
 *     the weights, not by their multiply-adds (md_exp_cost_read_bound).
 *
 * The read bound is a roofline, time = max(FLOPs / F, bytes / Bw), in
 * token passes: a forward of n rows through a share s of the model's
 * multiply-adds (s x B, as above) does 2 n s B FLOPs and reads s x B
 * weights of b bytes each, so it costs s x max(n, R) token passes with the
 * ridge R = b F / (2 Bw): below R rows the weights' reads take longer than
 * the FLOPs. The CPU backend multiplies by fp32 copies of the weights
 * (b = 4; cpu.c). F is the rate a token pass of cost runs at: the GEMM
 * rate of the forwards of many rows, whose costs count their FLOPs, 127
 * GFLOP/s in bench/bench_unit_cost.sh at 8B widths (one thread, CPU
 * seconds, two runs; sgemm alone on a 14336 x 4096 layer at 1024 rows:
 * 166-176); Bw is the rate sgemm reads such a layer's fp32 weights at 8
 * rows from memory, 5.7-5.9 GB/s there (bench_matmul: 3.5-5.9): R = 4 F /
 * (2 Bw) = 43-44 with the forwards' rate, 58-59 with sgemm's;
 * MD_COST_RIDGE_ROWS = 48 lies between (2026-12-07, 2 shared cores; the
 * bench prints F, Bw and both ridges). Weights of at most
 * MD_COST_CACHED_BYTES per forward (the d=128 organism's: 3 MB of blocks,
 * 3.7 MB of unembedding) stay in the caches between forwards and are not
 * read from memory: no read bound. Not modelled, one R for all: weights
 * the CPU backend streams from bf16 beyond its fp32 cache (converted for
 * every matmul), and a GPU, whose ridge is higher (a bf16 layer on an
 * H100: 675 TFLOP/s at 2048 rows, weights read at about 2.4 TB/s at 1-16
 * rows, docs/cuda.md: R about 275).
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
/* The ridge R of the read bound, in rows, and the fp32 weights per forward
 * up to which there is none (see above). */
#define MD_COST_RIDGE_ROWS 48
#define MD_COST_CACHED_BYTES ((double)(32 << 20))
/* A forward of `rows` rows through `share` token passes' worth of weights
 * (blocks and logits: 1/L + V d / B for the last block and the logits) of
 * a model of B = block_macs, in token passes: share x max(rows,
 * MD_COST_RIDGE_ROWS), or share x rows when those weights take at most
 * MD_COST_CACHED_BYTES in fp32. */
double md_exp_cost_read_bound(double block_macs, double rows, double share);
/* 1 + strlen(text) / 4: the tokens of a text with its BOS. */
double md_exp_cost_text_tokens(const char *text);

#endif
