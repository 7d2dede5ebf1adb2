/* shard_msg.h — the messages of a layer-sharded model's group (shard.c),
 * written and read without MPI: the leader's requests and a member's
 * replies as bytes, and their decoders, which check every field before
 * anything is allocated from it (not installed; fuzzed by
 * tests/fuzz/fuzz_shard_msg.c).
 *
 * Wire format (every number little-endian as the host writes it; all ranks
 * run the same binary):
 *   header   (leader → member, TAG_REQ): int64 [8] = {op, model, cache,
 *            a, b, c, d, payload bytes}; the payload follows (TAG_DATA);
 *   reply    (member → leader, TAG_REP): int64 [2] = {status, bytes}; the
 *            payload follows (TAG_DATA): the error text when status != 0;
 *   load     payload: model folder (NUL-terminated), int32 backend,
 *            cuda_weights, cuda_gemm, int64 fp32 cache bytes;
 *   forward  payload: int32 n_seq, t0, t1, layer_start, layer_end,
 *            has_starts, [starts n_seq], logits, n_logit_ids, [ids],
 *            has_pad, [pad n_seq], n_hooks, n_hooks × {int32 index, point,
 *            op, layer, seq, pos, vec_per_seq, head; float coef; int32 nv;
 *            float vec[nv]; int32 cells (1: seq_pos, 2: seq_head follow);
 *            [seq_pos n_seq]; [seq_head n_seq]}, float x [n_seq][t1-t0][d];
 *   forward reply: float x [n_seq][t1-t0][d], int32 n_logits, float
 *            logits [n_logits], int32 n_reads, n_reads × {int32 index,
 *            float values [the hook's read count]}.
 * Every field is 4 bytes (8 in the headers and the load's cache size), so
 * the floats of a malloc'd payload are aligned and decoders hand out views.
 *
 * A decoder's error names the message and the field ("forward request:
 * hooks[2].layer 7 is outside this rank's layers [2, 4)"); the caller
 * prefixes its rank. Ownership: encoders add to the caller's md_sbuf;
 * decoded structs hold views into the caller's bytes (which must outlive
 * them) plus arrays they own (md_shard_msg_free_*). */
#ifndef MECHDIFF_SHARD_MSG_H
#define MECHDIFF_SHARD_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "mechdiff/error.h"
#include "mechdiff/forward.h"
#include "mechdiff/model.h"
#include "mechdiff/sbuf.h"

enum { MD_SHARD_TAG_REQ = 7101, MD_SHARD_TAG_REP = 7102, MD_SHARD_TAG_DATA = 7103 };
typedef enum md_shard_op {
    MD_SHARD_LOAD = 1,
    MD_SHARD_MODEL_FREE,
    MD_SHARD_CACHE_CREATE,  /* a = n_seq, b = max_len */
    MD_SHARD_CACHE_FORK,    /* a = parent cache, b = prefix_len, c = n_seq, d = max_extra */
    MD_SHARD_CACHE_FREE,
    MD_SHARD_CACHE_TRUNC,   /* a = len */
    MD_SHARD_FORWARD,
    MD_SHARD_CLOSE
} md_shard_op;

/* The most bytes one payload may have: MPI counts are ints. */
#define MD_SHARD_MAX_BYTES ((size_t)INT32_MAX)

/* A request's header. model and cache are the leader's ids (>= 0). */
typedef struct md_shard_hdr {
    md_shard_op op;
    int model, cache;
    int a, b, c, d;
    size_t bytes;            /* payload bytes */
} md_shard_hdr;

void md_shard_msg_pack_header(int64_t out[8], const md_shard_hdr *h);
/* Checks op, ids, arguments (each an int) and the payload size (> 0 for
 * LOAD and FORWARD, 0 for the others, at most MD_SHARD_MAX_BYTES). */
int md_shard_msg_decode_header(const int64_t in[8], md_shard_hdr *h, md_error *err);
/* A reply's header {status, bytes}: status 0 or 1, bytes <= MD_SHARD_MAX_BYTES. */
int md_shard_msg_decode_reply_header(const int64_t in[2], int *status, size_t *bytes, md_error *err);

/* The load request. */
typedef struct md_shard_load_req {
    const char *dir;         /* view into the payload */
    md_backend_kind backend;
    md_cuda_weights cuda_weights;
    md_cuda_gemm cuda_gemm;
    size_t fp32_cache_bytes;
} md_shard_load_req;

int md_shard_msg_encode_load(md_sbuf *b, const char *dir, const md_model_options *opt);
/* The options a decoded load request carries (defaults elsewhere; the
 * tokenizer skipped: members never tokenize). */
