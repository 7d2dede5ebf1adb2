/* test_tokcache_loads.c — a phase loads each model folder's tokenizer once
 * (tokcache.h; a real vocabulary takes ~1.4 s to load): `validate`'s
 * folder check and the refusal kind's validate hook share the caller's
 * cache, and so do a run's stage-0 plan and its progress estimate after
 * them; the cache's tokenizers give the same plan costs and estimate as
 * loading each (md_kind_ctx.toks NULL, the old path).
 *
 * The loads are counted by tokload_count.h (this executable's
 * md_tokenizer_load in place of the library's). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>

#include "mechdiff/experiment.h"
#include "mechdiff/job.h"
#include "mechdiff/plan.h"
#include "mechdiff/tokcache.h"
#include "mechdiff/tokenizer.h"
#include "testutil.h"

#include "tokload_count.h"

static const char *JOB_HEAD = "name: t\nseed: 1\n"
                              "models: {base: models/organism-base, instruct: models/organism-instruct}\n"
                              "datasets: {harmful: data/harmful.csv, harmless: data/harmless.csv, cities: "
                              "data/cities.csv, sp_en_trans: data/sp_en_trans.csv}\n"
                              "experiments:\n";

/* The cache: one load per folder however often it is asked; NULL: a load
 * each time, freed by the release. Also shows the counter sees the library's
 * calls (else every other check would pass for the wrong reason). */
static int check_cache(void)
{
    md_tokcache *toks = NULL;
    md_tokenizer *a = NULL, *b = NULL, *c = NULL;
    md_error err;
    int before = loads;
    CHECK_MSG(md_tokcache_create(&toks, &err) == MD_OK, "%s", err.msg);
    CHECK_MSG(md_tokcache_acquire(toks, "models/organism-base", &a, &err) == MD_OK, "%s", err.msg);
    CHECK_MSG(loads - before == 1, "the first acquire made %d counted loads, not 1: the library does not call "
              "md_tokenizer_load through its PLT (this test needs symbol interposition)", loads - before);
    int counted = loads - before == 1;
    CHECK_MSG(md_tokcache_acquire(toks, "models/organism-base", &b, &err) == MD_OK && b == a, "second acquire");
    CHECK_MSG(md_tokcache_acquire(toks, "models/organism-instruct", &c, &err) == MD_OK && c && c != a, "%s",
              err.msg);
    CHECK_MSG(loads - before == 2, "2 folders asked 3 times: %d loads", loads - before);
    CHECK(md_tokcache_acquire(toks, "models/no-such-folder", &b, &err) == MD_ERR && b == NULL);
    CHECK(md_tokcache_acquire(toks, "models/no-such-folder", &b, &err) == MD_ERR); /* not cached: loads again */
    CHECK_MSG(loads - before == 4, "a failed load is tried again: %d loads", loads - before);
    md_tokcache_free(toks);
    before = loads;
    CHECK(md_tokcache_acquire(NULL, "models/organism-base", &a, &err) == MD_OK && a);
    CHECK(md_tokcache_acquire(NULL, "models/organism-base", &b, &err) == MD_OK && b && b != a);
    CHECK_MSG(loads - before == 2, "without a cache every acquire loads: %d", loads - before);
    md_tokcache_release(NULL, a);
    md_tokcache_release(NULL, b);
    return counted;
}

/* Stage 0's plan with ctx (its tokenizers from ctx.toks or loaded): the
 * summed unit costs into *sum and the estimate into est. */
static void plan_and_estimate(const md_kind_ctx *ctx, double *sum, md_stage_estimate *est, const char *what)
{
    md_plan plan;
    md_error err;
    md_blob none = {0};
    md_plan_init(&plan, 0);
    CHECK_MSG(ctx->exp->impl->plan(ctx, 0, &none, &plan, &err) == MD_OK, "%s: %s", what, err.msg);
    *sum = 0;
    for (int64_t u = 0; u < plan.n_units; u++) *sum += plan.cost[u];
    CHECK_MSG(md_kind_estimate_stages(ctx, est, &err) == MD_OK, "%s: %s", what, err.msg);
    md_plan_free(&plan);
}

