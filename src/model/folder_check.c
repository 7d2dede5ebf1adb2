/* folder_check.c — a model folder holds what workers need (folder_check.h).
 * The weights are checked by md_model_load itself (the worker's binding of
 * every tensor, same names and shapes, and its NaN/inf scan of every weight)
 * with a 1-byte fp32 cache, so nothing is converted but the norm vectors. The
 * scan reads every byte once: for 3 x 16 GB that is the cost of one pass at
 * the file system's read rate, paid before any GPU hour is. */
#include "mechdiff/folder_check.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mechdiff/hf_config.h"
#include "mechdiff/model.h"
#include "mechdiff/tokenizer.h"

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int has_file(const char *dir, const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, R_OK) == 0;
}

/* First file of DIR ending in .bin or .pth (PyTorch weights) into name. */
static int find_pytorch_weights(const char *dir, char *name, size_t len)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d)))
        if (ends_with(e->d_name, ".bin") || ends_with(e->d_name, ".pth")) {
            snprintf(name, len, "%s", e->d_name);
            found = 1;
        }
    closedir(d);
    return found;
}

/* The subfolders of DIR that look like model folders (a config.json, or a
 * Hugging Face cache repository models--org--name), comma-separated into
 * list (at most len bytes); returns how many. */
static int model_subfolders(const char *dir, char *list, size_t len)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int n = 0;
    size_t used = 0;
    list[0] = '\0';
    while ((e = readdir(d))) {
        char sub[4000];
        if (e->d_name[0] == '.') continue;
        snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
        if (!has_file(sub, "config.json") && strncmp(e->d_name, "models--", 8) != 0) continue;
        int w = snprintf(list + used, len - used, "%s%s", n ? ", " : "", e->d_name);
        if (w < 0 || (size_t)w >= len - used) break;
        used += (size_t)w;
        n++;
    }
    closedir(d);
    return n;
}

static int check_files(const char *role, const char *dir, md_error *err)
{
    char bin[256];
    if (!has_file(dir, "model.safetensors") && !has_file(dir, "model.safetensors.index.json")) {
        if (find_pytorch_weights(dir, bin, sizeof bin))
            return md_error_set(
                err,
                "model '%s' (%s): only PyTorch weights (%s); mechdiff reads safetensors. Download the "
                "safetensors files (huggingface-cli download ORG/NAME --include '*.safetensors' '*.json'), or "
                "convert once with transformers: python3 -c \"import transformers as t; "
                "t.AutoModelForCausalLM.from_pretrained('%s', torch_dtype='auto').save_pretrained('OUT', "
                "safe_serialization=True); t.AutoTokenizer.from_pretrained('%s').save_pretrained('OUT')\" and "
                "point the job at OUT (docs/cluster.md)",
                role, dir, bin, dir, dir);
        char inside[512];
        if (model_subfolders(dir, inside, sizeof inside))
            return md_error_set(err, "model '%s' (%s): not a model folder (no config.json, no weights) but it holds "
                                     "model folders: %s; name one of them",
                                role, dir, inside);
        return md_error_set(err, "model '%s' (%s): no weights: expected model.safetensors or "
                                 "model.safetensors.index.json with its shards (incomplete download?)",
                            role, dir);
    }
    if (!has_file(dir, "tokenizer.json") && has_file(dir, "tokenizer.model"))
        return md_error_set(err,
                            "model '%s' (%s): only tokenizer.model (SentencePiece); mechdiff reads tokenizer.json. "
                            "Download it (huggingface-cli download ORG/NAME tokenizer.json) or write it once: "
                            "python3 -c \"import transformers as t; "
                            "t.AutoTokenizer.from_pretrained('%s').save_pretrained('%s')\"",
                            role, dir, dir, dir);
    return MD_OK;
}

/* The tokenizer of DIR from toks, checked against the vocabulary of its
 * config.json as md_model_load checks it, and at the same point: after the
 * config (an error in config.json is md_model_load's to say), before the
 * weights. */
static int check_tokenizer(const char *dir, md_tokcache *toks, md_error *err)
{
    md_config c;
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (access(path, R_OK) != 0 || md_hf_config_load_dir(&c, dir, err) != MD_OK) return MD_OK;
    md_tokenizer *tok = NULL; /* toks's */
    if (md_tokcache_acquire(toks, dir, &tok, err) != MD_OK) return MD_ERR;
    if (md_tokenizer_vocab_size(tok) > c.vocab_size)
        return md_error_set(err, "%s: tokenizer has %d tokens but config.json vocab_size is %d", dir,
                            md_tokenizer_vocab_size(tok), c.vocab_size);
    return MD_OK;
}

int md_folder_check(const char *role, const char *dir, md_tokcache *toks, md_error *err)
{
    if (check_files(role, dir, err) != MD_OK) return MD_ERR;
    md_model_options opt;
    md_model_options_init(&opt);
    opt.fp32_cache_bytes = 1; /* bind every tensor, convert none but the vectors */
    opt.skip_finite_check = 1; /* reading every weight is the workers' job, when they load them */
    if (toks) { /* the tokenizer once, from the phase's cache: the model binds only the weights */
        if (check_tokenizer(dir, toks, err) != MD_OK) return md_error_prefix(err, "model '%s'", role);
        opt.skip_tokenizer = 1;
    }
    md_model *m = NULL;
    if (md_model_load(&m, dir, &opt, err) != MD_OK) return md_error_prefix(err, "model '%s'", role);
    md_model_free(m);
    return MD_OK;
}
