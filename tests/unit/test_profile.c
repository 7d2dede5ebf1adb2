/* test_profile.c — MECHDIFF_PROFILE on the CPU backend (src/backend/profile.h):
 * the GEMM FLOPs counted over known forwards of the organism model equal
 * the analytic count exactly, every class that ran has time > 0, the
 * logits are bit for bit those of an unprofiled model, the summary's json
 * line carries the same totals, and MECHDIFF_PROFILE=0 wraps nothing.
 *   test_profile --gpu   the same for the CUDA backend's cudaEvent spans,
 *                        also with MECHDIFF_CUDA_SYNC=1
 *                        (scripts/dev/gpu_checks.sh, step ops); 77 = no GPU */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "backend/profile.h"
#include "mechdiff/clock.h"
#include "mechdiff/device.h"
#include "mechdiff/dtype.h"
#include "mechdiff/forward.h"
#include "mechdiff/model.h"
#include "testutil.h"

#define MODEL "models/organism-base"
#define NSEQ 2
#define T 7

static md_model *load(const char *profile)
{
    setenv("MECHDIFF_PROFILE", profile, 1);
    md_model_options opt;
    md_model_options_init(&opt);
    opt.skip_tokenizer = 1;
    md_model *m = NULL;
    md_error err = {0};
    if (md_model_load(&m, MODEL, &opt, &err) != MD_OK) fprintf(stderr, "load %s: %s\n", MODEL, err.msg);
    unsetenv("MECHDIFF_PROFILE");
    return m;
}

/* Forward 1: NSEQ sequences of T tokens, full-vocabulary logits at the last
 * position. Forward 2: one sequence of T - 3 tokens, the logits of 2 ids
 * (one lm_head row view each). logits: [NSEQ * V + 2]. */
static int run(md_model *m, float *logits)
{
    int tokens[NSEQ * T], ids[2] = {3, 5};
    for (int i = 0; i < NSEQ * T; i++) tokens[i] = (i * 37 + 11) % m->cfg.vocab_size;
    md_error err = {0};
    md_kvcache *kc = NULL, *k1 = NULL;
    md_forward f;
    int rc = md_kvcache_create(&kc, m, NSEQ, T, &err);
    if (rc == MD_OK) rc = md_kvcache_create(&k1, m, 1, T, &err);
    if (rc == MD_OK) {
        md_forward_init_batch(&f, m, NSEQ, T, tokens, NULL, kc);
        md_forward_set_logits(&f, MD_LOGITS_LAST, logits, NULL, 0);
        rc = md_model_forward(m, &f, &err);
    }
    if (rc == MD_OK) {
        md_forward_init_batch(&f, m, 1, T - 3, tokens, NULL, k1);
        md_forward_set_logits(&f, MD_LOGITS_LAST, logits + (size_t)NSEQ * m->cfg.vocab_size, ids, 2);
        rc = md_model_forward(m, &f, &err);
    }
    if (rc != MD_OK) fprintf(stderr, "forward: %s\n", err.msg);
    md_kvcache_free(kc);
    md_kvcache_free(k1);
    return rc;
}

/* --gpu: the CUDA backend's cudaEvent spans. N_GPU matmuls (more than the
 * CU_PROF_SPANS events read per batch) on a plain backend, a profiled one
 * and a profiled one with MECHDIFF_CUDA_SYNC=1 (an op waits after each
 * launch, inside its span): the same bits, FLOPs exact, calls counted,
 * device seconds > 0 and not more than the host's wall-clock around them;
 * one add per matmul counted as "other". Returns 77 without a device. */
#define N_GPU 3000
enum { R = 64, OUT = 512, IN = 256 };

/* N_GPU times y = x·Wᵀ, y += y on be; y to yh, the host seconds to *wall. */
static int gpu_loop(md_backend *be, const uint16_t *wh, const float *xh, float *yh, double *wall, md_error *err)
{
    md_weight w = {wh, MD_DTYPE_BF16, OUT, IN, NULL};
    float *x = be->ops->alloc(be, (size_t)R * IN * sizeof(float));
    float *y = be->ops->alloc(be, (size_t)R * OUT * sizeof(float));
    int rc = x && y && be->ops->prepare(be, &w, err) == MD_OK &&
             be->ops->to_device(be, x, xh, (size_t)R * IN * sizeof(float), err) == MD_OK;
    double t0 = md_clock_seconds();
    for (int i = 0; rc && i < N_GPU; i++)
        rc = be->ops->matmul(be, y, x, &w, R, err) == MD_OK && be->ops->add(be, y, y, (size_t)R * OUT, err) == MD_OK;
    rc = rc && be->ops->to_host(be, yh, y, (size_t)R * OUT * sizeof(float), err) == MD_OK;
    *wall = md_clock_seconds() - t0;
    if (w.prepared) be->ops->release(be, &w);
    be->ops->free(be, x);
    be->ops->free(be, y);
    return rc;
}

