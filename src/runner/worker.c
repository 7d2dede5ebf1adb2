/* worker.c — computes units (see src/runner/worker.h). */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/device.h"
#include "mechdiff/model.h"
#include "mechdiff/shard.h"

int md_worker_init(md_worker *w, const md_job *job, int rank, md_error *err)
{
    memset(w, 0, sizeof *w);
    w->job = job;
    w->rank = rank;
    md_result_init(&w->result);
    w->exps = calloc((size_t)(job->n_exps ? job->n_exps : 1), sizeof *w->exps);
    if (!w->exps) return md_error_set(err, "rank %d: out of memory", rank);
    for (int i = 0; i < job->n_exps; i++) w->exps[i].stage = -1;
    if (md_kind_bind_opts(job, &w->exp_opts, err) != MD_OK) return md_error_prefix(err, "rank %d", rank);
    return MD_OK;
}

static void release_exp(md_worker *w, int exp)
{
    worker_exp *e = &w->exps[exp];
    const md_kind *k = w->job->exps[exp].impl;
    if (e->prepared && k->release_state) k->release_state(e->state);
    e->state = NULL;
    e->prepared = 0;
    md_blob_free(&e->input);
    e->stage = -1;
}

void md_worker_free(md_worker *w)
{
    for (int i = 0; w->exps && i < w->job->n_exps; i++) release_exp(w, i);
    free(w->exps);
    if (w->job) md_kind_free_opts(w->job, w->exp_opts);
    for (int i = 0; i < w->n_models; i++) md_model_free(w->models[i].model);
    free(w->models);
    md_result_free(&w->result);
    free(w->msg);
    memset(w, 0, sizeof *w);
}

int md_worker_rank(const md_worker *w)
{
    return w->rank;
}

int md_worker_model(md_worker *w, const char *role, struct md_model **out, md_error *err)
{
    *out = NULL;
    for (int i = 0; i < w->n_models; i++)
        if (strcmp(w->models[i].role, role) == 0) {
            *out = w->models[i].model;
            return MD_OK;
        }
    const char *dir = md_params_map_get(&w->job->top, "models", role);
    if (!dir) return md_error_set(err, "no model with role '%s' in the job's models:", role);
    md_model_options opt;
    md_model_options_init(&opt);
    int64_t cache_mb = md_params_int(&w->job->runtime, "fp32_cache_mb");
    /* -1: auto (0 in the options: md_model_default_fp32_cache); 0: 1 byte, cache nothing */
    opt.fp32_cache_bytes = cache_mb < 0 ? 0 : cache_mb > 0 ? (size_t)cache_mb << 20 : 1;
    if (strcmp(md_params_str(&w->job->runtime, "backend"), "cuda") == 0) {
        /* One GPU per rank on a node: the node-local rank picks the device. */
        opt.backend = MD_BACKEND_CUDA;
        if (md_device_pick(&opt.device, err) != MD_OK) return md_error_prefix(err, "rank %d", w->rank);
        const char *wv = md_params_str(&w->job->runtime, "cuda_weights");
        const char *gv = md_params_str(&w->job->runtime, "cuda_gemm");
        if (md_cuda_weights_parse(wv, &opt.cuda_weights) != 0)
            return md_error_set(err, "runtime.cuda_weights: '%s' is not auto, bf16 or f32", wv ? wv : "");
        if (md_cuda_gemm_parse(gv, &opt.cuda_gemm) != 0)
            return md_error_set(err, "runtime.cuda_gemm: '%s' is not auto, x3 or bf16", gv ? gv : "");
    }
    worker_model *g = realloc(w->models, (size_t)(w->n_models + 1) * sizeof *g);
    if (!g) return md_error_set(err, "out of memory");
    w->models = g;
    md_model *m = NULL;
    int rc = w->shard ? md_shard_load(w->shard, &m, dir, &opt, err) : md_model_load(&m, dir, &opt, err);
    if (rc != MD_OK) return md_error_prefix(err, "model '%s' (%s)", role, dir);
    snprintf(w->models[w->n_models].role, sizeof w->models[0].role, "%s", role);
    w->models[w->n_models++].model = m;
    *out = m;
    return MD_OK;
}

