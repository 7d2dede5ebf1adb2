/* test_forward.c — the forward pass against transformers' golden outputs
 * (tests/golden/models, made by scripts/dev/make_golden.py), and the hook,
 * cache and partial-forward invariants.
 *
 * Tolerances: fp32 weights and fp32 math on both sides; the only differences
 * are summation order in GEMMs/softmax and libm's exp/cos, a few ulps per op
 * on values of size O(1) through a few layers: 1e-4 absolute on logits and
 * activations is ~100x that noise and ~1000x below any real bug's effect.
 * The bf16 checkpoint is compared with a reference computed in fp32 from the
 * same bf16-rounded weights, so the same 1e-4 applies; against transformers
 * running entirely in bf16 (8-bit mantissa: relative error 2^-8 ≈ 0.4% per
 * rounding, accumulated over ~10 roundings per layer) we only check that the
 * deviation stays below 5% of the logit range, and print it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mechdiff/dtype.h"
#include "mechdiff/forward.h"
#include "mechdiff/generate.h"
#include "mechdiff/safetensors.h"
#include "mechdiff/sysmem.h"
#include "testutil.h"

typedef struct golden {
    md_safetensors *st;
    md_model *m;
    int B, T, V;
} golden;

static const float *gt(const golden *g, const char *name, size_t *n)
{
    const md_tensor_info *t = md_safetensors_find(g->st, name);
    if (!t || t->dtype != MD_DTYPE_F32) return NULL;
    if (n) *n = t->nbytes / 4;
    return t->data;
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN propagates as a failure */
    }
    return m;
}

