/* fuzz_shard_msg.c — the messages of a layer-sharded model's group
 * (src/model/shard_msg.c): what a member decodes from the leader and the
 * leader from a member, without MPI. The first byte picks the test:
 *   0  a request header (8 int64 from the input): refused, or packing what
 *      was decoded gives the same 64 bytes;
 *   1  a reply header;
 *   2  a load request (the rest of the input): refused, or encoding what
 *      was decoded gives the same bytes;
 *   3  a forward request (the rest) served by a member as shard.c serves
 *      it (md_shard_serve_forward: decode, run on the member's layers of a
 *      real tiny model, reply; next bytes: the model, which member, its
 *      cache's capacity; the cache holds the sequences and positions the
 *      request names): refused with an error naming the field or the
 *      forward, or answered with a reply of the size the decoder counted;
 *      and decoded alone: every view lies inside the message, each vec has
 *      its hook's length, and encoding the decoded request and decoding it
 *      again gives the same request;
 *   4  a valid forward built from the input (sequences, positions, start
 *      layers, logits and ids, padding, up to 6 hooks of every point and op,
 *      per-sequence cells, any floats) as the leader sends it to a member:
 *      the member must accept it and decode the call restricted to its
 *      layers (the round trip is the identity on it), serve it (the
 *      forward on its layers succeeds, the leader accepts the reply), and
 *      a reply over patterned outputs must land in the leader's buffers in
 *      the right places (reads of every layer: the member's slices only);
 *   5  a 2-byte length n, then the same forward from the input but its
 *      last n bytes, which are a member's reply: refused, or copied into the
 *      leader's buffers without overrunning them.
 *   6  a member's life without MPI (md_shard_member_handle, what
 *      md_shard_serve does with each request): up to 12 requests of any
 *      op with small or extreme ids and arguments, loads of the tiny
 *      checkpoints (or of a folder that is not there), caches created,
 *      forked and freed in any order (a parent before its forks), forwards
 *      built as in 4: every request is served or refused with a message,
 *      nothing is read after it is freed, and freeing the member leaves no
 *      memory behind.
 * Models: on the first input, two tiny random checkpoints written by
 * make-model's writer (a Llama of 4 layers on 3 ranks, d 8; a Gemma-2 of 3
 * layers on 2 ranks, d 4, 4 heads of 2, a sliding window, soft-caps; 64
 * positions) and each member's layer range of them loaded, as members
 * load them.
 * Seeds: FUZZ_SHARD_SEEDS=DIR writes, for each input of test 4, the encoded
 * request as an input of test 3 and the member's reply after the forward as
 * one of test 5 (regress/shard_msg holds a few). */
#include <math.h>

#include "fuzz_common.h"
#include "fuzz_input.h"
#include "mechdiff/make_model.h"
#include "mechdiff/shard.h"
#include "model/kvcache_impl.h"
#include "model/shard_msg.h"

#define FAIL FUZZ_FAIL

enum { MAX_SEQ = 4, MAX_HOOKS = 6 };

static md_model *members[2][3]; /* [shape][member j >= 1]: loaded once, kept for the process */

static void make_shape(int s)
{
    md_config cfg;
    md_error err = {0};
    const char *like = s == 0 ? "llama3-8b" : "gemma2-9b";
    if (md_make_model_config(&cfg, like, &err) != MD_OK) FAIL("%s", err.msg);
    if (s == 0) cfg.d_model = 8, cfg.d_ff = 12, cfg.n_heads = 2, cfg.n_kv_heads = 1, cfg.head_dim = 4;
    else cfg.d_model = 4, cfg.d_ff = 6, cfg.n_heads = 4, cfg.n_kv_heads = 2, cfg.head_dim = 2;
    cfg.max_position = 64;
    if (cfg.embed_scale > 0.0f) cfg.embed_scale = 2.0f;
    if (cfg.query_pre_attn_scalar > 0.0) cfg.query_pre_attn_scalar = 2.0;
    if (cfg.sliding_window > 0) cfg.sliding_window = 3;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/shape%d", fuzz_dir(), s);
    int layers = s == 0 ? 4 : 3, size = s == 0 ? 3 : 2;
    md_make_model_opts o = {.like = like, .n_layers = layers, .seed = 11, .dtype = MD_DTYPE_F32,
                            .vocab = s == 0 ? 16 : 5, .out_dir = dir, .config = &cfg, .threads = 1};
    if (md_make_model(&o, &err) != MD_OK) FAIL("%s", err.msg);
    for (int j = 1; j < size; j++) {
        md_model_options opt;
        md_model_options_init(&opt);
        opt.skip_tokenizer = 1;
        opt.fp32_cache_bytes = 1 << 20;
        md_shard_layer_range(layers, size, j, &opt.layer_lo, &opt.layer_hi);
        if (md_model_load(&members[s][j], dir, &opt, &err) != MD_OK) FAIL("%s", err.msg);
    }
}

