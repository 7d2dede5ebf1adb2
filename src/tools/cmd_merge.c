/* cmd_merge.c — `mechdiff merge OUT.h5 PART.h5...`: combines the part files of
 * a job split over a Slurm array (`run --part i/n`) into one results file.
 * Checks that the parts belong to the same job (identity hash), that they are
 * parts 0..n-1 of one split, and that each part is complete; copies every
 * done unit's hyperslabs (from the stage's `regions`) into a copy of part 0,
 * written as a snapshot (tmp + rename) like `run` does. Each stage's record
 * of its declared datasets is part 0's, or the first part's that has one
 * when part 0 has none; parts whose records differ are refused. Each part
 * is opened once when there are at most 256 and the descriptor limit
 * (RLIMIT_NOFILE) leaves room for all of them; else each part's file is
 * open only while it is read (a job may be split into up to 10^6 parts). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

/* What merge holds while it runs (owned by cmd_merge). parts[0], the first
 * part file given, is the base: the merged file starts as a copy of it and
 * the others are checked against it. */
typedef struct merge {
    char **parts;     /* [n_parts] the part files (argv) */
    int n_parts;
    md_h5info *info;  /* [n_parts] each part's identity (owned) */
    md_reader **rd;   /* [n_parts] each part's reader while open, at the current experiment (owned) */
    const char *exp;  /* the current experiment */
    int keep_open;    /* 1: every part stays open once opened; 0: only parts[0] (part_release) */
    uint8_t *liked;   /* [n_parts] part p checked against parts[0] for the current experiment */
    md_h5out *h;      /* the merged snapshot (owned until committed) */
    md_result res;    /* one unit's encoded result (scratch) */
    int64_t copied;   /* units copied from the parts after the first */
    int64_t missing;  /* units of the planned stages no part holds */
} merge;

/* Part p's identity into m->info[p], checked: a results file of this
 * layout, from parts[0]'s job, one of the n_parts parts given once (seen
 * counts each part index), complete. */
static int check_part(merge *m, int p, int *seen, md_error *err)
{
    const char *path = m->parts[p];
    const md_h5info *i = &m->info[p], *first = &m->info[0];
    if (cmd_check_results_path(path, "", err) != MD_OK) return MD_ERR;
    if (md_h5out_info(path, &m->info[p], err) != MD_OK) {
        cmd_explain_not_results(path, "merge combines the outputs of `mechdiff run --part I/N`", err);
        return MD_ERR;
    }
    if (strcmp(i->job_sha256, first->job_sha256) != 0)
        return md_error_set(err, "%s is from a different job than %s (hash %.12s vs %.12s)", path, m->parts[0],
                            i->job_sha256, first->job_sha256);
    if (i->layout != MD_RESULTS_LAYOUT)
        return md_error_set(err, "%s was written in results layout %d (mechdiff %s); this mechdiff writes layout %d: "
                            "merge the parts with the mechdiff that wrote them", path, i->layout,
                            i->mechdiff_version, MD_RESULTS_LAYOUT);
    if (i->part_count <= 0)
        return md_error_set(err, "%s is the output of a whole job, not a part: merge combines the outputs of `run "
                            "--part I/N` (or of a job with runtime.array_count)", path);
    if (i->part_count != m->n_parts)
        return md_error_set(err, "%s is part %d of a job split into %d parts, but %d part files were given: give "
                            "all %d (the outputs of --part 0/%d .. %d/%d)", path, i->part_index, i->part_count,
                            m->n_parts, i->part_count, i->part_count, i->part_count - 1, i->part_count);
    if (i->part_index < 0 || i->part_index >= m->n_parts)
        return md_error_set(err, "%s says it is part %d of %d, which no part of a %d-way split is: the file was "
                            "edited; restore it from a copy", path, i->part_index, i->part_count, m->n_parts);
    if (seen[i->part_index]++)
        return md_error_set(err, "%s is part %d/%d, which was given twice; give each part once", path,
                            i->part_index, i->part_count);
    if (!i->finished)
        return md_error_set(err, "%s (part %d/%d) is not complete: run it again (it resumes)", path, i->part_index,
                            i->part_count);
    return MD_OK;
}

static void close_readers(merge *m)
{
    for (int p = 0; m->rd && p < m->n_parts; p++) {
        md_reader_close(m->rd[p]);
        m->rd[p] = NULL;
    }
}

/* The most part files kept open at once: each open HDF5 file holds its own
 * metadata cache. */
#define MERGE_KEEP_MAX 256

/* Whether all n_parts part files may stay open at once: at most
 * MERGE_KEEP_MAX, and a quarter of the soft descriptor limit (the rest:
 * standard streams, the merged file, HDF5 and the C library). */
