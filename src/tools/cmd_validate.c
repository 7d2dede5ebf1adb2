/* cmd_validate.c — `mechdiff validate JOB.yaml`: checks a job file (schema,
 * files, the kinds' semantic checks) and shows what it would compute;
 * `mechdiff validate --keys` prints every key with type, default and doc,
 * and every kind's declared outputs. */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/experiment.h"
#include "mechdiff/job.h"
#include "mechdiff/outlock.h"
#include "mechdiff/plan.h"
#include "mechdiff/tokcache.h"
#include "tools/cmds.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: mechdiff validate JOB.yaml [--print]\n"
               "       mechdiff validate --keys\n\n"
               "Checks a job file without running it: unknown keys, wrong types, missing files or\n"
               "folders, and each experiment kind's own checks; errors are file:line:column: key ...\n"
               "Every problem is one line; an invalid job ends with a line saying how many and what\n"
               "to do. A valid job then shows each experiment's stage-0 units and datasets.\n"
               "  --print  also print the resolved job (every key, defaults filled in)\n"
               "  --keys   print the reference of every key and every kind's outputs (Markdown, as in\n"
               "           jobs/README.md)\n"
               "Exit status: 0 valid, 2 invalid.\n");
}

static void print_keys(void)
{
    printf("## Keys\n\nRelative paths are relative to the folder of the job file.\n\n");
    md_schema_print(MD_JOB_TOP_KEYS, "Top level (plus `runtime:` and `experiments:`)", stdout);
    md_schema_print(MD_JOB_RUNTIME_KEYS, "`runtime:` (never changes results; not part of the resume check)",
                    stdout);
    md_schema_print(MD_EXP_COMMON_KEYS, "Every experiment", stdout);
    for (const md_kind *const *k = md_kinds(); *k; k++) {
        char title[128];
        snprintf(title, sizeof title, "`kind: %s`", (*k)->name);
        printf("%s\n\n", (*k)->doc ? (*k)->doc : "");
        md_schema_print((*k)->keys, title, stdout);
        const md_kind *const *same = md_kinds(); /* an alias shares its kind's outputs table */
        while (same < k && (*same)->outputs != (*k)->outputs) same++;
        if (same < k) {
            printf("Outputs of `kind: %s`: those of `kind: %s` above.\n\n", (*k)->name, (*same)->name);
            continue;
        }
        snprintf(title, sizeof title, "Outputs of `kind: %s` (under `/<name>/`)", (*k)->name);
        md_output_print((*k)->outputs, title, stdout);
    }
}

/* The stage-0 plan of experiment i into *plan; a failure is added to
 * checked (said once: not when the job's checks said it, or said
 * something about this experiment already). Experiments whose dataset or
 * model folder is missing are not planned (reported at their key). */
static int plan_one(const md_job *job, void **opts, md_tokcache *toks, int i, const char *path, md_plan *plan,
                    md_error *checked)
{
    const md_exp_spec *e = &job->exps[i];
    md_kind_ctx ctx = md_kind_ctx_of(job, opts, i);
    ctx.toks = toks;
    md_error err;
    md_blob none = {0};
    plan->kind = e->kind;
    if (md_job_missing_dataset(job, i) || md_job_missing_model(job, i)) return MD_ERR;
    if (e->impl->plan(&ctx, 0, &none, plan, &err) == MD_OK) return MD_OK;
    char line[sizeof err.msg + 600], at[600];
    if (strncmp(err.msg, path, strlen(path)) == 0) /* the kind named the place already */
        snprintf(line, sizeof line, "%s", err.msg);
    else
        snprintf(line, sizeof line, "%s:%d:%d: experiment '%s': %s", path, e->line, e->col, e->name, err.msg);
    snprintf(at, sizeof at, "%s:%d:%d: ", path, e->line, e->col);
    if (!strstr(checked->msg, line) && !strstr(checked->msg, err.msg) && !strstr(checked->msg, at))
        md_error_addf(checked, "%s", line);
    return MD_ERR;
}