/* Member j of shape s (its model as loaded), and the whole model's shape
 * as the leader sees it (config only: what the encoders read). */
static md_model *member(unsigned s, unsigned j, md_model *whole)
{
    if (!members[0][1]) make_shape(0), make_shape(1);
    if (!members[s][j]) j = 1;
    md_model *m = members[s][j];
    memset(whole, 0, sizeof *whole);
    whole->cfg = m->cfg;
    whole->layer_hi = m->cfg.n_layers;
    whole->has_embed = whole->has_head = 1;
    return m;
}

/* A cache of m for n_seq sequences and max_t1 positions, filled up to len. */
static md_kvcache *cache_for(md_model *m, int n_seq, int max_t1, int len)
{
    md_kvcache *kc = NULL;
    md_error err = {0};
    if (md_kvcache_create(&kc, m, n_seq, max_t1, &err) != MD_OK) FAIL("%s", err.msg);
    kc->len = len;
    return kc;
}

static void check_error(const md_error *e, const char *what)
{
    if (!e->msg[0] || !strstr(e->msg, what)) FAIL("a refusal that does not name the %s: '%s'", what, e->msg);
    if (getenv("FUZZ_SHOW")) fprintf(stderr, "refused: %s\n", e->msg);
}

/* ---- 0..2: headers and the load request ---------------------------------- */
static void test_headers(fz *z, int reply)
{
    int64_t h[8];
    for (int i = 0; i < 8; i++) h[i] = (int64_t)fz_u64(z, 8);
    md_error e = {0};
    if (reply) {
        int status;
        size_t bytes;
        if (md_shard_msg_decode_reply_header(h, &status, &bytes, &e) != MD_OK) return check_error(&e, "reply header");
        if (status != h[0] || (int64_t)bytes != h[1]) FAIL("reply header decoded to other values");
        return;
    }
    md_shard_hdr d;
    if (md_shard_msg_decode_header(h, &d, &e) != MD_OK) return check_error(&e, "request header");
    int64_t again[8];
    md_shard_msg_pack_header(again, &d);
    if (memcmp(h, again, sizeof h)) FAIL("request header: pack(decode(h)) != h");
}

static void test_load(const uint8_t *p, size_t n)
{
    md_shard_load_req q;
    md_error e = {0};
    if (md_shard_msg_decode_load(p, n, &q, &e) != MD_OK) return check_error(&e, "load request");
    md_model_options opt;
    md_shard_msg_load_options(&q, &opt);
    md_sbuf b = {0};
    if (md_shard_msg_encode_load(&b, q.dir, &opt) != MD_OK || b.n != n || memcmp(b.s, p, n))
        FAIL("load request: encode(decode(p)) != p");
    md_sbuf_free(&b);
}

