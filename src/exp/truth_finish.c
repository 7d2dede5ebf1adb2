/* truth_finish.c — finish_stage of the `truth` kind (docs/methods.md,
 * "Truthfulness"): after stage 0 the directions (mass mean of centred train
 * activations), probes, cosines and transfer accuracy; after stage 1 PD, IE
 * and the clean few-shot accuracy. Reads the results file back (the reader),
 * so a resumed run recomputes the same blobs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp/truth.h"
#include "mechdiff/directions.h"

/* Reads acts/<role>/<ds> [n][d] into x and centres it. */
static int read_centred(md_reader *rd, const md_truth_state *s, int m, int k, int d, float *x, md_error *err)
{
    char path[MD_PATH_MAX];
    int64_t o[2] = {0, 0}, c[2] = {s->ds[k].n, d};
    snprintf(path, sizeof path, "acts/%s/%s", s->roles[m], s->ds[k].name);
    if (md_reader_f32(rd, path, o, c, x, err) != MD_OK) return MD_ERR;
    md_dir_centre(x, s->ds[k].n, d);
    return MD_OK;
}

/* finish_stage(0): directions, probes, cosine, transfer accuracy. */
int md_truth_directions(void *state, md_reader *rd, md_blob *next, md_error *err)
{
    const md_truth_state *s = state;
    int M = s->n_roles, T = s->n_test, rc = MD_ERR;
    char path[MD_PATH_MAX];
    int64_t dims[MD_MAX_DIMS];
    snprintf(path, sizeof path, "acts/%s/%s", s->roles[0], s->ds[0].name);
    if (md_reader_dims(rd, path, dims, err) < 0) return MD_ERR;
    int d = (int)dims[1], n_tr = 0, n_max = 0;
    for (int i = 0; i < s->n_train; i++) n_tr += s->ds[s->train[i]].n;
    for (int k = 0; k < s->n_ds; k++)
        if (s->ds[k].n > n_max) n_max = s->ds[k].n;
    md_dirseq_dirs v;
    size_t bytes = 0;
    void *blob = md_dirseq_alloc_dirs(M, 1, 1, d, (int)md_truth_count_extra(M, T), &v, &bytes);
    float *x = malloc((size_t)(n_tr > n_max ? n_tr : n_max) * d * sizeof(float));
    int *lab = malloc((size_t)(n_tr > n_max ? n_tr : n_max) * sizeof(int));
    double *proj = malloc((size_t)(n_tr > n_max ? n_tr : n_max) * sizeof(double));
    if (!blob || !x || !lab || !proj) {
        md_error_set(err, "out of memory");
        goto done;
    }
    double *theta = v.raw, *unit = v.dir, *norm = v.norm, *probe = v.extra, *tacc = probe + 2 * (size_t)M,
           *acc = tacc + M;
    for (int m = 0; m < M; m++) {
        int off = 0;
        for (int i = 0; i < s->n_train; i++) {
            int k = s->train[i];
            if (read_centred(rd, s, m, k, d, x + (size_t)off * d, err) != MD_OK) goto done;
            memcpy(lab + off, s->ds[k].label, (size_t)s->ds[k].n * sizeof(int));
            off += s->ds[k].n;
        }
        double *th = theta + (size_t)m * d;
        md_dir_probe pr;
        if (md_dir_mass_mean(x, lab, n_tr, d, th, err) != MD_OK) goto fail_m;
        norm[m] = md_dir_norm(th, d);
        memcpy(unit + (size_t)m * d, th, (size_t)d * sizeof(double));
        if (md_dir_normalise(unit + (size_t)m * d, d, err) != MD_OK) goto fail_m;
        md_dir_project(x, n_tr, d, th, proj);
        if (md_dir_probe_fit(proj, lab, n_tr, &pr, err) != MD_OK) goto fail_m;
        probe[2 * m] = pr.w, probe[2 * m + 1] = pr.b;
        tacc[m] = md_dir_probe_accuracy(&pr, proj, lab, n_tr);
        continue;
    fail_m:
        md_error_prefix(err, "truth direction of model '%s'", s->roles[m]);
        goto done;
    }
    md_dirseq_fill_cosines(&v);
    for (int b = 0; b < M; b++)
        for (int j = 0; j < T; j++) {
            int k = s->test[j], n = s->ds[k].n;
            if (read_centred(rd, s, b, k, d, x, err) != MD_OK) goto done;
            for (int a = 0; a < M; a++) {
                md_dir_probe pr = {.w = probe[2 * a], .b = probe[2 * a + 1]};
                md_dir_project(x, n, d, theta + (size_t)a * d, proj);
                acc[((size_t)a * M + b) * T + j] = md_dir_probe_accuracy(&pr, proj, s->ds[k].label, n);
            }
        }
    rc = md_blob_set(next, blob, bytes, err);
done:
    free(blob), free(x), free(lab), free(proj);
    return rc;
}

