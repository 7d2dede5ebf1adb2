/* provenance.c — model/dataset hashes and the job identity (see h5out.h),
 * and the numeric setup of each run segment (see provenance.h). */
#include "mechdiff/provenance.h"

#include <cblas.h>
#include <dirent.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mechdiff/h5out.h"
#include "mechdiff/job.h"
#include "mechdiff/backend.h"
#include "mechdiff/device.h"
#include "mechdiff/filehash.h"
#include "mechdiff/fsutil.h"
#include "mechdiff/sha256.h"
#include "runner/h5util.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Weight files of a model folder, sorted (hashed later, all models at once). */
static int model_files(md_model_prov *m, md_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", m->dir);
    md_error ignored = {0}; /* a missing or unreadable config.json: no config in provenance */
    m->config_json = md_fsutil_read_input(path, (size_t)16 << 20, NULL, &ignored);
    DIR *d = opendir(m->dir);
    if (!d) return md_error_set(err, "model '%s': cannot list folder %s", m->role, m->dir);
    struct dirent *e;
    int rc = MD_OK;
    while ((e = readdir(d))) {
        if (!ends_with(e->d_name, ".safetensors") && !ends_with(e->d_name, ".bin")) continue;
        char **g = realloc(m->files, (size_t)(m->n_files + 1) * sizeof *g);
        char *name = g ? strdup(e->d_name) : NULL;
        if (g) m->files = g;
        if (!name) {
            rc = md_error_set(err, "out of memory listing %s", m->dir);
            break;
        }
        m->files[m->n_files++] = name;
    }
    closedir(d);
    if (rc != MD_OK) return rc;
    qsort(m->files, (size_t)m->n_files, sizeof *m->files, cmp_str);
    m->sha256 = calloc((size_t)(m->n_files ? m->n_files : 1), sizeof *m->sha256);
    return m->sha256 ? MD_OK : md_error_set(err, "out of memory");
}

/* The paths of every file the provenance hashes, in order: each model's
 * weight files (when hash), then the datasets. *out (and its strings) owned
 * by the caller. */
static int input_paths(const md_model_prov *models, int nm, const md_data_prov *data, int nd, int hash, char ***out,
                       int *n_out, md_error *err)
{
    int n = nd;
    for (int i = 0; hash && i < nm; i++) n += models[i].n_files;
    char **paths = calloc((size_t)(n ? n : 1), sizeof *paths);
    if (!paths) return md_error_set(err, "out of memory");
    int k = 0, rc = MD_OK;
    for (int i = 0; rc == MD_OK && hash && i < nm; i++)
        for (int f = 0; rc == MD_OK && f < models[i].n_files; f++) {
            size_t len = strlen(models[i].dir) + strlen(models[i].files[f]) + 2;
            if (!(paths[k] = malloc(len))) rc = md_error_set(err, "out of memory");
            else snprintf(paths[k++], len, "%s/%s", models[i].dir, models[i].files[f]);
        }
    for (int i = 0; rc == MD_OK && i < nd; i++)
        if (!(paths[k++] = strdup(data[i].path))) rc = md_error_set(err, "out of memory");
    if (rc != MD_OK) {
        for (int i = 0; i < n; i++) free(paths[i]);
        free(paths);
        return rc;
    }
    *out = paths;
    *n_out = n;
    return MD_OK;
}

/* Digest of path in pre (already computed by the ranks together), or NULL. */
static const char *pre_digest(const md_prov_digests *pre, const char *path)
{
    for (int i = 0; pre && i < pre->n; i++)
        if (pre->hex[i][0] && strcmp(pre->paths[i], path) == 0) return pre->hex[i];
    return NULL;
}

/* first[k] = the index of the first of paths[0..k] that is the same file
 * (device and inode; a path that cannot be stat'ed is its own): a file
 * listed twice (two roles on one model folder, one CSV under two dataset
 * names) is hashed once. *first malloc'd (the caller frees it). The files
 * of a job are few: each is compared with those before it. */
static int same_files(char *const *paths, int n, int **first, md_error *err)
{
    struct stat *st = calloc((size_t)(n ? n : 1), sizeof *st); /* owned */
    int *ok = calloc((size_t)(n ? n : 1), sizeof *ok);          /* owned: st[k] holds paths[k]'s */
    *first = malloc((size_t)(n ? n : 1) * sizeof **first);
    if (!st || !ok || !*first) {
        free(st), free(ok), free(*first);
        *first = NULL;
        return md_error_set(err, "out of memory");
    }
    for (int k = 0; k < n; k++) {
        ok[k] = stat(paths[k], &st[k]) == 0;
        (*first)[k] = k;
        for (int j = 0; ok[k] && j < k && (*first)[k] == k; j++)
            if (ok[j] && md_fsutil_same_file(&st[j], &st[k])) (*first)[k] = (*first)[j];
    }
    free(st);
    free(ok);
    return MD_OK;
}

