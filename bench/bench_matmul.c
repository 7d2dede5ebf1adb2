/* bench_matmul.c — the CPU matmul op on bf16 weights at Llama-3-8B widths,
 * cached (fp32 copy) vs streamed (converted for every call), as ratios
 * measured in one run (never a timed test).
 *
 *   bench_matmul [--rows 16,128,1024] [--reps 3] [--threads N] [--panel-mb MB]
 *
 * Shapes: up/gate y[n][14336] = x[n][4096]·Wᵀ and down y[n][4096] =
 * x[n][14336]·Wᵀ (d 4096, ff 14336). Per row count n and shape it prints
 * GFLOPS (2·n·rows·cols / best time) of
 *   sgemm     plain cblas_sgemm on fp32 copies of the weights,
 *   cached    the backend's matmul with the fp32 cache holding the weight,
 *   streamed  the backend's matmul with no cache (bf16 → fp32 on the GEMM's
 *             threads: the whole matrix, then the same sgemm, from 64 rows;
 *             4 MiB blocks, each multiplied while in cache, below),
 *   old       the previous streaming (emulated here: blocks of 256 rows
 *             converted on one thread, one sgemm per block),
 * the ratios streamed/cached, cached/sgemm and old/cached, and whether the
 * streamed output equals the cached one bit for bit (else its NMSE). Threads: OpenBLAS's
 * (OPENBLAS_NUM_THREADS, or --threads). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mechdiff/backend.h"
#include "mechdiff/dtype.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct shape {
    const char *name;
    int rows, cols;
} shape;

enum { SGEMM = 0, CACHED, STREAMED, OLD, N_WAYS };
static const char *WAYS[N_WAYS] = {"sgemm", "cached", "streamed", "old"};

/* The old on-the-fly path: 256-row blocks converted on this thread. */
static void old_stream(float *y, const float *x, const md_weight *w, int n, float *scratch)
{
    for (int r0 = 0; r0 < w->rows; r0 += 256) {
        int nr = w->rows - r0 < 256 ? w->rows - r0 : 256;
        md_dtype_to_f32(scratch, (const char *)w->host + (size_t)r0 * w->cols * 2, w->dtype, (size_t)nr * w->cols);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nr, w->cols, 1.0f, x, w->cols, scratch, w->cols,
                    0.0f, y + r0, w->rows);
    }
}

/* Best-of-reps seconds of one way; y gets its output. */
static double time_way(int way, md_backend *cached, md_backend *streamed, md_weight *wc, md_weight *ws, float *y,
                       const float *x, int n, float *scratch, int reps)
{
    md_error err;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        int rc = MD_OK;
        if (way == SGEMM)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, wc->rows, wc->cols, 1.0f, x, wc->cols,
                        wc->prepared, wc->cols, 0.0f, y, wc->rows);
        else if (way == CACHED) rc = cached->ops->matmul(cached, y, x, wc, n, &err);
        else if (way == STREAMED) rc = streamed->ops->matmul(streamed, y, x, ws, n, &err);
        else old_stream(y, x, ws, n, scratch);
        double t = now() - t0;
        if (rc != MD_OK) {
            fprintf(stderr, "bench_matmul: %s\n", err.msg);
            exit(1);
        }
        if (t < best) best = t;
    }
    return best;
}

static int parse_list(const char *s, int *out, int max)
{
    int n = 0;
    char *copy = strdup(s);
    for (char *t = strtok(copy, ","); t && n < max; t = strtok(NULL, ",")) out[n++] = atoi(t);
    free(copy);
    return n;
}

