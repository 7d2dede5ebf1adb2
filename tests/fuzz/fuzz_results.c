/* fuzz_results.c — the readers of a results file (OUT.h5) on hand-edited
 * files. The input picks one of the valid files mechdiff's writer makes
 * (fuzz_results_base.h: finished, stopped, a part, mixed numerics), then a
 * series of edits made through the HDF5 API on an in-memory copy
 * (fuzz_results_edit.h); the edited image is written to results.h5 and
 * read by:
 *   - `mechdiff verify`'s whole check (md_verify_file);
 *   - a resume onto it (what md_coord_recover and plan_stage call):
 *     md_h5out_info, the identity and layout, md_prov_check_resume (with
 *     and without --allow-mixed-numerics), then per stage the plan of the
 *     job, md_reader_done, md_reader_check_plan and, for a stage all done,
 *     selftest's finish_stage through the reader; then the snapshot the
 *     run would write (md_h5out_begin on a copy, md_h5out_done, define,
 *     apply one unit, discard);
 *   - `mechdiff merge`'s reader against a valid part (md_reader_check_like
 *     both ways, md_reader_unit of each done unit applied to a copy);
 *   - `mechdiff status`'s md_h5out_read_stages.
 * Checks beyond the sanitizers: every line verify prints names the file
 * (one line per defect: no newline from the file's text), a refusal's
 * message names the file, the file's bytes are unchanged and no
 * results.h5.tmp is left, no HDF5 object is left open, and a file verify
 * finds no defect in can be read by status and merge's reader.
 * FUZZ_RESULTS_KEEP=FILE keeps a copy of the edited file (a finding's);
 * FUZZ_RESULTS_SHOW=1 prints the refusals. */
#include "fuzz_common.h"
#include "runner/h5util.h"
#include "fuzz_results_base.h"
#include "fuzz_results_edit.h"
#include "mechdiff/verify.h"

static rb_bases bases;

/* The edited copy of base b as bytes (malloc'd). */
static uint8_t *edit_image(fz *z, int b, size_t *len)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, 1 << 16, 0);
    H5Pset_file_image(fapl, bases.image[b], bases.len[b]);
    hid_t f = H5Fopen("edit.h5", H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    if (f < 0) abort();
    static fz_objs objs;
    for (int i = 0; i < 48 && z->n; i++) fz_edit(z, f, &objs);
    H5Fflush(f, H5F_SCOPE_GLOBAL);
    ssize_t n = H5Fget_file_image(f, NULL, 0);
    uint8_t *img = n > 0 ? malloc((size_t)n) : NULL;
    if (!img || H5Fget_file_image(f, img, (size_t)n) != n) abort();
    H5Fclose(f);
    *len = (size_t)n;
    return img;
}

/* Open HDF5 identifiers of the kinds a reader opens (file objects,
 * dataspaces, datatypes, property lists). */
static int64_t open_ids(void)
{
    hsize_t spaces = 0, types = 0, plists = 0;
    H5Inmembers(H5I_DATASPACE, &spaces);
    H5Inmembers(H5I_DATATYPE, &types);
    H5Inmembers(H5I_GENPROP_LST, &plists);
    return (int64_t)H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) + (int64_t)(spaces + types + plists);
}

/* Aborts when the reader `who` left identifiers open (ids: the count before it). */
static void ids_closed(int64_t ids, const char *who)
{
    if (open_ids() == ids) return;
    hsize_t spaces = 0, types = 0, plists = 0;
    H5Inmembers(H5I_DATASPACE, &spaces);
    H5Inmembers(H5I_DATATYPE, &types);
    H5Inmembers(H5I_GENPROP_LST, &plists);
    fprintf(stderr, "fuzz_results: %s left %lld HDF5 identifiers open (now: %lld file objects, %llu dataspaces, %llu "
            "datatypes, %llu property lists)\n", who, (long long)(open_ids() - ids),
            (long long)H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), (unsigned long long)spaces,
            (unsigned long long)types, (unsigned long long)plists);
    abort();
}

