/* fuzz_generate.c — greedy generation (md_generate_greedy, what `mechdiff
 * generate` and the refusal kind's generations call) on inputs chosen by
 * the fuzzer: the number of prompts (-1..4), their lengths (0 up to past
 * the context) and ids (in the vocabulary, or -1, V, huge), max_new_tokens
 * (-1, 0, small, the context's edge and one past it, past the
 * 2^20 bound), the config's stop (EOS) ids, and hooks (an addition or an
 * ablation of resid_post / mlp_out at a layer or all, a layer past the
 * model, a per-sequence cell that generation refuses). On its first input
 * it writes two tiny random checkpoints with make-model's writer (a Llama
 * and a Gemma-2 with a 6-key sliding window on layer 0, soft-caps; 2
 * layers, d 32, 40 ids, 40 positions, fp32) and loads them for the
 * process's lifetime.
 *
 * Checks: an invalid input is refused with an error naming generation (or,
 * for a hook on a layer the model lacks, the hook) and leaves the output
 * empty; a valid one is generated, each sequence stops at its first stop
 * id or after max_new tokens, and each sequence's tokens equal those of a
 * plain greedy loop over that prompt alone (no padding, one sequence per
 * forward, the same hooks). Where they differ, the oracle's logits of the
 * two tokens must be within TOL of each other at that step (a near tie)
 * and the rest of that sequence is not compared. Why a tolerance: left
 * padding changes no operation a real token's numbers go through (its
 * positions restart at 0, the padding is masked out of its attention and
 * every row is normed on its own), but the GEMMs run over other row counts
 * (1 row per step alone, n_seq batched), and a BLAS may then sum the d_model
 * (32) or d_ff (48) products of a dot product in another order: at most
 * ~K·2^-24 of the sum of their magnitudes, ~3e-6 relative per GEMM, a few
 * 1e-5 after two layers and the head for logits of magnitude ~1; TOL =
 * 1e-4·(1 + |logit|) leaves room for that and for nothing a real bug
 * (a padded key seen, a position shifted) would do, which moves logits by
 * 1e-2 and more on these weights. */
#include <math.h>

#include "fuzz_common.h"
#include "fuzz_input.h"
#include "mechdiff/generate.h"
#include "mechdiff/make_model.h"

#define FAIL FUZZ_FAIL

enum { MAX_SEQ = 4, MAX_HOOKS = 2, D = 32, V = 40, POS = 40, LAYERS = 2 };
#define TOL 1e-4f

static md_model *models[2];

static md_model *make_one(const char *like, const char *name)
{
    md_config cfg;
    md_error err = {0};
    if (md_make_model_config(&cfg, like, &err) != MD_OK) FAIL("%s", err.msg);
    cfg.d_model = D, cfg.d_ff = 48, cfg.n_heads = 4, cfg.n_kv_heads = 2, cfg.head_dim = 8, cfg.max_position = POS;
    if (cfg.embed_scale > 0.0f) cfg.embed_scale = sqrtf((float)D);
    if (cfg.query_pre_attn_scalar > 0.0) cfg.query_pre_attn_scalar = 8.0;
    if (cfg.sliding_window > 0) cfg.sliding_window = 6;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", fuzz_dir(), name);
    md_make_model_opts o = {.like = like, .n_layers = LAYERS, .seed = 7, .dtype = MD_DTYPE_F32, .vocab = V,
                            .out_dir = dir, .config = &cfg, .threads = 1};
    md_model_options opt;
    md_model_options_init(&opt);
    opt.skip_tokenizer = 1;
    opt.fp32_cache_bytes = 16 << 20;
    md_model *m = NULL;
    if (md_make_model(&o, &err) != MD_OK || md_model_load(&m, dir, &opt, &err) != MD_OK) FAIL("%s", err.msg);
    return m;
}

/* What the input asks for. */
typedef struct req {
    int n_seq, max_new, len[MAX_SEQ], *ids[MAX_SEQ];
    md_hook hooks[MAX_HOOKS];
    float vec[MAX_HOOKS][D];
    int n_hooks, seq_pos[MAX_SEQ];
    int valid;          /* what generation must do: 1 generate, 0 refuse */
} req;

static int pick_id(fz *z)
{
    unsigned b = fz_u8(z);
    if (b < 248) return (int)(b % V);
    static const int bad[8] = {-1, V, V + 1, -2147483647 - 1, 2147483647, 255, -7, 1000};
    return bad[b - 248];
}

static int pick_max_new(fz *z, int T)
{
    unsigned b = fz_u8(z);
    switch (b % 16) {
    case 0: return -1;
    case 1: return 0;
    case 2: return POS - T + 1; /* the last position the context has */
    case 3: return POS - T + 2; /* one past it */
    case 4: return MD_GENERATE_MAX_NEW + 1;
    case 5: return -2147483647 - 1;
    case 6: return 2147483647;
    default: return 1 + (int)(b / 16) % 8;
    }
}