/* ---- 3: a forward request from the input ---------------------------------- */
static void same_request(const md_model *m, const md_shard_fwd *a, const md_shard_fwd *b)
{
    const md_forward *x = &a->f, *y = &b->f;
    size_t N = (size_t)x->n_seq * (size_t)(x->t1 - x->t0), ns = (size_t)x->n_seq;
    if (x->n_seq != y->n_seq || x->t0 != y->t0 || x->t1 != y->t1 || x->layer_start != y->layer_start ||
        x->layer_end != y->layer_end || x->logits != y->logits || x->n_logit_ids != y->n_logit_ids ||
        x->n_hooks != y->n_hooks || !x->seq_layer_start != !y->seq_layer_start || !x->n_pad != !y->n_pad ||
        !x->logit_ids != !y->logit_ids)
        FAIL("forward request: a scalar differs after the round trip");
    if ((x->seq_layer_start && memcmp(x->seq_layer_start, y->seq_layer_start, ns * sizeof(int))) ||
        (x->n_pad && memcmp(x->n_pad, y->n_pad, ns * sizeof(int))) ||
        (x->logit_ids && memcmp(x->logit_ids, y->logit_ids, (size_t)x->n_logit_ids * sizeof(int))) ||
        memcmp(x->resid_in, y->resid_in, N * (size_t)m->cfg.d_model * sizeof(float)))
        FAIL("forward request: an array differs after the round trip");
    for (int i = 0; i < x->n_hooks; i++) {
        const md_hook *g = &x->hooks[i], *h = &y->hooks[i];
        size_t nv = g->vec ? (g->vec_per_seq ? ns : 1) * md_hook_cell_width(m, x, g) : 0;
        if (g->point != h->point || g->op != h->op || g->layer != h->layer || g->seq != h->seq || g->pos != h->pos ||
            g->vec_per_seq != h->vec_per_seq || g->head != h->head || memcmp(&g->coef, &h->coef, sizeof(float)) ||
            !g->vec != !h->vec || (nv && memcmp(g->vec, h->vec, nv * sizeof(float))) || !g->seq_pos != !h->seq_pos ||
            !g->seq_head != !h->seq_head || (g->seq_pos && memcmp(g->seq_pos, h->seq_pos, ns * sizeof(int))) ||
            (g->seq_head && memcmp(g->seq_head, h->seq_head, ns * sizeof(int))))
            FAIL("forward request: hook %d differs after the round trip", i);
    }
}

/* Every view of a decoded request lies in p[0..n) and has its length. */
static void check_views(const md_model *m, const md_shard_fwd *q, const uint8_t *p, size_t n)
{
    const md_forward *f = &q->f;
    size_t N = (size_t)f->n_seq * (size_t)(f->t1 - f->t0);
    const uint8_t *x = (const uint8_t *)f->resid_in;
    if (x < p || x + N * (size_t)m->cfg.d_model * sizeof(float) != p + n) FAIL("x is not the message's tail");
    for (int i = 0; i < f->n_hooks; i++) {
        const md_hook *h = &f->hooks[i];
        const uint8_t *v = (const uint8_t *)h->vec;
        size_t nv = (h->vec_per_seq ? (size_t)f->n_seq : 1) * md_hook_cell_width(m, f, h) * sizeof(float);
        if (h->op == MD_HOOK_READ ? v != NULL : (v < p || v + nv > x)) FAIL("hook %d's vec is outside the message", i);
        if (h->layer != MD_ALL && (h->layer < m->layer_lo || h->layer >= m->layer_hi)) FAIL("hook %d's layer", i);
        if (i && q->index[i] <= q->index[i - 1]) FAIL("hook indexes do not increase");
    }
}

static int peek_i32(const uint8_t *p, size_t n, size_t at, int lo, int hi)
{
    int32_t v = 0;
    if (at + 4 <= n) memcpy(&v, p + at, 4);
    return v < lo ? lo : v > hi ? hi : v;
}

static void test_forward_bytes(fz *z)
{
    md_model whole;
    int max_t1 = 1 + (int)(fz_u8(z) % 40);
    unsigned s = fz_u8(z) % 2, j = 1 + fz_u8(z) % 2;
    md_model *m = member(s, j, &whole);
    size_t n = z->n;
    uint8_t *p = malloc(n ? n : 1); /* a payload as MPI delivers it: malloc'd, so floats are aligned */
    if (!p) abort();
    memcpy(p, z->p, n);
    /* the member serves it, on a cache that holds what the request names (n_seq, t0) */
    md_kvcache *kc = cache_for(m, peek_i32(p, n, 0, 1, 8), max_t1, peek_i32(p, n, 4, 0, max_t1));
    md_sbuf out = {0};
    md_shard_fwd q, q2;
    md_error e = {0};
    int served = md_shard_serve_forward(m, kc, p, n, &out, &e);
    md_kvcache_free(kc);
    if (served != MD_OK) check_error(&e, "forward");
    if (md_shard_msg_decode_forward(p, n, m, max_t1, &q, &e) != MD_OK) {
        if (served == MD_OK) FAIL("a request served is refused alone: %s", e.msg);
        check_error(&e, "forward request");
        md_sbuf_free(&out);
        free(p);
        return;
    }
    if (served == MD_OK && out.n != q.reply_bytes) FAIL("a reply of %zu bytes, %zu counted", out.n, q.reply_bytes);
    md_sbuf_free(&out);
    check_views(m, &q, p, n);
    md_sbuf b = {0};
    if (md_shard_msg_encode_forward(&b, m, &q.f, m->layer_lo, m->layer_hi, q.f.resid_in) != MD_OK)
        FAIL("a decoded request cannot be encoded");
    if (md_shard_msg_decode_forward(b.s, b.n, m, max_t1, &q2, &e) != MD_OK)
        FAIL("a decoded request, encoded again, is refused: %s", e.msg);
    if (b.n != n) FAIL("a decoded request encodes to %zu bytes, not %zu", b.n, n);
    same_request(m, &q, &q2);
    md_shard_msg_free_forward(&q2);
    md_shard_msg_free_forward(&q);
    md_sbuf_free(&b);
    free(p);
}

