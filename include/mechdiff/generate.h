/* generate.h — greedy batched generation with the KV cache. Prompts of
 * different lengths are left-padded; hooks apply at every step. */
#ifndef MECHDIFF_GENERATE_H
#define MECHDIFF_GENERATE_H

#include "mechdiff/error.h"
#include "mechdiff/forward.h"

typedef struct md_generation {
    int n_seq;
    int **out_ids;      /* [n_seq] malloc'd arrays of new token ids (caller frees) */
    int *out_len;       /* [n_seq] */
} md_generation;

/* The most new tokens one call generates (`mechdiff generate -n`'s bound too). */
#define MD_GENERATE_MAX_NEW (1 << 20)

/* Generates up to max_new tokens (0..MD_GENERATE_MAX_NEW) for each of n_seq >= 1
 * prompts (ids[i][0..len[i]), len[i] >= 1, ids in the vocabulary), stopping
 * a sequence at any EOS of the config or the tokenizer. The longest prompt
 * plus max_new - 1 must fit max_position_embeddings. hooks (layer/point/op;
 * seq and pos are ignored: applied to every sequence and position; a
 * batched hook, with seq_pos, is refused) may be NULL. Each sequence gets
 * the tokens it would get alone: padding is masked and positions restart
 * at its first token (the GEMMs' rounding over other row counts aside).
 * Bad input is refused with an error naming the prompt and token. */
int md_generate_greedy(md_model *m, int n_seq, const int *const *ids, const int *len,
                       int max_new, const md_hook *hooks, int n_hooks,
                       md_generation *out, md_error *err);
void md_generation_free(md_generation *g);

#endif
