/* dirseq.c — the direction sequence of the truth and refusal kinds (see
 * dirseq.h). */
#include "exp/dirseq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/directions.h"
#include "mechdiff/exp_batch.h"
#include "mechdiff/exp_blob.h"
#include "mechdiff/exp_units.h"
#include "mechdiff/model.h"
#include "mechdiff/plan.h"

/* The sequence of the experiment's kind. */
static const md_dirseq *seq_of(const md_kind_ctx *ctx)
{
    return ctx->exp->impl->data;
}

int md_dirseq_prepare(const md_kind_ctx *ctx, md_worker *w, int stage, const md_blob *input, void **state,
                      md_error *err)
{
    (void)w, (void)stage, (void)input;
    return seq_of(ctx)->build(ctx, state, err);
}

int md_dirseq_compute(const md_kind_ctx *ctx, md_worker *w, void *state, int stage, const md_blob *input,
                      int64_t unit, md_result *out, md_error *err)
{
    const md_dirseq *q = seq_of(ctx);
    if (stage == 0) return q->collect(ctx, w, state, unit, out, err);
    if (stage == 1) return q->intervene(ctx, w, state, input, unit, out, err);
    return MD_OK; /* stage 2: the plan wrote the scores */
}

int md_dirseq_finish(const md_kind_ctx *ctx, int stage, const md_blob *input, md_reader *rd, md_blob *next,
                     int *done, md_error *err)
{
    const md_dirseq *q = seq_of(ctx);
    *done = stage >= 2;
    if (*done) return MD_OK;
    void *s = NULL;
    if (q->build(ctx, &s, err) != MD_OK) return MD_ERR;
    int rc = stage == 0 ? q->directions(s, rd, next, err) : q->scores(s, input, rd, next, err);
    q->release(s);
    return rc;
}

int md_dirseq_estimate(const md_kind_ctx *ctx, md_stage_estimate *out, md_error *err)
{
    const md_dirseq *q = seq_of(ctx);
    void *s = NULL;
    if (q->build(ctx, &s, err) != MD_OK) return MD_ERR;
    if (q->price && q->price(ctx, s, err) != MD_OK) {
        q->release(s);
        return MD_ERR;
    }
    for (int stage = 0; stage < 2; stage++) {
        out[stage].units = q->units(s, stage);
        for (int64_t u = 0; u < out[stage].units; u++) out[stage].cost += q->unit_cost(s, stage, u);
    }
    q->release(s);
    out[2] = (md_stage_estimate){.units = 1, .cost = 1}; /* the plan writes the scores: one unit, default cost */
    return MD_OK;
}

void md_dirseq_plan_costs(const md_kind_ctx *ctx, const void *state, int stage, md_plan *plan)
{
    const md_dirseq *q = seq_of(ctx);
    for (int64_t u = 0; u < plan->n_units; u++) md_plan_cost(plan, u, q->unit_cost(state, stage, u));
}

int md_dirseq_collect_units(md_exp_units *u, int n_models, int n_sets, const int *rows, int batch, md_error *err)
{
    int n = 0;
    for (int k = 0; k < n_sets; k++) n += n_models * md_exp_count_batches(rows[k], batch);
    if (md_exp_alloc_units(u, n, err) != MD_OK) return MD_ERR;
    for (int m = 0; m < n_models; m++)
        for (int k = 0; k < n_sets; k++)
            for (int b = 0; b < md_exp_count_batches(rows[k], batch); b++) md_exp_add_unit(u, m, k, b, 0);
    return MD_OK;
}

int md_dirseq_put_acts(md_model *m, int **ids, const int *len, int n, const md_dirseq_at *at, const char *path,
                       int r0, md_result *out, md_error *err)
{
    int L = at->n_layers, P = at->n_pos, d = md_model_hook_width(m, at->hook), rc = MD_ERR;
    if (!(at->rank == 4 || (at->rank == 2 && L == 1 && P == 1)))
        return md_error_set(err, "activations: rank %d with %d x %d candidates (2 needs one, else 4)", at->rank, L, P);
    for (int pi = 0; pi < P; pi++)
        for (int i = 0; i < n; i++)
            if (len[i] < -at->positions[pi])
                return md_error_set(err, "row %d has %d tokens; position %d is before its start", r0 + i, len[i],
                                    at->positions[pi]);
    /* grid [L][P][n][d] as read, acts [n][L][P][d] as stored */
    size_t cells = (size_t)n * L * P * d;
    float *grid = malloc(cells * sizeof(float)), *acts = malloc(cells * sizeof(float));
    if (!grid || !acts) {
        md_error_set(err, "out of memory");
        goto done;
    }
    /* one forward reads every candidate (layer, position) */
    if (md_exp_read_acts_grid(m, ids, len, n, at->hook, at->layers, L, at->positions, P, grid, err) != MD_OK)
        goto done;
    for (int li = 0; li < L; li++)
        for (int pi = 0; pi < P; pi++)
            for (int i = 0; i < n; i++)
                memcpy(acts + (((size_t)i * L + li) * P + pi) * d, grid + (((size_t)li * P + pi) * n + i) * d,
                       (size_t)d * sizeof(float));
    int64_t o[4] = {r0, 0, 0, 0}, c[4] = {n, L, P, d};
    if (at->rank == 2) c[1] = d;
    rc = md_result_put(out, path, at->rank, o, c, acts, cells * sizeof(float), err);
done:
    free(grid), free(acts);
    return rc;
}

