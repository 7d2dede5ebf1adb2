/* testutil.h — tiny assertion helpers shared by the C unit tests.
 * A failing CHECK prints file:line and the expression and counts a failure;
 * TEST_MAIN_END returns non-zero when anything failed. */
#ifndef MECHDIFF_TESTUTIL_H
#define MECHDIFF_TESTUTIL_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int tu_failures = 0;
static int tu_checks = 0;

#define CHECK(cond) do { tu_checks++; if (!(cond)) { tu_failures++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECK_MSG(cond, ...) do { tu_checks++; if (!(cond)) { tu_failures++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)
#define CHECK_NEAR(a, b, tol) do { double _a = (a), _b = (b); tu_checks++; \
    if (!(fabs(_a - _b) <= (tol))) { tu_failures++; \
    fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s=%.9g %s=%.9g tol=%g\n", \
            __FILE__, __LINE__, #a, _a, #b, _b, (double)(tol)); } } while (0)
#define TEST_MAIN_END() do { printf("%d checks, %d failed\n", tu_checks, tu_failures); \
    return tu_failures ? 1 : 0; } while (0)

/* Directory for scratch files (set by ctest; /tmp otherwise). */
static inline const char *tu_tmpdir(void)
{
    const char *d = getenv("MECHDIFF_TMP");
    return d ? d : "/tmp";
}
#endif
