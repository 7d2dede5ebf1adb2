/* generate.c — greedy batched generation: prompts are left-padded to one
 * length, run once, then one token per step from the KV cache. Padding
 * changes no real token's numbers: a padded sequence's positions start at
 * 0 at its first real token and its real tokens never attend to the
 * padding (forward.h: n_pad), so each sequence continues as it would
 * alone, up to the rounding of GEMMs over other row counts. */
#include "mechdiff/generate.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* What one generation works in (owned; gen_free). */
typedef struct gen_bufs {
    int T;              /* the padded prompt length */
    int *tokens;        /* [n_seq][T] left-padded prompts */
    int *pad;           /* [n_seq] padding of each */
    int *next, *done;   /* [n_seq] the last step's tokens; sequences stopped */
    float *logits;      /* [n_seq][vocab] */
    md_hook *hk;        /* [n_hooks] the hooks on every sequence and position */
} gen_bufs;

static int is_eos(const md_model *m, int id)
{
    for (int i = 0; i < m->cfg.n_eos; i++)
        if (m->cfg.eos_ids[i] == id) return 1;
    return m->tok && md_tokenizer_eos_id(m->tok) == id;
}

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

void md_generation_free(md_generation *g)
{
    if (!g) return;
    if (g->out_ids)
        for (int i = 0; i < g->n_seq; i++) free(g->out_ids[i]);
    free(g->out_ids);
    free(g->out_len);
    memset(g, 0, sizeof *g);
}

/* The prompts and the count of new tokens; *T = the longest prompt. */
static int check_inputs(const md_model *m, int n_seq, const int *const *ids, const int *len, int max_new, int *T,
                        md_error *err)
{
    const md_config *c = &m->cfg;
    if (n_seq < 1 || !ids || !len) return md_error_set(err, "generate: no prompts (%d sequences)", n_seq);
    if (max_new < 0 || max_new > MD_GENERATE_MAX_NEW)
        return md_error_set(err, "generate: %d new tokens is outside [0, %d]", max_new, MD_GENERATE_MAX_NEW);
    *T = 0;
    for (int s = 0; s < n_seq; s++) {
        if (len[s] <= 0 || !ids[s]) return md_error_set(err, "generate: prompt %d is empty", s);
        for (int p = 0; p < len[s]; p++)
            if (ids[s][p] < 0 || ids[s][p] >= c->vocab_size)
                return md_error_set(err, "generate: prompt %d, token %d: id %d is outside the vocabulary [0, %d) of %s",
                                    s, p, ids[s][p], c->vocab_size, m->dir);
        if (len[s] > *T) *T = len[s];
    }
    /* the last new token is never fed back: T + max_new - 1 positions */
    long need = (long)*T + (max_new > 0 ? max_new - 1 : 0);
    if (c->max_position > 0 && need > c->max_position)
        return md_error_set(err, "generate: a prompt of %d tokens and %d new ones need %ld positions, more than the "
                            "max_position_embeddings %d of %s", *T, max_new, need, c->max_position, m->dir);
    return MD_OK;
}

static void gen_free(gen_bufs *b)
{
    free(b->tokens);
    free(b->pad);
    free(b->next);
    free(b->done);
    free(b->logits);
    free(b->hk);
}

/* The working buffers, and out's arrays of max_new ids per sequence. */
static int gen_alloc(gen_bufs *b, const md_model *m, int n_seq, int n_hooks, int max_new, md_generation *out,
                     md_error *err)
{
    b->tokens = calloc((size_t)n_seq * (size_t)b->T, sizeof(int));
    b->pad = calloc((size_t)n_seq, sizeof(int));
    b->next = calloc((size_t)n_seq, sizeof(int));
    b->done = calloc((size_t)n_seq, sizeof(int));
    b->logits = malloc((size_t)n_seq * (size_t)m->cfg.vocab_size * sizeof(float));
    b->hk = n_hooks ? malloc((size_t)n_hooks * sizeof(md_hook)) : NULL;
    out->n_seq = n_seq;
    out->out_ids = calloc((size_t)n_seq, sizeof(int *));
    out->out_len = calloc((size_t)n_seq, sizeof(int));
    if (!b->tokens || !b->pad || !b->next || !b->done || !b->logits || (n_hooks && !b->hk) || !out->out_ids ||
        !out->out_len)
        return md_error_set(err, "generate: out of memory");
    for (int s = 0; s < n_seq; s++)
        if (!(out->out_ids[s] = malloc((size_t)(max_new > 0 ? max_new : 1) * sizeof(int))))
            return md_error_set(err, "generate: out of memory");
    return MD_OK;
}

