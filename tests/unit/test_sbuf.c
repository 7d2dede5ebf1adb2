/* test_sbuf.c — md_sbuf (include/mechdiff/sbuf.h): growth piece by piece
 * (contents, NUL terminator, capacity doubling from 64), bytes with NULs,
 * printf-style adds longer than the stack buffer, requests near SIZE_MAX and
 * PTRDIFF_MAX refused without touching the contents and making every later
 * add fail (the sticky flag md_job_to_yaml checks once), md_sbuf_take;
 * and md_numfmt_write_shortest (include/mechdiff/numfmt.h) over a table of
 * tricky doubles: the text reads back exactly, no shorter precision does,
 * and the text is the one printf %g writes at that precision. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/error.h"
#include "mechdiff/numfmt.h"
#include "mechdiff/sbuf.h"
#include "testutil.h"

static void test_growth(void)
{
    md_sbuf b = {0};
    char expect[5000];
    size_t len = 0;
    for (int i = 0; i < 1000; i++) { /* pieces of 0..7 bytes: many reallocations */
        char piece[8];
        int k = i % 8;
        for (int j = 0; j < k; j++) piece[j] = (char)('a' + (i + j) % 26);
        CHECK(md_sbuf_add(&b, piece, (size_t)k) == MD_OK);
        memcpy(expect + len, piece, (size_t)k);
        len += (size_t)k;
        CHECK(b.n == len && b.cap >= len + 1 && b.s[len] == '\0');
    }
    CHECK(memcmp(b.s, expect, len) == 0);
    CHECK_MSG(b.cap == 4096, "cap %zu for %zu bytes (64 doubled)", b.cap, len); /* 3500 bytes + NUL */
    CHECK(!b.failed);
    md_sbuf_free(&b);
    CHECK(!b.s && !b.n && !b.cap);

    /* exactly the capacity: 63 bytes + NUL fit in 64, the 64th byte doubles */
    CHECK(md_sbuf_add(&b, expect, 63) == MD_OK && b.cap == 64);
    CHECK(md_sbuf_add_char(&b, 'x') == MD_OK && b.cap == 128 && b.n == 64 && b.s[63] == 'x' && b.s[64] == '\0');
    md_sbuf_free(&b);

    /* NUL bytes inside, and adding nothing */
    CHECK(md_sbuf_add(&b, "a\0b", 3) == MD_OK && md_sbuf_add(&b, NULL, 0) == MD_OK);
    CHECK(b.n == 3 && memcmp(b.s, "a\0b", 4) == 0);
    md_sbuf_free(&b);
}

