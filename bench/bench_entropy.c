/* bench_entropy.c — entropy-neuron pass on a real-width checkpoint: time and
 * peak memory against the size W_U would have in fp32.
 *
 *   bench_entropy MODEL_DIR [NEURONS [BLOCK_ROWS]]
 *
 * Opens the folder's safetensors (mmap), streams W_U once for the mean and
 * once for the LogitVar of the first NEURONS (default 256) last-layer neurons,
 * and prints peak RSS (VmHWM, file-backed pages included) and the fp32 W_U
 * size. Exit status 1 when the peak reaches a quarter of the fp32 size: on a
 * Llama-3-8B-wide checkpoint (make-model --like llama3-8b --layers 1 --vocab
 * 128256) that is the memory check of tests/e2e/entropy_memory.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mechdiff/entropy.h"
#include "mechdiff/hf_config.h"
#include "mechdiff/safetensors.h"

static long vm_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0) v = strtol(line + n + 1, NULL, 10);
    if (f) fclose(f);
    return v;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL_DIR [NEURONS [BLOCK_ROWS]]\n", argv[0]);
        return 2;
    }
    int want = argc > 2 ? atoi(argv[2]) : 256, block = argc > 3 ? atoi(argv[3]) : 0;
    md_error err = {0};
    md_config cfg;
    md_safetensors *st = NULL;
    double *mean = NULL, *norm = NULL, *var = NULL;
    int rc = 1;
    if (md_hf_config_load_dir(&cfg, argv[1], &err) != MD_OK || md_safetensors_open_dir(&st, argv[1], &err) != MD_OK) {
        fprintf(stderr, "%s\n", err.msg);
        goto done;
    }
    char name[128];
    snprintf(name, sizeof name, "model.layers.%d.mlp.down_proj.weight", cfg.n_layers - 1);
    const md_tensor_info *wd = md_safetensors_find(st, name), *g = md_safetensors_find(st, "model.norm.weight");
    const md_tensor_info *wu =
        md_safetensors_find(st, cfg.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight");
    if (!wd || !g || !wu) {
        fprintf(stderr, "%s: missing down_proj, norm or lm_head\n", argv[1]);
        goto done;
    }
    md_entropy_src s = {.w_u = wu->data, .w_u_dtype = wu->dtype, .vocab = wu->shape[0], .d = (int)wu->shape[1],
                        .gain = g->data, .gain_dtype = g->dtype, .w_down = wd->data, .w_down_dtype = wd->dtype,
                        .d_ff = (int)wd->shape[1], .drop_pages = 1};
    int n = want < s.d_ff ? want : s.d_ff;
    mean = malloc((size_t)s.d * sizeof *mean);
    norm = malloc((size_t)n * sizeof *norm);
    var = malloc((size_t)n * sizeof *var);
    if (!mean || !norm || !var) goto done;
    long rss0 = vm_kib("VmRSS:");
    double t0 = now();
    if (md_entropy_wu_mean(&s, block, mean, &err) != MD_OK) goto fail;
    double t1 = now();
    if (md_entropy_neurons(&s, mean, 0, n, block, norm, var, &err) != MD_OK) goto fail;
    double t2 = now();
    double fp32_mib = (double)s.vocab * s.d * 4 / 1048576.0;
    double hwm_mib = vm_kib("VmHWM:") / 1024.0;
    printf("W_U %lld x %d %s; d_ff %d; %d neurons; block %d rows\n", (long long)s.vocab, s.d,
           md_dtype_name(s.w_u_dtype), s.d_ff, n, block > 0 ? block : MD_ENTROPY_BLOCK_ROWS);
    printf("mean pass %.2f s; LogitVar pass %.2f s (%.1f GFLOP/s); full d_ff would take ~%.0f s\n", t1 - t0,
           t2 - t1, 2.0 * s.vocab * s.d * n / (t2 - t1) / 1e9, (t2 - t1) * s.d_ff / n);
    printf("peak RSS %.1f MiB (at start %.1f MiB); W_U in fp32 %.1f MiB; ratio %.3f\n", hwm_mib, rss0 / 1024.0,
           fp32_mib, hwm_mib / fp32_mib);
    printf("neuron 0: norm %.6g LogitVar %.6g\n", norm[0], var[0]);
    rc = hwm_mib < 0.25 * fp32_mib ? 0 : 1;
    if (rc) printf("FAIL: peak RSS is not well below the fp32 W_U size\n");
    goto done;
fail:
    fprintf(stderr, "%s\n", err.msg);
done:
    free(mean);
    free(norm);
    free(var);
    md_safetensors_close(st);
    return rc;
}
