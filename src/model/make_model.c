/* make_model.c — random-weights checkpoints with real family widths (see
 * include/mechdiff/make_model.h). */
#include "mechdiff/make_model.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mechdiff/safetensors.h"
#include "mechdiff/sysmem.h"

#define MM_CHUNK (1u << 20) /* elements generated per write */
#define MM_STD 0.02f

const char *const md_make_model_families[] = {"llama3-8b", "llama2-13b", "mistral-7b", "qwen2.5-7b",
                                               "qwen3-8b",  "gemma2-9b",  "olmo2-7b",   NULL};

/* ------------------------------------------------------------------ rng */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(uint64_t s[4])
{
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

void md_normal_rng_init(md_normal_rng *r, uint64_t seed, const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a of the name */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) h = (h ^ *p) * 0x100000001b3ull;
    uint64_t x = seed ^ splitmix64(&h);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    r->has_spare = 0;
    r->spare = 0;
}

void md_normal_rng_fill(md_normal_rng *r, float *out, size_t n, float std)
{
    const double two_pi = 6.283185307179586476925286766559;
    size_t i = 0;
    if (n && r->has_spare) {
        out[i++] = (float)(r->spare * std);
        r->has_spare = 0;
    }
    while (i < n) {
        /* u1 in (0, 1], u2 in [0, 1): 53-bit uniforms. */
        double u1 = ((xoshiro_next(r->s) >> 11) + 1) * 0x1.0p-53;
        double u2 = (xoshiro_next(r->s) >> 11) * 0x1.0p-53;
        double rad = sqrt(-2.0 * log(u1));
        double z0 = rad * cos(two_pi * u2), z1 = rad * sin(two_pi * u2);
        out[i++] = (float)(z0 * std);
        if (i < n) {
            out[i++] = (float)(z1 * std);
        } else {
            r->spare = z1;
            r->has_spare = 1;
        }
    }
}

/* ------------------------------------------------------------- families */

static void set_names(md_config *cfg, const char *arch, const char *type, md_family fam)
{
    snprintf(cfg->architecture, sizeof cfg->architecture, "%s", arch);
    snprintf(cfg->model_type, sizeof cfg->model_type, "%s", type);
    cfg->family = fam;
}

/* The families beyond Llama/Mistral, as their config.json on the Hub
 * (Qwen2.5-7B, Qwen3-8B, gemma-2-9b, OLMo-2-1124-7B). */
