/* runner_job.c — the job life cycle around the coordinator (see
 * include/mechdiff/runner.h and runner/coord.h): load and share the job,
 * lock the output, recover the journal of a killed run, and free the
 * coordinator. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "mechdiff/clock.h"
#include "runner/coord.h"

/* Rank 0: parse, validate, resolve output and part; returns the YAML text. */
int md_coord_load_job(coord *c, md_error *err)
{
    if (md_job_parse_file(c->opts->job_path, &c->job, err) != MD_OK) return MD_ERR;
    if (md_tokcache_create(&c->toks, err) != MD_OK || md_job_validate(c->job, c->toks, err) != MD_OK) return MD_ERR;
    c->part_index = (int)md_params_int(&c->job->runtime, "array_index");
    c->part_count = (int)md_params_int(&c->job->runtime, "array_count");
    if (c->opts->part_count > 0) {
        c->part_index = c->opts->part_index;
        c->part_count = c->opts->part_count;
    }
    if (c->part_count <= 0) {
        c->part_index = -1;
        c->part_count = 0;
    } else if (c->part_index < 0 || c->part_index >= c->part_count) {
        return md_error_set(err, "part %d/%d: the index must be in [0, %d)", c->part_index, c->part_count,
                            c->part_count);
    }
    char out[4096]; /* -o as given, or the job's output (with --part: OUT.part<i>of<n>.h5) */
    const char *given = c->opts->output ? c->opts->output : md_job_output(c->job);
    int n = snprintf(out, sizeof out, "%s", given);
    if (!c->opts->output && c->part_count > 0 && n >= 0 && n < (int)sizeof out) {
        char *dot = strrchr(out, '.');
        size_t stem = dot && strcmp(dot, ".h5") == 0 ? (size_t)(dot - out) : (size_t)n;
        n = snprintf(out + stem, sizeof out - stem, ".part%dof%d.h5", c->part_index, c->part_count);
        if (n >= 0) n += (int)stem;
    }
    if (n < 0 || n >= (int)sizeof out) /* cut, it would name another file */
        return md_error_set(err, "%.200s...: output path too long (%d bytes at most): give a shorter one", given,
                            (int)sizeof out - 1);
    /* every message names the output by the path run writes (README.md, "Paths in messages") */
    char canon[4096];
    if (md_outlock_make_canonical(out, canon, sizeof canon, err) != MD_OK ||
        md_job_set_output(c->job, canon, err) != MD_OK)
        return MD_ERR;
    c->job_yaml = md_job_to_yaml(c->job, 0);
    return c->job_yaml ? MD_OK : md_error_set(err, "out of memory");
}

/* Broadcasts the resolved job (length -1 = rank 0 failed). */
int md_coord_share_job(coord *c, int rank, int ok, md_error *err)
{
    long long len = ok && rank == 0 ? (long long)strlen(c->job_yaml) + 1 : -1;
    MPI_Bcast(&len, 1, MPI_LONG_LONG, 0, c->comm);
    if (len < 0) return MD_ERR;
    if (rank != 0) {
        c->job_yaml = malloc((size_t)len);
        if (!c->job_yaml) MPI_Abort(c->comm, MD_EXIT_ERROR);
    }
    MPI_Bcast(c->job_yaml, (int)len, MPI_CHAR, 0, c->comm);
    int part[2] = {c->part_index, c->part_count};
    MPI_Bcast(part, 2, MPI_INT, 0, c->comm);
    if (rank == 0) return MD_OK;
    c->part_index = part[0];
    c->part_count = part[1];
    if (md_job_parse_string(c->job_yaml, "<broadcast job>", NULL, 0, &c->job, err) != MD_OK)
        return md_error_prefix(err, "rank %d: parsing the broadcast job (a bug)", rank);
    return MD_OK;
}

/* Rank 0: one writer per output. A second run on the same output (a
 * duplicate submission, or ranks of a killed mpirun that are still alive)
 * would interleave snapshots and journal records; the kernel drops the lock
 * when its holder dies, so a crashed run never blocks the next one. */
int md_coord_lock_output(coord *c, md_error *err)
{
    return md_outlock_acquire(c->out, &c->lock_fd, &c->lock_held, err);
}

/* The next line of a resolved job (md_job_to_yaml) that the job hash
 * covers: comments, `output:` and the `runtime:` block are skipped. Copies
 * it into line and the name of the experiment it belongs to into exp
 * ("" before `experiments:`); returns 0 at the end of the text. */
static int next_job_line(const char **p, char *line, size_t cap, char *exp, size_t exp_cap)
{
    static const char name_key[] = "    name: ";
    int in_runtime = 0;
    while (**p) {
        const char *e = strchr(*p, '\n');
        size_t n = e ? (size_t)(e - *p) : strlen(*p);
        snprintf(line, cap, "%.*s", (int)(n < cap ? n : cap - 1), *p);
        *p += n + (e ? 1 : 0);
        if (line[0] != ' ') in_runtime = strcmp(line, "runtime:") == 0;
        if (in_runtime || line[0] == '#' || strncmp(line, "output:", 7) == 0) continue;
        if (strncmp(line, name_key, sizeof name_key - 1) == 0) {
            const char *v = line + sizeof name_key - 1;
            snprintf(exp, exp_cap, "%.*s", (int)strcspn(v + (*v == '"'), "\""), v + (*v == '"'));
        }
        return 1;
    }
    return 0;
}

