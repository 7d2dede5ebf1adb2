/* bpe.c — the BPE model: vocabulary and merge tables (open addressing) and
 * the merge loop. The loop keeps the symbols of one pre-token in a linked
 * list and candidate pairs in a binary min-heap ordered by (merge rank,
 * position); stale heap entries are skipped when popped. This is the order
 * Hugging Face tokenizers applies merges in, and it is O(n log n) per word,
 * so SentencePiece-style inputs (one long word per text) stay fast. */
#include "io/bpe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int md_ivec_push(md_ivec *a, int x)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        int *v = realloc(a->v, cap * sizeof *v);
        if (!v) return MD_ERR;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return MD_OK;
}

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

int md_bpe_init(md_bpe *b, size_t n_ids, size_t max_merges, md_error *err)
{
    memset(b, 0, sizeof *b);
    b->unk_id = -1;
    for (int i = 0; i < 256; i++) b->byte_ids[i] = -1;
    b->n_ids = n_ids;
    b->pieces = calloc(n_ids ? n_ids : 1, sizeof *b->pieces);
    b->piece_len = calloc(n_ids ? n_ids : 1, sizeof *b->piece_len);
    b->vmap_cap = pow2_at_least(2 * n_ids + 1);
    b->vmap = malloc(b->vmap_cap * sizeof *b->vmap);
    b->mmap_cap = pow2_at_least(2 * max_merges + 1);
    b->mmap = malloc(b->mmap_cap * sizeof *b->mmap);
    if (!b->pieces || !b->piece_len || !b->vmap || !b->mmap) {
        md_bpe_free(b);
        return md_error_set(err, "out of memory allocating a BPE vocabulary of %zu entries", n_ids);
    }
    memset(b->vmap, 0xff, b->vmap_cap * sizeof *b->vmap);
    for (size_t i = 0; i < b->mmap_cap; i++) b->mmap[i].key = UINT64_MAX;
    return MD_OK;
}

void md_bpe_free(md_bpe *b)
{
    if (!b) return;
    if (b->pieces)
        for (size_t i = 0; i < b->n_ids; i++) free(b->pieces[i]);
    free(b->pieces);
    free(b->piece_len);
    free(b->vmap);
    free(b->mmap);
    memset(b, 0, sizeof *b);
}

int md_bpe_lookup(const md_bpe *b, const char *s, size_t len)
{
    size_t mask = b->vmap_cap - 1;
    for (size_t i = hash_bytes(s, len) & mask;; i = (i + 1) & mask) {
        int id = b->vmap[i];
        if (id < 0) return -1;
        if (b->piece_len[id] == len && memcmp(b->pieces[id], s, len) == 0) return id;
    }
}

int md_bpe_add_piece(md_bpe *b, const char *s, size_t len, int id, md_error *err)
{
    if (id < 0 || (size_t)id >= b->n_ids)
        return md_error_set(err, "vocabulary id %d of '%.*s' is out of range", id, (int)len, s);
    if (b->pieces[id])
        return md_error_set(err, "vocabulary id %d is used twice ('%s' and '%.*s')", id, b->pieces[id],
                            (int)len, s);
    if (md_bpe_lookup(b, s, len) >= 0)
        return md_error_set(err, "vocabulary entry '%.*s' appears twice", (int)len, s);
    char *c = malloc(len + 1);
    if (!c) return md_error_set(err, "out of memory");
    memcpy(c, s, len);
    c[len] = '\0';
    b->pieces[id] = c;
    b->piece_len[id] = len;
    size_t mask = b->vmap_cap - 1;
    size_t i = hash_bytes(s, len) & mask;
    while (b->vmap[i] >= 0) i = (i + 1) & mask;
    b->vmap[i] = id;
    return MD_OK;
}

static const md_bpe_merge_slot *merge_find(const md_bpe *b, int left, int right)
{
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    size_t mask = b->mmap_cap - 1;
    for (size_t i = hash_u64(key) & mask;; i = (i + 1) & mask) {
        if (b->mmap[i].key == UINT64_MAX) return NULL;
        if (b->mmap[i].key == key) return &b->mmap[i];
    }
}

int md_bpe_add_merge(md_bpe *b, const char *left, size_t llen, const char *right, size_t rlen,
                     md_error *err)
{
    int l = md_bpe_lookup(b, left, llen), r = md_bpe_lookup(b, right, rlen);
    if (l < 0 || r < 0)
        return md_error_set(err, "merge '%.*s %.*s': '%.*s' is not in the vocabulary", (int)llen, left,
                            (int)rlen, right, l < 0 ? (int)llen : (int)rlen, l < 0 ? left : right);
    char stackbuf[256];
    char *cat = llen + rlen <= sizeof stackbuf ? stackbuf : malloc(llen + rlen);
    if (!cat) return md_error_set(err, "out of memory");
    memcpy(cat, left, llen);
    memcpy(cat + llen, right, rlen);
    int m = md_bpe_lookup(b, cat, llen + rlen);
    if (cat != stackbuf) free(cat);
    if (m < 0)
        return md_error_set(err, "merge '%.*s %.*s': the merged token is not in the vocabulary",
                            (int)llen, left, (int)rlen, right);
    if (merge_find(b, l, r)) return MD_OK; /* a duplicate merge keeps its first (higher) priority */
    if (2 * (b->n_merges + 1) > b->mmap_cap)
        return md_error_set(err, "internal: merge table full (%zu merges)", b->n_merges);
    uint64_t key = ((uint64_t)(uint32_t)l << 32) | (uint32_t)r;
    size_t mask = b->mmap_cap - 1;
    size_t i = hash_u64(key) & mask;
    while (b->mmap[i].key != UINT64_MAX) i = (i + 1) & mask;
    b->mmap[i].key = key;
    b->mmap[i].rank = (int)b->n_merges++;
    b->mmap[i].new_id = m;
    return MD_OK;
}