static void test_format(void)
{
    md_sbuf b = {0};
    CHECK(md_sbuf_add_format(&b, "%s=%d;", "x", 42) == MD_OK);
    CHECK(md_sbuf_add_str(&b, "[") == MD_OK);
    char longer[1000];
    memset(longer, 'q', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    CHECK(md_sbuf_add_format(&b, "%s|%s", longer, longer) == MD_OK); /* past the 256-byte stack buffer */
    CHECK(md_sbuf_add_str(&b, "]") == MD_OK);
    CHECK(b.n == 5 + 1 + 999 + 1 + 999 + 1);
    CHECK(strncmp(b.s, "x=42;[qqq", 9) == 0 && b.s[6 + 999] == '|' && strcmp(b.s + b.n - 2, "q]") == 0);
    CHECK(strlen(b.s) == b.n);
    char *t = md_sbuf_take(&b);
    CHECK(t && strlen(t) == 2006 && !b.s && !b.n);
    free(t);
    t = md_sbuf_take(&b); /* nothing added: an empty text, not NULL */
    CHECK(t && t[0] == '\0');
    free(t);
}

static void test_limits(void)
{
    md_sbuf b = {0};
    CHECK(md_sbuf_add_str(&b, "kept") == MD_OK);
    size_t cap = b.cap;
    /* n + more + 1 would wrap around: refused before any allocation */
    CHECK(md_sbuf_reserve(&b, SIZE_MAX) == MD_ERR);
    CHECK(b.failed && b.n == 4 && b.cap == cap && strcmp(b.s, "kept") == 0);
    CHECK(md_sbuf_add_str(&b, "more") == MD_ERR); /* sticky */
    CHECK(md_sbuf_add_format(&b, "%d", 1) == MD_ERR && md_sbuf_add_char(&b, 'c') == MD_ERR);
    CHECK(strcmp(b.s, "kept") == 0);
    CHECK(md_sbuf_take(&b) == NULL && !b.s && !b.failed); /* and freed */

    size_t ways[] = {SIZE_MAX - 4, SIZE_MAX - 5, (size_t)PTRDIFF_MAX, (size_t)PTRDIFF_MAX - 4};
    for (size_t i = 0; i < sizeof ways / sizeof ways[0]; i++) {
        CHECK(md_sbuf_add_str(&b, "kept") == MD_OK);
        CHECK_MSG(md_sbuf_reserve(&b, ways[i]) == MD_ERR, "reserve %zu after 4 bytes", ways[i]);
        CHECK(b.failed && b.n == 4 && strcmp(b.s, "kept") == 0);
        md_sbuf_free(&b);
        CHECK(!b.failed); /* free leaves a fresh buffer */
    }
    /* the largest request allowed is PTRDIFF_MAX - 1 - n (4 + it + NUL): one more byte is refused above */
    CHECK(md_sbuf_add(&b, "x", 1) == MD_OK && md_sbuf_reserve(&b, 10) == MD_OK && b.cap == 64);
    md_sbuf_free(&b);
}

/* One tricky double: p and text as printf gives them, reading back, and no
 * shorter precision reading back. */
static void check_shortest(double v, int want_p, const char *want)
{
    char buf[MD_NUMFMT_DOUBLE_LEN], t[512]; /* 512: what -Wformat-truncation assumes %g may write */
    int p = md_numfmt_write_shortest(v, buf, sizeof buf);
    CHECK_MSG(p == want_p && strcmp(buf, want) == 0, "%.17g: p %d '%s', expected %d '%s'", v, p, buf, want_p, want);
    snprintf(t, sizeof t, "%.*g", p, v);
    CHECK_MSG(strcmp(buf, t) == 0, "%s is not %%.%dg (%s)", buf, p, t);
    if (!isnan(v)) {
        double back = strtod(buf, NULL);
        CHECK_MSG(back == v && signbit(back) == signbit(v), "%s reads back as %.17g", buf, back);
    }
    for (int q = 1; q < p && !isnan(v); q++) {
        snprintf(t, sizeof t, "%.*g", q, v);
        CHECK_MSG(strtod(t, NULL) != v, "%.17g: precision %d (%s) reads back already", v, q, t);
    }
}

static void test_shortest(void)
{
    check_shortest(0.1, 1, "0.1");
    check_shortest(0.2, 1, "0.2");
    check_shortest(0.1 + 0.2, 17, "0.30000000000000004");
    check_shortest(1e-5, 1, "1e-05");
    check_shortest(1e16, 1, "1e+16");
    check_shortest(5e-324, 1, "5e-324"); /* the smallest subnormal */
    check_shortest(DBL_MAX, 17, "1.7976931348623157e+308");
    check_shortest(DBL_MIN, 17, "2.2250738585072014e-308");
    check_shortest(-DBL_MAX, 17, "-1.7976931348623157e+308");
    check_shortest(-0.0, 1, "-0");
    check_shortest(0.0, 1, "0");
    check_shortest(INFINITY, 1, "inf");
    check_shortest(-INFINITY, 1, "-inf");
    check_shortest(1.0 / 3.0, 16, "0.3333333333333333");
    check_shortest(2.0 / 3.0, 16, "0.6666666666666666");
    check_shortest(123456789012345680.0, 17, "1.2345678901234568e+17");
    check_shortest(100.0, 1, "1e+02"); /* %g notation: exponent from the precision on */
    check_shortest(1000.5, 5, "1000.5");
    check_shortest(1e15, 1, "1e+15");
    check_shortest(123456.0, 6, "123456");
    check_shortest(9007199254740993.0, 16, "9007199254740992"); /* 2^53 + 1 is not a double: 2^53 */
    check_shortest(5e-5, 1, "5e-05");

    char buf[MD_NUMFMT_DOUBLE_LEN];
    int p = md_numfmt_write_shortest(NAN, buf, sizeof buf); /* nothing reads back as nan: 17 */
    CHECK_MSG(p == 17 && (strcmp(buf, "nan") == 0 || strcmp(buf, "-nan") == 0), "nan: %d '%s'", p, buf);
    /* a buffer too small: 0 and "" */
    CHECK(md_numfmt_write_shortest(0.1, buf, MD_NUMFMT_DOUBLE_LEN - 1) == 0 && buf[0] == '\0');
    CHECK(md_numfmt_write_shortest(0.1, NULL, 0) == 0);
    /* the longest text fits */
    CHECK(md_numfmt_write_shortest(-2.2250738585072014e-308, buf, sizeof buf) == 17 &&
          strlen(buf) == 24 && strtod(buf, NULL) == -2.2250738585072014e-308);
}

int main(void)
{
    test_growth();
    test_format();
    test_limits();
    test_shortest();
    TEST_MAIN_END();
}
