/* test_journal.c — the result journal: records round-trip, a torn tail is
 * detected and dropped, a corrupt record stops replay, generations and the
 * mark of the published file are kept (and journals of the older header
 * format read); and the result wire format checks pieces against the plan. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mechdiff/journal.h"
#include "mechdiff/plan.h"
#include "testutil.h"

typedef struct seen {
    int n;
    int64_t sum;
} seen;

static int on_rec(void *arg, double time, const void *payload, size_t len, md_error *err)
{
    (void)err;
    seen *s = arg;
    int64_t v;
    memcpy(&v, payload, sizeof v);
    CHECK(len == 100 && time == (double)v);
    s->n++;
    s->sum += v;
    return MD_OK;
}

/* The header's mark (the published file a journal extends) round-trips;
 * a file matches its mark until written; a journal of the older format
 * (MDJRNL01, 24-byte header) is read with an unknown mark. */
static void check_marks(const char *path, md_error *err)
{
    char file[700], link[700];
    snprintf(file, sizeof file, "%s.marked", path);
    snprintf(link, sizeof link, "%s.link", path);
    FILE *f = fopen(file, "w");
    fputs("version 1", f);
    fclose(f);
    md_snapfile_mark m, got, zero = {0};
    CHECK(md_snapfile_mark_of(file, &m) == MD_OK && m.size == 9 && m.ino != 0);
    CHECK(md_snapfile_mark_matches(file, &m));
    CHECK(!md_snapfile_mark_matches(file, &zero)); /* unknown matches nothing */
    unlink(link);
    CHECK(symlink(file, link) == 0 && !md_snapfile_mark_matches(link, &m) && md_snapfile_mark_of(link, &got) == MD_ERR);
    md_journal *j = NULL;
    uint64_t gen = 0;
    CHECK(md_journal_create(&j, path, 12, &m, err) == MD_OK);
    md_journal_close(j);
    CHECK(md_journal_head(path, &gen, &got) == MD_OK && gen == 12 && memcmp(&got, &m, sizeof m) == 0);
    f = fopen(file, "a"); /* written since: the same inode, another size and mtime */
    fputs(", edited", f);
    fclose(f);
    CHECK(!md_snapfile_mark_matches(file, &got));
    CHECK(md_journal_head(link, &gen, &got) == MD_ERR && gen == 0); /* not a journal (and a link) */

    unsigned char h[24] = "MDJRNL01", rec[24 + 100] = {0};
    uint64_t g1 = 5, len = 100;
    int64_t v = 7, n = 0;
    double t = 7.0;
    memcpy(h + 8, &g1, 8);
    uint32_t crc = md_crc32(0, h, 16), magic = 0x4352444du;
    memcpy(h + 16, &crc, 4);
    memcpy(rec, &magic, 4);
    memcpy(rec + 8, &len, 8);
    memcpy(rec + 16, &t, 8);
    memcpy(rec + 24, &v, 8);
    crc = md_crc32(0, rec + 8, 16 + 100);
    memcpy(rec + 4, &crc, 4);
    f = fopen(path, "wb");
    fwrite(h, 1, sizeof h, f);
    fwrite(rec, 1, sizeof rec, f);
    fclose(f);
    CHECK(md_journal_head(path, &gen, &got) == MD_OK && gen == 5 && memcmp(&got, &zero, sizeof zero) == 0);
    seen s = {0};
    int torn = 0;
    CHECK(md_journal_replay(path, &gen, on_rec, &s, &n, &torn, err) == MD_OK && gen == 5 && n == 1 && !torn &&
          s.sum == 7);
    unlink(path);
    unlink(link);
    unlink(file);
}

