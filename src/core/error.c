/* error.c — the md_error record (see include/mechdiff/error.h). */
#include "mechdiff/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int md_error_set(md_error *err, const char *fmt, ...)
{
    if (!err) return MD_ERR;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return MD_ERR;
}

int md_error_prefix(md_error *err, const char *fmt, ...)
{
    if (!err) return MD_ERR;
    char head[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", head, old);
    return MD_ERR;
}

void md_error_clear(md_error *err)
{
    if (err) err->msg[0] = '\0';
}
