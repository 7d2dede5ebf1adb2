/* test_entropy.c — entropy-neuron math against a hand-computed example,
 * streaming invariance (block size, neuron ranges, bf16 vs f32), the
 * percentile against numpy, selection edge cases, overlap, softmax entropy,
 * and the self-overlap of a real (golden) checkpoint's last layer.
 *
 * Hand example (d = 2, vocab = 4, d_ff = 4), gain g = (2, 1):
 *   W_U = (2, .5) (.5, 1.5) (0, -.5) (-.5, .5)  ->  U = W_U * g
 *       = (4, .5) (1, 1.5) (0, -.5) (-1, .5); mean (1, .5)
 *   Uc  = (3, 0) (0, 1) (-1, -1) (-2, 0); unit rows e1, e2, -(1,1)/√2, -e1
 *   W_down = [[1, 0, 2, .125], [0, 3, 2, -.125]]: neurons (1,0) (0,3) (2,2) (.125,-.125)
 *   cosines: n0 [1, 0, -1/√2, -1]      S1 = -1/√2        S2 = 2.5
 *            n1 [0, 1, -1/√2, 0]       S1 = 1 - 1/√2     S2 = 1.5
 *            n2 [1/√2, 1/√2, -1, -1/√2] S1 = 1/√2 - 1     S2 = 2.5
 *            n3 [1/√2, -1/√2, 0, -1/√2] S1 = -1/√2        S2 = 1.5
 *   LogitVar = (S2 - S1²/4) / 3; norms 1, 3, 2√2, √2/8. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "mechdiff/entropy.h"
#include "mechdiff/hf_config.h"
#include "mechdiff/safetensors.h"
#include "testutil.h"

static const float WU[8] = {2, .5f, .5f, 1.5f, 0, -.5f, -.5f, .5f};
static const float G[2] = {2, 1};
static const float WD[8] = {1, 0, 2, .125f, 0, 3, 2, -.125f};

static double lv(double s1, double s2)
{
    return (s2 - s1 * s1 / 4) / 3;
}

static void test_hand_example(void)
{
    md_error err = {0};
    const double r = 1 / sqrt(2.0);
    const double want_lv[4] = {lv(-r, 2.5), lv(1 - r, 1.5), lv(r - 1, 2.5), lv(-r, 1.5)};
    const double want_norm[4] = {1, 3, 2 * sqrt(2.0), sqrt(2.0) / 8};
    md_entropy_src s = {.w_u = WU, .w_u_dtype = MD_DTYPE_F32, .vocab = 4, .d = 2, .gain = G,
                        .gain_dtype = MD_DTYPE_F32, .w_down = WD, .w_down_dtype = MD_DTYPE_F32, .d_ff = 4};
    double mean[2], norm[4], var[4];
    for (int block = 1; block <= 5; block++) { /* blocks of 1..5 rows give the same result */
        CHECK(md_entropy_wu_mean(&s, block, mean, &err) == MD_OK);
        CHECK_NEAR(mean[0], 1.0, 1e-12);
        CHECK_NEAR(mean[1], 0.5, 1e-12);
        CHECK(md_entropy_neurons(&s, mean, 0, 4, block, norm, var, &err) == MD_OK);
        for (int i = 0; i < 4; i++) {
            CHECK_NEAR(norm[i], want_norm[i], 1e-7);
            CHECK_NEAR(var[i], want_lv[i], 1e-6);
        }
    }
    /* A sub-range of neurons gives the same numbers as the whole. */
    double n2[2], v2[2];
    CHECK(md_entropy_neurons(&s, mean, 1, 3, 0, n2, v2, &err) == MD_OK);
    CHECK_NEAR(v2[0], want_lv[1], 1e-6);
    CHECK_NEAR(v2[1], want_lv[2], 1e-6);
    CHECK(md_entropy_neurons(&s, mean, 3, 5, 0, n2, v2, &err) == MD_ERR);

    /* bf16 copies (every value above is exact in bf16) give the same result. */
    uint16_t wu16[8], g16[2], wd16[8];
    md_dtype_from_f32(wu16, WU, MD_DTYPE_BF16, 8);
    md_dtype_from_f32(g16, G, MD_DTYPE_BF16, 2);
    md_dtype_from_f32(wd16, WD, MD_DTYPE_BF16, 8);
    md_entropy_src b = {.w_u = wu16, .w_u_dtype = MD_DTYPE_BF16, .vocab = 4, .d = 2, .gain = g16,
                        .gain_dtype = MD_DTYPE_BF16, .w_down = wd16, .w_down_dtype = MD_DTYPE_BF16, .d_ff = 4};
    double mb[2], nb[4], vb[4];
    CHECK(md_entropy_wu_mean(&b, 3, mb, &err) == MD_OK);
    CHECK(md_entropy_neurons(&b, mb, 0, 4, 3, nb, vb, &err) == MD_OK);
    for (int i = 0; i < 4; i++) CHECK_NEAR(vb[i], want_lv[i], 1e-6);

    /* Selection. Norms sorted: √2/8, 1, 2√2, 3. numpy.percentile: q50 = 1.91421356,
     * q75 = 2.87132034, q0 = √2/8. */
    int sel[3], nsel = -1;
    double thr = 0;
    CHECK(md_entropy_select(want_norm, want_lv, 4, 50, 1, sel, &nsel, &thr, &err) == MD_OK);
    CHECK_NEAR(thr, 1.91421356, 1e-8);
    CHECK(nsel == 1 && sel[0] == 1); /* {1, 2} pass; 1 has the smaller LogitVar */
    CHECK(md_entropy_select(want_norm, want_lv, 4, 50, 3, sel, &nsel, &thr, &err) == MD_OK);
    CHECK(nsel == 2 && sel[0] == 1 && sel[1] == 2 && sel[2] == -1);
    CHECK(md_entropy_select(want_norm, want_lv, 4, 75, 3, sel, &nsel, &thr, &err) == MD_OK);
    CHECK_NEAR(thr, 2.87132034, 1e-8);
    CHECK(nsel == 1 && sel[0] == 1);
    /* q = 0: strictly above the minimum, so neuron 3 (smallest LogitVar, smallest
     * norm) is out; the rest in ascending LogitVar: 1, 0, 2. */
    CHECK(md_entropy_select(want_norm, want_lv, 4, 0, 3, sel, &nsel, &thr, &err) == MD_OK);
    CHECK(nsel == 3 && sel[0] == 1 && sel[1] == 0 && sel[2] == 2);
    CHECK(md_entropy_select(want_norm, want_lv, 4, 101, 3, sel, &nsel, &thr, &err) == MD_ERR);
}

