/* test_tokenizer.c — the C tokenizer against Hugging Face tokenizers goldens
 * (tests/golden/tokenizers/<set>/cases.json, made by
 * scripts/dev/make_tokenizer_golden.py): exact ids with and without special
 * tokens, pieces, decoded text (with and without special tokens), and
 * decode(encode(x)) == x wherever HF round-trips too. Plus config reading,
 * single-token words, a long input, and load errors. */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "mechdiff/chat.h"
#include "mechdiff/sha256.h"
#include "mechdiff/tokenizer.h"
#include "testutil.h"

#define GOLDEN "tests/golden/tokenizers"

static int reported = 0;

static int ids_equal(const int *a, size_t na, json_t *b)
{
    if (na != json_array_size(b)) return 0;
    for (size_t i = 0; i < na; i++)
        if (a[i] != (int)json_integer_value(json_array_get(b, i))) return 0;
    return 1;
}

static void show_ids(const char *what, const int *a, size_t n)
{
    fprintf(stderr, "  %s:", what);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", a[i]);
    fputc('\n', stderr);
}

/* Whether got[0..gl) equals the JSON string want (which may hold NULs). */
static int same_text(const char *got, size_t gl, json_t *want)
{
    return got && json_is_string(want) && gl == json_string_length(want) &&
           memcmp(got, json_string_value(want), gl) == 0;
}

static void check_case(const md_tokenizer *tok, const char *set, json_t *c, int *n_rt)
{
    json_t *jtext = json_object_get(c, "text");
    const char *text = json_string_value(jtext);
    size_t text_len = json_string_length(jtext);
    md_error err = {{0}};
    for (int special = 0; special < 2; special++) {
        int *ids = NULL;
        size_t n = 0;
        int rc = md_tokenizer_encode_n(tok, text, text_len, special, &ids, &n, &err);
        CHECK_MSG(rc == MD_OK, "%s: encode failed: %s", set, err.msg);
        if (rc) continue;
        json_t *want = json_object_get(c, special ? "ids_special" : "ids");
        int ok = ids_equal(ids, n, want);
        CHECK_MSG(ok, "%s: ids of \"%s\" (special=%d) differ", set, text, special);
        if (!ok && reported++ < 10) {
            show_ids("got ", ids, n);
            char *w = json_dumps(want, JSON_COMPACT);
            fprintf(stderr, "  want: %s\n", w);
            free(w);
        }
        if (special) {
            json_t *toks = json_object_get(c, "tokens");
            for (size_t i = 0; ok && i < n; i++) {
                const char *p = md_tokenizer_piece(tok, ids[i]);
                CHECK_MSG(p && strcmp(p, json_string_value(json_array_get(toks, i))) == 0,
                          "%s: piece %zu of \"%s\"", set, i, text);
            }
            /* Decode the golden ids (so decode is tested even if encode differs). */
            size_t nw = json_array_size(want);
            int *wid = malloc((nw + 1) * sizeof *wid);
            for (size_t i = 0; i < nw; i++) wid[i] = (int)json_integer_value(json_array_get(want, i));
            for (int skip = 0; skip < 2; skip++) {
                char *d = NULL;
                size_t dl = 0;
                rc = md_tokenizer_decode_n(tok, wid, nw, skip, &d, &dl, &err);
                json_t *wd = json_object_get(c, skip ? "decoded_skip" : "decoded");
                CHECK_MSG(rc == MD_OK && same_text(d, dl, wd), "%s: decode(skip=%d) of \"%s\" = \"%s\", want \"%s\"",
                          set, skip, text, d ? d : err.msg, json_string_value(wd));
                free(d);
            }
            free(wid);
        } else {
            char *d = NULL;
            size_t dl = 0;
            rc = md_tokenizer_decode_n(tok, ids, n, 0, &d, &dl, &err);
            CHECK_MSG(rc == MD_OK, "%s: decode failed: %s", set, err.msg);
            if (json_is_true(json_object_get(c, "roundtrip"))) {
                CHECK_MSG(same_text(d, dl, jtext), "%s: round trip of \"%s\" gave \"%s\"", set, text, d);
            } else {
                (*n_rt)++;
            }
            free(d);
        }
        free(ids);
    }
}

