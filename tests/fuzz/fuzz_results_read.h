/* fuzz_results_read.h — what reads an existing results file, driven on one
 * (fuzz_results: edited through the HDF5 API; fuzz_h5bytes: damaged below
 * it): `mechdiff verify`'s whole check; a resume onto it (md_h5out_info,
 * the identity and layout, md_prov_check_resume with and without
 * --allow-mixed-numerics, then per stage the plan of the job,
 * md_reader_done, md_reader_check_plan and, for a stage all done,
 * selftest's finish_stage through the reader; then the snapshot the run
 * would write: md_h5out_begin on a copy, md_h5out_done, define, one unit
 * applied, discarded); `mechdiff merge`'s reader against a valid part
 * (md_reader_check_like both ways, md_reader_unit of each done unit applied
 * to a copy); `mechdiff status`'s md_h5out_read_stages. fr_read_all runs
 * them all with the checks of fuzz_check.h, and: a file verify finds no
 * defect in can be read by status. The job and valid files are those of
 * fuzz_results_base.h (fr_bases, written on the first input). */
#ifndef MECHDIFF_FUZZ_RESULTS_READ_H
#define MECHDIFF_FUZZ_RESULTS_READ_H

#include "fuzz_check.h"
#include "fuzz_results_base.h"
#include "runner/h5util.h"

static rb_bases bases;

/* Plans stage of the fuzz job (stage 1 from input: stage 0's finish). */
static int plan_of(int stage, const md_blob *input, md_plan *plan, md_error *err)
{
    md_kind_ctx ctx = md_kind_ctx_of(bases.j.job, bases.j.opts, 0);
    md_plan_init(plan, stage);
    plan->kind = "selftest";
    return ctx.exp->impl->plan(&ctx, stage, input, plan, err);
}

/* The snapshot a resume writes next: a copy of path, its stage's done
 * flags, the stage defined when the file lacks it, one undone unit applied;
 * discarded. */
static void resume_write(const char *path, int stage, const md_blob *input, const md_plan *plan, int define)
{
    md_h5out *h = NULL;
    md_error err;
    if (md_h5out_begin(&h, path, NULL, NULL, &err) != MD_OK) {
        must_name(err.msg, path, "resume snapshot");
        return;
    }
    int64_t n = 0;
    int rc = define ? md_h5out_define(h, "selftest", 0, "selftest", plan, &err) : MD_OK;
    const uint8_t *done = rc == MD_OK ? md_h5out_done(h, "selftest", stage, &n, &err) : NULL;
    for (int64_t u = 0; rc == MD_OK && done && u < n && u < plan->n_units; u++) {
        if (done[u]) continue;
        md_result res;
        size_t len;
        md_result_init(&res);
        rb_compute(&bases.j, stage, input, u, &res);
        rc = md_h5out_apply(h, "selftest", stage, u, md_result_bytes(&res, &len), len, &err);
        md_result_free(&res);
        break;
    }
    md_h5out_discard(h);
}

/* What md_coord_recover and plan_stage do with an existing OUT.h5. */
static void run_resume(const char *path, int allow_mixed, int write)
{
    md_h5info info;
    md_error err;
    if (md_h5out_info(path, &info, &err) != MD_OK) return must_name(err.msg, path, "md_h5out_info");
    int same = info.layout == MD_RESULTS_LAYOUT && strcmp(info.job_sha256, RB_IDENTITY) == 0 &&
               info.part_count == 0 && info.part_index == -1;
    md_h5out_info_free(&info);
    if (!same) return; /* refused by the runner with its own message (names the file) */
    md_prov_numerics now;
    rb_numerics(&now, allow_mixed ? "backend=cuda weights=bf16 gemm=x3" : RB_SETUP);
    int rc = md_prov_check_resume(path, &now, allow_mixed, &err);
    md_prov_free_numerics(&now);
    if (rc != MD_OK) return must_name(err.msg, path, "md_prov_check_resume");
    md_blob input = {0};
    for (int stage = 0; stage < 2; stage++) {
        md_plan plan;
        if (plan_of(stage, &input, &plan, &err) != MD_OK) { /* stage 1 from values read back (damaged: NaN) */
            if (!stage || strchr(err.msg, '\n')) {
                fprintf(stderr, "fuzz: the plan of stage %d failed: '%s'\n", stage, err.msg);
                abort();
            }
            if (getenv("FUZZ_SHOW")) fprintf(stderr, "fuzz: plan of stage 1: %s\n", err.msg);
            md_plan_free(&plan);
            break;
        }
        md_reader *rd = NULL;
        uint8_t *done = NULL;
        int64_t n = 0;
        if (md_reader_open(&rd, path, "selftest", &err) != MD_OK) { /* md_h5out_info opened it: damage below */
            must_name(err.msg, path, "md_reader_open");
            md_plan_free(&plan);
            break;
        }
        rc = md_reader_done(rd, stage, &done, &n, &err);
        if (rc == MD_OK && done) rc = md_reader_check_plan(rd, &plan, &err);
        if (rc != MD_OK) must_name(err.msg, path, "md_reader_done/check_plan");
        int64_t undone = 0;
        for (int64_t u = 0; rc == MD_OK && done && u < n; u++) undone += !done[u];
        int go_on = rc == MD_OK && done && n == plan.n_units && !undone;
        if (go_on) { /* the stage is complete: finish_stage reads it back */
            md_kind_ctx ctx = md_kind_ctx_of(bases.j.job, bases.j.opts, 0);
            md_blob next = {0};
            int fin = 0;
            rc = ctx.exp->impl->finish_stage(&ctx, stage, &input, rd, &next, &fin, &err);
            if (rc != MD_OK) must_name(err.msg, path, "finish_stage");
            md_blob_free(&input);
            input = next;
            go_on = rc == MD_OK && !fin;
        }
        md_reader_close(rd);
        free(done);
        if (!go_on && write && rc == MD_OK && (!done || n == plan.n_units)) resume_write(path, stage, &input, &plan, !done);
        md_plan_free(&plan);
        if (!go_on) break;
    }
    md_blob_free(&input);
}

