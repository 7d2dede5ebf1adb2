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

int md_error_add(md_error *err, const md_error *one)
{
    static const char more[] = "(more problems were found: fix these and check again to see them)";
    if (!err || !one || !one->msg[0]) return MD_ERR;
    size_t used = strnlen(err->msg, sizeof err->msg - 1), n = strlen(one->msg);
    err->msg[used] = '\0';
    for (const char *p = err->msg; (p = strstr(p, one->msg)) != NULL; p++) /* said already */
        if ((p == err->msg || p[-1] == '\n') && (p[n] == '\0' || p[n] == '\n')) return MD_ERR;
    if (strstr(err->msg, more)) return MD_ERR;
    /* what lines may use, leaving room for "\n" + more + NUL */
    size_t room = sizeof err->msg - sizeof more - 1, sep = used ? 1 : 0;
    if (used + sep + n <= room) /* the line, whole */
        snprintf(err->msg + used, sizeof err->msg - used, "%s%s", sep ? "\n" : "", one->msg);
    else if (!used) /* the first problem is always said, cut */
        snprintf(err->msg, room + 1, "%s", one->msg);
    else
        snprintf(err->msg + used, sizeof err->msg - used, "\n%s", more);
    return MD_ERR;
}

int md_error_addf(md_error *err, const char *fmt, ...)
{
    md_error one;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(one.msg, sizeof one.msg, fmt, ap);
    va_end(ap);
    return md_error_add(err, &one);
}

void md_error_clear(md_error *err)
{
    if (err) err->msg[0] = '\0';
}
