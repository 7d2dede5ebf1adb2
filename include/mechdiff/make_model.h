/* make_model.h — random-weights Hugging Face checkpoints with the real widths
 * of a model family (issue 4): config.json, generation_config.json and
 * model.safetensors with HF tensor names, for tests and benchmarks without
 * downloading weights. No tokenizer is written.
 *
 * Weights are N(0, 0.02²) from a per-tensor stream seeded by (seed, tensor
 * name) — xoshiro256** seeded through splitmix64, Box–Muller — so a tensor's
 * values depend only on the seed, its name and its shape, not on the layer
 * count, dtype or write order. RMSNorm gains are 1.0 (Gemma's stored w of
 * 1 + w: 0.0). Whole tensors are generated on several threads (each from
 * its own stream: the bytes do not depend on the thread count) and written
 * in file order; memory stays bounded for multi-GB outputs (about 3 x the
 * largest tensor plus 256 MiB per thread). */
#ifndef MECHDIFF_MAKE_MODEL_H
#define MECHDIFF_MAKE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "mechdiff/dtype.h"
#include "mechdiff/error.h"
#include "mechdiff/hf_config.h"

typedef struct md_make_model_opts {
    const char *like;        /* one of md_make_model_families */
    int n_layers;            /* > 0 */
    uint64_t seed;
    md_dtype dtype;          /* weights dtype (BF16 by default in the command) */
    int vocab;               /* 0: the family's vocabulary; else overrides it */
    const char *out_dir;     /* created if absent */
    const md_config *config; /* optional: write this architecture (widths of a benchmark)
                                instead of like's; n_layers/dtype/vocab still apply */
    int threads;             /* generator threads; 0: the online CPUs (the bytes do not
                                depend on it) */
} md_make_model_opts;

/* Names of the supported families, NULL-terminated (for --help). */
extern const char *const md_make_model_families[];

/* Fills cfg with the family's real hyper-parameters (all its layers, its
 * vocabulary, torch_dtype bf16). Error naming `like` when unknown. */
int md_make_model_config(md_config *cfg, const char *like, md_error *err);

/* Writes opts->out_dir/{config.json, generation_config.json, model.safetensors}.
 * With a vocab override, BOS/EOS ids that fall outside it become vocab-2 and
 * vocab-1. Files are written to *.tmp and renamed. */
int md_make_model(const md_make_model_opts *opts, md_error *err);

/* The deterministic normal generator (exposed for tests and other tools):
 * one stream per (seed, name); filling in pieces gives the same values as
 * filling at once. Plain data, caller-owned. */
typedef struct md_normal_rng {
    uint64_t s[4];           /* xoshiro256** state */
    int has_spare;           /* Box–Muller makes values in pairs */
    double spare;
} md_normal_rng;
void md_normal_rng_init(md_normal_rng *r, uint64_t seed, const char *name);
void md_normal_rng_fill(md_normal_rng *r, float *out, size_t n, float std);

#endif
