/* selftest.c — TEST INFRASTRUCTURE, not an experiment of the study.
 *
 * The `selftest` kind exercises the runner end to end without a model:
 * deterministic pseudo-results from the unit index (a small matrix per unit
 * from a seeded hash), a configurable cost per unit (sleep and/or spin, with a
 * per-unit variation so that dynamic scheduling matters), and two stages where
 * stage 1 depends on a blob computed from stage 0's results read back from the
 * file (as a direction experiment does: activations -> direction ->
 * interventions). The MPI, resume and Slurm tests and bench/bench_coordinator
 * use it; it can also inject a failing or dying unit to test error paths.
 *
 * Output (/<name>/...):
 *   values[unit, row, col]  f64   stage 0: hash(seed, unit, row, col) in [0, 1)
 *   label[unit]             str   stage 0: "unit <n>"
 *   checksum[unit]          i64   stage 0: integer hash of the unit
 *   column_mean[col]        f64   stage 1 plan: mean of values over unit and row
 *   centred[unit, col]      f32   stage 1: row-mean of values(unit) - column_mean */
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mechdiff/experiment.h"

static const md_key SELFTEST_KEYS[] = {
    {.name = "units", .type = MD_KEY_INT, .def = "100", .doc = "Work units per stage.", .min = 1, .max = 1 << 24},
    {.name = "rows", .type = MD_KEY_INT, .def = "4", .doc = "Rows of each unit's matrix.", .min = 1, .max = 4096},
    {.name = "cols", .type = MD_KEY_INT, .def = "8", .doc = "Columns of each unit's matrix.", .min = 1, .max = 4096},
    {.name = "stages", .type = MD_KEY_INT, .def = "2", .doc = "1 = values only; 2 = also the centred stage.",
     .min = 1, .max = 2},
    {.name = "payload", .type = MD_KEY_BOOL, .def = "true",
     .doc = "false = units return no data (measures the coordinator alone)."},
    {.name = "sleep_ms", .type = MD_KEY_FLOAT, .def = "0", .doc = "Milliseconds each unit sleeps.", .min = 0,
     .max = 1e6},
    {.name = "spin", .type = MD_KEY_INT, .def = "0", .doc = "Arithmetic iterations each unit burns (compute-bound cost).",
     .min = 0, .max = 1e12},
    {.name = "cost_variation", .type = MD_KEY_FLOAT, .def = "0",
     .doc = "Per-unit cost factor 1 + v*h(unit), h in [0,1): uneven units.", .min = 0, .max = 100},
    {.name = "fail_unit", .type = MD_KEY_INT, .def = "-1",
     .doc = "Unit (stage 0) whose compute returns an error (-1 = none): tests the error path.", .min = -1, .max = 1e9},
    {.name = "die_unit", .type = MD_KEY_INT, .def = "-1",
     .doc = "Unit (stage 0) whose worker dies with SIGKILL (-1 = none): tests a dead rank.", .min = -1, .max = 1e9},
    {0}};

/* The kind's keys, parsed once by the caller of the kind (ctx->opts). */
typedef struct st_opts {
    int64_t units, rows, cols, stages, spin, fail_unit, die_unit;
    double sleep_ms, cost_variation;
    int payload;
} st_opts;

#define SO(f) {#f, offsetof(st_opts, f)}
static const md_opt_bind SELFTEST_OPTS[] = {
    SO(units), SO(rows), SO(cols), SO(stages), SO(payload), SO(sleep_ms), SO(spin), SO(cost_variation),
    SO(fail_unit), SO(die_unit), {0}};
#undef SO

static const st_opts *st_opts_of(const md_kind_ctx *ctx)
{
    return ctx->opts;
}

