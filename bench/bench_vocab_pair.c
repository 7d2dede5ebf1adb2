/* bench_vocab_pair.c — the cost of the vocabulary half of the pairing rule
 * (md_exp_pair_vocabularies: the shared-id walk of
 * md_tokenizer_first_difference plus the probe and answer-word encodings)
 * on a real-sized tokenizer, against loading that tokenizer once (what
 * every validate pays per model folder anyway). The two tokenizers are
 * the folder's, loaded twice: every shared id is compared (the worst
 * case, a pair that is accepted). Best of REPS runs.
 *   build/bench/bench_vocab_pair [TOKENIZER_DIR=models/organism-base] [REPS=20]
 * Prints the times and rule/load (goal: well under 0.1, so pairing adds
 * nothing a user notices at 150k vocabularies). */
#include <stdio.h>
#include <stdlib.h>

#include "mechdiff/clock.h"
#include "mechdiff/exp_util.h"
#include "mechdiff/tokenizer.h"

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "models/organism-base";
    int reps = argc > 2 ? atoi(argv[2]) : 20;
    md_tokenizer *a = NULL, *b = NULL;
    md_error err;
    double t0 = md_clock_seconds();
    if (md_tokenizer_load(&a, dir, &err) != MD_OK) {
        fprintf(stderr, "bench_vocab_pair: %s\n", err.msg);
        return 1;
    }
    double load = md_clock_seconds() - t0;
    if (md_tokenizer_load(&b, dir, &err) != MD_OK) {
        fprintf(stderr, "bench_vocab_pair: %s\n", err.msg);
        md_tokenizer_free(a);
        return 1;
    }
    md_config cfg = {0};
    md_exp_model ma = {"a", dir, &cfg, a}, mb = {"b", dir, &cfg, b};
    const char *const words[] = {" TRUE", " FALSE", NULL};
    double walk = 1e30, rule = 1e30;
    int rc = 0;
    for (int r = 0; r < reps; r++) {
        double s = md_clock_seconds();
        rc |= md_tokenizer_first_difference(a, b) != -1;
        double m = md_clock_seconds();
        char why[512];
        rc |= md_exp_pair_vocabularies(&ma, &mb, words, why, sizeof why) != MD_OK;
        double e = md_clock_seconds();
        if (m - s < walk) walk = m - s;
        if (e - m < rule) rule = e - m;
    }
    printf("%s: %d ids; tokenizer load %.1f ms; md_tokenizer_first_difference %.2f ms; md_exp_pair_vocabularies "
           "(walk + probe + 2 words) %.2f ms; rule/load %.4f (best of %d)\n",
           dir, md_tokenizer_vocab_size(a), 1e3 * load, 1e3 * walk, 1e3 * rule, rule / load, reps);
    md_tokenizer_free(a);
    md_tokenizer_free(b);
    if (rc) fprintf(stderr, "bench_vocab_pair: a tokenizer did not pair with itself\n");
    return rc;
}
