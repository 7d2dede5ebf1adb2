/* fuzz_job.c — the job YAML parser and its schema checks (types, ranges,
 * allowed values, names, nesting and document limits), without touching the
 * file system (paths are not checked; the kinds' model-loading validate
 * hooks are not run). A parsed job serialises (md_job_to_yaml) to text that
 * parses back to the same text. */
#include "fuzz_common.h"
#include "mechdiff/job.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20)) return 0; /* larger job files are refused before parsing */
    char *text = fuzz_text(data, size);
    md_job *job = NULL;
    md_error err;
    md_error_clear(&err);
    int rc = md_job_parse_string(text, "fuzz.yaml", "/nonexistent", 0, &job, &err);
    free(text);
    if (rc != MD_OK) {
        if (!err.msg[0] || job) abort();
        return 0;
    }
    char *y = md_job_to_yaml(job, 0);
    md_job *again = NULL;
    if (!y || md_job_parse_string(y, "<round trip>", "/nonexistent", 0, &again, &err) != MD_OK) {
        fprintf(stderr, "round trip failed: %s\n%s\n", err.msg, y ? y : "(null)");
        abort();
    }
    char *y2 = md_job_to_yaml(again, 0);
    if (!y2 || strcmp(y, y2) != 0) abort();
    free(y);
    free(y2);
    md_job_free(again);
    md_job_free(job);
    return 0;
}
