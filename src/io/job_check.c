/* job_check.c — the checks of a parsed job beyond its keys (see
 * include/mechdiff/job.h): the backend, the model folders, the kinds'
 * semantic hooks, and which experiments name a dataset whose file is
 * missing or a model whose folder (or its config.json) is missing (the
 * parse or the folder check reports it once; the hooks and plans of those
 * experiments would only report it again). */
#include "mechdiff/job.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "mechdiff/device.h"
#include "mechdiff/experiment.h"
#include "mechdiff/folder_check.h"
#include "mechdiff/fsutil.h"

int md_job_exp_uses_dataset(const md_job *job, int exp, const char *name)
{
    const md_params *p = &job->exps[exp].params;
    for (int i = 0; i < p->n; i++) {
        const md_value *v = &p->v[i];
        if (strcmp(v->key->name, "kind") == 0 || strcmp(v->key->name, "name") == 0) continue;
        if (v->key->type == MD_KEY_STRING && v->s && strcmp(v->s, name) == 0) return 1;
        for (int j = 0; v->key->type == MD_KEY_STRLIST && j < v->n; j++)
            if (strcmp(v->list[j], name) == 0) return 1;
    }
    return 0;
}

const char *md_job_missing_dataset(const md_job *job, int exp)
{
    for (int i = 0; i < md_params_count(&job->top, "datasets"); i++) {
        struct stat st;
        const char *name = md_params_item(&job->top, "datasets", i);
        const char *path = md_params_map_val(&job->top, "datasets", i);
        if ((stat(path, &st) != 0 || S_ISDIR(st.st_mode)) && md_job_exp_uses_dataset(job, exp, name)) return name;
    }
    return NULL;
}

/* 1 when DIR is a folder with a config.json (what a model folder has first). */
static int model_folder_present(const char *dir)
{
    struct stat st;
    char cfg[4200];
    if (!dir || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    return stat(cfg, &st) == 0;
}

const char *md_job_missing_model(const md_job *job, int exp)
{
    /* an experiment with its own `models` list uses only those, also when none
     * of them is in the map (the kind's check says so) */
    const md_value *own = md_params_find(&job->exps[exp].params, "models");
    int n = md_params_count(&job->top, "models"), names_one = own && own->key->type == MD_KEY_STRLIST && own->n > 0;
    for (int i = 0; i < n; i++) names_one |= md_job_exp_uses_dataset(job, exp, md_params_item(&job->top, "models", i));
    for (int i = 0; i < n; i++) {
        const char *name = md_params_item(&job->top, "models", i);
        if ((!names_one || md_job_exp_uses_dataset(job, exp, name)) &&
            !model_folder_present(md_params_map_val(&job->top, "models", i)))
            return name;
    }
    return NULL;
}

/* Whether model i's folder exists and no earlier role names the same
 * folder (device and inode): a folder is checked once, its problem one line
 * at the keys of every role on it ("key 'models.a'", "keys 'models.a',
 * 'models.b'") in keys. A folder that is missing is reported at its key by
 * the parse. */
static int first_role_of_folder(const md_job *job, int i, char *keys, size_t cap)
{
    struct stat st, other;
    const char *dir = md_params_map_val(&job->top, "models", i);
    if (!dir || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
    int n = md_params_count(&job->top, "models"), same = 0;
    char rest[900] = "";
    for (int j = 0; j < n; j++) {
        const char *d = md_params_map_val(&job->top, "models", j);
        if (j == i || !d || stat(d, &other) != 0 || !md_fsutil_same_file(&other, &st)) continue;
        if (j < i) return 0;
        size_t used = strlen(rest);
        snprintf(rest + used, sizeof rest - used, ", 'models.%s'", md_params_item(&job->top, "models", j));
        same++;
    }
    snprintf(keys, cap, "key%s 'models.%s'%s", same ? "s" : "", md_params_item(&job->top, "models", i), rest);
    return 1;
}

int md_job_validate(const md_job *job, md_tokcache *toks, md_error *err)
{
    md_error_clear(err);
    int bad = MD_OK;
    if (strcmp(md_params_str(&job->runtime, "backend"), "cuda") == 0 && md_device_build_archs()[0] == '\0') {
        md_error one;
        md_error_set(&one,
                     "%s: runtime.backend is 'cuda' but this mechdiff was built without CUDA: rebuild with "
                     "-DMECHDIFF_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=<your GPUs, e.g. 80;90> (docs/cuda.md), or set "
                     "runtime: {backend: cpu} (or MECHDIFF_BACKEND=cpu in the environment)",
                     job->source ? job->source : "job");
        bad = md_error_add(err, &one);
    }
    /* every model folder holds what a worker will load (folder_check.h) */
    for (int i = 0; i < md_params_count(&job->top, "models"); i++) {
        md_error one;
        md_error_clear(&one);
        char keys[1024];
        if (!first_role_of_folder(job, i, keys, sizeof keys)) continue; /* reported at its key, or checked already */
        if (md_folder_check(md_params_item(&job->top, "models", i), md_params_map_val(&job->top, "models", i), toks,
                            &one) == MD_OK)
            continue;
        const md_value *map = md_params_find(&job->top, "models"); /* where the models map is in the file */
        md_error_prefix(&one, "%s:%d:%d: %s", job->source ? job->source : "job", map ? map->line : 0,
                        map ? map->col : 0, keys);
        bad = md_error_add(err, &one);
    }
    void **opts = NULL; /* the experiments' options, bound once for their validate hooks */
    md_error bind;
    if (md_kind_bind_opts(job, &opts, &bind) != MD_OK) return md_error_add(err, &bind);
    for (int i = 0; i < job->n_exps; i++) {
        const md_exp_spec *e = &job->exps[i];
        if (!e->impl->validate || md_job_missing_dataset(job, i) || md_job_missing_model(job, i))
            continue; /* reported once, at its key or by the folder check */
        md_kind_ctx ctx = md_kind_ctx_of(job, opts, i);
        ctx.toks = toks;
        md_error one;
        md_error_clear(&one);
        if (e->impl->validate(&ctx, &one) == MD_OK) continue;
        bad = md_error_add(err, &one); /* every check of the kind that failed, a line each */
    }
    md_kind_free_opts(job, opts);
    return bad;
}