/* SHA-256 of every weight file (when hash) and dataset: those in pre as
 * they are, the others in one parallel, cached pass (filehash.h), a file
 * listed twice hashed once. */
static int hash_all(md_model_prov *models, int nm, md_data_prov *data, int nd, int hash, const md_prov_digests *pre,
                    const char *output_dir, int progress, md_error *err)
{
    char **paths = NULL; /* owned, with its strings */
    int n = 0, *first = NULL; /* owned: same_files */
    if (input_paths(models, nm, data, nd, hash, &paths, &n, err) != MD_OK) return MD_ERR;
    char(*hex)[MD_SHA256_HEX_SIZE] = calloc((size_t)(n ? n : 1), sizeof *hex); /* owned */
    const char **todo = calloc((size_t)(n ? n : 1), sizeof *todo);            /* owned; strings of paths */
    int *at = calloc((size_t)(n ? n : 1), sizeof *at), m = 0;                  /* owned: index of todo[j] */
    int rc = hex && todo && at ? same_files(paths, n, &first, err) : md_error_set(err, "out of memory");
    for (int k = 0; rc == MD_OK && k < n; k++) {
        if (first[k] != k) continue; /* the digest of the file's first path, below */
        const char *d = pre_digest(pre, paths[k]);
        if (d) memcpy(hex[k], d, MD_SHA256_HEX_SIZE);
        else todo[m] = paths[k], at[m++] = k;
    }
    char(*got)[MD_SHA256_HEX_SIZE] = rc == MD_OK ? calloc((size_t)(m ? m : 1), sizeof *got) : NULL; /* owned */
    md_filehash_opts opt = {.progress = progress ? "mechdiff: " : NULL, .output_dir = output_dir};
    if (rc == MD_OK && !got) rc = md_error_set(err, "out of memory");
    if (rc == MD_OK && m) rc = md_filehash_many(todo, m, got, &opt, NULL, err);
    for (int j = 0; rc == MD_OK && j < m; j++) memcpy(hex[at[j]], got[j], MD_SHA256_HEX_SIZE);
    for (int k = 0; rc == MD_OK && k < n; k++)
        if (first[k] != k) memcpy(hex[k], hex[first[k]], MD_SHA256_HEX_SIZE);
    free(first);
    int k = 0;
    for (int i = 0; rc == MD_OK && i < nm; i++)
        for (int f = 0; rc == MD_OK && f < models[i].n_files; f++) {
            models[i].sha256[f] = strdup(hash ? hex[k++] : "not-hashed (runtime.hash_weights: false)");
            if (!models[i].sha256[f]) rc = md_error_set(err, "out of memory");
        }
    for (int i = 0; rc == MD_OK && i < nd; i++) memcpy(data[i].sha256, hex[k++], MD_SHA256_HEX_SIZE);
    for (int i = 0; i < n; i++) free(paths[i]);
    free(paths);
    free(hex);
    free(todo);
    free(at);
    free(got);
    return rc;
}

/* Each model role's folder listing and each dataset's path (no hashing). */
static int collect_lists(const md_job *job, md_model_prov **models, int *n_models, md_data_prov **data, int *n_data,
                         md_error *err)
{
    int nm = md_params_count(&job->top, "models"), nd = md_params_count(&job->top, "datasets");
    *models = calloc((size_t)(nm ? nm : 1), sizeof **models);
    *data = calloc((size_t)(nd ? nd : 1), sizeof **data);
    *n_models = nm;
    *n_data = nd;
    if (!*models || !*data) return md_error_set(err, "out of memory");
    for (int i = 0; i < nm; i++) {
        md_model_prov *m = &(*models)[i];
        snprintf(m->role, sizeof m->role, "%s", md_params_item(&job->top, "models", i));
        snprintf(m->dir, sizeof m->dir, "%s", md_params_map_val(&job->top, "models", i));
        if (model_files(m, err) != MD_OK) return MD_ERR;
    }
    for (int i = 0; i < nd; i++) {
        md_data_prov *dp = &(*data)[i];
        snprintf(dp->name, sizeof dp->name, "%s", md_params_item(&job->top, "datasets", i));
        snprintf(dp->path, sizeof dp->path, "%s", md_params_map_val(&job->top, "datasets", i));
    }
    return MD_OK;
}

