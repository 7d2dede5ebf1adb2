/* test_progress.c — the progress module's counting (include/mechdiff/progress.h)
 * and every kind's estimate (md_kind.estimate) against its own plan:
 *  - units of a part (u mod n == i) for n, i around the edges;
 *  - for each experiment of a job with every kind on the shipped pair, the
 *    estimate of stage 0 is the unit count the kind's plan declares, and
 *    the estimates stop (0) after the kind's last stage; the later stages'
 *    estimates against the counts they end up with are checked by
 *    tests/e2e/progress.sh (they need the earlier stages' results);
 *  - every kind's estimated cost of stage 0 is the sum of the costs its plan
 *    gives the units (md_plan_cost), later stages are costed, and none after
 *    the last; a kind whose files are gone fails naming the file and leaves
 *    its stages "not known";
 *  - the total of a progress object: planned stage 0 + estimated later
 *    stages, done units counted, an experiment's end drops its later stages,
 *    a part run counts no later stage; the work (cost) the same way: the
 *    plans' costs + the kinds' estimated costs of the later stages;
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

/* Every kind's one estimate against its plan of stage 0: the units it
 * declares and the sum of their costs (summed in the plan's unit order by
 * the same function, so equal up to rounding: 1e-12 relative); every unit
 * has a positive cost; later stages are sized and costed; none after the
 * last. */
static void test_estimates(const md_job *job, void *const *opts, int64_t stage0[], md_plan plans[],
                           md_stage_estimate est[][MD_KIND_MAX_STAGES])
{
    for (int i = 0; i < job->n_exps; i++) {
        const md_exp_spec *e = &job->exps[i];
        md_kind_ctx ctx = md_kind_ctx_of(job, opts, i);
        md_error err;
        stage0[i] = planned_stage0(job, opts, i, &plans[i]);
        CHECK_MSG(e->impl->estimate, "%s: no estimate", e->kind);
        CHECK_MSG(md_kind_estimate_stages(&ctx, est[i], &err) == MD_OK, "%s: %s", e->name, err.msg);
        CHECK_MSG(est[i][0].units == stage0[i], "%s: stage 0 estimated %lld, planned %lld", e->name,
                  (long long)est[i][0].units, (long long)stage0[i]);
        double planned = sum_costs(&plans[i]);
        CHECK_MSG(fabs(est[i][0].cost - planned) <= 1e-12 * planned && planned > 0,
                  "%s: stage 0 cost estimated %.17g, planned %.17g", e->name, est[i][0].cost, planned);
        for (int64_t u = 0; u < plans[i].n_units; u++) CHECK(plans[i].cost[u] > 0);
        for (int s = 1; s <= LAST_STAGE[i]; s++)
            CHECK_MSG(est[i][s].units >= 1 && est[i][s].cost > 0, "%s: stage %d not sized (%lld units, cost %g)",
                      e->name, s, (long long)est[i][s].units, est[i][s].cost);
        for (int s = LAST_STAGE[i] + 1; s < MD_KIND_MAX_STAGES; s++)
            CHECK_MSG(est[i][s].units == 0 && est[i][s].cost == 0, "%s: a stage %d after the last", e->name, s);
    }
}

/* A kind whose files are gone: its estimate fails with the kind's error,
 * and what is left is "not known" (stage 0, and the later stages of a
 * kind with several), none after a one-stage kind's stage 0. */
static void test_estimate_failure(void)
{
    static const char *GONE =
        "name: t\nseed: 1\n"
        "models: {base: models/organism-base, instruct: models/organism-instruct}\n"
        "datasets: {cities: data/no-such-file.csv}\n"
        "experiments:\n"
        "  - {kind: truth, train_datasets: [cities], test_datasets: [cities]}\n"
        "  - {kind: knowledge, datasets: [cities]}\n";
    md_job *job = NULL;
    void **opts = NULL;
    md_error err;
    int rc = md_job_parse_string(GONE, "<test_progress gone>", NULL, 0, &job, &err);
    CHECK_MSG(rc == MD_OK, "%s", err.msg);
    if (rc != MD_OK || md_kind_bind_opts(job, &opts, &err) != MD_OK) {
        md_job_free(job);
        return;
    }
    for (int i = 0; i < 2; i++) {
        md_stage_estimate est[MD_KIND_MAX_STAGES];
        md_kind_ctx ctx = md_kind_ctx_of(job, opts, i);
        md_error_clear(&err);
        CHECK(md_kind_estimate_stages(&ctx, est, &err) == MD_ERR);
        CHECK_MSG(strstr(err.msg, "no-such-file.csv"), "%s: error '%s' does not name the file", job->exps[i].name,
                  err.msg);
        CHECK(est[0].units == -1 && est[0].cost == 0);
        CHECK(est[1].units == (i == 0 ? -1 : 0) && est[1].cost == 0);
    }
    md_kind_free_opts(job, opts);
    md_job_free(job);
}

static void test_totals(md_job *job, void *const *opts, const int64_t stage0[], const md_plan plans[],
                        md_stage_estimate est[][MD_KIND_MAX_STAGES])
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
    md_progress_print_plan(p, NULL);
    int64_t done, total;
    int unsized;
    md_progress_counts(p, &done, &total, &unsized);
    CHECK(done == 2 && unsized == 0);
    int64_t later = 0;
    double later_work = 0, wdone, wtotal;
    for (int i = 0; i < job->n_exps; i++)
        for (int s = 1; s <= LAST_STAGE[i]; s++) later += est[i][s].units, later_work += est[i][s].cost;
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
    md_progress_print_plan(p, NULL);
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
        md_stage_estimate est[16][MD_KIND_MAX_STAGES];
        void **opts = NULL; /* bound once, as the runner does */
        CHECK(md_kind_bind_opts(job, &opts, &err) == MD_OK);
        test_estimates(job, opts, stage0, plans, est);
        test_totals(job, opts, stage0, plans, est);
        test_eta(job, opts);
        for (int i = 0; i < job->n_exps; i++) md_plan_free(&plans[i]);
        md_kind_free_opts(job, opts);
        md_job_free(job);
    }
    test_estimate_failure();
    TEST_MAIN_END();
}
