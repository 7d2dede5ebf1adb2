/* test_safetensors.c — safetensors writer/reader round trip (F32, F16, BF16),
 * sharded folders with an index, and every malformed input the reader must
 * reject with a message naming the file (and the tensor, where there is one). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mechdiff/safetensors.h"
#include "testutil.h"

static char g_dir[1024];

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", g_dir, name); }

/* Writes a raw file: u64 length (hlen_override if nonzero, else the padded
 * header length), the header (padded with spaces to 8 unless pad == 0), then
 * data_bytes bytes of zeros. */
static void write_raw(const char *name, const char *header, int pad, uint64_t hlen_override, size_t data_bytes)
{
    char path[1200];
    path_of(path, sizeof path, name);
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    size_t len = strlen(header), padded = pad ? (len + 7) / 8 * 8 : len;
    uint64_t hl = hlen_override ? hlen_override : padded;
    for (int i = 0; i < 8; i++) fputc((int)((hl >> (8 * i)) & 0xff), f);
    fwrite(header, 1, len, f);
    for (size_t i = len; i < padded; i++) fputc(' ', f);
    for (size_t i = 0; i < data_bytes; i++) fputc(0, f);
    fclose(f);
}

/* Opens name and expects failure with a message containing every needle. */
static void expect_fail(const char *name, const char *n1, const char *n2)
{
    char path[1200];
    path_of(path, sizeof path, name);
    md_safetensors *st = NULL;
    md_error err;
    md_error_clear(&err);
    int rc = md_safetensors_open_file(&st, path, &err);
    CHECK_MSG(rc == MD_ERR && st == NULL, "%s: expected failure", name);
    CHECK_MSG(strstr(err.msg, name) != NULL, "%s: message lacks the file name: %s", name, err.msg);
    if (n1) CHECK_MSG(strstr(err.msg, n1) != NULL, "%s: message lacks '%s': %s", name, n1, err.msg);
    if (n2) CHECK_MSG(strstr(err.msg, n2) != NULL, "%s: message lacks '%s': %s", name, n2, err.msg);
    md_safetensors_close(st);
}

