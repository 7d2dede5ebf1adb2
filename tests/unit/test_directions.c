/* test_directions.c — the direction math (directions.h) against small
 * hand-checked examples, and the two engine facts the refusal kind relies
 * on, on a golden tiny model: directional ablation leaves the residual
 * orthogonal to the direction at every hooked point, and generation with a
 * zero-coefficient addition equals plain generation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/directions.h"
#include "mechdiff/forward.h"
#include "mechdiff/generate.h"
#include "mechdiff/model.h"
#include "testutil.h"

static void test_means(void)
{
    /* rows (1,2) (3,4) true, (0,0) (2,-2) false: mean_true (2,3), mean_false (1,-1) */
    float x[] = {1, 2, 3, 4, 0, 0, 2, -2};
    int y[] = {1, 1, 0, 0};
    double th[2];
    md_error err = {0};
    CHECK(md_dir_mass_mean(x, y, 4, 2, th, &err) == MD_OK);
    CHECK_NEAR(th[0], 1.0, 1e-12);
    CHECK_NEAR(th[1], 4.0, 1e-12);
    CHECK_NEAR(md_dir_norm(th, 2), sqrt(17.0), 1e-12);
    double c[2] = {3, 4};
    CHECK(md_dir_normalise(c, 2, &err) == MD_OK);
    CHECK_NEAR(c[0], 0.6, 1e-15);
    CHECK_NEAR(c[1], 0.8, 1e-15);
    double z[2] = {0, 0};
    CHECK(md_dir_normalise(z, 2, &err) == MD_ERR);
    double a[2] = {1, 0}, b[2] = {1, 1};
    CHECK_NEAR(md_dir_cosine(a, b, 2), 1 / sqrt(2.0), 1e-15);
    int one[] = {1, 1, 1, 1};
    CHECK(md_dir_mass_mean(x, one, 4, 2, th, &err) == MD_ERR);
    CHECK(strstr(err.msg, "label 0") != NULL);
    /* centring: column means become 0 */
    md_dir_centre(x, 4, 2);
    CHECK_NEAR(x[0], 1 - 1.5, 1e-6);
    CHECK_NEAR(x[1], 2 - 1.0, 1e-6);
    double p[4];
    double e1[2] = {1, 0};
    md_dir_project(x, 4, 2, e1, p);
    CHECK_NEAR(p[1], 1.5, 1e-6);
}

static void test_probe(void)
{
    /* s = -1: 1 true of 4; s = +1: 3 true of 4. The maximum-likelihood fit
     * is σ(-w + b) = 1/4, σ(w + b) = 3/4, so b = 0 and w = ln 3 (the 1e-6·n
     * penalty moves w by ~1e-5). Predictions: s < 0 false, s > 0 true →
     * 6 of 8 right. Scaling s by 2 halves w. */
    double s[8] = {-1, -1, -1, -1, 1, 1, 1, 1};
    int y[8] = {1, 0, 0, 0, 1, 1, 1, 0};
    md_dir_probe pr;
    md_error err = {0};
    CHECK(md_dir_probe_fit(s, y, 8, &pr, &err) == MD_OK);
    CHECK_NEAR(pr.w, log(3.0), 1e-4);
    CHECK_NEAR(pr.b, 0.0, 1e-6);
    CHECK_NEAR(md_dir_probe_accuracy(&pr, s, y, 8), 0.75, 1e-12);
    double s2[8];
    for (int i = 0; i < 8; i++) s2[i] = 2 * s[i];
    md_dir_probe pr2;
    CHECK(md_dir_probe_fit(s2, y, 8, &pr2, &err) == MD_OK);
    CHECK_NEAR(pr2.w, log(3.0) / 2, 1e-4);
    /* separable data stays finite and classifies perfectly */
    double s3[4] = {-3, -2, 5, 7};
    int y3[4] = {0, 0, 1, 1};
    CHECK(md_dir_probe_fit(s3, y3, 4, &pr, &err) == MD_OK);
    CHECK(isfinite(pr.w) && isfinite(pr.b));
    CHECK_NEAR(md_dir_probe_accuracy(&pr, s3, y3, 4), 1.0, 0);
    /* deterministic: same input, same bits */
    md_dir_probe pr3;
    CHECK(md_dir_probe_fit(s3, y3, 4, &pr3, &err) == MD_OK);
    CHECK(memcmp(&pr.w, &pr3.w, sizeof pr.w) == 0 && memcmp(&pr.b, &pr3.b, sizeof pr.b) == 0);
    int yall[4] = {1, 1, 1, 1};
    CHECK(md_dir_probe_fit(s3, yall, 4, &pr, &err) == MD_ERR);
}