static int make_config_other(md_config *cfg, const char *like)
{
    if (strcmp(like, "qwen2.5-7b") == 0) {
        set_names(cfg, "Qwen2ForCausalLM", "qwen2", MD_FAMILY_QWEN2);
        cfg->d_model = 3584, cfg->d_ff = 18944, cfg->n_layers = 28, cfg->n_heads = 28, cfg->n_kv_heads = 4;
        cfg->vocab_size = 152064, cfg->max_position = 131072, cfg->rope_theta = 1000000.0, cfg->rms_eps = 1e-6f;
        cfg->qkv_bias = 1;
        cfg->bos_id = 151643, cfg->eos_ids[0] = 151643;
    } else if (strcmp(like, "qwen3-8b") == 0) {
        set_names(cfg, "Qwen3ForCausalLM", "qwen3", MD_FAMILY_QWEN3);
        cfg->d_model = 4096, cfg->d_ff = 12288, cfg->n_layers = 36, cfg->n_heads = 32, cfg->n_kv_heads = 8;
        cfg->vocab_size = 151936, cfg->max_position = 40960, cfg->rope_theta = 1000000.0, cfg->rms_eps = 1e-6f;
        cfg->qk_norm = MD_QK_NORM_HEAD;
        cfg->bos_id = 151643, cfg->eos_ids[0] = 151645;
    } else if (strcmp(like, "gemma2-9b") == 0) {
        set_names(cfg, "Gemma2ForCausalLM", "gemma2", MD_FAMILY_GEMMA2);
        cfg->d_model = 3584, cfg->d_ff = 14336, cfg->n_layers = 42, cfg->n_heads = 16, cfg->n_kv_heads = 8;
        cfg->head_dim = 256, cfg->vocab_size = 256000, cfg->max_position = 8192, cfg->rope_theta = 10000.0;
        cfg->rms_eps = 1e-6f, cfg->tie_word_embeddings = 1;
        cfg->norm_place = MD_NORM_PRE_POST, cfg->norm_plus_one = 1, cfg->hidden_act = MD_HIDDEN_GELU_TANH;
        cfg->embed_scale = (float)sqrt(3584.0), cfg->query_pre_attn_scalar = 256;
        cfg->attn_softcap = 50.0f, cfg->final_softcap = 30.0f, cfg->sliding_window = 4096;
        for (int l = 0; l < MD_MAX_LAYERS; l++) cfg->layer_sliding[l] = l % 2 == 0;
        cfg->bos_id = 2, cfg->eos_ids[0] = 1;
    } else if (strcmp(like, "olmo2-7b") == 0) {
        set_names(cfg, "Olmo2ForCausalLM", "olmo2", MD_FAMILY_OLMO2);
        cfg->d_model = 4096, cfg->d_ff = 11008, cfg->n_layers = 32, cfg->n_heads = 32, cfg->n_kv_heads = 32;
        cfg->vocab_size = 100352, cfg->max_position = 4096, cfg->rope_theta = 500000.0, cfg->rms_eps = 1e-6f;
        cfg->norm_place = MD_NORM_POST, cfg->qk_norm = MD_QK_NORM_FULL;
        cfg->bos_id = -1, cfg->eos_ids[0] = 100257;
    } else {
        return MD_ERR;
    }
    return MD_OK;
}

int md_make_model_config(md_config *cfg, const char *like, md_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->head_dim = 128;
    cfg->rms_eps = 1e-5f;
    cfg->rope_type = MD_ROPE_DEFAULT;
    cfg->rope_factor = 1.0;
    cfg->tie_word_embeddings = 0;
    cfg->torch_dtype = MD_DTYPE_BF16;
    cfg->n_eos = 1;
    if (strcmp(like, "llama3-8b") == 0) { /* Llama-3.1-8B */
        snprintf(cfg->architecture, sizeof cfg->architecture, "LlamaForCausalLM");
        snprintf(cfg->model_type, sizeof cfg->model_type, "llama");
        cfg->d_model = 4096, cfg->d_ff = 14336, cfg->n_layers = 32, cfg->n_heads = 32, cfg->n_kv_heads = 8;
        cfg->vocab_size = 128256, cfg->max_position = 131072, cfg->rope_theta = 500000.0;
        cfg->rope_type = MD_ROPE_LLAMA3, cfg->rope_factor = 8.0, cfg->rope_low_freq_factor = 1.0;
        cfg->rope_high_freq_factor = 4.0, cfg->rope_original_max_position = 8192;
        cfg->bos_id = 128000, cfg->eos_ids[0] = 128001;
    } else if (strcmp(like, "llama2-13b") == 0) {
        snprintf(cfg->architecture, sizeof cfg->architecture, "LlamaForCausalLM");
        snprintf(cfg->model_type, sizeof cfg->model_type, "llama");
        cfg->d_model = 5120, cfg->d_ff = 13824, cfg->n_layers = 40, cfg->n_heads = 40, cfg->n_kv_heads = 40;
        cfg->vocab_size = 32000, cfg->max_position = 4096, cfg->rope_theta = 10000.0;
        cfg->bos_id = 1, cfg->eos_ids[0] = 2;
    } else if (strcmp(like, "mistral-7b") == 0) { /* Mistral-7B-v0.3 */
        snprintf(cfg->architecture, sizeof cfg->architecture, "MistralForCausalLM");
        snprintf(cfg->model_type, sizeof cfg->model_type, "mistral");
        cfg->d_model = 4096, cfg->d_ff = 14336, cfg->n_layers = 32, cfg->n_heads = 32, cfg->n_kv_heads = 8;
        cfg->vocab_size = 32768, cfg->max_position = 32768, cfg->rope_theta = 1000000.0;
        cfg->bos_id = 1, cfg->eos_ids[0] = 2;
    } else if (make_config_other(cfg, like) != MD_OK) {
        return md_error_set(err, "make-model: unknown family '%s' for --like (use llama3-8b, llama2-13b, "
                            "mistral-7b, qwen2.5-7b, qwen3-8b, gemma2-9b or olmo2-7b)", like);
    }
    return MD_OK;
}