/* validate, then every experiment's stage-0 plan and estimate, with one
 * cache: 2 loads for the 2 model folders in all (the old code, for one
 * refusal experiment: 2 at the folder check, 2 at the kind's validate, 2
 * for the plan, 2 for the estimate); the costs and the estimates equal
 * those without the cache. */
static void check_job(const char *exp_line)
{
    char text[1024];
    snprintf(text, sizeof text, "%s%s", JOB_HEAD, exp_line);
    md_job *job = NULL;
    void **opts = NULL;
    md_tokcache *toks = NULL;
    md_error err;
    CHECK_MSG(md_job_parse_string(text, "<test_tokcache_loads>", NULL, 1, &job, &err) == MD_OK, "%s", err.msg);
    if (!job || md_kind_bind_opts(job, &opts, &err) != MD_OK || md_tokcache_create(&toks, &err) != MD_OK) {
        md_kind_free_opts(job, opts);
        md_job_free(job);
        return;
    }
    int before = loads;
    CHECK_MSG(md_job_validate(job, toks, &err) == MD_OK, "%s", err.msg);
    CHECK_MSG(loads - before == 2, "%s: validate loaded %d tokenizers for 2 model folders", exp_line, loads - before);
    for (int i = 0; i < job->n_exps; i++) {
        const char *name = job->exps[i].name;
        md_kind_ctx ctx = md_kind_ctx_of(job, opts, i);
        ctx.toks = toks;
        double cached_sum, fresh_sum;
        md_stage_estimate cached[MD_KIND_MAX_STAGES] = {{0}}, fresh[MD_KIND_MAX_STAGES] = {{0}};
        before = loads;
        plan_and_estimate(&ctx, &cached_sum, cached, name);
        CHECK_MSG(loads == before, "%s: the plan and estimate after validate loaded %d tokenizers, not 0", name,
                  loads - before);
        ctx.toks = NULL;
        plan_and_estimate(&ctx, &fresh_sum, fresh, name); /* each load its own (the old path) */
        CHECK_MSG(cached_sum == fresh_sum, "%s: plan cost %.17g with the cache, %.17g without", name, cached_sum,
                  fresh_sum);
        for (int s = 0; s < MD_KIND_MAX_STAGES; s++)
            CHECK_MSG(cached[s].units == fresh[s].units && cached[s].cost == fresh[s].cost,
                      "%s: stage %d estimate %lld/%.17g with the cache, %lld/%.17g without", name, s,
                      (long long)cached[s].units, cached[s].cost, (long long)fresh[s].units, fresh[s].cost);
    }
    md_tokcache_free(toks);
    md_kind_free_opts(job, opts);
    md_job_free(job);
}

int main(void)
{
    if (check_cache()) {
        check_job("  - {kind: refusal, n_train: 8, n_test: 5, batch: 3, layer: 1, max_new_tokens: 4,\n"
                  "     templates: {base: base, instruct: chat}}\n");
        check_job("  - {kind: refusal_sweep, n_train: 6, n_test: 3, batch: 4, positions: [-1, -2], "
                  "max_new_tokens: 2}\n");
        /* the kinds that take their tokenizers through md_exp_load_role, with refusal: one cache for all */
        check_job("  - {kind: knowledge, datasets: [cities], max_pairs: 3}\n"
                  "  - {kind: truth, train_datasets: [sp_en_trans], test_datasets: [cities], max_statements: 24}\n"
                  "  - {kind: confidence, prompts: cities, max_prompts: 6}\n"
                  "  - {kind: refusal, n_train: 4, n_test: 2, batch: 2, max_new_tokens: 2}\n");
    }
    TEST_MAIN_END();
}
