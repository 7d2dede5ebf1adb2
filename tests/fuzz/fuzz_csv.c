/* fuzz_csv.c — the dataset CSV reader and what the kinds do with a table:
 * any file is refused with a message naming it, or read into a table whose
 * every cell is a string; then the columns the kinds look up (statement,
 * label, instruction), the refusal kind's train/test split of its rows and
 * the knowledge kind's pair curation (few-shot prefix, TRUE/FALSE pairs of
 * the same token template, with the organism's tokenizer) either succeed
 * or fail with a message. */
#include "fuzz_common.h"
#include "mechdiff/csv.h"
#include "mechdiff/directions.h"
#include "mechdiff/knowledge.h"
#include "mechdiff/tokenizer.h"

static const md_tokenizer *organism_tokenizer(void)
{
    static md_tokenizer *tok;
    if (tok) return tok;
    md_error err;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/models/organism-base", MECHDIFF_SOURCE_DIR);
    if (md_tokenizer_load(&tok, dir, &err) != MD_OK) {
        fprintf(stderr, "fuzz_csv: %s\n", err.msg);
        abort();
    }
    return tok; /* kept for the process's lifetime */
}

/* The refusal kind's split: 2 train and 1 test row per set when it has them. */
static void split_rows(const md_csv *t)
{
    int train[2], test[1];
    md_error err;
    md_error_clear(&err);
    if (md_dir_split(t->n_rows, 0.25, 7, 2, 1, train, test, &err) == MD_OK) {
        for (int i = 0; i < 2; i++)
            if (train[i] < 0 || train[i] >= t->n_rows || train[i] == test[0]) abort();
        if (test[0] < 0 || test[0] >= t->n_rows) abort();
    } else if (!err.msg[0]) {
        abort();
    }
}

/* What the knowledge kind's compute relies on: rows of the table, the
 * patched window (the last n_toks positions) and the subject span inside
 * the prompt, ids inside the vocabulary. */
static void check_pair(const md_kn_dataset *ds, const md_kn_pair *p, int vocab)
{
    if (p->true_row < 0 || p->true_row >= ds->n_rows || p->false_row < 0 || p->false_row >= ds->n_rows ||
        ds->labels[p->true_row] != 1 || ds->labels[p->false_row] != 0)
        abort();
    if (p->len < 2 || ds->n_toks < 1 || ds->n_toks > p->len - 1) abort();
    if (p->diff_first < 0 || p->diff_first > p->diff_last || p->diff_last >= p->len) abort();
    for (int j = 0; j < p->len; j++)
        if (p->true_ids[j] < 0 || p->true_ids[j] >= vocab || p->false_ids[j] < 0 || p->false_ids[j] >= vocab)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const md_tokenizer *tok = organism_tokenizer();
    const char *path = fuzz_write("data.csv", data, size);
    md_csv *t = NULL;
    md_error err;
    md_error_clear(&err);
    if (md_csv_read(&t, path, &err) != MD_OK) {
        if (!err.msg[0] || t || !strstr(err.msg, "data.csv")) abort(); /* names the file */
        return 0;
    }
    if (t->n_cols < 1 || t->n_rows < 0) abort();
    for (int r = 0; r < t->n_rows; r++)
        for (int c = 0; c < t->n_cols; c++)
            if (!md_csv_cell(t, r, c)) abort();
    static const char *const cols[] = {"statement", "label", "instruction"};
    for (int k = 0; k < 3; k++) {
        md_error_clear(&err);
        if (md_csv_column(t, cols[k], &err) < 0 && !strstr(err.msg, cols[k])) abort();
    }
    split_rows(t);
    int has_pairs = md_csv_column(t, "statement", &err) >= 0 && md_csv_column(t, "label", &err) >= 0;
    md_csv_free(t);
    if (!has_pairs) return 0;
    md_kn_options opt = {.n_shots = 4, .shot_seed = 1, .suffix = " This statement is:", .true_word = " TRUE",
                         .false_word = " FALSE"};
    md_kn_dataset ds;
    md_error_clear(&err);
    if (md_kn_dataset_build(&ds, "fuzz", path, tok, &opt, &err) == MD_OK) {
        if (ds.n_pairs < 1) abort();
        for (int i = 0; i < ds.n_pairs; i++) check_pair(&ds, &ds.pairs[i], md_tokenizer_vocab_size(tok));
        md_kn_dataset_free(&ds);
    } else if (!err.msg[0]) {
        abort();
    }
    return 0;
}
