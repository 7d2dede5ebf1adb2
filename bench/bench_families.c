/* bench_families.c — forward throughput of each model family at the same
 * width, as ratios to Llama measured in one run (never a timed test).
 *
 *   bench_families [--d 1024] [--ff 2816] [--heads 8] [--kv 4] [--layers 4]
 *                  [--tokens 64] [--batches 1,8] [--reps 3] [--dir /tmp]
 *
 * For every family of make-model (one preset each: Llama, Qwen2, Qwen3,
 * Gemma-2, OLMo-2; Mistral is Llama's forward) it writes a random bf16
 * checkpoint with the SAME widths (d, ff, heads, head_dim 128, vocab 8192),
 * keeping the family's own switches (biases, q/k norms, post-norms, GELU,
 * soft-caps, sliding window of 4096 — inactive at these lengths), loads it on
 * the CPU backend with every weight cached in fp32, and times the full
 * forward (logits at the last position), best of --reps rounds in which the
 * families take turns (so a busy machine slows all of them alike). Prints tokens/s per family and
 * batch, and the ratio to Llama's: what a family's extra ops cost.
 *
 * GEMM share (issue 18): in the same rounds it times plain OpenBLAS
 * cblas_sgemm on the forward's weight shapes (per layer q, k, v, o, gate, up,
 * down at B·T rows; the LM head at B rows) and prints, per family and batch,
 * share = (forward matmul FLOPs / forward time) / (the same FLOPs / sgemm
 * time) = sgemm time / forward time, i.e. the fraction of plain-sgemm
 * throughput the whole forward reaches; goal >= 0.70 at 8B widths, e.g.
 *   bench_families --d 4096 --ff 14336 --heads 32 --kv 8 --layers 1 --tokens 256 --batches 1
 * (memory: per family ~0.5 GB bf16 mapping + ~1 GB fp32 cache per layer, the
 * five families loaded at once; the sgemm reference needs d*max(ff,vocab)
 * fp32 more). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mechdiff/forward.h"
#include "mechdiff/make_model.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct bench_opts {
    int d, ff, heads, kv, layers, T, reps, batches[8], nb;
    const char *dir;
} bench_opts;

/* One forward of B sequences of T tokens, in seconds (< 0: error). */
static double time_forward(md_model *m, int B, int T, md_error *err)
{
    int *tokens = malloc((size_t)B * T * sizeof(int));
    float *logits = malloc((size_t)B * m->cfg.vocab_size * sizeof(float));
    md_kvcache *kc = NULL;
    double t = -1.0;
    if (tokens && logits && md_kvcache_create(&kc, m, B, T, err) == MD_OK) {
        for (int i = 0; i < B * T; i++) tokens[i] = (int)((i % T) * 7919u % (unsigned)m->cfg.vocab_size);
        md_forward f;
        md_forward_init_tokens(&f, m, B, T, tokens);
        f.cache = kc;
        f.logits_out = logits;
        double t0 = now();
        if (md_model_forward(m, &f, err) == MD_OK) t = now() - t0;
    }
    md_kvcache_free(kc);
    free(tokens);
    free(logits);
    return t;
}

/* The forward's weight matmuls: [rows, cols] of W, and the row count is
 * B*T (per layer) or B (LM head, logits at the last position only). */
typedef struct gemm_shapes {
    int rows[8], cols[8], per_layer[8], n;
} gemm_shapes;

static gemm_shapes forward_shapes(const bench_opts *o)
{
    int qd = o->heads * 128, kvd = o->kv * 128;
    gemm_shapes g = {{qd, kvd, kvd, o->d, o->ff, o->ff, o->d, 8192}, {o->d, o->d, o->d, qd, o->d, o->d, o->ff, o->d},
                     {1, 1, 1, 1, 1, 1, 1, 0}, 8};
    return g;
}

