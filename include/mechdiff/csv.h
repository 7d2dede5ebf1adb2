/* csv.h — reading the study's small CSV datasets (`statement,label`,
 * `instruction`, ...): a header row, RFC 4180 quoting ("a, b" and "" for a
 * quote), \n or \r\n line ends. Ownership: md_csv owns every string. */
#ifndef MECHDIFF_CSV_H
#define MECHDIFF_CSV_H

#include "mechdiff/error.h"

typedef struct md_csv {
    char *path;          /* as given (owned) */
    char **header;       /* [n_cols] */
    int n_cols;
    char **cells;        /* [n_rows][n_cols], row-major */
    int n_rows;
} md_csv;

/* Reads PATH, a regular file of at most MD_CSV_MAX_BYTES; a row with a
 * different number of fields than the header is an error naming the file
 * and line. */
#define MD_CSV_MAX_BYTES (256u << 20)
int md_csv_read(md_csv **out, const char *path, md_error *err);
void md_csv_free(md_csv *t);
/* Index of a header column, or -1 (err set, naming the file and the columns
 * it has) when absent. */
int md_csv_column(const md_csv *t, const char *name, md_error *err);
static inline const char *md_csv_cell(const md_csv *t, int row, int col)
{
    return t->cells[(long)row * t->n_cols + col];
}

#endif