/* Gemma-2 / OLMo-2 forms: a (1 + w) gain and a post-MLP norm gain p give
 * exactly the numbers of the plain kernel on the folded tensors (every value
 * here is a power of two times a small integer, exact in fp32, and the kernel
 * does the same operations in the same order). */
static void test_gain_forms(void)
{
    md_error err = {0};
    static const float GM1[2] = {1, 0};      /* 1 + w = G */
    static const float P[2] = {.5f, 4};      /* post-MLP norm gain */
    static const float PM1[2] = {-.5f, 3};   /* 1 + w = P */
    static const float WDP[8] = {.5f, 0, 1, .0625f, 0, 12, 8, -.5f}; /* P[r] * WD[r][i] */
    md_entropy_src ref = {.w_u = WU, .w_u_dtype = MD_DTYPE_F32, .vocab = 4, .d = 2, .gain = G,
                          .gain_dtype = MD_DTYPE_F32, .w_down = WDP, .w_down_dtype = MD_DTYPE_F32, .d_ff = 4};
    md_entropy_src gemma = ref, olmo = ref;
    gemma.gain = GM1, gemma.plus_one = 1, gemma.post_gain = PM1, gemma.post_gain_dtype = MD_DTYPE_F32;
    gemma.w_down = WD;
    olmo.post_gain = P, olmo.post_gain_dtype = MD_DTYPE_F32, olmo.w_down = WD;
    double m0[2], m1[2], n0[4], v0[4], n1[4], v1[4];
    CHECK(md_entropy_wu_mean(&ref, 0, m0, &err) == MD_OK);
    CHECK(md_entropy_neurons(&ref, m0, 0, 4, 0, n0, v0, &err) == MD_OK);
    CHECK_NEAR(n0[1], 12.0, 0); /* p * (0, 3) = (0, 12) */
    const md_entropy_src *forms[2] = {&gemma, &olmo};
    for (int f = 0; f < 2; f++) {
        CHECK(md_entropy_wu_mean(forms[f], 0, m1, &err) == MD_OK);
        CHECK(m1[0] == m0[0] && m1[1] == m0[1]);
        CHECK(md_entropy_neurons(forms[f], m1, 0, 4, 1, n1, v1, &err) == MD_OK);
        for (int i = 0; i < 4; i++) CHECK(n1[i] == n0[i] && v1[i] == v0[i]);
    }
    /* The post gain changes the directions: LogitVar differs from the plain W_down's. */
    md_entropy_src plain = ref;
    plain.w_down = WD;
    CHECK(md_entropy_neurons(&plain, m0, 0, 4, 0, n1, v1, &err) == MD_OK);
    CHECK(fabs(v1[3] - v0[3]) > 1e-3);
}

