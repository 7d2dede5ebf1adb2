/* bench_forward.c — forward-pass throughput and memory, as ratios measured
 * in one run (never a timed test).
 *
 *   bench_forward MODEL_DIR [--tokens 40] [--batches 1,8,64] [--reps 3] [--fp32-cache MB]
 *
 * Prints, per batch size: tokens/s of the full forward (logits at the last
 * position), the time the same GEMMs take as plain cblas_sgemm calls on fp32
 * copies of the weights, and their ratio (goal: the forward's GEMMs reach
 * >= 70% of plain sgemm, i.e. everything else costs <= 30%). Finally the
 * peak RSS of the forwards (measured before the plain-sgemm buffers exist)
 * against the checkpoint's file size (goal: <= 1.2 x file + scratch, where
 * scratch = the fp32 weight cache budget + activations; a bf16 checkpoint must
 * not be copied whole to fp32). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "mechdiff/forward.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

/* The same sgemm shapes one forward runs, on fp32 buffers of the weights'
 * sizes (random data: GEMM speed does not depend on values). */
static double plain_gemm_seconds(const md_config *c, int rows, int reps)
{
    int d = c->d_model, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim, ff = c->d_ff;
    int shapes[7][2] = {{qd, d}, {kvd, d}, {kvd, d}, {d, qd}, {ff, d}, {ff, d}, {d, ff}};
    size_t wmax = (size_t)ff * d, xmax = (size_t)rows * (ff > qd ? ff : qd);
    float *w = malloc(wmax * sizeof(float)), *x = malloc(xmax * sizeof(float)), *y = malloc(xmax * sizeof(float));
    for (size_t i = 0; i < wmax; i++) w[i] = (float)((i * 2654435761u) % 1000) * 1e-4f;
    for (size_t i = 0; i < xmax; i++) x[i] = (float)((i * 40503u) % 1000) * 1e-3f;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (int l = 0; l < c->n_layers; l++)
            for (int s = 0; s < 7; s++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, shapes[s][0], shapes[s][1], 1.0f, x,
                            shapes[s][1], w, shapes[s][1], 0.0f, y, shapes[s][0]);
        double t = now() - t0;
        if (t < best) best = t;
    }
    free(w);
    free(x);
    free(y);
    return best;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_forward MODEL_DIR [--tokens 40] [--batches 1,8,64] [--reps 3]\n");
        return 2;
    }
    const char *dir = argv[1];
    int T = 40, reps = 3;
    size_t cache_mb = 256;
    char batches_arg[128] = "1,8,64";
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--tokens") == 0) T = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--batches") == 0) snprintf(batches_arg, sizeof batches_arg, "%s", argv[i + 1]);
        else if (strcmp(argv[i], "--reps") == 0) reps = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--fp32-cache") == 0) cache_mb = (size_t)atol(argv[i + 1]);
    }
    md_error err = {0};
    md_model *m = NULL;
    md_model_options opt;
    md_model_options_init(&opt);
    opt.skip_tokenizer = 1;
    opt.fp32_cache_bytes = cache_mb ? cache_mb << 20 : 1; /* 1 byte: cache nothing */
    if (md_model_load(&m, dir, &opt, &err) != MD_OK) {
        fprintf(stderr, "bench_forward: %s\n", err.msg);
        return 1;
    }
    const md_config *c = &m->cfg;
    double file_mb = md_safetensors_total_bytes(m->st) / 1048576.0;
    printf("model %s: %d layers, d %d, ff %d, heads %d/%d, vocab %d, %.1f MB on disk\n", dir, c->n_layers,
           c->d_model, c->d_ff, c->n_heads, c->n_kv_heads, c->vocab_size, file_mb);
    int batches[16], nb = 0;
    double fwd[16];
    char *save = NULL;
    for (char *b = strtok_r(batches_arg, ",", &save); b && nb < 16; b = strtok_r(NULL, ",", &save)) {
        int B = batches[nb] = atoi(b);
        int *tokens = malloc((size_t)B * T * sizeof(int));
        float *logits = malloc((size_t)B * c->vocab_size * sizeof(float));
        for (int i = 0; i < B * T; i++) tokens[i] = (int)((i % T) * 7919u % (unsigned)c->vocab_size);
        md_kvcache *kc = NULL;
        if (md_kvcache_create(&kc, m, B, T, &err) != MD_OK) {
            fprintf(stderr, "bench_forward: %s\n", err.msg);
            return 1;
        }
        md_forward f;
        md_forward_init_tokens(&f, m, B, T, tokens);
        f.cache = kc;
        f.logits_out = logits;
        double best = 1e30;
        for (int r = 0; r < reps + 1; r++) { /* the first run warms the page cache */
            md_kvcache_truncate(kc, 0);
            double t0 = now();
            if (md_model_forward(m, &f, &err) != MD_OK) {
                fprintf(stderr, "bench_forward: %s\n", err.msg);
                return 1;
            }
            double t = now() - t0;
            if (r > 0 && t < best) best = t;
        }
        fwd[nb++] = best;
        md_kvcache_free(kc);
        free(tokens);
        free(logits);
    }
    double rss = peak_rss_mb();
    printf("%6s %8s %12s %12s %12s %10s\n", "batch", "tokens", "tokens/s", "forward_s", "sgemm_s", "gemm/fwd");
    for (int i = 0; i < nb; i++) {
        double g = plain_gemm_seconds(c, batches[i] * T, reps);
        printf("%6d %8d %12.0f %12.4f %12.4f %10.2f\n", batches[i], batches[i] * T, batches[i] * T / fwd[i], fwd[i],
               g, g / fwd[i]);
    }
    double ws = m->ws_bytes / 1048576.0, cache = cache_mb < file_mb * 2 ? (double)cache_mb : file_mb * 2;
    printf("peak RSS of the forwards %.1f MB = %.2f x checkpoint (%.1f MB, weights %s); "
           "scratch: fp32 cache budget %zu MB + activations %.1f MB -> (RSS - scratch) / file = %.2f (goal <= 1.2)\n",
           rss, rss / file_mb, file_mb, md_dtype_name(m->layers[0].wq.dtype), cache_mb, ws,
           (rss - cache - ws) / file_mb);
    md_model_free(m);
    return 0;
}
