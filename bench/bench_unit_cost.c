/* bench_unit_cost.c — seconds per unit of every kind and stage against the
 * cost its plan gives the unit (md_plan_cost, in token passes; progress.h,
 * "ETA by cost"), on a job and the finished results file of a run of it:
 *
 *   build/bench/bench_unit_cost JOB.yaml RESULTS.h5 [MAX_UNITS=4]
 *
 * For every experiment and stage, as the runner does it: the stage input from
 * the kind's finish_stage of the stage before (reading RESULTS.h5), the plan,
 * one untimed unit (loads the model, prepares the stage), then up to
 * MAX_UNITS units spread over the stage, each computed again and timed.
 * Prints per stage the CPU seconds per token pass of cost and its ratio to
 * the whole job's (every stage's rate times its planned cost, summed, over
 * the summed cost: what progress's ETA divides by while that mix runs). A
 * cost model that is right gives 1.0 everywhere; a stage at 2.0 takes twice
 * as long as its cost says, relative to the job. CPU seconds are those of
 * the process (one rank, OPENBLAS_NUM_THREADS=1: robust to other jobs on a
 * shared machine); wall seconds are printed beside them and are noisy when
 * the machine is shared. The GEMM FLOPs of each unit (the profiling backend,
 * MECHDIFF_PROFILE) in token passes say how well a cost counts the FLOPs,
 * apart from how fast those FLOPs run. bench/bench_unit_cost.sh builds the
 * 8B-width job. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mechdiff/clock.h"
#include "mechdiff/exp_cost.h"
#include "mechdiff/experiment.h"
#include "mechdiff/h5out.h"
#include "mechdiff/job.h"
#include "mechdiff/model.h"
#include "mechdiff/plan.h"
#include "backend/profile.h"
#include "runner/worker.h"

#define MAX_ROWS 64

typedef struct stage_row {
    char name[160];
    int64_t units, timed;
    double cost_all, cost_timed; /* planned cost of the stage, of the timed units */
    double cpu, wall;            /* seconds of the timed units */
    double flops;                /* their GEMM FLOPs (MECHDIFF_PROFILE; 0 = none counted) */
    double block_macs;           /* multiply-adds of a token through every block of the model */
} stage_row;

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* GEMM FLOPs so far of every model the worker loaded (their profiling
 * backends). */
static double gemm_flops(const md_worker *w)
{
    double f = 0;
    for (int i = 0; i < w->n_models; i++) {
        const md_prof_stats *st = md_profile_stats(w->models[i].model->be);
        for (int c = MD_PROF_GEMM_F32; st && c <= MD_PROF_GEMM_BF16; c++) f += (double)st->flops[c];
    }
    return f;
}

/* Computes unit u of (exp, stage) on w; MD_ERR with the worker's message. */
static int compute(md_worker *w, int exp, int stage, int64_t u, md_error *err)
{
    const unsigned char *msg;
    size_t len;
    if (md_worker_compute(w, exp, stage, u, &msg, &len) != MD_OK) return md_error_set(err, "out of memory");
    md_unit_hdr hdr;
    memcpy(&hdr, msg, sizeof hdr);
    if (hdr.status == 0) return MD_OK;
    return md_error_set(err, "unit %lld: %.*s", (long long)u, (int)(len - sizeof hdr), (const char *)msg + sizeof hdr);
}

/* Times up to max_units units of the planned stage into r. */
static int time_stage(md_worker *w, int exp, const md_plan *plan, int max_units, stage_row *r, md_error *err)
{
    int stage = plan->stage;
    if (compute(w, exp, stage, 0, err) != MD_OK) return MD_ERR; /* model load, prepare */
    r->block_macs = w->n_models ? md_exp_cost_block_macs(&w->models[0].model->cfg) : 0;
    r->units = plan->n_units;
    for (int64_t u = 0; u < plan->n_units; u++) r->cost_all += plan->cost[u];
    int64_t n = plan->n_units < max_units ? plan->n_units : max_units;
    for (int64_t k = 0; k < n; k++) {
        int64_t u = k * plan->n_units / n;
        double c0 = cpu_seconds(), w0 = md_clock_seconds(), f0 = gemm_flops(w);
        if (compute(w, exp, stage, u, err) != MD_OK) return MD_ERR;
        r->cpu += cpu_seconds() - c0;
        r->wall += md_clock_seconds() - w0;
        r->flops += gemm_flops(w) - f0;
        r->cost_timed += plan->cost[u];
        r->timed++;
    }
    return MD_OK;
}

