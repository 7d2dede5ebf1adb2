/* test_kn_pairs.c — knowledge pair curation and the study's normalisation,
 * on the byte-level golden tokenizer and a small hand-written CSV. */
#include <stdio.h>
#include <string.h>

#include "mechdiff/knowledge.h"
#include "testutil.h"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

int main(void)
{
    md_error err = {0};
    md_tokenizer *tok = NULL;
    CHECK(md_tokenizer_load(&tok, "tests/golden/tokenizers/bytelevel", &err) == MD_OK);
    if (!tok) {
        fprintf(stderr, "%s\n", err.msg);
        TEST_MAIN_END();
    }
    char path[512];
    snprintf(path, sizeof path, "%s/kn_cities.csv", tu_tmpdir());
    /* Two pairs: (Paris, Rome) share "France"; (Oslo, Lima) share "Norway".
     * "Quito is in Chile." has no FALSE partner with the same last word. */
    /* Pairs share the country (last word) and differ in the city; cities
     * repeat so that some pairs tokenise to the same template whatever the
     * few-shot draw takes. */
    /* TRUE/FALSE rows with the same country and city names of equal token
     * length in this tokenizer (Paris/Oslo: 3 pieces, Lima/Rome: 4); rows
     * repeat so that pairs remain whatever the seeded few-shot draw takes;
     * Quito/Bern have no partner. */
    write_file(path, "statement,label\n"
                     "The city of Paris is in France.,1\n"
                     "The city of Oslo is in France.,0\n"
                     "The city of Lima is in Peru.,1\n"
                     "The city of Rome is in Peru.,0\n"
                     "The city of Rome is in Italy.,1\n"
                     "The city of Lima is in Italy.,0\n"
                     "The city of Oslo is in Norway.,1\n"
                     "The city of Paris is in Norway.,0\n"
                     "The city of Paris is in France.,1\n"
                     "The city of Oslo is in France.,0\n"
                     "The city of Lima is in Peru.,1\n"
                     "The city of Rome is in Peru.,0\n"
                     "The city of Quito is in Ecuador.,1\n"
                     "The city of Bern is in Chile.,0\n");
    md_kn_options o = {.n_shots = 4, .shot_seed = 1, .max_pairs = 0, .n_toks = 0,
                       .suffix = " This statement is:", .true_word = " TRUE", .false_word = " FALSE"};
    md_kn_dataset ds;
    CHECK_MSG(md_kn_dataset_build(&ds, "cities", path, tok, &o, &err) == MD_OK, "%s", err.msg);
    if (ds.name) {
        /* 4 statements go to the few-shot prefix (2 true, 2 false). */
        int lines = 0;
        for (const char *c = ds.few_shot; *c; c++) lines += *c == '\n';
        CHECK(lines == 4);
        CHECK(strstr(ds.few_shot, " This statement is: TRUE\n") && strstr(ds.few_shot, " This statement is: FALSE\n"));
        CHECK(ds.n_pairs >= 1);
        int covered = 0;
        for (int i = 0; i < ds.n_pairs; i++) {
            const md_kn_pair *p = &ds.pairs[i];
            CHECK(ds.labels[p->true_row] == 1 && ds.labels[p->false_row] == 0);
            CHECK(p->diff_first <= p->diff_last && p->diff_last < p->len);
            /* the prompts differ only inside the subject span */
            for (int t = 0; t < p->len; t++)
                if (t < p->diff_first || t > p->diff_last) CHECK(p->true_ids[t] == p->false_ids[t]);
            CHECK(p->diff_first >= p->stmt_first);
            CHECK(p->len - ds.n_toks >= p->stmt_first); /* the window lies in statement + suffix */
            covered += p->len - ds.n_toks == p->stmt_first;
        }
        CHECK(covered >= 1); /* ... and covers the shortest statement whole */
        CHECK(ds.n_pairs + ds.dropped_no_partner + ds.dropped_prompt_mismatch >= 2);
        printf("pairs %d, no partner %d, mismatch %d, n_toks %d, suffix tokens %d\n", ds.n_pairs,
               ds.dropped_no_partner, ds.dropped_prompt_mismatch, ds.n_toks, ds.suffix_tokens);
        md_kn_dataset_free(&ds);
    }
    /* max_pairs keeps the first pairs only. */
    o.max_pairs = 1;
    CHECK(md_kn_dataset_build(&ds, "cities", path, tok, &o, &err) == MD_OK);
    CHECK(ds.n_pairs <= 1);
    md_kn_dataset_free(&ds);
    /* Too few rows / a bad label → clear errors naming the file. */
    write_file(path, "statement,label\nA is B.,1\nC is D.,0\n");
    o.max_pairs = 0;
    CHECK(md_kn_dataset_build(&ds, "tiny", path, tok, &o, &err) == MD_ERR && strstr(err.msg, "too few"));
    write_file(path, "statement,label\nA is B.,yes\n");
    CHECK(md_kn_dataset_build(&ds, "bad", path, tok, &o, &err) == MD_ERR && strstr(err.msg, "label 'yes'"));

    /* Normalisation: 20 bins over [min-1e-5, max+1e-5], lower half 0, upper 0.1..1. */
    float m[5] = {0.0f, 4.9f, 5.1f, 7.6f, 10.0f};
    md_kn_normalise(m, 5);
    CHECK(m[0] == 0.0f && m[1] == 0.0f);
    CHECK_NEAR(m[2], 0.1, 1e-6);
    CHECK_NEAR(m[3], 0.6, 1e-6);
    CHECK_NEAR(m[4], 1.0, 1e-6);
    md_tokenizer_free(tok);
    TEST_MAIN_END();
}