/* What differs between the job stored in a results file and this one, for
 * the refusal to resume: the first line that differs, with its experiment,
 * or, when every line the hash covers is the same, the files it covers. */
static void job_difference(const char *stored, const char *now, char *out, size_t cap)
{
    char a[256], b[256], exp_a[128] = "", exp_b[128] = "";
    const char *pa = stored ? stored : "", *pb = now ? now : "";
    for (;;) {
        int ha = next_job_line(&pa, a, sizeof a, exp_a, sizeof exp_a);
        int hb = next_job_line(&pb, b, sizeof b, exp_b, sizeof exp_b);
        if (!ha && !hb) break;
        if (ha && hb && strcmp(a, b) == 0) continue;
        const char *ta = a, *tb = b;
        while (*ta == ' ' || *ta == '-') ta++;
        while (*tb == ' ' || *tb == '-') tb++;
        snprintf(out, cap, "the first difference%s%s%s: '%s' in the file, '%s' in this job",
                 exp_b[0] || exp_a[0] ? " (experiment '" : "", exp_b[0] ? exp_b : exp_a,
                 exp_b[0] || exp_a[0] ? "')" : "", ha ? ta : "(nothing)", hb ? tb : "(nothing)");
        return;
    }
    snprintf(out, cap, "the job's keys are the same, so a model's weights or config.json or a dataset file changed "
                       "(their hashes: /provenance/models/<role> and /provenance/datasets/<name> of the file)");
}

/* Rank 0: refuse another job's file, fold a killed run's journal. */
int md_coord_recover(coord *c, md_error *err)
{
    struct stat st;
    if (stat(c->out, &st) != 0) {
        unlink(c->jpath); /* a journal without its file predates the first snapshot */
        return MD_OK;
    }
    md_h5info info;
    if (md_h5out_info(c->out, &info, err) != MD_OK) {
        md_error what = *err; /* never replaced, even with --force-new: it may be someone's other file */
        return md_error_set(err, "%.1800s (run leaves it as it is, also with --force-new: use another -o, or move it "
                            "away)", what.msg);
    }
    if (info.layout != MD_RESULTS_LAYOUT && !c->opts->force_new) {
        md_error_set(err, "%s was written in results layout %d (mechdiff %s); this mechdiff writes layout %d "
                     "(include/mechdiff/h5out.h): refusing to resume it; finish it with the mechdiff that "
                     "started it, or use another -o, or --force-new to start over",
                     c->out, info.layout, info.mechdiff_version, MD_RESULTS_LAYOUT);
        md_h5out_info_free(&info);
        return MD_ERR;
    }
    int same = strcmp(info.job_sha256, c->identity) == 0 && info.part_index == c->part_index &&
               info.part_count == c->part_count;
    char changed[700] = "";
    if (!same && !c->opts->force_new) job_difference(info.job_yaml, c->job_yaml, changed, sizeof changed);
    md_h5out_info_free(&info);
    if (!same && !c->opts->force_new) {
        if (info.part_count != c->part_count || info.part_index != c->part_index)
            return md_error_set(err, "%s holds part %d/%d of a job, this run is part %d/%d: refusing to mix them "
                                "(another -o, or --force-new to start over)", c->out, info.part_index,
                                info.part_count, c->part_index, c->part_count);
        return md_error_set(err, "%s was written by a different job (job hash %.12s, this job %.12s: parameters, "
                            "models or datasets changed; %s): refusing to resume; use another -o, or --force-new "
                            "to start over", c->out, info.job_sha256, c->identity, changed);
    }
    if (!same) {
        fprintf(stderr, "mechdiff: rank 0: --force-new: replacing %s\n", c->out);
        unlink(c->out);
        unlink(c->jpath);
        return MD_OK;
    }
    if (md_prov_check_resume(c->out, &c->numerics, c->opts->allow_mixed_numerics, err) != MD_OK) return MD_ERR;
    c->generation = info.generation;
    uint64_t jgen = 0;
    int64_t n = 0;
    int torn = 0;
    if (md_journal_replay(c->jpath, &jgen, NULL, NULL, &n, &torn, err) != MD_OK) return MD_ERR;
    if (n > 0 && jgen == c->generation) {
        if (c->opts->progress)
            fprintf(stderr, "mechdiff: rank 0: recovering %lld finished units from %s\n", (long long)n, c->jpath);
        return md_coord_snapshot(c, "recovered", err);
    }
    return MD_OK;
}