/* ---- 4, 5: a valid forward as the leader has it ---------------------------- */
typedef struct gen {
    md_forward f;
    md_hook hooks[MAX_HOOKS];
    int starts[MAX_SEQ], ids[4], pad[MAX_SEQ], seq_pos[MAX_HOOKS][MAX_SEQ], seq_head[MAX_HOOKS][MAX_SEQ];
    float *vec[MAX_HOOKS], *out[MAX_HOOKS], *x, *logits;
} gen;

static float fz_float(fz *z)
{
    unsigned k = fz_u8(z);
    if (k < 250) return (float)k / 16.0f - 7.0f;
    uint32_t bits = (uint32_t)fz_u64(z, 4); /* any bits: NaN, inf, subnormal */
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static float *floats(fz *z, size_t n)
{
    float *v = malloc((n ? n : 1) * sizeof(float));
    if (!v) abort();
    for (size_t i = 0; i < n; i++) v[i] = fz_float(z);
    return v;
}

static void gen_hook(fz *z, const md_model *m, gen *g, int i)
{
    md_forward *f = &g->f;
    md_hook *h = &g->hooks[i];
    const md_config *c = &m->cfg;
    int per_head;
    h->point = (md_hook_point)(fz_u8(z) % MD_HOOK_COUNT);
    h->op = (md_hook_op)(fz_u8(z) % 4);
    h->layer = (int)(fz_u8(z) % (unsigned)(c->n_layers + 1)) - 1;
    h->seq = (int)(fz_u8(z) % (unsigned)(f->n_seq + 1)) - 1;
    h->pos = (int)(fz_u8(z) % (unsigned)(f->t1 + 2)) - 1;
    per_head = h->point == MD_HOOK_Z || h->point == MD_HOOK_PATTERN;
    h->head = per_head ? (int)(fz_u8(z) % (unsigned)(c->n_heads + 1)) - 1 : 0;
    h->coef = fz_float(z);
    if ((h->op == MD_HOOK_REPLACE || h->op == MD_HOOK_ADD) && fz_u8(z) % 2) { /* batched */
        h->seq = h->pos = MD_ALL;
        for (int s = 0; s < f->n_seq; s++) g->seq_pos[i][s] = (int)(fz_u8(z) % (unsigned)(f->t1 + 1)) - 1;
        h->seq_pos = g->seq_pos[i];
        if (per_head && fz_u8(z) % 2) {
            for (int s = 0; s < f->n_seq; s++) g->seq_head[i][s] = (int)(fz_u8(z) % (unsigned)c->n_heads);
            h->seq_head = g->seq_head[i];
        }
    }
    if (h->op == MD_HOOK_READ) {
        size_t cnt = md_hook_read_count(m, f, h);
        h->out = g->out[i] = malloc(cnt * sizeof(float));
        for (size_t k = 0; k < cnt; k++) h->out[k] = NAN;
    } else {
        h->vec_per_seq = (int)(fz_u8(z) % 2);
        h->vec = g->vec[i] = floats(z, (h->vec_per_seq ? (size_t)f->n_seq : 1) * md_hook_cell_width(m, f, h));
    }
}

/* A forward of the whole model m (the leader's view) from the input. */
static void gen_forward(fz *z, const md_model *m, int max_t1, gen *g)
{
    memset(g, 0, sizeof *g);
    md_forward *f = &g->f;
    const md_config *c = &m->cfg;
    md_forward_init(f, m);
    f->n_seq = 1 + (int)(fz_u8(z) % MAX_SEQ);
    f->t1 = 1 + (int)(fz_u8(z) % (unsigned)max_t1);
    f->t0 = (int)(fz_u8(z) % (unsigned)f->t1);
    f->layer_end = 1 + (int)(fz_u8(z) % (unsigned)c->n_layers);
    int l0 = (int)(fz_u8(z) % (unsigned)(f->layer_end + 1));
    f->layer_start = l0;
    if (fz_u8(z) % 2) {
        f->layer_start = (int)(fz_u8(z) % (unsigned)(c->n_layers + 1)); /* ignored beside per-sequence starts */
        g->starts[0] = l0;
        for (int s = 1; s < f->n_seq; s++)
            g->starts[s] = g->starts[s - 1] + (int)(fz_u8(z) % (unsigned)(f->layer_end - g->starts[s - 1] + 1));
        f->seq_layer_start = g->starts;
    }
    f->logits = f->layer_end == c->n_layers ? (md_logits_mode)(fz_u8(z) % 3) : MD_LOGITS_NONE;
    if (fz_u8(z) % 2) {
        f->n_logit_ids = 1 + (int)(fz_u8(z) % 4);
        for (int i = 0; i < f->n_logit_ids; i++) g->ids[i] = (int)(fz_u8(z) % (unsigned)c->vocab_size);
        f->logit_ids = g->ids;
    }
    if (fz_u8(z) % 2) {
        for (int s = 0; s < f->n_seq; s++) g->pad[s] = (int)(fz_u8(z) % (unsigned)(f->t1 + 1));
        f->n_pad = g->pad;
    }
    size_t N = (size_t)f->n_seq * (size_t)(f->t1 - f->t0);
    f->n_hooks = (int)(fz_u8(z) % (MAX_HOOKS + 1));
    f->hooks = g->hooks;
    for (int i = 0; i < f->n_hooks; i++) gen_hook(z, m, g, i);
    f->resid_in = g->x = floats(z, N * (size_t)c->d_model);
    size_t nl = md_shard_msg_logit_count(m, f, c->n_layers);
    f->logits_out = g->logits = malloc((nl ? nl : 1) * sizeof(float));
    for (size_t k = 0; k < nl; k++) g->logits[k] = NAN;
}

static void gen_free(gen *g)
{
    for (int i = 0; i < MAX_HOOKS; i++) {
        free(g->vec[i]);
        free(g->out[i]);
    }
    free(g->x);
    free(g->logits);
}

/* Decoded == g's forward restricted to the member's layers [lo, hi). */
static void check_restricted(const md_model *m, const gen *g, const md_shard_fwd *q)
{
    const md_forward *f = &g->f, *d = &q->f;
    int lo = m->layer_lo, hi = m->layer_hi, end = f->layer_end < hi ? f->layer_end : hi;
    int l0 = f->seq_layer_start ? f->seq_layer_start[0] : f->layer_start;
    int l0c = l0 < lo ? lo : l0 > end ? end : l0;
    if (d->n_seq != f->n_seq || d->t0 != f->t0 || d->t1 != f->t1 || d->layer_end != end || d->layer_start != l0c)
        FAIL("the member's request has other sequences, positions or layers");
    for (int s = 0; f->seq_layer_start && s < f->n_seq; s++) {
        int v = f->seq_layer_start[s] < lo ? lo : f->seq_layer_start[s] > end ? end : f->seq_layer_start[s];
        if (d->seq_layer_start[s] != v) FAIL("start layer of sequence %d", s);
    }
    if (d->logits != (hi == m->cfg.n_layers ? f->logits : MD_LOGITS_NONE)) FAIL("logits mode");
    if (d->n_logit_ids != (f->logit_ids ? f->n_logit_ids : 0) ||
        (f->logit_ids && memcmp(d->logit_ids, f->logit_ids, (size_t)f->n_logit_ids * sizeof(int))))
        FAIL("logit ids");
    if (!d->n_pad != !f->n_pad || (f->n_pad && memcmp(d->n_pad, f->n_pad, (size_t)f->n_seq * sizeof(int))))
        FAIL("padding");
    int k = 0;
    for (int i = 0; i < f->n_hooks; i++) {
        const md_hook *h = &f->hooks[i];
        if (h->layer != MD_ALL && (h->layer < lo || h->layer >= hi)) continue;
        if (k >= d->n_hooks || q->index[k] != i) FAIL("hook %d is missing from the member's request", i);
        const md_hook *e = &d->hooks[k++];
        size_t nv = h->vec ? (h->vec_per_seq ? (size_t)f->n_seq : 1) * md_hook_cell_width(m, f, h) : 0;
        if (e->point != h->point || e->op != h->op || e->layer != h->layer || e->seq != h->seq || e->pos != h->pos ||
            e->head != h->head || e->vec_per_seq != h->vec_per_seq || memcmp(&e->coef, &h->coef, sizeof(float)) ||
            (nv && memcmp(e->vec, h->vec, nv * sizeof(float))) || !e->seq_pos != !h->seq_pos ||
            !e->seq_head != !h->seq_head ||
            (h->seq_pos && memcmp(e->seq_pos, h->seq_pos, (size_t)f->n_seq * sizeof(int))) ||
            (h->seq_head && memcmp(e->seq_head, h->seq_head, (size_t)f->n_seq * sizeof(int))))
            FAIL("hook %d differs in the member's request", i);
    }
    if (k != d->n_hooks) FAIL("the member's request has hooks the leader did not send");
}

/* FUZZ_SHARD_SEEDS: head (the test's bytes) then body as one input file. */
static void dump_seed(const char *kind, const uint8_t *head, size_t nh, const void *body, size_t nb)
{
    static int count;
    const char *dir = getenv("FUZZ_SHARD_SEEDS");
    if (!dir) return;
    char path[512];
    snprintf(path, sizeof path, "%s/%s-%d", dir, kind, count++);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(head, 1, nh, f) != nh || (nb && fwrite(body, 1, nb, f) != nb)) abort();
    fclose(f);
}

