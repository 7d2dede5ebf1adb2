/* test_kind_costs.c — the unit costs of the refusal and confidence kinds
 * (progress.h, "ETA by cost"; exp_cost.h) against hand counts:
 *  - refusal on the shipped pair (templates base: base, instruct: chat):
 *    every stage-0 unit's planned cost is its rows x the longest of their
 *    prompts rendered in the role's template and tokenised here
 *    (md_exp_instruction_template + md_chat_encode, as a unit renders them)
 *    x (layer + 1) / L; the estimate of stage 1 is the sum over its units of
 *    rows x the longest test prompt (x 1.2 hooked) + the logits of the
 *    prompt + max_new_tokens - 1 steps of a token through the model and its
 *    logits, at their FLOPs (the organism's weights stay in a cache: no read
 *    bound); and the rows are not priced at a fixed MD_COST_ROW_TOKENS;
 *  - confidence: stage 2's estimate minus stage 1's is top_k ablated
 *    reruns of the last block and the logits per batch: (1/L + V d / B) x
 *    max(rows, MD_COST_RIDGE_ROWS) at Llama-3.1-8B widths (a config written
 *    here: 32 layers, vocab 128256), rows x the same for the organism;
 *  - refusal's estimate on that folder (a config, no tokenizer) fails with
 *    an error naming the experiment and the model, as its plans would;
 *  - knowledge: the same pairs cost the same in blocks of 1 and of 16 on the
 *    organism (weights in a cache: FLOPs, which do not depend on the block),
 *    and at 8B widths blocks of 48 and 96 (every patched forward at or
 *    above MD_COST_RIDGE_ROWS rows: FLOPs again), while blocks of 1 cost
 *    more there (one pair's forwards carry 1..N rows: read-bound).
 * Token counts are integers and the shares (layer + 1) / L = 1/2 exact, so
 * stage 0 is compared exactly; sums of products with V d / B to 1e-12
 * relative. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exp/refusal.h"
#include "mechdiff/exp_cost.h"
#include "mechdiff/exp_prompt.h"
#include "mechdiff/exp_units.h"
#include "mechdiff/job.h"
#include "mechdiff/plan.h"
#include "testutil.h"

static const char *REFUSAL_JOB =
    "name: t\nseed: 1\n"
    "models: {base: models/organism-base, instruct: models/organism-instruct}\n"
    "datasets: {harmful: data/harmful.csv, harmless: data/harmless.csv}\n"
    "experiments:\n"
    "  - {kind: refusal, n_train: 8, n_test: 5, batch: 3, layer: 1, max_new_tokens: 4,\n"
    "     templates: {base: base, instruct: chat}}\n";

/* len[i] = the tokens of rows idx[0..n) of set k in role r's template,
 * rendered and encoded here. */
static void hand_tokens(const md_kind_ctx *ctx, const md_refusal_state *s, int r, int k, const int *idx, int n,
                        int *len)
{
    md_tokenizer *tok = NULL;
    md_error err;
    const char *dir = md_params_map_get(&ctx->job->top, "models", s->roles[r]);
    CHECK_MSG(md_tokenizer_load(&tok, dir, &err) == MD_OK, "%s", err.msg);
    if (!tok) return;
    const char *jt = md_tokenizer_chat_template(tok);
    md_chat_kind kind;
    const char *fmt;
    CHECK(md_exp_instruction_template(ctx, s->roles[r], jt ? md_chat_detect(jt) : MD_CHAT_UNKNOWN, &kind, &fmt,
                                      &err) == MD_OK);
    for (int i = 0; i < n; i++) {
        int *ids = NULL;
        size_t nid = 0;
        CHECK_MSG(md_chat_encode(tok, kind, fmt, md_csv_cell(s->csv[k], idx[i], s->col[k]), &ids, &nid, &err) ==
                      MD_OK, "%s", err.msg);
        len[i] = (int)nid;
        free(ids);
    }
    md_tokenizer_free(tok);
}

static int longest(const int *len, int r0, int n)
{
    int t = 0;
    for (int i = r0; i < r0 + n; i++) t = len[i] > t ? len[i] : t;
    return t;
}