/* FLOPs of the forward's weight matmuls for B sequences of T tokens. */
static double gemm_flops(const bench_opts *o, int B)
{
    gemm_shapes g = forward_shapes(o);
    double f = 0.0;
    for (int i = 0; i < g.n; i++)
        f += 2.0 * g.rows[i] * g.cols[i] * (g.per_layer[i] ? (double)B * o->T * o->layers : (double)B);
    return f;
}

/* Seconds plain cblas_sgemm takes for the forward's weight matmuls (each
 * shape timed once, per-layer shapes counted n_layers times); w, x and y are
 * scratch of at least max rows*cols, B*T*max cols and B*T*max rows floats. */
static double time_sgemm(const bench_opts *o, int B, const float *w, const float *x, float *y)
{
    gemm_shapes g = forward_shapes(o);
    double total = 0.0;
    for (int i = 0; i < g.n; i++) {
        int n = g.per_layer[i] ? B * o->T : B;
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, g.rows[i], g.cols[i], 1.0f, x, g.cols[i], w,
                    g.cols[i], 0.0f, y, g.rows[i]);
        total += (now() - t0) * (g.per_layer[i] ? o->layers : 1);
    }
    return total;
}

/* Writes family `like` at the common widths into a scratch folder, loads it
 * (all weights cached in fp32) and removes the files (the model keeps its
 * mapping). */
static int load_family(const bench_opts *o, const char *like, md_model **out, md_error *err)
{
    md_config cfg;
    if (md_make_model_config(&cfg, like, err) != MD_OK) return MD_ERR;
    cfg.d_model = o->d, cfg.d_ff = o->ff, cfg.n_heads = o->heads, cfg.n_kv_heads = o->kv, cfg.head_dim = 128;
    if (cfg.embed_scale > 0) cfg.embed_scale = 32.0f; /* only a multiplier */
    char path[1024];
    snprintf(path, sizeof path, "%s/bench_families_%s_%d", o->dir, like, (int)getpid());
    md_make_model_opts mo = {.like = like, .n_layers = o->layers, .seed = 7, .dtype = MD_DTYPE_BF16, .vocab = 8192,
                             .out_dir = path, .config = &cfg};
    md_model_options opt;
    md_model_options_init(&opt);
    opt.skip_tokenizer = 1;
    opt.fp32_cache_bytes = (size_t)4 << 30;
    int rc = md_make_model(&mo, err);
    if (rc == MD_OK) rc = md_model_load(out, path, &opt, err);
    const char *files[] = {"config.json", "generation_config.json", "model.safetensors"};
    for (int i = 0; i < 3; i++) {
        char f[1100];
        snprintf(f, sizeof f, "%s/%s", path, files[i]);
        remove(f);
    }
    rmdir(path);
    return rc;
}

static void parse_args(int argc, char **argv, bench_opts *o)
{
    char batches[64] = "1,8";
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--d") == 0) o->d = atoi(v);
        else if (strcmp(a, "--ff") == 0) o->ff = atoi(v);
        else if (strcmp(a, "--heads") == 0) o->heads = atoi(v);
        else if (strcmp(a, "--kv") == 0) o->kv = atoi(v);
        else if (strcmp(a, "--layers") == 0) o->layers = atoi(v);
        else if (strcmp(a, "--tokens") == 0) o->T = atoi(v);
        else if (strcmp(a, "--reps") == 0) o->reps = atoi(v);
        else if (strcmp(a, "--batches") == 0) snprintf(batches, sizeof batches, "%s", v);
        else if (strcmp(a, "--dir") == 0) o->dir = v;
    }
    char *save = NULL;
    for (char *b = strtok_r(batches, ",", &save); b && o->nb < 8; b = strtok_r(NULL, ",", &save))
        o->batches[o->nb++] = atoi(b);
}

