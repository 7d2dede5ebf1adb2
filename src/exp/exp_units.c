/* exp_units.c — see exp_units.h. */
#include "mechdiff/exp_units.h"

#include <stdio.h>
#include <stdlib.h>

int md_exp_count_batches(int n, int batch)
{
    return (n + batch - 1) / batch;
}

int md_exp_slice_batch(int n, int batch, int b, int *first)
{
    *first = b * batch;
    return n - *first < batch ? n - *first : batch;
}

int md_exp_alloc_units(md_exp_units *u, int cap, md_error *err)
{
    u->n = 0;
    u->key = malloc((size_t)cap * sizeof *u->key);
    if (!u->key) return md_error_set(err, "out of memory");
    return MD_OK;
}

void md_exp_add_unit(md_exp_units *u, int k0, int k1, int k2, int k3)
{
    int *k = u->key[u->n++];
    k[0] = k0, k[1] = k1, k[2] = k2, k[3] = k3;
}

void md_exp_free_units(md_exp_units *u)
{
    free(u->key);
    u->key = NULL;
    u->n = 0;
}
void md_exp_name_unit(const md_kind_ctx *ctx, int stage, int64_t unit, char *buf, size_t len)
{
    snprintf(buf, len, "%s/stage %d/unit %lld", ctx->exp->name, stage, (long long)unit);
}
