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
 * apart from how fast those FLOPs run, and GFLOP/s how fast they ran (GEMM
 * FLOPs per CPU second). bench/bench_unit_cost.sh builds the
 * 8B-width job.
 * Then the roofline behind the read bound of the costs (exp_cost.h): F, the
 * CPU's sgemm rate on fp32 weights of the model's up projection (d_ff x d)
 * at 1024 rows, and Bw, the rate at which sgemm reads such weights at 8 rows
 * (copies of the matrix in turn, over 1 GiB together, so that none is read
 * from a cache), both in CPU seconds, best of 3, and the ridge 4 F / (2 Bw)
 * they give; and the ridge with the GEMM rate of the stages whose costs
 * count their FLOPs instead of F (a token pass of cost is priced at what
 * the job's forwards of many rows run at, not sgemm's best), against
 * MD_COST_RIDGE_ROWS. */
#include <cblas.h>
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
 * unit and per token pass of cost, and that rate over the job's (ratio).
 * Returns the GEMM FLOP/s of the stages whose costs count their FLOPs
 * (flops/cost 0.8 to 1.25: the forwards of many rows, not bound by weight
 * reads): what a token pass of cost runs at. */
static double print_rows(const stage_row *rows, int n)
{
    double sec = 0, cost = 0; /* the job's: every stage at its measured rate */
    double fwd_flops = 0, fwd_cpu = 0;
    for (int i = 0; i < n; i++)
        if (rows[i].cost_timed > 0) sec += rows[i].cpu / rows[i].cost_timed * rows[i].cost_all, cost += rows[i].cost_all;
    double job_rate = sec / cost;
    printf("%-34s %5s %5s %10s %10s %10s %10s %10s %11s %7s %6s\n", "stage", "units", "timed", "cost/unit",
           "flop-pass", "flops/cost", "cpu s/unit", "wall s/unit", "cpu us/cost", "GFLOP/s", "ratio");
    for (int i = 0; i < n; i++) {
        const stage_row *r = &rows[i];
        double rate = r->cpu / r->cost_timed, per = 1.0 / (double)r->timed;
        double passes = r->block_macs > 0 ? r->flops / 2 / r->block_macs * per : 0, fc = passes / (r->cost_timed * per);
        if (fc >= 0.8 && fc <= 1.25) fwd_flops += r->flops, fwd_cpu += r->cpu;
        printf("%-34s %5lld %5lld %10.4g %10.4g %10.3f %10.4f %10.4f %11.4g %7.1f", r->name, (long long)r->units,
               (long long)r->timed, r->cost_timed * per, passes, fc, r->cpu * per, r->wall * per, 1e6 * rate,
               r->cpu > 0 ? 1e-9 * r->flops / r->cpu : 0);
        if (r->cost_all > (double)r->units) printf(" %6.2f\n", rate / job_rate); /* a summary: 1 a unit */
        else printf("      -  (no forward pass: bookkeeping)\n");
    }
    printf("job: %.4g us CPU per token pass of cost (ratio = the stage's rate over this; 1.0 = the cost model is "
           "right for it); flop-pass = the unit's GEMM FLOPs in token passes (0: its GEMMs are not the model's)\n",
           1e6 * job_rate);
    return fwd_cpu > 0 ? fwd_flops / fwd_cpu : 0;
}

/* The seconds (CPU) of the best of 3 rounds of y[n][ff] = x[n][d] . W_i^T
 * over the nw matrices w[i] (ff x d each). */
static double best_sgemm(float *const *w, int nw, const float *x, float *y, int n, int ff, int d)
{
    double best = 0;
    for (int round = 0; round < 3; round++) {
        double t0 = cpu_seconds();
        for (int i = 0; i < nw; i++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, ff, d, 1.0f, x, d, w[i], d, 0.0f, y, ff);
        double t = cpu_seconds() - t0;
        best = round == 0 || t < best ? t : best;
    }
    return best;
}

/* Prints F (GFLOP/s at 1024 rows), Bw (GB/s of weights read at 8 rows)
 * and the ridge 4 F / (2 Bw) for fp32 weights of ff x d (see the header),
 * and the ridge with the rate the job's forwards of many rows ran at,
 * f_fwd (FLOP/s; 0 = none), instead of F. */
static int print_roofline(int ff, int d, double f_fwd)
{
    enum { WIDE = 1024, NARROW = 8, MAX_W = 64 };
    size_t per = (size_t)ff * (size_t)d;
    int nw = (int)(((size_t)1 << 30) / (per * sizeof(float))) + 1, rc = 1;
    nw = nw > MAX_W ? MAX_W : nw;
    float *w[MAX_W] = {0}, *x = malloc((size_t)WIDE * d * sizeof(float)), *y = malloc((size_t)WIDE * ff * sizeof(float));
    for (int i = 0; i < nw; i++) w[i] = malloc(per * sizeof(float));
    for (int i = 0; i < nw && x && y; i++) {
        if (!w[i]) goto done;
        for (size_t j = 0; j < per; j++) w[i][j] = (float)((j * 2654435761u + (size_t)i) % 1000) * 1e-4f - 0.05f;
    }
    if (!x || !y) goto done;
    for (size_t j = 0; j < (size_t)WIDE * d; j++) x[j] = (float)(j % 977) * 1e-3f - 0.5f;
    double wide = best_sgemm(w, 1, x, y, WIDE, ff, d), narrow = best_sgemm(w, nw, x, y, NARROW, ff, d);
    double F = 2.0 * WIDE * (double)per / wide, Bw = (double)nw * (double)per * sizeof(float) / narrow;
    printf("roofline (fp32 %d x %d weights, one thread, CPU seconds): sgemm F = %.1f GFLOP/s at %d rows; weights "
           "read at Bw = %.2f GB/s at %d rows (%d copies, %.2f GiB); ridge 4 F / (2 Bw) = %.0f rows\n",
           ff, d, F * 1e-9, WIDE, Bw * 1e-9, NARROW, nw, (double)nw * (double)per * sizeof(float) / (1 << 30),
           4 * F / (2 * Bw));
    printf("roofline with the rate of the job's forwards that the costs count (flops/cost 0.8-1.25): %.1f GFLOP/s; "
           "ridge 4 x that / (2 Bw) = %.0f rows; the costs' MD_COST_RIDGE_ROWS: %d\n",
           f_fwd * 1e-9, 4 * f_fwd / (2 * Bw), MD_COST_RIDGE_ROWS);
    rc = 0;
done:
    if (rc) fprintf(stderr, "bench_unit_cost: out of memory for the roofline\n");
    for (int i = 0; i < nw; i++) free(w[i]);
    free(x), free(y);
    return rc;
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
    double f_fwd = print_rows(rows, n);
    if (w.n_models && print_roofline(w.models[0].model->cfg.d_ff, w.models[0].model->cfg.d_model, f_fwd)) goto done;
    rc = 0;
done:
    if (rc) fprintf(stderr, "bench_unit_cost: %s\n", err.msg);
    md_worker_free(&w);
    if (job) md_kind_free_opts(job, opts);
    md_job_free(job);
    MPI_Finalize();
    return rc;
}
