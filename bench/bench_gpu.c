/* bench_gpu.c — the CUDA backend's GEMM efficiency and forward throughput,
 * as figures measured in one run (never a timed test).
 *
 *   bench_gpu [--like llama3-8b] [--rows 1,16,128,512,2048|none] [--reps 5]
 *             [--model DIR] [--tokens 64] [--batches 1,8,32] [--cpu]
 *             [--square 4096,8192,16384]
 *
 * 0. With --square: N x N x N bf16 GEMMs through the backend's matmul
 *    (MECHDIFF_CUDA_GEMM=bf16): TFLOPS, and the best of them on a line
 *    "square bf16 GEMM best: T TFLOPS at N" — the measured bf16 peak that
 *    bench/bench_paper_gpu.sh divides the grid's GEMM rate by.
 * 1. GEMMs: the seven per-layer matmuls of the forward (q, k, v, o, gate, up,
 *    down) at the widths of a model family (random bf16 weights, one layer),
 *    through the backend's matmul op, for each GEMM mode: TFLOPS counting the
 *    useful 2·rows·out·in flops, and that as a fraction of the card's dense
 *    bf16 peak (goal >= 60% at batched row counts in MECHDIFF_CUDA_GEMM=bf16;
 *    the default x3 mode runs 3x the flops for fp32-exact inputs, so its
 *    useful fraction is at most 1/3 of that).
 * 2. With --model: tokens/s of the full forward (logits at the last
 *    position) on the GPU, and with --cpu the CPU backend's for the ratio.
 *
 * Without a CUDA device (or a build without CUDA) prints "no GPU" and exits
 * 0. MECHDIFF_BF16_PEAK_TFLOPS overrides the estimated peak. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mechdiff/backend.h"
#include "mechdiff/device.h"
#include "mechdiff/dtype.h"
#include "mechdiff/forward.h"
#include "mechdiff/make_model.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int parse_list(const char *s, int *out, int max)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save)) out[n++] = atoi(t);
    return n;
}

/* Part 1: one layer's GEMMs through a CUDA backend in the current mode. */
static int bench_gemms(const md_config *c, const int *rows, int nr, int reps, double peak, const char *mode,
                       md_error *err)
{
    int d = c->d_model, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim, ff = c->d_ff;
    static const char *names[7] = {"q", "k", "v", "o", "gate", "up", "down"};
    int shapes[7][2] = {{qd, d}, {kvd, d}, {kvd, d}, {d, qd}, {ff, d}, {ff, d}, {d, ff}};
    md_backend *be = NULL;
    int dev = 0;
    if (md_device_pick(&dev, err) != MD_OK) return MD_ERR;
    md_backend_options on_dev = {.device = dev}; /* modes AUTO: MECHDIFF_CUDA_GEMM per table */
    if (md_backend_create(&be, MD_BACKEND_CUDA, &on_dev, err) != MD_OK) return MD_ERR;
    md_weight w[7];
    void *host[7] = {0};
    int maxr = 0;
    for (int i = 0; i < nr; i++) maxr = rows[i] > maxr ? rows[i] : maxr;
    size_t widest = (size_t)(ff > qd ? ff : qd);
    float *x = NULL, *y = NULL, sink;
    int rc = MD_ERR;
    for (int s = 0; s < 7; s++) {
        size_t n = (size_t)shapes[s][0] * shapes[s][1];
        uint16_t *h = malloc(n * sizeof(uint16_t));
        if (!h) {
            md_error_set(err, "out of host memory");
            goto done;
        }
        for (size_t i = 0; i < n; i++) h[i] = md_f32_to_bf16((float)((i * 2654435761u) % 1000) * 1e-4f - 0.05f);
        host[s] = h;
        w[s] = (md_weight){h, MD_DTYPE_BF16, shapes[s][0], shapes[s][1], NULL};
        if (be->ops->prepare(be, &w[s], err) != MD_OK) goto done;
    }
    x = be->ops->alloc(be, (size_t)maxr * widest * sizeof(float));
    y = be->ops->alloc(be, (size_t)maxr * widest * sizeof(float));
    if (!x || !y) {
        md_error_set(err, "out of GPU memory for %d rows", maxr);
        goto done;
    }
    printf("%-6s %6s %10s %10s %10s   per GEMM TFLOPS (q k v o gate up down)\n", "mode", "rows", "ms/layer",
           "TFLOPS", "of peak");
    for (int i = 0; i < nr; i++) {
        int n = rows[i];
        double flops = 0.0, per[7];
        for (int s = 0; s < 7; s++) flops += 2.0 * n * shapes[s][0] * shapes[s][1];
        for (int s = 0; s < 7; s++) /* warm-up; a failing op fails here (the timed repeats skip the checks) */
            if (be->ops->matmul(be, y, x, &w[s], n, err) != MD_OK) goto done;
        if (be->ops->to_host(be, &sink, y, sizeof sink, err) != MD_OK) goto done;
        double best = 1e30;
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            for (int s = 0; s < 7; s++) be->ops->matmul(be, y, x, &w[s], n, NULL);
            be->ops->to_host(be, &sink, y, sizeof sink, NULL);
            double t = now() - t0;
            if (t < best) best = t;
        }
        for (int s = 0; s < 7; s++) {
            double b = 1e30;
            for (int r = 0; r < reps; r++) {
                double t0 = now();
                be->ops->matmul(be, y, x, &w[s], n, NULL);
                be->ops->to_host(be, &sink, y, sizeof sink, NULL);
                double t = now() - t0;
                if (t < b) b = t;
            }
            per[s] = 2.0 * n * shapes[s][0] * shapes[s][1] / b / 1e12;
        }
        double tf = flops / best / 1e12;
        printf("%-6s %6d %10.3f %10.1f %9.1f%%  ", mode, n, best * 1e3, tf, peak > 0 ? 100.0 * tf / peak : 0.0);
        for (int s = 0; s < 7; s++) printf(" %s %.0f", names[s], per[s]);
        printf("\n");
    }
    rc = MD_OK;
