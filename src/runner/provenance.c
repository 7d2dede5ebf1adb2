/* provenance.c — model/dataset hashes and the job identity (see h5out.h). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/h5out.h"
#include "mechdiff/job.h"
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

/* Weight files of a model folder, sorted, with their hashes. */
static int model_prov(md_model_prov *m, int hash, md_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", m->dir);
    m->config_json = read_text(path);
    DIR *d = opendir(m->dir);
    if (!d) return md_error_set(err, "model '%s': cannot list folder %s", m->role, m->dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!ends_with(e->d_name, ".safetensors") && !ends_with(e->d_name, ".bin")) continue;
        char **g = realloc(m->files, (size_t)(m->n_files + 1) * sizeof *g);
        if (!g) break;
        m->files = g;
        m->files[m->n_files++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(m->files, (size_t)m->n_files, sizeof *m->files, cmp_str);
    m->sha256 = calloc((size_t)(m->n_files ? m->n_files : 1), sizeof *m->sha256);
    if (!m->sha256) return md_error_set(err, "out of memory");
    for (int i = 0; i < m->n_files; i++) {
        char hex[MD_SHA256_HEX_SIZE] = "not-hashed (runtime.hash_weights: false)";
        snprintf(path, sizeof path, "%s/%s", m->dir, m->files[i]);
        if (hash && md_sha256_file(path, hex, err) != MD_OK) return md_error_prefix(err, "model '%s'", m->role);
        m->sha256[i] = strdup(hex);
    }
    return MD_OK;
}

int md_prov_collect(const md_job *job, md_model_prov **models, int *n_models, md_data_prov **data, int *n_data,
                    char identity[65], md_error *err)
{
    int nm = md_params_count(&job->top, "models"), nd = md_params_count(&job->top, "datasets");
    int hash = md_params_bool(&job->runtime, "hash_weights");
    *models = calloc((size_t)(nm ? nm : 1), sizeof **models);
    *data = calloc((size_t)(nd ? nd : 1), sizeof **data);
    *n_models = nm;
    *n_data = nd;
    char *yaml = md_job_to_yaml(job, MD_JOB_YAML_IDENTITY);
    if (!*models || !*data || !yaml) {
        free(yaml);
        return md_error_set(err, "out of memory");
    }
    md_sha256 ctx;
    md_sha256_init(&ctx);
    md_sha256_update(&ctx, yaml, strlen(yaml));
    free(yaml);
    for (int i = 0; i < nm; i++) {
        md_model_prov *m = &(*models)[i];
        snprintf(m->role, sizeof m->role, "%s", md_params_item(&job->top, "models", i));
        snprintf(m->dir, sizeof m->dir, "%s", md_params_map_val(&job->top, "models", i));
        if (model_prov(m, hash, err) != MD_OK) return MD_ERR;
        md_sha256_update(&ctx, m->role, strlen(m->role) + 1);
        if (m->config_json) md_sha256_update(&ctx, m->config_json, strlen(m->config_json));
        for (int k = 0; k < m->n_files; k++) {
            md_sha256_update(&ctx, m->files[k], strlen(m->files[k]) + 1);
            md_sha256_update(&ctx, m->sha256[k], strlen(m->sha256[k]) + 1);
        }
    }
    for (int i = 0; i < nd; i++) {
        md_data_prov *dp = &(*data)[i];
        snprintf(dp->name, sizeof dp->name, "%s", md_params_item(&job->top, "datasets", i));
        snprintf(dp->path, sizeof dp->path, "%s", md_params_map_val(&job->top, "datasets", i));
        if (md_sha256_file(dp->path, dp->sha256, err) != MD_OK) return md_error_prefix(err, "dataset '%s'", dp->name);
        md_sha256_update(&ctx, dp->name, strlen(dp->name) + 1);
        md_sha256_update(&ctx, dp->sha256, strlen(dp->sha256) + 1);
    }
    uint8_t digest[MD_SHA256_DIGEST_SIZE];
    md_sha256_final(&ctx, digest);
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
