/* test_hook_batch.c — batched hooks (md_hook.seq_pos / seq_head, forward.h)
 * on golden models:
 *   - one batched hook gives exactly (memcmp) the logits of the single
 *     per-sequence hooks it stands for: replace at resid_pre, attn_out and
 *     mlp_post (one vec for all: the packed path), z and pattern with a
 *     head per sequence, add at resid_mid at every layer; a sequence with a
 *     negative position is left alone;
 *   - it reaches the backend as one put_cells call per (hook, layer),
 *     whatever the number of sequences (the single hooks: one each);
 *   - a read of one position of every sequence is one get_cells per layer
 *     and equals that position's rows of a read of every position;
 *   - bad batched hooks are refused with the reason, generation refuses them.
 * A replace is a copy and an add is x + coef * v in both paths, so equality
 * is exact on any backend.
 *   test_hook_batch         CPU backend (ctest unit.test_hook_batch)
 *   test_hook_batch --gpu   CUDA backend (ctest gpu.test_hook_batch); exit 77
 *                           = skip without a GPU or a CUDA build */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/backend.h"
#include "mechdiff/device.h"
#include "mechdiff/forward.h"
#include "mechdiff/generate.h"
#include "mechdiff/model.h"
#include "testutil.h"

enum { S = 5, T = 6 };

static const int PAD[S] = {0, 2, 0, 1, 0};
static const int POS[S] = {3, -1, 5, 1, 4};  /* batched cells: sequence 1 untouched */
static const int HEAD[S] = {1, 0, 3, 0, 2}; /* heads, mod n_heads */

/* The backend's put_cells, counted (a wrapped op table, as test_forward's
 * fault injection). */
static const md_backend_ops *real_ops;
static int n_put, n_get;

static int counted_put_cells(md_backend *be, float *x, int n, int w, const size_t *off, const float *src, int add,
                             float coef, md_error *err)
{
    n_put++;
    return real_ops->put_cells(be, x, n, w, off, src, add, coef, err);
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static float urand(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng >> 40) / 16777216.0);
}

static int counted_get_cells(md_backend *be, float *dst, const float *x, int n, int w, const size_t *off,
                             md_error *err)
{
    n_get++;
    return real_ops->get_cells(be, dst, x, n, w, off, err);
}

/* All logits of the S padded sequences with hooks hk; put_cells calls in *puts. */
static int run(md_model *m, const int *tokens, const md_hook *hk, int nh, float *lg, int *puts, md_error *err)
{
    md_kvcache *kc = NULL;
    if (md_kvcache_create(&kc, m, S, T, err) != MD_OK) return MD_ERR;
    md_forward f;
    md_forward_init_batch(&f, m, S, T, tokens, PAD, kc);
    md_forward_set_hooks(&f, hk, nh);
    md_forward_set_logits(&f, MD_LOGITS_ALL, lg, NULL, 0);
    n_put = 0;
    int rc = md_model_forward(m, &f, err);
    *puts = n_put;
    md_kvcache_free(kc);
    return rc;
}

/* The single hooks that batched hook b stands for (cell width cw): one per
 * sequence with a cell; returns their number. */
static int singles(const md_hook *b, size_t cw, md_hook *out)
{
    int n = 0;
    for (int s = 0; s < S; s++) {
        if (b->seq_pos[s] < 0) continue;
        out[n] = *b;
        out[n].seq = s;
        out[n].pos = b->seq_pos[s];
        out[n].head = b->seq_head ? b->seq_head[s] : b->head;
        out[n].vec = b->vec + (b->vec_per_seq ? (size_t)s * cw : 0);
        out[n].vec_per_seq = 0;
        out[n].seq_pos = out[n].seq_head = NULL;
        n++;
    }
    return n;
}

/* resid_post at position 4 of every sequence and layer (one get_cells per
 * layer) == those rows of the read of every position (one to_host). */
