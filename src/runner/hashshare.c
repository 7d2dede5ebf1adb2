/* hashshare.c — start-up digests read by one reader per node, gathered on
 * rank 0 (see include/mechdiff/hashshare.h). */
#include "mechdiff/hashshare.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mechdiff/clock.h"
#include "mechdiff/filehash.h"
#include "mechdiff/progress.h"

#define HEX MD_SHA256_HEX_SIZE

/* What rank 0 decides and the readers receive. */
typedef struct share {
    int n;            /* files; -1 = rank 0 failed, nobody hashes */
    char *names;      /* n NUL-terminated paths back to back (owned) */
    int *owner;       /* [n]: reader that hashes file i, -1 = none (cached or unreadable) (owned) */
    uint64_t *sizes;  /* [n] (owned; rank 0) */
} share;

static void share_free(share *s)
{
    free(s->names);
    free(s->owner);
    free(s->sizes);
}

/* Rank 0: the files, the cached digests into out, the others shared among
 * n_readers; prints what it is about to do. */
static int plan_share(const md_job *job, int n_readers, int progress, md_prov_digests *out, share *s, md_error *err)
{
    if (md_prov_list_inputs(job, out, err) != MD_OK) return MD_ERR;
    int n = out->n, todo = 0;
    size_t bytes = 1;
    for (int i = 0; i < n; i++) bytes += strlen(out->paths[i]) + 1;
    s->names = malloc(bytes);
    s->owner = malloc((size_t)(n ? n : 1) * sizeof *s->owner);
    s->sizes = calloc((size_t)(n ? n : 1), sizeof *s->sizes);
    uint64_t *left = calloc((size_t)(n ? n : 1), sizeof *left); /* owned: sizes of the files to read */
    int *idx = malloc((size_t)(n ? n : 1) * sizeof *idx), *who = malloc((size_t)(n ? n : 1) * sizeof *who); /* owned */
    if (!s->names || !s->owner || !s->sizes || !left || !idx || !who) {
        free(left), free(idx), free(who);
        return md_error_set(err, "out of memory");
    }
    char user[4096];
    md_filehash_default_dir(user, sizeof user);
    uint64_t total = 0, cached_bytes = 0;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        struct stat st;
        memcpy(s->names + off, out->paths[i], strlen(out->paths[i]) + 1);
        off += strlen(out->paths[i]) + 1;
        s->sizes[i] = stat(out->paths[i], &st) == 0 ? (uint64_t)st.st_size : 0;
        total += s->sizes[i];
        s->owner[i] = -1;
        if (md_filehash_lookup(out->paths[i], user, out->output_dir, out->hex[i])) cached_bytes += s->sizes[i];
        else if (access(out->paths[i], R_OK) == 0) left[todo] = s->sizes[i], idx[todo++] = i;
    }
    md_filehash_assign(left, todo, n_readers, who);
    for (int j = 0; j < todo; j++) s->owner[idx[j]] = who[j];
    s->n = n;
    if (progress && n) {
        char t[32];
        md_progress_utc(t, sizeof t);
        fprintf(stderr, "mechdiff: %s hashing %d file%s (%.2f GB): %d/%d cached (%.2f GB not read; caches %s and %s)",
                t, n, n == 1 ? "" : "s", (double)total / 1e9, n - todo, n, (double)cached_bytes / 1e9, user[0] ? user : "off",
                out->output_dir[0] ? out->output_dir : "none next to the output");
        if (todo)
            fprintf(stderr, ", %d to read (%.2f GB) by %d reader%s\n", todo,
                    (double)(total - cached_bytes) / 1e9, n_readers < todo ? n_readers : todo,
                    (n_readers < todo ? n_readers : todo) == 1 ? "" : "s");
        else
            fputc('\n', stderr);
    }
    free(left), free(idx), free(who);
    return MD_OK;
}

/* Every reader: hashes the files it owns into hexbuf[i] (zero otherwise). */
static void read_share(const share *s, int me, const char *output_dir, int verbose, unsigned char *hexbuf)
{
    const char **paths = calloc((size_t)(s->n ? s->n : 1), sizeof *paths);  /* owned; strings in s->names */
    int *at = calloc((size_t)(s->n ? s->n : 1), sizeof *at), m = 0;        /* owned */
    char(*hex)[HEX] = calloc((size_t)(s->n ? s->n : 1), sizeof *hex);        /* owned */
    const char *p = s->names;
    for (int i = 0; paths && at && i < s->n; p += strlen(p) + 1, i++)
        if (s->owner[i] == me) paths[m] = p, at[m++] = i;
    md_filehash_opts opt = {.output_dir = output_dir, .progress = verbose ? "mechdiff: " : NULL};
    md_error err;
    md_error_clear(&err);
    if (paths && at && hex && m && md_filehash_many(paths, m, hex, &opt, NULL, &err) == MD_OK)
        for (int j = 0; j < m; j++) memcpy(hexbuf + (size_t)at[j] * HEX, hex[j], HEX);
    else if (m && verbose)
        fprintf(stderr, "mechdiff: rank 0: %s (rank 0 tries again)\n", err.msg);
    free(paths);
    free(at);
    free(hex);
}

