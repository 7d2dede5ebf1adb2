/* cmd_merge.c — `mechdiff merge OUT.h5 PART.h5...`: combines the part files of
 * a job split over a Slurm array (`run --part i/n`) into one results file.
 * Checks that the parts belong to the same job (identity hash), that they are
 * parts 0..n-1 of one split, and that each part is complete; copies every
 * done unit's hyperslabs (from the stage's `regions`) into a copy of part 0,
 * written as a snapshot (tmp + rename) like `run` does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mechdiff/h5out.h"
#include "mechdiff/job.h"
#include "mechdiff/plan.h"
#include "tools/cmds.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: mechdiff merge OUT.h5 PART.h5...\n\n"
               "Combines the files of a job split over a Slurm array (`mechdiff run --part I/N`).\n"
               "All N parts must be given, belong to the same job and be complete. OUT.h5 is then a\n"
               "normal results file: if the job has later stages (direction experiments), run\n"
               "`mechdiff run JOB.yaml -o OUT.h5` to compute them (done units are skipped).\n");
}

int cmd_merge(int argc, char **argv)
{
    if (cmd_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (cmd_reject_options("merge", argc, argv)) {
        usage(stderr);
        return 2;
    }
    if (argc < 3)
        return cmd_usage_error("merge", usage, argc < 2 ? "no output and part files given" : "no part files given "
                               "(the outputs of `mechdiff run --part I/N`, all N of them)");
    const char *out = argv[1];
    int n_parts = argc - 2;
    char **parts = argv + 2;
    md_h5info *info = calloc((size_t)n_parts, sizeof *info);
    int *seen = calloc((size_t)n_parts, sizeof *seen);
    uint8_t *liked = calloc((size_t)n_parts, 1); /* part p checked against part 0 for this experiment */
    md_job *job = NULL;
    md_h5out *h = NULL;
    md_reader *ref = NULL; /* part 0, the datasets every part must have */
    md_result res;
    md_result_init(&res);
    md_error err;
    int rc = 1;
    if (!info || !seen || !liked) goto done;
    for (int p = 0; p < n_parts; p++) {
        if (cmd_check_results_path(parts[p], "", &err) != MD_OK) {
            fprintf(stderr, "mechdiff merge: %s\n", err.msg);
            goto done;
        }
        if (md_h5out_info(parts[p], &info[p], &err) != MD_OK) {
            cmd_explain_not_results(parts[p], "merge combines the outputs of `mechdiff run --part I/N`", &err);
            fprintf(stderr, "mechdiff merge: %s\n", err.msg);
            goto done;
        }
        const md_h5info *i = &info[p];
        if (strcmp(i->job_sha256, info[0].job_sha256) != 0) {
            fprintf(stderr, "mechdiff merge: %s is from a different job than %s (hash %.12s vs %.12s)\n", parts[p],
                    parts[0], i->job_sha256, info[0].job_sha256);
            goto done;
        }
        if (i->layout != MD_RESULTS_LAYOUT) {
            fprintf(stderr, "mechdiff merge: %s was written in results layout %d (mechdiff %s); this mechdiff writes "
                            "layout %d: merge the parts with the mechdiff that wrote them\n",
                    parts[p], i->layout, i->mechdiff_version, MD_RESULTS_LAYOUT);
            goto done;
        }
        if (i->part_count <= 0) {
            fprintf(stderr, "mechdiff merge: %s is the output of a whole job, not a part: merge combines the outputs "
                            "of `run --part I/N` (or of a job with runtime.array_count)\n", parts[p]);
            goto done;
        }
        if (i->part_count != n_parts) {
            fprintf(stderr, "mechdiff merge: %s is part %d of a job split into %d parts, but %d part files were "
                            "given: give all %d (the outputs of --part 0/%d .. %d/%d)\n",
                    parts[p], i->part_index, i->part_count, n_parts, i->part_count, i->part_count,
                    i->part_count - 1, i->part_count);
            goto done;
        }
        if (i->part_index < 0 || i->part_index >= n_parts) {
            fprintf(stderr, "mechdiff merge: %s says it is part %d of %d, which no part of a %d-way split is: the file "
                            "was edited; restore it from a copy\n", parts[p], i->part_index, i->part_count, n_parts);
            goto done;
        }
        if (seen[i->part_index]++) {
            fprintf(stderr, "mechdiff merge: %s is part %d/%d, which was given twice; give each part once\n",
                    parts[p], i->part_index, i->part_count);
            goto done;
        }
        if (!i->finished) {
            fprintf(stderr, "mechdiff merge: %s (part %d/%d) is not complete: run it again (it resumes)\n", parts[p],
                    i->part_index, i->part_count);
            goto done;
        }
    }
    if (md_job_parse_string(info[0].job_yaml, parts[0], NULL, 0, &job, &err) != MD_OK) {
        fprintf(stderr, "mechdiff merge: %s: its job: %s\n", parts[0], err.msg);
        goto done;
    }
    if (md_h5out_begin(&h, out, parts[0], NULL, &err) != MD_OK) goto fail;
    int64_t copied = 0, missing = 0;
    for (int e = 0; e < job->n_exps; e++) {
        const char *exp = job->exps[e].name;
        md_reader_close(ref);
        ref = NULL;
        if (md_reader_open(&ref, parts[0], exp, &err) != MD_OK) goto fail;
        memset(liked, 0, (size_t)n_parts);
        for (int stage = 0;; stage++) {
            int64_t n = 0;
            const uint8_t *done = md_h5out_done(h, exp, stage, &n, &err);
            if (!done) break;
            for (int p = 1; p < n_parts; p++) {
                md_reader *rd = NULL;
                uint8_t *pd = NULL;
                int64_t pn = 0;
                if (md_reader_open(&rd, parts[p], exp, &err) != MD_OK) goto fail;
                int ok = md_reader_done(rd, stage, &pd, &pn, &err) == MD_OK;
                if (ok && pd && pn != n)
                    ok = md_error_set(&err, "%s: %s stage %d has %lld units, part 0 has %lld", parts[p], exp, stage,
                                      (long long)pn, (long long)n) == MD_OK;
                /* the experiment's datasets, not the stage's: once per part (at its first stage) */
                if (ok && pd && !liked[p]) ok = md_reader_check_like(rd, ref, &err) == MD_OK;
                liked[p] |= pd != NULL;
                if (!ok) {
                    md_reader_close(rd);
                    free(pd);
                    goto fail;
                }
                for (int64_t u = 0; pd && u < n; u++) {
                    if (!pd[u] || done[u]) continue;
                    size_t len;
                    const void *bytes;
                    if (md_reader_unit(rd, stage, u, &res, &err) != MD_OK ||
                        !(bytes = md_result_bytes(&res, &len)) ||
                        md_h5out_apply(h, exp, stage, u, bytes, len, &err) != MD_OK) {
                        md_reader_close(rd);
                        free(pd);
                        goto fail;
                    }
                    copied++;
                }
                md_reader_close(rd);
                free(pd);
            }
            for (int64_t u = 0; u < n; u++) missing += !done[u];
        }
    }
    if (md_h5out_set_part(h, -1, 0, &err) != MD_OK) goto fail;
    md_segment seg = {.id = -1, .start_time = (double)time(NULL), .end_time = (double)time(NULL),
                      .world_size = 1, .exit = "merged", .finished = 0};
    gethostname(seg.hostname, sizeof seg.hostname - 1);
    rc = md_h5out_commit(h, &seg, &err);
    h = NULL;
    if (rc != MD_OK) goto fail;
    printf("%s: merged %d parts (a copy of %s, then the %lld units of the other %d)\n", out, n_parts, parts[0],
           (long long)copied, n_parts - 1);
    if (missing) printf("  %lld units of the planned stages are missing (bug?)\n", (long long)missing);
    printf("  to finish (later stages, the finished mark): mechdiff run JOB.yaml -o %s\n", out);
    rc = missing ? 1 : 0;
    goto done;
fail:
    fprintf(stderr, "mechdiff merge: %s\n", err.msg);
    rc = 1;
done:
    md_reader_close(ref);
    md_h5out_discard(h);
    md_result_free(&res);
    md_job_free(job);
    for (int p = 0; info && p < n_parts; p++) md_h5out_info_free(&info[p]);
    free(info);
    free(seen);
    free(liked);
    return rc;
}
