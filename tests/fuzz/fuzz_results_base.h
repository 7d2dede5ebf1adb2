/* fuzz_results_base.h — the valid results files fuzz_results.c starts from,
 * written once per process by mechdiff's own writer (md_h5out_begin,
 * md_h5out_define, md_h5out_apply, md_h5out_commit) for a small selftest
 * job, as `mechdiff run` writes them (plan, compute, finish_stage read
 * back through md_reader), so they follow the writer as it changes:
 *   RB_FINISHED  the whole job finished (2 stages, digests written);
 *   RB_STOPPED   a run stopped after units 0 and 2 of stage 0's 3;
 *   RB_PART      part 0/2 of the job, finished (units 0 and 2 of stage 0);
 *   RB_MIXED     finished by a second segment that resumed with another
 *                numeric setup (--allow-mixed-numerics: done_at_start).
 * Times in the provenance are the writer's clock (not compared by the
 * harness). Ownership: rb_bases owns the images (rb_free). */
#ifndef MECHDIFF_FUZZ_RESULTS_BASE_H
#define MECHDIFF_FUZZ_RESULTS_BASE_H

#include "fuzz_common.h"
#include "mechdiff/experiment.h"
#include "mechdiff/h5out.h"
#include "mechdiff/job.h"
#include "mechdiff/plan.h"
#include "mechdiff/provenance.h"

enum { RB_FINISHED, RB_STOPPED, RB_PART, RB_MIXED, RB_COUNT };

#define RB_JOB "name: fz\nseed: 1\nexperiments:\n  - {kind: selftest, units: 3, rows: 2, cols: 3, stages: 2}\n"
#define RB_IDENTITY "45f938d8ebe41f10c1031e3d071b9a77ca59e2fb48b053396c03bd9d0b414e91"
#define RB_SETUP "backend=cpu weights=f32 gemm=f32"

/* The job every base was written for, parsed, with its bound options. */
typedef struct rb_job {
    md_job *job;
    void **opts;
    char *yaml;             /* resolved (md_job_to_yaml), as /provenance job_yaml */
} rb_job;

typedef struct rb_bases {
    rb_job j;
    uint8_t *image[RB_COUNT];
    size_t len[RB_COUNT];
} rb_bases;

static void rb_die(const char *what, const md_error *err)
{
    fprintf(stderr, "fuzz_results: writing the base files: %s: %s\n", what, err ? err->msg : "");
    abort();
}

static void rb_numerics(md_prov_numerics *n, const char *setup)
{
    memset(n, 0, sizeof *n);
    snprintf(n->backend, sizeof n->backend, "cpu");
    snprintf(n->weights, sizeof n->weights, "f32");
    snprintf(n->gemm, sizeof n->gemm, "f32");
    snprintf(n->blas, sizeof n->blas, "fuzz");
    snprintf(n->devices, sizeof n->devices, "cpu");
    snprintf(n->setup, sizeof n->setup, "%s", setup);
}

/* Plans stage of the job (input: stage 0's finish blob for stage 1). */
static void rb_plan(const rb_job *j, int stage, const md_blob *input, md_plan *plan)
{
    md_kind_ctx ctx = md_kind_ctx_of(j->job, j->opts, 0);
    md_error err;
    md_plan_init(plan, stage);
    plan->kind = "selftest";
    if (ctx.exp->impl->plan(&ctx, stage, input, plan, &err) != MD_OK) rb_die("plan", &err);
}

/* Computes unit u of stage into res (the worker's result bytes). */
static void rb_compute(const rb_job *j, int stage, const md_blob *input, int64_t u, md_result *res)
{
    md_kind_ctx ctx = md_kind_ctx_of(j->job, j->opts, 0);
    md_error err;
    md_result_reset(res);
    if (ctx.exp->impl->compute(&ctx, NULL, NULL, stage, input, u, res, &err) != MD_OK) rb_die("compute", &err);
}

/* One snapshot of path: defines stage (when define), applies the units of
 * mask (bit k = units k*block .. k*block+block-1), commits the segment. */
static void rb_snapshot(const rb_job *j, const char *path, const md_provenance *prov, int stage, const md_blob *in,
                        int define, unsigned mask, int64_t block, md_segment *seg)
{
    md_h5out *h = NULL;
    md_plan plan;
    md_result res;
    md_error err;
    md_result_init(&res);
    rb_plan(j, stage, in, &plan);
    if (md_h5out_begin(&h, path, NULL, prov, &err) != MD_OK) rb_die("begin", &err);
    if (define && md_h5out_define(h, "selftest", 0, "selftest", &plan, &err) != MD_OK) rb_die("define", &err);
    for (int64_t u = 0; u < plan.n_units; u++) {
        if (u / block >= 32 || !(mask >> (u / block) & 1)) continue;
        size_t len;
        rb_compute(j, stage, in, u, &res);
        const void *bytes = md_result_bytes(&res, &len);
        if (md_h5out_apply(h, "selftest", stage, u, bytes, len, &err) != MD_OK) rb_die("apply", &err);
    }
    if (md_h5out_commit(h, seg, &err) != MD_OK) rb_die("commit", &err);
    md_result_free(&res);
    md_plan_free(&plan);
}

