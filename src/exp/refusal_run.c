/* refusal_run.c — the steps of the direction sequence (dirseq.h) of the
 * `refusal` kind in both modes: the stage-0 and stage-1 units, the
 * directions of finish_stage(0) and the scores of finish_stage(1) (see
 * refusal.c for the stages). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp/refusal.h"
#include "mechdiff/directions.h"
#include "mechdiff/exp_units.h"
#include "mechdiff/model.h"

int md_refusal_gen_units(md_refusal_state *s, md_error *err)
{
    int nr = s->n_roles, nb = md_exp_count_batches(s->n_test, s->batch), ni = 1 + 2 * nr;
    if (s->sweep) { /* model x candidate layer x candidate position x batch */
        if (md_exp_alloc_units(&s->gen, nr * s->n_layers * s->n_pos * nb, err) != MD_OK) return MD_ERR;
        for (int m = 0; m < nr; m++)
            for (int li = 0; li < s->n_layers; li++)
                for (int pi = 0; pi < s->n_pos; pi++)
                    for (int b = 0; b < nb; b++) md_exp_add_unit(&s->gen, m, li, pi, b);
        return MD_OK;
    }
    /* target x intervention x set x batch; activation addition (the
     * interventions after the ablations) runs on harmless prompts only */
    if (md_exp_alloc_units(&s->gen, nr * ni * 2 * nb, err) != MD_OK) return MD_ERR;
    for (int t = 0; t < nr; t++)
        for (int iv = 0; iv < ni; iv++)
            for (int k = 0; k < 2; k++) {
                if (iv > nr && k == MD_REFUSAL_HARMFUL) continue;
                for (int b = 0; b < nb; b++) md_exp_add_unit(&s->gen, t, iv, k, b);
            }
    return MD_OK;
}

int md_refusal_run_collect(const md_kind_ctx *ctx, md_worker *w, void *state, int64_t unit, md_result *out,
                           md_error *err)
{
    const md_refusal_state *s = state;
    const char *role = s->roles[s->acts.key[unit][0]];
    md_model *M = NULL;
    if (md_worker_model(w, role, &M, err) != MD_OK) return MD_ERR;
    md_dirseq_at at = {.hook = s->hook, .layers = s->layers, .n_layers = s->n_layers, .positions = s->positions,
                       .n_pos = s->n_pos, .rank = 4};
    int layer, pos;
    if (!s->sweep) { /* the point mode's one (layer, position) */
        layer = md_refusal_layer(&s->opt, M->cfg.n_layers, 0), pos = md_refusal_position(&s->opt, role);
        at = (md_dirseq_at){.hook = s->hook, .layers = &layer, .n_layers = 1, .positions = &pos, .n_pos = 1,
                            .rank = 2};
    }
    return md_refusal_collect(ctx, M, s, unit, &at, out, err);
}

/* What a stage-1 unit generates: target role t, set k, test rows [r0, r0+n),
 * where the texts and flags go, and its name in errors. */
typedef struct rf_gen {
    int t, k, r0, n;
    char text[MD_PATH_MAX], refused[MD_PATH_MAX], name[160];
    int rank;          /* of the refused dataset: 1 (point) or 4 (sweep) */
    int64_t at[4];     /* its offset */
} rf_gen;

/* The unit's generation and its intervention as hooks on vec (d floats,
 * the caller's). */