/* IE of one intervention from the clean and intervened PD per class
 * (0 false, 1 true): false_to_true (+v on false statements), true_to_false
 * (-v on true statements), their average. */
static void tr_ie(const double *pd_clean, const double *pd_int, double out[3])
{
    out[0] = md_dir_ie(pd_int[0], pd_clean[0], 1.0);
    out[1] = md_dir_ie(pd_int[1], pd_clean[1], -1.0);
    out[2] = 0.5 * (out[0] + out[1]);
}

/* finish_stage(1): PD per (target, test, condition, class), IE per
 * (source, target, test, effect), clean few-shot accuracy. */
int md_truth_scores(void *state, const md_blob *input, md_reader *rd, md_blob *next, md_error *err)
{
    (void)input;
    const md_truth_state *s = state;
    int M = s->n_roles, T = s->n_test, K = s->n_control, nc = 1 + M + K, rc = MD_ERR, n_max = 0;
    for (int j = 0; j < T; j++)
        if (s->ds[s->test[j]].n_iv > n_max) n_max = s->ds[s->test[j]].n_iv;
    size_t npd = (size_t)M * T * nc * 2, nie = (size_t)M * M * T * 3, nfa = (size_t)M * T, nct = (size_t)M * T * K * 3;
    double *out = calloc(npd + nie + nfa + nct, sizeof(double));
    float *pt = malloc((size_t)n_max * sizeof(float)), *pf = malloc((size_t)n_max * sizeof(float));
    float *gt = malloc((size_t)n_max * sizeof(float)), *gf = malloc((size_t)n_max * sizeof(float));
    if (!out || !pt || !pf || !gt || !gf) {
        md_error_set(err, "out of memory");
        goto done;
    }
    double *pd = out, *ie = pd + npd, *fa = ie + nie, *ct = fa + nfa;
    char path[MD_PATH_MAX];
    for (int t = 0; t < M; t++)
        for (int j = 0; j < T; j++) {
            const tr_ds *ds = &s->ds[s->test[j]];
            int n = ds->n_iv;
            for (int c = 0; c < nc; c++) {
                int64_t o[3] = {t, c, 0}, cnt[3] = {1, 1, n};
                snprintf(path, sizeof path, "interv/%s/p_true", ds->name);
                if (md_reader_f32(rd, path, o, cnt, pt, err) != MD_OK) goto done;
                snprintf(path, sizeof path, "interv/%s/p_false", ds->name);
                if (md_reader_f32(rd, path, o, cnt, pf, err) != MD_OK) goto done;
                if (c == 0) {
                    int right = 0;
                    for (int i = 0; i < n; i++) right += (pt[i] > pf[i]) == (ds->label[ds->iv[i]] != 0);
                    fa[(size_t)t * T + j] = (double)right / n;
                }
                for (int cls = 0; cls < 2; cls++) {
                    int ng = 0;
                    for (int i = 0; i < n; i++)
                        if ((ds->label[ds->iv[i]] != 0) == cls) gt[ng] = pt[i], gf[ng] = pf[i], ng++;
                    pd[(((size_t)t * T + j) * nc + c) * 2 + cls] = ng ? md_dir_pd(gt, gf, ng) : NAN;
                }
            }
            const double *clean = &pd[(((size_t)t * T + j) * nc + 0) * 2];
            for (int a = 0; a < M; a++)
                tr_ie(clean, &pd[(((size_t)t * T + j) * nc + 1 + a) * 2], &ie[(((size_t)a * M + t) * T + j) * 3]);
            for (int k = 0; k < K; k++)
                tr_ie(clean, &pd[(((size_t)t * T + j) * nc + 1 + M + k) * 2], &ct[(((size_t)t * T + j) * K + k) * 3]);
        }
    rc = md_blob_set(next, out, sizeof(double) * (npd + nie + nfa + nct), err);
done:
    free(out), free(pt), free(pf), free(gt), free(gf);
    return rc;
}
