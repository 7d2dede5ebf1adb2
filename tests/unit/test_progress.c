/* test_progress.c — the progress module's counting (include/mechdiff/progress.h)
 * and every kind's estimate_units against its own plan:
 *  - units of a part (u mod n == i) for n, i around the edges;
 *  - for each experiment of a job with every kind on the shipped pair, the
 *    estimate of stage 0 is the unit count the kind's plan declares, and
 *    the estimates stop (0) after the kind's last stage; the later stages'
 *    estimates against the counts they end up with are checked by
 *    tests/e2e/progress.sh (they need the earlier stages' results);
 *  - the total of a progress object: planned stage 0 + estimated later
 *    stages, done units counted, an experiment's end drops its later stages,
 *    a part run counts no later stage. */
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

static int64_t planned_stage0(const md_job *job, void *const *opts, int i)
{
    md_kind_ctx ctx = md_kind_ctx_of(job, opts, i);
    md_blob none = {0};
    md_plan plan;
    md_error err;
    md_plan_init(&plan, 0);
    int rc = job->exps[i].impl->plan(&ctx, 0, &none, &plan, &err);
    CHECK_MSG(rc == MD_OK, "%s: %s", job->exps[i].name, err.msg);
    int64_t n = rc == MD_OK ? plan.n_units : -2;
    md_plan_free(&plan);
    return n;
}

static void test_estimates(const md_job *job, void *const *opts, int64_t stage0[])
{
    for (int i = 0; i < job->n_exps; i++) {
        const md_exp_spec *e = &job->exps[i];
        md_kind_ctx ctx = md_kind_ctx_of(job, opts, i);
        stage0[i] = planned_stage0(job, opts, i);
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

static void test_totals(md_job *job, void *const *opts, const int64_t stage0[])
{
    md_progress *p = NULL;
    md_error err;
    md_progress_opts o = {.job = job, .exp_opts = opts, .output = "x.h5", .world = 1};
    CHECK(md_progress_create(&p, &o, &err) == MD_OK);
    if (!p) return;
    int64_t want = 0;
    for (int i = 0; i < job->n_exps; i++) {
        md_progress_set_stage(p, i, 0, stage0[i], i == 0 ? 2 : 0); /* 2 units of the first already done */
        want += stage0[i];
    }
    md_progress_print_plan(p);
    int64_t done, total;
    int unsized;
    md_progress_counts(p, &done, &total, &unsized);
    CHECK(done == 2 && unsized == 0);
    int64_t later = 0;
    for (int i = 0; i < job->n_exps; i++) {
        md_kind_ctx ctx = md_kind_ctx_of(job, opts, i);
        for (int s = 1; s <= LAST_STAGE[i]; s++) later += job->exps[i].impl->estimate_units(&ctx, s);
    }
    CHECK_MSG(total == want + later, "total %lld, planned %lld + estimated %lld", (long long)total, (long long)want,
              (long long)later); /* the later stages are in from the start */
    md_progress_unit_done(p, 1, 0);
    md_progress_end_exp(p, 0, 0); /* selftest ended after stage 0: its stage 1 (7) goes */
    int64_t d2, t2;
    md_progress_counts(p, &d2, &t2, NULL);
    CHECK(d2 == 3 && t2 == total - 7);
    md_progress_free(p);

    o.part_index = 1, o.part_count = 2;
    CHECK(md_progress_create(&p, &o, &err) == MD_OK);
    if (!p) return;
    md_progress_set_stage(p, 0, 0, md_progress_units_in_part(7, 1, 2), 0);
    md_progress_print_plan(p);
    md_progress_counts(p, &done, &total, &unsized);
    CHECK(total == 3 && unsized == 0); /* nothing after the part's stage; the other experiments unplanned = none */
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
        void **opts = NULL; /* bound once, as the runner does */
        CHECK(md_kind_bind_opts(job, &opts, &err) == MD_OK);
        test_estimates(job, opts, stage0);
        test_totals(job, opts, stage0);
        md_kind_free_opts(job, opts);
        md_job_free(job);
    }
    TEST_MAIN_END();
}