int main(int argc, char **argv)
{
    bench_opts o = {.d = 1024, .ff = 2816, .heads = 8, .kv = 4, .layers = 4, .T = 64, .reps = 3, .dir = "/tmp"};
    parse_args(argc, argv, &o);
    static const char *const likes[] = {"llama3-8b", "qwen2.5-7b", "qwen3-8b", "gemma2-9b", "olmo2-7b"};
    enum { NF = sizeof likes / sizeof likes[0] };
    double secs[NF][8], ref[8];
    md_model *models[NF] = {0};
    md_error err = {0};
    printf("same width for every family: d %d, ff %d, heads %d/%d of 128, %d layers, vocab 8192, %d tokens, "
           "CPU backend (fp32 weights); best of %d rounds, the families interleaved in each round\n", o.d, o.ff,
           o.heads, o.kv, o.layers, o.T, o.reps);
    for (int f = 0; f < NF; f++)
        if (load_family(&o, likes[f], &models[f], &err) != MD_OK) {
            fprintf(stderr, "bench_families: %s: %s\n", likes[f], err.msg);
            return 1;
        }
    int bmax = 1, wide = o.ff > o.d ? o.ff : o.d;
    for (int i = 0; i < o.nb; i++) bmax = o.batches[i] > bmax ? o.batches[i] : bmax;
    size_t nw = (size_t)o.d * (wide > 8192 ? wide : 8192), nx = (size_t)bmax * o.T * (wide > 8192 ? wide : 8192);
    float *w = malloc(nw * sizeof(float)), *x = malloc(nx * sizeof(float)), *y = malloc(nx * sizeof(float));
    if (!w || !x || !y) {
        fprintf(stderr, "bench_families: out of memory for the sgemm reference (%zu floats)\n", nw + 2 * nx);
        return 1;
    }
    for (size_t i = 0; i < nw; i++) w[i] = (float)((i * 2654435761u) % 2000) * 1e-5f - 0.01f;
    for (size_t i = 0; i < nx; i++) x[i] = (float)((i * 40503u) % 2000) * 1e-3f - 1.0f;
    for (int i = 0; i < o.nb; i++) ref[i] = 1e30;
    for (int f = 0; f < NF; f++)
        for (int i = 0; i < o.nb; i++) secs[f][i] = 1e30;
    for (int r = 0; r < o.reps + 1; r++) /* round 0 warms caches */
        for (int i = 0; i < o.nb; i++)
            for (int f = 0; f < NF; f++) {
                double t = time_forward(models[f], o.batches[i], o.T, &err);
                if (t < 0) {
                    fprintf(stderr, "bench_families: %s: %s\n", likes[f], err.msg);
                    return 1;
                }
                if (r > 0 && t < secs[f][i]) secs[f][i] = t;
                if (f == NF - 1) {
                    double ts = time_sgemm(&o, o.batches[i], w, x, y);
                    if (r > 0 && ts < ref[i]) ref[i] = ts;
                }
            }
    for (int i = 0; i < o.nb; i++)
        printf("plain sgemm on the forward's matmul shapes, batch %d: %.2f GFLOP in %.3f s = %.1f GFLOPS "
               "(OpenBLAS threads %d)\n", o.batches[i], gemm_flops(&o, o.batches[i]) * 1e-9, ref[i],
               gemm_flops(&o, o.batches[i]) / ref[i] * 1e-9, openblas_get_num_threads());
    printf("%-12s %6s %12s %14s %12s %11s %s\n", "family", "batch", "tokens/s", "vs llama3-8b", "fwd GFLOPS",
           "GEMM share", ">= 0.70");
    for (int f = 0; f < NF; f++)
        for (int i = 0; i < o.nb; i++) {
            double share = ref[i] / secs[f][i];
            printf("%-12s %6d %12.0f %14.3f %12.1f %11.3f %s\n", likes[f], o.batches[i],
                   o.batches[i] * o.T / secs[f][i], secs[0][i] / secs[f][i],
                   gemm_flops(&o, o.batches[i]) / secs[f][i] * 1e-9, share, share >= 0.70 ? "yes" : "NO");
        }
    printf("GEMM share = (matmul FLOPs / forward time) / (matmul FLOPs / plain sgemm time on the same shapes)\n");
    free(w);
    free(x);
    free(y);
    for (int f = 0; f < NF; f++) md_model_free(models[f]);
    return 0;
}