static void test_pd_ie(void)
{
    /* PD = mean(p_true - p_false) = (0.3 - 0.3) / 2 = 0 */
    float pt[] = {0.6f, 0.2f}, pf[] = {0.3f, 0.5f};
    CHECK_NEAR(md_dir_pd(pt, pf, 2), 0.0, 1e-7);
    /* false→true: PD 0 → 0.5 is half of the way to +1 */
    CHECK_NEAR(md_dir_ie(0.5, 0.0, 1.0), 0.5, 1e-15);
    /* true→false: PD 0.2 → -0.4 is half of the way to -1 */
    CHECK_NEAR(md_dir_ie(-0.4, 0.2, -1.0), 0.5, 1e-15);
    /* overshoot / wrong way */
    CHECK_NEAR(md_dir_ie(0.2, 0.6, 1.0), -1.0, 1e-12);
    CHECK(isnan(md_dir_ie(1.0, 1.0, 1.0)));
}

static void test_prefix(void)
{
    CHECK(md_dir_is_refusal("I'm sorry, but I can't help with that."));
    CHECK(md_dir_is_refusal("I\xE2\x80\x99m sorry, but no."));       /* curly apostrophe */
    CHECK(md_dir_is_refusal("I can\xE2\x80\x99t help with that."));
    CHECK(md_dir_is_refusal("  \nI cannot do that"));
    CHECK(md_dir_is_refusal("As an AI, I"));
    CHECK(md_dir_is_refusal("I don't think so"));
    CHECK(!md_dir_is_refusal("Sure, here is how to brush your teeth."));
    CHECK(!md_dir_is_refusal("Well, I'm sorry to hear"));           /* not at the start */
    CHECK(!md_dir_is_refusal("I"));
    CHECK(!md_dir_is_refusal("i'm sorry"));                          /* case-sensitive, as listed */
    CHECK(!md_dir_is_refusal(""));
    CHECK(!md_dir_is_refusal(NULL));
}

static void test_split(void)
{
    int tr[8], te[2], tr2[8], te2[2];
    md_error err = {0};
    CHECK(md_dir_split(10, 0.2, 42, 8, 2, tr, te, &err) == MD_OK);
    int seen[10] = {0};
    for (int i = 0; i < 8; i++) seen[tr[i]]++;
    for (int i = 0; i < 2; i++) seen[te[i]]++;
    for (int i = 0; i < 10; i++) CHECK(seen[i] == 1);
    CHECK(md_dir_split(10, 0.2, 42, 8, 2, tr2, te2, &err) == MD_OK);
    CHECK(memcmp(tr, tr2, sizeof tr) == 0 && memcmp(te, te2, sizeof te) == 0);
    CHECK(md_dir_split(10, 0.2, 43, 8, 2, tr2, te2, &err) == MD_OK);
    CHECK(memcmp(tr, tr2, sizeof tr) != 0 || memcmp(te, te2, sizeof te) != 0);
    /* fewer rows than asked: a clear error with the counts */
    int big[9];
    CHECK(md_dir_split(10, 0.2, 42, 9, 1, big, te, &err) == MD_ERR);
    CHECK(strstr(err.msg, "n_train = 9") != NULL);
    CHECK(md_dir_split(10, 0.2, 42, 2, 3, tr, big, &err) == MD_ERR);
}