static void test_refusal(void)
{
    md_job *job = NULL;
    void **opts = NULL;
    md_error err;
    CHECK_MSG(md_job_parse_string(REFUSAL_JOB, "<test_kind_costs>", NULL, 1, &job, &err) == MD_OK, "%s", err.msg);
    if (!job || md_kind_bind_opts(job, &opts, &err) != MD_OK) {
        md_job_free(job);
        return;
    }
    md_kind_ctx ctx = md_kind_ctx_of(job, opts, 0);
    md_refusal_state *s = NULL;
    CHECK_MSG(md_refusal_build_state(&ctx, &s, &err) == MD_OK, "%s", err.msg);
    md_plan plan;
    md_plan_init(&plan, 0);
    md_blob none = {0};
    md_stage_estimate est[MD_KIND_MAX_STAGES] = {{0}};
    CHECK_MSG(job->exps[0].impl->plan(&ctx, 0, &none, &plan, &err) == MD_OK, "%s", err.msg);
    CHECK_MSG(md_kind_estimate_stages(&ctx, est, &err) == MD_OK, "%s", err.msg);
    int train[2][2][8], test[2][2][5]; /* [role][set][row] */
    for (int r = 0; s && r < 2; r++)
        for (int k = 0; k < 2; k++) {
            hand_tokens(&ctx, s, r, k, s->train[k], 8, train[r][k]);
            hand_tokens(&ctx, s, r, k, s->test[k], 5, test[r][k]);
        }
    double sum0 = 0;
    for (int64_t u = 0; s && u < plan.n_units && u < s->acts.n; u++) {
        const int *key = s->acts.key[u];
        int r0, rows = md_exp_slice_batch(8, 3, key[2], &r0);
        double want = rows * longest(train[key[0]][key[1]], r0, rows) * 0.5; /* layer 1 of 4 */
        CHECK_MSG(plan.cost[u] == want, "unit %lld: cost %.17g, by hand %.17g", (long long)u, plan.cost[u], want);
        sum0 += want;
    }
    CHECK(s && plan.n_units == s->acts.n && est[0].cost == sum0);
    CHECK_MSG(sum0 != 2 * 2 * 8 * MD_COST_ROW_TOKENS * 0.5, "stage 0 priced at %d tokens a row", MD_COST_ROW_TOKENS);
    double lg = s ? s->logits : 0, sum1 = 0;
    for (int64_t u = 0; s && u < s->gen.n; u++) { /* (target, intervention, set, batch) */
        const int *key = s->gen.key[u];
        int r0, rows = md_exp_slice_batch(5, 3, key[3], &r0);
        sum1 += rows * longest(test[key[0]][key[2]], r0, rows) * (key[1] ? 1.2 : 1.0) + rows * lg +
                3 * rows * (1 + lg);
    }
    CHECK_MSG(s && fabs(est[1].cost - sum1) <= 1e-12 * sum1, "stage 1 estimated %.17g, by hand %.17g", est[1].cost,
              sum1);
    md_plan_free(&plan);
    md_refusal_free_state(s);
    md_kind_free_opts(job, opts);
    md_job_free(job);
}

/* md_kind_estimate_stages of the one experiment of the job text into est:
 * its status (MD_ERR with err set; a job that does not parse is a failed
 * check). */
static int estimate_job(const char *text, md_stage_estimate *est, md_error *err)
{
    md_job *job = NULL;
    void **opts = NULL;
    int rc = MD_ERR;
    CHECK_MSG(md_job_parse_string(text, "<test_kind_costs>", NULL, 1, &job, err) == MD_OK, "%s", err->msg);
    if (job && md_kind_bind_opts(job, &opts, err) == MD_OK) {
        md_kind_ctx ctx = md_kind_ctx_of(job, opts, 0);
        rc = md_kind_estimate_stages(&ctx, est, err);
        md_kind_free_opts(job, opts);
    }
    md_job_free(job);
    return rc;
}

/* Stage 2's estimated cost minus stage 1's for a confidence job on the
 * model in dir (8 prompts, one batch, top_k 10). */
static double rerun_cost(const char *dir)
{
    char text[1024];
    snprintf(text, sizeof text,
             "name: t\nseed: 1\nmodels: {base: %s}\ndatasets: {cities: data/cities.csv}\n"
             "experiments:\n  - {kind: confidence, prompts: cities, max_prompts: 8, prompt_batch: 8, top_k: 10}\n",
             dir);
    md_error err;
    md_stage_estimate est[MD_KIND_MAX_STAGES] = {{0}};
    CHECK_MSG(estimate_job(text, est, &err) == MD_OK, "%s", err.msg);
    CHECK(est[1].units == 1 && est[2].units == 1);
    return est[2].cost - est[1].cost;
}

