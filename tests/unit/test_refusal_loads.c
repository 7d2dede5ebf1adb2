/* test_refusal_loads.c — the refusal kind's stage-0 plan loads each role's
 * tokenizer once (refusal_plan.c: plan_role_tokens reads the tokens of the
 * activations and prices the prompts with it; a real vocabulary takes ~1.4 s
 * to load), in point and sweep mode on the shipped pair, and its unit costs
 * are those of the estimate (md_refusal_price, which loads each role's once).
 *
 * The loads are counted by tokload_count.h (this executable's
 * md_tokenizer_load in place of the library's). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>

#include "mechdiff/exp_util.h"
#include "mechdiff/experiment.h"
#include "mechdiff/job.h"
#include "mechdiff/plan.h"
#include "mechdiff/tokcache.h"
#include "mechdiff/tokenizer.h"
#include "testutil.h"

#include "tokload_count.h"

static const char *JOB_HEAD = "name: t\nseed: 1\n"
                              "models: {base: models/organism-base, instruct: models/organism-instruct}\n"
                              "datasets: {harmful: data/harmful.csv, harmless: data/harmless.csv}\n"
                              "experiments:\n";

/* The library's own calls reach the counter: one load through md_exp_load_role. */
static int counts_library_calls(const md_kind_ctx *ctx)
{
    md_config cfg;
    md_tokenizer *tok = NULL;
    md_error err;
    int before = loads;
    CHECK_MSG(md_exp_load_role(ctx, "test", "base", &cfg, &tok, &err) == MD_OK, "%s", err.msg);
    md_tokcache_release(ctx->toks, tok);
    CHECK_MSG(loads == before + 1, "md_exp_load_role made %d counted loads, not 1: the library does not call "
              "md_tokenizer_load through its PLT (this test needs symbol interposition)", loads - before);
    return loads == before + 1;
}

/* Stage 0's plan of the job's one experiment: 2 loads (one a role); its
 * costs summed equal the estimate's, which also loads each role's once. */
static void check_job(const char *exp_line)
{
    char text[1024];
    snprintf(text, sizeof text, "%s%s", JOB_HEAD, exp_line);
    md_job *job = NULL;
    void **opts = NULL;
    md_error err;
    CHECK_MSG(md_job_parse_string(text, "<test_refusal_loads>", NULL, 1, &job, &err) == MD_OK, "%s", err.msg);
    if (!job || md_kind_bind_opts(job, &opts, &err) != MD_OK) {
        md_job_free(job);
        return;
    }
    md_kind_ctx ctx = md_kind_ctx_of(job, opts, 0);
    if (counts_library_calls(&ctx)) {
        md_plan plan;
        md_plan_init(&plan, 0);
        md_blob none = {0};
        int before = loads;
        CHECK_MSG(job->exps[0].impl->plan(&ctx, 0, &none, &plan, &err) == MD_OK, "%s", err.msg);
        CHECK_MSG(loads - before == 2, "%s: the stage-0 plan loaded %d tokenizers for 2 roles", exp_line,
                  loads - before);
        md_stage_estimate est[MD_KIND_MAX_STAGES] = {{0}};
        before = loads;
        CHECK_MSG(md_kind_estimate_stages(&ctx, est, &err) == MD_OK, "%s", err.msg);
        CHECK_MSG(loads - before == 2, "%s: the estimate loaded %d tokenizers for 2 roles", exp_line, loads - before);
        double sum = 0;
        for (int64_t u = 0; u < plan.n_units; u++) sum += plan.cost[u];
        /* the same integers x the same share, summed in the same order: exact */
        CHECK_MSG(plan.n_units == est[0].units && sum == est[0].cost, "%s: plan %lld units cost %.17g, estimate %lld "
                  "units %.17g", exp_line, (long long)plan.n_units, sum, (long long)est[0].units, est[0].cost);
        md_plan_free(&plan);
    }
    md_kind_free_opts(job, opts);
    md_job_free(job);
}

int main(void)
{
    check_job("  - {kind: refusal, n_train: 8, n_test: 5, batch: 3, layer: 1, max_new_tokens: 4,\n"
              "     templates: {base: base, instruct: chat}}\n");
    check_job("  - {kind: refusal_sweep, n_train: 6, n_test: 3, batch: 4, positions: [-1, -2], max_new_tokens: 2}\n");
    TEST_MAIN_END();
}
