/* shard.c — a model split by layer ranges over a group of ranks (see
 * include/mechdiff/shard.h). The leader drives; members answer.
 *
 * Wire format (comm belongs to the group alone, see shard.h):
 *   request  (leader → member, TAG_REQ): int64 header[8] = {op, model, cache,
 *            a, b, c, d, payload bytes}, then the payload (TAG_DATA);
 *   reply    (member → leader, TAG_REP): int64 {status, bytes}, then the
 *            payload (TAG_DATA): the error message when status != 0.
 * Requests without a reply: MODEL_FREE, CACHE_FREE, CACHE_TRUNC, CLOSE (their
 * order relative to later requests is kept by MPI's ordering guarantee). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/device.h"
#include "mechdiff/sbuf.h"
#include "mechdiff/shard.h"
#include "model/kvcache_impl.h"
#include "model/exec_impl.h"

enum { TAG_REQ = 7101, TAG_REP = 7102, TAG_DATA = 7103 };
enum { OP_LOAD = 1, OP_MODEL_FREE, OP_CACHE_CREATE, OP_CACHE_FORK, OP_CACHE_FREE, OP_CACHE_TRUNC,
       OP_FORWARD, OP_CLOSE };

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

/* ---- a message written into an md_sbuf, and its reader ---------------- */
static void buf_i32(md_sbuf *b, int32_t v)
{
    md_sbuf_add(b, &v, sizeof v); /* a failure shows in b->failed */
}

typedef struct rd {
    const char *p;
    size_t n, at;
    int bad;
} rd;

static const void *rd_take(rd *r, size_t n)
{
    if (r->bad || r->at + n > r->n) {
        r->bad = 1;
        return NULL;
    }
    const void *q = r->p + r->at;
    r->at += n;
    return q;
}

static int32_t rd_i32(rd *r)
{
    const void *q = rd_take(r, sizeof(int32_t));
    int32_t v = 0;
    if (q) memcpy(&v, q, sizeof v);
    return v;
}

/* ---- messages ----------------------------------------------------------- */
static int send_req(MPI_Comm comm, int dest, int64_t op, int64_t model, int64_t cache, int64_t a, int64_t b,
                    int64_t c, int64_t d, const void *payload, size_t bytes)
{
    int64_t h[8] = {op, model, cache, a, b, c, d, (int64_t)bytes};
    if (MPI_Send(h, 8, MPI_INT64_T, dest, TAG_REQ, comm) != MPI_SUCCESS) return MD_ERR;
    if (bytes && MPI_Send(payload, (int)bytes, MPI_BYTE, dest, TAG_DATA, comm) != MPI_SUCCESS) return MD_ERR;
    return MD_OK;
}

static int send_reply(MPI_Comm comm, int status, const void *payload, size_t bytes)
{
    int64_t h[2] = {status, (int64_t)bytes};
    if (MPI_Send(h, 2, MPI_INT64_T, 0, TAG_REP, comm) != MPI_SUCCESS) return MD_ERR;
    if (bytes && MPI_Send(payload, (int)bytes, MPI_BYTE, 0, TAG_DATA, comm) != MPI_SUCCESS) return MD_ERR;
    return MD_OK;
}

static int send_error(MPI_Comm comm, const md_error *e)
{
    return send_reply(comm, 1, e->msg, strlen(e->msg) + 1);
}

/* Receives a member's reply; *payload is malloc'd (caller frees). On a
 * member's error, err names the member. */
