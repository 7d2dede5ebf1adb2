/* error.h — one error record passed down every call that can fail.
 *
 * Convention (as Redis's C_OK/C_ERR): functions return MD_OK (0) or MD_ERR (-1)
 * and, on failure, fill the caller's md_error with a message that names the
 * file, key, tensor or rank involved and says what to do. The caller owns the
 * md_error; it holds no heap memory. */
#ifndef MECHDIFF_ERROR_H
#define MECHDIFF_ERROR_H

#include <stddef.h>

#define MD_OK 0
#define MD_ERR (-1)

typedef struct md_error {
    char msg[2048];
} md_error;

/* Sets err->msg from printf-style arguments (err may be NULL). Returns MD_ERR. */
int md_error_set(md_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prepends "context: " to the message already in err. Returns MD_ERR. */
int md_error_prefix(md_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Adds the message of `one` (a failed check) to err as a line of its own,
 * for callers that report every failed check at once (validate): a line
 * already in err is not added again; when err is full, a last line says
 * that more problems were found. Returns MD_ERR. */
int md_error_add(md_error *err, const md_error *one);
/* The same for a message from printf-style arguments. Returns MD_ERR. */
int md_error_addf(md_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears err (empty message). */
void md_error_clear(md_error *err);

#endif
