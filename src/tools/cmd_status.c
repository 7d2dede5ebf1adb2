/* cmd_status.c — `mechdiff status OUT.h5`: progress of a running, stopped or
 * finished job: done/total per experiment and stage from the last snapshot
 * (OUT.h5 is only replaced atomically, so it can be read while the job runs)
 * plus the finished units in the journal since then (OUT.h5.journal); the
 * share of the work done, by the kinds' unit costs (progress.h, "ETA by
 * cost"; each stage's cost from its kind's estimate for the job stored in
 * the file, spread evenly over its units), and an ETA at the cost rate of
 * the journal. The done flags come from md_h5out_read_stages, the reader
 * the runner's resume uses too. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mechdiff/h5out.h"
#include "mechdiff/inflight.h"
#include "mechdiff/journal.h"
#include "mechdiff/job.h"
#include "mechdiff/outlock.h"
#include "mechdiff/plan.h"
#include "mechdiff/progress.h"
#include "mechdiff/runner.h"
#include "mechdiff/tokcache.h"
#include "tools/cmds.h"

/* A stage of the file and what status adds to it. */
typedef struct stage_row {
    md_h5stage *st;            /* the file's stage (points into status_ctx.stages; the journal adds done flags) */
    int64_t done, journal;     /* units done in the file, and since in the journal */
    double cost;               /* the stage's estimated cost (0 = not known) */
} stage_row;

typedef struct status_ctx {
    md_h5stage *stages;        /* the file's stages (owned; md_h5out_free_stages) */
    stage_row *rows;           /* [n_rows] (owned) */
    int n_rows;
    double t_first, t_last;
    int64_t records;
    double cost_first, cost_sum; /* cost of the journal's first record, of all */
} status_ctx;

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
        md_h5stage *st = r->st;
        if (st->exp_index == (int)hdr.exp && st->stage == (int)hdr.stage && hdr.unit >= 0 &&
            hdr.unit < st->n_units && !st->done[hdr.unit]) {
            st->done[hdr.unit] = 1;
            r->journal++;
            if (s->records == 1) s->cost_first = r->cost / (double)st->n_units;
            s->cost_sum += r->cost / (double)st->n_units;
        }
    }
    return MD_OK;
}

/* Every row's cost from its kind's estimate for the job stored in the file
 * (job_yaml), one estimate per experiment, the experiments sharing one
 * tokenizer per model folder (md_tokcache); 1 when every row got one (the
 * kinds read the job's tokenizers and datasets, which may be gone), else 0. */
static int stage_costs(status_ctx *s, const char *job_yaml)
{
    md_job *job = NULL;
    void **opts = NULL;
    md_tokcache *toks = NULL; /* owned */
    md_stage_estimate est[MD_KIND_MAX_STAGES];
    md_error err;
    int all = job_yaml && s->n_rows > 0;
    if (!all || md_job_parse_string(job_yaml, "<job stored in the results file>", NULL, 0, &job, &err) != MD_OK ||
        md_kind_bind_opts(job, &opts, &err) != MD_OK || md_tokcache_create(&toks, &err) != MD_OK) {
        md_kind_free_opts(job, opts);
        md_job_free(job);
        return 0;
    }
    for (int i = 0, have = -1; i < s->n_rows; i++) {
        stage_row *r = &s->rows[i];
        int x = r->st->exp_index, stage = r->st->stage;
        if (x < 0 || x >= job->n_exps || stage < 0 || stage >= MD_KIND_MAX_STAGES) {
            all = 0;
            continue;
        }
        if (x != have) { /* the rows of an experiment are next to each other */
            md_kind_ctx ctx = md_kind_ctx_of(job, opts, x);
            ctx.toks = toks;
            md_kind_estimate_stages(&ctx, est, &err); /* on failure est holds "not known" */
            have = x;
        }
        r->cost = est[stage].cost > 0 ? est[stage].cost : 0;
        all &= r->cost > 0;
    }
    md_tokcache_free(toks);
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
        if (r->st->n_units) done += r->cost * (double)(r->done + r->journal) / (double)r->st->n_units;
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

static void status_free(status_ctx *s)
{
    if (!s) return;
    md_h5out_free_stages(s->stages, s->n_rows);
    free(s->rows);
    free(s);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: mechdiff status OUT.h5\n\n"
               "Shows done/total units per experiment and stage, the units finished since the last\n"
               "snapshot (from OUT.h5.journal), the rate, the share of the work done (the kinds' unit\n"
               "costs) with an ETA at the journal's rate, and whether the job finished. Works while the\n"
               "job runs, after it stopped or died (then also the units each rank held when it stopped).\n"
               "Exit status: 0 finished, 3 not finished, 1 error (the file cannot be read), 2 bad command line.\n");
}