static void pick_hook(fz *z, req *r, int i)
{
    md_hook *h = &r->hooks[i];
    unsigned b = fz_u8(z);
    memset(h, 0, sizeof *h);
    h->point = b & 1 ? MD_HOOK_MLP_OUT : MD_HOOK_RESID_POST;
    h->op = b & 2 ? MD_HOOK_ABLATE : MD_HOOK_ADD;
    h->layer = (int)((b >> 2) % (LAYERS + 2)) - 1; /* all, each layer, one past */
    h->seq = h->pos = (int)(fz_u8(z) % 3) - 1;   /* ignored: every sequence and position */
    h->coef = (float)(fz_u8(z) % 64) / 8.0f;
    double norm = 0.0;
    for (int k = 0; k < D; k++) {
        r->vec[i][k] = (float)((int)fz_u8(z) - 128) / 64.0f;
        norm += (double)r->vec[i][k] * r->vec[i][k];
    }
    if (norm == 0.0) r->vec[i][0] = 1.0f, norm = 1.0;
    for (int k = 0; h->op == MD_HOOK_ABLATE && k < D; k++) r->vec[i][k] = (float)(r->vec[i][k] / sqrt(norm));
    h->vec = r->vec[i];
    if (fz_u8(z) % 16 == 0) {
        for (int s = 0; s < MAX_SEQ; s++) r->seq_pos[s] = s;
        h->seq_pos = r->seq_pos; /* generation refuses cells per sequence */
    }
}

static void pick(fz *z, req *r)
{
    memset(r, 0, sizeof *r);
    unsigned b = fz_u8(z);
    r->n_seq = b % 8 == 7 ? (int)(b / 8 % 2) - 1 : 1 + (int)(b % MAX_SEQ); /* -1 and 0 one time in 8 */
    int T = 0, ok = r->n_seq >= 1;
    for (int s = 0; s < (r->n_seq > 0 ? r->n_seq : 0); s++) {
        b = fz_u8(z);
        r->len[s] = b < 240 ? (int)(b % 12) : (int)(b % (POS + 3)); /* short mostly; 0; past the context */
        r->ids[s] = malloc((size_t)(r->len[s] ? r->len[s] : 1) * sizeof(int));
        for (int p = 0; p < r->len[s]; p++) {
            r->ids[s][p] = pick_id(z);
            ok &= r->ids[s][p] >= 0 && r->ids[s][p] < V;
        }
        ok &= r->len[s] >= 1;
        if (r->len[s] > T) T = r->len[s];
    }
    r->max_new = pick_max_new(z, T);
    ok &= r->max_new >= 0 && r->max_new <= MD_GENERATE_MAX_NEW &&
          (long)T + (r->max_new > 0 ? r->max_new - 1 : 0) <= POS;
    r->n_hooks = (int)(fz_u8(z) % (MAX_HOOKS + 1));
    for (int i = 0; i < r->n_hooks; i++) {
        pick_hook(z, r, i);
        ok &= !r->hooks[i].seq_pos && (r->hooks[i].layer < LAYERS || r->max_new == 0);
    }
    r->valid = ok;
}

/* The stop ids of the config (restored by the caller). */
static void pick_stops(fz *z, md_model *m)
{
    m->cfg.n_eos = (int)(fz_u8(z) % 4);
    for (int i = 0; i < m->cfg.n_eos; i++) m->cfg.eos_ids[i] = (int)(fz_u8(z) % (V + 2)) - 1;
}

static int is_stop(const md_model *m, int id)
{
    for (int i = 0; i < m->cfg.n_eos; i++)
        if (m->cfg.eos_ids[i] == id) return 1;
    return 0;
}

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* The plain loop over prompt s alone: its tokens and each step's logits
 * ([max_new][V]); returns the count. */
static int oracle(md_model *m, const req *r, int s, int *toks, float *lg)
{
    md_error err = {0};
    md_kvcache *kc = NULL;
    md_hook hk[MAX_HOOKS];
    for (int i = 0; i < r->n_hooks; i++) {
        hk[i] = r->hooks[i];
        hk[i].seq = hk[i].pos = MD_ALL;
    }
    if (md_kvcache_create(&kc, m, 1, r->len[s] + r->max_new, &err) != MD_OK) FAIL("oracle: %s", err.msg);
    md_forward f;
    md_forward_init_batch(&f, m, 1, r->len[s], r->ids[s], NULL, kc);
    md_forward_set_hooks(&f, hk, r->n_hooks);
    int n = 0;
    while (n < r->max_new) {
        md_forward_set_logits(&f, MD_LOGITS_LAST, lg + (size_t)n * V, NULL, 0);
        if (md_model_forward(m, &f, &err) != MD_OK) FAIL("oracle: %s", err.msg);
        toks[n] = argmax(lg + (size_t)n * V, V);
        if (is_stop(m, toks[n++])) break;
        f.t0 = f.t1++;
        f.tokens = &toks[n - 1];
    }
    md_kvcache_free(kc);
    return n;
}