static int gen_setup(const md_refusal_state *s, const md_dirseq_dirs *v, int64_t unit, const md_model *M,
                     rf_gen *g, float *vec, md_hook hk[3], int *nh, md_error *err)
{
    const int *key = s->gen.key[unit];
    int d = M->cfg.d_model;
    *nh = 0;
    if (s->sweep) { /* (model, layer, position, batch): that candidate's direction ablated */
        int li = key[1], pi = key[2];
        *g = (rf_gen){.t = key[0], .k = MD_REFUSAL_HARMFUL, .rank = 4};
        g->n = md_exp_slice_batch(s->n_test, s->batch, key[3], &g->r0);
        g->at[0] = g->t, g->at[1] = li, g->at[2] = pi, g->at[3] = g->r0;
        snprintf(g->text, sizeof g->text, "gen/%s/layer%d_pos%d/text", s->roles[g->t], s->layers[li],
                 s->positions[pi]);
        snprintf(g->refused, sizeof g->refused, "refused");
        snprintf(g->name, sizeof g->name, "%s, layer %d, position %d", s->roles[g->t], s->layers[li], s->positions[pi]);
        if (md_dirseq_source_vec(v, g->t, li * s->n_pos + pi, 0, d, s->roles[g->t], vec, err) != MD_OK) return MD_ERR;
        *nh = md_refusal_ablation_hooks(vec, hk);
        return MD_OK;
    }
    /* (target, intervention, set, batch) */
    int iv = key[1];
    char ivn[128];
    md_refusal_interv_name(s, iv, ivn, sizeof ivn);
    *g = (rf_gen){.t = key[0], .k = key[2], .rank = 1};
    g->n = md_exp_slice_batch(s->n_test, s->batch, key[3], &g->r0);
    g->at[0] = g->r0;
    const char *set = md_refusal_set_name(g->k), *role = s->roles[g->t];
    snprintf(g->text, sizeof g->text, "gen/%s/%s/%s/text", set, role, ivn);
    snprintf(g->refused, sizeof g->refused, "gen/%s/%s/%s/refused", set, role, ivn);
    snprintf(g->name, sizeof g->name, "%s, %s, %s", role, ivn, set);
    if (iv == 0) return md_dirseq_source_vec(v, 0, 0, 0, d, role, vec, err); /* width check only */
    if (iv <= s->n_roles) {
        if (md_dirseq_source_vec(v, iv - 1, 0, 0, d, role, vec, err) != MD_OK) return MD_ERR;
        *nh = md_refusal_ablation_hooks(vec, hk);
        return MD_OK;
    }
    int raw = strcmp(s->opt.addition_vector, "unit") != 0;
    if (md_dirseq_source_vec(v, iv - 1 - s->n_roles, 0, raw, d, role, vec, err) != MD_OK) return MD_ERR;
    const char *cv = md_value_map_get(s->opt.coefficients, role);
    hk[(*nh)++] = (md_hook){.point = s->hook, .op = MD_HOOK_ADD, .layer = md_refusal_layer(&s->opt, M->cfg.n_layers, 1),
                            .seq = MD_ALL, .pos = MD_ALL, .vec = vec, .coef = cv ? (float)strtod(cv, NULL) : 1.0f};
    return MD_OK;
}

int md_refusal_run_intervene(const md_kind_ctx *ctx, md_worker *w, void *state, const md_blob *input, int64_t unit,
                             md_result *out, md_error *err)
{
    const md_refusal_state *s = state;
    md_dirseq_dirs v;
    if (md_dirseq_view_dirs(input, "refusal", &v, err) != MD_OK) return MD_ERR;
    if (v.M != s->n_roles || v.L != (s->sweep ? s->n_layers : 1) || v.P != (s->sweep ? s->n_pos : 1))
        return md_error_set(err, "refusal: stage 1 input (%d models, %d x %d candidates) does not fit the job", v.M,
                            v.L, v.P);
    md_model *M = NULL;
    if (md_worker_model(w, s->roles[s->gen.key[unit][0]], &M, err) != MD_OK) return MD_ERR;
    int d = M->cfg.d_model, rc = MD_ERR, nh = 0;
    rf_gen g = {0};
    md_hook hk[3];
    float *vec = malloc((size_t)d * sizeof(float));
    int32_t *refused = NULL;
    if (!vec) {
        md_error_set(err, "out of memory");
        goto done;
    }
    if (gen_setup(s, &v, unit, M, &g, vec, hk, &nh, err) != MD_OK) goto done;
    if (!(refused = calloc((size_t)g.n, sizeof(int32_t)))) {
        md_error_set(err, "out of memory");
        goto done;
    }
    int64_t c[4] = {1, 1, 1, g.n};
    if (md_refusal_generate(ctx, M, s, g.t, g.k, g.r0, g.n, hk, nh, g.text, refused, out, err) != MD_OK) goto done;
    rc = md_result_put(out, g.refused, g.rank, g.at, g.rank == 1 ? &c[3] : c, refused, (size_t)g.n * sizeof(int32_t),
                       err);
done:
    if (rc != MD_OK) md_error_prefix(err, "refusal generation (%s, rows %d..)", g.name, g.r0);
    free(refused), free(vec);
    return rc;
}

