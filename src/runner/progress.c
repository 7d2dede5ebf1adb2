/* progress.c — a run's progress on stderr (see include/mechdiff/progress.h). */
#include "mechdiff/progress.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mechdiff/clock.h"
#include "mechdiff/exp_util.h"
#include "mechdiff/experiment.h"

typedef struct stage_count {
    int64_t units;   /* units of this part; -1 = not known yet; 0 = no such stage */
    int64_t done;    /* of them done (in the file or in this run) */
    double cost;     /* summed cost of the units (md_plan_cost's measure) */
    double cost_done; /* of it done */
    int planned;     /* 1 = planned by the coordinator, 0 = an estimate */
    int estimated;   /* 1 = units is the kind's estimate (0: none was made, e.g. a part run) */
} stage_count;

/* Slots of the ring of finished units: the window and the unit before it. */
#define RING (MD_PROGRESS_RATE_WINDOW + 1)

struct md_progress {
    const md_job *job;                          /* borrowed */
    void *const *exp_opts;                      /* bound options per experiment (borrowed) */
    char output[4096];
    int world, shard_k, part_index, part_count, enabled, live;
    double interval;                            /* seconds between lines (bar: 0.2) */
    stage_count (*st)[MD_PROGRESS_MAX_STAGES];  /* [n_exps] (owned) */
    int *ended;                                 /* [n_exps]: no later stage runs here (owned) */
    int64_t run_units;                          /* units finished in this run */
    double t_start, t_last;
    double ring_t[RING], ring_cost[RING];       /* time and cost of the last units finished */
    int bar_open;                               /* a bar line without its newline */
};

