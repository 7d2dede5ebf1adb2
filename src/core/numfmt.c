/* numfmt.c — the shortest round-trip text of a double (see
 * include/mechdiff/numfmt.h). */
#include "mechdiff/numfmt.h"

#include <stdio.h>
#include <stdlib.h>

int md_numfmt_write_shortest(double v, char *buf, size_t n)
{
    if (n < MD_NUMFMT_DOUBLE_LEN) {
        if (n) buf[0] = '\0';
        return 0;
    }
    int p = 1;
    for (; p < 17; p++) {
        snprintf(buf, n, "%.*g", p, v);
        if (strtod(buf, NULL) == v) return p;
    }
    snprintf(buf, n, "%.*g", p, v);
    return p;
}
