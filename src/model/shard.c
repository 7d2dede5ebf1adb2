/* shard.c — a model split by layer ranges over a group of ranks (see
 * include/mechdiff/shard.h). The leader drives; members answer. The
 * messages, their wire format and the checks of every field a member or
 * the leader receives: shard_msg.c. Requests without a reply: MODEL_FREE,
 * CACHE_FREE, CACHE_TRUNC, CLOSE (their order relative to later requests is
 * kept by MPI's ordering guarantee). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/device.h"
#include "mechdiff/sbuf.h"
#include "mechdiff/shard.h"
#include "model/exec_impl.h"
#include "model/kvcache_impl.h"
#include "model/shard_msg.h"

/* The leader's side of one sharded model (m->exec_ctx; owned by the model). */
typedef struct md_shard_link {
    md_shard_group *group;  /* not owned */
    int model_id;           /* the members' name for this model */
    int size;               /* ranks in the group */
    int *lo, *hi;           /* [size] layer range of each member (owned) */
} md_shard_link;

static const md_model_exec SHARD_EXEC;

struct md_shard_group {
    MPI_Comm comm;          /* not owned; the group's alone */
    int size;
    int next_model_id;
    int next_cache_id;
};

void md_shard_layer_range(int n_layers, int size, int rank, int *lo, int *hi)
{
    int base = n_layers / size, extra = n_layers % size;
    *lo = rank * base + (rank < extra ? rank : extra);
    *hi = *lo + base + (rank < extra ? 1 : 0);
}

/* ---- sending and receiving ---------------------------------------------- */
static int send_req(MPI_Comm comm, int dest, md_shard_op op, int model, int cache, int a, int b, int c, int d,
                    const md_sbuf *payload)
{
    md_shard_hdr hd = {.op = op, .model = model, .cache = cache, .a = a, .b = b, .c = c, .d = d,
                       .bytes = payload ? payload->n : 0};
    int64_t h[8];
    md_shard_msg_pack_header(h, &hd);
    if (MPI_Send(h, 8, MPI_INT64_T, dest, MD_SHARD_TAG_REQ, comm) != MPI_SUCCESS) return MD_ERR;
    if (hd.bytes && MPI_Send(payload->s, (int)hd.bytes, MPI_BYTE, dest, MD_SHARD_TAG_DATA, comm) != MPI_SUCCESS)
        return MD_ERR;
    return MD_OK;
}

static int send_reply(MPI_Comm comm, int status, const void *payload, size_t bytes)
{
    int64_t h[2] = {status, (int64_t)bytes};
    if (MPI_Send(h, 2, MPI_INT64_T, 0, MD_SHARD_TAG_REP, comm) != MPI_SUCCESS) return MD_ERR;
    if (bytes && MPI_Send(payload, (int)bytes, MPI_BYTE, 0, MD_SHARD_TAG_DATA, comm) != MPI_SUCCESS) return MD_ERR;
    return MD_OK;
}

static int send_error(MPI_Comm comm, const md_error *e)
{
    return send_reply(comm, 1, e->msg, strlen(e->msg) + 1);
}

/* The payload of `bytes` a header from src announced: the message must be
 * exactly that long (probed before anything is allocated). *out is
 * malloc'd with a NUL after the bytes (caller frees). */