int main(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/test_journal.journal", tu_tmpdir());
    md_error err;
    md_journal *j = NULL;
    CHECK(md_journal_create(&j, path, 7, NULL, &err) == MD_OK);
    unsigned char rec[100] = {0};
    for (int64_t i = 0; i < 10; i++) {
        memcpy(rec, &i, sizeof i);
        CHECK(md_journal_append(j, (double)i, rec, sizeof rec, &err) == MD_OK);
        if (i == 5) CHECK(md_journal_sync(j, &err) == MD_OK);
    }
    CHECK(md_journal_pending(j) == 4);
    CHECK(md_journal_sync(j, &err) == MD_OK);
    md_journal_close(j);

    uint64_t gen = 0;
    int64_t n = 0;
    int torn = 0;
    seen s = {0};
    CHECK(md_journal_replay(path, &gen, on_rec, &s, &n, &torn, &err) == MD_OK);
    CHECK(gen == 7 && n == 10 && !torn && s.n == 10 && s.sum == 45);

    /* torn tail: cut the file in the middle of the last record */
    FILE *f = fopen(path, "r+");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    CHECK(truncate(path, size - 30) == 0);
    s = (seen){0};
    CHECK(md_journal_replay(path, &gen, on_rec, &s, &n, &torn, &err) == MD_OK);
    CHECK(n == 9 && torn && s.n == 9);

    /* a flipped byte in record 4's payload: replay stops before it */
    f = fopen(path, "r+");
    fseek(f, 64 + 3 * 124 + 24 + 50, SEEK_SET); /* header 64, records 24 + 100 */
    fputc(0x55, f);
    fclose(f);
    s = (seen){0};
    CHECK(md_journal_replay(path, &gen, on_rec, &s, &n, &torn, &err) == MD_OK);
    CHECK(n == 3 && torn);

    /* record 3's length field garbled to 256 GiB (fuzz_journal): torn there,
     * never allocated (it was a failed 256 GiB realloc, "out of memory") */
    f = fopen(path, "r+");
    uint64_t huge = (uint64_t)1 << 38;
    fseek(f, 64 + 2 * 124 + 8, SEEK_SET);
    fwrite(&huge, sizeof huge, 1, f);
    fclose(f);
    s = (seen){0};
    CHECK(md_journal_replay(path, &gen, on_rec, &s, &n, &torn, &err) == MD_OK);
    CHECK(n == 2 && torn && s.n == 2);

    /* missing journal: generation 0, nothing */
    unlink(path);
    CHECK(md_journal_replay(path, &gen, on_rec, &s, &n, &torn, &err) == MD_OK);
    CHECK(gen == 0 && n == 0);

    /* rotation: the journal just folded becomes prev (records and generation
     * kept), a new empty one of the next generation starts; with no journal
     * on disk, prev says "generation-1, no records" */
    char prev[700];
    snprintf(prev, sizeof prev, "%s.prev", path);
    md_journal *j2 = NULL;
    CHECK(md_journal_create(&j2, path, 8, NULL, &err) == MD_OK);
    unsigned char rec2[100] = {0};
    int64_t v2 = 3;
    memcpy(rec2, &v2, sizeof v2);
    CHECK(md_journal_append(j2, 3.0, rec2, sizeof rec2, &err) == MD_OK && md_journal_sync(j2, &err) == MD_OK);
    CHECK(md_journal_rotate(&j2, path, prev, 9, NULL, NULL, &err) == MD_OK && j2);
    s = (seen){0};
    CHECK(md_journal_replay(prev, &gen, on_rec, &s, &n, &torn, &err) == MD_OK);
    CHECK(gen == 8 && n == 1 && s.sum == 3 && !torn);
    CHECK(md_journal_replay(path, &gen, NULL, NULL, &n, &torn, &err) == MD_OK && gen == 9 && n == 0);
    md_journal_close(j2);
    j2 = NULL;
    unlink(path);
    CHECK(md_journal_rotate(&j2, path, prev, 10, NULL, NULL, &err) == MD_OK);
    CHECK(md_journal_replay(prev, &gen, NULL, NULL, &n, &torn, &err) == MD_OK && gen == 9 && n == 0 && !torn);
    md_journal_close(j2);
    unlink(path);
    check_marks(path, &err);

    /* wire format and plan checks */
    md_plan plan;
    md_plan_init(&plan, 0);
    md_dset_decl d = {.path = "a/x", .type = MD_H5_F32, .rank = 2, .dims = {4, 3}, .dim_names = {"pair", "layer"}};
    md_dset_decl s2 = {.path = "names", .type = MD_H5_STR, .rank = 1, .dims = {4}, .dim_names = {"pair"}};
    CHECK(md_plan_dataset(&plan, &d, &err) == MD_OK && md_plan_dataset(&plan, &s2, &err) == MD_OK);
    CHECK(md_plan_dataset(&plan, &d, &err) == MD_ERR); /* twice */
    md_result r;
    md_result_init(&r);
    float v[3] = {1, 2, 3};
    int64_t off[2] = {1, 0}, cnt[2] = {1, 3}, o1 = 2, c1 = 2;
    CHECK(md_result_put(&r, "a/x", 2, off, cnt, v, sizeof v, &err) == MD_OK);
    CHECK(md_result_put(&r, "names", 1, &o1, &c1, "ab\0cd", 6, &err) == MD_OK);
    int64_t off_bad[2] = {3, 1};
    CHECK(md_result_put(&r, "a/x", 2, off_bad, cnt, v, sizeof v, &err) == MD_OK); /* out of bounds */
    size_t len, pos = 0;
    const void *b = md_result_bytes(&r, &len);
    md_piece pc;
    CHECK(md_result_next(b, len, &pos, &pc, &err) == 1 && md_piece_check(&pc, plan.dsets, plan.n_dsets, &err));
    CHECK(md_result_next(b, len, &pos, &pc, &err) == 1 && md_piece_check(&pc, plan.dsets, plan.n_dsets, &err));
    CHECK(md_result_next(b, len, &pos, &pc, &err) == 1 && !md_piece_check(&pc, plan.dsets, plan.n_dsets, &err));
    CHECK(strstr(err.msg, "dimension 1 (layer)") != NULL);
    CHECK(md_result_next(b, len, &pos, &pc, &err) == 0);
    CHECK(md_result_next(b, len - 3, &(size_t){4}, &pc, &err) == 1); /* first piece still whole */
    md_result_free(&r);
    md_plan_free(&plan);
    CHECK(md_crc32(0, "123456789", 9) == 0xcbf43926u);
    TEST_MAIN_END();
}
