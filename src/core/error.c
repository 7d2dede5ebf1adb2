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
    size_t hl = strlen(head);
    if (hl + 2 >= sizeof err->msg) hl = sizeof err->msg - 3;
    size_t ol = strnlen(err->msg, sizeof err->msg - 1);
    if (hl + 2 + ol >= sizeof err->msg) ol = sizeof err->msg - 1 - hl - 2;
    memmove(err->msg + hl + 2, err->msg, ol); /* keep the old message, truncated at the end */
    memcpy(err->msg, head, hl);
    err->msg[hl] = ':';
    err->msg[hl + 1] = ' ';
    err->msg[hl + 2 + ol] = '\0';
    return MD_ERR;
}

void md_error_clear(md_error *err)
{
    if (err) err->msg[0] = '\0';
}