static void check_read(md_model *m, const int *tokens, float *lg, const char *name)
{
    int L = m->cfg.n_layers, d = m->cfg.d_model, puts = 0;
    float *all = malloc((size_t)L * S * T * d * sizeof(float)), *one = malloc((size_t)L * S * d * sizeof(float));
    md_hook rd[2] = {{.point = MD_HOOK_RESID_POST, .op = MD_HOOK_READ, .layer = MD_ALL, .seq = MD_ALL, .pos = MD_ALL,
                      .out = all},
                     {.point = MD_HOOK_RESID_POST, .op = MD_HOOK_READ, .layer = MD_ALL, .seq = MD_ALL, .pos = 4,
                      .out = one}};
    md_error err = {0};
    n_get = 0;
    CHECK_MSG(run(m, tokens, rd, 2, lg, &puts, &err) == MD_OK, "%s", err.msg);
    int same = 1;
    for (int l = 0; l < L; l++)
        for (int s = 0; s < S; s++)
            same &= memcmp(one + ((size_t)l * S + s) * d, all + (((size_t)l * S + s) * T + 4) * d,
                           (size_t)d * sizeof(float)) == 0;
    CHECK_MSG(same, "%s: the read of one position != those rows of the read of all", name);
    CHECK_MSG(n_get == L, "%s: %d get_cells calls for a one-position read at %d layers", name, n_get, L);
    printf("%-14s resid_post read at one position of %d sequences: %d get_cells calls (one per layer), equal\n", name,
           S, n_get);
    free(all);
    free(one);
}

/* Bad batched hooks: refused, the message naming why. */
static void check_refusals(md_model *m, const int *tokens, const float *vec, float *lg, const char *name)
{
    int heads[S], puts = 0;
    for (int s = 0; s < S; s++) heads[s] = s == 2 ? m->cfg.n_heads : 0;
    float out[64];
    md_hook base = {.point = MD_HOOK_RESID_PRE, .op = MD_HOOK_REPLACE, .layer = 0, .seq = MD_ALL, .pos = MD_ALL,
                    .vec = vec, .seq_pos = POS};
    struct { md_hook h; const char *why; } bad[5];
    for (int i = 0; i < 5; i++) bad[i].h = base;
    bad[0].h.op = MD_HOOK_READ, bad[0].h.out = out, bad[0].why = "replace and add";
    bad[1].h.seq = 0, bad[1].why = "seq = pos = MD_ALL";
    bad[2].h.seq_head = heads, bad[2].why = "per-head points";
    bad[3].h.point = MD_HOOK_Z, bad[3].h.seq_head = heads, bad[3].why = "head";
    bad[4].h.seq_pos = NULL, bad[4].h.point = MD_HOOK_Z, bad[4].h.seq_head = HEAD, bad[4].why = "needs seq_pos";
    for (int i = 0; i < 5; i++) {
        md_error err = {0};
        CHECK_MSG(run(m, tokens, &bad[i].h, 1, lg, &puts, &err) == MD_ERR && strstr(err.msg, bad[i].why),
                  "%s: bad batched hook %d: '%s' lacks '%s'", name, i, err.msg, bad[i].why);
    }
    const int *ids[1] = {tokens};
    int len[1] = {T};
    md_generation g;
    md_error err = {0};
    CHECK_MSG(md_generate_greedy(m, 1, ids, len, 1, &base, 1, &g, &err) == MD_ERR && strstr(err.msg, "generate"),
              "%s: generation took a batched hook (%s)", name, err.msg);
    md_generation_free(&g);
}

