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
    return fr_run_input(data, size, fb_damage_image, 16);
}