int md_prov_list_inputs(const md_job *job, md_prov_digests *out, md_error *err)
{
    md_model_prov *models = NULL;
    md_data_prov *data = NULL;
    int nm = 0, nd = 0;
    memset(out, 0, sizeof *out);
    md_filehash_output_dir(md_job_output(job), out->output_dir, sizeof out->output_dir);
    int rc = collect_lists(job, &models, &nm, &data, &nd, err), *first = NULL; /* owned: same_files */
    if (rc == MD_OK)
        rc = input_paths(models, nm, data, nd, md_params_bool(&job->runtime, "hash_weights"), &out->paths, &out->n, err);
    if (rc == MD_OK) rc = same_files(out->paths, out->n, &first, err);
    int kept = 0; /* each file once (md_prov_collect_with finds its other paths' digest by the first) */
    for (int k = 0; rc == MD_OK && k < out->n; k++) {
        if (first[k] == k) out->paths[kept++] = out->paths[k];
        else free(out->paths[k]);
    }
    if (rc == MD_OK) out->n = kept;
    free(first);
    out->hex = rc == MD_OK ? calloc((size_t)(out->n ? out->n : 1), sizeof *out->hex) : NULL;
    if (rc == MD_OK && !out->hex) rc = md_error_set(err, "out of memory");
    md_prov_free(models, nm, data);
    if (rc != MD_OK) md_prov_free_digests(out);
    return rc;
}

void md_prov_free_digests(md_prov_digests *d)
{
    for (int i = 0; d && d->paths && i < d->n; i++) free(d->paths[i]);
    if (!d) return;
    free(d->paths);
    free(d->hex);
    d->paths = NULL;
    d->hex = NULL;
    d->n = 0;
}

int md_prov_collect(const md_job *job, md_model_prov **models, int *n_models, md_data_prov **data, int *n_data,
                    char identity[65], int progress, md_error *err)
{
    return md_prov_collect_with(job, NULL, models, n_models, data, n_data, identity, progress, err);
}

int md_prov_collect_with(const md_job *job, const md_prov_digests *pre, md_model_prov **models, int *n_models,
                         md_data_prov **data, int *n_data, char identity[65], int progress, md_error *err)
{
    int hash = md_params_bool(&job->runtime, "hash_weights");
    if (collect_lists(job, models, n_models, data, n_data, err) != MD_OK) return MD_ERR;
    int nm = *n_models, nd = *n_data;
    char odir[4096];
    if (pre) snprintf(odir, sizeof odir, "%s", pre->output_dir);
    else md_filehash_output_dir(md_job_output(job), odir, sizeof odir);
    if (hash_all(*models, nm, *data, nd, hash, pre, odir, progress, err) != MD_OK) return MD_ERR;

    char *yaml = md_job_to_yaml(job, MD_JOB_YAML_IDENTITY); /* owned */
    md_sha256 ctx;
    if (!yaml) return md_error_set(err, "out of memory");
    if (md_sha256_init(&ctx, err) != MD_OK) {
        free(yaml);
        return MD_ERR;
    }
    md_sha256_update(&ctx, yaml, strlen(yaml));
    free(yaml);
    for (int i = 0; i < nm; i++) {
        const md_model_prov *m = &(*models)[i];
        md_sha256_update(&ctx, m->role, strlen(m->role) + 1);
        if (m->config_json) md_sha256_update(&ctx, m->config_json, strlen(m->config_json));
        for (int k = 0; k < m->n_files; k++) {
            md_sha256_update(&ctx, m->files[k], strlen(m->files[k]) + 1);
            md_sha256_update(&ctx, m->sha256[k], strlen(m->sha256[k]) + 1);
        }
    }
    for (int i = 0; i < nd; i++) {
        md_sha256_update(&ctx, (*data)[i].name, strlen((*data)[i].name) + 1);
        md_sha256_update(&ctx, (*data)[i].sha256, strlen((*data)[i].sha256) + 1);
    }
    uint8_t digest[MD_SHA256_DIGEST_SIZE];
    if (md_sha256_final(&ctx, digest, err) != MD_OK) return MD_ERR;
    md_sha256_to_hex(digest, identity);
    return MD_OK;
}