static int gpu_part(void)
{
    int n = 0, dev = 0;
    char why[512] = "";
    md_device_count(&n, why, sizeof why);
    if (n <= 0) {
        printf("cuda: skipped (no device): %s\n", why);
        return 77;
    }
    md_error err = {0};
    if (md_device_pick(&dev, &err) != MD_OK) dev = 0;
    md_backend_options on_dev = {.device = dev};
    md_backend *be[3] = {NULL, NULL, NULL}; /* plain, profiled, profiled + MECHDIFF_CUDA_SYNC=1 */
    for (int k = 0; k < 3; k++) {
        setenv("MECHDIFF_PROFILE", k ? "1" : "0", 1);
        setenv("MECHDIFF_CUDA_SYNC", k == 2 ? "1" : "0", 1);
        CHECK_MSG(md_backend_create(&be[k], MD_BACKEND_CUDA, &on_dev, &err) == MD_OK, "%s", err.msg);
    }
    unsetenv("MECHDIFF_PROFILE");
    unsetenv("MECHDIFF_CUDA_SYNC");
    if (!be[0] || !be[1] || !be[2]) {
        for (int k = 0; k < 3; k++) md_backend_destroy(be[k]);
        TEST_MAIN_END();
    }
    CHECK(md_profile_stats(be[0]) == NULL && md_profile_stats(be[1]) != NULL && md_profile_stats(be[2]) != NULL);
    uint16_t *wh = malloc((size_t)OUT * IN * sizeof(uint16_t));
    float *xh = malloc((size_t)R * IN * sizeof(float)), *yh[3];
    for (size_t i = 0; i < (size_t)OUT * IN; i++) wh[i] = md_f32_to_bf16((float)((i * 2654435761u) % 997) * 1e-3f - 0.5f);
    for (size_t i = 0; i < (size_t)R * IN; i++) xh[i] = (float)((i * 40503u) % 1999) * 1e-3f - 1.0f;
    double wall[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        yh[k] = malloc((size_t)R * OUT * sizeof(float));
        CHECK_MSG(gpu_loop(be[k], wh, xh, yh[k], &wall[k], &err), "backend %d: %s", k, err.msg);
    }
    for (int k = 1; k < 3; k++) /* neither the wrapper nor the waits change a number */
        CHECK_MSG(memcmp(yh[0], yh[k], (size_t)R * OUT * sizeof(float)) == 0, "backend %d: other bits", k);
    for (int k = 1; k < 3; k++) {
        const md_prof_stats *st = md_profile_stats(be[k]);
        if (!st) continue;
        uint64_t want = (uint64_t)N_GPU * 2 * R * OUT * IN;
        CHECK_MSG(st->flops[MD_PROF_GEMM_BF16] == want && st->calls[MD_PROF_GEMM_BF16] == N_GPU,
                  "%llu flops in %llu calls", (unsigned long long)st->flops[MD_PROF_GEMM_BF16],
                  (unsigned long long)st->calls[MD_PROF_GEMM_BF16]);
        CHECK(st->calls[MD_PROF_OTHER] == N_GPU);
        double gs = st->seconds[MD_PROF_GEMM_BF16], os = st->seconds[MD_PROF_OTHER];
        CHECK_MSG(gs > 0.0 && os > 0.0 && gs + os <= wall[k] * 1.01 + 1e-3, "gemm %g s + other %g s in %g s wall",
                  gs, os, wall[k]);
        printf("cuda profile%s: %d matmuls %.4f s (%.2f TFLOPS) + %d adds %.4f s in %.4f s wall\n",
               k == 2 ? " with MECHDIFF_CUDA_SYNC=1" : "", N_GPU, gs, (double)want / gs / 1e12, N_GPU, os, wall[k]);
    }
    printf("cuda: the same %d matmuls + adds in %.4f s wall unprofiled\n", N_GPU, wall[0]);
    free(wh);
    free(xh);
    for (int k = 0; k < 3; k++) {
        free(yh[k]);
        md_backend_destroy(be[k]); /* the profiled ones print their summaries */
    }
    TEST_MAIN_END();
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--gpu") == 0) return gpu_part();
    md_model *plain = load("0"), *prof = load("1");
    CHECK(plain && prof);
    if (!plain || !prof) TEST_MAIN_END();
    CHECK(md_profile_stats(plain->be) == NULL); /* MECHDIFF_PROFILE=0: not wrapped */
    /* the wrapper offers the ops the backend has (hooks' put_cells / get_cells, attention_seqs) */
    CHECK(prof->be->ops->put_cells != NULL && prof->be->ops->get_cells != NULL && prof->be->ops->add_vec != NULL);
    CHECK((prof->be->ops->attention_seqs != NULL) == (plain->be->ops->attention_seqs != NULL));
    const md_config *c = &prof->cfg;
    CHECK(c->torch_dtype == MD_DTYPE_BF16); /* every matrix is counted as gemm.bf16 */
    size_t V = (size_t)c->vocab_size, n_out = NSEQ * V + 2;
    float *a = calloc(n_out, sizeof(float)), *b = calloc(n_out, sizeof(float));
    CHECK(a && b && run(plain, a) == MD_OK && run(prof, b) == MD_OK);
    CHECK(a && b && memcmp(a, b, n_out * sizeof(float)) == 0); /* the wrapper changes no number */

    /* analytic: per row and layer q, k, v, o, gate, up, down; then the head */
    uint64_t d = (uint64_t)c->d_model, ff = (uint64_t)c->d_ff, L = (uint64_t)c->n_layers;
    uint64_t qd = (uint64_t)c->n_heads * c->head_dim, kvd = (uint64_t)c->n_kv_heads * c->head_dim;
    uint64_t row = 2 * (d * qd + 2 * d * kvd + qd * d + 3 * d * ff);
    uint64_t want = (NSEQ * T) * L * row + 2 * NSEQ * V * d /* forward 1 */
                    + (T - 3) * L * row + 2 * 2 * 1 * d;    /* forward 2: 2 ids x 1 row */
    const md_prof_stats *st = md_profile_stats(prof->be);
    CHECK(st != NULL);
    if (st) {
        CHECK_MSG(st->flops[MD_PROF_GEMM_BF16] == want, "counted %llu, analytic %llu",
                  (unsigned long long)st->flops[MD_PROF_GEMM_BF16], (unsigned long long)want);
        CHECK(st->calls[MD_PROF_GEMM_BF16] == 2 * 7 * L + 1 + 2);
        CHECK(st->flops[MD_PROF_GEMM_F32] == 0 && st->calls[MD_PROF_GEMM_F32] == 0);
        for (int k = MD_PROF_ATTENTION; k < MD_PROF_N_CLASSES; k++) CHECK(st->flops[k] == 0);
        static const md_prof_class ran[] = {MD_PROF_GEMM_BF16, MD_PROF_ATTENTION, MD_PROF_OTHER, MD_PROF_COPY,
                                            MD_PROF_PREPARE};
        for (size_t k = 0; k < sizeof ran / sizeof ran[0]; k++)
            CHECK_MSG(st->calls[ran[k]] > 0 && st->seconds[ran[k]] > 0.0, "%s: %llu calls, %g s",
                      md_prof_class_name(ran[k]), (unsigned long long)st->calls[ran[k]], st->seconds[ran[k]]);
        CHECK(st->last_op > st->first_op && st->first_op > st->created);

        /* the summary's json line has the same totals */
        char path[512], text[8192] = "", needle[128];
        snprintf(path, sizeof path, "%s/test_profile.%ld.txt", tu_tmpdir(), (long)getpid());
        FILE *f = fopen(path, "w+");
        CHECK(f != NULL);
        if (f) {
            md_profile_print(f, st, "cpu backend, host clock");
            rewind(f);
            size_t n = fread(text, 1, sizeof text - 1, f);
            text[n] = '\0';
            fclose(f);
            remove(path);
        }
        snprintf(needle, sizeof needle, "\"gemm.bf16\": {\"calls\": %llu, ", (unsigned long long)st->calls[MD_PROF_GEMM_BF16]);
        CHECK_MSG(strstr(text, "mechdiff profile json: {") && strstr(text, needle), "%s", text);
        snprintf(needle, sizeof needle, "\"flops\": %llu}", (unsigned long long)want);
        CHECK_MSG(strstr(text, needle) != NULL, "%s", text);
    }
    free(a);
    free(b);
    md_model_free(plain);
    md_model_free(prof); /* prints its summary on stderr */
    TEST_MAIN_END();
}