/* Every stage of experiment exp into rows[*n..]. */
static int bench_exp(const md_job *job, void *const *opts, md_worker *w, int exp, const char *results,
                     int max_units, stage_row *rows, int *n, md_error *err)
{
    const md_exp_spec *e = &job->exps[exp];
    md_kind_ctx ctx = md_kind_ctx_of(job, opts, exp);
    md_blob input = {0}, next = {0};
    md_reader *rd = NULL;
    int rc = MD_ERR, done = 0;
    if (md_reader_open(&rd, results, e->name, err) != MD_OK) return MD_ERR;
    for (int stage = 0; !done && *n < MAX_ROWS; stage++) {
        md_plan plan;
        md_plan_init(&plan, stage);
        plan.kind = e->kind;
        stage_row *r = &rows[*n];
        memset(r, 0, sizeof *r);
        snprintf(r->name, sizeof r->name, "%s (%s) stage %d", e->name, e->kind, stage);
        int ok = e->impl->plan(&ctx, stage, &input, &plan, err) == MD_OK &&
                 md_worker_set_input(w, exp, stage, input.data, input.size, err) == MD_OK &&
                 time_stage(w, exp, &plan, max_units, r, err) == MD_OK;
        md_plan_free(&plan);
        if (!ok) goto fail;
        fprintf(stderr, "  %s: %lld of %lld units timed\n", r->name, (long long)r->timed, (long long)r->units);
        (*n)++;
        done = 1;
        if (e->impl->finish_stage && e->impl->finish_stage(&ctx, stage, &input, rd, &next, &done, err) != MD_OK)
            goto fail;
        md_blob_free(&input);
        input = next;
        next = (md_blob){0};
    }
    rc = MD_OK;
fail:
    if (rc != MD_OK) md_error_prefix(err, "%s", e->name);
    md_blob_free(&input);
    md_blob_free(&next);
    md_reader_close(rd);
    return rc;
}

/* Per stage: the cost the plan gives a unit, the token passes its GEMM
 * FLOPs make (FLOPs / 2 / block_macs: what the cost means to count), their
 * ratio (flops/cost: 1.0 = the cost counts the FLOPs), the CPU seconds per
 * unit and per token pass of cost, and that rate over the job's (ratio). */
static void print_rows(const stage_row *rows, int n)
{
    double sec = 0, cost = 0; /* the job's: every stage at its measured rate */
    for (int i = 0; i < n; i++)
        if (rows[i].cost_timed > 0) sec += rows[i].cpu / rows[i].cost_timed * rows[i].cost_all, cost += rows[i].cost_all;
    double job_rate = sec / cost;
    printf("%-34s %5s %5s %10s %10s %10s %10s %10s %11s %6s\n", "stage", "units", "timed", "cost/unit",
           "flop-pass", "flops/cost", "cpu s/unit", "wall s/unit", "cpu us/cost", "ratio");
    for (int i = 0; i < n; i++) {
        const stage_row *r = &rows[i];
        double rate = r->cpu / r->cost_timed, per = 1.0 / (double)r->timed;
        double passes = r->block_macs > 0 ? r->flops / 2 / r->block_macs * per : 0;
        printf("%-34s %5lld %5lld %10.4g %10.4g %10.3f %10.4f %10.4f %11.4g", r->name, (long long)r->units,
               (long long)r->timed, r->cost_timed * per, passes, passes / (r->cost_timed * per), r->cpu * per,
               r->wall * per, 1e6 * rate);
        if (r->cost_all > (double)r->units) printf(" %6.2f\n", rate / job_rate); /* a summary: 1 a unit */
        else printf("      -  (no forward pass: bookkeeping)\n");
    }
    printf("job: %.4g us CPU per token pass of cost (ratio = the stage's rate over this; 1.0 = the cost model is "
           "right for it); flop-pass = the unit's GEMM FLOPs in token passes (0: its GEMMs are not the model's)\n",
           1e6 * job_rate);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_unit_cost JOB.yaml RESULTS.h5 [MAX_UNITS=4]\n");
        return 2;
    }
    MPI_Init(&argc, &argv);
    setenv("MECHDIFF_PROFILE", "1", 1); /* GEMM FLOPs per unit (backend/profile.h) */
    int max_units = argc > 3 ? atoi(argv[3]) : 4, n = 0, rc = 1;
    md_job *job = NULL;
    void **opts = NULL;
    md_worker w;
    md_error err;
    stage_row rows[MAX_ROWS];
    memset(&w, 0, sizeof w);
    if (md_job_parse_file(argv[1], &job, &err) != MD_OK || md_kind_bind_opts(job, &opts, &err) != MD_OK ||
        md_worker_init(&w, job, 0, &err) != MD_OK)
        goto done;
    for (int i = 0; i < job->n_exps; i++)
        if (bench_exp(job, opts, &w, i, argv[2], max_units > 0 ? max_units : 1, rows, &n, &err) != MD_OK) goto done;
    print_rows(rows, n);
    rc = 0;
done:
    if (rc) fprintf(stderr, "bench_unit_cost: %s\n", err.msg);
    md_worker_free(&w);
    if (job) md_kind_free_opts(job, opts);
    md_job_free(job);
    MPI_Finalize();
    return rc;
}
