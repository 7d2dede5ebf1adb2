/* provenance.c — model/dataset hashes and the job identity (see h5out.h). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/h5out.h"
#include "mechdiff/job.h"
#include "mechdiff/filehash.h"
#include "mechdiff/sha256.h"

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = '\0';
    fclose(f);
    return s;
}

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
    m->config_json = read_text(path);
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

/* SHA-256 of every weight file (when hash) and dataset: one parallel,
 * cached pass over all of them (filehash.h). */
static int hash_all(md_model_prov *models, int nm, md_data_prov *data, int nd, int hash, int progress,
                    md_error *err)
{
    int n = nd;
    for (int i = 0; hash && i < nm; i++) n += models[i].n_files;
    char **paths = calloc((size_t)(n ? n : 1), sizeof *paths);            /* owned, with its strings */
    char(*hex)[MD_SHA256_HEX_SIZE] = calloc((size_t)(n ? n : 1), sizeof *hex); /* owned */
    int rc = paths && hex ? MD_OK : md_error_set(err, "out of memory");
    int k = 0;
    for (int i = 0; rc == MD_OK && hash && i < nm; i++)
        for (int f = 0; rc == MD_OK && f < models[i].n_files; f++) {
            size_t len = strlen(models[i].dir) + strlen(models[i].files[f]) + 2;
            paths[k] = malloc(len);
            if (!paths[k]) rc = md_error_set(err, "out of memory");
            else snprintf(paths[k++], len, "%s/%s", models[i].dir, models[i].files[f]);
        }
    for (int i = 0; rc == MD_OK && i < nd; i++)
        if (!(paths[k++] = strdup(data[i].path))) rc = md_error_set(err, "out of memory");
    md_filehash_opts opt = {.progress = progress ? "mechdiff: rank 0: " : NULL};
    if (rc == MD_OK) rc = md_filehash_many((const char *const *)paths, n, hex, &opt, NULL, err);
    k = 0;
    for (int i = 0; rc == MD_OK && i < nm; i++)
        for (int f = 0; rc == MD_OK && f < models[i].n_files; f++) {
            models[i].sha256[f] = strdup(hash ? hex[k++] : "not-hashed (runtime.hash_weights: false)");
            if (!models[i].sha256[f]) rc = md_error_set(err, "out of memory");
        }
    for (int i = 0; rc == MD_OK && i < nd; i++) memcpy(data[i].sha256, hex[k++], MD_SHA256_HEX_SIZE);
    for (int i = 0; paths && i < n; i++) free(paths[i]);
    free(paths);
    free(hex);
    return rc;
}

int md_prov_collect(const md_job *job, md_model_prov **models, int *n_models, md_data_prov **data, int *n_data,
                    char identity[65], int progress, md_error *err)
{
    int nm = md_params_count(&job->top, "models"), nd = md_params_count(&job->top, "datasets");
    int hash = md_params_bool(&job->runtime, "hash_weights");
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
    if (hash_all(*models, nm, *data, nd, hash, progress, err) != MD_OK) return MD_ERR;

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
