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

/* Generates up to max_new tokens for each prompt (ids[i][0..len[i])), stopping
 * a sequence at any EOS of the config. hooks (layer/point/op; seq and pos are
 * ignored: applied to every sequence and position; a batched hook, with
 * seq_pos, is refused) may be NULL. */
int md_generate_greedy(md_model *m, int n_seq, const int *const *ids, const int *len,
                       int max_new, const md_hook *hooks, int n_hooks,
                       md_generation *out, md_error *err);
void md_generation_free(md_generation *g);

#endif
