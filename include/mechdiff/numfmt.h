/* numfmt.h — the shortest text of a double that reads back exactly: the
 * digits both the resolved job YAML (printf %g notation) and the Jinja
 * interpreter (Python repr notation: 1e-05, 100.0) write for a float; each
 * caller dresses the digits in its own notation.
 *
 * Ownership: the caller owns buf; nothing is allocated. */
#ifndef MECHDIFF_NUMFMT_H
#define MECHDIFF_NUMFMT_H

#include <stddef.h>

/* Room enough for any "%.17g" of a double ("-2.2250738585072014e-308"). */
#define MD_NUMFMT_DOUBLE_LEN 32

/* Writes into buf (n bytes, at least MD_NUMFMT_DOUBLE_LEN) the "%.*g" text
 * of v at the smallest precision p in 1..17 whose text strtod reads back as
 * exactly v, and returns p; 17 digits always read back for a finite v, so
 * p = 17 also for nan (no text reads back as nan: buf holds "nan" or
 * "-nan"); inf and -inf take p = 1 ("inf", "-inf"); -0.0 gives "-0".
 * Returns 0 (buf "" when n > 0) when n is too small. */
int md_numfmt_write_shortest(double v, char *buf, size_t n);

#endif
