/* test_exp_cost.c — token-pass costs from a model's widths
 * (include/mechdiff/exp_cost.h), against hand counts:
 *  - Llama-3.1-8B (d 4096, d_ff 14336, 32 layers, 32 heads and 8 key/value
 *    heads of 128, vocab 128256): a layer is 2 4096 (4096 + 1024) + 3 4096
 *    14336 = 218103808 multiply-adds, the model 32 of them = 6979321856;
 *    the logits of a position 128256 x 4096 / that = 0.07527 token passes;
 *  - the shipped organism (d 128, d_ff 384, 4 layers, 4 heads and 2
 *    key/value heads of 32, vocab 7310): 4 (2 128 (128 + 64) + 3 128 384)
 *    = 786432; logits 7310 x 128 / 786432 = 1.1898;
 *  - k of L blocks is k / L, clamped to [0, L];
 *  - the read bound is share x max(rows, MD_COST_RIDGE_ROWS): 8 rows of the
 *    8B model's last block and logits cost (1/32 + 0.07527) x 48, 512 rows
 *    their FLOPs, 512 x the same share; the organism's whole model and
 *    logits (1 + 1.19 token passes: 6.9 MB in fp32) stay in a cache: 8 rows
 *    cost their FLOPs, 8 x the share; its bound starts above 32 MiB of
 *    weights, at a share of 32 MiB / (4 x 786432) = 10.67.
 * Integer-valued products are exact in doubles; the ratios are checked to
 * 1e-12 relative. */
#include <string.h>

#include "mechdiff/exp_cost.h"
#include "testutil.h"

static md_config widths(int d, int d_ff, int layers, int heads, int kv_heads, int head_dim, int vocab)
{
    md_config c;
    memset(&c, 0, sizeof c);
    c.d_model = d, c.d_ff = d_ff, c.n_layers = layers, c.n_heads = heads, c.n_kv_heads = kv_heads;
    c.head_dim = head_dim, c.vocab_size = vocab;
    return c;
}

int main(void)
{
    md_config llama = widths(4096, 14336, 32, 32, 8, 128, 128256);
    CHECK(md_exp_cost_block_macs(&llama) == 6979321856.0);
    CHECK_NEAR(md_exp_cost_logits(&llama), 128256.0 * 4096 / 6979321856.0, 1e-12);
    CHECK_NEAR(md_exp_cost_logits(&llama), 0.07527, 1e-5);
    md_config organism = widths(128, 384, 4, 4, 2, 32, 7310);
    CHECK(md_exp_cost_block_macs(&organism) == 786432.0);
    CHECK_NEAR(md_exp_cost_logits(&organism), 7310.0 * 128 / 786432.0, 1e-12);
    CHECK(md_exp_cost_blocks(&llama, 13) == 13.0 / 32);
    CHECK(md_exp_cost_blocks(&llama, 40) == 1.0 && md_exp_cost_blocks(&llama, -1) == 0.0);
    double last = md_exp_cost_blocks(&llama, 1) + md_exp_cost_logits(&llama);
    CHECK(MD_COST_RIDGE_ROWS == 48);
    double B = md_exp_cost_block_macs(&llama), b = md_exp_cost_block_macs(&organism);
    CHECK_NEAR(md_exp_cost_read_bound(B, 8, last), 48 * last, 1e-12);
    CHECK_NEAR(md_exp_cost_read_bound(B, 512, last), 512 * last, 1e-12);
    CHECK(md_exp_cost_read_bound(B, 48, 1) == 48.0 && md_exp_cost_read_bound(B, 0, 0) == 0.0);
    double whole = 1 + md_exp_cost_logits(&organism);
    CHECK_NEAR(md_exp_cost_read_bound(b, 8, whole), 8 * whole, 1e-12);
    CHECK(md_exp_cost_read_bound(b, 8, 10.6) == 8 * 10.6 && md_exp_cost_read_bound(b, 8, 10.7) == 48 * 10.7);
    TEST_MAIN_END();
}