int main(int argc, char **argv)
{
    int rows_list[8] = {16, 128, 1024}, n_rows = 3, reps = 3;
    size_t panel = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc) n_rows = parse_list(argv[++i], rows_list, 8);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) openblas_set_num_threads(atoi(argv[++i]));
        else if (strcmp(argv[i], "--panel-mb") == 0 && i + 1 < argc) panel = (size_t)atol(argv[++i]) << 20;
        else {
            fprintf(stderr, "usage: bench_matmul [--rows 16,128,1024] [--reps 3] [--threads N] [--panel-mb MB]\n");
            return 2;
        }
    }
    const shape shapes[2] = {{"up   14336x4096", 14336, 4096}, {"down 4096x14336", 4096, 14336}};
    md_backend *cached = NULL, *streamed = NULL;
    md_backend_options oc = {.fp32_cache_bytes = (size_t)4 << 30}, os = {.cpu_panel_bytes = panel};
    md_error err;
    if (md_backend_create(&cached, MD_BACKEND_CPU, &oc, &err) != MD_OK ||
        md_backend_create(&streamed, MD_BACKEND_CPU, &os, &err) != MD_OK) {
        fprintf(stderr, "bench_matmul: %s\n", err.msg);
        return 1;
    }
    int nmax = 0;
    for (int i = 0; i < n_rows; i++) nmax = rows_list[i] > nmax ? rows_list[i] : nmax;
    size_t xy = (size_t)nmax * 14336;
    float *x = malloc(xy * sizeof(float)), *y[N_WAYS], *scratch = malloc((size_t)256 * 14336 * sizeof(float));
    uint16_t *wh = malloc((size_t)14336 * 4096 * sizeof(uint16_t));
    for (int k = 0; k < N_WAYS; k++) y[k] = malloc(xy * sizeof(float));
    for (size_t i = 0; i < xy; i++) x[i] = (float)((i * 40503u) % 2000) * 1e-3f - 1.0f;
    for (size_t i = 0; i < (size_t)14336 * 4096; i++)
        wh[i] = md_f32_to_bf16((float)((i * 2654435761u) % 2000) * 1e-5f - 0.01f);
    printf("bench_matmul: bf16 weights, OpenBLAS threads %d, reps %d (best of), streaming panel %s\n",
           openblas_get_num_threads(), reps, panel ? "--panel-mb" : "default (256 MiB)");
    printf("%-16s %5s %9s %9s %9s %9s   %-9s %-9s %-9s %s\n", "shape", "n", "sgemm", "cached", "streamed", "old",
           "str/cach", "cach/sgemm", "old/cach", "streamed == cached");
    for (int s = 0; s < 2; s++) {
        md_weight wc = {wh, MD_DTYPE_BF16, shapes[s].rows, shapes[s].cols, NULL}, ws = wc;
        if (cached->ops->prepare(cached, &wc, &err) != MD_OK || streamed->ops->prepare(streamed, &ws, &err) != MD_OK) {
            fprintf(stderr, "bench_matmul: %s\n", err.msg);
            return 1;
        }
        for (int i = 0; i < n_rows; i++) {
            int n = rows_list[i];
            double gf[N_WAYS], flop = 2.0 * n * shapes[s].rows * shapes[s].cols;
            for (int k = 0; k < N_WAYS; k++)
                gf[k] = flop / time_way(k, cached, streamed, &wc, &ws, y[k], x, n, scratch, reps) * 1e-9;
            size_t ny = (size_t)n * shapes[s].rows;
            int same = memcmp(y[STREAMED], y[CACHED], ny * sizeof(float)) == 0;
            double num = 0.0, den = 0.0;
            for (size_t j = 0; j < ny; j++) {
                double dd = (double)y[STREAMED][j] - y[CACHED][j];
                num += dd * dd;
                den += (double)y[CACHED][j] * y[CACHED][j];
            }
            printf("%-16s %5d %9.1f %9.1f %9.1f %9.1f   %-9.3f %-10.3f %-9.3f %s (nmse %.1e)\n", shapes[s].name, n,
                   gf[SGEMM], gf[CACHED], gf[STREAMED], gf[OLD], gf[STREAMED] / gf[CACHED], gf[CACHED] / gf[SGEMM],
                   gf[OLD] / gf[CACHED], same ? "bit-identical" : "differs", den > 0 ? num / den : 0.0);
        }
        cached->ops->release(cached, &wc);
        streamed->ops->release(streamed, &ws);
    }
    printf("GFLOPS = 2 n rows cols / best time; ways: %s, %s, %s, %s (see the header of bench/bench_matmul.c)\n",
           WAYS[0], WAYS[1], WAYS[2], WAYS[3]);
    for (int k = 0; k < N_WAYS; k++) free(y[k]);
    free(x);
    free(scratch);
    free(wh);
    md_backend_destroy(cached);
    md_backend_destroy(streamed);
    return 0;
}