void md_progress_utc(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int64_t md_progress_units_in_part(int64_t n, int part_index, int part_count)
{
    if (part_count <= 0) return n;
    return n > part_index ? (n - 1 - part_index) / part_count + 1 : 0;
}

static int env_above_one(const char *name)
{
    const char *v = getenv(name);
    return v && atoi(v) > 1;
}

/* The live bar: a terminal, and no launcher forwarding several ranks' output. */
static int want_bar(int world)
{
    const char *o = getenv("MECHDIFF_PROGRESS");
    if (o && strcmp(o, "bar") == 0) return 1;
    if (o && strcmp(o, "lines") == 0) return 0;
    if (!isatty(STDERR_FILENO) || world > 1) return 0;
    return !env_above_one("OMPI_COMM_WORLD_SIZE") && !env_above_one("PMI_SIZE") && !getenv("SLURM_STEP_ID");
}

int md_progress_create(md_progress **out, const md_progress_opts *opt, md_error *err)
{
    md_progress *p = calloc(1, sizeof *p);
    int n = opt->job->n_exps > 0 ? opt->job->n_exps : 1;
    if (p) p->st = calloc((size_t)n, sizeof *p->st);
    if (p) p->ended = calloc((size_t)n, sizeof *p->ended);
    if (!p || !p->st || !p->ended) {
        md_progress_free(p);
        return md_error_set(err, "rank 0: out of memory");
    }
    p->job = opt->job;
    p->exp_opts = opt->exp_opts;
    snprintf(p->output, sizeof p->output, "%s", opt->output ? opt->output : "");
    p->world = opt->world;
    p->shard_k = opt->shard_k > 1 ? opt->shard_k : 1;
    p->part_index = opt->part_index;
    p->part_count = opt->part_count;
    p->enabled = opt->enabled;
    p->live = opt->enabled && want_bar(opt->world);
    p->interval = p->live ? 0.2 : md_params_float(&opt->job->runtime, "progress_interval");
    for (int i = 0; i < opt->job->n_exps; i++)
        for (int s = 0; s < MD_PROGRESS_MAX_STAGES; s++) p->st[i][s].units = -1;
    p->t_start = p->t_last = opt->start > 0 ? opt->start : md_clock_seconds();
    *out = p;
    return MD_OK;
}

void md_progress_free(md_progress *p)
{
    if (!p) return;
    free(p->st);
    free(p->ended);
    free(p);
}

/* "mechdiff: <UTC> " on a fresh line. */
static void line_start(md_progress *p)
{
    char t[32];
    md_progress_break_line(p);
    md_progress_utc(t, sizeof t);
    fprintf(stderr, "mechdiff: %s ", t);
}

void md_progress_break_line(md_progress *p)
{
    if (p && p->bar_open) fputc('\n', stderr);
    if (p) p->bar_open = 0;
}

static const char *job_name(const md_progress *p)
{
    return md_params_str(&p->job->top, "name");
}

void md_progress_print_start(md_progress *p)
{
    if (!p || !p->enabled) return;
    line_start(p);
    fprintf(stderr, "starting job '%s' (%s) on %d rank%s", job_name(p), p->job->source ? p->job->source : "-",
            p->world, p->world == 1 ? " (coordinates and computes)" : "s");
    if (p->world > 1)
        fprintf(stderr, " (1 coordinator + %d workers%s)", p->world - 1, p->shard_k > 1 ? ", sharded" : "");
    if (p->shard_k > 1) fprintf(stderr, " in groups of %d holding one model copy", p->shard_k);
    if (p->part_count > 0) fprintf(stderr, ", part %d of %d", p->part_index, p->part_count);
    int nm = md_params_count(&p->job->top, "models");
    fprintf(stderr, "; models:%s", nm ? "" : " none");
    for (int i = 0; i < nm; i++)
        fprintf(stderr, "%s %s=%s", i ? "," : "", md_params_item(&p->job->top, "models", i),
                md_params_map_val(&p->job->top, "models", i));
    fprintf(stderr, "; %d experiment%s; output %s\n", p->job->n_exps, p->job->n_exps == 1 ? "" : "s", p->output);
    char vocab[1024];
    if (md_exp_describe_vocabularies(p->job, vocab, sizeof vocab)) {
        line_start(p);
        fprintf(stderr, "%s\n", vocab);
    }
}

void md_progress_set_stage(md_progress *p, int exp, int stage, int64_t n_units, const double *cost,
                           const uint8_t *done)
{
    if (!p || exp < 0 || exp >= p->job->n_exps || stage < 0 || stage >= MD_PROGRESS_MAX_STAGES) return;
    stage_count *sc = &p->st[exp][stage];
    stage_count now = {.planned = 1};
    for (int64_t u = 0; u < n_units; u++) {
        if (p->part_count > 0 && u % p->part_count != p->part_index) continue;
        double c = cost ? cost[u] : 1.0;
        now.units++;
        now.cost += c;
        if (done && done[u]) now.done++, now.cost_done += c;
    }
    int64_t units = now.units;
    if (p->enabled && !sc->planned && sc->estimated && sc->units >= 0 && sc->units != units) {
        line_start(p);
        fprintf(stderr, "note: %s stage %d has %lld units, its kind estimated %lld at the start (a wrong "
                        "estimate of kind '%s')\n", p->job->exps[exp].name, stage, (long long)units,
                (long long)sc->units, p->job->exps[exp].kind);
    }
    *sc = now;
}

void md_progress_end_exp(md_progress *p, int exp, int stage)
{
    if (!p || exp < 0 || exp >= p->job->n_exps) return;
    p->ended[exp] = 1;
    for (int s = stage + 1; s < MD_PROGRESS_MAX_STAGES; s++) p->st[exp][s] = (stage_count){0};
}

/* Sizes the stages after the last planned one of experiment i from one
 * estimate of its kind (none for an ended experiment or a part run — a part
 * runs a later stage only once every part's units are in, e.g. --part 0/1
 * or a resume after a merge, and then no note says the estimate was
 * wrong —, nor for a planned one-stage kind). */
static void estimate_exp(md_progress *p, md_tokcache *toks, int i)
{
    md_stage_estimate est[MD_KIND_MAX_STAGES] = {{0}};
    md_kind_ctx ctx = md_kind_ctx_of(p->job, p->exp_opts, i);
    ctx.toks = toks;
    md_error err;
    int last = -1;
    for (int s = 0; s < MD_PROGRESS_MAX_STAGES; s++)
        if (p->st[i][s].planned) last = s;
    int later = last < 0 || p->job->exps[i].impl->finish_stage;
    int asked = later && !p->ended[i] && p->part_count <= 0 && last + 1 < MD_PROGRESS_MAX_STAGES;
    if (asked) md_kind_estimate_stages(&ctx, est, &err); /* on failure est holds "not known" */
    for (int s = last + 1; s < MD_PROGRESS_MAX_STAGES; s++) {
        int64_t n = est[s].units;
        p->st[i][s] = (stage_count){.units = n > 0 ? md_progress_units_in_part(n, p->part_index, p->part_count) : n,
                                    .estimated = asked};
        if (n <= 0) { /* none, or not known: later stages are not sized either */
            for (int k = s + 1; k < MD_PROGRESS_MAX_STAGES; k++) p->st[i][k] = (stage_count){0};
            return;
        }
        int64_t part = p->st[i][s].units;
        p->st[i][s].cost = est[s].cost > 0 ? est[s].cost * (double)part / (double)n : (double)part * MD_COST_ROW_TOKENS;
    }
}

void md_progress_counts(const md_progress *p, int64_t *done, int64_t *total, int *unsized_stages)
{
    int64_t d = 0, t = 0;
    int u = 0;
    for (int i = 0; i < p->job->n_exps; i++)
        for (int s = 0; s < MD_PROGRESS_MAX_STAGES; s++) {
            const stage_count *sc = &p->st[i][s];
            if (sc->units < 0) u++;
            if (sc->units > 0) t += sc->units, d += sc->done;
        }
    *done = d;
    *total = t;
    if (unsized_stages) *unsized_stages = u;
}

void md_progress_work(const md_progress *p, double *done, double *total)
{
    double d = 0, t = 0;
    for (int i = 0; i < p->job->n_exps; i++)
        for (int s = 0; s < MD_PROGRESS_MAX_STAGES; s++)
            if (p->st[i][s].units > 0) t += p->st[i][s].cost, d += p->st[i][s].cost_done;
    *done = d;
    *total = t;
}

void md_progress_print_plan(md_progress *p, md_tokcache *toks)
{
    if (!p) return;
    for (int i = 0; i < p->job->n_exps; i++) estimate_exp(p, toks, i);
    if (!p->enabled) return;
    int64_t done, total;
    int unsized;
    md_progress_counts(p, &done, &total, &unsized);
    line_start(p);
    fprintf(stderr, "%s: units per experiment and stage:", job_name(p));
    for (int i = 0; i < p->job->n_exps; i++) {
        fprintf(stderr, " %s=", p->job->exps[i].name);
        for (int s = 0; s < MD_PROGRESS_MAX_STAGES && p->st[i][s].units != 0; s++) {
            if (s) fputc('+', stderr);
            if (p->st[i][s].units < 0) fputc('?', stderr);
            else fprintf(stderr, "%lld", (long long)p->st[i][s].units);
        }
    }
    double wdone, wtotal;
    md_progress_work(p, &wdone, &wtotal);
    fprintf(stderr, "; total %lld units (%lld already in the file), work %.3g token passes (%.1f%% done)",
            (long long)total, (long long)done, wtotal, wtotal > 0 ? 100 * wdone / wtotal : 100.0);
    if (unsized) fprintf(stderr, "; %d stage%s not sized until the stage before ends ('?', not counted)", unsized,
                         unsized == 1 ? "" : "s");
    fputc('\n', stderr);
}

void md_progress_unit_done_at(md_progress *p, int exp, int stage, double cost, double t)
{
    if (!p || exp < 0 || exp >= p->job->n_exps || stage < 0 || stage >= MD_PROGRESS_MAX_STAGES) return;
    p->st[exp][stage].done++;
    p->st[exp][stage].cost_done += cost;
    p->ring_t[p->run_units % RING] = t;
    p->ring_cost[p->run_units % RING] = cost;
    p->run_units++;
}

void md_progress_unit_done(md_progress *p, int exp, int stage, double cost)
{
    md_progress_unit_done_at(p, exp, stage, cost, md_clock_seconds());
}

/* Units and cost per second over the last MD_PROGRESS_RATE_WINDOW units
 * finished, from the finish of the unit before them (the run's start while
 * there is none), up to now: the recent rate predicts the next minutes
 * better than the run's average, and it decays while nothing finishes.
 * 0 = no unit yet. */
static void recent_rates(const md_progress *p, double now, double *units_s, double *cost_s)
{
    *units_s = *cost_s = 0;
    int64_t n = p->run_units < MD_PROGRESS_RATE_WINDOW ? p->run_units : MD_PROGRESS_RATE_WINDOW;
    double since = p->run_units > n ? p->ring_t[(p->run_units - n - 1) % RING] : p->t_start, cost = 0;
    for (int64_t k = p->run_units - n; k < p->run_units; k++) cost += p->ring_cost[k % RING];
    if (n == 0 || now <= since) return;
    *units_s = (double)n / (now - since);
    *cost_s = cost / (now - since);
}

double md_progress_eta(const md_progress *p, double now)
{
    double done, total, units_s, cost_s;
    md_progress_work(p, &done, &total);
    if (total - done <= 0) return 0;
    recent_rates(p, now, &units_s, &cost_s);
    return cost_s > 0 ? (total - done) / cost_s : -1;
}

/* "12.3 units/s", or per minute / per hour when slower (units of an 8B
 * model can take minutes). */
static void fmt_rate(double r, char *buf, size_t len)
{
    if (r >= 1 || r == 0) snprintf(buf, len, "%.1f units/s", r);
    else if (r * 60 >= 1) snprintf(buf, len, "%.1f units/min", r * 60);
    else snprintf(buf, len, "%.2f units/h", r * 3600);
}

void md_progress_duration(double s, char *buf, size_t len)
{
    if (s < 0 || !isfinite(s)) s = 0;
    long v = lround(s);
    if (v >= 3600) snprintf(buf, len, "%ldh%02ldm%02lds", v / 3600, v / 60 % 60, v % 60);
    else if (v >= 60) snprintf(buf, len, "%ldm%02lds", v / 60, v % 60);
    else snprintf(buf, len, "%lds", v);
}

void md_progress_tick(md_progress *p, int final)
{
    if (!p || !p->enabled) return;
    double t = md_clock_seconds();
    if (!final && t - p->t_last < p->interval) return;
    p->t_last = t;
    int64_t done, total;
    int unsized;
    md_progress_counts(p, &done, &total, &unsized);
    double rate, cost_rate, wdone, wtotal, left = done >= total ? 0 : md_progress_eta(p, t);
    recent_rates(p, t, &rate, &cost_rate);
    md_progress_work(p, &wdone, &wtotal);
    double frac = total > 0 ? (double)done / (double)total : 1, work = wtotal > 0 ? wdone / wtotal : 1;
    char eta[40], rtxt[32], more[64] = "";
    if (left >= 0) md_progress_duration(left, eta, sizeof eta);
    else snprintf(eta, sizeof eta, "unknown (no unit finished yet)");
    fmt_rate(rate, rtxt, sizeof rtxt);
    if (unsized) snprintf(more, sizeof more, " + %d stage%s not sized yet", unsized, unsized == 1 ? "" : "s");
    if (p->live) {
        char bar[31], now[32];
        int fill = (int)(frac * 30);
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        md_progress_utc(now, sizeof now);
        fprintf(stderr, "\r[%s] %5.1f%% %lld/%lld units%s  work %.1f%%  %s  ETA %s  %s ", bar, frac * 100,
                (long long)done, (long long)total, more, work * 100, rtxt, eta, now + 11);
        p->bar_open = 1;
        if (final) md_progress_break_line(p);
        return;
    }
    line_start(p);
    fprintf(stderr, "%s: %lld/%lld units (%.1f%%)%s, %.1f%% of the work, %s, ETA %s\n", job_name(p),
            (long long)done, (long long)total, frac * 100, more, work * 100, rtxt, eta);
}

void md_progress_print_end(md_progress *p, const char *how, const char *file, int n_datasets)
{
    if (!p || !p->enabled) return;
    int64_t done, total;
    md_progress_counts(p, &done, &total, NULL);
    struct stat st;
    if (!file) file = p->output;
    double mb = stat(file, &st) == 0 ? (double)st.st_size / 1e6 : 0;
    char wall[32];
    md_progress_duration(md_clock_seconds() - p->t_start, wall, sizeof wall);
    line_start(p);
    if (strcmp(how, "error") == 0) { /* what was saved: `mechdiff status` counts it */
        fprintf(stderr, "%s: error: stopped after %lld units in this run; %s (%.1f MB) holds the last snapshot, "
                "%s.journal the units finished since; wall time %s\n", job_name(p), (long long)p->run_units, file,
                mb, file, wall);
        return;
    }
    fprintf(stderr, "%s: %s: wrote %s (%d datasets, %.1f MB); %lld/%lld units done (%lld in this run); wall time %s\n",
            job_name(p), how, file, n_datasets, mb, (long long)done, (long long)total, (long long)p->run_units,
            wall);
}
