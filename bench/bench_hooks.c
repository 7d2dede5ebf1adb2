/* bench_hooks.c — batched hooks vs one hook per sequence in the partial
 * forwards of the knowledge grid (kn_compute.c), as ratios measured in one
 * run (never a timed test).
 *
 *   bench_hooks [MODEL_DIR=models/organism-base] [--pairs 16] [--prompt 40] [--reps 20]
 *
 * Two grids of one window position (the last one) of a block of `pairs`
 * prompts, from a cache of the prompts' prefix, as knowledge runs them:
 *   heads:   per layer l, one partial forward from l of n_heads x pairs
 *            sequences, each with one head's z replaced at (l, t);
 *   mlp_out: one partial forward of n_layers x pairs sequences (sequence
 *            l * pairs + p starts at layer l), each with mlp_out replaced at
 *            (l, t).
 * And the clean run's window reads (resid_pre at the last 4 positions of
 * every prompt and layer): one READ per (prompt, position) vs one per
 * position (get_cells calls, time in them, forward time, equality).
 * Each grid runs with one single hook per sequence (what knowledge issued
 * before batched hooks) and with batched hooks (one per layer), alternating.
 * Prints per forward: the backend's put_cells calls (hook applications) and
 * the time spent in them, the forward's wall time (best of reps), the ratio
 * single/batched, and whether the logits are bit-identical. On a GPU each
 * application is a launch plus two host-to-device copies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/clock.h"
#include "mechdiff/forward.h"
#include "mechdiff/model.h"

static const md_backend_ops *real_ops;
static long n_put, n_get;
static double t_put, t_get; /* seconds inside put_cells, get_cells */

static int counted_put_cells(md_backend *be, float *x, int n, int w, const size_t *off, const float *src, int add,
                             float coef, md_error *err)
{
    n_put++;
    double t0 = md_clock_seconds();
    int rc = real_ops->put_cells(be, x, n, w, off, src, add, coef, err);
    t_put += md_clock_seconds() - t0;
    return rc;
}

static int counted_get_cells(md_backend *be, float *dst, const float *x, int n, int w, const size_t *off,
                             md_error *err)
{
    n_get++;
    double t0 = md_clock_seconds();
    int rc = real_ops->get_cells(be, dst, x, n, w, off, err);
    t_get += md_clock_seconds() - t0;
    return rc;
}

typedef struct grid {
    md_model *m;
    md_kvcache *root; /* the prompts' prefix [0, t), pairs sequences */
    int nb, t, T, heads;
    float *rin, *vec, *lg; /* [S][d], [S][W], [S][2] */
    int *starts, *pos, *head; /* [S], [L][S], [S] */
    md_hook *hk;              /* [S] */
} grid;

/* One forward of the grid (layer l for heads), batched or single hooks. */
static int grid_forward(grid *g, int l, int batched, md_error *err)
{
    const md_config *c = &g->m->cfg;
    int L = c->n_layers, nb = g->nb, S = nb * (g->heads ? c->n_heads : L);
    int W = g->heads ? c->head_dim : c->d_model, ids[2] = {3, 5}, nh = 0;
    for (int s = 0; s < S; s++) {
        int k = s / nb; /* the head, or the layer */
        g->starts[s] = k;
        g->head[s] = k;
        for (int ll = 0; ll < L; ll++) g->pos[(size_t)ll * S + s] = (g->heads || ll == k) ? g->t : -1;
        if (!batched)
            g->hk[nh++] = (md_hook){.point = g->heads ? MD_HOOK_Z : MD_HOOK_MLP_OUT, .op = MD_HOOK_REPLACE,
                                    .layer = g->heads ? l : k, .seq = s, .pos = g->t, .head = g->heads ? k : 0,
                                    .vec = g->vec + (size_t)s * W};
    }
    for (int k = 0; batched && k < (g->heads ? 1 : L); k++)
        g->hk[nh++] = (md_hook){.point = g->heads ? MD_HOOK_Z : MD_HOOK_MLP_OUT, .op = MD_HOOK_REPLACE,
                                .layer = g->heads ? l : k, .seq = MD_ALL, .pos = MD_ALL, .vec = g->vec,
                                .vec_per_seq = 1, .seq_pos = g->pos + (size_t)k * S,
                                .seq_head = g->heads ? g->head : NULL};
    md_kvcache *fork = NULL;
    if (md_kvcache_fork(&fork, g->root, g->t, S, g->T - g->t, err) != MD_OK) return MD_ERR;
    md_forward f;
    md_forward_init_partial(&f, g->m, S, g->t, g->T, g->heads ? l : 0, g->rin, NULL, fork);
    if (!g->heads) f.seq_layer_start = g->starts;
    md_forward_set_hooks(&f, g->hk, nh);
    md_forward_set_logits(&f, MD_LOGITS_LAST, g->lg, ids, 2);
    int rc = md_model_forward(g->m, &f, err);
    md_kvcache_free(fork);
    return rc;
}