/* Stage 0's finish_stage read back from path: stage 1's input. */
static void rb_finish(const rb_job *j, const char *path, md_blob *next)
{
    md_kind_ctx ctx = md_kind_ctx_of(j->job, j->opts, 0);
    md_reader *rd = NULL;
    md_blob empty = {0};
    md_error err;
    int done = 0;
    if (md_reader_open(&rd, path, "selftest", &err) != MD_OK) rb_die("reader", &err);
    if (ctx.exp->impl->finish_stage(&ctx, 0, &empty, rd, next, &done, &err) != MD_OK) rb_die("finish", &err);
    md_reader_close(rd);
}

/* The provenance of a new file of job j (its model and data made up; a
 * whole job). Ownership: points into itself and j (copying it is wrong). */
typedef struct rb_prov {
    md_model_prov model;
    char *files[1], *sums[1];
    md_data_prov data;
    md_provenance prov;
} rb_prov;

static void rb_prov_init(rb_prov *p, const rb_job *j)
{
    p->files[0] = "model.safetensors";
    p->sums[0] = RB_IDENTITY;
    p->model = (md_model_prov){.role = "base", .dir = "/models/base", .config_json = "{\"hidden_size\": 8}",
                               .files = p->files, .sha256 = p->sums, .n_files = 1};
    p->data = (md_data_prov){.name = "cities", .path = "/data/cities.csv", .sha256 = RB_IDENTITY};
    p->prov = (md_provenance){.job_yaml = j->yaml, .job_sha256 = RB_IDENTITY, .job_name = "fz", .part_index = -1,
                              .part_count = 0, .models = &p->model, .n_models = 1, .data = &p->data, .n_data = 1};
}

static void rb_write(const rb_job *j, int variant, const char *path)
{
    rb_prov rp;
    rb_prov_init(&rp, j);
    md_provenance prov = rp.prov;
    if (variant == RB_PART) prov.part_index = 0, prov.part_count = 2;
    md_prov_numerics num;
    rb_numerics(&num, RB_SETUP);
    md_segment seg = {.id = -1, .start_time = 1.8e9, .end_time = 1.8e9 + 5, .world_size = 2, .hostname = "fuzz",
                      .exit = "running", .numerics = &num};
    md_blob empty = {0}, next = {0};
    unlink(path);
    rb_snapshot(j, path, &prov, 0, &empty, 1, 0, 1, &seg);
    if (variant == RB_STOPPED || variant == RB_PART) {
        seg.exit = variant == RB_PART ? "part done" : "stopped (signal)";
        seg.finished = variant == RB_PART;
        rb_snapshot(j, path, &prov, 0, &empty, 0, 5u, 1, &seg);
        return;
    }
    seg.exit = variant == RB_MIXED ? "stopped (signal)" : "running";
    rb_snapshot(j, path, &prov, 0, &empty, 0, variant == RB_MIXED ? 1u : 7u, 1, &seg);
    md_prov_numerics other;
    if (variant == RB_MIXED) { /* a second segment, resumed with another setup */
        md_error err;
        rb_numerics(&other, "backend=cpu weights=bf16 gemm=f32");
        if (md_prov_check_resume(path, &other, 1, &err) != MD_OK) rb_die("mixed resume", &err);
        seg = (md_segment){.id = -1, .start_time = 1.8e9 + 10, .end_time = 1.8e9 + 20, .world_size = 1,
                           .hostname = "fuzz2", .exit = "running", .numerics = &other};
        rb_snapshot(j, path, &prov, 0, &empty, 0, 6u, 1, &seg);
    }
    rb_finish(j, path, &next);
    seg.exit = "finished";
    seg.finished = 1;
    rb_snapshot(j, path, &prov, 1, &next, 1, 7u, 1, &seg);
    md_blob_free(&next);
    if (variant == RB_MIXED) md_prov_free_numerics(&other);
}

/* Parses the job yaml (RB_JOB: the job of every base). */
static void rb_job_load(rb_job *j, const char *yaml)
{
    md_error err;
    if (md_job_parse_string(yaml, "<fuzz job>", NULL, 0, &j->job, &err) != MD_OK) rb_die("job", &err);
    if (md_kind_bind_opts(j->job, &j->opts, &err) != MD_OK) rb_die("options", &err);
    j->yaml = md_job_to_yaml(j->job, 0);
    if (!j->yaml) rb_die("job yaml", NULL);
}

/* Writes every base in dir and keeps its bytes. */
static inline void rb_load(rb_bases *b, const char *dir)
{
    rb_job_load(&b->j, RB_JOB);
    for (int v = 0; v < RB_COUNT; v++) {
        char path[600];
        snprintf(path, sizeof path, "%s/base%d.h5", dir, v);
        rb_write(&b->j, v, path);
        FILE *f = fopen(path, "rb");
        if (!f || fseek(f, 0, SEEK_END) != 0) rb_die(path, NULL);
        long n = ftell(f);
        b->image[v] = malloc((size_t)n);
        rewind(f);
        if (n <= 0 || !b->image[v] || fread(b->image[v], 1, (size_t)n, f) != (size_t)n) rb_die(path, NULL);
        b->len[v] = (size_t)n;
        fclose(f);
    }
}

#endif
