/* exp_cost.c — token-pass costs from a model's widths (see
 * include/mechdiff/exp_cost.h). */
#include "mechdiff/exp_cost.h"

#include <string.h>

double md_exp_cost_block_macs(const md_config *c)
{
    double d = c->d_model, h = (double)c->n_heads * c->head_dim, kv = (double)c->n_kv_heads * c->head_dim;
    return c->n_layers * (2 * d * (h + kv) + 3 * d * c->d_ff);
}

double md_exp_cost_logits(const md_config *c)
{
    double b = md_exp_cost_block_macs(c);
    return b > 0 ? (double)c->vocab_size * c->d_model / b : 0;
}

double md_exp_cost_blocks(const md_config *c, int k)
{
    if (c->n_layers <= 0) return 1;
    k = k < 0 ? 0 : k > c->n_layers ? c->n_layers : k;
    return (double)k / c->n_layers;
}

double md_exp_cost_read_bound(double block_macs, double rows, double share)
{
    int cached = share * block_macs * 4 <= MD_COST_CACHED_BYTES; /* fp32 weights of this forward */
    return share * (cached || rows > MD_COST_RIDGE_ROWS ? rows : MD_COST_RIDGE_ROWS);
}

double md_exp_cost_text_tokens(const char *text)
{
    return 1 + (text ? (double)strlen(text) : 0) / 4;
}