/* The grid `reps` times each way: prints hook calls, seconds, equality. */
static int grid_run(grid *g, int reps, md_error *err)
{
    const md_config *c = &g->m->cfg;
    int S = g->nb * (g->heads ? c->n_heads : c->n_layers), n_fw = g->heads ? c->n_layers : 1;
    float *keep = malloc((size_t)S * 2 * n_fw * sizeof(float));
    double sec[2] = {1e30, 1e30}; /* best of reps: the machine may be shared */
    long puts[2] = {0, 0};
    double in_put[2] = {1e30, 1e30};
    int same = 1;
    for (int r = 0; r < reps; r++)
        for (int i = 0; i < 2; i++) {
            int batched = (r + i) % 2; /* alternate which way runs first */
            n_put = 0;
            t_put = 0;
            double t0 = md_clock_seconds();
            for (int l = 0; l < n_fw; l++) {
                if (grid_forward(g, l, batched, err) != MD_OK) {
                    free(keep);
                    return MD_ERR;
                }
                float *k = keep + (size_t)l * S * 2;
                if (r == 0 && i == 0) memcpy(k, g->lg, (size_t)S * 2 * sizeof(float));
                else same &= memcmp(k, g->lg, (size_t)S * 2 * sizeof(float)) == 0;
            }
            double t = md_clock_seconds() - t0;
            if (t < sec[batched]) sec[batched] = t;
            if (t_put < in_put[batched]) in_put[batched] = t_put;
            puts[batched] = n_put;
        }
    printf("%-8s %4d seq/forward, %d forward(s): hook applications per forward %.1f single, %.1f batched (%.1fx "
           "fewer), in them %.1f us vs %.1f us; forward %.3f ms single, %.3f ms batched (single/batched %.3f); "
           "logits %s\n",
           g->heads ? "heads" : "mlp_out", S, n_fw, (double)puts[0] / n_fw, (double)puts[1] / n_fw,
           (double)puts[0] / (puts[1] ? puts[1] : 1), 1e6 * in_put[0] / n_fw, 1e6 * in_put[1] / n_fw,
           1e3 * sec[0] / n_fw, 1e3 * sec[1] / n_fw, sec[0] / sec[1], same ? "bit-identical" : "DIFFER");
    free(keep);
    return same ? MD_OK : md_error_set(err, "batched and single hooks gave different logits");
}

/* The clean run's reads (kn_read_target): resid_pre at the last n_toks
 * positions of every prompt, every layer; one READ per (prompt, position)
 * (as before batched reads: one copy per sequence) vs one per position. */
static int reads_run(md_model *m, const int *tok, int nb, int T, int n_toks, int reps, md_error *err)
{
    int L = m->cfg.n_layers, d = m->cfg.d_model, nh[2] = {nb * n_toks, n_toks};
    size_t per = (size_t)L * nb * n_toks * d;
    float *out[2] = {malloc(per * sizeof(float)), malloc(per * sizeof(float))};
    md_hook *hk = calloc((size_t)nb * n_toks, sizeof *hk);
    md_kvcache *kc = NULL;
    double sec[2] = {1e30, 1e30}, in_get[2] = {1e30, 1e30};
    long gets[2] = {0, 0};
    int rc = md_kvcache_create(&kc, m, nb, T, err);
    for (int r = 0; r < reps && rc == MD_OK; r++)
        for (int i = 0; i < 2 && rc == MD_OK; i++) {
            int batched = (r + i) % 2;
            for (int k = 0; k < nh[batched]; k++) { /* single: out [s][j][L][d]; batched: [j][L][nb][d] */
                int j = batched ? k : k % n_toks, s = batched ? MD_ALL : k / n_toks;
                hk[k] = (md_hook){.point = MD_HOOK_RESID_PRE, .op = MD_HOOK_READ, .layer = MD_ALL, .seq = s,
                                  .pos = T - n_toks + j, .out = out[batched] + (size_t)k * L * (batched ? nb : 1) * d};
            }
            md_forward f;
            md_kvcache_truncate(kc, 0);
            md_forward_init_batch(&f, m, nb, T, tok, NULL, kc);
            md_forward_set_hooks(&f, hk, nh[batched]);
            md_forward_set_logits(&f, MD_LOGITS_NONE, NULL, NULL, 0);
            n_get = 0;
            t_get = 0;
            double t0 = md_clock_seconds();
            rc = md_model_forward(m, &f, err);
            double t = md_clock_seconds() - t0;
            if (t < sec[batched]) sec[batched] = t;
            if (t_get < in_get[batched]) in_get[batched] = t_get;
            gets[batched] = n_get;
        }
    int same = 1;
    for (int s = 0; rc == MD_OK && s < nb; s++)
        for (int j = 0; j < n_toks; j++)
            for (int l = 0; l < L; l++)
                same &= memcmp(out[0] + ((((size_t)s * n_toks + j) * L + l) * d),
                               out[1] + ((((size_t)j * L + l) * nb + s) * d), (size_t)d * sizeof(float)) == 0;
    if (rc == MD_OK)
        printf("reads    %4d seq, %d positions x %d layers: get_cells calls per forward %ld single, %ld batched "
               "(%.1fx fewer), in them %.1f us vs %.1f us; forward %.3f ms single, %.3f ms batched (single/batched "
               "%.3f); reads %s\n",
               nb, n_toks, L, gets[0], gets[1], (double)gets[0] / (gets[1] ? gets[1] : 1), 1e6 * in_get[0],
               1e6 * in_get[1], 1e3 * sec[0], 1e3 * sec[1], sec[0] / sec[1], same ? "bit-identical" : "DIFFER");
    md_kvcache_free(kc);
    free(out[0]), free(out[1]), free(hk);
    if (rc == MD_OK && !same) return md_error_set(err, "batched and single reads differ");
    return rc;
}