void md_bpe_finish(md_bpe *b)
{
    char name[8];
    for (int i = 0; i < 256; i++) {
        snprintf(name, sizeof name, "<0x%02X>", i);
        b->byte_ids[i] = md_bpe_lookup(b, name, 6);
    }
}

/* --- merge loop ------------------------------------------------------------ */

typedef struct sym {
    int id;
    int prev, next;
    int alive;
} sym;

typedef struct cand {
    int rank, pos, new_id;
} cand;

typedef struct heap {
    cand *v;
    size_t n, cap;
} heap;

static int cand_less(cand a, cand b)
{
    return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static int heap_push(heap *h, cand c)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 32;
        cand *v = realloc(h->v, cap * sizeof *v);
        if (!v) return MD_ERR;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(c, h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = c;
    return MD_OK;
}

static cand heap_pop(heap *h)
{
    cand top = h->v[0];
    cand last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        cand best = last;
        if (l < h->n && cand_less(h->v[l], best)) { m = l; best = h->v[l]; }
        if (r < h->n && cand_less(h->v[r], best)) { m = r; }
        if (m == i) break;
        h->v[i] = h->v[m];
        i = m;
    }
    if (h->n) h->v[i] = last;
    return top;
}

static int push_pair(const md_bpe *b, heap *h, const sym *s, int pos)
{
    if (pos < 0 || s[pos].next < 0) return MD_OK;
    const md_bpe_merge_slot *m = merge_find(b, s[pos].id, s[s[pos].next].id);
    if (!m) return MD_OK;
    return heap_push(h, (cand){m->rank, pos, m->new_id});
}

static void add_sym(sym *syms, int *n, int id)
{
    syms[*n] = (sym){id, *n - 1, -1, 1};
    (*n)++;
}

static size_t utf8_len(unsigned char c)
{
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) return 2;
    if ((c & 0xF0) == 0xE0) return 3;
    if ((c & 0xF8) == 0xF0) return 4;
    return 1;
}

int md_bpe_encode_word(const md_bpe *b, const char *s, size_t len, md_ivec *out, md_error *err)
{
    if (len == 0) return MD_OK;
    if (b->ignore_merges) {
        int id = md_bpe_lookup(b, s, len);
        if (id >= 0) return md_ivec_push(out, id) ? md_error_set(err, "out of memory") : MD_OK;
    }
    int rc = MD_ERR;
    heap h = {0};
    sym *syms = malloc(len * sizeof *syms); /* at most one symbol per byte */
    if (!syms) return md_error_set(err, "out of memory");
    int n = 0, last_unk = 0;
    for (size_t i = 0; i < len;) {
        size_t cl = utf8_len((unsigned char)s[i]);
        if (i + cl > len) cl = len - i;
        int id = md_bpe_lookup(b, s + i, cl);
        if (id >= 0) {
            add_sym(syms, &n, id);
            last_unk = 0;
        } else {
            int all = b->byte_fallback;
            for (size_t k = 0; all && k < cl; k++) all = b->byte_ids[(unsigned char)s[i + k]] >= 0;
            if (all) {
                for (size_t k = 0; k < cl; k++)
                    add_sym(syms, &n, b->byte_ids[(unsigned char)s[i + k]]);
                last_unk = 0;
            } else if (b->unk_id < 0) {
                md_error_set(err, "character '%.*s' (in '%.*s') is not in the vocabulary and the model "
                             "has no unk_token or byte fallback", (int)cl, s + i, (int)len, s);
                goto fail;
            } else if (!(b->fuse_unk && last_unk)) {
                add_sym(syms, &n, b->unk_id);
                last_unk = 1;
            }
        }
        i += cl;
    }
    for (int i = 0; i + 1 < n; i++) syms[i].next = i + 1;
    for (int i = 0; i + 1 < n; i++)
        if (push_pair(b, &h, syms, i)) goto oom;
    while (h.n) {
        cand c = heap_pop(&h);
        sym *a = &syms[c.pos];
        if (!a->alive || a->next < 0) continue;
        const md_bpe_merge_slot *m = merge_find(b, a->id, syms[a->next].id);
        if (!m || m->new_id != c.new_id || m->rank != c.rank) continue; /* stale */
        sym *r = &syms[a->next];
        a->id = c.new_id;
        r->alive = 0;
        a->next = r->next;
        if (a->next >= 0) syms[a->next].prev = c.pos;
        if (push_pair(b, &h, syms, a->prev) || push_pair(b, &h, syms, c.pos)) goto oom;
    }
    for (int i = 0; i < n; i++)
        if (syms[i].alive && md_ivec_push(out, syms[i].id)) goto oom;
    rc = MD_OK;
    goto fail;
oom:
    md_error_set(err, "out of memory in BPE");
fail:
    free(syms);
    free(h.v);
    return rc;
}