/* ---------------------------------------------------------------- write */

typedef struct mm_tensor {
    char name[128];
    int ndim;
    int64_t shape[2];
    int is_norm;             /* a norm gain: 1.0 (Gemma stores w of 1 + w: 0.0), not random */
} mm_tensor;

static void add(mm_tensor *t, size_t *n, const char *name, int64_t d0, int64_t d1, int is_norm)
{
    mm_tensor *x = &t[(*n)++];
    snprintf(x->name, sizeof x->name, "%s", name);
    x->ndim = d1 ? 2 : 1;
    x->shape[0] = d0;
    x->shape[1] = d1;
    x->is_norm = is_norm;
}

/* The checkpoint's tensors in HF names (shapes [out, in]) for cfg's family
 * (which ones: src/model/model.c bind_layer); tensors holds 3 + 16 per layer. */
static size_t list_tensors(const md_config *cfg, mm_tensor *tensors)
{
    size_t nt = 0;
    int64_t d = cfg->d_model, f = cfg->d_ff, V = cfg->vocab_size, hd = cfg->head_dim;
    int64_t q = (int64_t)cfg->n_heads * hd, kv = (int64_t)cfg->n_kv_heads * hd;
    int pre = cfg->norm_place != MD_NORM_POST, post = cfg->norm_place != MD_NORM_PRE;
    char name[128];
    add(tensors, &nt, "model.embed_tokens.weight", V, d, 0);
    for (int l = 0; l < cfg->n_layers; l++) {
#define LAYER(suffix, d0, d1, norm) \
    (snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix), add(tensors, &nt, name, d0, d1, norm))
        if (pre) LAYER("input_layernorm.weight", d, 0, 1);
        LAYER("self_attn.q_proj.weight", q, d, 0);
        LAYER("self_attn.k_proj.weight", kv, d, 0);
        LAYER("self_attn.v_proj.weight", kv, d, 0);
        if (cfg->qkv_bias) {
            LAYER("self_attn.q_proj.bias", q, 0, 0);
            LAYER("self_attn.k_proj.bias", kv, 0, 0);
            LAYER("self_attn.v_proj.bias", kv, 0, 0);
        }
        if (cfg->qk_norm != MD_QK_NORM_NONE) {
            LAYER("self_attn.q_norm.weight", cfg->qk_norm == MD_QK_NORM_HEAD ? hd : q, 0, 1);
            LAYER("self_attn.k_norm.weight", cfg->qk_norm == MD_QK_NORM_HEAD ? hd : kv, 0, 1);
        }
        LAYER("self_attn.o_proj.weight", d, q, 0);
        if (pre) LAYER(post ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight", d, 0, 1);
        if (post) LAYER("post_attention_layernorm.weight", d, 0, 1);
        if (post) LAYER("post_feedforward_layernorm.weight", d, 0, 1);
        LAYER("mlp.gate_proj.weight", f, d, 0);
        LAYER("mlp.up_proj.weight", f, d, 0);
        LAYER("mlp.down_proj.weight", d, f, 0);
#undef LAYER
    }
    add(tensors, &nt, "model.norm.weight", d, 0, 1);
    if (!cfg->tie_word_embeddings) add(tensors, &nt, "lm_head.weight", V, d, 0);
    return nt;
}