static int dir_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void run_set(const char *set)
{
    char path[512];
    snprintf(path, sizeof path, GOLDEN "/%.200s/cases.json", set);
    json_error_t je;
    json_t *doc = json_load_file(path, JSON_ALLOW_NUL, &je);
    CHECK_MSG(doc != NULL, "cannot read %s: %s", path, je.text);
    if (!doc) return;
    char tdir[4608];
    const char *other = json_string_value(json_object_get(doc, "tokenizer_dir"));
    snprintf(tdir, sizeof tdir, "%.4000s", other ? other : path);
    if (!other) *strrchr(tdir, '/') = '\0';
    if (!dir_exists(tdir)) {
        printf("%s: skipped (%s is absent)\n", set, tdir);
        json_decref(doc);
        return;
    }
    md_error err = {{0}};
    const char *want_sha = json_string_value(json_object_get(doc, "tokenizer_sha256"));
    if (want_sha) {
        char file[4700], hex[MD_SHA256_HEX_SIZE];
        snprintf(file, sizeof file, "%s/tokenizer.json", tdir);
        if (md_sha256_file(file, hex, &err) || strcmp(hex, want_sha) != 0) {
            printf("%s: skipped (%s changed since the golden was made; rerun "
                   "scripts/dev/make_tokenizer_golden.py --model-dir)\n", set, file);
            json_decref(doc);
            return;
        }
    }
    md_tokenizer *tok = NULL;
    int rc = md_tokenizer_load(&tok, tdir, &err);
    CHECK_MSG(rc == MD_OK, "load %s: %s", tdir, err.msg);
    if (rc == MD_OK) {
        json_t *cases = json_object_get(doc, "cases");
        size_t i;
        json_t *c;
        int n_rt = 0;
        int before = tu_failures;
        json_array_foreach(cases, i, c) check_case(tok, set, c, &n_rt);
        json_t *dc = json_object_get(doc, "decode_cases");
        json_array_foreach(dc, i, c) {
            json_t *jids = json_object_get(c, "ids");
            size_t n = json_array_size(jids);
            int ids[64];
            for (size_t k = 0; k < n && k < 64; k++) ids[k] = (int)json_integer_value(json_array_get(jids, k));
            for (int skip = 0; skip < 2; skip++) {
                char *d = NULL;
                const char *want = json_string_value(json_object_get(c, skip ? "decoded_skip" : "decoded"));
                int r = md_tokenizer_decode(tok, ids, n < 64 ? n : 64, skip, &d, &err);
                CHECK_MSG(r == MD_OK && strcmp(d, want) == 0, "%s: decode_cases[%zu] skip=%d: \"%s\", want \"%s\"",
                          set, i, skip, d ? d : err.msg, want);
                free(d);
            }
        }
        printf("%s: %zu cases + %zu decode cases, %d failures, %d strings HF does not round-trip either\n", set,
               json_array_size(cases), json_array_size(dc), tu_failures - before, n_rt);
    }
    md_tokenizer_free(tok);
    json_decref(doc);
}

