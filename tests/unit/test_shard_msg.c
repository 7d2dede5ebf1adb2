/* test_shard_msg.c — the sharded group's messages (src/model/shard_msg.c):
 * a forward request for member [2, 3) of a 4-layer model round-trips, and
 * each damaged field is refused with an error naming it; a reply is checked
 * against the request; headers and the load request likewise. The model is
 * a shape only (config and layer range: all the messages read). */
#include <string.h>

#include "mechdiff/shard.h"
#include "model/shard_msg.h"
#include "testutil.h"

static md_model shape(int lo, int hi)
{
    md_model m;
    memset(&m, 0, sizeof m);
    m.cfg = (md_config){.n_layers = 4, .d_model = 8, .d_ff = 12, .n_heads = 2, .n_kv_heads = 1, .head_dim = 4,
                        .vocab_size = 16};
    m.layer_lo = lo, m.layer_hi = hi, m.has_head = hi == 4;
    return m;
}

/* Decoding the request with int32 field `at` set to v fails naming `want`. */
static void refused_with(const md_model *m, const md_sbuf *b, size_t at, int32_t v, size_t len, const char *want)
{
    char *p = malloc(b->n + 4);
    memcpy(p, b->s, b->n);
    memset(p + b->n, 0, 4);
    if (at != (size_t)-1) memcpy(p + at, &v, 4);
    md_shard_fwd q;
    md_error e = {0};
    int rc = md_shard_msg_decode_forward(p, len, m, 8, &q, &e);
    CHECK_MSG(rc == MD_ERR && strstr(e.msg, want), "want '%s', got rc %d '%s'", want, rc, e.msg);
    free(p);
}

static void test_forward(void)
{
    md_model whole = shape(0, 4), mm = shape(2, 3);
    float x[2 * 3 * 8], vec[8], out[2 * 3 * 8];
    for (int i = 0; i < 48; i++) x[i] = (float)i;
    for (int i = 0; i < 8; i++) vec[i] = 0.5f * (float)i;
    md_hook hooks[3] = {
        {.point = MD_HOOK_RESID_POST, .op = MD_HOOK_READ, .layer = 2, .seq = MD_ALL, .pos = MD_ALL, .out = out},
        {.point = MD_HOOK_RESID_PRE, .op = MD_HOOK_ADD, .layer = 0, .seq = MD_ALL, .pos = MD_ALL, .vec = vec},
        {.point = MD_HOOK_MLP_OUT, .op = MD_HOOK_ADD, .layer = MD_ALL, .seq = 1, .pos = 2, .vec = vec, .coef = 2}};
    md_forward f;
    md_forward_init_partial(&f, &whole, 2, 0, 3, 1, x, NULL, NULL);
    f.logits = MD_LOGITS_NONE;
    md_forward_set_hooks(&f, hooks, 3);
    md_sbuf b = {0};
    CHECK(md_shard_msg_encode_forward(&b, &whole, &f, 2, 3, x) == MD_OK);
    md_shard_fwd q;
    md_error e = {0};
    CHECK_MSG(md_shard_msg_decode_forward(b.s, b.n, &mm, 8, &q, &e) == MD_OK, "%s", e.msg);
    /* the member's part: layers [2, 3), hooks 0 and 2 (hook 1 is on layer 0) */
    CHECK(q.f.n_seq == 2 && q.f.t1 == 3 && q.f.layer_start == 2 && q.f.layer_end == 3 && q.f.n_hooks == 2);
    CHECK(q.index[0] == 0 && q.index[1] == 2 && q.hooks[1].coef == 2.0f && q.hooks[1].seq == 1);
    CHECK(memcmp(q.hooks[1].vec, vec, sizeof vec) == 0 && memcmp(q.f.resid_in, x, sizeof x) == 0);
    /* a reply: x, no logits, the read of hook 0 */
    md_sbuf rb = {0};
    float xo[48], rd[48];
    for (int i = 0; i < 48; i++) xo[i] = -(float)i, rd[i] = 100.0f + (float)i;
    q.hooks[0].out = rd;
    CHECK(md_shard_msg_encode_reply(&rb, &mm, &q, xo, NULL, 0) == MD_OK);
    md_shard_reply r;
    CHECK_MSG(md_shard_msg_decode_reply(rb.s, rb.n, &whole, &f, 2, 3, &r, &e) == MD_OK, "%s", e.msg);
    float xl[48];
    md_shard_msg_apply_reply(&r, &whole, &f, 2, 3, xl);
    CHECK(memcmp(xl, xo, sizeof xo) == 0 && memcmp(out, rd, sizeof rd) == 0);
    md_shard_msg_free_reply(&r);
    int32_t bad = 1; /* reads[0].index 1: hook 1 is not a read */
    memcpy(rb.s + 48 * 4 + 8, &bad, 4);
    CHECK(md_shard_msg_decode_reply(rb.s, rb.n, &whole, &f, 2, 3, &r, &e) == MD_ERR && strstr(e.msg, "reads[0].index 1"));
    bad = 5; /* logits nobody asked for */
    memcpy(rb.s + 48 * 4, &bad, 4);
    CHECK(md_shard_msg_decode_reply(rb.s, rb.n, &whole, &f, 2, 3, &r, &e) == MD_ERR && strstr(e.msg, "n_logits 5"));
    md_sbuf_free(&rb);
    md_shard_msg_free_forward(&q);
    /* damaged fields (int32 offsets): n_seq 0, t1 8, layer_start 12, layer_end 16, n_logit_ids 28, has_pad 32,
     * n_hooks 36, hook 0 at 40 (index, point 44, op, layer 52, ..., 11 fields), hook 1 at 84 (vec_per_seq 108) */
    refused_with(&mm, &b, 0, 0, b.n, "n_seq 0 is outside");
    refused_with(&mm, &b, 8, 9, b.n, "t1 9 is outside [1, 8]");
    refused_with(&mm, &b, 12, 1, b.n, "layer_start 1 is outside");
    refused_with(&mm, &b, 16, 4, b.n, "layer_end 4 is outside this rank's layers");
    refused_with(&mm, &b, 28, -1, b.n, "n_logit_ids -1 is negative");
    refused_with(&mm, &b, 32, 2, b.n, "has_pad 2 is outside [0, 1]");
    refused_with(&mm, &b, 36, 1 << 30, b.n, "n_hooks 1073741824 is more than");
    refused_with(&mm, &b, 40, -5, b.n, "hooks[0].index -5 is outside");
    refused_with(&mm, &b, 44, 99, b.n, "hooks[0].point 99");
    refused_with(&mm, &b, 52, 1, b.n, "hooks[0].layer 1 is outside this rank's layers [2, 3)");
    refused_with(&mm, &b, 108, 1, b.n, "hooks[1].nv 8 floats of vec, the hook's cells need 16");
    refused_with(&mm, &b, (size_t)-1, 0, b.n - 1, "truncated at x");
    refused_with(&mm, &b, (size_t)-1, 0, b.n + 4, "4 bytes left over");
    md_sbuf_free(&b);
}