void md_shard_msg_load_options(const md_shard_load_req *q, md_model_options *opt);
/* dir: non-empty, shorter than md_model.dir; enums in range; cache >= 0. */
int md_shard_msg_decode_load(const void *p, size_t n, md_shard_load_req *out, md_error *err);

/* The forward request for the member holding layers [lo, hi) of m: f
 * restricted to them (its layers clamped, the hooks on them, logits only
 * for the last member) with x, the residual rows entering layer
 * max(lo, f's first layer). Fails only for memory or a message beyond
 * MD_SHARD_MAX_BYTES. */
int md_shard_msg_encode_forward(md_sbuf *b, const md_model *m, const md_forward *f, int lo, int hi, const float *x);

/* A decoded forward request: f has its fields, hooks, resid_in (a view) and
 * no cache or outputs. */
typedef struct md_shard_fwd {
    md_forward f;
    int *index;              /* [f.n_hooks] the leader's number of each hook (owned) */
    md_hook *hooks;          /* owned; vec are views, seq_pos / seq_head owned */
    int *starts, *ids, *pad; /* owned (or NULL) */
    size_t reply_bytes;      /* what the reply will hold */
} md_shard_fwd;

/* Decodes a forward request for member model m (its layer range, widths
 * and head) whose cache holds at most max_t1 positions. Checks every field
 * that sizes or indexes memory: counts against the bytes left, ranges of
 * layers (m's), sequences, heads, ids, padding, each vec's length, the
 * reply's size (<= MD_SHARD_MAX_BYTES), no bytes left over. Checks that only
 * the forward can make (cache lengths) stay with md_forward_local. */
int md_shard_msg_decode_forward(const void *p, size_t n, const md_model *m, int max_t1, md_shard_fwd *out,
                                md_error *err);
void md_shard_msg_free_forward(md_shard_fwd *r);

/* The member's reply to r after the forward: x out, the logits, each read. */
int md_shard_msg_encode_reply(md_sbuf *b, const md_model *m, const md_shard_fwd *r, const float *x,
                              const float *logits, size_t n_logits);

/* A decoded reply, checked against the request the leader sent (f, to the
 * member holding [lo, hi) of m). Views into the bytes. */
typedef struct md_shard_read {
    int hook;                /* index into f->hooks */
    const float *data;       /* md_hook_read_count floats */
} md_shard_read;

typedef struct md_shard_reply {
    const float *x;          /* [n_seq][t1-t0][d] */
    const float *logits;     /* n_logits floats, or NULL */
    size_t n_logits;
    md_shard_read *reads;    /* [n_reads] owned */
    int n_reads;
} md_shard_reply;

int md_shard_msg_decode_reply(const void *p, size_t n, const md_model *m, const md_forward *f, int lo, int hi,
                              md_shard_reply *out, md_error *err);
void md_shard_msg_free_reply(md_shard_reply *r);
/* Copies a decoded reply into f's outputs and x ([N][d]); reads of every
 * layer (MD_ALL) get the slices [lo, min(hi, layer_end)) only. */
void md_shard_msg_apply_reply(const md_shard_reply *r, const md_model *m, const md_forward *f, int lo, int hi,
                              float *x);

/* Whether a request gets an answer (LOAD, CACHE_CREATE, CACHE_FORK, FORWARD). */
int md_shard_msg_wants_reply(md_shard_op op);

/* ---- a member's side without MPI (shard.c; md_shard_serve is the MPI loop
 * around it): what it holds, by the leader's ids, and one request at a
 * time. Ownership: the member owns the models and caches it holds. */
typedef struct md_shard_member md_shard_member;
/* rank, size: the member's place in its group (its layer range of a model). */
int md_shard_member_new(md_shard_member **out, int rank, int size);
/* Frees every model and cache the member holds. */
void md_shard_member_free(md_shard_member *s);
/* One request whose header decoded to h and whose payload is p[0..h->bytes):
 * MD_OK with the reply payload in out (FORWARD) or MD_ERR with err, which
 * names the field or what failed (the leader prefixes the member). A cache
 * freed goes with its forks, a model with its caches; CLOSE does nothing
 * here. */
int md_shard_member_handle(md_shard_member *s, const md_shard_hdr *h, const char *p, md_sbuf *out, md_error *err);

/* What a member does with a forward request p[0..n) (shard.c): decodes it
 * for its model m and cache kc, runs it on m's layers and writes the reply
 * into out. Errors name the field or the forward's step. */
int md_shard_serve_forward(md_model *m, md_kvcache *kc, const void *p, size_t n, md_sbuf *out, md_error *err);

/* The logits a forward on [lo, hi) returns: 0 unless it ends at the last
 * layer and m holds it (the rows × ids or vocabulary of f's mode). */
size_t md_shard_msg_logit_count(const md_model *m, const md_forward *f, int hi);

#endif
