/* test_inflight.c — OUT.h5.inflight names each unit a rank holds with the
 * UTC time that unit was handed out. Before, one time per rank was kept from
 * when the rank first got work; a worker is sent its next unit before it
 * returns the last, so it is never idle and `mechdiff status` said a unit
 * handed out a second ago was held "since" the start of the run (found
 * walking the user's path: a 3-rank job killed after a minute). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mechdiff/inflight.h"
#include "testutil.h"

/* Waits until time(NULL) has moved past t (at most a second). */
static void next_second(time_t t)
{
    struct timespec ms = {0, 10 * 1000 * 1000};
    while (time(NULL) <= t) nanosleep(&ms, NULL);
}

/* "2026-12-07T21:49:40Z" of t. */
static void utc(time_t t, char *out, size_t cap)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int main(void)
{
    char dir[PATH_MAX], out[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/test_inflight.XXXXXX", tu_tmpdir());
    if (!mkdtemp(dir)) {
        fprintf(stderr, "cannot make a scratch folder under %s\n", tu_tmpdir());
        return 1;
    }
    snprintf(out, sizeof out, "%s/OUT.h5", dir);
    md_error err = {{0}};
    md_inflight *f = NULL;
    CHECK_MSG(md_inflight_open(&f, out, 3, &err) == MD_OK, "%s", err.msg);
    CHECK(md_inflight_read(out) == NULL); /* nothing in flight yet */

    time_t t0 = time(NULL);
    md_inflight_add(f, 1, "truth/stage 1/unit 0");
    md_inflight_add(f, 1, "truth/stage 1/unit 2");
    next_second(t0);
    time_t t1 = time(NULL);
    md_inflight_remove(f, 1, "truth/stage 1/unit 0");
    md_inflight_add(f, 1, "truth/stage 1/unit 4"); /* the rank was never idle */
    md_inflight_add(f, 2, "knowledge/stage 0/unit 3");

    char s0[32], s1[32], want[256];
    utc(t0, s0, sizeof s0);
    utc(t1, s1, sizeof s1);
    char *lines = md_inflight_read(out);
    CHECK(lines != NULL);
    if (lines) {
        snprintf(want, sizeof want, "rank 1: truth/stage 1/unit 2 (handed out %s), truth/stage 1/unit 4 (handed out %s)\n",
                 s0, s1);
        CHECK_MSG(strstr(lines, want) != NULL, "got:\n%swant:\n%s", lines, want);
        snprintf(want, sizeof want, "rank 2: knowledge/stage 0/unit 3 (handed out %s)\n", s1);
        CHECK_MSG(strstr(lines, want) != NULL, "got:\n%swant:\n%s", lines, want);
        CHECK(strstr(lines, "unit 0") == NULL); /* returned: gone */
        CHECK(strstr(lines, "rank 0") == NULL);
    }
    free(lines);

    /* everything returned: no line left; close(remove) deletes the file */
    md_inflight_remove(f, 1, "truth/stage 1/unit 2");
    md_inflight_remove(f, 1, "truth/stage 1/unit 4");
    md_inflight_remove(f, 2, "knowledge/stage 0/unit 3");
    CHECK(md_inflight_read(out) == NULL);
    md_inflight_close(f, 1);
    CHECK(access(out, F_OK) != 0);
    char path[PATH_MAX + 48];
    snprintf(path, sizeof path, "%s.inflight", out);
    CHECK(access(path, F_OK) != 0);
    rmdir(dir);
    TEST_MAIN_END();
}