static int mkdir_p(const char *dir, md_error *err)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return md_error_set(err, "%s: path too long", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return md_error_set(err, "%s: cannot create directory: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return md_error_set(err, "%s: cannot create directory: %s", buf, strerror(errno));
    return MD_OK;
}

static size_t tensor_bytes(const mm_tensor *t, md_dtype dt)
{
    return (size_t)t->shape[0] * (size_t)(t->ndim == 2 ? t->shape[1] : 1) * md_dtype_size(dt);
}

/* Tensor t's values into out (its bytes in o->dtype), chunk by chunk through
 * fbuf[MM_CHUNK]: the same chunks, hence the same values, as one stream. */
static void gen_tensor(const mm_tensor *t, const md_make_model_opts *o, float norm_value, float *fbuf, char *out)
{
    size_t n = (size_t)t->shape[0] * (size_t)(t->ndim == 2 ? t->shape[1] : 1);
    size_t esz = md_dtype_size(o->dtype);
    md_normal_rng rng;
    md_normal_rng_init(&rng, o->seed, t->name);
    for (size_t done = 0; done < n;) {
        size_t k = n - done < MM_CHUNK ? n - done : MM_CHUNK;
        if (t->is_norm) {
            for (size_t i = 0; i < k; i++) fbuf[i] = norm_value;
        } else {
            md_normal_rng_fill(&rng, fbuf, k, MM_STD);
        }
        md_dtype_from_f32(out + done * esz, fbuf, o->dtype, k);
        done += k;
    }
}

/* ------------------------------------------------------- parallel write
 *
 * Whole tensors are generated on worker threads (each from its own stream,
 * so the bytes do not depend on the thread count) and written in order by
 * the calling thread. Workers claim the MM_BIG_FIRST largest tensors first
 * (the embedding and lm_head of a real vocabulary take longest), then the
 * rest in file order, and wait while the generated-but-unwritten bytes
 * would exceed the budget (>= (MM_BIG_FIRST + 1) x the largest tensor, so
 * the tensor the writer needs next can always be claimed). */

#define MM_BIG_FIRST 2
#define MM_MAX_THREADS 64
#define MM_BUDGET_PER_THREAD ((size_t)256 << 20)

enum { MM_PENDING = 0, MM_CLAIMED, MM_DONE, MM_FAILED };

typedef struct mm_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const mm_tensor *tensors;
    size_t nt;
    const md_make_model_opts *o;
    float norm_value;
    size_t *order;    /* claim order [nt]; owned */
    size_t next;      /* next entry of order to claim */
    char **data;      /* [nt] generated bytes until written; owned */
    int *state;       /* [nt] MM_* */
    size_t held, budget;
    int stop;         /* the writer failed: claim nothing more */
} mm_pool;