static void test_percentile_ties_overlap_softmax(void)
{
    const double x[6] = {0.3, 0.1, 0.9, 0.5, 0.7, 0.2};
    CHECK_NEAR(md_entropy_percentile(x, 6, 75), 0.65, 1e-12);   /* numpy */
    CHECK_NEAR(md_entropy_percentile(x, 6, 33.3), 0.2665, 1e-12);
    CHECK_NEAR(md_entropy_percentile(x, 6, 100), 0.9, 0);
    CHECK_NEAR(md_entropy_percentile(x, 1, 75), 0.3, 0);

    /* Ties in LogitVar: lower index first. */
    const double norm[5] = {1, 1, 1, 1, 0}, var[5] = {2, 1, 1, 1, 0};
    int sel[2], nsel;
    md_error err = {0};
    CHECK(md_entropy_select(norm, var, 5, 0, 2, sel, &nsel, NULL, &err) == MD_OK);
    CHECK(nsel == 2 && sel[0] == 1 && sel[1] == 2);

    const int a[4] = {1, 2, 3, -1}, b[4] = {3, 4, 1, 1};
    double iou = 0;
    CHECK(md_entropy_overlap(a, 4, b, 4, &iou) == 2); /* {1,3} of {1,2,3,4} */
    CHECK_NEAR(iou, 0.5, 1e-15);
    CHECK(md_entropy_overlap(a, 3, a, 3, &iou) == 3);
    CHECK_NEAR(iou, 1.0, 0);
    CHECK(md_entropy_overlap(NULL, 0, NULL, 0, &iou) == 0);
    CHECK_NEAR(iou, 1.0, 0);

    float lg[8] = {0};
    CHECK_NEAR(md_entropy_softmax(lg, 8), log(8.0), 1e-12);
    float one[3] = {1000, 0, 0}; /* no overflow; ~ 0 */
    CHECK_NEAR(md_entropy_softmax(one, 3), 0.0, 1e-12);
}

/* A checkpoint's last layer compared with itself: 10/10, IoU 1; and the
 * streamed result is the same for two block sizes (mmap'd bf16). */
static void test_golden_self_overlap(void)
{
    const char *dir = "tests/golden/models/llama3_bf16";
    md_error err = {0};
    md_config cfg;
    md_safetensors *st = NULL;
    if (md_hf_config_load_dir(&cfg, dir, &err) != MD_OK || md_safetensors_open_dir(&st, dir, &err) != MD_OK) {
        CHECK_MSG(0, "%s", err.msg);
        return;
    }
    char name[128];
    snprintf(name, sizeof name, "model.layers.%d.mlp.down_proj.weight", cfg.n_layers - 1);
    const md_tensor_info *wd = md_safetensors_find(st, name), *g = md_safetensors_find(st, "model.norm.weight");
    const md_tensor_info *wu = md_safetensors_find(st, cfg.tie_word_embeddings ? "model.embed_tokens.weight"
                                                                               : "lm_head.weight");
    CHECK(wd && g && wu);
    if (!wd || !g || !wu) goto done;
    md_entropy_src s = {.w_u = wu->data, .w_u_dtype = wu->dtype, .vocab = wu->shape[0], .d = (int)wu->shape[1],
                        .gain = g->data, .gain_dtype = g->dtype, .w_down = wd->data, .w_down_dtype = wd->dtype,
                        .d_ff = (int)wd->shape[1], .drop_pages = 1};
    int n = s.d_ff;
    double mean[256], norm[256], var[256], var2[256];
    CHECK(s.d <= 256 && n <= 256);
    CHECK(md_entropy_wu_mean(&s, 7, mean, &err) == MD_OK);
    CHECK(md_entropy_neurons(&s, mean, 0, n, 7, norm, var, &err) == MD_OK);
    CHECK(md_entropy_neurons(&s, mean, 0, n, 0, norm, var2, &err) == MD_OK);
    double dmax = 0;
    for (int i = 0; i < n; i++) dmax = fmax(dmax, fabs(var[i] - var2[i]) / var[i]);
    /* fp32 sgemm tiles differ with the block height: ~1e-7 relative, the
     * rounding of fp32 dot products; the block size is a job key. */
    CHECK_MSG(dmax < 1e-6, "block size changed LogitVar by %.3g (relative)", dmax);
    int a[10], b[10], na, nb;
    CHECK(md_entropy_select(norm, var, n, 75, 10, a, &na, NULL, &err) == MD_OK);
    CHECK(md_entropy_select(norm, var2, n, 75, 10, b, &nb, NULL, &err) == MD_OK);
    double iou = 0;
    int ov = md_entropy_overlap(a, na, b, nb, &iou);
    CHECK_MSG(na == 10 && ov == 10 && iou == 1.0, "self overlap %d/%d IoU %g", ov, na, iou);
    printf("golden %s: d_ff %d, entropy neurons", dir, n);
    for (int i = 0; i < na; i++) printf(" %d", a[i]);
    printf(" (self overlap %d/10)\n", ov);
done:
    md_safetensors_close(st);
}

int main(void)
{
    test_hand_example();
    test_gain_forms();
    test_percentile_ties_overlap_softmax();
    test_golden_self_overlap();
    TEST_MAIN_END();
}
