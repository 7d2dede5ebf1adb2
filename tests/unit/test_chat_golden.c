/* test_chat_golden.c — every real chat template in tests/golden/templates
 * rendered by mechdiff's Jinja interpreter against what transformers'
 * apply_chat_template renders (tests/golden/templates/cases.json, made by
 * scripts/dev/make_chat_golden.py): the exact text, the token ids of that
 * text (encoded without added specials, as transformers does), and the
 * same error where the template raises (Gemma's "System role not supported").
 * The study's conversations (role and content) go through
 * md_chat_render_jinja; the cases with "extra" (reasoning_content, tool
 * calls, content parts, enable_thinking, tools=...) render the JSON context
 * transformers builds from them through md_jinja_render. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/chat.h"
#include "mechdiff/jinja.h"
#include "mechdiff/tokenizer.h"
#include "mechdiff/fsutil.h"
#include "testutil.h"

#define ROOT "tests/golden/templates"

static int ids_equal(const int *a, size_t na, json_t *b)
{
    if (na != json_array_size(b)) return 0;
    for (size_t i = 0; i < na; i++)
        if (a[i] != (int)json_integer_value(json_array_get(b, i))) return 0;
    return 1;
}

/* The context transformers renders a case with "extra" in: messages as
 * given, add_generation_prompt, tools and documents (None unless given),
 * the template's BOS/EOS strings, and the extra keyword arguments. */
static int render_extra(const char *src, const char *path, json_t *t, json_t *c, time_t now, char **out, size_t *len,
                        md_error *err)
{
    json_t *ctx = json_deep_copy(json_object_get(c, "extra"));
    md_jinja *tpl = NULL;
    int rc = MD_ERR;
    if (!ctx || json_object_set(ctx, "messages", json_object_get(c, "messages")) ||
        json_object_set(ctx, "add_generation_prompt", json_object_get(c, "add_generation_prompt")) ||
        (!json_object_get(ctx, "tools") && json_object_set_new(ctx, "tools", json_null())) ||
        json_object_set_new(ctx, "documents", json_null())) {
        md_error_set(err, "out of memory");
        goto out;
    }
    for (int k = 0; k < 2; k++) {
        const char *key = k ? "eos_token" : "bos_token";
        json_t *v = json_object_get(t, key);
        if (json_is_string(v) && json_object_set(ctx, key, v)) goto out;
    }
    rc = md_jinja_parse(&tpl, src, strlen(src), path, err);
    if (rc == MD_OK) rc = md_jinja_render(tpl, ctx, now, out, len, err);
out:
    md_jinja_free(tpl);
    json_decref(ctx);
    return rc;
}

/* One conversation of one template; returns 1 when text and ids match. */
static int check_case(const char *name, const char *src, const char *path, const md_tokenizer *tok, json_t *t,
                      json_t *c, time_t now)
{
    json_t *jm = json_object_get(c, "messages");
    size_t n = json_array_size(jm);
    md_chat_message msgs[8];
    for (size_t i = 0; i < n && i < 8; i++) {
        msgs[i].role = json_string_value(json_object_get(json_array_get(jm, i), "role"));
        msgs[i].content = json_string_value(json_object_get(json_array_get(jm, i), "content"));
    }
    md_chat_opts o = {0};
    o.bos_token = json_string_value(json_object_get(t, "bos_token"));
    o.eos_token = json_string_value(json_object_get(t, "eos_token"));
    o.add_generation_prompt = json_is_true(json_object_get(c, "add_generation_prompt"));
    o.now = now;
    char *out = NULL;
    size_t len = 0;
    md_error err = {{0}};
    const char *cname = json_string_value(json_object_get(c, "name"));
    int rc = json_object_get(c, "extra") ? render_extra(src, path, t, c, now, &out, &len, &err)
                                         : md_chat_render_jinja(src, path, msgs, n, &o, &out, &len, &err);
    const char *want_err = json_string_value(json_object_get(c, "error"));
    int ok;
    if (want_err) {
        ok = rc == MD_ERR && strstr(err.msg, want_err) && strstr(err.msg, name);
        CHECK_MSG(ok, "%s/%s: want the error \"%s\", got rc=%d \"%s\"", name, cname, want_err, rc,
                  rc ? err.msg : out);
        free(out);
        return ok;
    }
    json_t *wt = json_object_get(c, "text");
    ok = rc == MD_OK && len == json_string_length(wt) && memcmp(out, json_string_value(wt), len) == 0;
    CHECK_MSG(ok, "%s/%s: rendered\n---\n%s\n--- want\n%s\n---", name, cname, rc ? err.msg : out,
              json_string_value(wt));
    if (ok) {
        int *ids = NULL;
        size_t nid = 0;
        rc = md_tokenizer_encode_n(tok, out, len, 0, &ids, &nid, &err);
        ok = rc == MD_OK && ids_equal(ids, nid, json_object_get(c, "ids"));
        CHECK_MSG(ok, "%s/%s: ids differ (%s)", name, cname, rc ? err.msg : "");
        free(ids);
    }
    free(out);
    return ok;
}