/* The member's reply over patterned outputs; the leader's copy of it. */
static void check_reply(const md_model *m, gen *g, md_shard_fwd *q, const uint8_t *in, size_t used)
{
    const md_forward *f = &g->f;
    size_t xf = (size_t)f->n_seq * (size_t)(f->t1 - f->t0) * (size_t)m->cfg.d_model;
    size_t nl = md_shard_msg_logit_count(m, &q->f, m->layer_hi);
    if (nl != md_shard_msg_logit_count(m, f, m->layer_hi)) FAIL("member and leader expect different logit counts");
    float *xo = malloc((xf ? xf : 1) * sizeof(float)), *lg = malloc((nl ? nl : 1) * sizeof(float));
    for (size_t k = 0; k < xf; k++) xo[k] = (float)k;
    for (size_t k = 0; k < nl; k++) lg[k] = (float)k + 0.5f;
    for (int i = 0; i < q->f.n_hooks; i++)
        if (q->hooks[i].op == MD_HOOK_READ) {
            size_t cnt = md_hook_read_count(m, &q->f, &q->hooks[i]);
            q->hooks[i].out = malloc(cnt * sizeof(float));
            for (size_t k = 0; k < cnt; k++) q->hooks[i].out[k] = (float)(q->index[i] * 1000 + (int)(k % 997));
        }
    md_sbuf b = {0};
    md_shard_reply r;
    md_error e = {0};
    if (md_shard_msg_encode_reply(&b, m, q, xo, lg, nl) != MD_OK) FAIL("the member cannot encode its reply");
    if (getenv("FUZZ_SHARD_SEEDS")) { /* test 5: the same forward, then this reply */
        uint8_t *head = malloc(used + 3);
        head[0] = 5, head[1] = (uint8_t)(b.n >> 8), head[2] = (uint8_t)b.n;
        memcpy(head + 3, in, used);
        if (b.n < 65536) dump_seed("reply", head, used + 3, b.s, b.n);
        free(head);
    }
    if (md_shard_msg_decode_reply(b.s, b.n, m, f, m->layer_lo, m->layer_hi, &r, &e) != MD_OK)
        FAIL("the leader refuses a member's reply: %s", e.msg);
    float *x = malloc((xf ? xf : 1) * sizeof(float));
    md_shard_msg_apply_reply(&r, m, f, m->layer_lo, m->layer_hi, x);
    if (memcmp(x, xo, xf * sizeof(float)) || (nl && memcmp(f->logits_out, lg, nl * sizeof(float))))
        FAIL("x or the logits differ after the reply");
    int end = m->layer_hi < f->layer_end ? m->layer_hi : f->layer_end;
    for (int i = 0; i < f->n_hooks; i++) {
        const md_hook *h = &f->hooks[i];
        if (h->op != MD_HOOK_READ || (h->layer != MD_ALL && (h->layer < m->layer_lo || h->layer >= m->layer_hi)))
            continue;
        size_t cnt = md_hook_read_count(m, f, h), per = h->layer == MD_ALL ? cnt / (size_t)m->cfg.n_layers : cnt;
        for (size_t k = 0; k < cnt; k++) {
            int l = h->layer == MD_ALL ? (int)(k / per) : m->layer_lo;
            int mine = h->layer != MD_ALL || (l >= m->layer_lo && l < end);
            float want = (float)(i * 1000 + (int)(k % 997));
            if (mine ? h->out[k] != want : !isnan(h->out[k])) FAIL("hook %d's read [%zu] lands wrong", i, k);
        }
    }
    for (int i = 0; i < q->f.n_hooks; i++) free(q->hooks[i].out);
    md_shard_msg_free_reply(&r);
    md_sbuf_free(&b);
    free(x);
    free(xo);
    free(lg);
}

