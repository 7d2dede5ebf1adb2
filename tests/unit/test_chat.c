/* test_chat.c — the fixed renderers, format strings (with escapes), names,
 * Jinja errors that name file and line, and the model template through
 * md_chat_encode (chat_template.jinja, BOS once). The real templates are
 * checked against transformers in test_chat_golden.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mechdiff/chat.h"
#include "testutil.h"

static void check_render(md_chat_kind kind, const char *fmt, const char *msg, const char *want)
{
    char *out = NULL;
    md_error err = {{0}};
    int rc = md_chat_render(kind, fmt, msg, &out, &err);
    CHECK_MSG(rc == MD_OK && out && strcmp(out, want) == 0, "%s: got \"%s\" want \"%s\" (%s)", md_chat_name(kind),
              out ? out : "(null)", want, err.msg);
    free(out);
}

static void check_format_error(const char *fmt, const char *needle)
{
    char *out = NULL;
    md_error err = {{0}};
    CHECK(md_chat_render(MD_CHAT_FORMAT, fmt, "x", &out, &err) == MD_ERR && out == NULL);
    CHECK_MSG(strstr(err.msg, needle) != NULL, "error \"%s\" should contain \"%s\"", err.msg, needle);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    CHECK(a && b);
    char buf[8192];
    size_t n;
    while (a && b && (n = fread(buf, 1, sizeof buf, a)) > 0) fwrite(buf, 1, n, b);
    if (a) fclose(a);
    if (b) fclose(b);
}

/* A template that cannot be rendered names the file, the line and the way out. */
static void check_jinja_error(const char *src, const char *needle1, const char *needle2)
{
    md_chat_message m = {"user", "x"};
    md_chat_opts o = {0};
    char *out = NULL;
    size_t len = 0;
    md_error err = {{0}};
    CHECK(md_chat_render_jinja(src, "DIR/chat_template.jinja", &m, 1, &o, &out, &len, &err) == MD_ERR && !out);
    CHECK_MSG(strstr(err.msg, needle1) && (!needle2 || strstr(err.msg, needle2)), "error \"%s\" should contain "
              "\"%s\" and \"%s\"", err.msg, needle1, needle2 ? needle2 : "");
}

/* The model's template through md_chat_encode: chat_template.jinja wins over
 * tokenizer_config.json, BOS comes from the template (once), and a broken
 * template is an error naming the file and the way out. */
static void test_model_template(void)
{
    char dir[512], p[600];
    snprintf(dir, sizeof dir, "%s/chat_model_tpl", tu_tmpdir());
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    copy_file("tests/golden/tokenizers/bytelevel/tokenizer.json", p);
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    copy_file("tests/golden/tokenizers/bytelevel/tokenizer_config.json", p);
    snprintf(p, sizeof p, "%s/chat_template.jinja", dir);
    copy_file("tests/golden/templates/llama-3.1-instruct.jinja", p);
    md_tokenizer *tok = NULL;
    md_error err = {{0}};
    CHECK_MSG(md_tokenizer_load(&tok, dir, &err) == MD_OK, "%s", err.msg);
    if (!tok) return;
    CHECK(strstr(md_tokenizer_chat_template_origin(tok), "chat_template.jinja") != NULL);
    CHECK(md_chat_detect(md_tokenizer_chat_template(tok)) == MD_CHAT_MODEL);
    int *ids = NULL, *want = NULL;
    size_t n = 0, nw = 0;
    CHECK_MSG(md_chat_encode(tok, MD_CHAT_MODEL, NULL, " Is the sky blue? ", &ids, &n, &err) == MD_OK, "%s", err.msg);
    const char *text = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
                       "December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>"
                       "\n\nIs the sky blue?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
    CHECK(md_tokenizer_encode(tok, text, 0, &want, &nw, &err) == MD_OK);
    CHECK(n == nw && ids && want && memcmp(ids, want, n * sizeof *ids) == 0);
    CHECK(n > 1 && ids[0] == md_tokenizer_bos_id(tok) && ids[1] != md_tokenizer_bos_id(tok));
    free(ids);
    free(want);
    md_tokenizer_free(tok);

    /* Llama-3.2's strftime_now date comes from SOURCE_DATE_EPOCH when set. */
    copy_file("tests/golden/templates/llama-3.2-instruct.jinja", p);
    setenv("SOURCE_DATE_EPOCH", "1741944413", 1); /* 2025-03-14 09:26:53 UTC */
    CHECK_MSG(md_tokenizer_load(&tok, dir, &err) == MD_OK, "%s", err.msg);
    if (!tok) return;
    CHECK(md_chat_encode(tok, MD_CHAT_MODEL, NULL, "hi", &ids, &n, &err) == MD_OK);
    text = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
           "Today Date: 14 Mar 2025\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\n";
    CHECK(md_tokenizer_encode(tok, text, 0, &want, &nw, &err) == MD_OK);
    CHECK(n == nw && ids && want && memcmp(ids, want, n * sizeof *ids) == 0);
    unsetenv("SOURCE_DATE_EPOCH");
    free(ids);
    free(want);
    md_tokenizer_free(tok);

    write_file(p, "{{ bos_token }}\n{% for m in messages %}{{ m.content | wordwrap }}{% endfor %}");
    CHECK_MSG(md_tokenizer_load(&tok, dir, &err) == MD_OK, "%s", err.msg);
    if (!tok) return;
    CHECK(md_chat_encode(tok, MD_CHAT_MODEL, NULL, "x", &ids, &n, &err) == MD_ERR && ids == NULL);
    CHECK_MSG(strstr(err.msg, "chat_template.jinja:2") && strstr(err.msg, "wordwrap") &&
              strstr(err.msg, "format string"), "%s", err.msg);
    /* A fixed renderer or format string still encodes with BOS added. */
    CHECK(md_chat_encode(tok, MD_CHAT_BASE, NULL, "x", &ids, &n, &err) == MD_OK && n > 1 &&
          ids[0] == md_tokenizer_bos_id(tok));
    free(ids);
    md_tokenizer_free(tok);
}

