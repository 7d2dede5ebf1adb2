/* test_backend_forward.c — batched hook cells (put_cells / get_cells) and
 * whole forwards of the golden models with every hook op, left padding and
 * logit ids, on every backend against the CPU reference (NMSE; the method,
 * thresholds and parts: backend_pair.h).
 *   test_backend_forward [--gpu]   (ctest unit.test_backend_forward, gpu.test_backend_forward) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_pair.h"
#include "mechdiff/backend.h"
#include "mechdiff/forward.h"
#include "testutil.h"

/* put_cells (batched hooks): n cells of w floats at scattered offsets of a
 * [rows][d] buffer, replaced and added; the same numbers on both backends,
 * and on the tested one what to_device / add_vec cell by cell give (exact:
 * a copy, and x + coef * v without contraction in both); get_cells of the
 * replaced cells gives back exactly what was put. */
static void op_put_cells(const pair *p, int rows, int d, int n, int w)
{
    size_t nx = (size_t)rows * d, *off = malloc((size_t)n * sizeof *off);
    float *x = rand_vec(nx, -4, 4), *src = rand_vec((size_t)n * w, -1, 1), *res[3][2];
    for (int i = 0; i < n; i++) off[i] = (size_t)((i * 7 + 3) % rows) * d + (size_t)(i * 5) % (d - w + 1);
    md_backend *bes[3] = {p->ref, p->be, p->be};
    for (int add = 0; add < 2; add++)
        for (int k = 0; k < 3; k++) {
            md_backend *be = bes[k];
            float *xd = dev_from(be, x, nx);
            for (int i = 0; k == 2 && i < n; i++) { /* cell by cell, the single hooks' ops */
                if (add) OP_OK(be->ops->add_vec(be, xd + off[i], 1, w, src + (size_t)i * w, 0.7f, &op_err));
                else OP_OK(be->ops->to_device(be, xd + off[i], src + (size_t)i * w, (size_t)w * sizeof(float), &op_err));
            }
            if (k < 2) OP_OK(be->ops->put_cells(be, xd, n, w, off, src, add, 0.7f, &op_err));
            if (k < 2 && !add) {
                float *back = malloc((size_t)n * w * sizeof(float));
                OP_OK(be->ops->get_cells(be, back, xd, n, w, off, &op_err));
                CHECK_MSG(memcmp(back, src, (size_t)n * w * sizeof(float)) == 0, "%s: get_cells != the cells put",
                          k ? p->label : "reference");
                free(back);
            }
            res[k][add] = host_from(be, xd, nx);
            be->ops->free(be, xd);
        }
    char what[64];
    for (int add = 0; add < 2; add++) {
        snprintf(what, sizeof what, "%s n=%d w=%d", add ? "add" : "replace", n, w);
        report(p, "put_cells", what, nmse(res[1][add], res[0][add], nx), 0.0);
        CHECK_MSG(memcmp(res[1][add], res[2][add], nx * sizeof(float)) == 0,
                  "%s: put_cells %s != the same cells one by one", p->label, what);
        for (int k = 0; k < 3; k++) free(res[k][add]);
    }
    free(off);
    free(x);
    free(src);
}

/* One golden model's forward on the reference (CPU) and on `kind` (with
 * `cache_bytes` for a CPU test backend): left padding, every hook op, all
 * logits, then logit ids (the row-view path). Compares logits and reads. */