static void test_roundtrip(void)
{
    char path[1200];
    path_of(path, sizeof path, "rt.safetensors");
    md_error err;
    md_error_clear(&err);
    md_safetensors_writer *w = NULL;
    float a[6] = {1.5f, -2.25f, 0.0f, 3.0e-3f, 65504.0f, -1.0e-4f};
    int64_t sa[2] = {2, 3}, sb[1] = {6}, sc[3] = {1, 2, 3}, sz[2] = {0, 4};
    uint16_t f16[6], bf16[6];
    md_dtype_from_f32(f16, a, MD_DTYPE_F16, 6);
    md_dtype_from_f32(bf16, a, MD_DTYPE_BF16, 6);
    CHECK(md_safetensors_writer_create(&w, path, &err) == MD_OK);
    CHECK(md_safetensors_writer_set_metadata(w, "note", "round trip", &err) == MD_OK);
    CHECK(md_safetensors_writer_declare(w, "w.f32", MD_DTYPE_F32, 2, sa, &err) == MD_OK);
    CHECK(md_safetensors_writer_declare(w, "w.f16", MD_DTYPE_F16, 1, sb, &err) == MD_OK);
    CHECK(md_safetensors_writer_declare(w, "w.bf16", MD_DTYPE_BF16, 3, sc, &err) == MD_OK);
    CHECK(md_safetensors_writer_declare(w, "w.empty", MD_DTYPE_F32, 2, sz, &err) == MD_OK);
    CHECK(md_safetensors_writer_declare(w, "w.scalar", MD_DTYPE_F32, 0, NULL, &err) == MD_OK);
    CHECK(md_safetensors_writer_declare(w, "w.f32", MD_DTYPE_F32, 2, sa, &err) == MD_ERR); /* duplicate */
    CHECK(strstr(err.msg, "w.f32") != NULL);
    CHECK(md_safetensors_writer_begin(w, &err) == MD_OK);
    CHECK(md_safetensors_writer_put(w, a, 10, &err) == MD_OK); /* in pieces */
    CHECK(md_safetensors_writer_put(w, (const char *)a + 10, 14, &err) == MD_OK);
    CHECK(md_safetensors_writer_put(w, f16, sizeof f16, &err) == MD_OK);
    CHECK(md_safetensors_writer_put(w, bf16, sizeof bf16, &err) == MD_OK);
    float s = 42.0f;
    CHECK(md_safetensors_writer_put(w, &s, 4, &err) == MD_OK);
    CHECK(access(path, F_OK) != 0); /* only PATH.tmp so far */
    CHECK(md_safetensors_writer_finish(w, &err) == MD_OK);

    md_safetensors *st = NULL;
    CHECK_MSG(md_safetensors_open_file(&st, path, &err) == MD_OK, "%s", err.msg);
    if (!st) return;
    CHECK(md_safetensors_count(st) == 5);
    CHECK(md_safetensors_file_count(st) == 1);
    CHECK(strcmp(md_safetensors_file_path(st, 0), path) == 0);
    struct stat sbuf;
    stat(path, &sbuf);
    CHECK(md_safetensors_total_bytes(st) == (size_t)sbuf.st_size);
    const md_tensor_info *t = md_safetensors_find(st, "w.f32");
    CHECK(t && t->dtype == MD_DTYPE_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3);
    CHECK(t && t->nbytes == 24 && md_tensor_numel(t) == 6 && ((uintptr_t)t->data % 8) == 0);
    float back[6];
    if (t) {
        md_dtype_to_f32(back, t->data, t->dtype, 6);
        for (int i = 0; i < 6; i++) CHECK(back[i] == a[i]);
    }
    t = md_safetensors_find(st, "w.f16");
    CHECK(t && t->dtype == MD_DTYPE_F16 && t->ndim == 1 && t->shape[0] == 6 && t->nbytes == 12);
    if (t) {
        md_dtype_to_f32(back, t->data, t->dtype, 6);
        for (int i = 0; i < 6; i++) CHECK_NEAR(back[i], a[i], fabs(a[i]) * 1e-3 + 1e-7);
    }
    t = md_safetensors_find(st, "w.bf16");
    CHECK(t && t->dtype == MD_DTYPE_BF16 && t->ndim == 3 && t->shape[2] == 3 && t->nbytes == 12);
    if (t) {
        md_dtype_to_f32(back, t->data, t->dtype, 6);
        for (int i = 0; i < 6; i++) CHECK_NEAR(back[i], a[i], fabs(a[i]) * 8e-3);
    }
    t = md_safetensors_find(st, "w.empty");
    CHECK(t && t->nbytes == 0 && t->shape[0] == 0);
    t = md_safetensors_find(st, "w.scalar");
    CHECK(t && t->ndim == 0 && t->nbytes == 4 && md_tensor_numel(t) == 1 && *(const float *)t->data == 42.0f);
    CHECK(md_safetensors_find(st, "nope") == NULL);
    CHECK(md_safetensors_find(st, "w.f3") == NULL);
    CHECK(md_safetensors_at(st, 5) == NULL);
    for (size_t i = 0; i < md_safetensors_count(st); i++) {
        const md_tensor_info *x = md_safetensors_at(st, i);
        CHECK(md_safetensors_find(st, x->name) == x);
    }
    md_safetensors_close(st);
}

static void write_shard(const char *name, const char *const *tensors, int n, float base)
{
    char path[1200];
    path_of(path, sizeof path, name);
    md_error err;
    md_safetensors_writer *w = NULL;
    int64_t shape[1] = {4};
    CHECK(md_safetensors_writer_create(&w, path, &err) == MD_OK);
    for (int i = 0; i < n; i++) CHECK(md_safetensors_writer_declare(w, tensors[i], MD_DTYPE_F32, 1, shape, &err) == MD_OK);
    CHECK(md_safetensors_writer_begin(w, &err) == MD_OK);
    for (int i = 0; i < n; i++) {
        float v[4] = {base + (float)i, 0, 0, 0};
        CHECK(md_safetensors_writer_put(w, v, sizeof v, &err) == MD_OK);
    }
    CHECK(md_safetensors_writer_finish(w, &err) == MD_OK);
}