/* The member serves the leader's request p[0..n) of g's forward; the
 * leader takes its reply. */
static void check_served(md_model *m, const md_model *whole, gen *g, const void *p, size_t n, int max_t1)
{
    const md_forward *f = &g->f;
    md_kvcache *kc = cache_for(m, f->n_seq, max_t1, f->t0);
    md_sbuf out = {0};
    md_shard_reply r;
    md_error e = {0};
    if (md_shard_serve_forward(m, kc, p, n, &out, &e) != MD_OK)
        FAIL("member [%d, %d) cannot serve a valid forward: %s", m->layer_lo, m->layer_hi, e.msg);
    md_kvcache_free(kc);
    if (md_shard_msg_decode_reply(out.s, out.n, whole, f, m->layer_lo, m->layer_hi, &r, &e) != MD_OK)
        FAIL("the leader refuses the reply a member served: %s", e.msg);
    float *x = malloc(((size_t)f->n_seq * (size_t)(f->t1 - f->t0) * (size_t)m->cfg.d_model + 1) * sizeof(float));
    md_shard_msg_apply_reply(&r, whole, f, m->layer_lo, m->layer_hi, x);
    md_shard_msg_free_reply(&r);
    md_sbuf_free(&out);
    free(x);
}

/* Test 4 (reply == NULL) or 5: z holds the forward's choices. */
static void test_valid_forward(fz *z, const uint8_t *reply, size_t n_reply)
{
    md_model whole;
    const uint8_t *in = z->p;
    int max_t1 = 1 + (int)(fz_u8(z) % 24);
    unsigned s = fz_u8(z) % 2, j = 1 + fz_u8(z) % 2;
    md_model *m = member(s, j, &whole);
    md_model mm = *m; /* read only */
    gen g;
    gen_forward(z, &whole, max_t1, &g);
    const md_forward *f = &g.f;
    int l0 = f->seq_layer_start ? f->seq_layer_start[0] : f->layer_start, L = whole.cfg.n_layers;
    int sent = mm.layer_lo < f->layer_end && (l0 < mm.layer_hi || (f->logits && mm.layer_hi == L)); /* shard.c */
    md_sbuf b = {0};
    md_shard_fwd q;
    md_error e = {0};
    if (sent && md_shard_msg_encode_forward(&b, &whole, f, mm.layer_lo, mm.layer_hi, g.x) != MD_OK)
        FAIL("the leader cannot encode a valid forward");
    if (sent && md_shard_msg_decode_forward(b.s, b.n, &mm, max_t1, &q, &e) != MD_OK)
        FAIL("member [%d, %d) refuses a valid forward: %s", mm.layer_lo, mm.layer_hi, e.msg);
    if (sent && !reply) {
        uint8_t head[4] = {3, (uint8_t)(max_t1 - 1), (uint8_t)s, (uint8_t)(j - 1)}; /* test 3's choices */
        dump_seed("request", head, sizeof head, b.s, b.n);
        check_restricted(&mm, &g, &q);
        check_served(m, &whole, &g, b.s, b.n, max_t1);
        check_reply(&mm, &g, &q, in, (size_t)(z->p - in));
    } else if (sent) {
        uint8_t *p = malloc(n_reply ? n_reply : 1); /* malloc'd as MPI's payloads */
        memcpy(p, reply, n_reply);
        md_shard_reply r;
        float *x = malloc(((size_t)f->n_seq * (size_t)(f->t1 - f->t0) * (size_t)whole.cfg.d_model + 1) * sizeof(float));
        if (md_shard_msg_decode_reply(p, n_reply, &whole, f, mm.layer_lo, mm.layer_hi, &r, &e) == MD_OK) {
            md_shard_msg_apply_reply(&r, &whole, f, mm.layer_lo, mm.layer_hi, x);
            md_shard_msg_free_reply(&r);
        } else {
            check_error(&e, "forward reply");
        }
        free(x);
        free(p);
    }
    if (sent) md_shard_msg_free_forward(&q);
    md_sbuf_free(&b);
    gen_free(&g);
}

