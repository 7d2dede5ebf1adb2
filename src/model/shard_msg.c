/* shard_msg.c — the layer-sharded group's messages as bytes: encoders, and
 * decoders that check each field before it sizes or indexes anything (see
 * shard_msg.h for the wire format). */
#include "model/shard_msg.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing ------------------------------------------------------------- */
static void put_i32(md_sbuf *b, int32_t v)
{
    md_sbuf_add(b, &v, sizeof v); /* a failure shows in b->failed */
}

static void put_f32s(md_sbuf *b, const float *v, size_t n)
{
    md_sbuf_add(b, v, n * sizeof(float));
}

static int finish(md_sbuf *b)
{
    return b->failed || b->n > MD_SHARD_MAX_BYTES ? MD_ERR : MD_OK;
}

/* ---- reading: each field named in the error ------------------------------ */
typedef struct rd {
    const char *p;
    size_t n, at;
    const char *what;   /* "forward request", ... */
    const char *list;   /* the list an item belongs to ("hooks"), or NULL */
    int item;           /* its index */
    md_error *err;
} rd;

/* "hooks[3].layer" or "n_seq" */
static const char *field_name(const rd *r, const char *field, char *buf, size_t cap)
{
    if (!r->list) return field;
    snprintf(buf, cap, "%s[%d]%s%s", r->list, r->item, field[0] ? "." : "", field);
    return buf;
}

