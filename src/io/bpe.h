/* bpe.h — internal: the BPE model of a tokenizer.json (vocabulary, merges
 * ranked by priority, unk/byte-fallback handling) and the merge loop for one
 * pre-token. Used only by src/io/tokenizer.c.
 * Ownership: md_bpe owns its piece strings and tables; md_bpe_free releases
 * them. Encoding writes into a caller-owned md_ivec. */
#ifndef MECHDIFF_IO_BPE_H
#define MECHDIFF_IO_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "mechdiff/error.h"

/* Growable int array (caller owns v; free with free()). */
typedef struct md_ivec {
    int *v;
    size_t n, cap;
} md_ivec;

int md_ivec_push(md_ivec *a, int x);

typedef struct md_bpe_merge_slot {
    uint64_t key;   /* (left id << 32) | right id; UINT64_MAX = empty */
    int rank;
    int new_id;
} md_bpe_merge_slot;

typedef struct md_bpe {
    char **pieces;          /* [n_ids] owned; NULL where the id is not in the model vocab */
    size_t *piece_len;      /* [n_ids] */
    size_t n_ids;
    int *vmap;              /* open-addressing piece -> id table, -1 = empty */
    size_t vmap_cap;
    md_bpe_merge_slot *mmap;
    size_t mmap_cap, n_merges;
    int unk_id;             /* -1 when none */
    int byte_fallback, fuse_unk, ignore_merges;
    int byte_ids[256];      /* id of "<0xNN>" or -1 */
} md_bpe;

/* Allocates tables for ids 0..n_ids-1 and up to max_merges merges. */
int md_bpe_init(md_bpe *b, size_t n_ids, size_t max_merges, md_error *err);
void md_bpe_free(md_bpe *b);
/* Adds vocabulary entry s (len bytes, copied) with id. */
int md_bpe_add_piece(md_bpe *b, const char *s, size_t len, int id, md_error *err);
/* Id of the vocabulary string s[0..len), or -1. */
int md_bpe_lookup(const md_bpe *b, const char *s, size_t len);
/* Adds the merge (left, right) with the next rank; the concatenation must be
 * in the vocabulary. Call after all pieces are added. */
int md_bpe_add_merge(md_bpe *b, const char *left, size_t llen, const char *right, size_t rlen,
                     md_error *err);
/* Fills byte_ids from the "<0xNN>" pieces. */
void md_bpe_finish(md_bpe *b);
/* Appends the ids of one pre-token s[0..len) to out. */
int md_bpe_encode_word(const md_bpe *b, const char *s, size_t len, md_ivec *out, md_error *err);

#endif