/* ---- 6: a member's life ------------------------------------------------------ */
static int small_arg(fz *z)
{
    static const int edge[8] = {-1, 0, 24, 25, 1 << 20, 2147483647, -2147483647 - 1, 100000};
    unsigned b = fz_u8(z);
    return b < 224 ? (int)(b % 8) : edge[b % 8];
}

/* The payload of request op: a load, a forward for the member's layers, or none. */
static void payload(fz *z, md_shard_op op, unsigned s, int rank, md_sbuf *pay)
{
    md_model whole;
    md_model *m = member(s, 1, &whole);
    if (op == MD_SHARD_LOAD) {
        char dir[512];
        unsigned b = fz_u8(z);
        snprintf(dir, sizeof dir, "%s/%s%u", fuzz_dir(), b % 4 ? "shape" : "nowhere", b / 4 % 2);
        md_model_options opt;
        md_model_options_init(&opt);
        opt.fp32_cache_bytes = 1 << 20;
        md_shard_msg_encode_load(pay, dir, &opt);
    } else if (op == MD_SHARD_FORWARD) {
        int lo, hi, size = s == 0 ? 3 : 2;
        md_shard_layer_range(m->cfg.n_layers, size, rank, &lo, &hi);
        gen g;
        gen_forward(z, &whole, 1 + (int)(fz_u8(z) % 24), &g);
        md_shard_msg_encode_forward(pay, &whole, &g.f, lo, hi, g.x);
        gen_free(&g);
    }
}

