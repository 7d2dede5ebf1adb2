/* test_job.c — the YAML job parser: every error kind names file:line:column
 * and the key; defaults are filled in; the resolved job round-trips. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mechdiff/device.h"
#include "mechdiff/job.h"
#include "testutil.h"

static char g_dir[512];

static const char *write_file(const char *name, const char *text)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

/* Parses text as job file `name`; returns the error text ("" when valid). */
static const char *parse(const char *name, const char *text)
{
    static md_error err;
    md_job *job = NULL;
    md_error_clear(&err);
    if (md_job_parse_file(write_file(name, text), &job, &err) == MD_OK) err.msg[0] = '\0';
    md_job_free(job);
    return err.msg;
}

#define EXPECT_ERR(text, ...) do { const char *m = parse("t.yaml", text); \
    const char *want[] = {__VA_ARGS__, NULL}; \
    for (int i = 0; want[i]; i++) CHECK_MSG(strstr(m, want[i]) != NULL, "missing '%s' in:\n%s", want[i], m); } while (0)

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "%s/test_job", tu_tmpdir());
    mkdir(g_dir, 0755);
    char sub[600];
    snprintf(sub, sizeof sub, "%s/model", g_dir);
    mkdir(sub, 0755);
    write_file("data.csv", "statement,label\nx,1\n");

    /* valid, with defaults */
    const char *ok = "name: t\nmodels: {base: model}\ndatasets: {cities: data.csv}\nexperiments:\n"
                     "  - kind: selftest\n    units: 12\n";
    CHECK_MSG(parse("ok.yaml", ok)[0] == '\0', "%s", parse("ok.yaml", ok));
    md_job *job = NULL;
    md_error err;
    CHECK(md_job_parse_file(write_file("ok.yaml", ok), &job, &err) == MD_OK);
    if (job) {
        CHECK(md_params_int(&job->exps[0].params, "units") == 12);
        CHECK(md_params_int(&job->exps[0].params, "rows") == 4);          /* default */
        CHECK(md_params_float(&job->runtime, "progress_interval") == 10); /* default */
        CHECK(strcmp(job->exps[0].name, "selftest") == 0);                /* name defaults to kind */
        const char *model = md_params_map_get(&job->top, "models", "base");
        CHECK(model && model[0] == '/' && strstr(model, "test_job/model")); /* relative to the job file */
        CHECK(strstr(md_job_output(job), "test_job/ok.h5") != NULL);      /* default output */
        char *y = md_job_to_yaml(job, 0);
        md_job *again = NULL;
        CHECK(y && md_job_parse_string(y, "<round trip>", NULL, 1, &again, &err) == MD_OK);
        if (again) {
            char *y2 = md_job_to_yaml(again, 0);
            CHECK(y2 && strcmp(y, y2) == 0);
            free(y2);
        }
        md_job_free(again);
        char *id = md_job_to_yaml(job, MD_JOB_YAML_IDENTITY);
        CHECK(id && !strstr(id, "runtime:") && !strstr(id, "output:"));
        /* the hashed text keeps its old form ("key: " before a map's lines), so job_sha256 of files
           written before stays the same; the shown one has no trailing space */
        CHECK(id && strstr(id, "\nmodels: \n"));
        CHECK(y && strstr(y, "\nmodels:\n"));
        free(id);
        free(y);
    }
    md_job_free(job);

    /* floats shown as the shortest text that reads back exactly (0.1, not 0.10000000000000001; 17 digits where needed) */
    job = NULL;
    const char *fl = "name: t\nmodels: {base: model}\nruntime: {flush_interval: 0.1, snapshot_interval: 1234.5678901234567}\n"
                     "experiments:\n  - kind: selftest\n";
    CHECK_MSG(md_job_parse_file(write_file("fl.yaml", fl), &job, &err) == MD_OK, "%s", err.msg);
    if (job) {
        char *y = md_job_to_yaml(job, 0);
        CHECK_MSG(y && strstr(y, "  flush_interval: 0.1\n") && strstr(y, "  snapshot_interval: 1234.5678901234567\n"), "%s",
                  y ? y : "(null)");
        md_job *again = NULL;
        CHECK(y && md_job_parse_string(y, "<round trip>", NULL, 1, &again, &err) == MD_OK);
        if (again) {
            CHECK(md_params_float(&again->runtime, "flush_interval") == md_params_float(&job->runtime, "flush_interval"));
            CHECK(md_params_float(&again->runtime, "snapshot_interval") == 1234.5678901234567);
        }
        md_job_free(again);
        free(y);
    }
    md_job_free(job);

    /* backend: cuda is refused by validation in a build without CUDA */
    job = NULL;
    const char *gpu = "name: t\nmodels: {base: model}\nruntime: {backend: cuda}\nexperiments:\n"
                      "  - kind: selftest\n";
    CHECK(md_job_parse_file(write_file("gpu.yaml", gpu), &job, &err) == MD_OK);
    if (job) {
        int rc = md_job_validate(job, NULL, &err);
        if (md_device_build_archs()[0] == '\0')
            CHECK_MSG(rc == MD_ERR && strstr(err.msg, "gpu.yaml") && strstr(err.msg, "built without CUDA") &&
                          strstr(err.msg, "backend: cpu"),
                      "%s", err.msg);
        else
            CHECK_MSG(rc == MD_OK, "%s", err.msg);
    }
    md_job_free(job);

    /* unknown key, at its position */
    EXPECT_ERR("experiments:\n  - kind: selftest\n    unitz: 3\n", "t.yaml:3:5: key 'unitz': unknown key");
    EXPECT_ERR("nmae: x\nexperiments:\n  - kind: selftest\n", "t.yaml:1:1: key 'nmae': unknown key in the top level");
    EXPECT_ERR("runtime: {flush_unit: 3}\nexperiments:\n  - kind: selftest\n", "t.yaml:1:11: key 'flush_unit': unknown key in runtime");
    /* wrong types */
    EXPECT_ERR("experiments:\n  - kind: selftest\n    units: ten\n", "t.yaml:3:12: key 'units': expected int", "got 'ten'");
    EXPECT_ERR("experiments:\n  - kind: selftest\n    payload: maybe\n", "t.yaml:3:14: key 'payload': expected bool");
    EXPECT_ERR("experiments:\n  - kind: selftest\n    sleep_ms: [1]\n", "t.yaml:3:15: key 'sleep_ms': expected float, got a list");
    EXPECT_ERR("models: [a]\nexperiments:\n  - kind: selftest\n", "t.yaml:1:9: key 'models': expected a map, got a list");
    EXPECT_ERR("experiments: {kind: selftest}\n", "t.yaml:1:14: key 'experiments': expected a list");
    /* range and allowed values */
    EXPECT_ERR("experiments:\n  - kind: selftest\n    units: 0\n", "t.yaml:3:12: key 'units': expected int in [1,");
    EXPECT_ERR("runtime:\n  backend: tpu\nexperiments:\n  - kind: selftest\n", "t.yaml:2:12: key 'backend': expected one of cpu|cuda, got 'tpu'");
    /* missing files and folders, relative to the job file */
    EXPECT_ERR("models: {base: nowhere}\nexperiments:\n  - kind: selftest\n", "t.yaml:1:16: key 'models.base': folder", "nowhere' does not exist");
    EXPECT_ERR("datasets: {cities: none.csv}\nexperiments:\n  - kind: selftest\n", "t.yaml:1:20: key 'datasets.cities': file");
    EXPECT_ERR("models: {base: data.csv}\nexperiments:\n  - kind: selftest\n", "key 'models.base': expected a folder, got file");
    /* role and dataset names are HDF5 group names in the results file */
    EXPECT_ERR("models: {ba/se: model}\nexperiments:\n  - kind: selftest\n",
               "t.yaml:1:10: key 'models': the name 'ba/se' becomes an HDF5 group name", "has no '/'");
    EXPECT_ERR("datasets: {'': data.csv}\nexperiments:\n  - kind: selftest\n", "key 'datasets': the name ''");
    EXPECT_ERR("datasets: {.: data.csv}\nexperiments:\n  - kind: selftest\n", "key 'datasets': the name '.'");
    EXPECT_ERR("models: {a->b: model}\nexperiments:\n  - kind: selftest\n", "key 'models': the name 'a->b'",
               "has no '/' or '->'");
    /* kind problems, duplicates, required keys */
    EXPECT_ERR("experiments:\n  - kind: patchin\n", "t.yaml:2:11: key 'kind': expected one of selftest", "got 'patchin'");
    EXPECT_ERR("experiments:\n  - units: 3\n", "t.yaml:2:5: key 'kind': required");
    EXPECT_ERR("experiments:\n  - kind: selftest\n  - kind: selftest\n", "t.yaml:3:5: key 'name': experiment name 'selftest' already used");
    EXPECT_ERR("seed: 1\nseed: 2\nexperiments:\n  - kind: selftest\n", "t.yaml:2:1: key 'seed': given twice");
    EXPECT_ERR("name: x\n", "key 'experiments': expected a list of experiments, got nothing");
    /* YAML syntax */
    EXPECT_ERR("experiments:\n  - kind: [selftest\n", "t.yaml:", "YAML syntax error");
    /* several errors are all reported */
    const char *m = parse("t.yaml", "experiments:\n  - kind: selftest\n    units: x\n    rows: y\n");
    CHECK(strstr(m, "key 'units'") && strstr(m, "key 'rows'"));
    TEST_MAIN_END();
}
