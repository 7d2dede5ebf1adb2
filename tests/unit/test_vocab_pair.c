/* test_vocab_pair.c — the pairing rule of cross-model comparisons
 * (md_exp_check_pair, exp_util.h; docs/methods.md "Pairs of models") on
 * variants of the shipped organism tokenizer written here: tokens appended
 * (a prefix: pairs, both ways), padding rows without tokens (pairs), two
 * copies that append different tokens, two model pieces swapped, an added
 * token renamed (refused, naming the first id that differs and its two
 * tokens), an id that is an added token in one and the model piece of the
 * same bytes in the other (pairs; other bytes: refused), a different width
 * or tokenizer kind (refused), answer words that encode differently
 * (refused); and the start-up line on vocab_size (md_exp_describe_vocabularies). */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mechdiff/exp_util.h"
#include "mechdiff/job.h"
#include "mechdiff/tokenizer.h"
#include "testutil.h"

#define BASE_DIR "models/organism-base"
#define BASE_VOCAB 7310 /* its tokenizer's ids and config.json vocab_size */

static char g_root[512];

/* An edit of the organism's tokenizer.json. */
typedef void (*edit_fn)(json_t *root, void *arg);

/* Writes g_root/NAME/tokenizer.json (the organism's, edited) and its
 * config.json with vocab_size (0: the organism's); loads the tokenizer. */
static md_tokenizer *variant(const char *name, edit_fn edit, void *arg, int vocab_size, char *dir, size_t cap)
{
    md_error err;
    snprintf(dir, cap, "%s/%s", g_root, name);
    mkdir(dir, 0755);
    char path[1024];
    json_t *tok = json_load_file(BASE_DIR "/tokenizer.json", 0, NULL);
    json_t *cfg = json_load_file(BASE_DIR "/config.json", 0, NULL);
    CHECK(tok && cfg);
    if (!tok || !cfg) return NULL;
    if (edit) edit(tok, arg);
    if (vocab_size) json_object_set_new(cfg, "vocab_size", json_integer(vocab_size));
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECK(json_dump_file(tok, path, 0) == 0);
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK(json_dump_file(cfg, path, 0) == 0);
    json_decref(tok);
    json_decref(cfg);
    md_tokenizer *t = NULL;
    CHECK_MSG(md_tokenizer_load(&t, dir, &err) == MD_OK, "%s: %s", name, err.msg);
    return t;
}

/* Appends the added tokens of arg (a NULL-terminated list) after the last id. */
static void append_tokens(json_t *root, void *arg)
{
    const char *const *names = arg;
    json_t *added = json_object_get(root, "added_tokens");
    for (int k = 0; names[k]; k++)
        json_array_append_new(added, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", BASE_VOCAB + k, "content",
                                               names[k], "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0,
                                               "special", 1));
}

/* Swaps the ids of the model pieces with ids *arg and *arg + 1. */
static void swap_pieces(json_t *root, void *arg)
{
    int a = *(int *)arg;
    json_t *vocab = json_object_get(json_object_get(root, "model"), "vocab"), *v;
    const char *key;
    json_object_foreach(vocab, key, v) {
        json_int_t id = json_integer_value(v);
        if (id == a || id == a + 1) json_integer_set(v, id == a ? a + 1 : a);
    }
}

/* Renames the content of added token 3 ('<|assistant|>'). */
/* Added token 3 renamed to arg ("<|bot|>" when NULL). */
static void rename_added(json_t *root, void *arg)
{
    json_t *added = json_object_get(root, "added_tokens"), *t;
    size_t i;
    json_array_foreach(added, i, t)
        if (json_integer_value(json_object_get(t, "id")) == 3)
            json_object_set_new(t, "content", json_string(arg ? (const char *)arg : "<|bot|>"));
}

/* An added token (not special) over an existing model piece: id and content in arg. */
typedef struct over {
    int id;
    char content[64];
} over;

static void add_over(json_t *root, void *arg)
{
    const over *o = arg;
    json_array_append_new(json_object_get(root, "added_tokens"),
                          json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", o->id, "content", o->content,
                                    "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special", 0));
}

/* md_exp_check_pair of (ta, a's config) and (tb, b's config); 1 when it
 * pairs. The error (if any) into err. */
static int pairs(const char *ra, const char *da, const md_config *ca, const md_tokenizer *ta, const char *rb,
                 const char *db, const md_config *cb, const md_tokenizer *tb, const char *const *words, md_error *err)
{
    md_exp_model a = {ra, da, ca, ta}, b = {rb, db, cb, tb};
    md_error_clear(err);
    return md_exp_check_pair("job.yaml:3:5: experiment 'x'", "models do not pair", &a, &b, words, 1, err) == MD_OK;
}