void md_coord_free(coord *c)
{
    free(c->send_req);
    free(c->send_buf);
    for (int i = 0; c->exps && c->job && i < c->job->n_exps; i++) {
        md_blob_free(&c->exps[i].input);
        md_plan_free(&c->exps[i].plan);
        free(c->exps[i].dsets);
        free(c->exps[i].done);
    }
    free(c->exps);
    free(c->queue);
    free(c->in_flight);
    for (int i = 0; c->have_stage && i < c->world; i++) free(c->have_stage[i]);
    free(c->have_stage);
    md_kind_free_opts(c->job, c->exp_opts);
    md_tokcache_free(c->toks);
    md_journal_close(c->journal);
    if (c->lock_fd > 0) md_outlock_release(c->out, c->lock_fd, 0);
    md_prov_free(c->models, c->n_models, c->data);
    md_prov_free_numerics(&c->numerics);
    if (c->self.exps) md_worker_free(&c->self);
    free(c->job_yaml);
    md_job_free(c->job);
}

/* An error writing the output on a full disk (or past a file size or quota
 * limit) says so and what to do: the message names a file of the output
 * and holds the system's reason, or says a write to it failed (HDF5 gives
 * no reason) while its folder has less room than a snapshot needs (about
 * twice OUT.h5). */
void md_coord_explain_space(const coord *c, md_error *err)
{
    if (!c->out[0] || !strstr(err->msg, c->out)) return;
    int full = strstr(err->msg, strerror(ENOSPC)) || strstr(err->msg, strerror(EDQUOT)) ||
               strstr(err->msg, strerror(EFBIG));
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", c->out);
    char *slash = strrchr(dir, '/');
    if (slash) slash[slash == dir] = '\0';
    struct statvfs vfs;
    struct stat st;
    double free_mb = statvfs(dir, &vfs) == 0 ? (double)vfs.f_bavail * (double)vfs.f_frsize / 1e6 : -1;
    double need_mb = stat(c->out, &st) == 0 ? 2.0 * (double)st.st_size / 1e6 + 1 : 1;
    if (!full && !(strstr(err->msg, "failed") && free_mb >= 0 && free_mb < need_mb)) return;
    size_t n = strlen(err->msg);
    snprintf(err->msg + n, sizeof err->msg - n,
             "\nmechdiff: the disk is full or a size limit was reached: %s has %.1f MB free, a snapshot needs about "
             "%.1f MB (twice OUT.h5); free space there (or raise the quota or `ulimit -f`), then run the same command "
             "again: it resumes, keeping every unit in OUT.h5 and OUT.h5.journal (`mechdiff status %s`)",
             dir, free_mb < 0 ? 0 : free_mb, need_mb, c->out);
}

/* Units still out on the workers (sent, result not received). */
static int64_t units_out(const coord *c)
{
    int64_t n = 0;
    for (int w = 0; c->in_flight && w < c->world; w++) n += c->in_flight[w];
    return n;
}

/* A worker holding units computes each and sends its result (a blocking
 * send, by rendezvous when big) before it reads the stop, while rank 0 may
 * be blocked sending it a unit: so rank 0 goes on receiving the results
 * still out (dropped: the run has ended; a resume computes them again)
 * until every unit message is delivered and every result is in, then stops
 * the workers. A run that ended on an error with units out (a full disk)
 * hung here before. After runtime.stop_grace s it gives up: prints err (the
 * run's error, if any) and calls MPI_Abort. */
int md_coord_recv_result(coord *c, unsigned char **buf, int *cap, int *n, int *src)
{
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(MPI_ANY_SOURCE, MD_TAG_RESULT, c->comm, &flag, &st);
    if (!flag) return 0;
    MPI_Get_count(&st, MPI_BYTE, n);
    if (*n > *cap) { /* an empty message (n 0) needs no buffer */
        unsigned char *g = realloc(*buf, (size_t)*n);
        if (!g) return -1;
        *buf = g;
        *cap = *n;
    }
    MPI_Recv(*buf, *n, MPI_BYTE, st.MPI_SOURCE, MD_TAG_RESULT, c->comm, MPI_STATUS_IGNORE);
    *src = st.MPI_SOURCE;
    return 1;
}

void md_coord_stop_workers(coord *c, int status, const md_error *err)
{
    double deadline = md_clock_seconds() + (c->job ? md_params_float(&c->job->runtime, "stop_grace") : 0);
    unsigned char *buf = NULL;
    int cap = 0;
    for (;;) {
        md_coord_reap_sends(c, 0);
        if (units_out(c) <= 0 && c->n_send == 0) break;
        int n = 0, src = 0, got = md_coord_recv_result(c, &buf, &cap, &n, &src);
        if (got < 0) MPI_Abort(c->comm, status);
        if (got > 0) {
            c->in_flight[src]--;
        } else if (md_clock_seconds() > deadline) {
            fprintf(stderr, "mechdiff: rank 0: %lld units still computing on the workers after the run ended; "
                            "aborting them (a resume computes them again)\n", (long long)units_out(c));
            if (status != MD_EXIT_OK && err->msg[0]) fprintf(stderr, "mechdiff: %s\n", err->msg); /* before the abort */
            MPI_Abort(c->comm, status);
        } else {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    free(buf);
    for (int w = 1; w < c->world; w++) MPI_Send(NULL, 0, MPI_BYTE, w, MD_TAG_STOP, c->comm);
}
