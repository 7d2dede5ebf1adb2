/* bench_estimate.c — what the kinds' estimates add to a run's start-up.
 *
 * A run's coordinator plans stage 0 of every experiment and then asks the
 * kind of each experiment with a later stage (finish_stage) for its
 * estimate (src/runner/progress.c), all with one md_tokcache: the estimate
 * builds the kind's state again (prompts read and tokenised, units priced)
 * though the stage-0 plan just built it. This times both, per experiment,
 * as the start-up runs them: one untimed pass fills the cache (the
 * tokenizer loads, timed on their own), then REPEATS passes of plan +
 * estimate with the cache warm; the median of each is printed, and the
 * estimates a run asks for as a share of the plans and of the first pass
 * (loads + plans + estimates: the start-up's work but validation). The folders need config.json and the
 * tokenizer only (no weights: validation is not run).
 *
 *   bench_estimate JOB.yaml [REPEATS=5]
 *
 * With the real 151,643-token Qwen2 tokenizer.json (scripts/dev/
 * make_qwen2_tokenizer.py) the estimates come to ~0.1-0.2 s beside ~2.5 s
 * of tokenizer loads: see the commit that added this file. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "mechdiff/experiment.h"
#include "mechdiff/job.h"
#include "mechdiff/plan.h"
#include "mechdiff/tokcache.h"

#define MAX_REPEATS 50

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, by_value);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* One stage-0 plan and one estimate of experiment i: their seconds into
 * *plan_s and *est_s; MD_OK or MD_ERR (err says which). */
static int plan_and_estimate(const md_job *job, void **opts, md_tokcache *toks, int i, double *plan_s,
                             double *est_s, md_error *err)
{
    md_kind_ctx ctx = md_kind_ctx_of(job, opts, i);
    ctx.toks = toks;
    md_plan plan;
    md_blob none = {0};
    md_stage_estimate est[MD_KIND_MAX_STAGES] = {{0}};
    md_plan_init(&plan, 0);
    double a = now();
    int rc = ctx.exp->impl->plan(&ctx, 0, &none, &plan, err);
    double b = now();
    if (rc == MD_OK) rc = md_kind_estimate_stages(&ctx, est, err);
    double c = now();
    md_plan_free(&plan);
    *plan_s = b - a;
    *est_s = c - b;
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_estimate JOB.yaml [REPEATS=5]\n");
        return 2;
    }
    int repeats = argc > 2 ? atoi(argv[2]) : 5;
    if (repeats < 1 || repeats > MAX_REPEATS) repeats = 5;
    md_job *job = NULL;
    void **opts = NULL;
    md_tokcache *toks = NULL;
    md_error err;
    if (md_job_parse_file(argv[1], &job, &err) != MD_OK || md_kind_bind_opts(job, &opts, &err) != MD_OK ||
        md_tokcache_create(&toks, &err) != MD_OK) {
        fprintf(stderr, "bench_estimate: %s\n", err.msg);
        md_job_free(job);
        return 1;
    }
    int rc = 0;
    double load_s = now(), plans = 0, asked = 0, p[MAX_REPEATS], e[MAX_REPEATS];
    for (int i = 0; i < job->n_exps && rc == 0; i++) /* the cache filled: the start-up's loads */
        rc = plan_and_estimate(job, opts, toks, i, &p[0], &e[0], &err) != MD_OK;
    load_s = now() - load_s;
    printf("%-16s %10s %10s %8s  %s\n", "experiment", "plan0 s", "estimate s", "ratio", "asked by a run");
    for (int i = 0; i < job->n_exps && rc == 0; i++) {
        for (int r = 0; r < repeats && rc == 0; r++) rc = plan_and_estimate(job, opts, toks, i, &p[r], &e[r], &err);
        double pm = median(p, repeats), em = median(e, repeats);
        int ask = job->exps[i].impl->finish_stage != NULL;
        plans += pm;
        asked += ask ? em : 0;
        printf("%-16s %10.4f %10.4f %8.2f  %s\n", job->exps[i].name, pm, em, pm > 0 ? em / pm : 0,
               ask ? "yes" : "no (one planned stage)");
    }
    if (rc == 0)
        printf("first pass (tokenizer loads, plans, estimates): %.3f s; plans (warm): %.3f s; estimates a run asks "
               "for: %.3f s = %.2f of the plans, %.3f of the first pass\n", load_s, plans, asked,
               plans > 0 ? asked / plans : 0, load_s > 0 ? asked / load_s : 0);
    else
        fprintf(stderr, "bench_estimate: %s\n", err.msg);
    md_tokcache_free(toks);
    md_kind_free_opts(job, opts);
    md_job_free(job);
    return rc;
}