int main(void)
{
    const char *q = "Is the sky blue?";
    check_render(MD_CHAT_LLAMA3, NULL, q,
                 "<|start_header_id|>user<|end_header_id|>\n\nIs the sky blue?<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n");
    check_render(MD_CHAT_LLAMA3, NULL, "  padded \n",
                 "<|start_header_id|>user<|end_header_id|>\n\npadded<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n");
    check_render(MD_CHAT_LLAMA2, NULL, q, "[INST] Is the sky blue? [/INST]");
    check_render(MD_CHAT_LLAMA2, NULL, " x ", "[INST] x [/INST]");
    check_render(MD_CHAT_MISTRAL, NULL, q, "[INST] Is the sky blue?[/INST]");
    check_render(MD_CHAT_TULU, NULL, q, "<|user|>\nIs the sky blue?\n<|assistant|>\n");
    check_render(MD_CHAT_TULU, NULL, " keep ", "<|user|>\n keep \n<|assistant|>\n");
    check_render(MD_CHAT_BASE, NULL, q, "User: Is the sky blue?\nAssistant:");
    check_render(MD_CHAT_FORMAT, "Q: {instruction}\nA:", q, "Q: Is the sky blue?\nA:");
    check_render(MD_CHAT_FORMAT, "{instruction}", "", "");
    check_render(MD_CHAT_BASE, NULL, "", "User: \nAssistant:");

    check_format_error("Q: A:", "{instruction}");
    check_format_error("{instruction} and {instruction}", "more than once");
    check_format_error(NULL, "{instruction}");
    char *out = NULL;
    md_error err = {{0}};
    CHECK(md_chat_render(MD_CHAT_UNKNOWN, NULL, "x", &out, &err) == MD_ERR && strstr(err.msg, "unknown"));
    CHECK(md_chat_render(MD_CHAT_BASE, NULL, NULL, &out, &err) == MD_ERR);

    /* Format strings typed in a shell: backslash-n is a newline (issue 18). */
    check_render(MD_CHAT_FORMAT, "Q: {instruction}\\nA:", q, "Q: Is the sky blue?\nA:");
    check_render(MD_CHAT_FORMAT, "\\t{instruction}\\\\n", "x", "\tx\\n");
    CHECK(md_chat_render(MD_CHAT_MODEL, NULL, "x", &out, &err) == MD_ERR && strstr(err.msg, "md_chat_encode"));

    /* Any template is the model's own, rendered by the interpreter. */
    CHECK(md_chat_detect("{{ messages }}") == MD_CHAT_MODEL);
    CHECK(md_chat_detect(NULL) == MD_CHAT_UNKNOWN);
    CHECK(md_chat_parse_name("model") == MD_CHAT_MODEL);

    check_jinja_error("a\n{% filter upper %}x{% endfilter %}", "DIR/chat_template.jinja:2", "filter");
    check_jinja_error("{% if x %}never closed", "chat_template.jinja:1", "endif");
    check_jinja_error("{{ x | wordwrap }}", "chat_template.jinja:1", "wordwrap");
    check_jinja_error("\n\n{{ raise_exception('No system role') }}", "chat_template.jinja:3", "No system role");
    check_jinja_error("{{ 'unterminated }}", "chat_template.jinja:1", "not closed");
    check_jinja_error("{{ 1 + }}", "chat_template.jinja:1", "expected");
    /* features mechdiff refuses name themselves */
    check_jinja_error("\n{{ 'abc'.find('b', 1) }}", "chat_template.jinja:2", "str.find takes one string here (start and end "
                      "are not supported by mechdiff's Jinja interpreter)");
    check_jinja_error("{{ '<b>' | e }}", "chat_template.jinja:1", "filter 'escape' is not supported");
    check_jinja_error("{{ 'a'.zfill(3) }}", "chat_template.jinja:1", "string method 'zfill' is not supported");
    test_model_template();

    const char *names[] = {"llama3", "llama2", "mistral", "tulu", "base"};
    md_chat_kind kinds[] = {MD_CHAT_LLAMA3, MD_CHAT_LLAMA2, MD_CHAT_MISTRAL, MD_CHAT_TULU, MD_CHAT_BASE};
    for (int i = 0; i < 5; i++) {
        CHECK(md_chat_parse_name(names[i]) == kinds[i]);
        CHECK(strcmp(md_chat_name(kinds[i]), names[i]) == 0);
    }
    CHECK(md_chat_parse_name("chatml") == MD_CHAT_UNKNOWN);
    CHECK(md_chat_parse_name(NULL) == MD_CHAT_UNKNOWN);
    CHECK(strcmp(md_chat_name(MD_CHAT_FORMAT), "format") == 0);
    CHECK(strcmp(md_chat_name(MD_CHAT_UNKNOWN), "unknown") == 0);
    TEST_MAIN_END();
}