/* splitmix64: the deterministic source of every value. */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static double unit_value(uint64_t seed, int64_t unit, int64_t r, int64_t c)
{
    uint64_t h = mix(mix(mix(seed) ^ (uint64_t)unit) ^ ((uint64_t)r << 32 | (uint64_t)c));
    return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

static uint64_t job_seed(const md_kind_ctx *ctx)
{
    return (uint64_t)md_params_int(&ctx->job->top, "seed") * 1000003u + (uint64_t)ctx->exp_index;
}

static double unit_cost(const md_kind_ctx *ctx, const st_opts *o, int64_t unit)
{
    return 1.0 + o->cost_variation * unit_value(job_seed(ctx) ^ 0x5eed, unit, 0, 0);
}

enum { ST_VALUES, ST_LABEL, ST_CHECKSUM, ST_COLUMN_MEAN, ST_CENTRED };

/* What selftest writes (with `payload: true`). */
static const md_output SELFTEST_OUTPUTS[] = {
    [ST_VALUES] = {.path = "values", .type = MD_H5_F64, .dims = "unit,row,col", .units = "1",
                   .description = "hash(seed, unit, row, col) in [0, 1)", .stage = 0, .chunk_rows = 64, .deflate = 1},
    [ST_LABEL] = {.path = "label", .type = MD_H5_STR, .dims = "unit", .units = "", .description = "name of the unit",
                  .stage = 0, .chunk_rows = 1024},
    [ST_CHECKSUM] = {.path = "checksum", .type = MD_H5_I64, .dims = "unit", .units = "",
                     .description = "integer hash of the unit", .stage = 0, .chunk_rows = 4096},
    [ST_COLUMN_MEAN] = {.path = "column_mean", .type = MD_H5_F64, .dims = "col", .units = "1",
                        .description = "mean of values over unit and row", .stage = 1, .at_plan = 1},
    [ST_CENTRED] = {.path = "centred", .type = MD_H5_F32, .dims = "unit,col", .units = "1",
                    .description = "row-mean of values(unit) minus column_mean", .stage = 1, .chunk_rows = 256,
                    .deflate = 1},
    {0}};

/* The runner's axes, exercised: a category axis (col: "c0", "c1", ...), a
 * numeric one whose values are not 0..n-1 (row: 1, 2, ...) and a plain size
 * (unit); the datasets take their sizes from them. */
static int selftest_axes(md_plan *plan, const st_opts *o, md_error *err)
{
    char *labels = malloc((size_t)o->cols * 24);
    const char **names = malloc((size_t)o->cols * sizeof *names);
    int64_t *rows = malloc((size_t)o->rows * sizeof *rows);
    int rc = labels && names && rows ? MD_OK : md_error_set(err, "selftest: out of memory");
    for (int64_t c = 0; rc == MD_OK && c < o->cols; c++) {
        snprintf(labels + c * 24, 24, "c%lld", (long long)c);
        names[c] = labels + c * 24;
    }
    for (int64_t r = 0; rc == MD_OK && r < o->rows; r++) rows[r] = r + 1;
    if (rc == MD_OK) rc = md_plan_axis(plan, "", "col", names, o->cols, "column name", err);
    if (rc == MD_OK) rc = md_plan_axis_values(plan, "", "row", rows, o->rows, "row number (from 1)", err);
    if (rc == MD_OK) rc = md_plan_axis_size(plan, "", "unit", o->units, err);
    free(labels);
    free(names);
    free(rows);
    return rc;
}

static int selftest_plan(const md_kind_ctx *ctx, int stage, const md_blob *input, md_plan *plan, md_error *err)
{
    const st_opts o = *st_opts_of(ctx);
    int64_t n = o.units, cols = o.cols;
    if (md_plan_units(plan, n, err) != MD_OK) return MD_ERR;
    for (int64_t u = 0; u < n; u++) md_plan_cost(plan, u, unit_cost(ctx, &o, u));
    if (md_plan_attr(plan, "", "note", "selftest: runner test infrastructure, not an experiment of the study",
                     err) != MD_OK)
        return MD_ERR;
    if (!o.payload) return MD_OK;
    if (selftest_axes(plan, &o, err) != MD_OK) return MD_ERR;
    if (stage == 0) {
        if (md_plan_output(plan, &SELFTEST_OUTPUTS[ST_VALUES], NULL, err) != MD_OK ||
            md_plan_output(plan, &SELFTEST_OUTPUTS[ST_LABEL], NULL, err) != MD_OK ||
            md_plan_output(plan, &SELFTEST_OUTPUTS[ST_CHECKSUM], NULL, err) != MD_OK)
            return MD_ERR;
        return MD_OK;
    }
    if (input->size != (size_t)cols * sizeof(double))
        return md_error_set(err, "selftest: stage 1 input has %zu bytes, expected %lld", input->size,
                            (long long)(cols * 8));
    if (md_plan_output(plan, &SELFTEST_OUTPUTS[ST_COLUMN_MEAN], NULL, err) != MD_OK ||
        md_plan_output(plan, &SELFTEST_OUTPUTS[ST_CENTRED], NULL, err) != MD_OK)
        return MD_ERR;
    int64_t off = 0;
    return md_plan_put(plan, "column_mean", &off, &cols, input->data, input->size, err);
}

static void burn(const md_kind_ctx *ctx, const st_opts *o, int64_t unit)
{
    double factor = unit_cost(ctx, o, unit);
    double ms = o->sleep_ms * factor;
    if (ms > 0) {
        struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(fmod(ms, 1000.0) * 1e6)};
        nanosleep(&ts, NULL);
    }
    int64_t spin = (int64_t)((double)o->spin * factor);
    volatile uint64_t acc = 0;
    for (int64_t i = 0; i < spin; i++) acc = acc * 6364136223846793005ull + 1442695040888963407ull;
}

