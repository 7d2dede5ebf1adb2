/* test_csv.c — CSV reading: quoting, CRLF, blank lines, errors. */
#include <stdio.h>
#include <string.h>

#include "mechdiff/csv.h"
#include "testutil.h"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

int main(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/csv_test.csv", tu_tmpdir());
    md_error err = {0};
    md_csv *t = NULL;
    write_file(path, "statement,label\r\nThe city of Oslo is in Norway.,1\n\"Say \"\"hi\"\", then, go.\",0\n\nlast,1");
    CHECK(md_csv_read(&t, path, &err) == MD_OK);
    if (t) {
        CHECK(t->n_rows == 3 && t->n_cols == 2);
        CHECK(md_csv_column(t, "label", &err) == 1);
        CHECK(strcmp(md_csv_cell(t, 1, 0), "Say \"hi\", then, go.") == 0);
        CHECK(strcmp(md_csv_cell(t, 2, 0), "last") == 0 && strcmp(md_csv_cell(t, 2, 1), "1") == 0);
        CHECK(md_csv_column(t, "instruction", &err) == -1 && strstr(err.msg, "statement, label"));
        md_csv_free(t);
    }
    write_file(path, "a,b\n1,2,3\n");
    CHECK(md_csv_read(&t, path, &err) == MD_ERR && strstr(err.msg, ":2:") && strstr(err.msg, "3 fields"));
    write_file(path, "a,b\n\"1,2\n");
    CHECK(md_csv_read(&t, path, &err) == MD_ERR && strstr(err.msg, "malformed"));
    CHECK(md_csv_read(&t, "/nonexistent/x.csv", &err) == MD_ERR && strstr(err.msg, "/nonexistent/x.csv"));
    /* a quoted field over two lines: the error's line number counts lines, not records */
    write_file(path, "a,b\n\"x\ny\",1\n1,2,3\n");
    CHECK_MSG(md_csv_read(&t, path, &err) == MD_ERR && strstr(err.msg, ":4:"), "%s", err.msg);
    /* UTF-16 (a spreadsheet's "Unicode text"): its NUL bytes used to end the text early, dropping rows
     * silently (seen while writing fuzz_csv); now refused, naming the byte and what to do */
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite("\xff\xfes\0,\0l\0\n\0", 1, 10, f);
        fclose(f);
    }
    CHECK_MSG(md_csv_read(&t, path, &err) == MD_ERR && strstr(err.msg, "csv_test.csv: byte 3 is a NUL") &&
                  strstr(err.msg, "UTF-8"), "%s", err.msg);
    TEST_MAIN_END();
}
