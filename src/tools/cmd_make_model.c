/* cmd_make_model.c — `mechdiff make-model`: a random-weights HF checkpoint
 * with the real widths of a model family (logic in src/model/make_model.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mechdiff/make_model.h"
#include "tools/cmds.h"

static void help(FILE *f)
{
    fprintf(f,
            "usage: mechdiff make-model --like FAMILY --layers N --seed S -o DIR\n"
            "                           [--dtype bf16|f16|f32] [--vocab V] [--threads N]\n\n"
            "Writes DIR/config.json, DIR/generation_config.json and DIR/model.safetensors: a\n"
            "checkpoint (Llama, Mistral, Qwen2, Qwen3, Gemma-2 or OLMo-2) with the real widths\n"
            "of FAMILY and random weights (normal, std 0.02; RMSNorm gains 1.0), deterministic\n"
            "from S.\n"
            "Whole tensors are generated on N threads (default: every online CPU; the bytes\n"
            "do not depend on N) and written in order; memory stays bounded (about 3x the\n"
            "largest tensor + 256 MiB per thread).\n\n"
            "  --like FAMILY   llama3-8b  (Llama-3.1-8B: d 4096, ffn 14336, 32/8 heads, vocab 128256,\n"
            "                              rope llama3 x8, theta 500000)\n"
            "                  llama2-13b (d 5120, ffn 13824, 40/40 heads, vocab 32000, theta 10000)\n"
            "                  mistral-7b (Mistral-7B-v0.3: d 4096, ffn 14336, 32/8 heads, vocab 32768,\n"
            "                              theta 1e6)\n"            "                  qwen2.5-7b (Qwen2.5-7B: d 3584, ffn 18944, 28/4 heads, vocab 152064,\n"
            "                              q/k/v biases)\n"
            "                  qwen3-8b   (Qwen3-8B: d 4096, ffn 12288, 32/8 heads, vocab 151936, q/k norm)\n"
            "                  gemma2-9b  (gemma-2-9b: d 3584, ffn 14336, 16/8 heads of 256, vocab 256000,\n"
            "                              soft-caps 50/30, sliding window 4096 on even layers, tied)\n"
            "                  olmo2-7b   (OLMo-2-1124-7B: d 4096, ffn 11008, 32/32 heads, vocab 100352,\n"
            "                              post-norms, q/k norm)\n"
            "  --layers N      number of decoder layers (1..1000)\n"
            "  --seed S        random seed (unsigned integer)\n"
            "  -o, --out DIR   output folder (created if absent; existing files are replaced)\n"
            "  --dtype T       bf16 (default), f16 or f32\n"
            "  --vocab V       override the vocabulary size to keep files small; BOS/EOS ids\n"
            "                  outside it become V-2 / V-1\n"
            "  --threads N     generator threads (default: the online CPUs)\n\n"
            "No tokenizer is written: drive the model with token ids (e.g. forward --ids), or, for a\n"
            "job, copy a tokenizer.json (and tokenizer_config.json) of at most V tokens into DIR: the\n"
            "shipped pair's has 7310 (--vocab 7310; docs/own-job.md).\n");
}

static int parse_u64(const char *s, unsigned long long *out)
{
    char *end;
    if (!s || !*s || *s == '-') return -1;
    *out = strtoull(s, &end, 0);
    return *end ? -1 : 0;
}

/* The options into *o: 0, or 2 with what is wrong printed (a bad command line). */
static int parse_opts(int argc, char **argv, md_make_model_opts *o)
{
    int have_seed = 0;
    static const char *const known[] = {"--like",  "--layers", "--seed",  "-o",
                                        "--out",   "--dtype",  "--vocab", "--threads"};
    for (int i = 1; i < argc; i += 2) { /* every option takes one value */
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned long long x;
        size_t k = 0;
        while (k < sizeof known / sizeof known[0] && strcmp(a, known[k]) != 0) k++;
        if (k == sizeof known / sizeof known[0]) {
            fprintf(stderr, "mechdiff make-model: %s '%s' (see --help)\n", a[0] == '-' ? "unknown option"
                                                                                  : "unexpected argument", a);
            return 2;
        }
        if (!v) {
            fprintf(stderr, "mechdiff make-model: '%s' needs a value (see --help)\n", a);
            return 2;
        }
        md_config like;
        md_error bad;
        if (strcmp(a, "--like") == 0) {
            if (md_make_model_config(&like, v, &bad) != MD_OK) {
                fprintf(stderr, "mechdiff %s\n", bad.msg); /* "make-model: unknown family ..." */
                return 2;
            }
            o->like = v;
        } else if (strcmp(a, "--layers") == 0) {
            if (parse_u64(v, &x) || x == 0 || x > 1000) {
                fprintf(stderr, "mechdiff make-model: --layers '%s' must be an integer in 1..1000\n", v);
                return 2;
            }
            o->n_layers = (int)x;
        } else if (strcmp(a, "--seed") == 0) {
            if (parse_u64(v, &x)) {
                fprintf(stderr, "mechdiff make-model: --seed '%s' must be an unsigned integer\n", v);
                return 2;
            }
            o->seed = x;
            have_seed = 1;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--out") == 0) {
            o->out_dir = v;
        } else if (strcmp(a, "--dtype") == 0) {
            if (strcmp(v, "bf16") == 0) o->dtype = MD_DTYPE_BF16;
            else if (strcmp(v, "f16") == 0) o->dtype = MD_DTYPE_F16;
            else if (strcmp(v, "f32") == 0) o->dtype = MD_DTYPE_F32;
            else {
                fprintf(stderr, "mechdiff make-model: --dtype '%s' must be bf16, f16 or f32\n", v);
                return 2;
            }
        } else if (strcmp(a, "--vocab") == 0) {
            if (parse_u64(v, &x) || x < 2 || x > 0x7fffffff) {
                fprintf(stderr, "mechdiff make-model: --vocab '%s' must be an integer >= 2\n", v);
                return 2;
            }
            o->vocab = (int)x;
        } else if (strcmp(a, "--threads") == 0) {
            if (parse_u64(v, &x) || x == 0 || x > 1024) {
                fprintf(stderr, "mechdiff make-model: --threads '%s' must be an integer in 1..1024\n", v);
                return 2;
            }
            o->threads = (int)x;
        }
    }
    if (!o->like || !o->n_layers || !have_seed || !o->out_dir) {
        fprintf(stderr, "mechdiff make-model: --like, --layers, --seed and -o are required (see --help)\n");
        return 2;
    }
    return 0;
}

int cmd_make_model(int argc, char **argv)
{
    if (cmd_wants_help(argc, argv)) {
        help(stdout);
        return 0;
    }
    md_make_model_opts o = {.like = NULL, .n_layers = 0, .seed = 0, .dtype = MD_DTYPE_BF16, .vocab = 0,
                            .out_dir = NULL};
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc;
    struct stat st;
    if (stat(o.out_dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "mechdiff make-model: %s exists and is not a folder: -o names the folder to write the "
                        "checkpoint into\n", o.out_dir);
        return 1;
    }
    md_error err;
    md_error_clear(&err);
    if (md_make_model(&o, &err) != MD_OK) { /* its messages start with "make-model: " */
        fprintf(stderr, "mechdiff %s%s\n", strncmp(err.msg, "make-model: ", 12) == 0 ? "" : "make-model: ", err.msg);
        return 1;
    }
    printf("wrote %s (%s-like, %d layers, seed %llu, %s)\n", o.out_dir, o.like, o.n_layers,
           (unsigned long long)o.seed, md_dtype_name(o.dtype));
    return 0;
}