/* Doubles of the blob after its header. */
static size_t dirs_count(int M, int L, int P, int d, int n_extra)
{
    size_t cand = (size_t)M * L * P;
    return 2 * cand * d + cand + (size_t)M * M + (size_t)n_extra;
}

/* The parts of the doubles q of a blob of these sizes. */
static void dirs_point(md_dirseq_dirs *v, double *q)
{
    size_t cand = (size_t)v->M * v->L * v->P;
    v->raw = q;
    v->dir = v->raw + cand * v->d;
    v->norm = v->dir + cand * v->d;
    v->cos = v->norm + cand;
    v->extra = v->cos + (size_t)v->M * v->M;
}

void *md_dirseq_alloc_dirs(int M, int L, int P, int d, int n_extra, md_dirseq_dirs *v, size_t *bytes)
{
    const int32_t hd[6] = {M, L, P, d, n_extra, 0};
    double *q = NULL;
    void *blob = md_exp_alloc_blob(hd, 6, dirs_count(M, L, P, d, n_extra), &q, bytes);
    *v = (md_dirseq_dirs){.M = M, .L = L, .P = P, .d = d, .n_extra = n_extra};
    if (blob) dirs_point(v, q);
    return blob;
}

int md_dirseq_view_dirs(const md_blob *b, const char *kind, md_dirseq_dirs *v, md_error *err)
{
    int32_t hd[6];
    const double *q = NULL;
    *v = (md_dirseq_dirs){0};
    if (md_exp_read_blob_header(b, kind, hd, 6, err) != MD_OK) return MD_ERR;
    for (int i = 0; i < 5; i++)
        if (hd[i] < 0 || (i < 4 && hd[i] == 0)) return md_error_set(err, "%s: stage input has a bad header", kind);
    *v = (md_dirseq_dirs){.M = hd[0], .L = hd[1], .P = hd[2], .d = hd[3], .n_extra = hd[4]};
    if (md_exp_view_blob_f64(b, kind, 6, dirs_count(v->M, v->L, v->P, v->d, v->n_extra), &q, err) != MD_OK)
        return MD_ERR;
    dirs_point(v, (double *)q); /* read-only by contract (dirseq.h) */
    return MD_OK;
}

void md_dirseq_fill_cosines(md_dirseq_dirs *v)
{
    size_t stride = (size_t)v->L * v->P * v->d;
    for (int a = 0; a < v->M; a++)
        for (int b = 0; b < v->M; b++)
            v->cos[a * v->M + b] = md_dir_cosine(v->dir + a * stride, v->dir + b * stride, v->d);
}

int md_dirseq_source_vec(const md_dirseq_dirs *v, int src, int cand, int raw, int d, const char *role, float *vec,
                         md_error *err)
{
    if (v->d != d) return md_error_set(err, "direction width %d differs from model '%s' d_model %d", v->d, role, d);
    const double *r = (raw ? v->raw : v->dir) + ((size_t)src * v->L * v->P + cand) * d;
    for (int j = 0; j < d; j++) vec[j] = (float)r[j];
    return MD_OK;
}

int md_dirseq_read_rate(md_reader *rd, const char *path, const int64_t *offset, const int64_t *count, int n,
                        double *rate, md_error *err)
{
    double *buf = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (!buf) return md_error_set(err, "out of memory");
    int rc = md_reader_f64(rd, path, offset, count, buf, err);
    if (rc == MD_OK) {
        double sum = 0;
        for (int i = 0; i < n; i++) sum += buf[i];
        *rate = sum / n;
    }
    free(buf);
    return rc;
}

int md_dirseq_view_scores(const md_blob *input, const char *kind, size_t n, const double **scores, md_error *err)
{
    if (!input || input->size != sizeof(double) * n)
        return md_error_set(err, "%s: stage 2 input has the wrong size", kind);
    *scores = input->data;
    return MD_OK;
}