static void check_model(const char *dir, md_backend_kind kind, int device)
{
    md_model *m = NULL;
    md_model_options o;
    md_error err = {0};
    md_model_options_init(&o);
    o.skip_tokenizer = 1;
    o.backend = kind;
    o.device = device;
    if (md_model_load(&m, dir, &o, &err) != MD_OK) {
        CHECK_MSG(0, "%s", err.msg);
        return;
    }
    md_backend_ops counted = *m->be->ops;
    real_ops = m->be->ops;
    counted.put_cells = counted_put_cells;
    counted.get_cells = counted_get_cells;
    m->be->ops = &counted;
    const md_config *c = &m->cfg;
    int L = c->n_layers, V = c->vocab_size, heads[S];
    size_t wmax = (size_t)(c->d_ff > c->d_model ? c->d_ff : c->d_model), nl = (size_t)S * T * V;
    int *tokens = malloc((size_t)S * T * sizeof(int));
    float *vec = malloc((size_t)S * wmax * sizeof(float)), *clean = malloc(nl * sizeof(float));
    float *lb = malloc(nl * sizeof(float)), *ls = malloc(nl * sizeof(float));
    for (int i = 0; i < S * T; i++) tokens[i] = (int)(urand() * V);
    for (size_t i = 0; i < (size_t)S * wmax; i++) vec[i] = urand() - 0.5f;
    for (int s = 0; s < S; s++) heads[s] = HEAD[s] % c->n_heads;
    int puts = 0;
    CHECK_MSG(run(m, tokens, NULL, 0, clean, &puts, &err) == MD_OK, "%s", err.msg);
    struct { md_hook_point point; md_hook_op op; int layer, per_seq, per_head; size_t cw; } cases[] = {
        {MD_HOOK_RESID_PRE, MD_HOOK_REPLACE, 0, 1, 0, (size_t)c->d_model},
        {MD_HOOK_ATTN_OUT, MD_HOOK_REPLACE, L - 1, 1, 0, (size_t)c->d_model},
        {MD_HOOK_MLP_POST, MD_HOOK_REPLACE, L - 1, 0, 0, (size_t)c->d_ff},
        {MD_HOOK_Z, MD_HOOK_REPLACE, 0, 1, 1, (size_t)c->head_dim},
        {MD_HOOK_PATTERN, MD_HOOK_REPLACE, L - 1, 1, 1, (size_t)T},
        {MD_HOOK_RESID_MID, MD_HOOK_ADD, MD_ALL, 1, 0, (size_t)c->d_model},
    };
    const char *base = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        md_hook b = {.point = cases[k].point, .op = cases[k].op, .layer = cases[k].layer, .seq = MD_ALL,
                     .pos = MD_ALL, .vec = vec, .vec_per_seq = cases[k].per_seq, .coef = 0.7f, .seq_pos = POS,
                     .seq_head = cases[k].per_head ? heads : NULL};
        md_hook one[S];
        int n1 = singles(&b, cases[k].cw, one), layers = b.layer == MD_ALL ? L : 1, pb = 0, ps = 0;
        CHECK_MSG(run(m, tokens, &b, 1, lb, &pb, &err) == MD_OK, "%s", err.msg);
        CHECK_MSG(run(m, tokens, one, n1, ls, &ps, &err) == MD_OK, "%s", err.msg);
        const char *pn = md_hook_point_name(b.point);
        CHECK_MSG(memcmp(lb, ls, nl * sizeof(float)) == 0, "%s %s: batched hook != %d single hooks", base, pn, n1);
        CHECK_MSG(memcmp(lb, clean, nl * sizeof(float)) != 0, "%s %s: the hook changed nothing", base, pn);
        /* sequence 1 has no cell: its logits are the clean run's */
        CHECK_MSG(memcmp(lb + (size_t)T * V, clean + (size_t)T * V, (size_t)T * V * sizeof(float)) == 0,
                  "%s %s: a sequence without a cell changed", base, pn);
        CHECK_MSG(pb == layers && ps == n1 * layers,
                  "%s %s: %d put_cells calls batched (want %d), %d single", base, pn, pb, layers, ps);
        printf("%-14s %-10s %-7s batched == %d single hooks; put_cells calls %d (batched) vs %d (single)\n", base,
               pn, b.op == MD_HOOK_ADD ? "add" : "replace", n1, pb, ps);
    }
    check_read(m, tokens, lb, base);
    check_refusals(m, tokens, vec, lb, base);
    free(tokens), free(vec), free(clean), free(lb), free(ls);
    m->be->ops = real_ops;
    md_model_free(m);
}

int main(int argc, char **argv)
{
    int gpu = argc > 1 && strcmp(argv[1], "--gpu") == 0, dev = 0, n = 0;
    char why[512] = "";
    if (gpu) {
        md_device_count(&n, why, sizeof why);
        md_error err;
        if (n <= 0) {
            printf("cuda: skipped (no device): %s\n", why);
            return 77;
        }
        if (md_device_pick(&dev, &err) != MD_OK) dev = 0;
    }
    const char *dirs[] = {"tests/golden/models/llama3_bf16", "tests/golden/models/gemma2_bf16",
                          "tests/golden/models/qwen3_f32"};
    for (int i = 0; i < 3; i++) check_model(dirs[i], gpu ? MD_BACKEND_CUDA : MD_BACKEND_CPU, dev);
    TEST_MAIN_END();
}