int md_worker_set_input(md_worker *w, int exp, int stage, const void *data, size_t size, md_error *err)
{
    release_exp(w, exp);
    if (md_blob_set(&w->exps[exp].input, data, size, err) != MD_OK) return MD_ERR;
    w->exps[exp].stage = stage;
    return MD_OK;
}

int md_worker_has_input(const md_worker *w, int exp, int stage)
{
    return w->exps[exp].stage == stage;
}

static int msg_reserve(md_worker *w, size_t n)
{
    if (n <= w->msg_cap) return MD_OK;
    unsigned char *m = realloc(w->msg, n);
    if (!m) return MD_ERR;
    w->msg = m;
    w->msg_cap = n;
    return MD_OK;
}

int md_worker_compute(md_worker *w, int exp, int stage, int64_t unit, const unsigned char **msg, size_t *len)
{
    const md_exp_spec *spec = &w->job->exps[exp];
    md_kind_ctx ctx = md_kind_ctx_of(w->job, w->exp_opts, exp);
    worker_exp *e = &w->exps[exp];
    md_unit_hdr hdr = {.exp = (uint32_t)exp, .stage = (uint32_t)stage, .unit = unit};
    md_error err;
    md_error_clear(&err);
    md_result_reset(&w->result);
    int rc = MD_OK;
    if (e->stage != stage) rc = md_error_set(&err, "no input for stage %d (runner bug)", stage);
    if (rc == MD_OK && !e->prepared && spec->impl->prepare)
        rc = spec->impl->prepare(&ctx, w, stage, &e->input, &e->state, &err);
    if (rc == MD_OK) e->prepared = 1;
    if (rc == MD_OK) rc = spec->impl->compute(&ctx, w, e->state, stage, &e->input, unit, &w->result, &err);
    size_t blen = 0;
    const void *bytes = rc == MD_OK ? md_result_bytes(&w->result, &blen) : NULL;
    if (rc == MD_OK && !bytes) rc = md_error_set(&err, "out of memory");
    if (rc != MD_OK) {
        hdr.status = 1;
        bytes = err.msg;
        blen = strlen(err.msg) + 1;
    }
    if (msg_reserve(w, sizeof hdr + blen) != MD_OK) {
        hdr.status = 1;
        bytes = "out of memory for the result message";
        blen = strlen(bytes) + 1;
        if (msg_reserve(w, sizeof hdr + blen) != MD_OK) return MD_ERR;
    }
    memcpy(w->msg, &hdr, sizeof hdr);
    memcpy(w->msg + sizeof hdr, bytes, blen);
    *msg = w->msg;
    *len = sizeof hdr + blen;
    return MD_OK;
}

int md_worker_loop(md_worker *w, MPI_Comm comm, md_error *err)
{
    unsigned char *in = NULL;
    int cap = 0, rc = MD_OK;
    for (;;) {
        MPI_Status st;
        MPI_Probe(0, MPI_ANY_TAG, comm, &st);
        int n = 0;
        MPI_Get_count(&st, MPI_BYTE, &n);
        if (n > cap) {
            unsigned char *g = realloc(in, (size_t)n);
            if (!g) {
                rc = md_error_set(err, "rank %d: out of memory for a %d-byte message", w->rank, n);
                MPI_Abort(comm, 1);
            }
            in = g;
            cap = n;
        }
        MPI_Recv(in, n, MPI_BYTE, 0, st.MPI_TAG, comm, MPI_STATUS_IGNORE);
        if (st.MPI_TAG == MD_TAG_STOP) break;
        md_unit_hdr hdr;
        memcpy(&hdr, in, sizeof hdr);
        if (hdr.reserved && md_worker_set_input(w, (int)hdr.exp, (int)hdr.stage, in + sizeof hdr,
                                                (size_t)n - sizeof hdr, err) != MD_OK)
            MPI_Abort(comm, 1);
        const unsigned char *msg;
        size_t len;
        if (md_worker_compute(w, (int)hdr.exp, (int)hdr.stage, hdr.unit, &msg, &len) != MD_OK) MPI_Abort(comm, 1);
        MPI_Send(msg, (int)len, MPI_BYTE, 0, MD_TAG_RESULT, comm);
    }
    free(in);
    return rc;
}
