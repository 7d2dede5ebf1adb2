/* test_exp_tokens.c — the token helpers of a kind's plan (exp_output.h):
 * md_exp_token_strings gives one valid UTF-8 string per id (U+FFFD for a
 * byte of a character split over tokens, "" for id -1) whose concatenation
 * is the decoded text where no character is split; md_exp_tokens_at finds
 * the token and absolute index at positions counted from the end (-1 where
 * the text is shorter); md_exp_bos_note says whether a BOS token comes first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/exp_output.h"
#include "testutil.h"

/* 1 when s[0..n) is valid UTF-8 without NUL. */
static int valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        int k = s[i] < 0x80 ? 1 : (s[i] & 0xe0) == 0xc0 ? 2 : (s[i] & 0xf0) == 0xe0 ? 3 : (s[i] & 0xf8) == 0xf0 ? 4 : 0;
        if (!k || s[i] == 0 || i + (size_t)k > n) return 0;
        for (int j = 1; j < k; j++)
            if ((s[i + j] & 0xc0) != 0x80) return 0;
        i += (size_t)k;
    }
    return 1;
}

static void test_strings(void)
{
    md_tokenizer *tok = NULL;
    md_error err;
    CHECK_MSG(md_tokenizer_load(&tok, "tests/golden/tokenizers/bytelevel", &err) == MD_OK, "%s", err.msg);
    if (!tok) return;
    const char *text = "Zürich 日本語 龘🦀 ok";
    int *ids = NULL;
    size_t n = 0;
    CHECK(md_tokenizer_encode(tok, text, 0, &ids, &n, &err) == MD_OK && n > 3);
    int *with_gap = malloc((n + 1) * sizeof *with_gap);
    memcpy(with_gap, ids, n * sizeof *ids);
    with_gap[n] = -1;
    char *s = NULL;
    size_t nb = 0;
    CHECK(md_exp_token_strings(tok, with_gap, (int64_t)n + 1, &s, &nb, &err) == MD_OK);
    size_t count = 0, off = 0, ffd = 0;
    char joined[256] = "";
    while (s && off < nb) {
        size_t l = strlen(s + off);
        CHECK(valid_utf8((const unsigned char *)s + off, l));
        if (strstr(s + off, "\xef\xbf\xbd")) ffd++;
        if (strlen(joined) + l < sizeof joined) strcat(joined, s + off);
        off += l + 1;
        count++;
    }
    printf("token strings: %zu ids, %zu of them with U+FFFD\n", n, ffd);
    CHECK_MSG(count == n + 1 && off == nb, "%zu strings for %zu ids", count, n + 1);
    CHECK(s && s[nb - 1] == '\0' && (nb < 2 || s[nb - 2] == '\0')); /* id -1: "" */
    /* 龘 and 🦀 are split over byte tokens in this vocabulary (U+FFFD); the rest reads as it was */
    CHECK(ffd > 0);
    CHECK_MSG(!strncmp(joined, "Zürich 日本語 ", strlen("Zürich 日本語 ")) &&
              !strcmp(joined + strlen(joined) - 3, " ok"), "'%s'", joined);
    free(s);
    free(with_gap);
    free(ids);
    md_tokenizer_free(tok);
}

static void test_positions(void)
{
    md_tokenizer *tok = NULL;
    md_error err;
    CHECK_MSG(md_tokenizer_load(&tok, "models/organism-base", &err) == MD_OK, "%s", err.msg);
    if (!tok) return;
    const char *texts[] = {"The city of Baibra is in Fenwick.", "Hi"};
    int rel[3] = {-1, -2, -40};
    int32_t ids[6], pos[6];
    char *s = NULL;
    size_t nb = 0;
    CHECK(md_exp_tokens_at(tok, texts, 2, 1, rel, 3, ids, pos, &s, &nb, &err) == MD_OK);
    int *all = NULL;
    size_t n = 0;
    CHECK(md_tokenizer_encode(tok, texts[0], 1, &all, &n, &err) == MD_OK);
    CHECK(pos[0] == (int32_t)n - 1 && ids[0] == all[n - 1] && pos[1] == (int32_t)n - 2);
    CHECK(pos[2] == -1 && ids[2] == -1); /* 40 tokens back: before the start */
    CHECK(s && !strcmp(s, ".") && !strcmp(s + 2, " Fenwick"));
    char note[256];
    CHECK(md_exp_bos_note(tok, note, sizeof note, &err) == MD_OK);
    CHECK_MSG(strstr(note, "BOS token '<|begin_of_text|>'") != NULL, "%s", note);
    free(all);
    free(s);
    md_tokenizer_free(tok);
}

int main(void)
{
    test_strings();
    test_positions();
    TEST_MAIN_END();
}