static void test_headers_and_load(void)
{
    md_shard_hdr h;
    md_error e = {0};
    int64_t raw[8] = {MD_SHARD_FORWARD, 0, 3, 0, 0, 0, 0, 100};
    CHECK(md_shard_msg_decode_header(raw, &h, &e) == MD_OK && h.cache == 3 && h.bytes == 100);
    raw[0] = 99;
    CHECK(md_shard_msg_decode_header(raw, &h, &e) == MD_ERR && strstr(e.msg, "op 99"));
    raw[0] = MD_SHARD_CACHE_FREE;
    CHECK(md_shard_msg_decode_header(raw, &h, &e) == MD_ERR && strstr(e.msg, "bytes 100"));
    raw[7] = 0, raw[1] = -3;
    CHECK(md_shard_msg_decode_header(raw, &h, &e) == MD_ERR && strstr(e.msg, "model -3"));
    int64_t rep[2] = {0, -1};
    int status;
    size_t bytes;
    CHECK(md_shard_msg_decode_reply_header(rep, &status, &bytes, &e) == MD_ERR && strstr(e.msg, "bytes -1"));
    md_model_options opt;
    md_model_options_init(&opt);
    md_sbuf b = {0};
    CHECK(md_shard_msg_encode_load(&b, "models/x", &opt) == MD_OK);
    md_shard_load_req q;
    CHECK(md_shard_msg_decode_load(b.s, b.n, &q, &e) == MD_OK && strcmp(q.dir, "models/x") == 0);
    CHECK(md_shard_msg_decode_load(b.s, 5, &q, &e) == MD_ERR && strstr(e.msg, "not NUL-terminated"));
    b.s[9] = 7; /* backend */
    CHECK(md_shard_msg_decode_load(b.s, b.n, &q, &e) == MD_ERR && strstr(e.msg, "backend 7"));
    md_sbuf_free(&b);
}

int main(void)
{
    test_forward();
    test_headers_and_load();
    TEST_MAIN_END();
}