done:
    if (x) be->ops->free(be, x);
    if (y) be->ops->free(be, y);
    for (int s = 0; s < 7; s++)
        if (host[s]) {
            be->ops->release(be, &w[s]);
            free(host[s]);
        }
    md_backend_destroy(be);
    return rc;
}

/* Part 1b: square bf16 GEMMs (N x N x N) through the backend's matmul in
 * MECHDIFF_CUDA_GEMM=bf16 (activation rounding included, as in the grid):
 * the card's reachable bf16 rate, the reference of a grid's GEMM fraction. */
static int bench_square(const int *sizes, int ns, int reps, double peak, md_error *err)
{
    md_backend *be = NULL;
    int dev = 0, rc = MD_OK;
    double best_tf = 0.0;
    int best_n = 0;
    if (md_device_pick(&dev, err) != MD_OK) return MD_ERR;
    md_backend_options on_dev = {.device = dev}; /* GEMM mode AUTO: the caller set MECHDIFF_CUDA_GEMM=bf16 */
    if (md_backend_create(&be, MD_BACKEND_CUDA, &on_dev, err) != MD_OK) return MD_ERR;
    for (int i = 0; i < ns && rc == MD_OK; i++) {
        size_t n = (size_t)sizes[i], nn = n * n;
        uint16_t *h = malloc(nn * sizeof(uint16_t));
        float *xh = malloc(nn * sizeof(float)), *x = NULL, *y = NULL, sink;
        md_weight w = {h, MD_DTYPE_BF16, (int)n, (int)n, NULL};
        rc = h && xh ? MD_OK : md_error_set(err, "out of host memory for a %zu-square GEMM", n);
        for (size_t k = 0; rc == MD_OK && k < nn; k++) {
            h[k] = md_f32_to_bf16((float)((k * 2654435761u) % 1000) * 1e-4f - 0.05f);
            xh[k] = (float)((k * 40503u) % 2000) * 1e-3f - 1.0f;
        }
        if (rc == MD_OK) rc = be->ops->prepare(be, &w, err);
        if (rc == MD_OK) {
            x = be->ops->alloc(be, nn * sizeof(float));
            y = be->ops->alloc(be, nn * sizeof(float));
            rc = x && y ? be->ops->to_device(be, x, xh, nn * sizeof(float), err)
                        : md_error_set(err, "out of GPU memory for a %zu-square GEMM", n);
        }
        if (rc == MD_OK) rc = be->ops->matmul(be, y, x, &w, (int)n, err); /* warm-up */
        if (rc == MD_OK) rc = be->ops->to_host(be, &sink, y, sizeof sink, err);
        double best = 1e30;
        for (int r = 0; rc == MD_OK && r < reps; r++) {
            double t0 = now();
            be->ops->matmul(be, y, x, &w, (int)n, NULL);
            be->ops->to_host(be, &sink, y, sizeof sink, NULL);
            double t = now() - t0;
            if (t < best) best = t;
        }
        if (rc == MD_OK) {
            double tf = 2.0 * n * n * n / best / 1e12;
            printf("square bf16 GEMM %zu x %zu x %zu: %.3f ms, %.1f TFLOPS (%.1f%% of the estimated peak)\n", n, n,
                   n, best * 1e3, tf, peak > 0 ? 100.0 * tf / peak : 0.0);
            if (tf > best_tf) best_tf = tf, best_n = (int)n;
        }
        if (x) be->ops->free(be, x);
        if (y) be->ops->free(be, y);
        if (w.prepared) be->ops->release(be, &w);
        free(h);
        free(xh);
    }
    md_backend_destroy(be);
    if (rc == MD_OK && best_n)
        printf("square bf16 GEMM best: %.1f TFLOPS at %d (the measured peak of the paper step)\n", best_tf, best_n);
    return rc;
}