/* The first model piece after id 300 that is "Ġ" + 4 or more ASCII
 * lowercase letters (its bytes: a space and the letters). */
static int find_spaced_word(const md_tokenizer *t, over *o)
{
    for (int id = 300; id < md_tokenizer_vocab_size(t); id++) {
        const char *p = md_tokenizer_piece(t, id);
        size_t n = p ? strlen(p) : 0;
        if (n < 6 || (unsigned char)p[0] != 0xc4 || (unsigned char)p[1] != 0xa0 ||
            strspn(p + 2, "abcdefghijklmnopqrstuvwxyz") != n - 2)
            continue;
        o->id = id;
        snprintf(o->content, sizeof o->content, " %s", p + 2);
        return 1;
    }
    return 0;
}

/* Removes what variant() wrote in dir. */
static void remove_variant(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    rmdir(dir);
}

static void check_describe(const char *ext_dir)
{
    char text[2048], line[1024];
    md_job *job = NULL;
    md_error err;
    snprintf(text, sizeof text,
             "name: t\nmodels: {base: %s, same: %s, ext: %s}\nexperiments: [{kind: selftest}]\n", BASE_DIR,
             BASE_DIR, ext_dir);
    CHECK_MSG(md_job_parse_string(text, "<test_vocab_pair>", NULL, 1, &job, &err) == MD_OK, "%s", err.msg);
    if (job) {
        CHECK(md_exp_describe_vocabularies(job, line, sizeof line) == 1);
        CHECK_MSG(strstr(line, "'ext' has 10 ids more than 'base' (vocab_size 7320 vs 7310)") &&
                      !strstr(line, "'same'"),
                  "%s", line);
        md_job_free(job);
    }
    snprintf(text, sizeof text, "name: t\nmodels: {base: %s, same: %s}\nexperiments: [{kind: selftest}]\n",
             BASE_DIR, BASE_DIR);
    CHECK_MSG(md_job_parse_string(text, "<test_vocab_pair>", NULL, 1, &job, &err) == MD_OK, "%s", err.msg);
    if (job) {
        CHECK(md_exp_describe_vocabularies(job, line, sizeof line) == 0);
        md_job_free(job);
    }
}

