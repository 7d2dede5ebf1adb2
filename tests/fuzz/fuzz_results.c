/* fuzz_results.c — the readers of a results file (OUT.h5) on hand-edited
 * files. The input picks one of the valid files mechdiff's writer makes
 * (fuzz_results_base.h: finished, stopped, a part, mixed numerics), then a
 * series of edits made through the HDF5 API on an in-memory copy
 * (fuzz_results_edit.h); the edited image is written to results.h5 and
 * read by:
 *   - `mechdiff verify`'s whole check (md_verify_file);
 *   - a resume onto it (what md_coord_recover and plan_stage call):
 *     md_h5out_info, the identity and layout, md_prov_check_resume (with
 *     and without --allow-mixed-numerics), then per stage the plan of the
 *     job, md_reader_done, md_reader_check_plan and, for a stage all done,
 *     selftest's finish_stage through the reader; then the snapshot the
 *     run would write (md_h5out_begin on a copy, md_h5out_done, define,
 *     apply one unit, discard);
 *   - `mechdiff merge`'s reader against a valid part (md_reader_check_like
 *     both ways, md_reader_unit of each done unit applied to a copy);
 *   - `mechdiff status`'s md_h5out_read_stages.
 * Checks beyond the sanitizers: every line verify prints names the file
 * (one line per defect: no newline from the file's text), a refusal's
 * message names the file, the file's bytes are unchanged and no
 * results.h5.tmp is left, no HDF5 object is left open, and a file verify
 * finds no defect in can be read by status and merge's reader.
 * FUZZ_RESULTS_KEEP=FILE keeps a copy of the edited file (a finding's);
 * FUZZ_SHOW=1 prints the refusals. */
#include "fuzz_results_edit.h"
#include "fuzz_results_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fr_run_input(data, size, fz_edit_image, 48);
}
