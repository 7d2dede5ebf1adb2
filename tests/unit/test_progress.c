/* test_progress.c — the progress module's counting (include/mechdiff/progress.h)
 * and every kind's estimate_units against its own plan:
 *  - units of a part (u mod n == i) for n, i around the edges;
 *  - for each experiment of a job with every kind on the shipped pair, the
 *    estimate of stage 0 is the unit count the kind's plan declares, and
 *    the estimates stop (0) after the kind's last stage; the later stages'
 *    estimates against the counts they end up with are checked by
 *    tests/e2e/progress.sh (they need the earlier stages' results);
 *  - every kind's estimate_cost of stage 0 is the sum of the costs its plan
 *    gives the units (md_plan_cost), later stages are costed, and none after
 *    the last;
 *  - the total of a progress object: planned stage 0 + estimated later
 *    stages, done units counted, an experiment's end drops its later stages,
 *    a part run counts no later stage; the work (cost) the same way: the
 *    plans' costs + the kinds' estimate_cost of the later stages;
 *  - the ETA from synthetic unit completions with known costs and times:
 *    the cost left over the cost per second of the last
 *    MD_PROGRESS_RATE_WINDOW units (from the finish of the one before them,
 *    or the start), exact to the last bit with these binary-exact numbers. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mechdiff/experiment.h"
#include "mechdiff/job.h"
#include "mechdiff/plan.h"
#include "mechdiff/progress.h"
#include "testutil.h"

static const char *JOB =
    "name: t\nseed: 1\n"
    "models: {base: models/organism-base, instruct: models/organism-instruct}\n"
    "datasets: {cities: data/cities.csv, sp_en_trans: data/sp_en_trans.csv, harmful: data/harmful.csv,"
    " harmless: data/harmless.csv}\n"
    "experiments:\n"
    "  - {kind: selftest, units: 7, stages: 2}\n"
    "  - {kind: selftest, name: one_stage, units: 5, stages: 1}\n"
    "  - {kind: knowledge, datasets: [cities], max_pairs: 3}\n"
    "  - {kind: truth, train_datasets: [sp_en_trans], test_datasets: [cities], max_statements: 24}\n"
    "  - {kind: refusal, n_train: 8, n_test: 4, templates: {base: base, instruct: chat}}\n"
    "  - {kind: refusal_sweep, n_train: 8, n_test: 4, templates: {base: base, instruct: chat}, layers: [0, 1]}\n"
    "  - {kind: confidence, prompts: cities, max_prompts: 6}\n"
    "  - {kind: confidence, name: static}\n";

/* Last stage of each experiment above (the kinds' finish_stage). */
static const int LAST_STAGE[] = {1, 0, 0, 2, 2, 2, 2, 1};

static void test_parts(void)
{
    CHECK(md_progress_units_in_part(7, 0, 0) == 7);
    CHECK(md_progress_units_in_part(7, 0, 2) == 4);
    CHECK(md_progress_units_in_part(7, 1, 2) == 3);
    CHECK(md_progress_units_in_part(1, 1, 2) == 0);
    CHECK(md_progress_units_in_part(6, 2, 3) == 2);
    int64_t sum = 0;
    for (int i = 0; i < 5; i++) sum += md_progress_units_in_part(23, i, 5);
    CHECK(sum == 23);
}

/* Experiment i's plan of stage 0 into *plan (the caller frees it). */
static int64_t planned_stage0(const md_job *job, void *const *opts, int i, md_plan *plan)
{
    md_kind_ctx ctx = md_kind_ctx_of(job, opts, i);
    md_blob none = {0};
    md_error err;
    md_plan_init(plan, 0);
    int rc = job->exps[i].impl->plan(&ctx, 0, &none, plan, &err);
    CHECK_MSG(rc == MD_OK, "%s: %s", job->exps[i].name, err.msg);
    return rc == MD_OK ? plan->n_units : -2;
}

static double sum_costs(const md_plan *plan)
{
    double sum = 0;
    for (int64_t u = 0; u < plan->n_units; u++) sum += plan->cost[u];
    return sum;
}

/* Costs: stage 0's estimate is the plan's sum (summed in the plan's unit
 * order by the same function, so equal up to rounding: 1e-12 relative),
 * every unit has a positive cost, later stages a positive estimate. */
