/* jinja_check.h — the checks test_jinja_limits.c and test_jinja_namespace.c
 * share: a template rendered as md_chat_render_jinja renders it (one user
 * message "x", no BOS/EOS), named "DIR/chat_template.jinja" in messages.
 * check_ok wants exactly the text; check_err a failure whose message names
 * the file and holds the needle. Test-only (static functions). */
#ifndef MECHDIFF_TEST_JINJA_CHECK_H
#define MECHDIFF_TEST_JINJA_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/chat.h"
#include "testutil.h"

static int render(const char *src, char **out, md_error *err)
{
    md_chat_message m = {"user", "x"};
    md_chat_opts o = {0};
    size_t len = 0;
    md_error_clear(err);
    return md_chat_render_jinja(src, "DIR/chat_template.jinja", &m, 1, &o, out, &len, err);
}

static void check_ok(const char *src, const char *want)
{
    char *out = NULL;
    md_error err;
    int rc = render(src, &out, &err);
    CHECK_MSG(rc == MD_OK && out && strcmp(out, want) == 0, "%s: got \"%s\" want \"%s\" (%s)", src,
              out ? out : "(null)", want, err.msg);
    free(out);
}

static void check_err(const char *src, const char *needle)
{
    char *out = NULL;
    md_error err;
    CHECK(render(src, &out, &err) == MD_ERR && !out);
    CHECK_MSG(strstr(err.msg, "DIR/chat_template.jinja:") && strstr(err.msg, needle),
              "%s: error \"%s\" should name the file and contain \"%s\"", src, err.msg, needle);
}

#endif