int md_prov_hash_model(md_model_prov *m, int progress, md_error *err)
{
    if (model_files(m, err) != MD_OK) return MD_ERR;
    return hash_all(m, 1, NULL, 0, 1, NULL, NULL, progress, err);
}

void md_prov_free(md_model_prov *models, int n_models, md_data_prov *data)
{
    for (int i = 0; models && i < n_models; i++) {
        free(models[i].config_json);
        for (int k = 0; k < models[i].n_files; k++) {
            free(models[i].files[k]);
            if (models[i].sha256) free(models[i].sha256[k]);
        }
        free(models[i].files);
        free(models[i].sha256);
    }
    free(models);
    free(data);
}

/* ------------------------------------------------------------------ numerics */

_Static_assert(sizeof(hid_t) == sizeof(int64_t), "provenance.h passes hid_t as int64_t");

static void cpu_model(char *buf, size_t len)
{
    snprintf(buf, len, "cpu: unknown model");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    int n = 0;
    char model[256] = "";
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "processor", 9) == 0) n++;
        char *colon = strchr(line, ':');
        if (!model[0] && strncmp(line, "model name", 10) == 0 && colon) {
            snprintf(model, sizeof model, "%s", colon + 2);
            model[strcspn(model, "\n")] = '\0';
        }
    }
    fclose(f);
    snprintf(buf, len, "cpu: %s (%d logical CPUs on rank 0's node)", model[0] ? model : "unknown model", n);
}

/* "auto" as the CUDA backend resolves it: the environment variable, else the default. */
static const char *resolve_auto(const char *job_value, const char *env, const char *def, const char **from)
{
    if (job_value && strcmp(job_value, "auto") != 0) {
        *from = "runtime key";
        return job_value;
    }
    const char *e = getenv(env);
    if (e && *e) {
        *from = env;
        return e;
    }
    *from = "default";
    return def;
}

static void gpu_names(char *buf, size_t len)
{
    int n = 0;
    char why[256] = "";
    if (md_device_count(&n, why, sizeof why) != MD_OK || n == 0) {
        snprintf(buf, len, "no GPU visible on rank 0 (%s); workers pick theirs by local rank",
                 why[0] ? why : "none");
        return;
    }
    size_t off = (size_t)snprintf(buf, len, "GPUs on rank 0's node:");
    for (int i = 0; i < n && off < len; i++) {
        md_device_info info;
        md_error e;
        if (md_device_query(i, &info, &e) != MD_OK) snprintf(info.name, sizeof info.name, "?");
        off += (size_t)snprintf(buf + off, len - off, " %d=%s (cc %d.%d)", i, info.name, info.cc_major,
                                info.cc_minor);
    }
}

int md_prov_resolve_numerics(const md_job *job, md_prov_numerics *out, md_error *err)
{
    return md_prov_resolve_numerics_for(md_params_str(&job->runtime, "backend"),
                                        md_params_str(&job->runtime, "cuda_weights"),
                                        md_params_str(&job->runtime, "cuda_gemm"), out, err);
}

int md_prov_resolve_numerics_for(const char *be, const char *cuda_weights, const char *cuda_gemm,
                                 md_prov_numerics *out, md_error *err)
{
    memset(out, 0, sizeof *out);
    snprintf(out->backend, sizeof out->backend, "%s", be && *be ? be : "cpu");
    const char *threads = getenv("OPENBLAS_NUM_THREADS");
    snprintf(out->blas, sizeof out->blas, "%s; OPENBLAS_NUM_THREADS=%s", openblas_get_config(),
             threads ? threads : "(unset)");
    if (strcmp(out->backend, "cuda") != 0) {
        snprintf(out->weights, sizeof out->weights, "checkpoint dtype converted to fp32 on the CPU");
        snprintf(out->gemm, sizeof out->gemm, "fp32 (cblas_sgemm)");
        cpu_model(out->devices, sizeof out->devices);
        snprintf(out->setup, sizeof out->setup, "backend=cpu weights=f32 gemm=f32");
        return MD_OK;
    }
    const char *wf, *gf;
    const char *w = resolve_auto(cuda_weights, "MECHDIFF_CUDA_WEIGHTS", "bf16", &wf);
    const char *g = resolve_auto(cuda_gemm, "MECHDIFF_CUDA_GEMM", "x3", &gf);
    md_cuda_weights cw;
    md_cuda_gemm cg;
    if (md_cuda_weights_parse(w, &cw) != 0 || cw == MD_CUDA_WEIGHTS_AUTO)
        return md_error_set(err, "cuda weight precision '%s' (from %s): use bf16 or f32", w, wf);
    if (md_cuda_gemm_parse(g, &cg) != 0 || cg == MD_CUDA_GEMM_AUTO)
        return md_error_set(err, "cuda GEMM mode '%s' (from %s): use x3 or bf16", g, gf);
    int f32 = cw == MD_CUDA_WEIGHTS_F32, x3 = cg == MD_CUDA_GEMM_X3;
    snprintf(out->weights, sizeof out->weights, "%s on the GPU (from %s)", f32 ? "f32" : "bf16", wf);
    if (f32)
        snprintf(out->gemm, sizeof out->gemm, "fp32 cuBLAS, no TF32 (cuda_gemm %s from %s unused)", g, gf);
    else
        snprintf(out->gemm, sizeof out->gemm, "bf16 tensor cores, %s (from %s)",
                 x3 ? "activations as 3 exact bf16 parts (x3)" : "activations rounded to bf16", gf);
    gpu_names(out->devices, sizeof out->devices);
    snprintf(out->setup, sizeof out->setup, "backend=cuda weights=%s gemm=%s", f32 ? "f32" : "bf16",
             f32 ? "f32" : x3 ? "x3" : "bf16");
    return MD_OK;
}