/* The interpreter features (features[] of cases.json) over feature_context:
 * the text jinja2 renders, or, for a feature with "error" (jinja2 raised),
 * a failure with a message naming the feature. */
static void check_features(json_t *doc)
{
    json_t *ctx = json_object_get(doc, "feature_context");
    size_t i, good = 0, n_err = 0;
    json_t *f;
    json_array_foreach(json_object_get(doc, "features"), i, f) {
        const char *src = json_string_value(json_object_get(f, "template"));
        json_t *want = json_object_get(f, "text");
        const char *want_err = json_string_value(json_object_get(f, "error"));
        md_jinja *t = NULL;
        char *out = NULL;
        size_t len = 0;
        md_error err = {{0}};
        int rc = md_jinja_parse(&t, src, strlen(src), "feature", &err);
        if (rc == MD_OK) rc = md_jinja_render(t, ctx, 0, &out, &len, &err);
        int ok;
        if (want_err) {
            n_err++;
            ok = rc == MD_ERR && strstr(err.msg, "feature") != NULL;
            CHECK_MSG(ok, "feature %zu: %s\n  jinja2 raised %s\n  mechdiff gave rc=%d \"%s\"", i, src, want_err, rc,
                      rc ? err.msg : out);
        } else {
            ok = rc == MD_OK && len == json_string_length(want) && memcmp(out, json_string_value(want), len) == 0;
            CHECK_MSG(ok, "feature %zu: %s\n  got  \"%s\"\n  want \"%s\"", i, src, rc ? err.msg : out,
                      json_string_value(want));
        }
        good += (size_t)ok;
        free(out);
        md_jinja_free(t);
    }
    printf("%zu/%zu interpreter features match jinja2 (%zu of them errors jinja2 raises)\n", good,
           json_array_size(json_object_get(doc, "features")), n_err);
    CHECK(json_array_size(json_object_get(doc, "features")) >= 63);
    CHECK(n_err >= 25);
}

int main(void)
{
    json_error_t je;
    json_t *doc = json_load_file(ROOT "/cases.json", JSON_ALLOW_NUL, &je); /* features print NUL */
    CHECK_MSG(doc != NULL, "cannot read " ROOT "/cases.json: %s (run from the repository root)", je.text);
    if (!doc) TEST_MAIN_END();
    time_t now = (time_t)json_integer_value(json_object_get(doc, "now_utc"));
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(doc, "templates"), i, t) {
        const char *file = json_string_value(json_object_get(t, "template"));
        char path[512], tdir[512];
        snprintf(path, sizeof path, ROOT "/%s", file);
        snprintf(tdir, sizeof tdir, "tests/golden/tokenizers/%s", json_string_value(json_object_get(t, "tokenizer")));
        md_error err = {{0}};
        char *src = md_fsutil_read_input(path, (size_t)1 << 20, NULL, &err);
        md_tokenizer *tok = NULL;
        CHECK_MSG(src != NULL, "%s", err.msg);
        CHECK_MSG(md_tokenizer_load(&tok, tdir, &err) == MD_OK, "%s", err.msg);
        if (src && tok) {
            size_t k, good = 0;
            json_t *c;
            json_t *cases = json_object_get(t, "cases");
            json_array_foreach(cases, k, c) good += (size_t)check_case(file, src, path, tok, t, c, now);
            printf("%-32s %zu/%zu conversations match transformers (text and ids via %s)\n", file, good,
                   json_array_size(cases), tdir);
        }
        md_tokenizer_free(tok);
        free(src);
    }
    CHECK(json_array_size(json_object_get(doc, "templates")) >= 23);
    check_features(doc);
    json_decref(doc);
    TEST_MAIN_END();
}