/* merge: part p (path) against the valid file ref, both ways; its done units copied. */
static void run_merge(const char *path, const char *ref_path)
{
    md_reader *rd = NULL, *ref = NULL;
    md_error err;
    if (md_reader_open(&rd, path, "selftest", &err) != MD_OK) return must_name(err.msg, path, "md_reader_open");
    if (md_reader_open(&ref, ref_path, "selftest", &err) != MD_OK) abort();
    if (md_reader_check_like(ref, rd, &err) != MD_OK && !strstr(err.msg, path)) must_name(err.msg, path, "check_like");
    int like = md_reader_check_like(rd, ref, &err) == MD_OK;
    if (!like) must_name(err.msg, path, "check_like");
    md_h5out *h = NULL;
    char out[600];
    snprintf(out, sizeof out, "%s/merged.h5", fuzz_dir());
    if (like && md_h5out_begin(&h, out, ref_path, NULL, &err) != MD_OK) abort();
    md_result res;
    md_result_init(&res);
    for (int stage = 0; like && stage < 2; stage++) {
        uint8_t *done = NULL;
        int64_t n = 0, rn = 0;
        if (md_reader_done(rd, stage, &done, &n, &err) != MD_OK) must_name(err.msg, path, "md_reader_done");
        const uint8_t *rdone = md_h5out_done(h, "selftest", stage, &rn, &err);
        for (int64_t u = 0; done && rdone && n == rn && u < n; u++) {
            size_t len;
            if (!done[u] || rdone[u]) continue;
            if (md_reader_unit(rd, stage, u, &res, &err) != MD_OK) {
                must_name(err.msg, path, "md_reader_unit");
                break;
            }
            if (md_h5out_apply(h, "selftest", stage, u, md_result_bytes(&res, &len), len, &err) != MD_OK) break;
        }
        free(done);
    }
    md_result_free(&res);
    md_h5out_discard(h);
    md_reader_close(rd);
    md_reader_close(ref);
}

/* Every reader on the file at path (its bytes img[0..len)), merge against
 * ref_path (a valid part); allow_mixed: the resume's --allow-mixed-numerics. */
static void fr_read_all(const char *path, const uint8_t *img, size_t len, const char *ref_path, int allow_mixed)
{
    int64_t ids = open_ids();
    md_verify_result res;
    int vrc = run_verify(path, &res);
    ids_closed(ids, "verify");
    run_resume(path, allow_mixed, 1);
    ids_closed(ids, "the resume's readers");
    run_merge(path, ref_path);
    ids_closed(ids, "merge's reader");
    md_h5stage *st = NULL;
    int nst = 0;
    md_error err;
    if (md_h5out_read_stages(path, &st, &nst, &err) != MD_OK) {
        must_name(err.msg, path, "md_h5out_read_stages");
        if (vrc == MD_OK && res.defects == 0) {
            fprintf(stderr, "fuzz: verify found no defect, status cannot read it: %s\n", err.msg);
            abort();
        }
    }
    md_h5out_free_stages(st, nst);
    ids_closed(ids, "md_h5out_read_stages");
    check_unchanged(path, img, len);
}

/* How a harness changes a copy of a base file: at most max_ops changes
 * chosen by z; returns the new image (malloc'd, *out_len bytes). */
typedef uint8_t *(*fr_damage_fn)(fz *z, const uint8_t *image, size_t len, int max_ops, size_t *out_len);

/* One input of fuzz_results or fuzz_h5bytes: its first byte picks a base
 * file (written on the first input) and, bit 2, --allow-mixed-numerics;
 * `damage` (at most max_ops changes) turns a copy of it into results.h5
 * (and a copy at $FUZZ_RESULTS_KEEP, to look at a finding), which every
 * reader then reads (fr_read_all). */
static int fr_run_input(const uint8_t *data, size_t size, fr_damage_fn damage, int max_ops)
{
    static char ref_path[600];
    if (!bases.image[0]) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        rb_load(&bases, fuzz_dir());
        snprintf(ref_path, sizeof ref_path, "%s/base%d.h5", fuzz_dir(), RB_PART);
    }
    fz z = {data, size};
    unsigned head = fz_u8(&z);
    int b = (int)(head % RB_COUNT);
    size_t len;
    uint8_t *img = damage(&z, bases.image[b], bases.len[b], max_ops, &len);
    char path[600];
    snprintf(path, sizeof path, "%s/results.h5", fuzz_dir());
    fuzz_write("results.h5", img, len);
    const char *keep = getenv("FUZZ_RESULTS_KEEP");
    FILE *kf = keep ? fopen(keep, "wb") : NULL;
    if (kf) fwrite(img, 1, len, kf), fclose(kf);
    fr_read_all(path, img, len, ref_path, head >> 2 & 1);
    free(img);
    return 0;
}

#endif