/* Part 2: forward tokens/s on one backend. */
static int bench_forward(const char *dir, md_backend_kind kind, int T, const int *batches, int nb, int reps,
                         md_error *err)
{
    md_model_options opt;
    md_model_options_init(&opt);
    opt.skip_tokenizer = 1;
    opt.backend = kind;
    if (kind == MD_BACKEND_CUDA && md_device_pick(&opt.device, err) != MD_OK) return MD_ERR;
    md_model *m = NULL;
    double t_load = now();
    if (md_model_load(&m, dir, &opt, err) != MD_OK) return MD_ERR;
    t_load = now() - t_load;
    const md_config *c = &m->cfg;
    printf("%s: model %s (%d layers, d %d, vocab %d) loaded in %.1f s\n", kind == MD_BACKEND_CUDA ? "cuda" : "cpu",
           dir, c->n_layers, c->d_model, c->vocab_size, t_load);
    printf("%-5s %6s %8s %12s %12s\n", "", "batch", "tokens", "tokens/s", "forward_s");
    for (int b = 0; b < nb; b++) {
        int B = batches[b];
        int *tokens = malloc((size_t)B * T * sizeof(int));
        float *logits = malloc((size_t)B * c->vocab_size * sizeof(float));
        md_kvcache *kc = NULL;
        if (!tokens || !logits || md_kvcache_create(&kc, m, B, T, err) != MD_OK) {
            free(tokens);
            free(logits);
            md_model_free(m);
            return md_error_set(err, "%s", err->msg[0] ? err->msg : "out of memory");
        }
        for (int i = 0; i < B * T; i++) tokens[i] = (int)((i % T) * 7919u % (unsigned)c->vocab_size);
        md_forward f;
        md_forward_init_tokens(&f, m, B, T, tokens);
        f.cache = kc;
        f.logits_out = logits;
        double best = 1e30;
        int ok = 1;
        for (int r = 0; r < reps + 1 && ok; r++) { /* the first run warms up */
            md_kvcache_truncate(kc, 0);
            double t0 = now();
            ok = md_model_forward(m, &f, err) == MD_OK;
            double t = now() - t0;
            if (r > 0 && t < best) best = t;
        }
        if (ok)
            printf("%-5s %6d %8d %12.0f %12.4f\n", kind == MD_BACKEND_CUDA ? "cuda" : "cpu", B, B * T,
                   B * T / best, best);
        md_kvcache_free(kc);
        free(tokens);
        free(logits);
        if (!ok) {
            md_model_free(m);
            return MD_ERR;
        }
    }
    md_model_free(m);
    return MD_OK;
}