int main(int argc, char **argv)
{
    const char *dir = "models/organism-base";
    int nb = 16, T = 40, reps = 20;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--pairs") == 0 && i + 1 < argc) nb = atoi(argv[++i]);
        else if (strcmp(argv[i], "--prompt") == 0 && i + 1 < argc) T = atoi(argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
        else dir = argv[i];
    }
    md_model_options o;
    md_model_options_init(&o);
    o.skip_tokenizer = 1;
    md_error err = {0};
    md_model *m = NULL;
    if (md_model_load(&m, dir, &o, &err) != MD_OK) {
        fprintf(stderr, "bench_hooks: %s\n", err.msg);
        return 1;
    }
    md_backend_ops counted = *m->be->ops;
    real_ops = m->be->ops;
    counted.put_cells = counted_put_cells;
    counted.get_cells = counted_get_cells;
    m->be->ops = &counted;
    const md_config *c = &m->cfg;
    int L = c->n_layers, S = nb * (c->n_heads > L ? c->n_heads : L), d = c->d_model, rc = 1;
    grid g = {.m = m, .nb = nb, .t = T - 1, .T = T};
    int *tok = malloc((size_t)nb * T * sizeof(int));
    g.rin = malloc((size_t)S * d * sizeof(float));
    g.vec = malloc((size_t)S * d * sizeof(float));
    g.lg = malloc((size_t)S * 2 * sizeof(float));
    g.starts = malloc((size_t)S * sizeof(int));
    g.pos = malloc((size_t)S * L * sizeof(int));
    g.head = malloc((size_t)S * sizeof(int));
    g.hk = calloc((size_t)S, sizeof(md_hook));
    for (int i = 0; i < nb * T; i++) tok[i] = (int)((i * 2654435761u) % (unsigned)c->vocab_size);
    for (size_t i = 0; i < (size_t)S * d; i++) g.rin[i] = (float)((i * 40503u) % 1000) * 1e-3f - 0.5f;
    for (size_t i = 0; i < (size_t)S * d; i++) g.vec[i] = (float)((i * 9973u) % 1000) * 1e-3f - 0.5f;
    printf("bench_hooks: %s (d %d, %d layers, %d heads), %d pairs, prompt %d, last position, %d reps\n", dir, d, L,
           c->n_heads, nb, T, reps);
    md_forward f;
    if (md_kvcache_create(&g.root, m, nb, T, &err) == MD_OK) {
        md_forward_init_batch(&f, m, nb, g.t, tok, NULL, g.root);
        md_forward_set_logits(&f, MD_LOGITS_NONE, NULL, NULL, 0);
        if (md_model_forward(m, &f, &err) == MD_OK && grid_run(&g, reps, &err) == MD_OK) {
            g.heads = 1;
            rc = grid_run(&g, reps, &err) == MD_OK && reads_run(m, tok, nb, T, 4, reps, &err) == MD_OK ? 0 : 1;
        }
    }
    if (rc) fprintf(stderr, "bench_hooks: %s\n", err.msg);
    md_kvcache_free(g.root);
    free(tok), free(g.rin), free(g.vec), free(g.lg), free(g.starts), free(g.pos), free(g.head), free(g.hk);
    m->be->ops = real_ops;
    md_model_free(m);
    return rc;
}
