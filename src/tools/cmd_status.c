/* cmd_status.c — `mechdiff status OUT.h5`: progress of a running, stopped or
 * finished job: done/total per experiment and stage from the last snapshot
 * (OUT.h5 is only replaced atomically, so it can be read while the job runs)
 * plus the finished units in the journal since then (OUT.h5.journal); the
 * share of the work done, by the kinds' unit costs (progress.h, "ETA by
 * cost"; each stage's estimate_cost for the job stored in the file, spread
 * evenly over its units), and an ETA at the cost rate of the journal. */
#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "mechdiff/h5out.h"
#include "mechdiff/inflight.h"
#include "mechdiff/journal.h"
#include "mechdiff/job.h"
#include "mechdiff/plan.h"
#include "mechdiff/progress.h"
#include "mechdiff/runner.h"
#include "tools/cmds.h"

#define MAX_ROWS 256

typedef struct stage_row {
    char exp[128];
    int exp_index, stage;
    int64_t n, done, journal;
    double cost;               /* the stage's estimated cost (0 = not known) */
    uint8_t *flags;            /* [n] (owned) */
} stage_row;

typedef struct status_ctx {
    stage_row rows[MAX_ROWS];
    int n_rows;
    double t_first, t_last;
    int64_t records;
    double cost_first, cost_sum; /* cost of the journal's first record, of all */
} status_ctx;

static herr_t on_stage(hid_t g, const char *name, const H5L_info_t *info, void *arg)
{
    (void)info;
    status_ctx *s = arg;
    if (strncmp(name, "stage", 5) != 0 || s->n_rows == MAX_ROWS) return 0;
    stage_row *r = &s->rows[s->n_rows];
    char path[300];
    snprintf(path, sizeof path, "%s/done", name);
    hid_t d = H5Dopen2(g, path, H5P_DEFAULT);
    if (d < 0) return 0;
    hid_t sp = H5Dget_space(d);
    hsize_t n = 0;
    H5Sget_simple_extent_dims(sp, &n, NULL);
    H5Sclose(sp);
    r->flags = calloc(n ? n : 1, 1);
    if (r->flags) H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, r->flags);
    H5Dclose(d);
    r->n = (int64_t)n;
    for (hsize_t i = 0; r->flags && i < n; i++) r->done += r->flags[i];
    r->stage = atoi(name + 5);
    hid_t sg = H5Gopen2(g, name, H5P_DEFAULT);
    int64_t idx = -1;
    if (H5Aexists(sg, "experiment_index") > 0) {
        hid_t a = H5Aopen(sg, "experiment_index", H5P_DEFAULT);
        H5Aread(a, H5T_NATIVE_INT64, &idx);
        H5Aclose(a);
    }
    H5Gclose(sg);
    r->exp_index = (int)idx;
    s->n_rows++;
    return 0;
}

static herr_t on_exp(hid_t g, const char *name, const H5L_info_t *info, void *arg)
{
    (void)info;
    status_ctx *s = arg;
    hid_t eg = H5Gopen2(g, name, H5P_DEFAULT);
    int first = s->n_rows;
    H5Literate(eg, H5_INDEX_NAME, H5_ITER_INC, NULL, on_stage, s);
    for (int i = first; i < s->n_rows; i++) snprintf(s->rows[i].exp, sizeof s->rows[i].exp, "%s", name);
    H5Gclose(eg);
    return 0;
}

static int on_record(void *arg, double time, const void *payload, size_t len, md_error *err)
{
    (void)err;
    status_ctx *s = arg;
    md_unit_hdr hdr;
    if (len < sizeof hdr) return MD_OK;
    memcpy(&hdr, payload, sizeof hdr);
    if (!s->records++) s->t_first = time;
    s->t_last = time;
    for (int i = 0; i < s->n_rows; i++) {
        stage_row *r = &s->rows[i];
        if (r->exp_index == (int)hdr.exp && r->stage == (int)hdr.stage && hdr.unit >= 0 && hdr.unit < r->n &&
            !r->flags[hdr.unit]) {
            r->flags[hdr.unit] = 1;
            r->journal++;
            if (s->records == 1) s->cost_first = r->cost / (double)r->n;
            s->cost_sum += r->cost / (double)r->n;
        }
    }
    return MD_OK;
}

/* Every row's cost from its kind's estimate_cost for the job stored in the
 * file (job_yaml); 1 when every row got one (the kinds read the job's
 * tokenizers and datasets, which may be gone), else 0. */
static int stage_costs(status_ctx *s, const char *job_yaml)
{
    md_job *job = NULL;
    void **opts = NULL;
    md_error err;
    int all = job_yaml && s->n_rows > 0;
    if (!all || md_job_parse_string(job_yaml, "<job stored in the results file>", NULL, 0, &job, &err) != MD_OK ||
        md_kind_bind_opts(job, &opts, &err) != MD_OK) {
        md_job_free(job);
        return 0;
    }
    for (int i = 0; i < s->n_rows; i++) {
        stage_row *r = &s->rows[i];
        if (r->exp_index < 0 || r->exp_index >= job->n_exps || !job->exps[r->exp_index].impl->estimate_cost) {
            all = 0;
            continue;
        }
        md_kind_ctx ctx = md_kind_ctx_of(job, opts, r->exp_index);
        r->cost = job->exps[r->exp_index].impl->estimate_cost(&ctx, r->stage);
        all &= r->cost > 0;
    }
    md_kind_free_opts(job, opts);
    md_job_free(job);
    return all;
}