/* The first len - 1 bytes of the file at path into buf, NUL-terminated;
 * MD_ERR when it cannot be opened. */
static int read_text(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    if (!f) return MD_ERR;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    return MD_OK;
}

/* Whether process pid is a running mechdiff: in /proc/PID/stat ("PID
 * (COMM) STATE ...") its executable's name starts with "mechdiff" and it is
 * not a zombie (a rank 0 that ended but is not yet reaped: its job is
 * over); 1 where /proc cannot tell. The lock file keeps the pid of the last
 * run after it ended, and the system may have given that pid to another
 * program since. */
static int is_mechdiff(long pid)
{
    char path[64], st[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    if (read_text(path, st, sizeof st) != MD_OK) return 1;
    const char *open = strchr(st, '('), *close = strrchr(st, ')');
    if (!open || !close || close < open || close[1] != ' ') return 1;
    return strncmp(open + 1, "mechdiff", 8) == 0 && close[2] != 'Z' && close[2] != 'X';
}

/* Whether the run that writes OUTPUT is alive, from its OUTPUT.lock
 * (md_outlock_holder): 1 alive on this host (that pid is a mechdiff), 2 on
 * another host (cannot tell), 0 not running or unknown. who gets "pid N on
 * HOST". Reads only: a status never takes the lock a starting run needs. */
static int run_alive(const char *output, char *who, size_t len)
{
    char host[256];
    long pid = 0;
    if (!md_outlock_holder(output, &pid, host, sizeof host)) return 0;
    snprintf(who, len, "pid %ld on %s", pid, host);
    char me[256] = "";
    gethostname(me, sizeof me - 1);
    if (strcmp(me, host) != 0) return 2;
    return (kill((pid_t)pid, 0) == 0 || errno == EPERM) && is_mechdiff(pid);
}

/* The results file at path: real gets its canonical path (the run keeps
 * OUT.h5.lock, .journal and .inflight beside the real file: a symbolic
 * link or another name of it finds them there), info its root (owned:
 * md_h5out_info_free). MD_ERR with one line naming path when it does not
 * exist, is not a regular file, cannot be read or is not a results file. */
static int open_results(const char *path, char *real, size_t len, md_h5info *info, md_error *err)
{
    if (cmd_check_results_path(path, " (no run has written this output yet)", err) != MD_OK) return MD_ERR;
    if (md_outlock_make_canonical(path, real, len, err) != MD_OK) return MD_ERR;
    if (md_h5out_info(path, info, err) == MD_OK) return MD_OK;
    cmd_explain_not_results(path, "status reads the OUT.h5 that `mechdiff run` writes", err);
    return MD_ERR;
}

/* The file's stages at path with their done counts (owned: status_free);
 * NULL with err set when they cannot be read. */
static status_ctx *status_load(const char *path, md_error *err)
{
    status_ctx *s = calloc(1, sizeof *s);
    int rc = s ? md_h5out_read_stages(path, &s->stages, &s->n_rows, err) : md_error_set(err, "out of memory");
    if (rc == MD_OK && !(s->rows = calloc((size_t)(s->n_rows ? s->n_rows : 1), sizeof *s->rows)))
        rc = md_error_set(err, "out of memory");
    if (rc != MD_OK) {
        status_free(s);
        return NULL;
    }
    for (int i = 0; i < s->n_rows; i++) {
        s->rows[i].st = &s->stages[i];
        for (int64_t u = 0; u < s->stages[i].n_units; u++) s->rows[i].done += s->stages[i].done[u];
    }
    return s;
}

/* Adds the units of the journal beside real (OUT.h5.journal) to s when it
 * continues the file's snapshot; returns whether it does. */
static int replay_journal(status_ctx *s, const char *real, const md_h5info *info, md_error *err)
{
    char jpath[4200];
    md_run_journal_path(real, jpath, sizeof jpath);
    uint64_t jgen = 0;
    int64_t n_rec = 0;
    int torn = 0;
    md_journal_replay(jpath, &jgen, NULL, NULL, &n_rec, &torn, err);
    int journal_current = n_rec > 0 && jgen == info->generation;
    if (journal_current) md_journal_replay(jpath, &jgen, on_record, s, &n_rec, &torn, err);
    return journal_current;
}

/* "OUT.h5: job NAME (hash ...), part, snapshot N, FINISHED" */
static void print_header(const char *path, const md_h5info *info)
{
    char *name = info->job_yaml ? strstr(info->job_yaml, "\nname: ") : NULL;
    printf("%s: job %.*s (hash %.12s)", path, name ? (int)strcspn(name + 7, "\n") : 1, name ? name + 7 : "?",
           info->job_sha256);
    if (info->part_count > 0) printf(", part %d/%d", info->part_index, info->part_count);
    printf(", snapshot %llu, %s", (unsigned long long)info->generation, info->finished ? "FINISHED" : "not finished");
    if (info->finished && info->part_count > 0) /* the counts below are the whole job's */
        printf(" (this part: units u with u %% %d == %d; then mechdiff merge, docs/cluster.md)", info->part_count,
               info->part_index);
    printf("\n");
}

/* One line per stage (done / total), the journal's rate and the total. */
static void print_stages(const status_ctx *s, int journal_current)
{
    int64_t tot = 0, done = 0;
    for (int i = 0; i < s->n_rows; i++) {
        const stage_row *r = &s->rows[i];
        int64_t d = r->done + r->journal, n = r->st->n_units;
        printf("  %-24s stage %d: %10lld / %-10lld %5.1f%%", r->st->exp, r->st->stage, (long long)d, (long long)n,
               n ? 100.0 * (double)d / (double)n : 0.0);
        if (r->journal) printf("  (%lld in the journal)", (long long)r->journal);
        printf("\n");
        tot += n;
        done += d;
    }
    if (journal_current && s->records > 1) {
        double now = (double)time(NULL);
        printf("  journal: %lld units since the last snapshot, %.1f units/s, last %.0f s ago\n",
               (long long)s->records, (double)(s->records - 1) / (s->t_last - s->t_first + 1e-9),
               now > s->t_last ? now - s->t_last : 0.0);
    }
    printf("  total (stages planned so far): %lld / %lld units\n", (long long)done, (long long)tot);
}

/* The units in flight when the run writing real stopped (or now, while it
 * runs), from OUT.h5.inflight; nothing for a finished job. */
static void print_in_flight(const char *real, int finished)
{
    char *left = finished ? NULL : md_inflight_read(real);
    if (!left) return;
    char who[300];
    switch (run_alive(real, who, sizeof who)) {
    case 1: printf("  in flight now (the run %s is still going):\n", who); break;
    case 2: printf("  in flight in the run %s (still going there, or it died: then a rank that died was computing "
                   "these):\n", who); break;
    default: printf("  in flight when the last run stopped (computed again on resume; a rank that died was computing "
                    "these, a run stopped by a signal dropped them):\n");
    }
    for (char *line = strtok(left, "\n"); line; line = strtok(NULL, "\n")) printf("    %s\n", line);
    free(left);
}

int cmd_status(int argc, char **argv)
{
    int start = cmd_start_plain("status", usage, argc, argv);
    if (start >= 0) return start;
    if (argc < 2 || !argv[1][0]) return cmd_usage_error("status", usage, "no results file given");
    if (argc > 2) return cmd_usage_error("status", usage, "one results file at a time ('%s' is a second)", argv[2]);
    const char *path = argv[1];
    md_h5info info;
    md_error err;
    char real[PATH_MAX];
    if (open_results(path, real, sizeof real, &info, &err) != MD_OK) {
        fprintf(stderr, "mechdiff status: %s\n", err.msg);
        return 1;
    }
    status_ctx *s = status_load(path, &err);
    if (!s) {
        fprintf(stderr, "mechdiff status: %s\n", err.msg);
        md_h5out_info_free(&info);
        return 1;
    }
    int costed = stage_costs(s, info.job_yaml);
    int journal_current = replay_journal(s, real, &info, &err);
    print_header(path, &info);
    print_stages(s, journal_current);
    if (costed) print_work(s, journal_current && s->records > 1 && !info.finished);
    print_in_flight(real, info.finished);
    int rc = info.finished ? 0 : 3;
    status_free(s);
    md_h5out_info_free(&info);
    return rc;
}