static void test_member(fz *z)
{
    unsigned s = fz_u8(z) % 2;
    int size = s == 0 ? 3 : 2, rank = 1 + (int)(fz_u8(z) % (unsigned)(size - 1));
    md_shard_member *mb = NULL;
    if (md_shard_member_new(&mb, rank, size) != MD_OK) FAIL("out of memory");
    for (int k = 0; k < 12 && z->n; k++) {
        md_shard_op op = (md_shard_op)(1 + fz_u8(z) % 8);
        int64_t raw[8] = {op};
        raw[1] = fz_u8(z) % 3; /* model, cache */
        raw[2] = fz_u8(z) % 4;
        for (int i = 3; i < 7; i++) raw[i] = small_arg(z);
        /* a cache of 10^6 .. 10^17 rows is refused by malloc: outside what a harness may ask (libFuzzer's
         * malloc limit); below, it is made; above, the size overflows and the member refuses it */
        double rows = op == MD_SHARD_CACHE_CREATE ? (double)raw[3] * (double)raw[4] : (double)raw[5] * (double)raw[6];
        if ((op == MD_SHARD_CACHE_CREATE || op == MD_SHARD_CACHE_FORK) && rows > 1e6 && rows < 1e18) continue;
        md_sbuf pay = {0}, out = {0};
        md_shard_hdr h;
        md_error e = {0};
        payload(z, op, s, rank, &pay);
        raw[7] = (int64_t)pay.n;
        if (md_shard_msg_decode_header(raw, &h, &e) == MD_OK &&
            md_shard_member_handle(mb, &h, pay.s ? pay.s : "", &out, &e) != MD_OK && !e.msg[0])
            FAIL("op %d refused without a message", (int)op);
        if (getenv("FUZZ_SHOW")) fprintf(stderr, "%s: op %d: %s\n", e.msg[0] ? "refused" : "served", (int)op, e.msg);
        md_sbuf_free(&pay);
        md_sbuf_free(&out);
        if (op == MD_SHARD_CLOSE) break;
    }
    md_shard_member_free(mb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz z = {data, size};
    switch (fz_u8(&z) % 7) {
    case 0: test_headers(&z, 0); break;
    case 1: test_headers(&z, 1); break;
    case 2: test_load(z.p, z.n); break;
    case 3: test_forward_bytes(&z); break;
    case 4: test_valid_forward(&z, NULL, 0); break;
    case 6: test_member(&z); break;
    default: {
        size_t n_reply = (size_t)fz_u64(&z, 2);
        if (n_reply > z.n) n_reply = z.n;
        fz head = {z.p, z.n - n_reply};
        test_valid_forward(&head, z.p + head.n, n_reply);
    }
    }
    return 0;
}