static void test_cost_estimates(const md_job *job, void *const *opts, const md_plan plans[])
{
    for (int i = 0; i < job->n_exps; i++) {
        const md_exp_spec *e = &job->exps[i];
        md_kind_ctx ctx = md_kind_ctx_of(job, opts, i);
        CHECK_MSG(e->impl->estimate_cost, "%s: no estimate_cost", e->kind);
        if (!e->impl->estimate_cost) continue;
        double planned = sum_costs(&plans[i]), est = e->impl->estimate_cost(&ctx, 0);
        CHECK_MSG(fabs(est - planned) <= 1e-12 * planned && planned > 0,
                  "%s: stage 0 cost estimated %.17g, planned %.17g", e->name, est, planned);
        for (int64_t u = 0; u < plans[i].n_units; u++) CHECK(plans[i].cost[u] > 0);
        for (int s = 1; s <= LAST_STAGE[i]; s++)
            CHECK_MSG(e->impl->estimate_cost(&ctx, s) > 0, "%s: stage %d not costed", e->name, s);
        CHECK_MSG(e->impl->estimate_cost(&ctx, LAST_STAGE[i] + 1) == 0, "%s: cost after the last stage", e->name);
    }
}

static void test_estimates(const md_job *job, void *const *opts, int64_t stage0[], md_plan plans[])
{
    for (int i = 0; i < job->n_exps; i++) {
        const md_exp_spec *e = &job->exps[i];
        md_kind_ctx ctx = md_kind_ctx_of(job, opts, i);
        stage0[i] = planned_stage0(job, opts, i, &plans[i]);
        if (!e->impl->estimate_units) { /* one stage: the runner needs no estimate */
            CHECK_MSG(!e->impl->finish_stage, "%s: several stages and no estimate_units", e->kind);
            continue;
        }
        int64_t est = e->impl->estimate_units(&ctx, 0);
        CHECK_MSG(est == stage0[i], "%s: stage 0 estimated %lld, planned %lld", e->name, (long long)est,
                  (long long)stage0[i]);
        for (int s = 1; s <= LAST_STAGE[i]; s++)
            CHECK_MSG(e->impl->estimate_units(&ctx, s) >= 1, "%s: stage %d not sized", e->name, s);
        CHECK_MSG(e->impl->estimate_units(&ctx, LAST_STAGE[i] + 1) == 0, "%s: a stage after the last", e->name);
    }
}

static void test_totals(md_job *job, void *const *opts, const int64_t stage0[], const md_plan plans[])
{
    md_progress *p = NULL;
    md_error err;
    md_progress_opts o = {.job = job, .exp_opts = opts, .output = "x.h5", .world = 1};
    CHECK(md_progress_create(&p, &o, &err) == MD_OK);
    if (!p) return;
    int64_t want = 0;
    double want_work = 0;
    uint8_t two_done[64] = {1, 1}; /* 2 units of the first already done */
    for (int i = 0; i < job->n_exps; i++) {
        md_progress_set_stage(p, i, 0, stage0[i], plans[i].cost, i == 0 ? two_done : NULL);
        want += stage0[i];
        want_work += sum_costs(&plans[i]);
    }
    md_progress_print_plan(p);
    int64_t done, total;
    int unsized;
    md_progress_counts(p, &done, &total, &unsized);
    CHECK(done == 2 && unsized == 0);
    int64_t later = 0;
    double later_work = 0, wdone, wtotal;
    for (int i = 0; i < job->n_exps; i++) {
        md_kind_ctx ctx = md_kind_ctx_of(job, opts, i);
        for (int s = 1; s <= LAST_STAGE[i]; s++) later += job->exps[i].impl->estimate_units(&ctx, s);
        for (int s = 1; s <= LAST_STAGE[i]; s++) later_work += job->exps[i].impl->estimate_cost(&ctx, s);
    }
    CHECK_MSG(total == want + later, "total %lld, planned %lld + estimated %lld", (long long)total, (long long)want,
              (long long)later); /* the later stages are in from the start */
    md_progress_work(p, &wdone, &wtotal); /* the same for the costs */
    CHECK_NEAR(wtotal, want_work + later_work, 1e-9 * wtotal);
    CHECK(wdone == plans[0].cost[0] + plans[0].cost[1]);
    md_progress_unit_done(p, 1, 0, plans[1].cost[0]);
    double wdone2;
    md_progress_work(p, &wdone2, &wtotal);
    CHECK(wdone2 == wdone + plans[1].cost[0]);
    md_progress_end_exp(p, 0, 0); /* selftest ended after stage 0: its stage 1 (7) goes */
    int64_t d2, t2;
    md_progress_counts(p, &d2, &t2, NULL);
    CHECK(d2 == 3 && t2 == total - 7);
    md_progress_free(p);

    o.part_index = 1, o.part_count = 2;
    CHECK(md_progress_create(&p, &o, &err) == MD_OK);
    if (!p) return;
    md_progress_set_stage(p, 0, 0, 7, plans[0].cost, NULL); /* units 1, 3, 5 are this part's */
    md_progress_print_plan(p);
    md_progress_counts(p, &done, &total, &unsized);
    CHECK(total == 3 && unsized == 0); /* nothing after the part's stage; the other experiments unplanned = none */
    md_progress_work(p, &wdone, &wtotal);
    CHECK(wdone == 0 && wtotal == plans[0].cost[1] + plans[0].cost[3] + plans[0].cost[5]);
    md_progress_free(p);
}