/* A generated sequence against the oracle's. */
static void compare(md_model *m, const req *r, int s, const md_generation *g)
{
    int *toks = malloc((size_t)r->max_new * sizeof(int));
    float *lg = malloc((size_t)r->max_new * V * sizeof(float));
    int n = oracle(m, r, s, toks, lg);
    for (int k = 0; k < n && k < g->out_len[s]; k++) {
        if (toks[k] == g->out_ids[s][k]) continue;
        const float *row = lg + (size_t)k * V;
        float a = row[toks[k]], b = row[g->out_ids[s][k]];
        if (a - b > TOL * (1.0f + fabsf(a)))
            FAIL("sequence %d of %d, step %d: generated %d (logit %.9g alone), alone %d (logit %.9g)", s, r->n_seq, k,
                 g->out_ids[s][k], b, toks[k], a);
        if (getenv("FUZZ_SHOW")) fprintf(stderr, "near tie: sequence %d, step %d: %.9g vs %.9g\n", s, k, a, b);
        goto done; /* a near tie: the sequences part here */
    }
    if (n != g->out_len[s]) FAIL("sequence %d: %d tokens generated, %d alone", s, g->out_len[s], n);
done:
    free(toks);
    free(lg);
}

/* The shape of a generation: lengths, ids, stops. */
static void check_shape(const md_model *m, const req *r, const md_generation *g)
{
    if (g->n_seq != r->n_seq || !g->out_ids || !g->out_len) FAIL("generation holds %d sequences", g->n_seq);
    for (int s = 0; s < r->n_seq; s++) {
        int n = g->out_len[s];
        if (n < 0 || n > r->max_new || (n == 0 && r->max_new > 0)) FAIL("sequence %d: %d tokens of %d", s, n, r->max_new);
        for (int k = 0; k < n; k++) {
            int id = g->out_ids[s][k];
            if (id < 0 || id >= V) FAIL("sequence %d: token %d is id %d", s, k, id);
            int last = k == n - 1;
            if (is_stop(m, id) ? !last : last && n < r->max_new)
                FAIL("sequence %d: token %d of %d (id %d) %s a stop id", s, k, n, id, last ? "is not" : "is");
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!models[0]) {
        models[0] = make_one("llama3-8b", "llama");
        models[1] = make_one("gemma2-9b", "gemma");
    }
    fz z = {data, size};
    md_model *m = models[fz_u8(&z) % 2];
    md_config saved = m->cfg;
    req r;
    pick_stops(&z, m);
    pick(&z, &r);
    md_generation g;
    md_error err = {0};
    const int *ids[MAX_SEQ];
    for (int s = 0; s < MAX_SEQ; s++) ids[s] = r.ids[s];
    int rc = md_generate_greedy(m, r.n_seq, r.n_seq > 0 ? ids : NULL, r.n_seq > 0 ? r.len : NULL, r.max_new,
                                r.n_hooks ? r.hooks : NULL, r.n_hooks, &g, &err);
    if (rc == MD_OK && !r.valid) FAIL("an invalid request was generated (n_seq %d, max_new %d)", r.n_seq, r.max_new);
    if (rc != MD_OK && r.valid) FAIL("a valid request was refused: %s", err.msg);
    if (rc != MD_OK) {
        if (!strstr(err.msg, "generate") && !strstr(err.msg, "hook")) FAIL("a refusal naming neither: %s", err.msg);
        if (g.out_ids || g.out_len || g.n_seq) FAIL("a refusal left output");
        if (getenv("FUZZ_SHOW")) fprintf(stderr, "refused: %s\n", err.msg);
    } else {
        check_shape(m, &r, &g);
        if (getenv("FUZZ_SHOW")) {
            fprintf(stderr, "generated: %d sequences, max_new %d, %d hooks, %d stop ids:", r.n_seq, r.max_new, r.n_hooks,
                    m->cfg.n_eos);
            for (int s = 0; s < r.n_seq; s++) fprintf(stderr, " %d+%d", r.len[s], g.out_len[s]);
            fprintf(stderr, "\n");
        }
        for (int s = 0; s < r.n_seq; s++) compare(m, &r, s, &g);
        md_generation_free(&g);
    }
    for (int s = 0; s < MAX_SEQ; s++) free(r.ids[s]);
    m->cfg = saved;
    return 0;
}