int md_refusal_run_directions(void *state, md_reader *rd, md_blob *next, md_error *err)
{
    const md_refusal_state *s = state;
    int M = s->n_roles, L = s->sweep ? s->n_layers : 1, P = s->sweep ? s->n_pos : 1, rc = MD_ERR;
    char path[MD_PATH_MAX];
    int64_t dims[MD_MAX_DIMS];
    snprintf(path, sizeof path, "acts/%s/harmful", s->roles[0]);
    if (md_reader_dims(rd, path, dims, err) < 0) return MD_ERR;
    int d = (int)dims[s->sweep ? 3 : 1];
    md_dirseq_dirs v;
    size_t bytes = 0;
    void *blob = md_dirseq_alloc_dirs(M, L, P, d, 0, &v, &bytes);
    if (!blob) return md_error_set(err, "out of memory");
    for (int m = 0; m < M; m++)
        for (int li = 0; li < L; li++)
            for (int pi = 0; pi < P; pi++) {
                size_t c = ((size_t)m * L + li) * P + pi;
                if (md_refusal_direction(rd, s, m, li, pi, d, v.raw + c * d, v.dir + c * d, &v.norm[c], s->sweep,
                                         err) == MD_OK)
                    continue;
                if (s->sweep)
                    md_error_prefix(err, "refusal direction of model '%s' at layer %d, position %d", s->roles[m],
                                    s->layers[li], s->positions[pi]);
                else
                    md_error_prefix(err, "refusal direction of model '%s'", s->roles[m]);
                goto done;
            }
    if (!s->sweep) md_dirseq_fill_cosines(&v);
    rc = md_blob_set(next, blob, bytes, err);
done:
    free(blob);
    return rc;
}

/* Point mode: the refusal score of every (target, intervention, set); NaN
 * where not run. */
static int scores_point(const md_refusal_state *s, md_reader *rd, double *sc, md_error *err)
{
    int M = s->n_roles, ni = 1 + 2 * M;
    char path[MD_PATH_MAX];
    for (int t = 0; t < M; t++)
        for (int iv = 0; iv < ni; iv++)
            for (int k = 0; k < 2; k++) {
                double *o = &sc[((size_t)t * ni + iv) * 2 + k];
                *o = NAN;
                if (iv > M && k == MD_REFUSAL_HARMFUL) continue;
                char ivn[128];
                md_refusal_interv_name(s, iv, ivn, sizeof ivn);
                snprintf(path, sizeof path, "gen/%s/%s/%s/refused", md_refusal_set_name(k), s->roles[t], ivn);
                int64_t off = 0, cnt = s->n_test;
                if (md_dirseq_read_rate(rd, path, &off, &cnt, s->n_test, o, err) != MD_OK) return MD_ERR;
            }
    return MD_OK;
}

/* Sweep mode: scores [M][L][P]; NaN where the direction is 0. */
static int scores_sweep(const md_refusal_state *s, const md_dirseq_dirs *v, md_reader *rd, double *sc, md_error *err)
{
    int M = s->n_roles, L = s->n_layers, P = s->n_pos;
    for (int m = 0; m < M; m++)
        for (int li = 0; li < L; li++)
            for (int pi = 0; pi < P; pi++) {
                int64_t o[4] = {m, li, pi, 0}, c[4] = {1, 1, 1, s->n_test};
                double rate;
                if (md_dirseq_read_rate(rd, "refused", o, c, s->n_test, &rate, err) != MD_OK) return MD_ERR;
                const double *r = v->dir + (((size_t)m * L + li) * P + pi) * v->d;
                int zero = 1;
                for (int j = 0; j < v->d && zero; j++) zero = r[j] == 0;
                sc[((size_t)m * L + li) * P + pi] = zero ? NAN : rate;
            }
    return MD_OK;
}

int md_refusal_run_scores(void *state, const md_blob *input, md_reader *rd, md_blob *next, md_error *err)
{
    const md_refusal_state *s = state;
    int M = s->n_roles;
    size_t n = s->sweep ? (size_t)M * s->n_layers * s->n_pos : (size_t)M * (1 + 2 * M) * 2;
    md_dirseq_dirs v;
    if (s->sweep && md_dirseq_view_dirs(input, "refusal", &v, err) != MD_OK) return MD_ERR;
    double *sc = malloc(sizeof(double) * n);
    if (!sc) return md_error_set(err, "out of memory");
    int rc = s->sweep ? scores_sweep(s, &v, rd, sc, err) : scores_point(s, rd, sc, err);
    if (rc == MD_OK) rc = md_blob_set(next, sc, sizeof(double) * n, err);
    free(sc);
    return rc;
}