static void *mm_worker(void *arg)
{
    mm_pool *p = arg;
    float *fbuf = malloc(MM_CHUNK * sizeof(float));
    pthread_mutex_lock(&p->mu);
    while (!p->stop && p->next < p->nt) {
        size_t i = p->order[p->next], need = tensor_bytes(&p->tensors[i], p->o->dtype);
        if (p->held > 0 && p->held + need > p->budget) {
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        p->next++;
        p->held += need;
        p->state[i] = MM_CLAIMED;
        pthread_mutex_unlock(&p->mu);
        char *buf = fbuf ? malloc(need ? need : 1) : NULL;
        if (buf) gen_tensor(&p->tensors[i], p->o, p->norm_value, fbuf, buf);
        pthread_mutex_lock(&p->mu);
        p->data[i] = buf;
        p->state[i] = buf ? MM_DONE : MM_FAILED;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    free(fbuf);
    return NULL;
}

/* The claim order: the MM_BIG_FIRST largest tensors, then the others in file order. */
static void claim_order(mm_pool *p)
{
    size_t big[MM_BIG_FIRST], nb = 0, k = 0;
    for (int b = 0; b < MM_BIG_FIRST; b++) {
        size_t best = p->nt;
        for (size_t i = 0; i < p->nt; i++) {
            int taken = 0;
            for (size_t j = 0; j < nb; j++) taken |= big[j] == i;
            if (!taken && (best == p->nt || tensor_bytes(&p->tensors[i], p->o->dtype) >
                                                tensor_bytes(&p->tensors[best], p->o->dtype)))
                best = i;
        }
        if (best < p->nt) big[nb++] = best;
    }
    for (size_t j = 0; j < nb; j++) p->order[k++] = big[j];
    for (size_t i = 0; i < p->nt; i++) {
        int taken = 0;
        for (size_t j = 0; j < nb; j++) taken |= big[j] == i;
        if (!taken) p->order[k++] = i;
    }
}

/* Writes every tensor's bytes through w in file order, generated on `threads` workers. */
static int write_tensors(md_safetensors_writer *w, mm_pool *p, int threads, md_error *err)
{
    pthread_t tid[MM_MAX_THREADS];
    int started = 0, rc = MD_OK;
    for (; started < threads; started++)
        if (pthread_create(&tid[started], NULL, mm_worker, p) != 0) break;
    if (started == 0) return md_error_set(err, "make-model: cannot start a generator thread");
    for (size_t i = 0; i < p->nt && rc == MD_OK; i++) {
        pthread_mutex_lock(&p->mu);
        while (p->state[i] == MM_PENDING || p->state[i] == MM_CLAIMED) pthread_cond_wait(&p->cv, &p->mu);
        pthread_mutex_unlock(&p->mu);
        size_t bytes = tensor_bytes(&p->tensors[i], p->o->dtype);
        if (p->state[i] == MM_FAILED)
            rc = md_error_set(err, "make-model: out of memory generating %s (%zu MiB)", p->tensors[i].name,
                              bytes >> 20);
        else
            rc = md_safetensors_writer_put(w, p->data[i], bytes, err);
        pthread_mutex_lock(&p->mu);
        free(p->data[i]);
        p->data[i] = NULL;
        p->held -= bytes;
        if (rc != MD_OK) p->stop = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
    return rc;
}

/* Bytes the generators may hold ahead of the writer: (MM_BIG_FIRST + 1) x the
 * largest tensor (so the tensor the writer needs next can always be claimed:
 * no deadlock) plus MM_BUDGET_PER_THREAD per thread, the per-thread part
 * capped at half the memory available now (many cores must not mean more
 * memory than the machine has; threads then wait for the writer instead). */
static size_t pool_budget(size_t largest, int threads, size_t available)
{
    size_t floor = (MM_BIG_FIRST + 1) * largest, extra = (size_t)threads * MM_BUDGET_PER_THREAD;
    size_t room = available / 2 > floor ? available / 2 - floor : 0;
    return floor + (extra < room ? extra : room);
}

static int write_parallel(md_safetensors_writer *w, const mm_tensor *tensors, size_t nt, const md_make_model_opts *o,
                          float norm_value, md_error *err)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = o->threads > 0 ? o->threads : online > 0 ? (int)online : 1;
    if (threads > MM_MAX_THREADS) threads = MM_MAX_THREADS;
    if ((size_t)threads > nt) threads = (int)nt;
    mm_pool p = {.tensors = tensors, .nt = nt, .o = o, .norm_value = norm_value};
    size_t largest = 0;
    for (size_t i = 0; i < nt; i++)
        if (tensor_bytes(&tensors[i], o->dtype) > largest) largest = tensor_bytes(&tensors[i], o->dtype);
    p.budget = pool_budget(largest, threads, md_sysmem_available());
    p.order = malloc(nt * sizeof *p.order);
    p.data = calloc(nt, sizeof *p.data);
    p.state = calloc(nt, sizeof *p.state);
    int rc = MD_ERR;
    if (!p.order || !p.data || !p.state) {
        md_error_set(err, "make-model: out of memory");
    } else if (pthread_mutex_init(&p.mu, NULL) != 0 || pthread_cond_init(&p.cv, NULL) != 0) {
        md_error_set(err, "make-model: cannot create a lock");
    } else {
        claim_order(&p);
        rc = write_tensors(w, &p, threads, err);
        pthread_cond_destroy(&p.cv);
        pthread_mutex_destroy(&p.mu);
    }
    for (size_t i = 0; p.data && i < nt; i++) free(p.data[i]);
    free(p.order);
    free(p.data);
    free(p.state);
    return rc;
}

int md_make_model(const md_make_model_opts *o, md_error *err)
{
    int rc = MD_ERR;
    md_config cfg;
    mm_tensor *tensors = NULL;
    md_safetensors_writer *w = NULL; /* owned until finish/abort */
    char path[4096];

    if (o->config) cfg = *o->config;
    else if (md_make_model_config(&cfg, o->like, err) != MD_OK) return MD_ERR;
    if (o->n_layers <= 0 || o->n_layers > 1000)
        return md_error_set(err, "make-model: --layers %d out of range (1..1000)", o->n_layers);
    if (md_dtype_size(o->dtype) == 0) return md_error_set(err, "make-model: invalid --dtype");
    if (o->vocab < 0) return md_error_set(err, "make-model: --vocab %d must be positive", o->vocab);
    cfg.n_layers = o->n_layers;
    cfg.torch_dtype = o->dtype;
    if (o->vocab > 0) {
        if (o->vocab < 2) return md_error_set(err, "make-model: --vocab %d is too small (need >= 2)", o->vocab);
        cfg.vocab_size = o->vocab;
        if (cfg.bos_id >= cfg.vocab_size) cfg.bos_id = cfg.vocab_size - 2;
        if (cfg.eos_ids[0] >= cfg.vocab_size) cfg.eos_ids[0] = cfg.vocab_size - 1;
    }
    if (mkdir_p(o->out_dir, err) != MD_OK) return MD_ERR;

    snprintf(path, sizeof path, "%s/config.json", o->out_dir);
    if (md_hf_config_write(&cfg, path, err) != MD_OK) goto fail;
    snprintf(path, sizeof path, "%s/generation_config.json", o->out_dir);
    if (md_hf_config_write_generation(&cfg, path, err) != MD_OK) goto fail;

    tensors = calloc(3 + 16 * (size_t)cfg.n_layers, sizeof *tensors);
    if (!tensors) {
        md_error_set(err, "make-model: out of memory");
        goto fail;
    }
    size_t nt = list_tensors(&cfg, tensors);
    snprintf(path, sizeof path, "%s/model.safetensors", o->out_dir);
    if (md_safetensors_writer_create(&w, path, err) != MD_OK) goto fail;
    char seed_text[32];
    snprintf(seed_text, sizeof seed_text, "%llu", (unsigned long long)o->seed);
    if (md_safetensors_writer_set_metadata(w, "mechdiff_make_model_like", o->like, err) != MD_OK ||
        md_safetensors_writer_set_metadata(w, "mechdiff_make_model_seed", seed_text, err) != MD_OK)
        goto fail;
    for (size_t i = 0; i < nt; i++)
        if (md_safetensors_writer_declare(w, tensors[i].name, o->dtype, tensors[i].ndim, tensors[i].shape, err) !=
            MD_OK)
            goto fail;
    if (md_safetensors_writer_begin(w, err) != MD_OK) goto fail;
    if (write_parallel(w, tensors, nt, o, cfg.norm_plus_one ? 0.0f : 1.0f, err) != MD_OK) goto fail;
    md_safetensors_writer *fin = w;
    w = NULL;
    if (md_safetensors_writer_finish(fin, err) != MD_OK) goto fail;
    rc = MD_OK;
fail:
    md_safetensors_writer_abort(w);
    free(tensors);
    return rc;
}
