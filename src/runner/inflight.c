/* inflight.c — see include/mechdiff/inflight.h. */
#include "mechdiff/inflight.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mechdiff/fsutil.h"
#include "mechdiff/sbuf.h"

#define LINE 512     /* bytes per rank line, '\n'-terminated, space-padded */
#define SLOTS 8      /* units remembered per rank (more are counted) */

typedef struct rank_units {
    char name[SLOTS][160];
    time_t given[SLOTS]; /* when each unit was handed out */
    int n, extra;
} rank_units;

struct md_inflight {
    int fd;
    int world;
    rank_units *r;   /* [world] */
    char path[4200];
};

int md_inflight_open(md_inflight **out, const char *output, int world, md_error *err)
{
    *out = NULL;
    md_inflight *f = calloc(1, sizeof *f);
    if (!f || !(f->r = calloc((size_t)world, sizeof *f->r))) {
        free(f);
        return md_error_set(err, "out of memory");
    }
    snprintf(f->path, sizeof f->path, "%s.inflight", output);
    f->world = world;
    f->fd = md_fsutil_open_output(f->path, O_WRONLY | O_CREAT | O_TRUNC, 0644, err); /* never through a symlink */
    if (f->fd < 0) {
        free(f->r);
        free(f);
        return md_error_prefix(err, "cannot create the in-flight list (is the folder writable?)");
    }
    *out = f;
    return MD_OK;
}

/* "2026-12-07T21:49:40Z": the UTC stamp of the run's log lines. */
static void stamp(time_t t, char *out, size_t cap)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* "rank 1: truth/stage 1/unit 5 (handed out T), ...": each unit with its own
 * time (a rank that is sent its next unit before it returns the last one is
 * never idle, so one time per rank said when it first got work, not how long
 * the units it holds have been computing). */
static void write_line(md_inflight *f, int rank)
{
    char line[LINE];
    rank_units *u = &f->r[rank];
    int n = 0;
    if (u->n > 0 || u->extra > 0) {
        n = snprintf(line, sizeof line, "rank %d:", rank);
        for (int i = 0; i < u->n && n < LINE - 1; i++) {
            char when[32];
            stamp(u->given[i], when, sizeof when);
            n += snprintf(line + n, sizeof line - (size_t)n, "%s %s (handed out %s)", i ? "," : "", u->name[i],
                          when);
        }
        if (u->extra && n < LINE - 1) n += snprintf(line + n, sizeof line - (size_t)n, " (+%d more)", u->extra);
        if (n > LINE - 1) n = LINE - 1;
    }
    memset(line + n, ' ', (size_t)(LINE - 1 - n));
    line[LINE - 1] = '\n';
    if (pwrite(f->fd, line, LINE, (off_t)rank * LINE) != LINE) { /* best effort: a report, never a result */
    }
}

void md_inflight_add(md_inflight *f, int rank, const char *unit)
{
    if (!f || rank < 0 || rank >= f->world) return;
    rank_units *u = &f->r[rank];
    if (u->n < SLOTS) {
        u->given[u->n] = time(NULL);
        snprintf(u->name[u->n++], sizeof u->name[0], "%s", unit);
    } else {
        u->extra++;
    }
    write_line(f, rank);
}

void md_inflight_remove(md_inflight *f, int rank, const char *unit)
{
    if (!f || rank < 0 || rank >= f->world) return;
    rank_units *u = &f->r[rank];
    for (int i = 0; i < u->n; i++)
        if (strncmp(u->name[i], unit, sizeof u->name[0] - 1) == 0) {
            memmove(u->name[i], u->name[i + 1], (size_t)(u->n - i - 1) * sizeof u->name[0]);
            memmove(&u->given[i], &u->given[i + 1], (size_t)(u->n - i - 1) * sizeof u->given[0]);
            u->n--;
            write_line(f, rank);
            return;
        }
    if (u->extra > 0) u->extra--;
    write_line(f, rank);
}

void md_inflight_close(md_inflight *f, int remove)
{
    if (!f) return;
    close(f->fd);
    if (remove) unlink(f->path);
    free(f->r);
    free(f);
}

void md_inflight_drop(const char *output)
{
    char path[4200];
    snprintf(path, sizeof path, "%s.inflight", output);
    unlink(path); /* a file or a link, never a folder (unlink refuses those) */
}

char *md_inflight_read(const char *output)
{
    char path[4200];
    snprintf(path, sizeof path, "%s.inflight", output);
    int fd = md_fsutil_open_input(path, NULL); /* informative only: a missing or odd file reads as none */
    FILE *fp = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!fp) {
        if (fd >= 0) close(fd);
        return NULL;
    }
    md_sbuf out = {0}; /* the lines: handed to the caller */
    char line[LINE + 1];
    while (fgets(line, sizeof line, fp)) {
        size_t n = strlen(line);
        while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\n')) n--;
        if (n == 0) continue;
        if (md_sbuf_add(&out, line, n) != MD_OK || md_sbuf_add_char(&out, '\n') != MD_OK) break;
    }
    fclose(fp);
    if (out.n == 0) {
        md_sbuf_free(&out);
        return NULL;
    }
    return md_sbuf_take(&out); /* NULL when out of memory: informative only, read as none */
}