static int selftest_compute(const md_kind_ctx *ctx, md_worker *w, void *state, int stage, const md_blob *input,
                            int64_t unit, md_result *out, md_error *err)
{
    (void)w;
    (void)state;
    const st_opts o = *st_opts_of(ctx);
    int64_t rows = o.rows, cols = o.cols;
    burn(ctx, &o, unit);
    if (stage == 0 && unit == o.fail_unit)
        return md_error_set(err, "selftest: injected failure (fail_unit: %lld)", (long long)unit);
    if (stage == 0 && unit == o.die_unit) raise(SIGKILL);
    if (!o.payload) return MD_OK;

    uint64_t seed = job_seed(ctx);
    size_t n = (size_t)(rows * cols);
    double *m = malloc(n * sizeof *m);
    float *c = malloc((size_t)cols * sizeof *c);
    int rc = MD_ERR;
    if (!m || !c) {
        md_error_set(err, "selftest: out of memory");
        goto done;
    }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < cols; k++) m[r * cols + k] = unit_value(seed, unit, r, k);
    if (stage == 0) {
        int64_t off3[3] = {unit, 0, 0}, cnt3[3] = {1, rows, cols}, off1 = unit, one = 1;
        char label[64];
        snprintf(label, sizeof label, "unit %lld", (long long)unit);
        int64_t sum = (int64_t)(mix(seed ^ (uint64_t)unit) >> 1);
        if (md_result_put(out, "values", 3, off3, cnt3, m, n * sizeof *m, err) != MD_OK ||
            md_result_put(out, "label", 1, &off1, &one, label, strlen(label) + 1, err) != MD_OK ||
            md_result_put(out, "checksum", 1, &off1, &one, &sum, sizeof sum, err) != MD_OK)
            goto done;
    } else {
        const double *mean = input->data;
        for (int64_t k = 0; k < cols; k++) {
            double s = 0;
            for (int64_t r = 0; r < rows; r++) s += m[r * cols + k];
            c[k] = (float)(s / (double)rows - mean[k]);
        }
        int64_t off2[2] = {unit, 0}, cnt2[2] = {1, cols};
        if (md_result_put(out, "centred", 2, off2, cnt2, c, (size_t)cols * sizeof *c, err) != MD_OK) goto done;
    }
    rc = MD_OK;
done:
    free(m);
    free(c);
    return rc;
}

/* Stage 0 -> the column means of everything in the file, summed in unit
 * order (so the blob is the same whatever order units finished in). */
static int selftest_finish(const md_kind_ctx *ctx, int stage, const md_blob *input, md_reader *rd, md_blob *next,
                           int *done, md_error *err)
{
    (void)input;
    const st_opts o = *st_opts_of(ctx);
    *done = stage + 1 >= o.stages || !o.payload;
    if (*done) return MD_OK;
    int64_t n = o.units, rows = o.rows, cols = o.cols;
    int64_t block = 1024;
    double *buf = malloc((size_t)(block * rows * cols) * sizeof *buf);
    double *mean = calloc((size_t)cols, sizeof *mean);
    int rc = MD_ERR;
    if (!buf || !mean) {
        md_error_set(err, "selftest: out of memory");
        goto done;
    }
    for (int64_t u0 = 0; u0 < n; u0 += block) {
        int64_t nb = u0 + block <= n ? block : n - u0;
        int64_t off[3] = {u0, 0, 0}, cnt[3] = {nb, rows, cols};
        if (md_reader_f64(rd, "values", off, cnt, buf, err) != MD_OK) goto done;
        for (int64_t i = 0; i < nb * rows; i++)
            for (int64_t k = 0; k < cols; k++) mean[k] += buf[i * cols + k];
    }
    for (int64_t k = 0; k < cols; k++) mean[k] /= (double)(n * rows);
    rc = md_blob_set(next, mean, (size_t)cols * sizeof *mean, err);
done:
    free(buf);
    free(mean);
    return rc;
}

static void selftest_unit_name(const md_kind_ctx *ctx, int stage, int64_t unit, char *buf, size_t len)
{
    snprintf(buf, len, "%s/stage %d/unit %lld", ctx->exp->name, stage, (long long)unit);
}

/* Every stage has `units` units (stage 1 only with `stages: 2` and a
 * payload) at the costs selftest_plan gives them (the sleep's factor). */
static int selftest_estimate(const md_kind_ctx *ctx, md_stage_estimate *out, md_error *err)
{
    (void)err;
    const st_opts o = *st_opts_of(ctx);
    for (int stage = 0; stage < o.stages && (stage == 0 || o.payload); stage++) {
        out[stage].units = o.units;
        for (int64_t u = 0; u < o.units; u++) out[stage].cost += unit_cost(ctx, &o, u);
    }
    return MD_OK;
}

const md_kind md_kind_selftest = {
    .name = "selftest",
    .doc = "Runner test infrastructure (not an experiment of the study): deterministic pseudo-results per "
           "unit, configurable cost, two stages; used by the MPI/resume/Slurm tests and the coordinator "
           "benchmark.",
    .keys = SELFTEST_KEYS,
    .opts = SELFTEST_OPTS,
    .opts_size = sizeof(st_opts),
    .outputs = SELFTEST_OUTPUTS,
    .plan = selftest_plan,
    .compute = selftest_compute,
    .finish_stage = selftest_finish,
    .unit_name = selftest_unit_name,
    .estimate = selftest_estimate,
};