static int recv_payload(MPI_Comm comm, int src, size_t bytes, char **out, md_error *err)
{
    MPI_Status st;
    int got = 0;
    *out = NULL;
    if (bytes && (MPI_Probe(src, MD_SHARD_TAG_DATA, comm, &st) != MPI_SUCCESS ||
                  MPI_Get_count(&st, MPI_BYTE, &got) != MPI_SUCCESS || (size_t)got != bytes))
        return md_error_set(err, "a payload of %d bytes where its header announced %zu", got, bytes);
    if (!(*out = malloc(bytes + 1))) return md_error_set(err, "out of memory for a message of %zu bytes", bytes);
    if (bytes && MPI_Recv(*out, (int)bytes, MPI_BYTE, src, MD_SHARD_TAG_DATA, comm, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
        free(*out);
        *out = NULL;
        return md_error_set(err, "truncated payload");
    }
    (*out)[bytes] = '\0';
    return MD_OK;
}

/* Receives a member's reply; *payload is malloc'd (caller frees). On a
 * member's error, err names the member. */
static int recv_reply(MPI_Comm comm, int src, char **payload, size_t *bytes, md_error *err)
{
    int64_t h[2];
    int status;
    char *p = NULL;
    *payload = NULL;
    *bytes = 0;
    if (MPI_Recv(h, 2, MPI_INT64_T, src, MD_SHARD_TAG_REP, comm, MPI_STATUS_IGNORE) != MPI_SUCCESS)
        return md_error_set(err, "shard member %d did not answer", src);
    if (md_shard_msg_decode_reply_header(h, &status, bytes, err) != MD_OK ||
        recv_payload(comm, src, *bytes, &p, err) != MD_OK)
        return md_error_prefix(err, "shard member %d", src);
    if (status != 0) {
        md_error_set(err, "shard member %d: %s", src, p);
        free(p);
        return MD_ERR;
    }
    *payload = p;
    return MD_OK;
}

/* ---- leader ------------------------------------------------------------- */
int md_shard_group_create(md_shard_group **out, MPI_Comm comm, md_error *err)
{
    *out = NULL;
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    if (rank != 0) return md_error_set(err, "shard: the group's leader must be its rank 0 (this is rank %d)", rank);
    md_shard_group *g = calloc(1, sizeof *g);
    if (!g) return md_error_set(err, "out of memory");
    g->comm = comm;
    MPI_Comm_size(g->comm, &g->size);
    g->next_cache_id = 1;
    *out = g;
    return MD_OK;
}

void md_shard_group_close(md_shard_group *g)
{
    if (!g) return;
    for (int j = 1; j < g->size; j++) send_req(g->comm, j, MD_SHARD_CLOSE, 0, 0, 0, 0, 0, 0, NULL);
    free(g);
}

/* Every member's answer to the request just sent; err: the first error. */
static int collect_replies(md_shard_group *g, md_error *err)
{
    int rc = MD_OK;
    for (int j = 1; j < g->size; j++) {
        char *p = NULL;
        size_t n = 0;
        md_error e2 = {0};
        if (recv_reply(g->comm, j, &p, &n, &e2) != MD_OK && rc == MD_OK) {
            *err = e2;
            rc = MD_ERR;
        }
        free(p);
    }
    return rc;
}

static md_shard_link *link_new(md_shard_group *g, int n_layers)
{
    md_shard_link *link = calloc(1, sizeof *link);
    if (!link || !(link->lo = calloc((size_t)g->size, sizeof(int))) || !(link->hi = calloc((size_t)g->size, sizeof(int)))) {
        if (link) free(link->lo);
        free(link);
        return NULL;
    }
    link->group = g;
    link->size = g->size;
    link->model_id = g->next_model_id++;
    for (int j = 0; j < g->size; j++) md_shard_layer_range(n_layers, g->size, j, &link->lo[j], &link->hi[j]);
    return link;
}

int md_shard_load(md_shard_group *g, md_model **out, const char *dir, const md_model_options *opt_in,
                  md_error *err)
{
    *out = NULL;
    md_model_options opt;
    if (opt_in) opt = *opt_in;
    else md_model_options_init(&opt);
    md_config cfg;
    if (md_hf_config_load_dir(&cfg, dir, err) != MD_OK) return MD_ERR;
    if (g->size > cfg.n_layers)
        return md_error_set(err, "shard: %d ranks cannot split the %d layers of %s", g->size, cfg.n_layers, dir);
    md_shard_link *link = link_new(g, cfg.n_layers);
    if (!link) return md_error_set(err, "out of memory");
    /* members first (they load in parallel with the leader) */
    md_sbuf b = {0}; /* the request: freed here */
    int rc = md_shard_msg_encode_load(&b, dir, &opt) != MD_OK ? md_error_set(err, "out of memory") : MD_OK;
    for (int j = 1; j < g->size && rc == MD_OK; j++)
        if (send_req(g->comm, j, MD_SHARD_LOAD, link->model_id, 0, 0, 0, 0, 0, &b) != MD_OK)
            rc = md_error_set(err, "shard: cannot reach member %d", j);
    md_sbuf_free(&b);
    md_model *m = NULL;
    md_model_options lopt = opt;
    lopt.layer_lo = link->lo[0];
    lopt.layer_hi = link->hi[0];
    md_error lerr = {0}, merr = {0};
    int lrc = rc == MD_OK ? md_model_load(&m, dir, &lopt, &lerr) : MD_ERR;
    if (rc == MD_OK && collect_replies(g, &merr) != MD_OK && lrc == MD_OK) { /* every answer, the first error */
        lrc = MD_ERR;
        lerr = merr;
    }
    if (rc == MD_OK && lrc != MD_OK) {
        rc = MD_ERR;
        *err = lerr;
    }
    if (m) {
        m->exec = &SHARD_EXEC; /* md_model_free tells the members */
        m->exec_ctx = link;
    } else {
        SHARD_EXEC.free(link);
    }
    if (rc != MD_OK) {
        md_model_free(m);
        return MD_ERR;
    }
    *out = m;
    return MD_OK;
}

static void shard_link_free(void *ctx)
{
    md_shard_link *link = ctx;
    if (!link) return;
    for (int j = 1; j < link->size; j++)
        send_req(link->group->comm, j, MD_SHARD_MODEL_FREE, link->model_id, 0, 0, 0, 0, 0, NULL);
    free(link->lo);
    free(link->hi);
    free(link);
}

static int cache_op_all(md_shard_link *link, md_shard_op op, int cache, int a, int b, int c, int d, md_error *err)
{
    md_shard_group *g = link->group;
    for (int j = 1; j < g->size; j++)
        if (send_req(g->comm, j, op, link->model_id, cache, a, b, c, d, NULL) != MD_OK)
            return md_error_set(err, "shard: cannot reach member %d", j);
    return collect_replies(g, err);
}

/* On failure the caller drops c->exec: the members that made a twin free it
 * with the group. */
static int shard_cache_create(void *ctx, struct md_kvcache *c, md_error *err)
{
    md_shard_link *link = ctx;
    c->exec_id = link->group->next_cache_id++;
    return cache_op_all(link, MD_SHARD_CACHE_CREATE, c->exec_id, c->n_seq, c->max_len, 0, 0, err);
}

static int shard_cache_fork(void *ctx, struct md_kvcache *c, const struct md_kvcache *parent, md_error *err)
{
    md_shard_link *link = ctx;
    c->exec_id = link->group->next_cache_id++;
    return cache_op_all(link, MD_SHARD_CACHE_FORK, c->exec_id, parent->exec_id, c->prefix_len, c->n_seq, c->max_len,
                        err);
}

static void shard_cache_free(void *ctx, struct md_kvcache *c)
{
    md_shard_link *link = ctx;
    md_shard_group *g = link->group;
    for (int j = 1; j < g->size; j++)
        send_req(g->comm, j, MD_SHARD_CACHE_FREE, link->model_id, c->exec_id, 0, 0, 0, 0, NULL);
}

static void shard_cache_truncate(void *ctx, struct md_kvcache *c, int len)
{
    md_shard_link *link = ctx;
    md_shard_group *g = link->group;
    for (int j = 1; j < g->size; j++)
        send_req(g->comm, j, MD_SHARD_CACHE_TRUNC, link->model_id, c->exec_id, len, 0, 0, 0, NULL);
}

static int first_layer(const md_forward *f)
{
    return f->seq_layer_start ? f->seq_layer_start[0] : f->layer_start;
}

/* Step 1: the leader's own layers, x = their output (or resid_in when the
 * run starts above them). The leader computes the logits only when it
 * holds every layer. */
static int leader_layers(md_model *m, const md_shard_link *link, const md_forward *f, float *x, md_error *err)
{
    size_t xf = (size_t)f->n_seq * (size_t)(f->t1 - f->t0) * (size_t)m->cfg.d_model;
    int hi = link->hi[0], whole = hi == m->cfg.n_layers;
    if (first_layer(f) >= hi && !(whole && f->logits != MD_LOGITS_NONE)) {
        memcpy(x, f->resid_in, xf * sizeof(float));
        return MD_OK;
    }
    md_forward fl = *f;
    fl.layer_end = f->layer_end < hi ? f->layer_end : hi;
    if (!whole) {
        fl.logits = MD_LOGITS_NONE;
        fl.logit_ids = NULL;
    }
    fl.resid_out = x;
    int *starts = NULL;
    if (f->seq_layer_start) {
        if (!(starts = malloc((size_t)f->n_seq * sizeof(int)))) return md_error_set(err, "out of memory");
        for (int s = 0; s < f->n_seq; s++)
            starts[s] = f->seq_layer_start[s] < fl.layer_end ? f->seq_layer_start[s] : fl.layer_end;
        fl.seq_layer_start = starts;
    }
    int rc = md_forward_local(m, &fl, err);
    free(starts);
    return rc;
}

/* Step 2 for member j: x through its layers; x back with its reads and,
 * from the last member, the logits (checked against the request first). */
static int member_layers(md_model *m, const md_shard_link *link, int j, const md_forward *f, float *x, md_error *err)
{
    md_shard_group *g = link->group;
    md_sbuf b = {0}; /* the request: freed here */
    int rc = MD_OK;
    if (md_shard_msg_encode_forward(&b, m, f, link->lo[j], link->hi[j], x) != MD_OK)
        rc = md_error_set(err, "shard: the forward for member %d is out of memory or more than %zu bytes", j,
                          MD_SHARD_MAX_BYTES);
    else if (send_req(g->comm, j, MD_SHARD_FORWARD, link->model_id, f->cache->exec_id, 0, 0, 0, 0, &b) != MD_OK)
        rc = md_error_set(err, "shard: cannot send a forward to member %d", j);
    md_sbuf_free(&b);
    char *p = NULL;
    size_t n = 0;
    if (rc != MD_OK || recv_reply(g->comm, j, &p, &n, err) != MD_OK) return MD_ERR;
    md_shard_reply r;
    rc = md_shard_msg_decode_reply(p, n, m, f, link->lo[j], link->hi[j], &r, err);
    if (rc == MD_OK) md_shard_msg_apply_reply(&r, m, f, link->lo[j], link->hi[j], x);
    else md_error_prefix(err, "shard member %d", j);
    md_shard_msg_free_reply(&r);
    free(p);
    return rc;
}

static int shard_forward(void *ctx, md_model *m, const md_forward *f, md_error *err)
{
    md_shard_link *link = ctx;
    int L = m->cfg.n_layers, l0 = first_layer(f), head = f->logits != MD_LOGITS_NONE;
    size_t xf = (size_t)f->n_seq * (size_t)(f->t1 - f->t0) * (size_t)m->cfg.d_model;
    float *x = malloc(xf * sizeof(float));
    if (!x) return md_error_set(err, "out of memory");
    int rc = leader_layers(m, link, f, x, err);
    /* each member in layer order; the last one also when only the head is left to run */
    for (int j = 1; rc == MD_OK && j < link->size && link->lo[j] < f->layer_end; j++)
        if (l0 < link->hi[j] || (head && link->hi[j] == L)) rc = member_layers(m, link, j, f, x, err);
    if (rc == MD_OK && f->resid_out) memcpy(f->resid_out, x, xf * sizeof(float));
    if (rc == MD_OK && f->t1 > f->cache->len) f->cache->len = f->t1;
    free(x);
    return rc;
}

static const md_model_exec SHARD_EXEC = {
    .name = "shard",
    .forward = shard_forward,
    .cache_create = shard_cache_create,
    .cache_fork = shard_cache_fork,
    .cache_free = shard_cache_free,
    .cache_truncate = shard_cache_truncate,
    .free = shard_link_free,
};

/* ---- member ------------------------------------------------------------- */
/* What a member holds, by the leader's ids: a short list (a few live models
 * and caches), searched in order, so no id sizes an allocation. */
typedef struct held {
    int id;
    int model;             /* a cache's model id (-1 for a model) */
    void *obj;             /* md_model * or md_kvcache * (owned) */
} held;

typedef struct table {
    held *v;               /* owned */
    int n, cap;
} table;

struct md_shard_member {
    int rank, size;        /* in the group */
    table models, caches;
};
typedef md_shard_member member;

static held *table_find(table *t, int id)
{
    for (int i = 0; i < t->n; i++)
        if (t->v[i].id == id) return &t->v[i];
    return NULL;
}

static int table_add(table *t, int id, int model, void *obj)
{
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 8;
        held *v = realloc(t->v, (size_t)cap * sizeof *v);
        if (!v) return MD_ERR;
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = (held){.id = id, .model = model, .obj = obj};
    return MD_OK;
}

/* Frees cache `id` (nothing when there is none) and the forks of it (the
 * leader frees those first; a fork must not outlive its parent). */
static void cache_drop(member *s, int id)
{
    held *e = table_find(&s->caches, id);
    if (!e) return;
    md_kvcache *c = e->obj;
    *e = s->caches.v[--s->caches.n];
    for (int i = s->caches.n - 1; i >= 0; i--)
        if (i < s->caches.n && ((md_kvcache *)s->caches.v[i].obj)->parent == c) cache_drop(s, s->caches.v[i].id);
    md_kvcache_free(c);
}

/* Frees model `id` and the caches the leader leaked on it. */
static void model_drop(member *s, int id)
{
    held *e = table_find(&s->models, id);
    if (!e) return;
    for (int i = s->caches.n - 1; i >= 0; i--)
        if (s->caches.v[i].model == id) cache_drop(s, s->caches.v[i].id);
    md_model_free(e->obj);
    *e = s->models.v[--s->models.n];
}

static int serve_load(member *s, const md_shard_hdr *h, const char *p, md_error *err)
{
    md_shard_load_req q;
    if (md_shard_msg_decode_load(p, h->bytes, &q, err) != MD_OK) return MD_ERR;
    md_model_options opt;
    md_shard_msg_load_options(&q, &opt);
    /* Each member holds its layers on its own node-local GPU, not the leader's. */
    if (opt.backend == MD_BACKEND_CUDA && md_device_pick(&opt.device, err) != MD_OK) return MD_ERR;
    md_config cfg;
    if (md_hf_config_load_dir(&cfg, q.dir, err) != MD_OK) return MD_ERR;
    if (s->size > cfg.n_layers)
        return md_error_set(err, "%d ranks cannot split the %d layers of %s", s->size, cfg.n_layers, q.dir);
    md_shard_layer_range(cfg.n_layers, s->size, s->rank, &opt.layer_lo, &opt.layer_hi);
    model_drop(s, h->model);
    md_model *m = NULL;
    if (md_model_load(&m, q.dir, &opt, err) != MD_OK) return MD_ERR;
    if (table_add(&s->models, h->model, -1, m) != MD_OK) {
        md_model_free(m);
        return md_error_set(err, "out of memory");
    }
    return MD_OK;
}

/* Creates (or forks) cache h->cache of model h->model as the leader asked. */
static int serve_cache(member *s, const md_shard_hdr *h, md_error *err)
{
    held *hm = table_find(&s->models, h->model);
    if (!hm) return md_error_set(err, "no model %d", h->model);
    md_model *m = hm->obj;
    int fork = h->op == MD_SHARD_CACHE_FORK, n_seq = fork ? h->c : h->a, len = fork ? h->d : h->b;
    size_t floats = 0; /* what one of k, v will take: refused when it wraps around */
    if (n_seq > 0 && len > 0 &&
        (__builtin_mul_overflow((size_t)(m->layer_hi - m->layer_lo) * (size_t)n_seq, (size_t)len, &floats) ||
         __builtin_mul_overflow(floats, (size_t)(m->cfg.n_kv_heads * m->cfg.head_dim) * 2 * sizeof(float), &floats)))
        return md_error_set(err, "cache %d: %d sequences × %d positions are beyond any memory", h->cache, n_seq, len);
    cache_drop(s, h->cache); /* ids are not reused: a leftover goes */
    held *parent = fork ? table_find(&s->caches, h->a) : NULL;
    if (fork && (!parent || parent->model != h->model))
        return md_error_set(err, "no parent cache %d of model %d", h->a, h->model);
    md_kvcache *c = NULL;
    int r = fork ? md_kvcache_fork(&c, parent->obj, h->b, n_seq, len, err)
                 : md_kvcache_create(&c, m, n_seq, len, err);
    if (r != MD_OK) return MD_ERR;
    if (table_add(&s->caches, h->cache, h->model, c) != MD_OK) {
        md_kvcache_free(c);
        return md_error_set(err, "out of memory");
    }
    return MD_OK;
}

int md_shard_serve_forward(md_model *m, md_kvcache *kc, const void *p, size_t n, md_sbuf *out, md_error *err)
{
    md_shard_fwd q;
    if (md_shard_msg_decode_forward(p, n, m, kc->prefix_len + kc->max_len, &q, err) != MD_OK) return MD_ERR;
    size_t nl = md_shard_msg_logit_count(m, &q.f, m->layer_hi);
    size_t xf = (size_t)q.f.n_seq * (size_t)(q.f.t1 - q.f.t0) * (size_t)m->cfg.d_model;
    float *logits = nl ? malloc(nl * sizeof(float)) : NULL, *xout = malloc(xf * sizeof(float));
    int rc = (nl && !logits) || !xout ? md_error_set(err, "out of memory") : MD_OK;
    for (int i = 0; rc == MD_OK && i < q.f.n_hooks; i++)
        if (q.hooks[i].op == MD_HOOK_READ &&
            !(q.hooks[i].out = calloc(md_hook_read_count(m, &q.f, &q.hooks[i]), sizeof(float))))
            rc = md_error_set(err, "out of memory");
    q.f.cache = kc;
    q.f.logits_out = logits;
    q.f.resid_out = xout;
    if (rc == MD_OK) rc = md_forward_local(m, &q.f, err);
    if (rc == MD_OK && md_shard_msg_encode_reply(out, m, &q, xout, logits, nl) != MD_OK)
        rc = md_error_set(err, "out of memory for the reply");
    for (int i = 0; i < q.f.n_hooks; i++) free(q.hooks[i].out);
    free(logits);
    free(xout);
    md_shard_msg_free_forward(&q);
    return rc;
}

/* A forward request for model h->model on cache h->cache. */
static int serve_forward(member *s, const md_shard_hdr *h, const char *p, md_sbuf *out, md_error *err)
{
    held *hm = table_find(&s->models, h->model), *hc = table_find(&s->caches, h->cache);
    if (!hm || !hc || hc->model != h->model)
        return md_error_set(err, "no model %d or no cache %d of it", h->model, h->cache);
    return md_shard_serve_forward(hm->obj, hc->obj, p, h->bytes, out, err);
}

int md_shard_member_new(md_shard_member **out, int rank, int size)
{
    *out = calloc(1, sizeof **out);
    if (!*out) return MD_ERR;
    (*out)->rank = rank;
    (*out)->size = size;
    return MD_OK;
}

void md_shard_member_free(md_shard_member *s)
{
    if (!s) return;
    while (s->models.n > 0) model_drop(s, s->models.v[0].id); /* and their caches */
    while (s->caches.n > 0) cache_drop(s, s->caches.v[0].id);
    free(s->models.v);
    free(s->caches.v);
    free(s);
}

int md_shard_member_handle(md_shard_member *s, const md_shard_hdr *h, const char *p, md_sbuf *out, md_error *err)
{
    switch (h->op) {
    case MD_SHARD_LOAD: return serve_load(s, h, p, err);
    case MD_SHARD_MODEL_FREE: model_drop(s, h->model); return MD_OK;
    case MD_SHARD_CACHE_CREATE:
    case MD_SHARD_CACHE_FORK: return serve_cache(s, h, err);
    case MD_SHARD_CACHE_FREE: cache_drop(s, h->cache); return MD_OK;
    case MD_SHARD_CACHE_TRUNC: {
        held *e = table_find(&s->caches, h->cache);
        if (e) md_kvcache_truncate(e->obj, h->a);
        return MD_OK;
    }
    case MD_SHARD_FORWARD: return serve_forward(s, h, p, out, err);
    case MD_SHARD_CLOSE: return MD_OK;
    default: return md_error_set(err, "request %d has no handler", (int)h->op);
    }
}

int md_shard_msg_wants_reply(md_shard_op op)
{
    return op == MD_SHARD_LOAD || op == MD_SHARD_CACHE_CREATE || op == MD_SHARD_CACHE_FORK || op == MD_SHARD_FORWARD;
}

/* Receives and answers one request: 1 to go on, MD_OK after CLOSE, MD_ERR
 * (err) when the leader is gone or sent a header that does not decode (the
 * member then answers with the error, in case the leader waits, and stops). */
static int serve_one(MPI_Comm comm, member *s, md_error *err)
{
    int64_t raw[8];
    md_shard_hdr h;
    char *p = NULL;
    if (MPI_Recv(raw, 8, MPI_INT64_T, 0, MD_SHARD_TAG_REQ, comm, MPI_STATUS_IGNORE) != MPI_SUCCESS)
        return md_error_set(err, "shard member %d: lost the leader", s->rank);
    if (md_shard_msg_decode_header(raw, &h, err) != MD_OK || recv_payload(comm, 0, h.bytes, &p, err) != MD_OK) {
        send_error(comm, err);
        return md_error_prefix(err, "shard member %d", s->rank);
    }
    md_error e = {0};
    md_sbuf out = {0}; /* the reply: freed here */
    int r = md_shard_member_handle(s, &h, p, &out, &e);
    if (md_shard_msg_wants_reply(h.op)) r == MD_OK ? send_reply(comm, 0, out.s, out.n) : send_error(comm, &e);
    md_sbuf_free(&out);
    free(p);
    return h.op == MD_SHARD_CLOSE ? MD_OK : 1;
}

int md_shard_serve(MPI_Comm comm, md_error *err)
{
    int rank, size, rc;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    md_shard_member *s = NULL;
    if (md_shard_member_new(&s, rank, size) != MD_OK) return md_error_set(err, "shard member %d: out of memory", rank);
    while ((rc = serve_one(comm, s, err)) == 1) {}
    md_shard_member_free(s);
    return rc;
}