static int expect_load_error(const char *dir, const char *needle1, const char *needle2)
{
    md_tokenizer *tok = NULL;
    md_error err = {{0}};
    int rc = md_tokenizer_load(&tok, dir, &err);
    CHECK_MSG(rc == MD_ERR && tok == NULL, "loading %s should fail", dir);
    CHECK_MSG(strstr(err.msg, needle1) != NULL, "error \"%s\" should name \"%s\"", err.msg, needle1);
    if (needle2) CHECK_MSG(strstr(err.msg, needle2) != NULL, "error \"%s\" should name \"%s\"", err.msg, needle2);
    md_tokenizer_free(tok);
    return rc;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char p[1024];
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void test_errors(void)
{
    char d[512];
    snprintf(d, sizeof d, "%s/tok_missing_dir_xyz", tu_tmpdir());
    expect_load_error(d, "tok_missing_dir_xyz/tokenizer.json", "no such file: the model folder needs the tokenizer.json");

    snprintf(d, sizeof d, "%s/tok_badjson", tu_tmpdir());
    write_file(d, "tokenizer.json", "{\"model\": {\"type\": \"BPE\", ");
    expect_load_error(d, "tok_badjson/tokenizer.json", "invalid JSON");

    snprintf(d, sizeof d, "%s/tok_wordpiece", tu_tmpdir());
    write_file(d, "tokenizer.json", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}");
    expect_load_error(d, "tok_wordpiece/tokenizer.json", "WordPiece");

    snprintf(d, sizeof d, "%s/tok_badnorm", tu_tmpdir());
    write_file(d, "tokenizer.json", "{\"normalizer\": {\"type\": \"BertNormalizer\"}, \"model\": {\"type\": \"BPE\", "
               "\"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\"]}}");
    expect_load_error(d, "tok_badnorm/tokenizer.json", "normalizer \"BertNormalizer\"");

    snprintf(d, sizeof d, "%s/tok_badpre", tu_tmpdir());
    write_file(d, "tokenizer.json", "{\"pre_tokenizer\": {\"type\": \"Whitespace\"}, \"model\": {\"type\": \"BPE\", "
               "\"vocab\": {\"a\": 0}, \"merges\": []}}");
    expect_load_error(d, "tok_badpre/tokenizer.json", "pre_tokenizer \"Whitespace\"");

    snprintf(d, sizeof d, "%s/tok_badmerge", tu_tmpdir());
    write_file(d, "tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, "
               "\"merges\": [[\"a\", \"b\"]]}}");
    expect_load_error(d, "tok_badmerge/tokenizer.json", "merges[0]");

    /* A tiny valid file: [a, b] merges, no unk, no decoder. */
    snprintf(d, sizeof d, "%s/tok_tiny", tu_tmpdir());
    write_file(d, "tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2, "
               "\"abab\": 3}, \"merges\": [[\"a\", \"b\"], \"ab ab\"]}}");
    write_file(d, "tokenizer_config.json", "{\"bos_token\": \"<nope>\"}");
    expect_load_error(d, "tokenizer_config.json", "<nope>");
    /* Real configs carry model_max_length = 1e30 as a JSON integer. */
    write_file(d, "tokenizer_config.json", "{\"model_max_length\": 1000000000000000019884624838656, "
               "\"chat_template\": \"<|user|> <|assistant|>\"}");
    md_tokenizer *tok = NULL;
    md_error err = {{0}};
    CHECK_MSG(md_tokenizer_load(&tok, d, &err) == MD_OK, "%s", err.msg);
    if (tok) {
        int *ids = NULL;
        size_t n = 0;
        CHECK(md_tokenizer_encode(tok, "ababa", 1, &ids, &n, &err) == MD_OK);
        CHECK(n == 2 && ids[0] == 3 && ids[1] == 0);
        free(ids);
        CHECK(md_tokenizer_encode(tok, "abc", 0, &ids, &n, &err) == MD_ERR);
        CHECK_MSG(strstr(err.msg, "'c'") != NULL, "%s", err.msg);
        CHECK(md_tokenizer_encode(tok, "a\xff", 0, &ids, &n, &err) == MD_ERR);
        CHECK_MSG(strstr(err.msg, "UTF-8") != NULL, "%s", err.msg);
        char *s = NULL;
        int bad[] = {0, 99};
        CHECK(md_tokenizer_decode(tok, bad, 2, 0, &s, &err) == MD_ERR && strstr(err.msg, "99"));
        int good[] = {3, 0};
        CHECK(md_tokenizer_decode(tok, good, 2, 0, &s, &err) == MD_OK && strcmp(s, "abab a") == 0);
        free(s);
        CHECK(md_chat_detect(md_tokenizer_chat_template(tok)) == MD_CHAT_MODEL);
        CHECK(md_tokenizer_bos_id(tok) == -1);
    }
    md_tokenizer_free(tok);
}

static md_tokenizer *load_set(const char *set)
{
    char d[512];
    snprintf(d, sizeof d, GOLDEN "/%.200s", set);
    md_tokenizer *tok = NULL;
    md_error err = {{0}};
    CHECK_MSG(md_tokenizer_load(&tok, d, &err) == MD_OK, "%s", err.msg);
    return tok;
}

static void test_config_and_words(void)
{
    md_error err = {{0}};
    md_tokenizer *bl = load_set("bytelevel");
    md_tokenizer *sp = load_set("sentencepiece");
    if (!bl || !sp) goto out;
    CHECK(md_tokenizer_get_kind(bl) == MD_TOKENIZER_BYTE_LEVEL);
    CHECK(md_tokenizer_get_kind(sp) == MD_TOKENIZER_SENTENCEPIECE);
    CHECK(md_tokenizer_bos_id(bl) == md_tokenizer_lookup(bl, "<|begin_of_text|>"));
    CHECK(md_tokenizer_eos_id(bl) == md_tokenizer_lookup(bl, "<|eot_id|>"));
    CHECK(md_tokenizer_bos_id(sp) == 1 && md_tokenizer_eos_id(sp) == 2);
    CHECK(md_tokenizer_is_special(bl, md_tokenizer_bos_id(bl)));
    CHECK(!md_tokenizer_is_special(bl, md_tokenizer_lookup(bl, "<custom>")));
    CHECK(strstr(md_tokenizer_chat_template(bl), "<|start_header_id|>") != NULL);
    CHECK(strstr(md_tokenizer_chat_template(sp), "<<SYS>>") != NULL); /* the "default" of a list */
    CHECK(strstr(md_tokenizer_chat_template_origin(sp), "tokenizer_config.json") != NULL);
    CHECK(md_tokenizer_lookup(bl, "no such piece") == -1);
    CHECK(md_tokenizer_piece(bl, -1) == NULL && md_tokenizer_piece(bl, md_tokenizer_vocab_size(bl)) == NULL);

    int t = md_tokenizer_single_token(bl, " TRUE", &err);
    CHECK_MSG(t >= 0 && strcmp(md_tokenizer_piece(bl, t), "\xc4\xa0TRUE") == 0, "%s", err.msg);
    t = md_tokenizer_single_token(sp, " TRUE", &err);
    CHECK_MSG(t >= 0 && strcmp(md_tokenizer_piece(sp, t), "\xe2\x96\x81TRUE") == 0, "%s", err.msg);
    t = md_tokenizer_single_token(sp, " Zzyzxq", &err);
    CHECK(t == -1);
    CHECK_MSG(strstr(err.msg, "' Zzyzxq'") && strstr(err.msg, "pieces"), "%s", err.msg);
    /* an empty word (true_word: "") says so, instead of "encodes as 0 pieces: " */
    CHECK(md_tokenizer_single_token(bl, "", &err) == -1);
    CHECK_MSG(strstr(err.msg, "the word is empty"), "%s", err.msg);

    char *pt = NULL;
    size_t pl = 0;
    CHECK(md_tokenizer_piece_text(bl, md_tokenizer_single_token(bl, " TRUE", &err), &pt, &pl, &err) == MD_OK);
    CHECK(pt && strcmp(pt, " TRUE") == 0);
    free(pt);
    CHECK(md_tokenizer_piece_text(sp, md_tokenizer_lookup(sp, "<0x0A>"), &pt, &pl, &err) == MD_OK);
    CHECK(pt && pl == 1 && pt[0] == '\n');
    free(pt);

    /* A long input: SentencePiece-style has no pre-tokenizer, so the whole
     * text is one BPE word; the heap keeps this fast. */
    size_t len = 200000;
    char *big = malloc(len + 1);
    const char *pat = "the quick brown fox jumps over 123 lazy dogs. ";
    for (size_t i = 0; i < len; i++) big[i] = pat[i % strlen(pat)];
    big[len] = '\0';
    for (int k = 0; k < 2; k++) {
        md_tokenizer *tk = k ? sp : bl;
        clock_t c0 = clock();
        int *ids = NULL;
        size_t n = 0;
        CHECK(md_tokenizer_encode(tk, big, 0, &ids, &n, &err) == MD_OK);
        double sec = (double)(clock() - c0) / CLOCKS_PER_SEC;
        char *back = NULL;
        CHECK(md_tokenizer_decode(tk, ids, n, 0, &back, &err) == MD_OK && back && strcmp(back, big) == 0);
        printf("%s: %zu bytes -> %zu ids in %.3f s\n", k ? "sentencepiece" : "bytelevel", len, n, sec);
        CHECK(sec < 5.0);
        free(back);
        free(ids);
    }
    free(big);
out:
    md_tokenizer_free(bl);
    md_tokenizer_free(sp);
}

int main(void)
{
    DIR *d = opendir(GOLDEN);
    CHECK_MSG(d != NULL, "cannot open %s (run from the repository root)", GOLDEN);
    if (d) {
        struct dirent *e;
        char names[32][256];
        int n = 0;
        while ((e = readdir(d)) && n < 32)
            if (e->d_name[0] != '.' && !strchr(e->d_name, '.')) /* the set folders, not README.md */
                snprintf(names[n++], sizeof names[0], "%s", e->d_name);
        closedir(d);
        for (int i = 0; i < n; i++) run_set(names[i]);
        CHECK(n >= 3);
    }
    test_errors();
    test_config_and_words();
    TEST_MAIN_END();
}