static int recv_reply(MPI_Comm comm, int src, char **payload, size_t *bytes, md_error *err)
{
    int64_t h[2];
    *payload = NULL;
    *bytes = 0;
    if (MPI_Recv(h, 2, MPI_INT64_T, src, TAG_REP, comm, MPI_STATUS_IGNORE) != MPI_SUCCESS)
        return md_error_set(err, "shard member %d did not answer", src);
    char *p = malloc((size_t)h[1] + 1);
    if (!p) return md_error_set(err, "out of memory receiving from shard member %d", src);
    if (h[1] && MPI_Recv(p, (int)h[1], MPI_BYTE, src, TAG_DATA, comm, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
        free(p);
        return md_error_set(err, "shard member %d: truncated reply", src);
    }
    p[h[1]] = '\0';
    if (h[0] != 0) {
        md_error_set(err, "shard member %d: %s", src, p);
        free(p);
        return MD_ERR;
    }
    *payload = p;
    *bytes = (size_t)h[1];
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
    for (int j = 1; j < g->size; j++) send_req(g->comm, j, OP_CLOSE, 0, 0, 0, 0, 0, 0, NULL, 0);
    free(g);
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
    md_shard_link *link = calloc(1, sizeof *link);
    if (!link || !(link->lo = calloc((size_t)g->size, sizeof(int))) || !(link->hi = calloc((size_t)g->size, sizeof(int)))) {
        if (link) free(link->lo);
        free(link);
        return md_error_set(err, "out of memory");
    }
    link->group = g;
    link->size = g->size;
    link->model_id = g->next_model_id++;
    for (int j = 0; j < g->size; j++) md_shard_layer_range(cfg.n_layers, g->size, j, &link->lo[j], &link->hi[j]);
    /* members first (they load in parallel with the leader) */
    md_sbuf b = {0}; /* the request: freed here */
    md_sbuf_add(&b, dir, strlen(dir) + 1);
    buf_i32(&b, (int32_t)opt.backend);
    buf_i32(&b, (int32_t)opt.cuda_weights);
    buf_i32(&b, (int32_t)opt.cuda_gemm);
    int64_t cache = (int64_t)opt.fp32_cache_bytes;
    md_sbuf_add(&b, &cache, sizeof cache);
    int rc = b.failed ? md_error_set(err, "out of memory") : MD_OK;
    for (int j = 1; j < g->size && rc == MD_OK; j++)
        if (send_req(g->comm, j, OP_LOAD, link->model_id, 0, 0, 0, 0, 0, b.s, b.n) != MD_OK)
            rc = md_error_set(err, "shard: cannot reach member %d", j);
    md_sbuf_free(&b);
    md_model *m = NULL;
    md_model_options lopt = opt;
    lopt.layer_lo = link->lo[0];
    lopt.layer_hi = link->hi[0];
    md_error lerr = {0};
    int lrc = rc == MD_OK ? md_model_load(&m, dir, &lopt, &lerr) : MD_ERR;
    for (int j = 1; j < g->size && rc == MD_OK; j++) { /* collect every answer, keep the first error */
        char *p = NULL;
        size_t n = 0;
        md_error e2 = {0};
        if (recv_reply(g->comm, j, &p, &n, &e2) != MD_OK && lrc == MD_OK) {
            lrc = MD_ERR;
            lerr = e2;
        }
        free(p);
    }
    if (rc != MD_OK || lrc != MD_OK) {
        if (rc == MD_OK) *err = lerr;
        if (m) {
            m->exec = &SHARD_EXEC; /* md_model_free tells the members */
            m->exec_ctx = link;
            md_model_free(m);
        } else {
            SHARD_EXEC.free(link);
        }
        return MD_ERR;
    }
    m->exec = &SHARD_EXEC;
    m->exec_ctx = link;
    *out = m;
    return MD_OK;
}

static void shard_link_free(void *ctx)
{
    md_shard_link *link = ctx;
    if (!link) return;
    for (int j = 1; j < link->size; j++)
        send_req(link->group->comm, j, OP_MODEL_FREE, link->model_id, 0, 0, 0, 0, 0, NULL, 0);
    free(link->lo);
    free(link->hi);
    free(link);
}

static int cache_op_all(md_shard_link *link, int op, int cache, int64_t a, int64_t b, int64_t c, int64_t d,
                        md_error *err)
{
    md_shard_group *g = link->group;
    for (int j = 1; j < g->size; j++)
        if (send_req(g->comm, j, op, link->model_id, cache, a, b, c, d, NULL, 0) != MD_OK)
            return md_error_set(err, "shard: cannot reach member %d", j);
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

/* On failure the caller drops c->exec: the members that made a twin free it
 * with the group. */
static int shard_cache_create(void *ctx, struct md_kvcache *c, md_error *err)
{
    md_shard_link *link = ctx;
    c->exec_id = link->group->next_cache_id++;
    return cache_op_all(link, OP_CACHE_CREATE, c->exec_id, c->n_seq, c->max_len, 0, 0, err);
}

static int shard_cache_fork(void *ctx, struct md_kvcache *c, const struct md_kvcache *parent, md_error *err)
{
    md_shard_link *link = ctx;
    c->exec_id = link->group->next_cache_id++;
    return cache_op_all(link, OP_CACHE_FORK, c->exec_id, parent->exec_id, c->prefix_len, c->n_seq, c->max_len,
                        err);
}

static void shard_cache_free(void *ctx, struct md_kvcache *c)
{
    md_shard_link *link = ctx;
    md_shard_group *g = link->group;
    for (int j = 1; j < g->size; j++)
        send_req(g->comm, j, OP_CACHE_FREE, link->model_id, c->exec_id, 0, 0, 0, 0, NULL, 0);
}

static void shard_cache_truncate(void *ctx, struct md_kvcache *c, int len)
{
    md_shard_link *link = ctx;
    md_shard_group *g = link->group;
    for (int j = 1; j < g->size; j++)
        send_req(g->comm, j, OP_CACHE_TRUNC, link->model_id, c->exec_id, len, 0, 0, 0, NULL, 0);
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* The request for member j: the call restricted to its layers, its hooks,
 * and the residual rows x entering its first layer. */
static int build_request(const md_model *m, const md_forward *f, int lo, int hi, const float *x, md_sbuf *b)
{
    int N = f->n_seq * (f->t1 - f->t0), d = m->cfg.d_model, L = m->cfg.n_layers;
    int end = f->layer_end < hi ? f->layer_end : hi;
    int l0 = f->seq_layer_start ? f->seq_layer_start[0] : f->layer_start;
    buf_i32(b, f->n_seq);
    buf_i32(b, f->t0);
    buf_i32(b, f->t1);
    buf_i32(b, clampi(l0, lo, end));
    buf_i32(b, end);
    buf_i32(b, f->seq_layer_start != NULL);
    for (int s = 0; f->seq_layer_start && s < f->n_seq; s++) buf_i32(b, clampi(f->seq_layer_start[s], lo, end));
    int logits = hi == L && f->layer_end == L ? (int)f->logits : MD_LOGITS_NONE;
    buf_i32(b, logits);
    buf_i32(b, f->logit_ids ? f->n_logit_ids : 0);
    for (int i = 0; f->logit_ids && i < f->n_logit_ids; i++) buf_i32(b, f->logit_ids[i]);
    buf_i32(b, f->n_pad != NULL);
    for (int s = 0; f->n_pad && s < f->n_seq; s++) buf_i32(b, f->n_pad[s]);
    int n_hooks = 0;
    for (int i = 0; i < f->n_hooks; i++)
        n_hooks += f->hooks[i].layer == MD_ALL || (f->hooks[i].layer >= lo && f->hooks[i].layer < hi);
    buf_i32(b, n_hooks);
    for (int i = 0; i < f->n_hooks; i++) {
        const md_hook *h = &f->hooks[i];
        if (!(h->layer == MD_ALL || (h->layer >= lo && h->layer < hi))) continue;
        int w = (int)md_hook_cell_width(m, f, h);
        int nv = h->op == MD_HOOK_READ ? 0 : (h->vec_per_seq ? f->n_seq : 1) * w;
        buf_i32(b, i);
        buf_i32(b, h->point);
        buf_i32(b, h->op);
        buf_i32(b, h->layer);
        buf_i32(b, h->seq);
        buf_i32(b, h->pos);
        buf_i32(b, h->vec_per_seq);
        buf_i32(b, h->head);
        md_sbuf_add(b, &h->coef, sizeof h->coef);
        buf_i32(b, nv);
        md_sbuf_add(b, h->vec, (size_t)nv * sizeof(float));
        buf_i32(b, (h->seq_pos != NULL) | (h->seq_head != NULL) << 1); /* a batched hook's cells */
        for (int s = 0; h->seq_pos && s < f->n_seq; s++) buf_i32(b, h->seq_pos[s]);
        for (int s = 0; h->seq_head && s < f->n_seq; s++) buf_i32(b, h->seq_head[s]);
    }
    md_sbuf_add(b, x, (size_t)N * d * sizeof(float));
    return b->failed ? MD_ERR : MD_OK;
}

static int shard_forward(void *ctx, md_model *m, const md_forward *f, md_error *err)
{
    md_shard_link *link = ctx;
    md_shard_group *g = link->group;
    int N = f->n_seq * (f->t1 - f->t0), d = m->cfg.d_model, L = m->cfg.n_layers;
    int l0 = f->seq_layer_start ? f->seq_layer_start[0] : f->layer_start;
    int rc = MD_ERR;
    float *x = malloc((size_t)N * d * sizeof(float));
    int *starts = f->seq_layer_start ? malloc((size_t)f->n_seq * sizeof(int)) : NULL;
    if (!x || (f->seq_layer_start && !starts)) {
        md_error_set(err, "out of memory");
        goto done;
    }
    /* 1. the leader's own layers */
    if (l0 < link->hi[0]) {
        md_forward fl = *f;
        fl.layer_end = f->layer_end < link->hi[0] ? f->layer_end : link->hi[0];
        fl.logits = MD_LOGITS_NONE;
        fl.logit_ids = NULL;
        fl.resid_out = x;
        if (starts) {
            for (int s = 0; s < f->n_seq; s++) starts[s] = clampi(f->seq_layer_start[s], 0, fl.layer_end);
            fl.seq_layer_start = starts;
        }
        if (md_forward_local(m, &fl, err) != MD_OK) goto done;
    } else {
        memcpy(x, f->resid_in, (size_t)N * d * sizeof(float));
    }
    /* 2. each member in layer order: send x, get x back (+ reads, logits) */
    for (int j = 1; j < g->size && link->lo[j] < f->layer_end; j++) {
        if (l0 >= link->hi[j]) continue;
        md_sbuf b = {0}; /* the request: freed here */
        if (build_request(m, f, link->lo[j], link->hi[j], x, &b) != MD_OK ||
            send_req(g->comm, j, OP_FORWARD, link->model_id, f->cache->exec_id, 0, 0, 0, 0, b.s, b.n) != MD_OK) {
            md_sbuf_free(&b);
            md_error_set(err, "shard: cannot send a forward to member %d", j);
            goto done;
        }
        md_sbuf_free(&b);
        char *p = NULL;
        size_t n = 0;
        if (recv_reply(g->comm, j, &p, &n, err) != MD_OK) goto done;
        rd r = {.p = p, .n = n};
        const void *xo = rd_take(&r, (size_t)N * d * sizeof(float));
        if (xo) memcpy(x, xo, (size_t)N * d * sizeof(float));
        int n_logits = rd_i32(&r);
        const void *lg = rd_take(&r, (size_t)n_logits * sizeof(float));
        if (lg && n_logits) memcpy(f->logits_out, lg, (size_t)n_logits * sizeof(float));
        int n_reads = rd_i32(&r);
        for (int k = 0; k < n_reads && !r.bad; k++) {
            int i = rd_i32(&r);
            if (i < 0 || i >= f->n_hooks) {
                r.bad = 1;
                break;
            }
            const md_hook *h = &f->hooks[i];
            size_t cnt = md_hook_read_count(m, f, h);
            const float *data = rd_take(&r, cnt * sizeof(float));
            if (!data) break;
            if (h->layer == MD_ALL) { /* this member's layers only: slices [lo, hi) */
                size_t per = cnt / (size_t)L;
                int hi = link->hi[j] < f->layer_end ? link->hi[j] : f->layer_end;
                memcpy(h->out + (size_t)link->lo[j] * per, data + (size_t)link->lo[j] * per,
                       (size_t)(hi - link->lo[j]) * per * sizeof(float));
            } else {
                memcpy(h->out, data, cnt * sizeof(float));
            }
        }
        free(p);
        if (r.bad) {
            md_error_set(err, "shard: malformed forward reply from member %d", j);
            goto done;
        }
    }
    if (f->resid_out) memcpy(f->resid_out, x, (size_t)N * d * sizeof(float));
    if (f->t1 > f->cache->len) f->cache->len = f->t1;
    rc = MD_OK;
done:
    free(x);
    free(starts);
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
typedef struct member {
    MPI_Comm comm;
    int rank;
    md_model **models;     /* by id (owned) */
    int n_models;
    md_kvcache **caches;   /* by id (owned) */
    int n_caches;
    int *cache_model;      /* [n_caches] the model each cache belongs to */
} member;

static int grow(void ***v, int *n, int want)
{
    if (want < *n) return MD_OK;
    void **q = realloc(*v, (size_t)(want + 1) * sizeof(void *));
    if (!q) return MD_ERR;
    for (int i = *n; i <= want; i++) q[i] = NULL;
    *v = q;
    *n = want + 1;
    return MD_OK;
}

static int serve_load(member *s, int64_t id, const char *p, size_t n, md_error *err)
{
    rd r = {.p = p, .n = n};
    const char *dir = p;
    size_t len = strnlen(p, n);
    if (len == n) return md_error_set(err, "malformed load request");
    rd_take(&r, len + 1);
    md_model_options opt;
    md_model_options_init(&opt);
    opt.backend = (md_backend_kind)rd_i32(&r);
    opt.cuda_weights = (md_cuda_weights)rd_i32(&r);
    opt.cuda_gemm = (md_cuda_gemm)rd_i32(&r);
    /* Each member holds its layers on its own node-local GPU, not the leader's. */
    if (opt.backend == MD_BACKEND_CUDA && md_device_pick(&opt.device, err) != MD_OK) return MD_ERR;
    const void *cb = rd_take(&r, sizeof(int64_t));
    if (r.bad || id < 0) return md_error_set(err, "malformed load request");
    int64_t cache;
    memcpy(&cache, cb, sizeof cache);
    opt.fp32_cache_bytes = (size_t)cache;
    opt.skip_tokenizer = 1;
    md_config cfg;
    if (md_hf_config_load_dir(&cfg, dir, err) != MD_OK) return MD_ERR;
    int size;
    MPI_Comm_size(s->comm, &size);
    md_shard_layer_range(cfg.n_layers, size, s->rank, &opt.layer_lo, &opt.layer_hi);
    if (grow((void ***)&s->models, &s->n_models, (int)id) != MD_OK) return md_error_set(err, "out of memory");
    md_model_free(s->models[id]);
    s->models[id] = NULL;
    return md_model_load(&s->models[id], dir, &opt, err);
}

static int serve_forward(member *s, md_model *m, md_kvcache *kc, const char *p, size_t n, md_sbuf *out,
                         md_error *err)
{
    rd r = {.p = p, .n = n};
    md_forward f;
    md_forward_init(&f, m);
    int rc = MD_ERR, *starts = NULL, *ids = NULL, *pad = NULL, n_hooks = 0;
    md_hook *hooks = NULL;
    float *logits = NULL;
    f.n_seq = rd_i32(&r);
    f.t0 = rd_i32(&r);
    f.t1 = rd_i32(&r);
    f.layer_start = rd_i32(&r);
    f.layer_end = rd_i32(&r);
    int has_starts = rd_i32(&r);
    if (r.bad || f.n_seq <= 0 || f.t1 <= f.t0) goto bad;
    if (has_starts) {
        if (!(starts = malloc((size_t)f.n_seq * sizeof(int)))) goto oom;
        for (int i = 0; i < f.n_seq; i++) starts[i] = rd_i32(&r);
        f.seq_layer_start = starts;
    }
    f.logits = (md_logits_mode)rd_i32(&r);
    f.n_logit_ids = rd_i32(&r);
    if (r.bad || f.n_logit_ids < 0) goto bad;
    if (f.n_logit_ids) {
        if (!(ids = malloc((size_t)f.n_logit_ids * sizeof(int)))) goto oom;
        for (int i = 0; i < f.n_logit_ids; i++) ids[i] = rd_i32(&r);
        f.logit_ids = ids;
    }
    if (rd_i32(&r)) {
        if (!(pad = malloc((size_t)f.n_seq * sizeof(int)))) goto oom;
        for (int i = 0; i < f.n_seq; i++) pad[i] = rd_i32(&r);
        f.n_pad = pad;
    }
    n_hooks = rd_i32(&r);
    if (r.bad || n_hooks < 0) goto bad;
    hooks = calloc((size_t)(n_hooks ? n_hooks : 1), sizeof *hooks);
    int *index = calloc((size_t)(n_hooks ? n_hooks : 1), sizeof(int));
    if (!hooks || !index) {
        free(index);
        goto oom;
    }
    for (int i = 0; i < n_hooks && !r.bad; i++) {
        md_hook *h = &hooks[i];
        index[i] = rd_i32(&r);
        h->point = (md_hook_point)rd_i32(&r);
        h->op = (md_hook_op)rd_i32(&r);
        h->layer = rd_i32(&r);
        h->seq = rd_i32(&r);
        h->pos = rd_i32(&r);
        h->vec_per_seq = rd_i32(&r);
        h->head = rd_i32(&r);
        const void *c = rd_take(&r, sizeof(float));
        if (c) memcpy(&h->coef, c, sizeof(float));
        int nv = rd_i32(&r);
        h->vec = nv > 0 ? rd_take(&r, (size_t)nv * sizeof(float)) : NULL; /* read-only view of the payload */
        int cells = rd_i32(&r); /* int arrays: the payload is not aligned for them, so copies */
        int *sp = cells & 1 ? malloc((size_t)f.n_seq * sizeof(int)) : NULL;
        int *sh = cells & 2 ? malloc((size_t)f.n_seq * sizeof(int)) : NULL;
        h->seq_pos = sp, h->seq_head = sh;
        if (((cells & 1) && !sp) || ((cells & 2) && !sh)) {
            free(index);
            goto oom;
        }
        for (int s = 0; sp && s < f.n_seq; s++) sp[s] = rd_i32(&r);
        for (int s = 0; sh && s < f.n_seq; s++) sh[s] = rd_i32(&r);
    }
    f.hooks = hooks;
    f.n_hooks = n_hooks;
    int N = f.n_seq * (f.t1 - f.t0), d = m->cfg.d_model;
    const float *xin = rd_take(&r, (size_t)N * d * sizeof(float));
    if (r.bad || !xin) {
        free(index);
        goto bad;
    }
    for (int i = 0; i < n_hooks; i++)
        if (hooks[i].op == MD_HOOK_READ &&
            !(hooks[i].out = calloc(md_hook_read_count(m, &f, &hooks[i]), sizeof(float)))) {
            free(index);
            goto oom;
        }
    size_t n_logits = f.logits == MD_LOGITS_NONE ? 0
                      : (size_t)(f.logits == MD_LOGITS_ALL ? N : f.n_seq) *
                            (size_t)(f.logit_ids ? f.n_logit_ids : m->cfg.vocab_size);
    if (n_logits && !(logits = malloc(n_logits * sizeof(float)))) {
        free(index);
        goto oom;
    }
    f.logits_out = logits;
    f.resid_in = xin;
    float *xout = malloc((size_t)N * d * sizeof(float));
    if (!xout) {
        free(index);
        goto oom;
    }
    f.resid_out = xout;
    f.cache = kc;
    if (md_forward_local(m, &f, err) != MD_OK) {
        free(xout);
        free(index);
        goto done;
    }
    md_sbuf_add(out, xout, (size_t)N * d * sizeof(float));
    free(xout);
    buf_i32(out, (int32_t)n_logits);
    md_sbuf_add(out, logits, n_logits * sizeof(float));
    int n_reads = 0;
    for (int i = 0; i < n_hooks; i++) n_reads += hooks[i].op == MD_HOOK_READ;
    buf_i32(out, n_reads);
    for (int i = 0; i < n_hooks; i++)
        if (hooks[i].op == MD_HOOK_READ) {
            buf_i32(out, index[i]);
            md_sbuf_add(out, hooks[i].out, md_hook_read_count(m, &f, &hooks[i]) * sizeof(float));
        }
    free(index);
    rc = out->failed ? md_error_set(err, "out of memory") : MD_OK;
    goto done;
bad:
    md_error_set(err, "rank %d: malformed forward request", s->rank);
    goto done;
oom:
    md_error_set(err, "rank %d: out of memory", s->rank);
done:
    for (int i = 0; hooks && i < n_hooks; i++) {
        free(hooks[i].out);
        free((int *)hooks[i].seq_pos);
        free((int *)hooks[i].seq_head);
    }
    free(hooks);
    free(starts);
    free(ids);
    free(pad);
    free(logits);
    return rc;
}

/* Creates (or forks) cache `cid` of model `mid` as the leader asked. */
static int serve_cache(member *s, int64_t op, int64_t mid, int64_t cid, const int64_t *h, md_error *err)
{
    md_model *m = mid >= 0 && mid < s->n_models ? s->models[mid] : NULL;
    int old = s->n_caches;
    if (cid < 0 || grow((void ***)&s->caches, &s->n_caches, (int)cid) != MD_OK)
        return md_error_set(err, "rank %d: bad cache id or out of memory", s->rank);
    if (s->n_caches > old) {
        int *cm = realloc(s->cache_model, (size_t)s->n_caches * sizeof(int));
        if (!cm) return md_error_set(err, "rank %d: out of memory", s->rank);
        for (int i = old; i < s->n_caches; i++) cm[i] = -1;
        s->cache_model = cm;
    }
    if (!m) return md_error_set(err, "rank %d: no model %lld", s->rank, (long long)mid);
    md_kvcache_free(s->caches[cid]);
    s->caches[cid] = NULL;
    int r;
    if (op == OP_CACHE_CREATE) {
        r = md_kvcache_create(&s->caches[cid], m, (int)h[3], (int)h[4], err);
    } else {
        if (h[3] < 0 || h[3] >= s->n_caches || !s->caches[h[3]])
            return md_error_set(err, "rank %d: no parent cache %lld", s->rank, (long long)h[3]);
        r = md_kvcache_fork(&s->caches[cid], s->caches[h[3]], (int)h[4], (int)h[5], (int)h[6], err);
    }
    if (r == MD_OK) s->cache_model[cid] = (int)mid;
    return r;
}

int md_shard_serve(MPI_Comm comm, md_error *err)
{
    member s = {.comm = comm};
    MPI_Comm_rank(comm, &s.rank);
    int rc = MD_ERR;
    for (;;) {
        int64_t h[8];
        if (MPI_Recv(h, 8, MPI_INT64_T, 0, TAG_REQ, comm, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
            md_error_set(err, "shard member %d: lost the leader", s.rank);
            break;
        }
        char *p = NULL;
        if (h[7] > 0) {
            if (!(p = malloc((size_t)h[7]))) {
                md_error_set(err, "shard member %d: out of memory", s.rank);
                break;
            }
            MPI_Recv(p, (int)h[7], MPI_BYTE, 0, TAG_DATA, comm, MPI_STATUS_IGNORE);
        }
        int64_t op = h[0], mid = h[1], cid = h[2];
        md_model *m = mid >= 0 && mid < s.n_models ? s.models[mid] : NULL;
        md_error e = {0};
        int r = MD_OK;
        if (op == OP_CLOSE) {
            free(p);
            rc = MD_OK;
            break;
        }
        switch (op) {
        case OP_LOAD:
            r = serve_load(&s, mid, p ? p : "", (size_t)h[7], &e);
            send_reply(comm, r != MD_OK, r != MD_OK ? e.msg : NULL, r != MD_OK ? strlen(e.msg) + 1 : 0);
            break;
        case OP_MODEL_FREE:
            if (m) { /* caches the leader leaked die with their model */
                for (int i = 0; i < s.n_caches; i++)
                    if (s.caches[i] && s.cache_model[i] == mid) {
                        md_kvcache_free(s.caches[i]);
                        s.caches[i] = NULL;
                    }
                md_model_free(m);
                s.models[mid] = NULL;
            }
            break;
        case OP_CACHE_CREATE:
        case OP_CACHE_FORK:
            r = serve_cache(&s, op, mid, cid, h, &e);
            if (r != MD_OK) send_error(comm, &e);
            else send_reply(comm, 0, NULL, 0);
            break;
        case OP_CACHE_FREE:
            if (cid >= 0 && cid < s.n_caches) {
                md_kvcache_free(s.caches[cid]);
                s.caches[cid] = NULL;
            }
            break;
        case OP_CACHE_TRUNC:
            if (cid >= 0 && cid < s.n_caches && s.caches[cid]) md_kvcache_truncate(s.caches[cid], (int)h[3]);
            break;
        case OP_FORWARD: {
            md_sbuf out = {0}; /* the reply: freed here */
            md_kvcache *kc = cid >= 0 && cid < s.n_caches ? s.caches[cid] : NULL;
            if (!m || !kc) r = md_error_set(&e, "rank %d: unknown model %lld or cache %lld", s.rank, (long long)mid,
                                            (long long)cid);
            else r = serve_forward(&s, m, kc, p, (size_t)h[7], &out, &e);
            if (r != MD_OK) send_error(comm, &e);
            else send_reply(comm, 0, out.s, out.n);
            md_sbuf_free(&out);
            break;
        }
        default:
            e.msg[0] = '\0';
            md_error_set(&e, "rank %d: unknown request %lld", s.rank, (long long)op);
            send_error(comm, &e);
        }
        free(p);
    }
    for (int i = 0; i < s.n_caches; i++) md_kvcache_free(s.caches[i]);
    for (int i = 0; i < s.n_models; i++) md_model_free(s.models[i]);
    free(s.caches);
    free(s.cache_model);
    free(s.models);
    return rc;
}