/* refusal's estimate with a model folder that has no tokenizer. */
static void test_no_tokenizer(const char *dir)
{
    char text[1024];
    snprintf(text, sizeof text,
             "name: t\nseed: 1\nmodels: {base: %s}\ndatasets: {harmful: data/harmful.csv, harmless: "
             "data/harmless.csv}\nexperiments:\n  - {kind: refusal, n_train: 4, n_test: 2, templates: {base: base}}\n",
             dir);
    md_error err;
    md_stage_estimate est[MD_KIND_MAX_STAGES] = {{0}};
    CHECK(estimate_job(text, est, &err) == MD_ERR);
    CHECK_MSG(strstr(err.msg, "refusal") && strstr(err.msg, "model 'base'") && strstr(err.msg, "tokenizer"), "%s",
              err.msg);
    printf("no tokenizer: %s\n", err.msg);
}

/* 0 when src was copied to dst. */
static int copy_file(const char *src, const char *dst)
{
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    char buf[65536];
    size_t n;
    int rc = in && out ? 0 : -1;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) rc = -1;
    if (in && ferror(in)) rc = -1;
    if (in) fclose(in);
    if (out && fclose(out) != 0) rc = -1;
    return rc;
}

/* The estimated cost of a knowledge job on 96 cities pairs in blocks of
 * `block` on the model in dir. */
static double kn_cost(const char *dir, int block)
{
    char text[1024];
    snprintf(text, sizeof text,
             "name: t\nseed: 1\nmodels: {base: %s}\ndatasets: {cities: data/cities.csv}\n"
             "experiments:\n  - {kind: knowledge, datasets: [cities], max_pairs: 96, pair_block: %d}\n",
             dir, block);
    md_error err;
    md_stage_estimate est[MD_KIND_MAX_STAGES] = {{0}};
    CHECK_MSG(estimate_job(text, est, &err) == MD_OK, "%s", err.msg);
    return est[0].cost;
}

/* Knowledge on the organism and on dir (an 8B-width config), to which the
 * organism's tokenizer is copied here. */
static void test_knowledge(const char *dir)
{
    double o1 = kn_cost("models/organism-base", 1), o16 = kn_cost("models/organism-base", 16);
    CHECK_MSG(o1 > 0 && fabs(o1 - o16) <= 1e-12 * o1, "organism: block 1 %.17g, block 16 %.17g", o1, o16);
    const char *files[] = {"tokenizer.json", "tokenizer_config.json"};
    char src[600], dst[600];
    for (int i = 0; i < 2; i++) {
        snprintf(src, sizeof src, "models/organism-base/%s", files[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
        CHECK(copy_file(src, dst) == 0);
    }
    double b1 = kn_cost(dir, 1), b48 = kn_cost(dir, 48), b96 = kn_cost(dir, 96);
    printf("knowledge cost, 96 pairs: organism %.6g; 8B widths: block 1 %.6g, 48 %.6g, 96 %.6g\n", o1, b1, b48, b96);
    CHECK_MSG(b48 > 0 && fabs(b48 - b96) <= 1e-12 * b48, "8B: block 48 %.17g, block 96 %.17g", b48, b96);
    CHECK_MSG(b1 > 1.01 * b48, "8B: block 1 %.17g is not read-bound against block 48 %.17g", b1, b48);
    for (int i = 0; i < 2; i++) {
        snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
        CHECK(remove(dst) == 0);
    }
}

static void test_confidence(void)
{
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/test_kind_costs_llama8b", tu_tmpdir());
    snprintf(path, sizeof path, "%s/config.json", dir);
    mkdir(dir, 0755); /* may exist from an earlier run */
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs("{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 4096,\n"
          " \"intermediate_size\": 14336, \"num_hidden_layers\": 32, \"num_attention_heads\": 32,\n"
          " \"num_key_value_heads\": 8, \"head_dim\": 128, \"vocab_size\": 128256, \"rms_norm_eps\": 1e-5,\n"
          " \"rope_theta\": 500000.0, \"hidden_act\": \"silu\", \"max_position_embeddings\": 131072,\n"
          " \"tie_word_embeddings\": false, \"torch_dtype\": \"bfloat16\"}\n",
          f);
    fclose(f);
    test_no_tokenizer(dir);
    double lg8b = 128256.0 * 4096 / 6979321856.0, lg_org = 7310.0 * 128 / 786432.0;
    double big = rerun_cost(dir), small = rerun_cost("models/organism-base");
    CHECK_NEAR(big, 10 * (1.0 / 32 + lg8b) * MD_COST_RIDGE_ROWS, 1e-12 * big);
    CHECK_NEAR(small, 10 * 8 * (1.0 / 4 + lg_org), 1e-12 * small);
    test_knowledge(dir);
    CHECK(remove(path) == 0 && rmdir(dir) == 0);
}

int main(void)
{
    test_refusal();
    test_confidence();
    TEST_MAIN_END();
}