static void op_forward(const pair *p, const char *dir, md_backend_kind kind, size_t cache_bytes, int device)
{
    md_model *mr = NULL, *mb = NULL;
    md_model_options o;
    md_error err;
    md_model_options_init(&o);
    o.skip_tokenizer = 1;
    if (md_model_load(&mr, dir, &o, &err) != MD_OK) {
        CHECK_MSG(0, "%s", err.msg);
        return;
    }
    o.backend = kind;
    o.device = device;
    o.fp32_cache_bytes = cache_bytes;
    if (md_model_load(&mb, dir, &o, &err) != MD_OK) {
        CHECK_MSG(0, "%s", err.msg);
        md_model_free(mr);
        return;
    }
    const md_config *c = &mr->cfg;
    int S = 2, T = 6, d = c->d_model, V = c->vocab_size;
    int tokens[12], pad[2] = {0, 2}, ids[2] = {5, V - 1};
    for (int i = 0; i < S * T; i++) tokens[i] = (int)(urand() * V);
    float *vec = rand_vec((size_t)d, -0.5f, 0.5f), *unit = rand_vec((size_t)d, -1, 1);
    double nn = 0.0;
    for (int j = 0; j < d; j++) nn += (double)unit[j] * unit[j];
    for (int j = 0; j < d; j++) unit[j] = (float)(unit[j] / sqrt(nn));
    size_t nread = (size_t)c->n_layers * S * T * d;
    size_t nz = (size_t)c->n_layers * S * T * c->n_heads * c->head_dim, npat = (size_t)c->n_layers * S * T * c->n_heads * T;
    float *lg[2], *rd[2], *li[2], *zr[2], *pr[2];
    md_model *ms[2] = {mr, mb};
    for (int k = 0; k < 2; k++) {
        md_model *m = ms[k];
        lg[k] = calloc((size_t)S * T * V, sizeof(float));
        rd[k] = calloc(nread, sizeof(float));
        li[k] = calloc((size_t)S * 2, sizeof(float));
        zr[k] = calloc(nz, sizeof(float));
        pr[k] = calloc(npat, sizeof(float));
        md_hook h[8] = {
            {MD_HOOK_RESID_MID, MD_HOOK_ADD, 0, MD_ALL, 3, vec, 0, 1.5f, NULL, 0, NULL, NULL},
            {MD_HOOK_MLP_OUT, MD_HOOK_ABLATE, c->n_layers - 1, MD_ALL, MD_ALL, unit, 0, 0.0f, NULL, 0, NULL, NULL},
            {MD_HOOK_RESID_PRE, MD_HOOK_REPLACE, c->n_layers - 1, 1, 2, vec, 0, 0.0f, NULL, 0, NULL, NULL},
            {MD_HOOK_RESID_POST, MD_HOOK_READ, MD_ALL, MD_ALL, MD_ALL, NULL, 0, 0.0f, rd[k], 0, NULL, NULL},
            /* per head: z and pattern read everywhere (before the edits below), one head's
             * z shifted at layer 0, one head's pattern shifted at the last layer */
            {MD_HOOK_Z, MD_HOOK_READ, MD_ALL, MD_ALL, MD_ALL, NULL, 0, 0.0f, zr[k], MD_ALL, NULL, NULL},
            {MD_HOOK_PATTERN, MD_HOOK_READ, MD_ALL, MD_ALL, MD_ALL, NULL, 0, 0.0f, pr[k], MD_ALL, NULL, NULL},
            {MD_HOOK_Z, MD_HOOK_ADD, 0, MD_ALL, MD_ALL, vec, 0, 0.7f, NULL, 1, NULL, NULL},
            {MD_HOOK_PATTERN, MD_HOOK_ADD, c->n_layers - 1, 0, MD_ALL, vec, 0, 0.2f, NULL, c->n_heads - 1, NULL, NULL},
        };
        md_kvcache *kc = NULL;
        CHECK_MSG(md_kvcache_create(&kc, m, S, T, &err) == MD_OK, "%s", err.msg);
        md_forward f;
        md_forward_init_tokens(&f, m, S, T, tokens);
        f.cache = kc;
        f.n_pad = pad;
        f.hooks = h;
        f.n_hooks = 8;
        f.logits = MD_LOGITS_ALL;
        f.logits_out = lg[k];
        CHECK_MSG(md_model_forward(m, &f, &err) == MD_OK, "%s", err.msg);
        md_kvcache_truncate(kc, 0);
        f.logits = MD_LOGITS_LAST;
        f.logit_ids = ids;
        f.n_logit_ids = 2;
        f.logits_out = li[k];
        f.n_hooks = 0;
        CHECK_MSG(md_model_forward(m, &f, &err) == MD_OK, "%s", err.msg);
        md_kvcache_free(kc);
    }
    md_dtype wdt = mr->layers[0].wq.dtype;
    double tol = tol_weighted(p, wdt, 1) * 10; /* errors compound over layers and the head */
    char what[128];
    const char *base = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
    snprintf(what, sizeof what, "%s logits (hooks, padding)", base);
    report(p, "forward", what, nmse(lg[1], lg[0], (size_t)S * T * V), tol);
    snprintf(what, sizeof what, "%s hook reads resid_post", base);
    report(p, "forward", what, nmse(rd[1], rd[0], nread), tol);
    snprintf(what, sizeof what, "%s logit ids", base);
    report(p, "forward", what, nmse(li[1], li[0], (size_t)S * 2), tol);
    snprintf(what, sizeof what, "%s hook reads z", base);
    report(p, "forward", what, nmse(zr[1], zr[0], nz), tol);
    snprintf(what, sizeof what, "%s hook reads pattern", base);
    report(p, "forward", what, nmse(pr[1], pr[0], npat), tol);
    for (int k = 0; k < 2; k++) {
        float *bufs[5] = {zr[k], pr[k], lg[k], rd[k], li[k]};
        for (int i = 0; i < 5; i++) free(bufs[i]);
    }
    free(vec);
    free(unit);
    md_model_free(mb);
    md_model_free(mr);
}

static const char *const GOLDEN_MODELS[] = {"tests/golden/models/llama3_bf16",  "tests/golden/models/llama2_tied_f32",
                                            "tests/golden/models/mistral_f32",  "tests/golden/models/qwen2_bf16",
                                            "tests/golden/models/qwen3_f32",    "tests/golden/models/gemma2_bf16",
                                            "tests/golden/models/olmo2_f32",    NULL};

static void suite(const pair *p)
{
    op_put_cells(p, 40, 96, 25, 96);  /* whole rows (a batched residual patch) */
    op_put_cells(p, 33, 256, 33, 16); /* one head's slice per row (batched z) */
    for (int i = 0; GOLDEN_MODELS[i]; i++)
        op_forward(p, GOLDEN_MODELS[i], p->is_cpu ? MD_BACKEND_CPU : MD_BACKEND_CUDA, p->is_cpu ? 1 : 0,
                   p->device);
}

int main(int argc, char **argv)
{
    const bp_test t = {suite, NULL, NULL};
    return bp_main(argc, argv, &t);
}
