/* exp_output.c — see exp_output.h. */
#include "mechdiff/exp_output.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void md_exp_join_names(char *val, size_t cap, const char *const *items, int n)
{
    size_t off = 0;
    val[0] = '\0';
    for (int i = 0; i < n && off < cap; i++) off += (size_t)snprintf(val + off, cap - off, "%s%s", i ? "," : "", items[i]);
}

/* Strings of rows idx[0..n) of a CSV column at offset off of a 1-D dataset. */
int md_exp_put_csv_strings(md_plan *plan, const char *path, const md_csv *t, int col, const int *idx, int n, int64_t off,
                           md_error *err)
{
    size_t total = 0;
    for (int i = 0; i < n; i++) total += strlen(md_csv_cell(t, idx[i], col)) + 1;
    char *buf = malloc(total ? total : 1), *q = buf;
    if (!buf) return md_error_set(err, "out of memory");
    for (int i = 0; i < n; i++) {
        size_t l = strlen(md_csv_cell(t, idx[i], col)) + 1;
        memcpy(q, md_csv_cell(t, idx[i], col), l);
        q += l;
    }
    int64_t cnt = n;
    int rc = md_plan_put(plan, path, &off, &cnt, buf, total, err);
    free(buf);
    return rc;
}