/* "  work ...: 43.2% done" and, with a journal rate, the ETA at it. */
static void print_work(const status_ctx *s, int with_rate)
{
    double done = 0, total = 0;
    for (int i = 0; i < s->n_rows; i++) {
        const stage_row *r = &s->rows[i];
        total += r->cost;
        if (r->n) done += r->cost * (double)(r->done + r->journal) / (double)r->n;
    }
    printf("  work (the kinds' unit costs, stages planned so far): %.3g of %.3g token passes, %.1f%% done", done, total,
           total > 0 ? 100 * done / total : 0.0);
    double rate = with_rate ? (s->cost_sum - s->cost_first) / (s->t_last - s->t_first + 1e-9) : 0;
    if (rate > 0 && total > done) {
        char eta[32];
        md_progress_duration((total - done) / rate, eta, sizeof eta);
        printf(", ETA %s at the journal's cost rate", eta);
    }
    printf("\n");
}

static void usage(FILE *f)
{
    fprintf(f, "usage: mechdiff status OUT.h5\n\n"
               "Shows done/total units per experiment and stage, the units finished since the last\n"
               "snapshot (from OUT.h5.journal), the rate, the share of the work done (the kinds' unit\n"
               "costs) with an ETA at the journal's rate, and whether the job finished. Works while the\n"
               "job runs, after it stopped or died (then also the units each rank held when it stopped).\n"
               "Exit status: 0 finished, 3 not finished, 1 error.\n");
}

int cmd_status(int argc, char **argv)
{
    if (cmd_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (argc != 2 || cmd_reject_options("status", argc, argv)) {
        usage(stderr);
        return 2;
    }
    const char *path = argv[1];
    md_h5info info;
    md_error err;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "mechdiff status: %s: %s\n", path,
                errno == ENOENT ? "no such file (no run has written this output yet)" : strerror(errno));
        return 1;
    }
    if (!S_ISREG(sb.st_mode)) {
        fprintf(stderr, "mechdiff status: %s: %s, not a results file\n", path,
                S_ISDIR(sb.st_mode) ? "a folder" : "a special file");
        return 1;
    }
    if (md_h5out_info(path, &info, &err) != MD_OK) {
        fprintf(stderr, "mechdiff status: %s\n", err.msg);
        return 1;
    }
    status_ctx *s = calloc(1, sizeof *s);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_file_locking(fapl, 0, 1);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (!s || f < 0) {
        fprintf(stderr, "mechdiff status: %s: cannot open\n", path);
        free(s);
        md_h5out_info_free(&info);
        return 1;
    }
    if (H5Lexists(f, "/completion", H5P_DEFAULT) > 0) {
        hid_t g = H5Gopen2(f, "/completion", H5P_DEFAULT);
        H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, on_exp, s);
        H5Gclose(g);
    }
    H5Fclose(f);
    int costed = stage_costs(s, info.job_yaml);
    char jpath[4200];
    md_run_journal_path(path, jpath, sizeof jpath);
    uint64_t jgen = 0;
    int64_t n_rec = 0;
    int torn = 0;
    md_journal_replay(jpath, &jgen, NULL, NULL, &n_rec, &torn, &err);
    int journal_current = n_rec > 0 && jgen == info.generation;
    if (journal_current) md_journal_replay(jpath, &jgen, on_record, s, &n_rec, &torn, &err);

    char *name = info.job_yaml ? strstr(info.job_yaml, "\nname: ") : NULL;
    printf("%s: job %.*s (hash %.12s)", path, name ? (int)strcspn(name + 7, "\n") : 1, name ? name + 7 : "?",
           info.job_sha256);
    if (info.part_count > 0) printf(", part %d/%d", info.part_index, info.part_count);
    printf(", snapshot %llu, %s\n", (unsigned long long)info.generation,
           info.finished ? "FINISHED" : "not finished");
    int64_t tot = 0, done = 0;
    for (int i = 0; i < s->n_rows; i++) {
        stage_row *r = &s->rows[i];
        int64_t d = r->done + r->journal;
        printf("  %-24s stage %d: %10lld / %-10lld %5.1f%%", r->exp, r->stage, (long long)d, (long long)r->n,
               r->n ? 100.0 * (double)d / (double)r->n : 0.0);
        if (r->journal) printf("  (%lld in the journal)", (long long)r->journal);
        printf("\n");
        tot += r->n;
        done += d;
    }
    if (journal_current && s->records > 1) {
        double now = (double)time(NULL);
        printf("  journal: %lld units since the last snapshot, %.1f units/s, last %.0f s ago\n",
               (long long)s->records, (double)(s->records - 1) / (s->t_last - s->t_first + 1e-9), now > s->t_last ? now - s->t_last : 0.0);
    }
    printf("  total (stages planned so far): %lld / %lld units\n", (long long)done, (long long)tot);
    if (costed) print_work(s, journal_current && s->records > 1 && !info.finished);
    for (int i = 0; i < s->n_rows; i++) free(s->rows[i].flags);
    char *left = info.finished ? NULL : md_inflight_read(path);
    if (left) {
        printf("  in flight when the last run stopped (a rank that died was computing these):\n");
        for (char *line = strtok(left, "\n"); line; line = strtok(NULL, "\n")) printf("    %s\n", line);
        free(left);
    }
    int rc = info.finished ? 0 : 3;
    free(s);
    md_h5out_info_free(&info);
    return rc;
}