int main(int argc, char **argv)
{
    const char *like = "llama3-8b", *model = NULL;
    char rows_arg[128] = "1,16,128,512,2048", batches_arg[128] = "1,8,32", square_arg[128] = "";
    int reps = 5, T = 64, cpu = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--cpu") == 0) cpu = 1;
        else if (v && strcmp(a, "--like") == 0) like = argv[++i];
        else if (v && strcmp(a, "--rows") == 0) snprintf(rows_arg, sizeof rows_arg, "%s", argv[++i]);
        else if (v && strcmp(a, "--reps") == 0) reps = atoi(argv[++i]);
        else if (v && strcmp(a, "--model") == 0) model = argv[++i];
        else if (v && strcmp(a, "--tokens") == 0) T = atoi(argv[++i]);
        else if (v && strcmp(a, "--batches") == 0) snprintf(batches_arg, sizeof batches_arg, "%s", argv[++i]);
        else if (v && strcmp(a, "--square") == 0) snprintf(square_arg, sizeof square_arg, "%s", argv[++i]);
        else {
            fprintf(stderr, "usage: bench_gpu [--like llama3-8b] [--rows 1,16,128,512,2048] [--reps 5] "
                            "[--model DIR] [--tokens 64] [--batches 1,8,32] [--cpu] [--square 4096,8192,16384]\n");
            return 2;
        }
    }
    int n = 0;
    char why[512] = "";
    md_device_count(&n, why, sizeof why);
    if (n <= 0) {
        printf("no GPU: %s\n", why);
        return 0;
    }
    md_error err = {0};
    int dev = 0;
    md_device_info info;
    if (md_device_pick(&dev, &err) != MD_OK || md_device_query(dev, &info, &err) != MD_OK) {
        fprintf(stderr, "bench_gpu: %s\n", err.msg);
        return 1;
    }
    printf("GPU %d: %s, cc %d.%d, %d SMs at %.0f MHz, %.1f GiB; dense bf16 peak %.0f TFLOPS (%s); build archs %s\n",
           dev, info.name, info.cc_major, info.cc_minor, info.sm_count, info.clock_khz / 1e3,
           info.mem_total / 1073741824.0, info.bf16_peak_tflops,
           getenv("MECHDIFF_BF16_PEAK_TFLOPS") ? "MECHDIFF_BF16_PEAK_TFLOPS" : "estimated from cc x SMs x clock",
           md_device_build_archs());
    md_config cfg;
    if (md_make_model_config(&cfg, like, &err) != MD_OK) {
        fprintf(stderr, "bench_gpu: %s\n", err.msg);
        return 1;
    }
    int rows[16], batches[16], squares[16];
    int nr = strcmp(rows_arg, "none") == 0 ? 0 : parse_list(rows_arg, rows, 16);
    int nb = parse_list(batches_arg, batches, 16), nsq = square_arg[0] ? parse_list(square_arg, squares, 16) : 0;
    if (nsq) {
        setenv("MECHDIFF_CUDA_GEMM", "bf16", 1);
        if (bench_square(squares, nsq, reps, info.bf16_peak_tflops, &err) != MD_OK) {
            fprintf(stderr, "bench_gpu: %s\n", err.msg);
            return 1;
        }
    }
    if (nr)
        printf("GEMMs of one %s layer (d %d, ff %d, heads %d/%d), bf16 weights:\n", like, cfg.d_model, cfg.d_ff,
               cfg.n_heads, cfg.n_kv_heads);
    const char *modes[2] = {"bf16", "x3"};
    for (int i = 0; nr && i < 2; i++) {
        setenv("MECHDIFF_CUDA_GEMM", modes[i], 1);
        if (bench_gemms(&cfg, rows, nr, reps, info.bf16_peak_tflops, modes[i], &err) != MD_OK) {
            fprintf(stderr, "bench_gpu: %s\n", err.msg);
            return 1;
        }
    }
    unsetenv("MECHDIFF_CUDA_GEMM");
    if (model) {
        if (bench_forward(model, MD_BACKEND_CUDA, T, batches, nb, reps, &err) != MD_OK ||
            (cpu && bench_forward(model, MD_BACKEND_CPU, T, batches, nb, 1, &err) != MD_OK)) {
            fprintf(stderr, "bench_gpu: %s\n", err.msg);
            return 1;
        }
    }
    return 0;
}
