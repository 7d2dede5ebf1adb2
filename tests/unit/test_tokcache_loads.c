/* test_tokcache_loads.c — a phase loads each model folder's tokenizer once
 * (tokcache.h; a real vocabulary takes ~1.4 s to load): `validate`'s
 * folder check and the refusal kind's validate hook share the caller's
 * cache, and so do a run's stage-0 plan and its progress estimate after
 * them; a folder's tokenizer is loaded once however its path is spelled
 * (the cache's key is the folder's device and inode); the cache's
 * tokenizers give the same plan costs and estimate as loading each
 * (md_kind_ctx.toks NULL, the old path).
 *
 * The loads are counted by tokload_count.h (this executable's
 * md_tokenizer_load in place of the library's). */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mechdiff/experiment.h"
#include "mechdiff/job.h"
#include "mechdiff/plan.h"
#include "mechdiff/tokcache.h"
#include "mechdiff/tokenizer.h"
#include "testutil.h"

#include "tokload_count.h"

static const char *MODELS_TWO = "models: {base: models/organism-base, instruct: models/organism-instruct}\n";
/* Both roles on one folder, spelled two ways: one load in all (the parse
 * already makes a job's existing paths canonical, job_value.c, so this
 * holds by either key; check_spellings asks the cache with raw spellings). */
static const char *MODELS_ONE = "models: {base: models/organism-base, instruct: ./models/organism-base/}\n";
static const char *JOB_REST = "datasets: {harmful: data/harmful.csv, harmless: data/harmless.csv, cities: "
                              "data/cities.csv, sp_en_trans: data/sp_en_trans.csv}\n"
                              "experiments:\n";

/* Writes a link at LINK to TARGET made absolute; 0 on success. */
static int link_to(const char *target, const char *link)
{
    char real[PATH_MAX];
    return realpath(target, real) && symlink(real, link) == 0 ? 0 : -1;
}

/* The cache is keyed by the folder, not its spelling: base (models/organism-
 * base, loaded already) asked as ./models/organism-base/, by its absolute
 * path and through a symbolic link to it gives the same tokenizer with no
 * new load. A folder whose tokenizer.json is a link to base's but with a
 * tokenizer_config.json of its own (another chat template) loads apart. */
static void check_spellings(md_tokcache *toks, const md_tokenizer *base)
{
    char dir[512], abs_base[PATH_MAX], via_link[600], own[600], path[700];
    md_tokenizer *t = NULL;
    md_error err;
    snprintf(dir, sizeof dir, "%s/test_tokcache_loads.XXXXXX", tu_tmpdir());
    CHECK(realpath("models/organism-base", abs_base) != NULL);
    if (!mkdtemp(dir)) {
        CHECK_MSG(0, "cannot make a scratch folder under %s", tu_tmpdir());
        return;
    }
    snprintf(via_link, sizeof via_link, "%s/base-link", dir);
    snprintf(own, sizeof own, "%s/own-config", dir);
    CHECK(link_to("models/organism-base", via_link) == 0);
    int before = loads;
    const char *same[] = {"./models/organism-base/", "models//organism-base", abs_base, via_link};
    for (int i = 0; i < 4; i++) {
        t = NULL;
        CHECK_MSG(md_tokcache_acquire(toks, same[i], &t, &err) == MD_OK && t == base, "%s: %s", same[i],
                  t ? "another tokenizer than models/organism-base's" : err.msg);
    }
    CHECK_MSG(loads == before, "4 more spellings of models/organism-base loaded %d times, not 0", loads - before);

    snprintf(path, sizeof path, "%s/tokenizer.json", own);
    CHECK(mkdir(own, 0755) == 0 && link_to("models/organism-base/tokenizer.json", path) == 0);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", own);
    FILE *f = fopen(path, "w");
    CHECK(f && fputs("{\"chat_template\": \"{{ messages[0]['content'] }}\"}\n", f) >= 0);
    if (f) fclose(f);
    before = loads;
    t = NULL;
    CHECK_MSG(md_tokcache_acquire(toks, own, &t, &err) == MD_OK && t && t != base, "%s: %s", own,
              t ? "got models/organism-base's tokenizer" : err.msg);
    CHECK_MSG(loads - before == 1, "a folder sharing only tokenizer.json: %d loads, not 1", loads - before);

    unlink(path);
    snprintf(path, sizeof path, "%s/tokenizer.json", own);
    unlink(path), rmdir(own), unlink(via_link), rmdir(dir);
}

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
    check_spellings(toks, a);
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
 * cache: one load per model folder (n_folders) in all (the old code, for
 * one refusal experiment on 2 folders: 2 at the folder check, 2 at the
 * kind's validate, 2 for the plan, 2 for the estimate); the costs and the
 * estimates equal those without the cache. */
static void check_job(const char *models, int n_folders, const char *exp_line)
{
    char text[1024];
    snprintf(text, sizeof text, "name: t\nseed: 1\n%s%s%s", models, JOB_REST, exp_line);
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
    CHECK_MSG(loads - before == n_folders, "%s: validate loaded %d tokenizers for %d model folder(s)", exp_line,
              loads - before, n_folders);
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
        check_job(MODELS_TWO, 2,
                  "  - {kind: refusal, n_train: 8, n_test: 5, batch: 3, layer: 1, max_new_tokens: 4,\n"
                  "     templates: {base: base, instruct: chat}}\n");
        check_job(MODELS_TWO, 2, "  - {kind: refusal_sweep, n_train: 6, n_test: 3, batch: 4, positions: [-1, -2], "
                  "max_new_tokens: 2}\n");
        /* the kinds that take their tokenizers through md_exp_load_role, with refusal: one cache for all */
        check_job(MODELS_TWO, 2, "  - {kind: knowledge, datasets: [cities], max_pairs: 3}\n"
                  "  - {kind: truth, train_datasets: [sp_en_trans], test_datasets: [cities], max_statements: 24}\n"
                  "  - {kind: confidence, prompts: cities, max_prompts: 6}\n"
                  "  - {kind: refusal, n_train: 4, n_test: 2, batch: 2, max_new_tokens: 2}\n");
        /* the folder check, the kinds' hooks, plans and estimates ask for both roles */
        check_job(MODELS_ONE, 1, "  - {kind: refusal, n_train: 4, n_test: 2, batch: 2, max_new_tokens: 2}\n"
                  "  - {kind: knowledge, datasets: [cities], max_pairs: 3}\n");
    }
    TEST_MAIN_END();
}