/* "<what>: <field> <why>" */
static int bad(const rd *r, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(const rd *r, const char *field, const char *fmt, ...)
{
    char nb[96], why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return md_error_set(r->err, "%s: %s%s%s", r->what, field_name(r, field, nb, sizeof nb), field[0] || r->list ? " " : "",
                        why);
}

/* The next `bytes` bytes as a view, for `field`. */
static int take(rd *r, const char *field, size_t bytes, const void **q)
{
    if (bytes > r->n - r->at) {
        char nb[96];
        return md_error_set(r->err, "%s: truncated at %s: %zu bytes needed, %zu left of %zu", r->what,
                            field_name(r, field, nb, sizeof nb), bytes, r->n - r->at, r->n);
    }
    *q = r->p + r->at;
    r->at += bytes;
    return MD_OK;
}

static int get_i32(rd *r, const char *field, int *v)
{
    const void *q = NULL;
    if (take(r, field, sizeof(int32_t), &q) != MD_OK) return MD_ERR;
    int32_t x;
    memcpy(&x, q, sizeof x);
    *v = x;
    return MD_OK;
}

/* An int32 in [lo, hi]. */
static int get_in(rd *r, const char *field, int lo, int hi, int *v)
{
    if (get_i32(r, field, v) != MD_OK) return MD_ERR;
    if (*v < lo || *v > hi) return bad(r, field, "%d is outside [%d, %d]", *v, lo, hi);
    return MD_OK;
}

/* A count of items of at least item_bytes each: no more than the bytes left hold. */
static int get_count(rd *r, const char *field, size_t item_bytes, int *v)
{
    if (get_i32(r, field, v) != MD_OK) return MD_ERR;
    size_t left = r->n - r->at;
    if (*v < 0) return bad(r, field, "%d is negative", *v);
    if ((size_t)*v > left / item_bytes)
        return bad(r, field, "%d is more than the %zu bytes left hold (%zu bytes each)", *v, left, item_bytes);
    return MD_OK;
}

/* n ints, each in [lo, hi], into a malloc'd array (*out; caller frees; NULL
 * after a failure). */
static int get_ints(rd *r, const char *field, int n, int lo, int hi, int **out)
{
    const void *q = NULL;
    if (take(r, field, (size_t)n * sizeof(int32_t), &q) != MD_OK) return MD_ERR;
    if (!(*out = malloc((size_t)(n > 0 ? n : 1) * sizeof(int)))) return md_error_set(r->err, "out of memory");
    for (int i = 0; i < n; i++) {
        int32_t x;
        memcpy(&x, (const char *)q + (size_t)i * sizeof x, sizeof x);
        (*out)[i] = x;
        if (x < lo || x > hi) {
            char f[64];
            snprintf(f, sizeof f, "%s[%d]", field, i);
            free(*out);
            *out = NULL;
            return bad(r, f, "%d is outside [%d, %d]", (int)x, lo, hi);
        }
    }
    return MD_OK;
}

static int at_end(const rd *r)
{
    if (r->at == r->n) return MD_OK;
    return md_error_set(r->err, "%s: %zu bytes left over after the last field (message of %zu bytes)", r->what,
                        r->n - r->at, r->n);
}

/* ---- headers --------------------------------------------------------------- */
void md_shard_msg_pack_header(int64_t out[8], const md_shard_hdr *h)
{
    int64_t v[8] = {h->op, h->model, h->cache, h->a, h->b, h->c, h->d, (int64_t)h->bytes};
    memcpy(out, v, sizeof v);
}

int md_shard_msg_decode_header(const int64_t in[8], md_shard_hdr *h, md_error *err)
{
    static const char *names[8] = {"op", "model", "cache", "a", "b", "c", "d", "bytes"};
    memset(h, 0, sizeof *h);
    if (in[0] < MD_SHARD_LOAD || in[0] > MD_SHARD_CLOSE)
        return md_error_set(err, "request header: op %lld is not a request (1..%d)", (long long)in[0], MD_SHARD_CLOSE);
    for (int i = 1; i < 7; i++) {
        int64_t lo = i < 3 ? 0 : INT_MIN;
        if (in[i] < lo || in[i] > INT_MAX)
            return md_error_set(err, "request header: %s %lld is outside [%lld, %d]", names[i], (long long)in[i],
                                (long long)lo, INT_MAX);
    }
    h->op = (md_shard_op)in[0];
    int has_payload = h->op == MD_SHARD_LOAD || h->op == MD_SHARD_FORWARD;
    if (in[7] < (has_payload ? 1 : 0) || in[7] > (has_payload ? (int64_t)MD_SHARD_MAX_BYTES : 0))
        return md_error_set(err, "request header: bytes %lld is outside [%d, %lld] for op %d", (long long)in[7],
                            has_payload, has_payload ? (long long)MD_SHARD_MAX_BYTES : 0LL, (int)h->op);
    h->model = (int)in[1], h->cache = (int)in[2];
    h->a = (int)in[3], h->b = (int)in[4], h->c = (int)in[5], h->d = (int)in[6];
    h->bytes = (size_t)in[7];
    return MD_OK;
}

int md_shard_msg_decode_reply_header(const int64_t in[2], int *status, size_t *bytes, md_error *err)
{
    if (in[0] != 0 && in[0] != 1) return md_error_set(err, "reply header: status %lld is not 0 or 1", (long long)in[0]);
    if (in[1] < 0 || in[1] > (int64_t)MD_SHARD_MAX_BYTES)
        return md_error_set(err, "reply header: bytes %lld is outside [0, %lld]", (long long)in[1],
                            (long long)MD_SHARD_MAX_BYTES);
    *status = (int)in[0];
    *bytes = (size_t)in[1];
    return MD_OK;
}

/* ---- load ------------------------------------------------------------------ */
int md_shard_msg_encode_load(md_sbuf *b, const char *dir, const md_model_options *opt)
{
    md_sbuf_add(b, dir, strlen(dir) + 1);
    put_i32(b, (int32_t)opt->backend);
    put_i32(b, (int32_t)opt->cuda_weights);
    put_i32(b, (int32_t)opt->cuda_gemm);
    int64_t cache = (int64_t)opt->fp32_cache_bytes;
    md_sbuf_add(b, &cache, sizeof cache);
    return finish(b);
}

int md_shard_msg_decode_load(const void *p, size_t n, md_shard_load_req *out, md_error *err)
{
    rd r = {.p = p, .n = n, .what = "load request", .err = err};
    memset(out, 0, sizeof *out);
    size_t len = strnlen(p, n);
    if (len == n) return md_error_set(err, "load request: the model folder is not NUL-terminated (%zu bytes)", n);
    if (len == 0 || len >= sizeof ((md_model *)0)->dir)
        return md_error_set(err, "load request: the model folder's length %zu is outside [1, %zu)", len,
                            sizeof ((md_model *)0)->dir);
    const void *q = NULL;
    int backend, weights, gemm;
    take(&r, "dir", len + 1, &q);
    if (get_in(&r, "backend", MD_BACKEND_CPU, MD_BACKEND_CUDA, &backend) != MD_OK ||
        get_in(&r, "cuda_weights", MD_CUDA_WEIGHTS_AUTO, MD_CUDA_WEIGHTS_F32, &weights) != MD_OK ||
        get_in(&r, "cuda_gemm", MD_CUDA_GEMM_AUTO, MD_CUDA_GEMM_BF16, &gemm) != MD_OK ||
        take(&r, "fp32_cache_bytes", sizeof(int64_t), &q) != MD_OK)
        return MD_ERR;
    int64_t cache;
    memcpy(&cache, q, sizeof cache);
    if (cache < 0) return bad(&r, "fp32_cache_bytes", "%lld is negative", (long long)cache);
    if (at_end(&r) != MD_OK) return MD_ERR;
    out->dir = p;
    out->backend = (md_backend_kind)backend;
    out->cuda_weights = (md_cuda_weights)weights;
    out->cuda_gemm = (md_cuda_gemm)gemm;
    out->fp32_cache_bytes = (size_t)cache;
    return MD_OK;
}

void md_shard_msg_load_options(const md_shard_load_req *q, md_model_options *opt)
{
    md_model_options_init(opt);
    opt->backend = q->backend;
    opt->cuda_weights = q->cuda_weights;
    opt->cuda_gemm = q->cuda_gemm;
    opt->fp32_cache_bytes = q->fp32_cache_bytes;
    opt->skip_tokenizer = 1;
}

/* ---- forward request ------------------------------------------------------- */
static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static int hook_on(const md_hook *h, int lo, int hi)
{
    return h->layer == MD_ALL || (h->layer >= lo && h->layer < hi);
}

static void encode_hook(md_sbuf *b, const md_model *m, const md_forward *f, const md_hook *h, int index)
{
    int w = (int)md_hook_cell_width(m, f, h);
    int nv = h->op == MD_HOOK_READ ? 0 : (h->vec_per_seq ? f->n_seq : 1) * w;
    put_i32(b, index);
    put_i32(b, h->point);
    put_i32(b, h->op);
    put_i32(b, h->layer);
    put_i32(b, h->seq);
    put_i32(b, h->pos);
    put_i32(b, h->vec_per_seq != 0);
    put_i32(b, h->head);
    md_sbuf_add(b, &h->coef, sizeof h->coef);
    put_i32(b, nv);
    put_f32s(b, h->vec, (size_t)nv);
    put_i32(b, (h->seq_pos != NULL) | (h->seq_head != NULL) << 1); /* a batched hook's cells */
    for (int s = 0; h->seq_pos && s < f->n_seq; s++) put_i32(b, h->seq_pos[s]);
    for (int s = 0; h->seq_head && s < f->n_seq; s++) put_i32(b, h->seq_head[s]);
}

int md_shard_msg_encode_forward(md_sbuf *b, const md_model *m, const md_forward *f, int lo, int hi, const float *x)
{
    int L = m->cfg.n_layers;
    size_t N = (size_t)f->n_seq * (size_t)(f->t1 - f->t0);
    int end = f->layer_end < hi ? f->layer_end : hi;
    int l0 = f->seq_layer_start ? f->seq_layer_start[0] : f->layer_start;
    put_i32(b, f->n_seq);
    put_i32(b, f->t0);
    put_i32(b, f->t1);
    put_i32(b, clampi(l0, lo, end));
    put_i32(b, end);
    put_i32(b, f->seq_layer_start != NULL);
    for (int s = 0; f->seq_layer_start && s < f->n_seq; s++) put_i32(b, clampi(f->seq_layer_start[s], lo, end));
    put_i32(b, hi == L && f->layer_end == L ? (int)f->logits : MD_LOGITS_NONE);
    put_i32(b, f->logit_ids ? f->n_logit_ids : 0);
    for (int i = 0; f->logit_ids && i < f->n_logit_ids; i++) put_i32(b, f->logit_ids[i]);
    put_i32(b, f->n_pad != NULL);
    for (int s = 0; f->n_pad && s < f->n_seq; s++) put_i32(b, f->n_pad[s]);
    int n_hooks = 0;
    for (int i = 0; i < f->n_hooks; i++) n_hooks += hook_on(&f->hooks[i], lo, hi);
    put_i32(b, n_hooks);
    for (int i = 0; i < f->n_hooks; i++)
        if (hook_on(&f->hooks[i], lo, hi)) encode_hook(b, m, f, &f->hooks[i], i);
    put_f32s(b, x, N * (size_t)m->cfg.d_model);
    return finish(b);
}

void md_shard_msg_free_forward(md_shard_fwd *r)
{
    for (int i = 0; r->hooks && i < r->f.n_hooks; i++) {
        free((int *)r->hooks[i].seq_pos);
        free((int *)r->hooks[i].seq_head);
    }
    free(r->hooks);
    free(r->index);
    free(r->starts);
    free(r->ids);
    free(r->pad);
    memset(r, 0, sizeof *r);
}

/* Floats of n items of count floats each, or SIZE_MAX past the limit. */
static size_t mul_floats(size_t a, size_t b)
{
    return b && a > MD_SHARD_MAX_BYTES / sizeof(float) / b ? SIZE_MAX : a * b;
}

/* n_seq .. layer_end and the per-sequence start layers. */
static int decode_shape(rd *r, const md_model *m, int max_t1, md_shard_fwd *q)
{
    md_forward *f = &q->f;
    int lo = m->layer_lo, hi = m->layer_hi, has_starts;
    if (get_in(r, "n_seq", 1, INT_MAX, &f->n_seq) != MD_OK || get_in(r, "t0", 0, max_t1 - 1, &f->t0) != MD_OK ||
        get_in(r, "t1", f->t0 + 1, max_t1, &f->t1) != MD_OK)
        return MD_ERR;
    size_t rows = (size_t)f->n_seq * (size_t)(f->t1 - f->t0);
    if (mul_floats(rows, (size_t)m->cfg.d_model) > (r->n - r->at) / sizeof(float))
        return md_error_set(r->err, "%s: n_seq %d × positions %d × d_model %d floats of x are more than the %zu "
                            "bytes of the message", r->what, f->n_seq, f->t1 - f->t0, m->cfg.d_model, r->n);
    if (get_i32(r, "layer_start", &f->layer_start) != MD_OK || get_i32(r, "layer_end", &f->layer_end) != MD_OK)
        return MD_ERR;
    if (f->layer_end < lo || f->layer_end > hi)
        return bad(r, "layer_end", "%d is outside this rank's layers: [%d, %d]", f->layer_end, lo, hi);
    if (f->layer_start < lo || f->layer_start > f->layer_end)
        return bad(r, "layer_start", "%d is outside [%d (this rank's first layer), %d (layer_end)]",
                   f->layer_start, lo, f->layer_end);
    if (get_in(r, "has_starts", 0, 1, &has_starts) != MD_OK) return MD_ERR;
    if (!has_starts) return MD_OK;
    if (get_ints(r, "seq_layer_start", f->n_seq, f->layer_start, f->layer_end, &q->starts) != MD_OK) return MD_ERR;
    char fld[48];
    for (int s = 1; s < f->n_seq; s++)
        if (q->starts[s] < q->starts[s - 1]) {
            snprintf(fld, sizeof fld, "seq_layer_start[%d]", s);
            return bad(r, fld, "%d is below the one before (%d): starts must not decrease", q->starts[s],
                       q->starts[s - 1]);
        }
    if (q->starts[0] != f->layer_start)
        return bad(r, "seq_layer_start[0]", "%d differs from layer_start %d", q->starts[0], f->layer_start);
    f->seq_layer_start = q->starts;
    return MD_OK;
}

/* The logits mode and ids, and the left padding. */
static int decode_logits_pad(rd *r, const md_model *m, md_shard_fwd *q)
{
    md_forward *f = &q->f;
    int mode, n_ids, has_pad, V = m->cfg.vocab_size;
    if (get_in(r, "logits", MD_LOGITS_NONE, MD_LOGITS_ALL, &mode) != MD_OK) return MD_ERR;
    f->logits = (md_logits_mode)mode;
    if (mode != MD_LOGITS_NONE && (!m->has_head || f->layer_end != m->cfg.n_layers))
        return bad(r, "logits", "%d asks for logits from a rank without the head or short of the last layer "
                   "(layer_end %d of %d)", mode, f->layer_end, m->cfg.n_layers);
    if (get_count(r, "n_logit_ids", sizeof(int32_t), &n_ids) != MD_OK) return MD_ERR;
    if (n_ids > 0) {
        if (get_ints(r, "logit_ids", n_ids, 0, V - 1, &q->ids) != MD_OK) return MD_ERR;
        f->logit_ids = q->ids;
        f->n_logit_ids = n_ids;
    }
    if (get_in(r, "has_pad", 0, 1, &has_pad) != MD_OK) return MD_ERR;
    if (has_pad) { /* a pad beyond t1 is harmless (the query sees itself); negative ones would index before the keys */
        if (get_ints(r, "n_pad", f->n_seq, 0, f->t1, &q->pad) != MD_OK) return MD_ERR;
        f->n_pad = q->pad;
    }
    return MD_OK;
}

/* One hook (r->item = its place in the message). */
static int decode_hook(rd *r, const md_model *m, md_shard_fwd *q, md_hook *h, int *index, int prev_index)
{
    const md_forward *f = &q->f;
    const md_config *c = &m->cfg;
    int point, op, per_seq, nv, cells;
    const void *vec = NULL;
    if (get_in(r, "index", prev_index + 1, INT_MAX, index) != MD_OK ||
        get_in(r, "point", 0, MD_HOOK_COUNT - 1, &point) != MD_OK ||
        get_in(r, "op", MD_HOOK_READ, MD_HOOK_ABLATE, &op) != MD_OK || get_i32(r, "layer", &h->layer) != MD_OK)
        return MD_ERR;
    h->point = (md_hook_point)point;
    h->op = (md_hook_op)op;
    if (h->layer != MD_ALL && (h->layer < m->layer_lo || h->layer >= m->layer_hi))
        return bad(r, "layer", "%d is outside this rank's layers [%d, %d) (and not -1, all)", h->layer,
                   m->layer_lo, m->layer_hi);
    if (get_in(r, "seq", MD_ALL, f->n_seq - 1, &h->seq) != MD_OK || get_i32(r, "pos", &h->pos) != MD_OK ||
        get_in(r, "vec_per_seq", 0, 1, &per_seq) != MD_OK || get_i32(r, "head", &h->head) != MD_OK ||
        take(r, "coef", sizeof(float), &vec) != MD_OK)
        return MD_ERR;
    if ((point == MD_HOOK_Z || point == MD_HOOK_PATTERN) && (h->head < MD_ALL || h->head >= c->n_heads))
        return bad(r, "head", "%d is outside [-1, %d) (-1: all heads)", h->head, c->n_heads);
    h->vec_per_seq = per_seq;
    memcpy(&h->coef, vec, sizeof h->coef);
    if (get_count(r, "nv", sizeof(float), &nv) != MD_OK || take(r, "vec", (size_t)nv * sizeof(float), &vec) != MD_OK ||
        get_in(r, "cells", 0, 3, &cells) != MD_OK)
        return MD_ERR;
    int *sp = NULL, *sh = NULL;
    if ((cells & 1) && get_ints(r, "seq_pos", f->n_seq, INT_MIN, INT_MAX, &sp) != MD_OK) return MD_ERR;
    h->seq_pos = sp;
    if ((cells & 2) && get_ints(r, "seq_head", f->n_seq, 0, c->n_heads - 1, &sh) != MD_OK) return MD_ERR;
    h->seq_head = sh;
    size_t want = h->op == MD_HOOK_READ ? 0 : mul_floats(per_seq ? (size_t)f->n_seq : 1, md_hook_cell_width(m, f, h));
    if ((size_t)nv != want)
        return bad(r, "nv", "%d floats of vec, the hook's cells need %zu", nv, want);
    h->vec = nv ? vec : NULL;
    return MD_OK;
}

/* The hooks; each read's size counted into the reply. */
static int decode_hooks(rd *r, const md_model *m, md_shard_fwd *q)
{
    int n;
    if (get_count(r, "n_hooks", 11 * sizeof(int32_t), &n) != MD_OK) return MD_ERR; /* 11 fields at least */
    if (!(q->hooks = calloc((size_t)(n ? n : 1), sizeof *q->hooks)) ||
        !(q->index = calloc((size_t)(n ? n : 1), sizeof(int))))
        return md_error_set(r->err, "out of memory");
    r->list = "hooks";
    for (int i = 0; i < n; i++) {
        r->item = i;
        q->f.n_hooks = i + 1; /* what md_shard_msg_free_forward frees */
        if (decode_hook(r, m, q, &q->hooks[i], &q->index[i], i ? q->index[i - 1] : -1) != MD_OK) return MD_ERR;
        if (q->hooks[i].op != MD_HOOK_READ) continue;
        size_t cnt = md_hook_read_count(m, &q->f, &q->hooks[i]), room = MD_SHARD_MAX_BYTES - q->reply_bytes;
        if (room < sizeof(int32_t) || cnt > (room - sizeof(int32_t)) / sizeof(float))
            return bad(r, "", "reads %zu floats: the reply would be more than %zu bytes (one MPI message)", cnt,
                       MD_SHARD_MAX_BYTES);
        q->reply_bytes += sizeof(int32_t) + cnt * sizeof(float);
    }
    r->list = NULL;
    q->f.hooks = q->hooks;
    q->f.n_hooks = n;
    return MD_OK;
}

size_t md_shard_msg_logit_count(const md_model *m, const md_forward *f, int hi)
{
    int L = m->cfg.n_layers;
    if (f->logits == MD_LOGITS_NONE || hi != L || f->layer_end != L) return 0;
    size_t rows = f->logits == MD_LOGITS_ALL ? (size_t)f->n_seq * (size_t)(f->t1 - f->t0) : (size_t)f->n_seq;
    size_t cols = f->logit_ids ? (size_t)f->n_logit_ids : (size_t)m->cfg.vocab_size;
    return mul_floats(rows, cols);
}

int md_shard_msg_decode_forward(const void *p, size_t n, const md_model *m, int max_t1, md_shard_fwd *out,
                                md_error *err)
{
    rd r = {.p = p, .n = n, .what = "forward request", .err = err};
    memset(out, 0, sizeof *out);
    md_forward_init(&out->f, m);
    out->reply_bytes = 2 * sizeof(int32_t);
    if (max_t1 < 1) return md_error_set(err, "forward request: no cache to run it on (capacity %d)", max_t1);
    if (decode_shape(&r, m, max_t1, out) != MD_OK || decode_logits_pad(&r, m, out) != MD_OK ||
        decode_hooks(&r, m, out) != MD_OK)
        goto fail;
    size_t nx = (size_t)out->f.n_seq * (size_t)(out->f.t1 - out->f.t0) * (size_t)m->cfg.d_model;
    const void *x;
    if (take(&r, "x", nx * sizeof(float), &x) != MD_OK || at_end(&r) != MD_OK) goto fail;
    out->f.resid_in = x;
    size_t nl = md_shard_msg_logit_count(m, &out->f, m->layer_hi);
    if (nl == SIZE_MAX || nl * sizeof(float) + nx * sizeof(float) > MD_SHARD_MAX_BYTES - out->reply_bytes) {
        md_error_set(err, "forward request: its reply (%zu logits, %zu floats of x, reads) would be more than %zu "
                     "bytes (one MPI message)", nl, nx, MD_SHARD_MAX_BYTES);
        goto fail;
    }
    out->reply_bytes += (nl + nx) * sizeof(float);
    return MD_OK;
fail:
    md_shard_msg_free_forward(out);
    return MD_ERR;
}

/* ---- forward reply --------------------------------------------------------- */
int md_shard_msg_encode_reply(md_sbuf *b, const md_model *m, const md_shard_fwd *r, const float *x,
                              const float *logits, size_t n_logits)
{
    const md_forward *f = &r->f;
    put_f32s(b, x, (size_t)f->n_seq * (size_t)(f->t1 - f->t0) * (size_t)m->cfg.d_model);
    put_i32(b, (int32_t)n_logits);
    put_f32s(b, logits, n_logits);
    int n_reads = 0;
    for (int i = 0; i < f->n_hooks; i++) n_reads += f->hooks[i].op == MD_HOOK_READ;
    put_i32(b, n_reads);
    for (int i = 0; i < f->n_hooks; i++)
        if (f->hooks[i].op == MD_HOOK_READ) {
            put_i32(b, r->index[i]);
            put_f32s(b, f->hooks[i].out, md_hook_read_count(m, f, &f->hooks[i]));
        }
    return finish(b);
}

void md_shard_msg_free_reply(md_shard_reply *r)
{
    free(r->reads);
    memset(r, 0, sizeof *r);
}

int md_shard_msg_decode_reply(const void *p, size_t n, const md_model *m, const md_forward *f, int lo, int hi,
                              md_shard_reply *out, md_error *err)
{
    rd r = {.p = p, .n = n, .what = "forward reply", .err = err};
    memset(out, 0, sizeof *out);
    size_t nx = (size_t)f->n_seq * (size_t)(f->t1 - f->t0) * (size_t)m->cfg.d_model;
    size_t want = md_shard_msg_logit_count(m, f, hi);
    if (want > INT_MAX) return md_error_set(err, "forward reply: %zu logits asked for are more than a reply holds", want);
    const void *q = NULL;
    int n_logits, n_reads;
    if (take(&r, "x", nx * sizeof(float), &q) != MD_OK) return MD_ERR;
    out->x = q;
    if (get_in(&r, "n_logits", (int)want, (int)want, &n_logits) != MD_OK ||
        take(&r, "logits", want * sizeof(float), &q) != MD_OK)
        return MD_ERR;
    out->logits = want ? q : NULL;
    out->n_logits = want;
    if (get_count(&r, "n_reads", sizeof(int32_t), &n_reads) != MD_OK) return MD_ERR;
    if (!(out->reads = calloc((size_t)(n_reads ? n_reads : 1), sizeof *out->reads)))
        return md_error_set(err, "out of memory");
    r.list = "reads";
    for (int k = 0; k < n_reads; k++) {
        md_shard_read *rk = &out->reads[k];
        r.item = k;
        if (get_in(&r, "index", k ? out->reads[k - 1].hook + 1 : 0, f->n_hooks - 1, &rk->hook) != MD_OK) goto fail;
        const md_hook *h = &f->hooks[rk->hook];
        if (h->op != MD_HOOK_READ || !hook_on(h, lo, hi)) {
            bad(&r, "index", "%d names a hook that is not a read on layers [%d, %d)", rk->hook, lo, hi);
            goto fail;
        }
        if (take(&r, "values", md_hook_read_count(m, f, h) * sizeof(float), &q) != MD_OK) goto fail;
        rk->data = q;
        out->n_reads = k + 1;
    }
    if (at_end(&r) == MD_OK) return MD_OK;
fail:
    md_shard_msg_free_reply(out);
    return MD_ERR;
}

void md_shard_msg_apply_reply(const md_shard_reply *r, const md_model *m, const md_forward *f, int lo, int hi,
                              float *x)
{
    memcpy(x, r->x, (size_t)f->n_seq * (size_t)(f->t1 - f->t0) * (size_t)m->cfg.d_model * sizeof(float));
    if (r->n_logits) memcpy(f->logits_out, r->logits, r->n_logits * sizeof(float));
    int end = hi < f->layer_end ? hi : f->layer_end;
    for (int k = 0; k < r->n_reads; k++) {
        const md_hook *h = &f->hooks[r->reads[k].hook];
        size_t cnt = md_hook_read_count(m, f, h);
        if (h->layer == MD_ALL) { /* this member's layers only: slices [lo, end) */
            size_t per = cnt / (size_t)m->cfg.n_layers;
            if (end > lo)
                memcpy(h->out + (size_t)lo * per, r->reads[k].data + (size_t)lo * per,
                       (size_t)(end - lo) * per * sizeof(float));
        } else {
            memcpy(h->out, r->reads[k].data, cnt * sizeof(float));
        }
    }
}
