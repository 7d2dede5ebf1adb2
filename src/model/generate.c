/* generate.c — greedy batched generation: prompts are left-padded to one
 * length, run once, then one token per step from the KV cache. */
#include "mechdiff/generate.h"

#include <stdlib.h>
#include <string.h>

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

int md_generate_greedy(md_model *m, int n_seq, const int *const *ids, const int *len, int max_new,
                       const md_hook *hooks, int n_hooks, md_generation *out, md_error *err)
{
    memset(out, 0, sizeof *out);
    int V = m->cfg.vocab_size, T = 0;
    for (int s = 0; s < n_seq; s++) {
        if (len[s] <= 0) return md_error_set(err, "generate: prompt %d is empty", s);
        if (len[s] > T) T = len[s];
    }
    int rc = MD_ERR;
    md_kvcache *kc = NULL;
    int *tokens = calloc((size_t)n_seq * T, sizeof(int));
    int *pad = calloc((size_t)n_seq, sizeof(int));
    int *next = calloc((size_t)n_seq, sizeof(int));
    int *done = calloc((size_t)n_seq, sizeof(int));
    float *logits = malloc((size_t)n_seq * V * sizeof(float));
    md_hook *hk = n_hooks ? malloc((size_t)n_hooks * sizeof(md_hook)) : NULL;
    out->n_seq = n_seq;
    out->out_ids = calloc((size_t)n_seq, sizeof(int *));
    out->out_len = calloc((size_t)n_seq, sizeof(int));
    if (!tokens || !pad || !next || !done || !logits || (n_hooks && !hk) || !out->out_ids || !out->out_len) {
        md_error_set(err, "generate: out of memory");
        goto done;
    }
    for (int s = 0; s < n_seq; s++) {
        out->out_ids[s] = malloc((size_t)(max_new > 0 ? max_new : 1) * sizeof(int));
        if (!out->out_ids[s]) {
            md_error_set(err, "generate: out of memory");
            goto done;
        }
        pad[s] = T - len[s];
        int fill = m->tok && md_tokenizer_bos_id(m->tok) >= 0 ? md_tokenizer_bos_id(m->tok) : 0;
        for (int p = 0; p < T; p++) tokens[(size_t)s * T + p] = p < pad[s] ? fill : ids[s][p - pad[s]];
    }
    for (int i = 0; i < n_hooks; i++) {
        if (hooks[i].seq_pos || hooks[i].seq_head) {
            md_error_set(err, "generate: hook %d selects a cell per sequence (seq_pos/seq_head); generation applies "
                              "hooks at every sequence and position",
                         i);
            goto done;
        }
        hk[i] = hooks[i];
        hk[i].seq = MD_ALL;
        hk[i].pos = MD_ALL;
    }
    if (md_kvcache_create(&kc, m, n_seq, T + max_new, err) != MD_OK) goto done;

    md_forward f;
    md_forward_init_tokens(&f, m, n_seq, T, tokens);
    f.n_pad = pad;
    f.hooks = hk;
    f.n_hooks = n_hooks;
    f.cache = kc;
    f.logits = MD_LOGITS_LAST;
    f.logits_out = logits;
    for (int step = 0; step < max_new; step++) {
        if (md_model_forward(m, &f, err) != MD_OK) goto done;
        int all_done = 1;
        for (int s = 0; s < n_seq; s++) {
            next[s] = argmax(logits + (size_t)s * V, V);
            if (!done[s]) {
                out->out_ids[s][out->out_len[s]++] = next[s];
                if (is_eos(m, next[s])) done[s] = 1;
            }
            all_done &= done[s];
        }
        if (all_done) break;
        f.t0 = f.t1;
        f.t1 = f.t0 + 1;
        f.tokens = next;
    }
    rc = MD_OK;
done:
    md_kvcache_free(kc);
    free(tokens);
    free(pad);
    free(next);
    free(done);
    free(logits);
    free(hk);
    if (rc != MD_OK) md_generation_free(out);
    return rc;
}