/* The engine facts on a golden tiny model (no tokenizer: ids directly). */
static void test_engine(void)
{
    md_model *m = NULL;
    md_error err = {0};
    if (md_model_load(&m, "tests/golden/models/llama3_f32", NULL, &err) != MD_OK) {
        CHECK_MSG(0, "%s", err.msg);
        return;
    }
    int d = m->cfg.d_model, L = m->cfg.n_layers, T = 6;
    int ids[6] = {1, 17, 42, 99, 7, 23};
    float *r = malloc((size_t)d * sizeof(float));
    double *rd = malloc((size_t)d * sizeof(double));
    size_t nread = (size_t)L * T * d;
    float *reads[3];
    for (int k = 0; k < 3; k++) reads[k] = malloc(nread * sizeof(float));
    for (int j = 0; j < d; j++) rd[j] = sin(0.7 * j + 0.3);
    md_dir_normalise(rd, d, &err);
    for (int j = 0; j < d; j++) r[j] = (float)rd[j];
    /* ablate at resid_pre/mid/post of every layer, read after each */
    const md_hook_point pts[3] = {MD_HOOK_RESID_PRE, MD_HOOK_RESID_MID, MD_HOOK_RESID_POST};
    md_hook hk[6];
    for (int k = 0; k < 3; k++) {
        hk[2 * k] = (md_hook){.point = pts[k], .op = MD_HOOK_ABLATE, .layer = MD_ALL, .seq = MD_ALL, .pos = MD_ALL,
                              .vec = r};
        hk[2 * k + 1] = (md_hook){.point = pts[k], .op = MD_HOOK_READ, .layer = MD_ALL, .seq = MD_ALL,
                                  .pos = MD_ALL, .out = reads[k]};
    }
    md_kvcache *kc = NULL;
    md_forward f;
    md_forward_init_tokens(&f, m, 1, T, ids);
    f.hooks = hk;
    f.n_hooks = 6;
    f.logits = MD_LOGITS_NONE;
    CHECK(md_kvcache_create(&kc, m, 1, T, &err) == MD_OK);
    f.cache = kc;
    CHECK_MSG(md_model_forward(m, &f, &err) == MD_OK, "%s", err.msg);
    double worst = 0, scale = 0;
    for (int k = 0; k < 3; k++)
        for (size_t row = 0; row < (size_t)L * T; row++) {
            double dot = 0, nn = 0;
            for (int j = 0; j < d; j++) {
                dot += reads[k][row * d + j] * rd[j];
                nn += (double)reads[k][row * d + j] * reads[k][row * d + j];
            }
            if (fabs(dot) > worst) worst = fabs(dot);
            if (sqrt(nn) > scale) scale = sqrt(nn);
        }
    CHECK_MSG(worst <= 1e-5 * (scale > 1 ? scale : 1), "max |x·r| after ablation %g (|x| up to %g)", worst, scale);
    md_kvcache_free(kc);

    /* generation: zero-coefficient addition == no hook (two prompts, padded) */
    const int p0[] = {1, 5, 9, 13}, p1[] = {1, 8, 3};
    const int *pp[2] = {p0, p1};
    int lens[2] = {4, 3};
    md_generation g0 = {0}, g1 = {0};
    md_hook add = {.point = MD_HOOK_RESID_PRE, .op = MD_HOOK_ADD, .layer = 1, .seq = MD_ALL, .pos = MD_ALL,
                   .vec = r, .coef = 0.0f};
    CHECK_MSG(md_generate_greedy(m, 2, pp, lens, 8, NULL, 0, &g0, &err) == MD_OK, "%s", err.msg);
    CHECK_MSG(md_generate_greedy(m, 2, pp, lens, 8, &add, 1, &g1, &err) == MD_OK, "%s", err.msg);
    for (int s = 0; s < 2 && g0.out_len && g1.out_len; s++) {
        CHECK(g0.out_len[s] == g1.out_len[s]);
        if (g0.out_len[s] == g1.out_len[s])
            CHECK(memcmp(g0.out_ids[s], g1.out_ids[s], (size_t)g0.out_len[s] * sizeof(int)) == 0);
    }
    md_generation_free(&g0);
    md_generation_free(&g1);
    for (int k = 0; k < 3; k++) free(reads[k]);
    free(r);
    free(rd);
    md_model_free(m);
}

/* Control directions: unit norm, a function of the seed only, isotropic
 * enough that independent draws are nearly orthogonal in high dimension. */
static void test_random_unit(void)
{
    enum { D = 4097 };
    static double a[D], b[D], c[D];
    md_dir_random_unit(a, D, 7);
    md_dir_random_unit(b, D, 7);
    md_dir_random_unit(c, D, 8);
    CHECK(fabs(md_dir_norm(a, D) - 1.0) < 1e-12 && fabs(md_dir_norm(c, D) - 1.0) < 1e-12);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(fabs(md_dir_cosine(a, c, D)) < 0.1); /* |cos| of two random unit vectors ~ 1/sqrt(D) = 0.016 */
    double mean = 0.0;
    for (int i = 0; i < D; i++) mean += a[i];
    CHECK(fabs(mean / D) < 5.0 / D); /* components ~ N(0, 1/D): |mean| ~ 1/D */
}

int main(void)
{
    test_random_unit();
    test_means();
    test_probe();
    test_pd_ie();
    test_prefix();
    test_split();
    test_engine();
    TEST_MAIN_END();
}
