/* exp_batch.c — see exp_batch.h. */
#include "mechdiff/exp_batch.h"

#include <stdlib.h>

#include "mechdiff/forward.h"
#include "mechdiff/model.h"

void md_exp_free_ids(int **ids, int n)
{
    if (!ids) return;
    for (int i = 0; i < n; i++) free(ids[i]);
    free(ids);
}

int md_exp_pad_batch(const md_model *m, int **ids, const int *len, int n, int *T_out, int **pad, int **tok,
                     md_error *err)
{
    int T = 0;
    for (int i = 0; i < n; i++)
        if (len[i] > T) T = len[i];
    *pad = malloc((size_t)n * sizeof(int));
    *tok = malloc((size_t)n * T * sizeof(int));
    if (!*pad || !*tok) return md_error_set(err, "out of memory");
    int fill = md_tokenizer_bos_id(m->tok) >= 0 ? md_tokenizer_bos_id(m->tok) : 0;
    for (int i = 0; i < n; i++) {
        (*pad)[i] = T - len[i];
        for (int t = 0; t < T; t++) (*tok)[(size_t)i * T + t] = t < (*pad)[i] ? fill : ids[i][t - (*pad)[i]];
    }
    *T_out = T;
    return MD_OK;
}

int md_exp_read_acts_grid(md_model *m, int **ids, const int *len, int n, int hook, const int *layers, int n_layers,
                          const int *pos, int n_pos, float *acts, md_error *err)
{
    int T = 0, *pad = NULL, *tok = NULL, rc = MD_ERR, deepest = 0;
    size_t width = (size_t)md_model_hook_width(m, hook);
    md_kvcache *kc = NULL;
    md_hook *rd = calloc((size_t)n_layers * n_pos, sizeof *rd);
    if (!rd) {
        md_error_set(err, "out of memory");
        goto done;
    }
    if (md_exp_pad_batch(m, ids, len, n, &T, &pad, &tok, err) != MD_OK) goto done;
    for (int li = 0; li < n_layers; li++) {
        if (layers[li] > deepest) deepest = layers[li];
        for (int pi = 0; pi < n_pos; pi++)
            rd[li * n_pos + pi] = (md_hook){.point = hook, .op = MD_HOOK_READ, .layer = layers[li], .seq = MD_ALL,
                                            .pos = T + pos[pi],
                                            .out = acts + (size_t)(li * n_pos + pi) * n * width};
    }
    md_forward f;
    if (md_kvcache_create(&kc, m, n, T, err) != MD_OK) goto done;
    md_forward_init_batch(&f, m, n, T, tok, pad, kc);
    md_forward_set_hooks(&f, rd, n_layers * n_pos);
    md_forward_set_logits(&f, MD_LOGITS_NONE, NULL, NULL, 0);
    f.layer_end = deepest + 1;
    rc = md_model_forward(m, &f, err);
done:
    md_kvcache_free(kc);
    free(rd), free(pad), free(tok);
    return rc;
}

int md_exp_read_acts(md_model *m, int **ids, const int *len, int n, int hook, int layer, int pos, float *acts,
                     md_error *err)
{
    return md_exp_read_acts_grid(m, ids, len, n, hook, &layer, 1, &pos, 1, acts, err);
}