/* The numeric setup of the file's latest segment that recorded one ("" if none). */
static herr_t latest_setup(hid_t g, const char *name, const H5L_info_t *info, void *arg)
{
    (void)info;
    hid_t s = H5Gopen2(g, name, H5P_DEFAULT);
    char *setup = s >= 0 ? md_h5_attr_read_str(s, "numeric_setup") : NULL;
    if (setup) snprintf(arg, 256, "%s", setup);
    free(setup);
    if (s >= 0) H5Gclose(s);
    return 0;
}

/* The copy of the done flags (md_prov_check_resume -> copy_experiment ->
 * copy_stage): where they go, the experiment being listed, what went wrong. */
typedef struct copy_ctx {
    md_prov_numerics *now;
    const char *exp; /* the experiment's name, as /completion lists it */
    md_error *err;
} copy_ctx;

/* One /completion/<exp>/stage<s>/done of the file into now->done_at_start
 * (a group without done flags is skipped). */
static herr_t copy_stage(hid_t exp, const char *name, const H5L_info_t *info, void *arg)
{
    (void)info;
    copy_ctx *cx = arg;
    md_prov_numerics *now = cx->now;
    char path[300], full[600];
    snprintf(path, sizeof path, "%s/done", name);
    if (H5Lexists(exp, path, H5P_DEFAULT) <= 0) return 0;
    snprintf(full, sizeof full, "/completion/%s/%s", cx->exp, path); /* for the message */
    int64_t n = 0;
    uint8_t *done = md_h5_read_flags(exp, full, &n, cx->err);
    md_prov_done_copy *g = done ? realloc(now->done_at_start, (size_t)(now->n_done + 1) * sizeof *g) : NULL;
    if (!g) {
        if (done) md_error_set(cx->err, "out of memory");
        free(done);
        return -1;
    }
    now->done_at_start = g;
    md_prov_done_copy *c = &now->done_at_start[now->n_done++];
    snprintf(c->path, sizeof c->path, "%s/%s", cx->exp, name);
    c->done = done;
    c->n = n;
    return 0;
}

/* Every stage of one /completion/<exp> into now->done_at_start. */
static herr_t copy_experiment(hid_t comp, const char *name, const H5L_info_t *info, void *arg)
{
    (void)info;
    hid_t e = H5Gopen2(comp, name, H5P_DEFAULT);
    if (e < 0) return 0;
    copy_ctx *cx = arg;
    cx->exp = name;
    herr_t rc = H5Literate(e, H5_INDEX_NAME, H5_ITER_INC, NULL, copy_stage, cx);
    H5Gclose(e);
    return rc < 0 ? -1 : 0;
}