/* What a valid job computes first: each experiment's stage-0 units and datasets. */
static void print_plan(const md_exp_spec *e, const md_plan *plan)
{
    printf("  /%s (kind %s): stage 0: %lld units\n", e->name, e->kind, (long long)plan->n_units);
    if (e->impl->alias) printf("    note: kind %s is an alias: %s\n", e->kind, e->impl->alias);
    for (int d = 0; d < plan->n_dsets; d++) {
        printf("    %s %s[", plan->dsets[d].path, md_h5type_name(plan->dsets[d].type));
        for (int k = 0; k < plan->dsets[d].rank; k++)
            printf("%s%s=%lld", k ? ", " : "", plan->dsets[d].dim_names[k], (long long)plan->dsets[d].dims[k]);
        printf("]\n");
    }
}

/* The problems (a line each, on stderr) and what to do. */
static void print_problems(const char *path, const md_error *checked)
{
    int n = 1;
    for (const char *p = checked->msg; (p = strchr(p, '\n')) != NULL; p++) n++;
    fprintf(stderr, "%s\n%s: invalid (%d problem%s above): fix %s and run `mechdiff validate %s` again; a valid job "
                    "shows what it will compute\n",
            checked->msg, path, n, n == 1 ? "" : "s", n == 1 ? "it" : "them", path);
}

int cmd_validate(int argc, char **argv)
{
    if (cmd_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *path = NULL;
    int print = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--keys") == 0) {
            if (argc > 2) return cmd_usage_error("validate", usage, "--keys takes nothing else");
            print_keys();
            return 0;
        }
        if (strcmp(argv[i], "--print") == 0) print = 1;
        else if (!path && argv[i][0] != '-') path = argv[i];
        else {
            if (argv[i][0] == '-') return cmd_usage_error("validate", usage, "unknown option '%s'", argv[i]);
            return cmd_usage_error("validate", usage, "one job file at a time ('%s' is a second)", argv[i]);
        }
    }
    if (!path) return cmd_usage_error("validate", usage, "no job file given");
    md_job *job = NULL;
    md_error err, checked = {0};
    md_tokcache *toks = NULL; /* each model folder's tokenizer, loaded once for the checks and plans (owned) */
    if (md_tokcache_create(&toks, &err) != MD_OK) {
        fprintf(stderr, "mechdiff validate: %s\n", err.msg);
        return 2;
    }
    int rc = md_job_check_file(path, toks, &job, &checked) == MD_OK ? 0 : 2; /* every problem at once */
    if (!job) {
        md_tokcache_free(toks); /* no job to check further: the file cannot be read (no summary), or its YAML is broken */
        size_t n = strlen(path);
        if (strncmp(checked.msg, path, n) == 0 && checked.msg[n] == ':' && isdigit((unsigned char)checked.msg[n + 1]))
            print_problems(path, &checked);
        else
            fprintf(stderr, "mechdiff validate: %s\n", checked.msg);
        return 2;
    }
    char canon[PATH_MAX]; /* the output as run names it (README.md, "Paths in messages") */
    if (md_outlock_make_canonical(md_job_output(job), canon, sizeof canon, &err) == MD_OK)
        md_job_set_output(job, canon, &err);
    void **opts = NULL; /* the experiments' options, bound once for their plans */
    md_plan *plans = calloc((size_t)(job->n_exps > 0 ? job->n_exps : 1), sizeof *plans);
    if (!plans || md_kind_bind_opts(job, &opts, &err) != MD_OK) {
        fprintf(stderr, "mechdiff validate: %s\n", plans ? err.msg : "out of memory");
        free(plans);
        md_job_free(job);
        md_tokcache_free(toks);
        return 2;
    }
    for (int i = 0; i < job->n_exps; i++) {
        md_plan_init(&plans[i], 0);
        if (plan_one(job, opts, toks, i, path, &plans[i], &checked) != MD_OK) rc = 2;
    }
    if (rc) print_problems(path, &checked);
    for (int i = 0; i < job->n_exps; i++) {
        if (!rc) print_plan(&job->exps[i], &plans[i]);
        md_plan_free(&plans[i]);
    }
    free(plans);
    md_tokcache_free(toks);
    if (rc == 0) printf("%s: valid; output %s\n", path, md_job_output(job));
    if (print) {
        char *y = md_job_to_yaml(job, 0);
        if (y) fputs(y, stdout);
        free(y);
    }
    md_kind_free_opts(job, opts);
    md_job_free(job);
    return rc;
}