/* The ETA from synthetic completions: experiment 0 has 40 units of cost 1,
 * experiment 1 10 of cost 5 (the other experiments' stages unsized: not
 * counted); the run starts at clock 100 and unit k of experiment 0
 * finishes at 100 + k. Every number is binary-exact, so the ETA is exact. */
static void test_eta(md_job *job, void *const *opts)
{
    md_progress *p = NULL;
    md_error err;
    md_progress_opts o = {.job = job, .exp_opts = opts, .output = "x.h5", .world = 1, .start = 100};
    CHECK(md_progress_create(&p, &o, &err) == MD_OK);
    if (!p) return;
    double cheap[40], costly[10];
    for (int u = 0; u < 40; u++) cheap[u] = 1;
    for (int u = 0; u < 10; u++) costly[u] = 5;
    md_progress_set_stage(p, 0, 0, 40, cheap, NULL);
    md_progress_set_stage(p, 1, 0, 10, costly, NULL);
    CHECK(md_progress_eta(p, 200) == -1); /* no unit finished yet: unknown */
    md_progress_unit_done_at(p, 0, 0, 1, 101);
    CHECK(md_progress_eta(p, 102) == 178); /* 1 cost over the 2 s since the start; 39 + 50 left */
    for (int k = 2; k <= 40; k++) md_progress_unit_done_at(p, 0, 0, 1, 100 + k);
    /* the last 32 units (k = 9..40) since unit 8 finished (108): 32 / 32 s; the 50 cost of experiment 1
       left: 50 s (a rate in units would say 10 units at 1/s, 10 s) */
    CHECK(md_progress_eta(p, 140) == 50);
    CHECK(md_progress_eta(p, 172) == 100); /* nothing finished for 32 s more: the rate halves */
    md_progress_unit_done_at(p, 1, 0, 5, 145);
    md_progress_unit_done_at(p, 1, 0, 5, 150);
    /* window k = 11..40 and the two: 30 + 10 cost since 110; 40 left at 1/s */
    CHECK(md_progress_eta(p, 150) == 40);
    for (int u = 2; u < 10; u++) md_progress_unit_done_at(p, 1, 0, 5, 150 + 5 * u);
    CHECK(md_progress_eta(p, 200) == 0); /* nothing left */
    int64_t done, total;
    md_progress_counts(p, &done, &total, NULL);
    CHECK(done == 50 && total == 50);
    md_progress_free(p);
}

int main(void)
{
    test_parts();
    md_job *job = NULL;
    md_error err;
    int rc = md_job_parse_string(JOB, "<test_progress>", NULL, 1, &job, &err);
    CHECK_MSG(rc == MD_OK, "%s", err.msg);
    if (rc == MD_OK) {
        int64_t stage0[16];
        md_plan plans[16];
        void **opts = NULL; /* bound once, as the runner does */
        CHECK(md_kind_bind_opts(job, &opts, &err) == MD_OK);
        test_estimates(job, opts, stage0, plans);
        test_cost_estimates(job, opts, plans);
        test_totals(job, opts, stage0, plans);
        test_eta(job, opts);
        for (int i = 0; i < job->n_exps; i++) md_plan_free(&plans[i]);
        md_kind_free_opts(job, opts);
        md_job_free(job);
    }
    TEST_MAIN_END();
}