int md_prov_check_resume(const char *path, md_prov_numerics *now, int allow_mixed, md_error *err)
{
    hid_t fapl = md_h5_fapl_unlocked();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f < 0) return md_error_set(err, "%s: cannot open to check its numeric setup", path);
    char before[256] = "";
    if (H5Lexists(f, "/provenance/segments", H5P_DEFAULT) > 0) {
        hid_t g = H5Gopen2(f, "/provenance/segments", H5P_DEFAULT);
        H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, latest_setup, before);
        H5Gclose(g);
    }
    int rc = MD_OK;
    if (before[0] && strcmp(before, now->setup) != 0) {
        if (!allow_mixed) {
            rc = md_error_set(err, "%s: its units so far were computed with '%s', this run would use '%s': refusing "
                              "to mix numeric setups in one file. Run with the same runtime.backend / cuda_weights "
                              "/ cuda_gemm (and MECHDIFF_BACKEND / MECHDIFF_CUDA_WEIGHTS / MECHDIFF_CUDA_GEMM) as "
                              "before, use another -o, or pass --allow-mixed-numerics (the file then records which "
                              "units each setup computed)", path, before, now->setup);
        } else {
            snprintf(now->mixed_from, sizeof now->mixed_from, "%s", before);
            if (H5Lexists(f, "/completion", H5P_DEFAULT) > 0) {
                hid_t c = H5Gopen2(f, "/completion", H5P_DEFAULT);
                md_error why;
                md_error_clear(&why);
                copy_ctx cx = {now, "", &why};
                if (H5Literate(c, H5_INDEX_NAME, H5_ITER_INC, NULL, copy_experiment, &cx) < 0)
                    rc = md_error_set(err, "%s: cannot read the done flags to record the mix%s%s", path,
                                      why.msg[0] ? ": " : "", why.msg);
                H5Gclose(c);
            }
            if (rc == MD_OK)
                fprintf(stderr, "mechdiff: rank 0: --allow-mixed-numerics: %s was computed with '%s', this run uses "
                            "'%s'; the new segment records the units done before it\n", path, before, now->setup);
        }
    }
    H5Fclose(f);
    return rc;
}

static int put_str(hid_t obj, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1), s = H5Screate(H5S_SCALAR);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a >= 0 && H5Awrite(a, t, &value) >= 0 ? 0 : -1;
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
    return rc;
}

int md_prov_write_numerics(int64_t group, const md_prov_numerics *n)
{
    hid_t g = (hid_t)group;
    int rc = put_str(g, "numeric_setup", n->setup) | put_str(g, "backend", n->backend) |
             put_str(g, "weight_precision", n->weights) | put_str(g, "gemm_precision", n->gemm) |
             put_str(g, "blas", n->blas) | put_str(g, "devices", n->devices);
    if (!n->mixed_from[0]) return rc;
    rc |= put_str(g, "mixed_with_setup", n->mixed_from);
    rc |= put_str(g, "done_at_start_means", "done flags when this segment started: units done at the start of "
                                            "the next segment (or at the end) but not here were computed with "
                                            "this segment's numeric_setup");
    for (int i = 0; i < n->n_done; i++) {
        char path[300];
        snprintf(path, sizeof path, "done_at_start/%s", n->done_at_start[i].path);
        if (H5Lexists(g, "done_at_start", H5P_DEFAULT) > 0 && H5Lexists(g, path, H5P_DEFAULT) > 0) continue;
        hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
        H5Pset_create_intermediate_group(lcpl, 1);
        hsize_t len = (hsize_t)n->done_at_start[i].n;
        hid_t sp = H5Screate_simple(1, &len, NULL);
        hid_t d = H5Dcreate2(g, path, H5T_NATIVE_UINT8, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        if (d < 0 || H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, n->done_at_start[i].done) < 0)
            rc = -1;
        if (d >= 0) H5Dclose(d);
        H5Sclose(sp);
        H5Pclose(lcpl);
    }
    return rc;
}

int md_prov_write_model(int64_t group, const md_model_prov *m)
{
    size_t cap = 1;
    for (int k = 0; k < m->n_files; k++) cap += strlen(m->files[k]) + strlen(m->sha256[k]) + 4;
    char *list = calloc(cap, 1); /* owned: "<sha256>  <file>\n" per weight file */
    if (!list) return -1;
    for (int k = 0; k < m->n_files; k++) {
        strcat(list, m->sha256[k]);
        strcat(list, "  ");
        strcat(list, m->files[k]);
        strcat(list, "\n");
    }
    hid_t g = (hid_t)group;
    int rc = put_str(g, "path", m->dir) | put_str(g, "config_json", m->config_json ? m->config_json : "") |
             put_str(g, "weight_sha256", list) |
             put_str(g, "weight_sha256_format", "sha256sum -c format, file names relative to path");
    free(list);
    return rc;
}

void md_prov_free_numerics(md_prov_numerics *n)
{
    for (int i = 0; n && i < n->n_done; i++) free(n->done_at_start[i].done);
    if (n) {
        free(n->done_at_start);
        n->done_at_start = NULL;
        n->n_done = 0;
    }
}
