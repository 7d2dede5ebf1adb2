/* fuzz_h5bytes.c — the readers of a results file on files damaged below the
 * HDF5 API: the bytes of one of the valid files mechdiff's writer makes
 * (fuzz_results_base.h: finished, stopped, a part, mixed numerics; the
 * input's first byte picks it) flipped, set, zeroed in ranges, cut short,
 * extended, swapped or copied over each other, 8-byte fields set to
 * addresses outside the file (fuzz_bytes.h: superblock, object headers,
 * B-trees, heaps and chunk data alike). The damaged file is read by every
 * reader fuzz_results drives (fuzz_results_read.h: verify, the resume's
 * readers and its snapshot, merge's reader, status) with the same checks:
 * one line naming the file for a refusal, every verify line naming it, no
 * HDF5 identifier left open, the file unchanged and no .tmp left, a file
 * verify finds valid readable by status.
 *
 * libhdf5 itself crashes or loops on some damaged files (tests/fuzz/README.md,
 * "known libhdf5 crashes"): a campaign runs with -fork=1 -ignore_crashes=1
 * and sorts its crashes by their stacks; only a crash, leak or failed check
 * in mechdiff's own code is a finding. FUZZ_RESULTS_KEEP=FILE keeps the
 * damaged file of an input. */
#include "fuzz_bytes.h"
#include "fuzz_results_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char ref_path[600];
    if (!bases.image[0]) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        rb_load(&bases, fuzz_dir());
        snprintf(ref_path, sizeof ref_path, "%s/base%d.h5", fuzz_dir(), RB_PART);
    }
    fz z = {data, size};
    unsigned head = fz_u8(&z);
    int b = (int)(head % RB_COUNT);
    size_t len;
    uint8_t *img = fb_damage_image(&z, bases.image[b], bases.len[b], 16, &len);
    char path[600];
    snprintf(path, sizeof path, "%s/results.h5", fuzz_dir());
    fuzz_write("results.h5", img, len);
    const char *keep = getenv("FUZZ_RESULTS_KEEP");
    FILE *kf = keep ? fopen(keep, "wb") : NULL;
    if (kf) fwrite(img, 1, len, kf), fclose(kf);
    fr_read_all(path, img, len, ref_path, head >> 2 & 1);
    free(img);
    return 0;
}