int main(void)
{
    md_error err;
    snprintf(g_root, sizeof g_root, "%s/vocab_pair.%ld", tu_tmpdir(), (long)getpid());
    CHECK(mkdir(g_root, 0755) == 0);
    md_config c0, pad, wide;
    CHECK_MSG(md_hf_config_load_dir(&c0, BASE_DIR, &err) == MD_OK, "%s", err.msg);
    pad = c0, wide = c0;
    pad.vocab_size = 7320;   /* padding rows: a multiple of 8 */
    wide.d_model = 256;
    md_tokenizer *base = NULL;
    CHECK_MSG(md_tokenizer_load(&base, BASE_DIR, &err) == MD_OK, "%s", err.msg);
    if (!base) TEST_MAIN_END();
    CHECK(md_tokenizer_vocab_size(base) == BASE_VOCAB && md_tokenizer_first_difference(base, base) == -1);

    /* tokens appended, rows padded to 7320: pairs both ways, with the answer words */
    static const char *const chatml[] = {"<|im_start|>", "<|im_end|>", NULL}, *const padtok[] = {"<pad>", NULL};
    const char *const words[] = {" TRUE", " FALSE", NULL};
    char d_ext[600], d_pad[600], d_swap[600], d_ren[600], d_over[600], d_bad[600];
    md_tokenizer *ext = variant("ext", append_tokens, (void *)chatml, 7320, d_ext, sizeof d_ext);
    CHECK(ext && md_tokenizer_vocab_size(ext) == BASE_VOCAB + 2);
    CHECK(md_tokenizer_first_difference(base, ext) == -1 && md_tokenizer_first_difference(ext, base) == -1);
    CHECK_MSG(pairs("base", BASE_DIR, &c0, base, "ext", d_ext, &pad, ext, words, &err), "%s", err.msg);
    CHECK_MSG(pairs("ext", d_ext, &pad, ext, "base", BASE_DIR, &c0, base, words, &err), "%s", err.msg);
    /* padding rows only (the same tokenizer, vocab_size 7320 against 7310) */
    CHECK_MSG(pairs("base", BASE_DIR, &c0, base, "padded", BASE_DIR, &pad, base, words, &err), "%s", err.msg);
    /* an answer word only the larger vocabulary has as one token */
    const char *const marker[] = {"<|im_start|>", NULL};
    CHECK(!pairs("base", BASE_DIR, &c0, base, "ext", d_ext, &pad, ext, marker, &err));
    CHECK_MSG(strstr(err.msg, "answer word '<|im_start|>' encodes to different ids"), "%s", err.msg);

    /* two copies appending different tokens: refused at the first appended id */
    md_tokenizer *other = variant("pad", append_tokens, (void *)padtok, 7320, d_pad, sizeof d_pad);
    CHECK(other && md_tokenizer_first_difference(ext, other) == BASE_VOCAB);
    CHECK(!pairs("ext", d_ext, &pad, ext, "pad", d_pad, &pad, other, words, &err));
    CHECK_MSG(strstr(err.msg, "token id 7310 is '<|im_start|>' in 'ext' and '<pad>' in 'pad'") &&
              strstr(err.msg, d_ext) && strstr(err.msg, d_pad) && strstr(err.msg, "job.yaml:3:5: experiment 'x'") &&
              strstr(err.msg, "use a base model and its own post-trained version"), "%s", err.msg);

    /* one id disagreeing in the shared range: refused with the id and both tokens */
    int at = 500;
    md_tokenizer *swap = variant("swap", swap_pieces, &at, 0, d_swap, sizeof d_swap);
    CHECK(swap && md_tokenizer_first_difference(base, swap) == 500);
    CHECK(!pairs("base", BASE_DIR, &c0, base, "swap", d_swap, &c0, swap, words, &err));
    char want[256];
    snprintf(want, sizeof want, "token id 500 is '%s' in 'base' and '%s' in 'swap'", md_tokenizer_piece(base, 500),
             md_tokenizer_piece(base, 501));
    CHECK_MSG(strstr(err.msg, want) && strstr(err.msg, BASE_DIR) && strstr(err.msg, d_swap), "%s", err.msg);
    md_tokenizer *ren = variant("renamed", rename_added, NULL, 0, d_ren, sizeof d_ren);
    CHECK(ren && md_tokenizer_first_difference(base, ren) == 3);
    CHECK(!pairs("base", BASE_DIR, &c0, base, "renamed", d_ren, &c0, ren, NULL, &err));
    CHECK_MSG(strstr(err.msg, "token id 3 is '<|assistant|>' in 'base' and '<|bot|>' in 'renamed'"), "%s", err.msg);
    /* a token holding control bytes is shown escaped: the error stays one line */
    char d_nl[600];
    md_tokenizer *nl = variant("renamed_nl", rename_added, (void *)"<|bot\n\t|>", 0, d_nl, sizeof d_nl);
    CHECK(nl && !pairs("base", BASE_DIR, &c0, base, "nl", d_nl, &c0, nl, NULL, &err));
    CHECK_MSG(strstr(err.msg, "'<|bot\\n\\t|>' in 'nl'") && !strchr(err.msg, '\n') && !strchr(err.msg, '\t'), "%s",
              err.msg);
    md_tokenizer_free(nl);
    remove_variant(d_nl);

    /* an added token over a model piece of the same bytes: the same token; other bytes: not */
    over o;
    CHECK(find_spaced_word(base, &o));
    md_tokenizer *ov = variant("over", add_over, &o, 0, d_over, sizeof d_over);
    CHECK_MSG(ov && md_tokenizer_first_difference(base, ov) == -1, "'%s' over id %d", o.content, o.id);
    snprintf(o.content + strlen(o.content), sizeof o.content - strlen(o.content), "x");
    md_tokenizer *bad = variant("over_bad", add_over, &o, 0, d_bad, sizeof d_bad);
    CHECK(bad && md_tokenizer_first_difference(base, bad) == o.id);

    /* a different width: refused by the config half, naming the field */
    CHECK(!pairs("base", BASE_DIR, &c0, base, "wide", d_ext, &wide, ext, words, &err));
    CHECK_MSG(strstr(err.msg, "d_model differs (128 vs 256)") && strstr(err.msg, "'base' and 'wide'"), "%s", err.msg);
    /* the same architecture, another tokenizer kind */
    md_tokenizer *sp = NULL;
    CHECK(md_tokenizer_load(&sp, "tests/golden/tokenizers/sentencepiece", &err) == MD_OK);
    CHECK(sp && md_tokenizer_first_difference(base, sp) == 0);
    CHECK(!pairs("base", BASE_DIR, &c0, base, "sp", "tests/golden/tokenizers/sentencepiece", &c0, sp, NULL, &err));
    CHECK_MSG(strstr(err.msg, "different kinds (byte-level BPE vs SentencePiece)"), "%s", err.msg);

    check_describe(d_ext);
    md_tokenizer *all[] = {base, ext, other, swap, ren, ov, bad, sp};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) md_tokenizer_free(all[i]);
    const char *dirs[] = {d_ext, d_pad, d_swap, d_ren, d_over, d_bad};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) remove_variant(dirs[i]);
    rmdir(g_root);
    TEST_MAIN_END();
}