static int may_keep_open(int n_parts)
{
    struct rlimit rl;
    if (n_parts > MERGE_KEEP_MAX || getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
    return rl.rlim_cur == RLIM_INFINITY || (rlim_t)n_parts <= rl.rlim_cur / 4;
}

/* Points every open part's reader at experiment exp (opening parts[0]) and
 * forgets which parts were checked. */
static int select_experiment(merge *m, const char *exp, md_error *err)
{
    memset(m->liked, 0, (size_t)m->n_parts);
    m->exp = exp;
    for (int p = 0; p < m->n_parts; p++)
        if (m->rd[p]) md_reader_select(m->rd[p], exp);
    return m->rd[0] ? MD_OK : md_reader_open(&m->rd[0], m->parts[0], exp, err);
}

/* Part p's reader at the current experiment in m->rd[p], opened when it is
 * not open. */
static int part_reader(merge *m, int p, md_error *err)
{
    return m->rd[p] ? MD_OK : md_reader_open(&m->rd[p], m->parts[p], m->exp, err);
}

/* Ends a read of part p: closes its file unless the parts stay open
 * (parts[0], the reference of every other, always does). */
static void part_release(merge *m, int p)
{
    if (p == 0 || m->keep_open) return;
    md_reader_close(m->rd[p]);
    m->rd[p] = NULL;
}

/* 1 when the records a[0..na) and b[0..nb) name the same datasets in the
 * same order. */
static int same_record(char *const *a, int na, char *const *b, int nb)
{
    if (na != nb) return 0;
    for (int i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0) return 0;
    return 1;
}

/* The declared-datasets record of exp's stage in the merged file: parts[0]'s
 * (already in the copy), else the first part's that has one (parts[0] was
 * written by a build before the record). Parts with different records
 * come from different jobs or builds: refused, naming both. */
static int merge_record(merge *m, const char *exp, int stage, md_error *err)
{
    char **ref = NULL, **names = NULL; /* owned */
    int n_ref = 0, n = 0, from = -1, rc = MD_OK;
    for (int p = 0; p < m->n_parts && rc == MD_OK; p++) {
        int got = part_reader(m, p, err) != MD_OK ? MD_ERR : md_reader_declared(m->rd[p], stage, &names, &n, err);
        part_release(m, p);
        if (got < 0) rc = MD_ERR;
        if (got <= 0) continue;
        if (from < 0) {
            ref = names, n_ref = n, from = p;
            continue;
        }
        if (!same_record(ref, n_ref, names, n))
            rc = md_error_set(err, "%s and %s hold different records of the datasets of experiment %s stage %d "
                              "(attribute 'datasets' of /completion/%s/stage%d: %d and %d names): the parts come "
                              "from different jobs or builds of mechdiff; run every part with one build",
                              m->parts[from], m->parts[p], exp, stage, exp, stage, n_ref, n);
        md_h5out_free_declared(names, n);
    }
    if (rc == MD_OK && from > 0) rc = md_h5out_set_declared(m->h, exp, stage, ref, n_ref, err);
    md_h5out_free_declared(ref, n_ref);
    return rc;
}

/* Copies part p's done units of exp's stage that the merged file lacks
 * (done: its n flags, updated as units are applied); checks at the part's
 * first stage that it has parts[0]'s datasets. */
static int copy_part_stage(merge *m, int p, const char *exp, int stage, const uint8_t *done, int64_t n,
                           md_error *err)
{
    uint8_t *pd = NULL; /* owned */
    int64_t pn = 0;
    int rc = part_reader(m, p, err);
    if (rc == MD_OK) rc = md_reader_done(m->rd[p], stage, &pd, &pn, err);
    if (rc == MD_OK && pd && pn != n)
        rc = md_error_set(err, "%s: %s stage %d has %lld units, part 0 has %lld", m->parts[p], exp, stage,
                          (long long)pn, (long long)n);
    /* the experiment's datasets, not the stage's: once per part (at its first stage) */
    if (rc == MD_OK && pd && !m->liked[p]) rc = md_reader_check_like(m->rd[p], m->rd[0], err);
    m->liked[p] |= pd != NULL;
    for (int64_t u = 0; rc == MD_OK && pd && u < n; u++) {
        if (!pd[u] || done[u]) continue;
        size_t len;
        const void *bytes;
        if (md_reader_unit(m->rd[p], stage, u, &m->res, err) != MD_OK || !(bytes = md_result_bytes(&m->res, &len)) ||
            md_h5out_apply(m->h, exp, stage, u, bytes, len, err) != MD_OK)
            rc = MD_ERR;
        else
            m->copied++;
    }
    part_release(m, p);
    free(pd);
    return rc;
}

/* Every stage of every experiment that the copy of parts[0] defines: its
 * record, then the other parts' units; counts the units none holds. */
static int merge_stages(merge *m, const md_job *job, md_error *err)
{
    for (int e = 0; e < job->n_exps; e++) {
        const char *exp = job->exps[e].name;
        if (select_experiment(m, exp, err) != MD_OK) return MD_ERR;
        for (int stage = 0;; stage++) {
            int64_t n = 0;
            const uint8_t *done = md_h5out_done(m->h, exp, stage, &n, err);
            if (!done) break;
            if (merge_record(m, exp, stage, err) != MD_OK) return MD_ERR;
            for (int p = 1; p < m->n_parts; p++)
                if (copy_part_stage(m, p, exp, stage, done, n, err) != MD_OK) return MD_ERR;
            for (int64_t u = 0; u < n; u++) m->missing += !done[u];
        }
    }
    return MD_OK;
}

/* Clears the part identity, records the merge as a segment and publishes
 * out; m->h is consumed. */
static int commit_merged(merge *m, md_error *err)
{
    md_h5out *h = m->h;
    m->h = NULL;
    if (md_h5out_set_part(h, -1, 0, err) != MD_OK) {
        md_h5out_discard(h);
        return MD_ERR;
    }
    md_segment seg = {.id = -1, .start_time = (double)time(NULL), .end_time = (double)time(NULL),
                      .world_size = 1, .exit = "merged", .finished = 0};
    gethostname(seg.hostname, sizeof seg.hostname - 1);
    return md_h5out_commit(h, &seg, err);
}

/* Checks the parts, copies parts[0] to out and the other parts' units into
 * it, publishes it: MD_OK or MD_ERR (err says why). */
static int merge_parts(merge *m, const char *out, md_error *err)
{
    md_job *job = NULL; /* owned */
    int *seen = calloc((size_t)m->n_parts, sizeof *seen); /* owned */
    int rc = seen ? MD_OK : md_error_set(err, "out of memory");
    for (int p = 0; p < m->n_parts && rc == MD_OK; p++) rc = check_part(m, p, seen, err);
    free(seen);
    if (rc == MD_OK && md_job_parse_string(m->info[0].job_yaml, m->parts[0], NULL, 0, &job, err) != MD_OK)
        rc = md_error_prefix(err, "%s: its job", m->parts[0]);
    if (rc == MD_OK) rc = md_h5out_begin(&m->h, out, m->parts[0], NULL, err);
    if (rc == MD_OK) rc = merge_stages(m, job, err);
    close_readers(m); /* before out is published: it may replace a part */
    if (rc == MD_OK) rc = commit_merged(m, err);
    md_job_free(job);
    return rc;
}

int cmd_merge(int argc, char **argv)
{
    int start = cmd_start_plain("merge", usage, argc, argv);
    if (start >= 0) return start;
    if (argc < 3)
        return cmd_usage_error("merge", usage, argc < 2 ? "no output and part files given" : "no part files given "
                               "(the outputs of `mechdiff run --part I/N`, all N of them)");
    const char *out = argv[1];
    merge m = {.parts = argv + 2, .n_parts = argc - 2, .keep_open = may_keep_open(argc - 2)};
    md_result_init(&m.res);
    m.info = calloc((size_t)m.n_parts, sizeof *m.info);
    m.rd = calloc((size_t)m.n_parts, sizeof *m.rd);
    m.liked = calloc((size_t)m.n_parts, 1);
    md_error err;
    int rc = m.info && m.rd && m.liked ? merge_parts(&m, out, &err) : md_error_set(&err, "out of memory");
    if (rc == MD_OK) {
        printf("%s: merged %d parts (a copy of %s, then the %lld units of the other %d)\n", out, m.n_parts,
               m.parts[0], (long long)m.copied, m.n_parts - 1);
        if (m.missing) printf("  %lld units of the planned stages are missing (bug?)\n", (long long)m.missing);
        printf("  to finish (later stages, the finished mark): mechdiff run JOB.yaml -o %s\n", out);
    } else {
        fprintf(stderr, "mechdiff merge: %s\n", err.msg);
    }
    close_readers(&m);
    for (int p = 0; m.info && p < m.n_parts; p++) md_h5out_info_free(&m.info[p]);
    md_h5out_discard(m.h);
    md_result_free(&m.res);
    free(m.info);
    free(m.rd);
    free(m.liked);
    return rc != MD_OK ? 1 : m.missing ? 1 : 0;
}