/* tokens = the prompts right-aligned; the padding holds BOS (or 0), which
 * no real token sees. */
static void left_pad(const md_model *m, int n_seq, const int *const *ids, const int *len, gen_bufs *b)
{
    int bos = m->tok ? md_tokenizer_bos_id(m->tok) : -1;
    int fill = bos >= 0 && bos < m->cfg.vocab_size ? bos : 0;
    for (int s = 0; s < n_seq; s++) {
        b->pad[s] = b->T - len[s];
        for (int p = 0; p < b->T; p++) b->tokens[(size_t)s * b->T + p] = p < b->pad[s] ? fill : ids[s][p - b->pad[s]];
    }
}

/* The caller's hooks on every sequence and position (batched hooks refused). */
static int copy_hooks(const md_hook *hooks, int n_hooks, md_hook *hk, md_error *err)
{
    for (int i = 0; i < n_hooks; i++) {
        if (hooks[i].seq_pos || hooks[i].seq_head)
            return md_error_set(err, "generate: hook %d selects a cell per sequence (seq_pos/seq_head); generation "
                                "applies hooks at every sequence and position", i);
        hk[i] = hooks[i];
        hk[i].seq = MD_ALL;
        hk[i].pos = MD_ALL;
    }
    return MD_OK;
}

/* The step's greedy tokens appended to the sequences not stopped; 1 when
 * every sequence has stopped. */
static int take_tokens(const md_model *m, int n_seq, gen_bufs *b, md_generation *out)
{
    int V = m->cfg.vocab_size, all_done = 1;
    for (int s = 0; s < n_seq; s++) {
        b->next[s] = argmax(b->logits + (size_t)s * V, V);
        if (!b->done[s]) {
            out->out_ids[s][out->out_len[s]++] = b->next[s];
            if (is_eos(m, b->next[s])) b->done[s] = 1;
        }
        all_done &= b->done[s];
    }
    return all_done;
}

int md_generate_greedy(md_model *m, int n_seq, const int *const *ids, const int *len, int max_new,
                       const md_hook *hooks, int n_hooks, md_generation *out, md_error *err)
{
    memset(out, 0, sizeof *out);
    gen_bufs b = {0};
    if (n_hooks < 0 || (n_hooks && !hooks)) return md_error_set(err, "generate: %d hooks without a list", n_hooks);
    if (check_inputs(m, n_seq, ids, len, max_new, &b.T, err) != MD_OK) return MD_ERR;
    int rc = MD_ERR;
    md_kvcache *kc = NULL;
    if (gen_alloc(&b, m, n_seq, n_hooks, max_new, out, err) != MD_OK || copy_hooks(hooks, n_hooks, b.hk, err) != MD_OK)
        goto done;
    left_pad(m, n_seq, ids, len, &b);
    if (md_kvcache_create(&kc, m, n_seq, b.T + max_new, err) != MD_OK) goto done;
    md_forward f;
    md_forward_init_batch(&f, m, n_seq, b.T, b.tokens, b.pad, kc);
    md_forward_set_hooks(&f, b.hk, n_hooks);
    md_forward_set_logits(&f, MD_LOGITS_LAST, b.logits, NULL, 0);
    for (int step = 0; step < max_new; step++) {
        if (md_model_forward(m, &f, err) != MD_OK) goto done;
        if (take_tokens(m, n_seq, &b, out)) break;
        f.t0 = f.t1;
        f.t1 = f.t0 + 1;
        f.tokens = b.next;
    }
    rc = MD_OK;
done:
    md_kvcache_free(kc);
    gen_free(&b);
    if (rc != MD_OK) md_generation_free(out);
    return rc;
}
