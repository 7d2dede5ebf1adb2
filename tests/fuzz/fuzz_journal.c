/* fuzz_journal.c — replay of a results file's journal sidecar (OUT.h5.journal,
 * read by `mechdiff status`, resume and merge). The input is the journal;
 * before it is written the harness makes its CRCs right (the header's, of
 * either format, then each whole record's), so that the replay gets past
 * them to the framing. The replay returns MD_OK and calls back exactly the
 * records the harness framed, in order and with their lengths; any tail
 * after them (or no valid header) reads as torn. */
#include "fuzz_common.h"
#include "mechdiff/journal.h"
#include "mechdiff/plan.h"

typedef struct {
    uint64_t len[4096];
    int64_t n, seen;
} framing;

static int on_record(void *arg, double time, const void *payload, size_t len, md_error *err)
{
    (void)time, (void)payload, (void)err;
    framing *f = arg;
    if (f->seen >= f->n || len != f->len[f->seen++]) abort();
    return MD_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *j = malloc(size ? size : 1);
    static framing f;
    f.n = f.seen = 0;
    if (!j) abort();
    memcpy(j, data, size);
    size_t off = 0, hs = size >= 64 && !memcmp(j, "MDJRNL02", 8) ? 64 : 0;
    if (!hs && size >= 24 && !memcmp(j, "MDJRNL01", 8)) hs = 24;
    uint32_t crc = hs ? md_crc32(0, j, hs - 8) : 0;
    if (hs) memcpy(j + hs - 8, &crc, 4);
    for (off = hs; hs && size - off >= 24; f.n++) {
        if (f.n == 4096) return free(j), 0; /* more records than the harness keeps lengths of */
        memcpy(&f.len[f.n], j + off + 8, 8);
        if (f.len[f.n] > size - off - 24 || memcmp(j + off, "MDRC", 4)) break;
        crc = md_crc32(md_crc32(0, j + off + 8, 16), j + off + 24, (size_t)f.len[f.n]);
        memcpy(j + off + 4, &crc, 4);
        off += 24 + (size_t)f.len[f.n];
    }
    const char *path = fuzz_write("out.h5.journal", j, size);
    free(j);
    uint64_t gen;
    int64_t n = -1;
    int torn = -1;
    md_error err;
    if (md_journal_replay(path, &gen, on_record, &f, &n, &torn, &err) != MD_OK) abort();
    if (n != f.n || f.seen != f.n || torn != (!hs || off != size)) abort();
    return 0;
}