static void must_name(const char *msg, const char *path, const char *who)
{
    if (getenv("FUZZ_RESULTS_SHOW")) fprintf(stderr, "fuzz_results: %s: %s\n", who, msg);
    if (!strstr(msg, path) || strchr(msg, '\n')) {
        fprintf(stderr, "fuzz_results: %s: a message that does not name %s on one line: '%s'\n", who, path, msg);
        abort();
    }
}

/* verify: each line "PATH: ..."; MD_ERR = exactly one line. */
static int run_verify(const char *path, md_verify_result *res)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) abort();
    int rc = md_verify_file(path, out, res);
    fclose(out);
    size_t plen = strlen(path), lines = 0;
    for (char *l = text; l && *l; lines++) {
        char *nl = strchr(l, '\n');
        if (!nl || strncmp(l, path, plen) != 0 || strncmp(l + plen, ": ", 2) != 0) {
            fprintf(stderr, "fuzz_results: verify printed a line that does not start with '%s: ': '%.*s'\n", path,
                    nl ? (int)(nl - l) : (int)strlen(l), l);
            abort();
        }
        l = nl + 1;
    }
    if (rc != MD_OK && lines != 1) {
        fprintf(stderr, "fuzz_results: verify refused the file in %zu lines:\n%s", lines, text);
        abort();
    }
    if (rc == MD_OK && res->defects == 0 && lines && !res->incomplete) {
        fprintf(stderr, "fuzz_results: verify found the file valid and complete but printed:\n%s", text);
        abort();
    }
    free(text);
    return rc;
}

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
        if (plan_of(stage, &input, &plan, &err) != MD_OK) abort();
        md_reader *rd = NULL;
        uint8_t *done = NULL;
        int64_t n = 0;
        if (md_reader_open(&rd, path, "selftest", &err) != MD_OK) abort(); /* md_h5out_info opened it */
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
    if (md_reader_open(&rd, path, "selftest", &err) != MD_OK) abort();
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

static void check_unchanged(const char *path, const uint8_t *img, size_t len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *now = malloc(len + 1);
    size_t got = f && now ? fread(now, 1, len + 1, f) : 0;
    if (f) fclose(f);
    if (got != len || memcmp(now, img, len) != 0) {
        fprintf(stderr, "fuzz_results: a reader changed %s\n", path);
        abort();
    }
    free(now);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (access(tmp, F_OK) == 0) {
        fprintf(stderr, "fuzz_results: %s left behind\n", tmp);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char ref_path[600];
    if (!bases.image[0]) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        rb_load(&bases, fuzz_dir());
        snprintf(ref_path, sizeof ref_path, "%s/base%d.h5", fuzz_dir(), RB_PART);
    }
    fz z = {data, size};
    unsigned head = fz_u8(&z);
    size_t len;
    uint8_t *img = edit_image(&z, (int)(head % RB_COUNT), &len);
    char path[600];
    snprintf(path, sizeof path, "%s/results.h5", fuzz_dir());
    fuzz_write("results.h5", img, len);
    const char *keep = getenv("FUZZ_RESULTS_KEEP"); /* a copy of the edited file, to look at a finding */
    FILE *kf = keep ? fopen(keep, "wb") : NULL;
    if (kf) fwrite(img, 1, len, kf), fclose(kf);
    int64_t ids = open_ids();
    md_verify_result res;
    int vrc = run_verify(path, &res);
    ids_closed(ids, "verify");
    run_resume(path, head >> 2 & 1, 1);
    ids_closed(ids, "the resume's readers");
    run_merge(path, ref_path);
    ids_closed(ids, "merge's reader");
    md_h5stage *st = NULL;
    int nst = 0;
    md_error err;
    if (md_h5out_read_stages(path, &st, &nst, &err) != MD_OK) {
        must_name(err.msg, path, "md_h5out_read_stages");
        if (vrc == MD_OK && res.defects == 0) {
            fprintf(stderr, "fuzz_results: verify found no defect, status cannot read it: %s\n", err.msg);
            abort();
        }
    }
    md_h5out_free_stages(st, nst);
    ids_closed(ids, "md_h5out_read_stages");
    check_unchanged(path, img, len);
    free(img);
    return 0;
}