static int golden_open(golden *g, const char *name)
{
    char dir[512], path[600];
    md_error err = {0};
    memset(g, 0, sizeof *g);
    snprintf(dir, sizeof dir, "tests/golden/models/%s", name);
    snprintf(path, sizeof path, "%s/golden.safetensors", dir);
    if (md_safetensors_open_file(&g->st, path, &err) != MD_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    if (md_model_load(&g->m, dir, NULL, &err) != MD_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    const md_tensor_info *ids = md_safetensors_find(g->st, "input_ids");
    if (!ids) return -1;
    g->B = (int)ids->shape[0];
    g->T = (int)ids->shape[1];
    g->V = g->m->cfg.vocab_size;
    return 0;
}

static void golden_close(golden *g)
{
    md_model_free(g->m);
    md_safetensors_close(g->st);
}

/* The golden batch's input ids [B*T] as ints (malloc'd; caller frees). */
static int *golden_tokens(golden *g)
{
    int N = g->B * g->T;
    int *tokens = malloc((size_t)N * sizeof(int));
    const float *idsf = gt(g, "input_ids", NULL);
    for (int i = 0; tokens && i < N; i++) tokens[i] = (int)idsf[i];
    return tokens;
}

/* Full forward of the golden batch with READ hooks on every point. */
static void check_against_golden(const char *name, double tol)
{
    golden g;
    if (golden_open(&g, name) != 0) {
        CHECK_MSG(0, "cannot open golden model %s", name);
        golden_close(&g);
        return;
    }
    md_model *m = g.m;
    const md_config *c = &m->cfg;
    md_error err = {0};
    int N = g.B * g.T;
    int *tokens = golden_tokens(&g);
    float *logits = malloc((size_t)N * g.V * sizeof(float));
    md_hook hooks[MD_HOOK_COUNT];
    md_kvcache *kc = NULL;
    CHECK(md_kvcache_create(&kc, m, g.B, g.T, &err) == MD_OK);
    md_forward f;
    md_forward_init_tokens(&f, m, g.B, g.T, tokens);
    f.logits = MD_LOGITS_ALL;
    f.logits_out = logits;
    f.cache = kc;
    f.hooks = hooks;
    f.n_hooks = MD_HOOK_COUNT;
    for (int p = 0; p < MD_HOOK_COUNT; p++) {
        hooks[p] = (md_hook){.point = p, .op = MD_HOOK_READ, .layer = MD_ALL, .seq = MD_ALL, .pos = MD_ALL,
                             .head = MD_ALL};
        hooks[p].out = malloc(md_hook_read_count(m, &f, &hooks[p]) * sizeof(float));
    }
    int ok = md_model_forward(m, &f, &err) == MD_OK;
    CHECK_MSG(ok, "%s: %s", name, err.msg);
    size_t n = 0;
    const float *ref = gt(&g, "logits", &n);
    CHECK(ref && n == (size_t)N * g.V);
    double dl = ref ? max_abs_diff(logits, ref, n) : 1e9;
    CHECK_MSG(dl <= tol, "%s: max |dlogit| %.3g > %.3g", name, dl, tol);
    printf("%-22s max|dlogit| %.2e", name, dl);
    for (int p = 0; p < MD_HOOK_COUNT; p++) {
        char key[64];
        snprintf(key, sizeof key, "acts.%s", md_hook_point_name(p));
        const float *a = gt(&g, key, &n);
        CHECK_MSG(a && n == md_hook_read_count(m, &f, &hooks[p]), "%s: %s missing or wrong size", name, key);
        if (!a) continue;
        double da = max_abs_diff(hooks[p].out, a, n);
        CHECK_MSG(da <= tol, "%s: %s max |d| %.3g > %.3g", name, key, da, tol);
        printf("  %s %.1e", md_hook_point_name(p), da);
    }
    printf("\n");
    const float *ref16 = gt(&g, "logits_bf16compute", &n);
    if (ref16) {
        double lo = 1e30, hi = -1e30;
        for (size_t i = 0; i < n; i++) {
            if (ref[i] < lo) lo = ref[i];
            if (ref[i] > hi) hi = ref[i];
        }
        double d16 = max_abs_diff(logits, ref16, n);
        printf("%-22s vs transformers in bf16: max|dlogit| %.3g (logit range %.3g)\n", name, d16, hi - lo);
        CHECK(d16 <= 0.05 * (hi - lo));
    }

    /* Greedy generation. */
    size_t np = 0, ng = 0;
    const float *gp = gt(&g, "generate.prompt", &np), *gi = gt(&g, "generate.ids", &ng);
    if (gp && gi) {
        int prompt[64];
        for (size_t i = 0; i < np; i++) prompt[i] = (int)gp[i];
        const int *pp[1] = {prompt};
        int len = (int)np;
        md_generation gen;
        CHECK(md_generate_greedy(m, 1, pp, &len, (int)ng, NULL, 0, &gen, &err) == MD_OK);
        int same = gen.out_len[0] == (int)ng;
        for (size_t i = 0; same && i < ng; i++) same = gen.out_ids[0][i] == (int)gi[i];
        CHECK_MSG(same, "%s: greedy generation differs from transformers", name);
        md_generation_free(&gen);
    }

    /* Patching reference: resid_post of layer 1 at position 5 of seq 1 into seq 0. */
    const float *pl = gt(&g, "patch.logits", &n);
    if (pl && c->n_layers > 1) {
        int d = c->d_model;
        const md_hook *rp = &hooks[MD_HOOK_RESID_POST];
        /* out layout [layer][seq][pos][d] */
        const float *src = rp->out + (((size_t)1 * g.B + 1) * g.T + 5) * d;
        md_hook patch = {.point = MD_HOOK_RESID_POST, .op = MD_HOOK_REPLACE, .layer = 1, .seq = 0, .pos = 5,
                         .vec = src};
        md_kvcache *k1 = NULL;
        CHECK(md_kvcache_create(&k1, m, 1, g.T, &err) == MD_OK);
        md_forward pf;
        md_forward_init_tokens(&pf, m, 1, g.T, tokens);
        pf.logits = MD_LOGITS_ALL;
        float *plog = malloc((size_t)g.T * g.V * sizeof(float));
        pf.logits_out = plog;
        pf.cache = k1;
        pf.hooks = &patch;
        pf.n_hooks = 1;
        CHECK(md_model_forward(m, &pf, &err) == MD_OK);
        double dp = max_abs_diff(plog, pl, (size_t)g.T * g.V);
        CHECK_MSG(dp <= tol, "%s: patched logits max |d| %.3g", name, dp);
        free(plog);
        md_kvcache_free(k1);
    }
    for (int p = 0; p < MD_HOOK_COUNT; p++) free(hooks[p].out);
    free(logits);
    free(tokens);
    md_kvcache_free(kc);
    golden_close(&g);
}

/* Hook and partial-forward invariants on one model. */
static void check_invariants(const char *name)
{
    golden g;
    if (golden_open(&g, name) != 0) {
        CHECK_MSG(0, "cannot open %s", name);
        golden_close(&g);
        return;
    }
    md_model *m = g.m;
    md_error err = {0};
    int T = g.T, V = g.V, d = m->cfg.d_model, L = m->cfg.n_layers;
    int tokens[64];
    const float *idsf = gt(&g, "input_ids", NULL);
    for (int i = 0; i < T; i++) tokens[i] = (int)idsf[i];

    /* Clean run of sequence 0, reading resid_pre and resid_post everywhere. */
    float *clean_logits = malloc((size_t)V * sizeof(float));
    float *pre = malloc((size_t)L * T * d * sizeof(float)), *post = malloc((size_t)L * T * d * sizeof(float));
    md_hook rd[2] = {{.point = MD_HOOK_RESID_PRE, .op = MD_HOOK_READ, .layer = MD_ALL, .seq = MD_ALL, .pos = MD_ALL, .out = pre},
                     {.point = MD_HOOK_RESID_POST, .op = MD_HOOK_READ, .layer = MD_ALL, .seq = MD_ALL, .pos = MD_ALL, .out = post}};
    md_kvcache *root = NULL;
    CHECK(md_kvcache_create(&root, m, 1, T, &err) == MD_OK);
    md_forward f;
    md_forward_init_tokens(&f, m, 1, T, tokens);
    f.logits_out = clean_logits;
    f.cache = root;
    f.hooks = rd;
    f.n_hooks = 2;
    CHECK(md_model_forward(m, &f, &err) == MD_OK);

    /* 1. Replacing a cell with its own clean value changes nothing, bit for bit. */
    {
        int l = L / 2, t = T - 3;
        md_hook same = {.point = MD_HOOK_RESID_POST, .op = MD_HOOK_REPLACE, .layer = l, .seq = 0, .pos = t,
                        .vec = post + ((size_t)l * T + t) * d};
        md_kvcache *kc = NULL;
        float *lg = malloc((size_t)V * sizeof(float));
        CHECK(md_kvcache_create(&kc, m, 1, T, &err) == MD_OK);
        md_forward h = f;
        h.cache = kc;
        h.hooks = &same;
        h.n_hooks = 1;
        h.logits_out = lg;
        CHECK(md_model_forward(m, &h, &err) == MD_OK);
        CHECK_MSG(memcmp(lg, clean_logits, (size_t)V * sizeof(float)) == 0, "%s: self-patch changed logits", name);
        free(lg);
        md_kvcache_free(kc);
    }
    /* 2. A hook at layer l changes nothing before l. */
    {
        int l = L - 1;
        float *pre2 = malloc((size_t)L * T * d * sizeof(float));
        float *dir = calloc((size_t)d, sizeof(float));
        dir[0] = 1.0f;
        md_hook hk[2] = {{.point = MD_HOOK_RESID_PRE, .op = MD_HOOK_ADD, .layer = l, .seq = MD_ALL, .pos = MD_ALL, .vec = dir, .coef = 5.0f},
                         {.point = MD_HOOK_RESID_PRE, .op = MD_HOOK_READ, .layer = MD_ALL, .seq = MD_ALL, .pos = MD_ALL, .out = pre2}};
        /* the READ hook is registered after the ADD one, so at layer l it sees the addition */
        md_kvcache *kc = NULL;
        float *lg = malloc((size_t)V * sizeof(float));
        CHECK(md_kvcache_create(&kc, m, 1, T, &err) == MD_OK);
        md_forward h = f;
        h.cache = kc;
        h.hooks = hk;
        h.n_hooks = 2;
        h.logits_out = lg;
        CHECK(md_model_forward(m, &h, &err) == MD_OK);
        CHECK(memcmp(pre2, pre, (size_t)l * T * d * sizeof(float)) == 0);
        CHECK(pre2[((size_t)l * T) * d] != pre[((size_t)l * T) * d]);
        CHECK(memcmp(lg, clean_logits, (size_t)V * sizeof(float)) != 0);
        free(pre2);
        free(dir);
        free(lg);
        md_kvcache_free(kc);
    }
    /* 3. Partial forward from (l, t) with the cache for positions < t equals
     *    the full forward (a batch of per-sequence start layers, one per l). */
    {
        int t = T - 4, np = T - t;
        md_kvcache *fork = NULL;
        CHECK(md_kvcache_fork(&fork, root, t, L, np, &err) == MD_OK);
        int *starts = malloc((size_t)L * sizeof(int));
        float *rin = malloc((size_t)L * np * d * sizeof(float));
        float *lg = malloc((size_t)L * V * sizeof(float));
        for (int l = 0; l < L; l++) {
            starts[l] = l;
            memcpy(rin + (size_t)l * np * d, pre + ((size_t)l * T + t) * d, (size_t)np * d * sizeof(float));
        }
        md_forward p;
        md_forward_init(&p, m);
        p.n_seq = L;
        p.t0 = t;
        p.t1 = T;
        p.resid_in = rin;
        p.seq_layer_start = starts;
        p.cache = fork;
        p.logits_out = lg;
        CHECK_MSG(md_model_forward(m, &p, &err) == MD_OK, "%s", err.msg);
        double worst = 0;
        for (int l = 0; l < L; l++) {
            double dd = max_abs_diff(lg + (size_t)l * V, clean_logits, (size_t)V);
            if (dd > worst) worst = dd;
        }
        /* Not bitwise: a GEMM over fewer rows may block differently in OpenBLAS. */
        CHECK_MSG(worst <= 1e-5, "%s: partial forward differs by %.3g", name, worst);
        printf("%-22s partial forward vs full: max|dlogit| %.2e\n", name, worst);
        free(starts);
        free(rin);
        free(lg);
        md_kvcache_free(fork);
    }
    /* 4. Ablating a unit direction leaves the hooked residual orthogonal to it. */
    {
        float *dir = malloc((size_t)d * sizeof(float));
        double nn = 0;
        for (int i = 0; i < d; i++) {
            dir[i] = (float)sin(i + 1.0);
            nn += (double)dir[i] * dir[i];
        }
        for (int i = 0; i < d; i++) dir[i] /= (float)sqrt(nn);
        float *got = malloc((size_t)L * T * d * sizeof(float));
        md_hook hk[2] = {{.point = MD_HOOK_RESID_MID, .op = MD_HOOK_ABLATE, .layer = MD_ALL, .seq = MD_ALL, .pos = MD_ALL, .vec = dir},
                         {.point = MD_HOOK_RESID_MID, .op = MD_HOOK_READ, .layer = MD_ALL, .seq = MD_ALL, .pos = MD_ALL, .out = got}};
        md_kvcache *kc = NULL;
        float *lg = malloc((size_t)V * sizeof(float));
        CHECK(md_kvcache_create(&kc, m, 1, T, &err) == MD_OK);
        md_forward h = f;
        h.cache = kc;
        h.hooks = hk;
        h.n_hooks = 2;
        h.logits_out = lg;
        CHECK(md_model_forward(m, &h, &err) == MD_OK);
        double worst = 0;
        for (int r = 0; r < L * T; r++) {
            double dot = 0, nx = 0;
            for (int i = 0; i < d; i++) {
                dot += (double)got[(size_t)r * d + i] * dir[i];
                nx += (double)got[(size_t)r * d + i] * got[(size_t)r * d + i];
            }
            double rel = fabs(dot) / (sqrt(nx) + 1e-30);
            if (rel > worst) worst = rel;
        }
        CHECK_MSG(worst < 1e-5, "%s: ablated residual has cosine %.3g with the direction", name, worst);
        free(dir);
        free(got);
        free(lg);
        md_kvcache_free(kc);
    }
    /* 5. Generation with a zero-coefficient addition equals plain generation. */
    {
        float *dir = calloc((size_t)d, sizeof(float));
        dir[1] = 1.0f;
        md_hook add0 = {.point = MD_HOOK_RESID_PRE, .op = MD_HOOK_ADD, .layer = 0, .vec = dir, .coef = 0.0f};
        const int *pp[2] = {tokens, tokens + 2};
        int len[2] = {T, T - 2};
        md_generation a, b;
        CHECK(md_generate_greedy(m, 2, pp, len, 6, NULL, 0, &a, &err) == MD_OK);
        CHECK(md_generate_greedy(m, 2, pp, len, 6, &add0, 1, &b, &err) == MD_OK);
        for (int s = 0; s < 2; s++) {
            CHECK(a.out_len[s] == b.out_len[s]);
            CHECK(memcmp(a.out_ids[s], b.out_ids[s], (size_t)a.out_len[s] * sizeof(int)) == 0);
        }
        /* A left-padded prompt generates what it generates alone. */
        md_generation c1;
        CHECK(md_generate_greedy(m, 1, pp + 1, len + 1, 6, NULL, 0, &c1, &err) == MD_OK);
        CHECK(c1.out_len[0] == a.out_len[1] &&
              memcmp(c1.out_ids[0], a.out_ids[1], (size_t)c1.out_len[0] * sizeof(int)) == 0);
        md_generation_free(&a);
        md_generation_free(&b);
        md_generation_free(&c1);
        free(dir);
    }
    /* 6. Bad inputs: a token outside the vocabulary, a cache too short, bad padding. */
    {
        int bad[2] = {0, V + 5};
        md_kvcache *kc = NULL;
        float lg[1];
        CHECK(md_kvcache_create(&kc, m, 1, 2, &err) == MD_OK);
        md_forward h;
        md_forward_init_tokens(&h, m, 1, 2, bad);
        h.cache = kc;
        h.logits_out = lg;
        CHECK(md_model_forward(m, &h, &err) == MD_ERR && strstr(err.msg, "vocabulary"));
        h.t1 = 3;
        CHECK(md_model_forward(m, &h, &err) == MD_ERR && strstr(err.msg, "capacity"));
        /* left padding must leave a real token: negative padding would
         * make attention read before its score row, full padding softmax
         * over no key */
        int good[2] = {0, 1}, pad = -1;
        md_forward_init_tokens(&h, m, 1, 2, good);
        h.cache = kc;
        h.logits_out = lg;
        h.n_pad = &pad;
        CHECK(md_model_forward(m, &h, &err) == MD_ERR && strstr(err.msg, "padding"));
        pad = 2;
        CHECK(md_model_forward(m, &h, &err) == MD_ERR && strstr(err.msg, "padding"));
        md_kvcache_free(kc);
    }
    free(clean_logits);
    free(pre);
    free(post);
    md_kvcache_free(root);
    golden_close(&g);
}

/* A weight as fp32 (malloc'd): the CPU backend's copy, or converted. */
static float *weight_f32(const md_weight *w)
{
    size_t n = (size_t)w->rows * w->cols;
    float *out = malloc(n * sizeof(float));
    if (!out) abort();
    if (w->prepared) memcpy(out, w->prepared, n * sizeof(float));
    else md_dtype_to_f32(out, w->host, w->dtype, n);
    return out;
}

/* Runs the B golden sequences with `hooks`; all logits into lg. */
static int run_hooked(golden *g, const int *tokens, const md_hook *hooks, int n_hooks, float *lg, md_error *err)
{
    md_kvcache *kc = NULL;
    if (md_kvcache_create(&kc, g->m, g->B, g->T, err) != MD_OK) return MD_ERR;
    md_forward f;
    md_forward_init_tokens(&f, g->m, g->B, g->T, tokens);
    f.logits = MD_LOGITS_ALL;
    f.logits_out = lg;
    f.cache = kc;
    f.hooks = hooks;
    f.n_hooks = n_hooks;
    int rc = md_model_forward(g->m, &f, err);
    md_kvcache_free(kc);
    return rc;
}

/* Per-head hooks (z, pattern) on one golden model: sum over heads of
 * z_h · W_O,hᵀ (then the post-attention norm where the family has one)
 * equals attn_out; one head's z patched as transformers did (head_patch.*);
 * writing back z or the pattern as read leaves the logits bit-identical;
 * a one-head READ is the slice of the all-heads read; a bad head is an error. */
static void check_heads(const char *name, double tol)
{
    golden g;
    if (golden_open(&g, name) != 0) {
        CHECK_MSG(0, "cannot open %s", name);
        golden_close(&g);
        return;
    }
    md_model *m = g.m;
    const md_config *c = &m->cfg;
    md_error err = {0};
    int B = g.B, T = g.T, V = g.V, L = c->n_layers, d = c->d_model, nh = c->n_heads, hd = c->head_dim;
    int qd = nh * hd, pw = nh * T, N = B * T;
    int *tokens = golden_tokens(&g);
    float *z = malloc((size_t)L * N * qd * sizeof(float)), *pat = malloc((size_t)L * N * pw * sizeof(float));
    float *ao = malloc((size_t)L * N * d * sizeof(float)), *z2 = malloc((size_t)L * N * hd * sizeof(float));
    float *clean = malloc((size_t)N * V * sizeof(float)), *lg = malloc((size_t)N * V * sizeof(float));
    md_hook rd[4] = {
        {.point = MD_HOOK_Z, .op = MD_HOOK_READ, .layer = MD_ALL, .seq = MD_ALL, .pos = MD_ALL, .out = z, .head = MD_ALL},
        {.point = MD_HOOK_PATTERN, .op = MD_HOOK_READ, .layer = MD_ALL, .seq = MD_ALL, .pos = MD_ALL, .out = pat,
         .head = MD_ALL},
        {.point = MD_HOOK_ATTN_OUT, .op = MD_HOOK_READ, .layer = MD_ALL, .seq = MD_ALL, .pos = MD_ALL, .out = ao},
        {.point = MD_HOOK_Z, .op = MD_HOOK_READ, .layer = MD_ALL, .seq = MD_ALL, .pos = MD_ALL, .out = z2, .head = 2},
    };
    CHECK_MSG(run_hooked(&g, tokens, rd, 4, clean, &err) == MD_OK, "%s: %s", name, err.msg);

    /* decomposition over heads, in double */
    double worst = 0.0;
    int slice_ok = 1;
    for (int l = 0; l < L; l++) {
        const md_layer *Ly = &m->layers[l];
        float *wo = weight_f32(&Ly->wo), *gain = md_weight_present(&Ly->attn_post_norm)
                                                     ? weight_f32(&Ly->attn_post_norm) : NULL;
        for (int r = 0; r < N; r++) {
            const float *zr = z + ((size_t)l * N + r) * qd;
            double o[512] = {0}, ss = 0.0;
            for (int h = 0; h < nh; h++)
                for (int j = 0; j < d; j++) {
                    double acc = 0.0;
                    for (int k = 0; k < hd; k++) acc += (double)zr[h * hd + k] * wo[(size_t)j * qd + h * hd + k];
                    o[j] += acc;
                }
            for (int j = 0; j < d; j++) ss += o[j] * o[j];
            double inv = gain ? 1.0 / sqrt(ss / d + c->rms_eps) : 1.0;
            for (int j = 0; j < d; j++) {
                double want = gain ? o[j] * inv * gain[j] : o[j];
                double dd = fabs(want - ao[((size_t)l * N + r) * d + j]);
                if (!(dd <= worst)) worst = dd;
            }
            slice_ok &= memcmp(z2 + ((size_t)l * N + r) * hd, zr + 2 * hd, (size_t)hd * sizeof(float)) == 0;
        }
        free(wo);
        free(gain);
    }
    CHECK_MSG(worst <= tol, "%s: sum_h z_h W_O,h vs attn_out max |d| %.3g", name, worst);
    CHECK_MSG(slice_ok, "%s: a one-head z read is not the slice of the all-heads read", name);

    /* one head's z from sequence src into dst, as transformers (head_patch.*) */
    size_t n = 0;
    const float *hpl = gt(&g, "head_patch.logits", &n);
    CHECK_MSG(hpl && n == (size_t)T * V, "%s: head_patch.logits missing", name);
    double dp = 1e9;
    if (hpl) {
        int hl = (int)gt(&g, "head_patch.layer", NULL)[0], hh = (int)gt(&g, "head_patch.head", NULL)[0];
        int hp = (int)gt(&g, "head_patch.pos", NULL)[0], src = (int)gt(&g, "head_patch.src_batch", NULL)[0];
        int dst = (int)gt(&g, "head_patch.dst_batch", NULL)[0];
        md_hook ph = {.point = MD_HOOK_Z, .op = MD_HOOK_REPLACE, .layer = hl, .seq = dst, .pos = hp, .head = hh,
                      .vec = z + (((size_t)hl * N + (size_t)src * T + hp) * qd + (size_t)hh * hd)};
        CHECK_MSG(run_hooked(&g, tokens, &ph, 1, lg, &err) == MD_OK, "%s: %s", name, err.msg);
        dp = max_abs_diff(lg + (size_t)dst * T * V, hpl, (size_t)T * V);
        CHECK_MSG(dp <= tol, "%s: head-patched logits max |d| %.3g > %.3g", name, dp, tol);
    }

    /* z written back per (layer, pos, head), and the pattern per (layer, pos):
     * the logits stay bit-identical (the pattern path recomputes z = P·V) */
    for (int which = 0; which < 2; which++) {
        int per = which == 0 ? nh : 1, cw = which == 0 ? hd : pw, rw = which == 0 ? qd : pw;
        const float *src = which == 0 ? z : pat;
        int nhk = L * T * per;
        md_hook *hk = calloc((size_t)nhk, sizeof *hk);
        float *vecs = malloc((size_t)nhk * B * cw * sizeof(float));
        for (int i = 0; i < nhk; i++) {
            int l = i / (T * per), t = i / per % T, h = i % per;
            for (int s = 0; s < B; s++)
                memcpy(vecs + ((size_t)i * B + s) * cw, src + (((size_t)l * N + (size_t)s * T + t) * rw + (size_t)h * cw),
                       (size_t)cw * sizeof(float));
            hk[i] = (md_hook){.point = which == 0 ? MD_HOOK_Z : MD_HOOK_PATTERN, .op = MD_HOOK_REPLACE, .layer = l,
                              .seq = MD_ALL, .pos = t, .head = which == 0 ? h : MD_ALL,
                              .vec = vecs + (size_t)i * B * cw, .vec_per_seq = 1};
        }
        CHECK_MSG(run_hooked(&g, tokens, hk, nhk, lg, &err) == MD_OK, "%s: %s", name, err.msg);
        CHECK_MSG(memcmp(lg, clean, (size_t)N * V * sizeof(float)) == 0, "%s: %s written back changed the logits",
                  name, which == 0 ? "z" : "pattern");
        free(hk);
        free(vecs);
    }
    /* positions [t, T) after a cached prefix [0, t): pattern rows keep all T
     * keys (the prefix's included) and equal the full run's */
    {
        int t = T - 4;
        float *pt = malloc((size_t)L * 4 * pw * sizeof(float));
        md_hook hp = {.point = MD_HOOK_PATTERN, .op = MD_HOOK_READ, .layer = MD_ALL, .seq = 0, .pos = MD_ALL,
                      .out = pt, .head = MD_ALL};
        md_kvcache *kc = NULL;
        CHECK(md_kvcache_create(&kc, m, 1, T, &err) == MD_OK);
        md_forward f;
        md_forward_init_tokens(&f, m, 1, t, tokens);
        f.cache = kc;
        f.logits = MD_LOGITS_NONE;
        CHECK(md_model_forward(m, &f, &err) == MD_OK);
        f.t0 = t;
        f.t1 = T;
        f.tokens = tokens + t;
        f.hooks = &hp;
        f.n_hooks = 1;
        f.logits = MD_LOGITS_LAST;
        f.logits_out = lg; /* [V] of it */
        CHECK_MSG(md_model_forward(m, &f, &err) == MD_OK, "%s: %s", name, err.msg);
        double dpat = 0.0;
        for (int l = 0; l < L; l++)
            dpat = fmax(dpat, max_abs_diff(pt + (size_t)l * 4 * pw, pat + ((size_t)l * N + t) * pw, (size_t)4 * pw));
        CHECK_MSG(dpat <= 1e-6, "%s: pattern after a cached prefix differs by %.3g", name, dpat);
        md_kvcache_free(kc);
        free(pt);
    }
    /* an edited pattern does change them; a bad head is refused */
    {
        float *bump = calloc((size_t)T, sizeof(float));
        bump[0] = 0.5f;
        md_hook pa = {.point = MD_HOOK_PATTERN, .op = MD_HOOK_ADD, .layer = 0, .seq = MD_ALL, .pos = MD_ALL, .head = 1,
                      .vec = bump, .coef = 1.0f};
        CHECK_MSG(run_hooked(&g, tokens, &pa, 1, lg, &err) == MD_OK, "%s: %s", name, err.msg);
        CHECK_MSG(memcmp(lg, clean, (size_t)N * V * sizeof(float)) != 0, "%s: a pattern edit changed nothing", name);
        pa.head = nh;
        CHECK(run_hooked(&g, tokens, &pa, 1, lg, &err) == MD_ERR && strstr(err.msg, "head"));
        free(bump);
    }
    printf("%-22s heads: sum_h z W_O vs attn_out %.1e, head patch max|dlogit| %.1e\n", name, worst, dp);
    free(tokens);
    free(z);
    free(pat);
    free(ao);
    free(z2);
    free(clean);
    free(lg);
    golden_close(&g);
}

/* The default fp32 cache: half the available memory per local rank, never
 * below 256 MiB (a million ranks on the node get exactly the floor). */
static void check_default_cache(void)
{
    const char *keep = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    char *saved = keep ? strdup(keep) : NULL;
    unsetenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    size_t one = md_model_default_fp32_cache();
    setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "1000000", 1);
    size_t many = md_model_default_fp32_cache();
    if (saved) setenv("OMPI_COMM_WORLD_LOCAL_SIZE", saved, 1);
    else unsetenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    free(saved);
    CHECK(one >= ((size_t)256 << 20) && many == ((size_t)256 << 20));
    /* what the budgets start from: some memory, never more than the machine has */
    size_t avail = md_sysmem_available(), phys = (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE);
    CHECK(avail > 0 && avail <= phys);
    printf("default fp32 cache: %zu MiB (1 rank), %zu MiB (10^6 ranks)\n", one >> 20, many >> 20);
}

/* ---- a backend op that fails: the forward must return an md_error naming
 * the model, the layer (or the head), the step and the backend's message,
 * and the model must run again afterwards. A test backend wraps the CPU
 * ops and fails the k-th call of one op (the CUDA paths cannot run here;
 * their ops return their errors the same way). */
static const md_backend_ops *fault_real;
static int fault_countdown;

static int fault_hit(md_error *err, const char *op)
{
    if (fault_countdown-- != 0) return MD_OK;
    return md_error_set(err, "test backend: %s: injected launch failure", op);
}

static int faulty_attention(md_backend *be, float *out, const float *q, int nq, int q_pos0, const float *k0,
                            const float *v0, int n0, const float *k1, const float *v1, int n1, int pad,
                            const md_attn_shape *sh, float *probs, md_error *err)
{
    if (fault_hit(err, "attention") != MD_OK) return MD_ERR;
    return fault_real->attention(be, out, q, nq, q_pos0, k0, v0, n0, k1, v1, n1, pad, sh, probs, err);
}

static int faulty_matmul(md_backend *be, float *y, const float *x, const md_weight *w, int n, md_error *err)
{
    if (fault_hit(err, "matmul") != MD_OK) return MD_ERR;
    return fault_real->matmul(be, y, x, w, n, err);
}

static int run_with_fault(md_model *m, const int *tokens, int B, int T, float *logits, md_error *err)
{
    md_kvcache *kc = NULL;
    if (md_kvcache_create(&kc, m, B, T, err) != MD_OK) return MD_ERR;
    md_forward f;
    md_forward_init_tokens(&f, m, B, T, tokens);
    f.logits_out = logits;
    f.cache = kc;
    int rc = md_model_forward(m, &f, err);
    md_kvcache_free(kc);
    return rc;
}

static void check_op_errors(const char *name)
{
    golden g;
    if (golden_open(&g, name) != 0) {
        CHECK_MSG(0, "cannot open golden model %s", name);
        golden_close(&g);
        return;
    }
    md_model *m = g.m;
    int *tokens = golden_tokens(&g);
    float *logits = malloc((size_t)g.B * g.V * sizeof(float)), *ref = malloc((size_t)g.B * g.V * sizeof(float));
    md_error err = {0};
    CHECK(run_with_fault(m, tokens, g.B, g.T, ref, &err) == MD_OK);

    md_backend_ops faulty = *m->be->ops;
    fault_real = m->be->ops;
    faulty.attention = faulty_attention;
    faulty.matmul = faulty_matmul;
    faulty.attention_seqs = NULL; /* attention once per sequence: the countdown counts (layer, sequence) */
    m->be->ops = &faulty;
    /* attention runs once per sequence and layer: call 2 is layer 1's first */
    struct { int attn, matmul; const char *want[4]; } cases[] = {
        {2, -1, {"layer 1", "attention", "injected launch failure", name}},
        /* 7 matmuls per layer (q k v o gate up down), then lm_head */
        {-1, 7 * m->cfg.n_layers, {"head", "lm_head", "matmul: injected", name}},
        {-1, 3, {"layer 0", "o projection", "matmul: injected", name}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        md_error_clear(&err);
        faulty.attention = cases[i].attn >= 0 ? faulty_attention : fault_real->attention;
        faulty.matmul = cases[i].matmul >= 0 ? faulty_matmul : fault_real->matmul;
        fault_countdown = cases[i].attn >= 0 ? cases[i].attn : cases[i].matmul;
        CHECK_MSG(run_with_fault(m, tokens, g.B, g.T, logits, &err) == MD_ERR, "case %zu: the fault was ignored", i);
        for (int w = 0; w < 4; w++)
            CHECK_MSG(strstr(err.msg, cases[i].want[w]) != NULL, "case %zu: '%s' lacks '%s'", i, err.msg,
                      cases[i].want[w]);
        printf("op error %zu: %s\n", i, err.msg);
    }
    /* the backend is still usable and gives the same numbers */
    m->be->ops = fault_real;
    CHECK(run_with_fault(m, tokens, g.B, g.T, logits, &err) == MD_OK);
    CHECK(memcmp(logits, ref, (size_t)g.B * g.V * sizeof(float)) == 0);
    free(tokens);
    free(logits);
    free(ref);
    golden_close(&g);
}

int main(void)
{
    const char *models[] = {"llama3_f32", "llama3_bf16", "llama2_tied_f32", "llama2_f32", "mistral_f32",
                            "llama3_sharded_f32", "qwen2_f32",  "qwen2_bf16",      "qwen3_f32",  "qwen3_bf16",
                            "gemma2_f32",         "gemma2_bf16", "olmo2_f32",      "olmo2_bf16"};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) check_against_golden(models[i], 1e-4);
    check_invariants("llama3_f32");
    check_invariants("mistral_f32");
    check_invariants("qwen2_f32");
    check_invariants("qwen3_f32");
    check_invariants("gemma2_f32");
    check_invariants("olmo2_f32");
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) check_heads(models[i], 1e-4);
    check_op_errors("llama3_f32");
    check_default_cache();
    TEST_MAIN_END();
}
