/* test_error.c — md_error_add/addf, the list of every failed check that
 * validate reports: a line each, a line already there not added again (also
 * not a line that only starts or ends like it), and a full record ending in
 * one line saying that more problems were found. */
#include <stdio.h>
#include <string.h>

#include "mechdiff/error.h"
#include "testutil.h"

int main(void)
{
    md_error err, one;
    md_error_clear(&err);
    md_error_set(&one, "a.yaml:3:5: experiment 'x': key 'layer': 40 but model 'base' has 4 layers");
    CHECK(md_error_add(&err, &one) == MD_ERR);
    CHECK(strcmp(err.msg, one.msg) == 0);
    CHECK(md_error_addf(&err, "a.yaml:3:5: experiment 'x': key 'positions': '%s' ...", "1") == MD_ERR);
    CHECK(md_error_add(&err, &one) == MD_ERR); /* said already */
    CHECK(strcmp(err.msg, "a.yaml:3:5: experiment 'x': key 'layer': 40 but model 'base' has 4 layers\n"
                          "a.yaml:3:5: experiment 'x': key 'positions': '1' ...") == 0);
    md_error_addf(&err, "a.yaml:3:5: experiment 'x'"); /* the start of a line is not that line */
    md_error_addf(&err, "has 4 layers");                /* nor is its end */
    int lines = 1;
    for (const char *p = err.msg; (p = strchr(p, '\n')) != NULL; p++) lines++;
    CHECK_MSG(lines == 4, "%d lines:\n%s", lines, err.msg);
    /* an empty message adds nothing */
    md_error_clear(&one);
    md_error_add(&err, &one);
    CHECK(err.msg[strlen(err.msg) - 1] != '\n');

    /* full: whole lines kept, then one line that says more were found */
    md_error_clear(&err);
    for (int i = 0; i < 100; i++) md_error_addf(&err, "b.yaml:%d:1: experiment 'e%d': a problem of forty bytes", i, i);
    size_t len = strlen(err.msg);
    CHECK(len < sizeof err.msg);
    const char *last = strrchr(err.msg, '\n');
    CHECK_MSG(last && strstr(last, "more problems were found"), "last line: %s", last ? last : err.msg);
    CHECK(strstr(err.msg, "experiment 'e0': a problem of forty bytes\n") == err.msg + strlen("b.yaml:0:1: "));
    int seen = 0;
    for (const char *p = err.msg; (p = strstr(p, "more problems were found")) != NULL; p++) seen++;
    CHECK(seen == 1);
    CHECK_MSG(strcmp(last + 1, "(more problems were found: fix these and check again to see them)") == 0,
              "the last line is cut: '%s'", last + 1);

    /* a first problem longer than the record is said (cut), not replaced by
     * the 'more problems' line; the next one is that line, whole */
    char big[3000];
    memset(big, 'p', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    md_error_clear(&err);
    md_error_addf(&err, "c.yaml:1:1: %s", big);
    CHECK_MSG(strncmp(err.msg, "c.yaml:1:1: ppp", 15) == 0, "first problem lost: %.80s", err.msg);
    md_error_addf(&err, "c.yaml:2:1: another");
    last = strrchr(err.msg, '\n');
    CHECK_MSG(last && strcmp(last + 1, "(more problems were found: fix these and check again to see them)") == 0,
              "last line: %s", last ? last + 1 : "(none)");
    /* a record filled to the last byte the lines may use keeps the whole 'more' line */
    for (size_t fill = 1900; fill < 2000; fill++) {
        md_error_clear(&err);
        memset(big, 'q', fill);
        big[fill] = '\0';
        md_error_addf(&err, "%s", big);
        md_error_addf(&err, "%s", "d.yaml:1:1: x");
        md_error_addf(&err, "%s", "d.yaml:2:1: y");
        last = strrchr(err.msg, '\n');
        CHECK_MSG(!strstr(err.msg, "more problems") || strstr(err.msg, "to see them)"), "fill %zu: cut: %s", fill,
                  last ? last + 1 : "");
    }
    TEST_MAIN_END();
}
