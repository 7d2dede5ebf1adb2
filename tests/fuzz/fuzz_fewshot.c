/* fuzz_fewshot.c — the few-shot prompt builder and the single-token check
 * of the answer words, on the words a job names and the statements a
 * dataset holds. The input is text: line 1 the true word, line 2 the false
 * word, line 3 the suffix, line 4 "N_SHOTS SEED", then one statement per
 * line, its first character the label (1 = true). Each word is checked as
 * one token by the organism's (byte-level) tokenizer and by a
 * SentencePiece one: the id returned is inside the vocabulary, or the
 * refusal says which word; the prefix holds exactly the rows drawn (half
 * true, half false, as many as there are). */
#include "fuzz_common.h"
#include "mechdiff/fewshot.h"
#include "mechdiff/tokenizer.h"

#define MAX_ROWS 512

static const md_tokenizer *tokenizer(int k)
{
    static md_tokenizer *tok[2];
    static const char *const dirs[2] = {"models/organism-base", "tests/golden/tokenizers/sentencepiece"};
    if (tok[k]) return tok[k];
    md_error err;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", MECHDIFF_SOURCE_DIR, dirs[k]);
    if (md_tokenizer_load(&tok[k], dir, &err) != MD_OK) {
        fprintf(stderr, "fuzz_fewshot: %s\n", err.msg);
        abort();
    }
    return tok[k]; /* kept for the process's lifetime */
}

static void check_word(const char *word)
{
    for (int k = 0; k < 2; k++) {
        md_error err;
        md_error_clear(&err);
        int id = md_tokenizer_single_token(tokenizer(k), word, &err);
        if (id >= md_tokenizer_vocab_size(tokenizer(k))) abort();
        if (id < 0 && !err.msg[0]) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size), *line[4 + MAX_ROWS];
    int n = 0;
    for (char *p = text; p && n < 4 + MAX_ROWS;) {
        line[n++] = p;
        p = strchr(p, '\n');
        if (p) *p++ = '\0';
    }
    if (n < 4) {
        free(text);
        return 0;
    }
    check_word(line[0]);
    check_word(line[1]);
    md_fewshot_opts o = {.suffix = line[2], .true_word = line[0], .false_word = line[1]};
    if (sscanf(line[3], "%d %d", &o.n_shots, &o.shot_seed) != 2 || o.n_shots < 0 || o.n_shots > 64) {
        free(text);
        return 0; /* the job schema bounds n_shots */
    }
    const char *stmt[MAX_ROWS];
    int lab[MAX_ROWS], rows = n - 4, shots[64], ns = -1, n_true = 0;
    for (int r = 0; r < rows; r++) {
        lab[r] = line[4 + r][0] == '1';
        n_true += lab[r];
        stmt[r] = line[4 + r][0] ? line[4 + r] + 1 : line[4 + r];
    }
    char *prefix = NULL;
    md_error err;
    if (md_fewshot_draw(stmt, lab, rows, &o, shots, 64, &ns, &prefix, &err) != MD_OK) abort();
    int want_t = o.n_shots / 2, want_f = o.n_shots - want_t;
    int exp = (n_true < want_t ? n_true : want_t) + (rows - n_true < want_f ? rows - n_true : want_f);
    if (ns != exp) abort();
    size_t len = 0;
    for (int i = 0; i < ns; i++) {
        if (shots[i] < 0 || shots[i] >= rows) abort();
        len += strlen(stmt[shots[i]]) + strlen(o.suffix) + strlen(lab[shots[i]] ? o.true_word : o.false_word) + 1;
    }
    if (strlen(prefix) != len) abort();
    free(prefix);
    free(text);
    return 0;
}