/* The sharing among the readers (one per node; rank 0 is reader 0). */
static int run_readers(const md_job *job, MPI_Comm readers, int progress, md_prov_digests *out, md_error *err)
{
    int me, n_readers, rc = MD_OK;
    MPI_Comm_rank(readers, &me);
    MPI_Comm_size(readers, &n_readers);
    share s = {0};
    double t0 = md_clock_seconds();
    if (me == 0 && plan_share(job, n_readers, progress, out, &s, err) != MD_OK) {
        rc = MD_ERR;
        s.n = -1;
    }
    long long head[2] = {s.n, 0};
    if (me == 0 && s.n > 0)
        for (int i = 0; i < s.n; i++) head[1] += (long long)strlen(out->paths[i]) + 1;
    MPI_Bcast(head, 2, MPI_LONG_LONG, 0, readers);
    s.n = (int)head[0];
    if (s.n <= 0) {
        share_free(&s);
        return rc;
    }
    if (me != 0) {
        s.names = malloc((size_t)head[1]);
        s.owner = malloc((size_t)s.n * sizeof *s.owner);
        if (!s.names || !s.owner) MPI_Abort(readers, 1); /* a few kB: nothing sensible is left to do */
    }
    MPI_Bcast(s.names, (int)head[1], MPI_CHAR, 0, readers);
    MPI_Bcast(s.owner, s.n, MPI_INT, 0, readers);
    unsigned char *mine = calloc((size_t)s.n, HEX), *all = me == 0 ? calloc((size_t)s.n, HEX) : NULL; /* owned */
    if (!mine || (me == 0 && !all)) MPI_Abort(readers, 1);
    char odir[4096];
    md_filehash_output_dir(md_job_output(job), odir, sizeof odir);
    read_share(&s, me, odir, progress && me == 0, mine);
    MPI_Reduce(mine, all, s.n * HEX, MPI_UNSIGNED_CHAR, MPI_BOR, 0, readers); /* one owner per file: OR = gather */
    int got = 0;
    uint64_t bytes = 0;
    for (int i = 0; me == 0 && i < s.n; i++)
        if (s.owner[i] >= 0 && all[(size_t)i * HEX] && all[(size_t)i * HEX + HEX - 1] == '\0') {
            memcpy(out->hex[i], all + (size_t)i * HEX, HEX);
            got++, bytes += s.sizes[i];
        }
    if (me == 0 && progress && n_readers > 1 && got) {
        char t[32];
        double dt = md_clock_seconds() - t0;
        md_progress_utc(t, sizeof t);
        fprintf(stderr, "mechdiff: %s hashed %d files (%.2f GB) by %d readers in %.1f s (%.2f GB/s together)\n", t, got,
                (double)bytes / 1e9, n_readers, dt, dt > 0 ? (double)bytes / 1e9 / dt : 0.0);
    }
    free(mine);
    free(all);
    share_free(&s);
    return rc;
}

int md_hashshare_run(const md_job *job, MPI_Comm comm, int progress, md_prov_digests *out, md_error *err)
{
    int rank, node_rank;
    MPI_Comm_rank(comm, &rank);
    memset(out, 0, sizeof *out);
    MPI_Comm node = MPI_COMM_NULL, readers = MPI_COMM_NULL;
    MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &node_rank);
    MPI_Comm_free(&node);
    const char *mode = getenv("MECHDIFF_HASH_READERS");
    if (mode && strcmp(mode, "rank") == 0) node_rank = 0; /* every rank reads (parallel filesystems; tests) */
    /* rank 0 is the lowest rank of its node, so reader 0 */
    MPI_Comm_split(comm, node_rank == 0 ? 0 : MPI_UNDEFINED, rank, &readers);
    if (readers == MPI_COMM_NULL) return MD_OK;
    int rc = run_readers(job, readers, progress, out, err);
    MPI_Comm_free(&readers);
    return rc;
}