static void write_text(const char *name, const char *text)
{
    char path[1200];
    path_of(path, sizeof path, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_sharded(void)
{
    char sub[1200];
    path_of(sub, sizeof sub, "sharded");
    mkdir(sub, 0777);
    static const char *const s1[] = {"a", "b"}, *const s2[] = {"c"};
    write_shard("sharded/model-00001-of-00002.safetensors", s1, 2, 10.0f);
    write_shard("sharded/model-00002-of-00002.safetensors", s2, 1, 20.0f);
    write_text("sharded/model.safetensors.index.json",
               "{\"metadata\": {\"total_size\": 48}, \"weight_map\": {"
               "\"a\": \"model-00001-of-00002.safetensors\", \"b\": \"model-00001-of-00002.safetensors\","
               "\"c\": \"model-00002-of-00002.safetensors\"}}");
    md_safetensors *st = NULL;
    md_error err;
    md_error_clear(&err);
    CHECK_MSG(md_safetensors_open_dir(&st, sub, &err) == MD_OK, "%s", err.msg);
    if (st) {
        CHECK(md_safetensors_count(st) == 3);
        CHECK(md_safetensors_file_count(st) == 2);
        const md_tensor_info *c = md_safetensors_find(st, "c");
        CHECK(c && c->file_index == 1 && ((const float *)c->data)[0] == 20.0f);
        const md_tensor_info *b = md_safetensors_find(st, "b");
        CHECK(b && b->file_index == 0 && ((const float *)b->data)[0] == 11.0f);
        CHECK(strstr(md_safetensors_file_path(st, 1), "model-00002-of-00002.safetensors") != NULL);
        md_safetensors_close(st);
    }

    /* Index names a tensor its shard lacks. */
    write_text("sharded/model.safetensors.index.json",
               "{\"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\","
               "\"ghost.weight\": \"model-00002-of-00002.safetensors\"}}");
    st = NULL;
    CHECK(md_safetensors_open_dir(&st, sub, &err) == MD_ERR && st == NULL);
    CHECK_MSG(strstr(err.msg, "ghost.weight") && strstr(err.msg, "model-00002-of-00002.safetensors") &&
              strstr(err.msg, "model.safetensors.index.json"), "%s", err.msg);

    /* Index names a shard that does not exist. */
    write_text("sharded/model.safetensors.index.json",
               "{\"weight_map\": {\"a\": \"model-00009-of-00009.safetensors\"}}");
    CHECK(md_safetensors_open_dir(&st, sub, &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "model-00009-of-00009.safetensors") != NULL, "%s", err.msg);

    /* Index that is not JSON / lacks weight_map / escapes the folder. */
    write_text("sharded/model.safetensors.index.json", "{\"weight_map\": ");
    CHECK(md_safetensors_open_dir(&st, sub, &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "model.safetensors.index.json") != NULL, "%s", err.msg);
    write_text("sharded/model.safetensors.index.json", "{\"metadata\": {}}");
    CHECK(md_safetensors_open_dir(&st, sub, &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "weight_map") != NULL, "%s", err.msg);
    write_text("sharded/model.safetensors.index.json", "{\"weight_map\": {\"a\": \"../x.safetensors\"}}");
    CHECK(md_safetensors_open_dir(&st, sub, &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "../x.safetensors") != NULL, "%s", err.msg);

    /* Same tensor in two shards. */
    write_shard("sharded/model-00002-of-00002.safetensors", s1, 1, 30.0f);
    write_text("sharded/model.safetensors.index.json",
               "{\"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\","
               "\"b\": \"model-00002-of-00002.safetensors\"}}");
    CHECK(md_safetensors_open_dir(&st, sub, &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "'a'") != NULL, "%s", err.msg);

    /* Folder with neither file. */
    char empty[1200];
    path_of(empty, sizeof empty, "emptydir");
    mkdir(empty, 0777);
    CHECK(md_safetensors_open_dir(&st, empty, &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "emptydir") && strstr(err.msg, "model.safetensors"), "%s", err.msg);
}

static void test_bad_inputs(void)
{
    const char *ok1 = "{\"t.w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
    write_raw("good.safetensors", ok1, 1, 0, 16);
    md_safetensors *st = NULL;
    md_error err;
    char path[1200];
    path_of(path, sizeof path, "good.safetensors");
    CHECK_MSG(md_safetensors_open_file(&st, path, &err) == MD_OK, "%s", err.msg);
    md_safetensors_close(st);

    /* Truncated: fewer than 8 bytes. */
    path_of(path, sizeof path, "short.safetensors");
    FILE *f = fopen(path, "wb");
    fwrite("\x10\0\0", 1, 3, f);
    fclose(f);
    expect_fail("short.safetensors", "8", NULL);
    path_of(path, sizeof path, "zero.safetensors");
    f = fopen(path, "wb");
    fclose(f);
    expect_fail("zero.safetensors", NULL, NULL);
    /* Missing file. */
    expect_fail("missing.safetensors", NULL, NULL);
    /* Header length lies (larger than the file) / absurd. */
    write_raw("hlen_lie.safetensors", ok1, 1, 5000, 16);
    expect_fail("hlen_lie.safetensors", "header length", NULL);
    write_raw("hlen_absurd.safetensors", ok1, 1, (uint64_t)1 << 40, 16);
    expect_fail("hlen_absurd.safetensors", "absurd", NULL);
    /* Truncated data section (file cut after the header). */
    write_raw("trunc_data.safetensors", ok1, 1, 0, 8);
    expect_fail("trunc_data.safetensors", "t.w", "beyond");
    /* Not JSON / not an object. */
    write_raw("badjson.safetensors", "{\"t.w\": {\"dtype\": ", 1, 0, 16);
    expect_fail("badjson.safetensors", "JSON", NULL);
    write_raw("array.safetensors", "[1, 2, 3]", 1, 0, 0);
    expect_fail("array.safetensors", "object", NULL);
    /* Unknown dtype. */
    write_raw("dtype.safetensors", "{\"t.q\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 1, 0, 4);
    expect_fail("dtype.safetensors", "t.q", "I8");
    write_raw("nodtype.safetensors", "{\"t.q\":{\"shape\":[4],\"data_offsets\":[0,4]}}", 1, 0, 4);
    expect_fail("nodtype.safetensors", "t.q", "dtype");
    /* Shape x size != range. */
    write_raw("size.safetensors", "{\"t.s\":{\"dtype\":\"F16\",\"shape\":[3,2],\"data_offsets\":[0,16]}}", 1, 0, 16);
    expect_fail("size.safetensors", "t.s", "12");
    /* Bad shape entries. */
    write_raw("negshape.safetensors", "{\"t.n\":{\"dtype\":\"F32\",\"shape\":[-1,4],\"data_offsets\":[0,16]}}", 1, 0, 16);
    expect_fail("negshape.safetensors", "t.n", "shape");
    write_raw("strshape.safetensors", "{\"t.n\":{\"dtype\":\"F32\",\"shape\":\"4\",\"data_offsets\":[0,16]}}", 1, 0, 16);
    expect_fail("strshape.safetensors", "t.n", "shape");
    /* Range beyond the file. */
    write_raw("beyond.safetensors", "{\"t.b\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[16,48]}}", 1, 0, 32);
    expect_fail("beyond.safetensors", "t.b", "beyond");
    /* begin > end, offsets malformed. */
    write_raw("order.safetensors", "{\"t.o\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 1, 0, 16);
    expect_fail("order.safetensors", "t.o", "begin");
    write_raw("offs.safetensors", "{\"t.o\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 1, 0, 16);
    expect_fail("offs.safetensors", "t.o", "data_offsets");
    /* Overlapping ranges. */
    write_raw("overlap.safetensors",
              "{\"t.x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
              "\"t.y\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 1, 0, 24);
    expect_fail("overlap.safetensors", "t.x", "t.y");
    /* Duplicate keys. */
    write_raw("dup.safetensors",
              "{\"t.d\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
              "\"t.d\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 1, 0, 8);
    expect_fail("dup.safetensors", "t.d", NULL);
    /* Misaligned data section (header length not a multiple of 4 for F32). */
    write_raw("align.safetensors", "{\"t.a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} ", 0, 0, 4);
    expect_fail("align.safetensors", "t.a", "aligned");
    /* __metadata__ must be a string map. */
    write_raw("meta.safetensors", "{\"__metadata__\":{\"format\":1}}", 1, 0, 0);
    expect_fail("meta.safetensors", "__metadata__", "format");
    write_raw("meta_ok.safetensors", "{\"__metadata__\":{\"format\":\"pt\"}}", 1, 0, 0);
    path_of(path, sizeof path, "meta_ok.safetensors");
    st = NULL;
    CHECK_MSG(md_safetensors_open_file(&st, path, &err) == MD_OK, "%s", err.msg);
    if (st) CHECK(md_safetensors_count(st) == 0);
    md_safetensors_close(st);
}

static void test_writer_errors(void)
{
    char path[1200], tmp[1300];
    path_of(path, sizeof path, "w_err.safetensors");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    md_error err;
    md_safetensors_writer *w = NULL;
    int64_t shape[1] = {2};
    float v[4] = {0};
    CHECK(md_safetensors_writer_create(&w, path, &err) == MD_OK);
    CHECK(md_safetensors_writer_put(w, v, 4, &err) == MD_ERR); /* before begin */
    CHECK(md_safetensors_writer_declare(w, "x", MD_DTYPE_F32, 1, shape, &err) == MD_OK);
    CHECK(md_safetensors_writer_begin(w, &err) == MD_OK);
    CHECK(md_safetensors_writer_declare(w, "y", MD_DTYPE_F32, 1, shape, &err) == MD_ERR);
    CHECK(md_safetensors_writer_put(w, v, 16, &err) == MD_ERR); /* more than declared */
    CHECK(md_safetensors_writer_put(w, v, 4, &err) == MD_OK);
    CHECK(md_safetensors_writer_finish(w, &err) == MD_ERR); /* 4 of 8 bytes */
    CHECK_MSG(strstr(err.msg, "w_err.safetensors") != NULL, "%s", err.msg);
    CHECK(access(path, F_OK) != 0 && access(tmp, F_OK) != 0);
    /* Abort removes the temporary file. */
    CHECK(md_safetensors_writer_create(&w, path, &err) == MD_OK);
    CHECK(md_safetensors_writer_declare(w, "x", MD_DTYPE_F32, 1, shape, &err) == MD_OK);
    CHECK(md_safetensors_writer_begin(w, &err) == MD_OK);
    CHECK(access(tmp, F_OK) == 0);
    md_safetensors_writer_abort(w);
    CHECK(access(tmp, F_OK) != 0 && access(path, F_OK) != 0);
    md_safetensors_writer_abort(NULL);
    /* Unwritable location. */
    CHECK(md_safetensors_writer_create(&w, "/nonexistent-dir/x.safetensors", &err) == MD_OK);
    CHECK(md_safetensors_writer_begin(w, &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "/nonexistent-dir/x.safetensors") != NULL, "%s", err.msg);
    md_safetensors_writer_abort(w);
}

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "%s/test_safetensors.%d", tu_tmpdir(), (int)getpid());
    mkdir(g_dir, 0777);
    test_roundtrip();
    test_sharded();
    test_bad_inputs();
    test_writer_errors();
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (tu_failures == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    TEST_MAIN_END();
}
