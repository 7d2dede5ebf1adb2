/* runner.c — the coordinator (rank 0) and md_run (see
 * include/mechdiff/runner.h; the job life cycle around it is runner_job.c).
 *
 * Crash safety, in one place:
 *  - OUT.h5 is only ever replaced by rename of a complete, closed, fsync'd
 *    OUT.h5.tmp (md_h5out_commit), so it is readable at every instant, also
 *    after kill -9 of every rank (what it holds is the last snapshot).
 *  - Each result is checked against the plan, then appended to
 *    OUT.h5.journal; the journal is fsync'd every runtime.flush_units units or
 *    flush_interval seconds. Only then does a unit count as finished (progress,
 *    status). A torn tail record (kill during write) fails its CRC and is
 *    dropped: that unit is simply computed again.
 *  - Snapshots (stage ends, every snapshot_interval s, exit) fold the journal
 *    into OUT.h5.tmp — a copy of OUT.h5, or OUT.h5.prev brought up to date
 *    (O(new data), also in a resumed run's first snapshot; why that is safe:
 *    src/runner/h5out.c): data first, then
 *    the unit's done flag and region,
 *    in the same file that is renamed atomically — a done flag can never be
 *    visible without its data. The journal then restarts at the snapshot's
 *    generation; a journal of an older generation is already in the file and
 *    is ignored, so no unit is applied or counted twice (and applying one
 *    twice would be harmless anyway: fixed hyperslab, flag not counter).
 *  - On start, a journal matching the file's generation is folded first, so
 *    resume sees everything that was durable when the job died.
 * Determinism: a unit's result depends only on (job, stage, input, unit);
 * stage inputs are recomputed by finish_stage from the file; so 1, 2 or N
 * ranks, and any number of interruptions, give the same datasets. */
#include "mechdiff/runner.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sys/file.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mechdiff/clock.h"
#include "mechdiff/experiment.h"
#include "mechdiff/h5out.h"
#include "mechdiff/hashshare.h"
#include "mechdiff/provenance.h"
#include "mechdiff/inflight.h"
#include "mechdiff/job.h"
#include "mechdiff/journal.h"
#include "mechdiff/outlock.h"
#include "mechdiff/result_check.h"
#include "mechdiff/snapfile.h"
#include "mechdiff/plan.h"
#include "mechdiff/progress.h"
#include "worker.h"
#include "mechdiff/shard.h"

#include "runner/coord.h"

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void md_run_journal_path(const char *output, char *buf, size_t len)
{
    snprintf(buf, len, "%s.journal", output);
}

static int in_part(const coord *c, int64_t unit)
{
    return c->part_count <= 0 || unit % c->part_count == c->part_index;
}

static void unit_name(const coord *c, int exp, int stage, int64_t unit, char *buf, size_t len)
{
    const md_exp_spec *e = &c->job->exps[exp];
    md_kind_ctx ctx = md_kind_ctx_of(c->job, c->exp_opts, exp);
    if (e->impl->unit_name)
        e->impl->unit_name(&ctx, stage, unit, buf, len);
    else
        snprintf(buf, len, "%s/stage %d/unit %lld", e->name, stage, (long long)unit);
}

/* ---- snapshots --------------------------------------------------------- */

typedef struct fold_ctx {
    coord *c;
    md_h5out *h;
    int catch_up;              /* the units are in the published file already */
} fold_ctx;

static int fold_record(void *arg, double time, const void *payload, size_t len, md_error *err)
{
    (void)time;
    fold_ctx *f = arg;
    md_unit_hdr hdr;
    if (len < sizeof hdr) return md_error_set(err, "journal record of %zu bytes", len);
    memcpy(&hdr, payload, sizeof hdr);
    if (hdr.exp >= (uint32_t)f->c->job->n_exps) return md_error_set(err, "journal record for experiment %u", hdr.exp);
    const char *exp = f->c->job->exps[hdr.exp].name;
    const void *result = (const char *)payload + sizeof hdr;
    if (f->catch_up) return md_h5out_catch_up(f->h, exp, (int)hdr.stage, hdr.unit, result, len - sizeof hdr, err);
    return md_h5out_apply(f->h, exp, (int)hdr.stage, hdr.unit, result, len - sizeof hdr, err);
}

static int all_done(const coord *c)
{
    for (int i = 0; i < c->job->n_exps; i++)
        if (c->exps[i].status == EXP_RUNNING) return 0;
    return 1;
}

/* Applies the journal at path when it is of generation gen; *used = 1 then.
 * catch_up: its units are in the published file (md_h5out_catch_up). */
static int fold_journal(coord *c, md_h5out *h, const char *path, uint64_t gen, int catch_up, int *used,
                        md_error *err)
{
    uint64_t jgen = 0;
    int64_t n_rec = 0;
    int torn = 0;
    fold_ctx f = {.c = c, .h = h, .catch_up = catch_up};
    struct stat st;
    *used = 0;
    if (lstat(path, &st) != 0) return MD_OK;
    if (md_journal_replay(path, &jgen, NULL, NULL, &n_rec, &torn, err) != MD_OK) {
        md_error_clear(err); /* unreadable (a link?): nothing to fold; creating it anew reports it */
        return MD_OK;
    }
    if (jgen != gen || (n_rec == 0 && torn)) return MD_OK;
    *used = 1;
    if (n_rec > 0 && md_journal_replay(path, &jgen, fold_record, &f, &n_rec, &torn, err) != MD_OK)
        return md_error_prefix(err, "folding %s", path);
    return MD_OK;
}

/* Starts the snapshot from OUT.h5.prev when the journals' headers say both
 * files are as published (generations g and g-1, their marks) and
 * OUT.h5.prev catches up with the journal of g-1; else *h = NULL. Also the
 * first snapshot of a run (a resume): it takes the provenance of OUT.h5. */
static int begin_from_previous(coord *c, const char *jprev, md_h5out **h, md_error *err)
{
    md_snapfile_mark cur, prev;
    uint64_t gen_cur = 0, gen_prev = 0;
    int used = 0;
    *h = NULL;
    if (c->generation < 1 || md_journal_head(c->jpath, &gen_cur, &cur) != MD_OK || gen_cur != c->generation ||
        md_journal_head(jprev, &gen_prev, &prev) != MD_OK || gen_prev != c->generation - 1)
        return MD_OK;
    if (md_h5out_begin_incremental(h, c->out, &cur, &prev, c->seg.id < 0, err) != MD_OK) return MD_ERR;
    if (*h && (fold_journal(c, *h, jprev, c->generation - 1, 1, &used, err) != MD_OK || !used)) {
        md_h5out_discard(*h); /* OUT.h5.prev cannot catch up: copy */
        *h = NULL;
        md_error_clear(err);
    }
    return MD_OK;
}

/* Folds the journal (when its generation matches the file) and pending stage
 * definitions into a new snapshot of OUT.h5; rotates the journal. The
 * snapshot starts from OUT.h5.prev plus OUT.h5.journal.prev when that is
 * possible (O(new data)), else from a copy of OUT.h5 (src/runner/h5out.c).
 * A run that ends with its work undone (stopped, error) keeps both as the
 * head start of its resume; a complete one removes them. */
int md_coord_snapshot(coord *c, const char *exit_reason, md_error *err)
{
    if (c->journal && md_journal_sync(c->journal, err) != MD_OK) return MD_ERR;
    char jprev[4300];
    snprintf(jprev, sizeof jprev, "%s.prev", c->jpath);
    int last = strcmp(exit_reason, "running") != 0 && strcmp(exit_reason, "recovered") != 0;
    int complete = last && all_done(c);
    md_h5out *h = NULL;
    int used = 0;
    if (begin_from_previous(c, jprev, &h, err) != MD_OK) return MD_ERR;
    if (!h && md_h5out_begin(&h, c->out, NULL, &c->prov, err) != MD_OK) return MD_ERR;
    struct stat st;
    if (stat(c->out, &st) == 0 && /* a journal can only extend an existing file */
        fold_journal(c, h, c->jpath, c->generation, 0, &used, err) != MD_OK) {
        md_h5out_discard(h);
        return MD_ERR;
    }
    for (int i = 0; i < c->job->n_exps; i++) {
        exp_state *e = &c->exps[i];
        if (!e->needs_define) continue;
        if (md_h5out_define(h, c->job->exps[i].name, i, c->job->exps[i].kind, &e->plan, err) != MD_OK) {
            md_h5out_discard(h);
            return MD_ERR;
        }
        e->needs_define = 0;
    }
    c->seg.end_time = wall_s();
    c->seg.exit = exit_reason;
    c->seg.finished = all_done(c);
    if (!complete) md_h5out_keep_previous(h);
    if (md_h5out_commit(h, &c->seg, err) != MD_OK) return MD_ERR;
    c->generation++;
    c->t_last_snapshot = md_clock_seconds();
    char prev[4200];
    md_snapfile_mark mark, prev_mark; /* the files as the next snapshot must find them */
    snprintf(prev, sizeof prev, "%s.prev", c->out);
    md_snapfile_mark_of(c->out, &mark);
    md_snapfile_mark_of(prev, &prev_mark); /* kept by this commit: for a journal.prev written empty */
    if (md_journal_rotate(&c->journal, c->jpath, jprev, c->generation, &mark, complete ? NULL : &prev_mark, err) !=
        MD_OK)
        return MD_ERR;
    if (complete) { /* the work is done: free the space of the head start; the journal is empty */
        md_h5out_drop_previous(c->out);
        unlink(jprev);
        md_journal_close(c->journal);
        c->journal = NULL;
        unlink(c->jpath);
    }
    return MD_OK;
}

/* ---- planning ---------------------------------------------------------- */

static int add_dsets(exp_state *e, md_error *err)
{
    md_dset *g = realloc(e->dsets, (size_t)(e->n_dsets + e->plan.n_dsets + 1) * sizeof *g);
    if (!g) return md_error_set(err, "out of memory");
    e->dsets = g;
    for (int i = 0; i < e->plan.n_dsets; i++) e->dsets[e->n_dsets++] = e->plan.dsets[i];
    return MD_OK;
}

static int queue_push(coord *c, queue_item it, md_error *err)
{
    if (c->q_len == c->q_cap) {
        int64_t cap = c->q_cap ? c->q_cap * 2 : 1024;
        queue_item *g = realloc(c->queue, (size_t)cap * sizeof *g);
        if (!g) return md_error_set(err, "out of memory (queue of %lld units)", (long long)cap);
        c->queue = g;
        c->q_cap = cap;
    }
    c->queue[c->q_len++] = it;
    return MD_OK;
}

static int cmp_item(const void *a, const void *b)
{
    const queue_item *x = a, *y = b;
    if (x->cost != y->cost) return x->cost > y->cost ? -1 : 1; /* costly first */
    if (x->exp != y->exp) return x->exp - y->exp;
    return x->unit < y->unit ? -1 : x->unit > y->unit;
}

/* Queues the not-done units of this part of e's current stage. */
static int queue_stage(coord *c, int exp, md_error *err)
{
    exp_state *e = &c->exps[exp];
    for (int64_t u = 0; u < e->plan.n_units; u++) {
        if (e->done[u] || !in_part(c, u)) continue;
        queue_item it = {.exp = exp, .stage = e->stage, .unit = u, .cost = e->plan.cost[u]};
        if (queue_push(c, it, err) != MD_OK) return MD_ERR;
    }
    qsort(c->queue + c->q_head, (size_t)(c->q_len - c->q_head), sizeof *c->queue, cmp_item);
    return MD_OK;
}

static int run_finish_stage(coord *c, int exp, int *done, md_blob *next, md_error *err)
{
    const md_exp_spec *spec = &c->job->exps[exp];
    exp_state *e = &c->exps[exp];
    *done = 1;
    if (!spec->impl->finish_stage) return MD_OK;
    md_kind_ctx ctx = md_kind_ctx_of(c->job, c->exp_opts, exp);
    md_reader *rd = NULL;
    if (md_reader_open(&rd, c->out, spec->name, err) != MD_OK) return MD_ERR;
    int rc = spec->impl->finish_stage(&ctx, e->stage, &e->input, rd, next, done, err);
    md_reader_close(rd);
    if (rc != MD_OK) md_error_prefix(err, "rank 0, %s, finish of stage %d", spec->name, e->stage);
    return rc;
}

/* Plans e's current stage and reads its done flags from the file. */
/* After every unit of the current stage is in: the kind's finish_stage
 * either ends the experiment (*done = 1) or gives the next stage's input,
 * which becomes current. */
static int close_stage(coord *c, int exp, int *done, md_error *err)
{
    exp_state *e = &c->exps[exp];
    md_blob next = {0};
    *done = 1;
    if (run_finish_stage(c, exp, done, &next, err) != MD_OK) return MD_ERR;
    if (*done) {
        md_blob_free(&next);
        e->status = EXP_DONE;
        md_progress_end_exp(c->progress, exp, e->stage);
        return MD_OK;
    }
    md_blob_free(&e->input);
    e->input = next;
    e->stage++;
    return MD_OK;
}

static int plan_stage(coord *c, int exp, md_error *err)
{
    const md_exp_spec *spec = &c->job->exps[exp];
    exp_state *e = &c->exps[exp];
    md_kind_ctx ctx = md_kind_ctx_of(c->job, c->exp_opts, exp);
    ctx.toks = c->toks; /* the start-up's tokenizers (NULL after it) */
    md_plan_free(&e->plan);
    md_plan_init(&e->plan, e->stage);
    e->plan.kind = spec->kind;
    if (spec->impl->plan(&ctx, e->stage, &e->input, &e->plan, err) != MD_OK) {
        if (e->stage == 0) return md_error_prefix(err, "rank 0, %s, plan of stage 0", spec->name);
        /* a later stage's input is what finish_stage read back from the file */
        return md_error_prefix(err, "rank 0, %s, plan of stage %d from stage %d's results in %s", spec->name,
                               e->stage, e->stage - 1, c->out);
    }
    if (e->plan.n_units < 1)
        return md_error_set(err, "rank 0, %s, plan of stage %d: no units (call md_plan_units)", spec->name, e->stage);
    if (md_plan_check_outputs(&e->plan, spec->kind, spec->impl->outputs, err) != MD_OK) return MD_ERR;
    if (add_dsets(e, err) != MD_OK) return MD_ERR;
    free(e->done);
    e->done = NULL;
    int64_t n = 0;
    struct stat st;
    if (stat(c->out, &st) == 0) {
        md_reader *rd = NULL;
        if (md_reader_open(&rd, c->out, spec->name, err) != MD_OK) return MD_ERR;
        int rc = md_reader_done(rd, e->stage, &e->done, &n, err);
        if (rc == MD_OK && e->done) rc = md_reader_check_plan(rd, &e->plan, err);
        md_reader_close(rd);
        if (rc != MD_OK) return MD_ERR;
    }
    if (e->done && n != e->plan.n_units)
        return md_error_set(err, "%s: %s stage %d has %lld units in the file but %lld in the plan (use --force-new)",
                            c->out, spec->name, e->stage, (long long)n, (long long)e->plan.n_units);
    if (!e->done) {
        e->done = calloc((size_t)e->plan.n_units, 1);
        if (!e->done) return md_error_set(err, "out of memory");
        e->needs_define = 1;
    }
    e->remaining = 0;
    for (int64_t u = 0; u < e->plan.n_units; u++) e->remaining += !e->done[u] && in_part(c, u);
    md_progress_set_stage(c->progress, exp, e->stage, e->plan.n_units, e->plan.cost, e->done);
    return MD_OK;
}

/* Moves e forward over stages that are complete in the file, planning the
 * first incomplete one. With define_now, new stage definitions are written
 * (a snapshot) before units are queued. */
static int advance(coord *c, int exp, int define_now, md_error *err)
{
    exp_state *e = &c->exps[exp];
    for (;;) {
        if (plan_stage(c, exp, err) != MD_OK) return MD_ERR;
        if (e->remaining > 0) break;
        int64_t all = 0;
        for (int64_t u = 0; u < e->plan.n_units; u++) all += e->done[u];
        if (all < e->plan.n_units) { /* this part is done; the rest belongs to other parts */
            e->status = EXP_PART_DONE;
            return MD_OK;
        }
        if (e->needs_define && md_coord_snapshot(c, "running", err) != MD_OK) return MD_ERR;
        int done = 0;
        if (close_stage(c, exp, &done, err) != MD_OK) return MD_ERR;
        if (done) return MD_OK;
    }
    if (define_now && e->needs_define && md_coord_snapshot(c, "running", err) != MD_OK) return MD_ERR;
    return MD_OK;
}

/* ---- results ----------------------------------------------------------- */

static int maybe_flush(coord *c, int force, md_error *err)
{
    double t = md_clock_seconds();
    if (!c->journal || !md_journal_pending(c->journal)) return MD_OK;
    if (!force && md_journal_pending(c->journal) < md_params_int(&c->job->runtime, "flush_units") &&
        t - c->t_last_flush < md_params_float(&c->job->runtime, "flush_interval"))
        return MD_OK;
    c->t_last_flush = t;
    return md_journal_sync(c->journal, err);
}

static void set_failed(coord *c, const char *where, const char *what)
{
    if (c->failed) return;
    c->failed = 1;
    snprintf(c->fail.msg, sizeof c->fail.msg, "%.300s: %.1700s", where, what);
}

static int stage_end(coord *c, int exp, md_error *err)
{
    if (md_coord_snapshot(c, "running", err) != MD_OK) return MD_ERR; /* the stage's data is in the file now */
    exp_state *e = &c->exps[exp];
    int64_t all = 0;
    for (int64_t u = 0; u < e->plan.n_units; u++) all += e->done[u];
    if (all < e->plan.n_units) {
        e->status = EXP_PART_DONE;
        return MD_OK;
    }
    int done = 0;
    if (close_stage(c, exp, &done, err) != MD_OK) return MD_ERR;
    if (done) return MD_OK;
    if (advance(c, exp, 1, err) != MD_OK) return MD_ERR;
    return e->status == EXP_RUNNING ? queue_stage(c, exp, err) : MD_OK;
}

/* A result message from rank src (the journal record is the same bytes). */
static int handle_result(coord *c, int src, const unsigned char *msg, size_t len, md_error *err)
{
    md_unit_hdr hdr;
    char name[256], where[320];
    if (len < sizeof hdr) return md_error_set(err, "rank %d sent a %zu-byte result", src, len);
    memcpy(&hdr, msg, sizeof hdr);
    if (hdr.exp >= (uint32_t)c->job->n_exps) return md_error_set(err, "rank %d: result for experiment %u", src, hdr.exp);
    c->in_flight[src]--;
    unit_name(c, (int)hdr.exp, (int)hdr.stage, hdr.unit, name, sizeof name);
    md_inflight_remove(c->inflight, src, name);
    snprintf(where, sizeof where, "rank %d, unit %s", src, name);
    if (hdr.status != 0) {
        char text[1800];
        snprintf(text, sizeof text, "%.*s", (int)(len - sizeof hdr), (const char *)msg + sizeof hdr);
        set_failed(c, where, text);
        return MD_OK;
    }
    exp_state *e = &c->exps[hdr.exp];
    if ((int)hdr.stage != e->stage || hdr.unit < 0 || hdr.unit >= e->plan.n_units || e->done[hdr.unit])
        return md_error_set(err, "%s: unexpected result (stage %u; runner bug)", where, hdr.stage);
    size_t pos = 0;
    md_piece pc;
    int r;
    md_error perr;
    const unsigned char *bytes = msg + sizeof hdr;
    while ((r = md_result_next(bytes, len - sizeof hdr, &pos, &pc, &perr)) == 1)
        if (md_result_check_piece(&pc, e->dsets, e->n_dsets, &perr) != MD_OK) { /* fits the plan, no NaN */
            r = MD_ERR;
            break;
        }
    if (r == MD_ERR) {
        set_failed(c, where, perr.msg);
        return MD_OK;
    }
    if (md_journal_append(c->journal, wall_s(), msg, len, err) != MD_OK) return MD_ERR;
    e->done[hdr.unit] = 1;
    e->remaining--;
    c->done_units++;
    c->run_units++;
    md_progress_unit_done(c->progress, (int)hdr.exp, (int)hdr.stage, e->plan.cost[hdr.unit]);
    if (maybe_flush(c, 0, err) != MD_OK) return MD_ERR;
    if (e->remaining == 0 && !c->failed) return stage_end(c, (int)hdr.exp, err);
    return MD_OK;
}

/* Frees the buffers of unit messages whose sends completed; wait != 0
 * blocks until all have (at the end, when every worker is receiving). */
void md_coord_reap_sends(coord *c, int wait)
{
    int k = 0;
    for (int i = 0; i < c->n_send; i++) {
        int done = 0;
        if (wait) MPI_Wait(&c->send_req[i], MPI_STATUS_IGNORE), done = 1;
        else MPI_Test(&c->send_req[i], &done, MPI_STATUS_IGNORE);
        if (done) {
            free(c->send_buf[i]);
        } else {
            c->send_req[k] = c->send_req[i];
            c->send_buf[k++] = c->send_buf[i];
        }
    }
    c->n_send = k;
}

/* Sends the next queued unit to rank w (with the stage input if w lacks it).
 * Non-blocking: a unit message with a large stage input goes by rendezvous,
 * and a blocking send would deadlock against a worker blocked sending a big
 * result back; rank 0 must always stay free to receive. */
static int send_unit(coord *c, int w, md_error *err)
{
    queue_item it = c->queue[c->q_head++];
    exp_state *e = &c->exps[it.exp];
    md_unit_hdr hdr = {.exp = (uint32_t)it.exp, .stage = (uint32_t)it.stage, .unit = it.unit};
    size_t extra = 0;
    if (c->have_stage[w][it.exp] != it.stage) {
        hdr.reserved = 1;
        extra = e->input.size;
        c->have_stage[w][it.exp] = it.stage;
    }
    if (c->n_send == c->cap_send) {
        int cap = c->cap_send ? 2 * c->cap_send : 64;
        MPI_Request *r = realloc(c->send_req, (size_t)cap * sizeof *r);
        if (r) c->send_req = r;
        unsigned char **b = r ? realloc(c->send_buf, (size_t)cap * sizeof *b) : NULL;
        if (!b) return md_error_set(err, "rank 0: out of memory");
        c->send_buf = b;
        c->cap_send = cap;
    }
    unsigned char *buf = malloc(sizeof hdr + extra);
    if (!buf) return md_error_set(err, "rank 0: out of memory");
    memcpy(buf, &hdr, sizeof hdr);
    if (extra) memcpy(buf + sizeof hdr, e->input.data, extra);
    MPI_Isend(buf, (int)(sizeof hdr + extra), MPI_BYTE, w, MD_TAG_UNIT, c->comm, &c->send_req[c->n_send]);
    c->send_buf[c->n_send++] = buf;
    c->in_flight[w]++;
    if (c->inflight) {
        char name[256];
        unit_name(c, it.exp, it.stage, it.unit, name, sizeof name);
        md_inflight_add(c->inflight, w, name);
    }
    return MD_OK;
}

/* One-rank runs: rank 0 computes the next unit itself. */
static int compute_local(coord *c, md_error *err)
{
    queue_item it = c->queue[c->q_head++];
    exp_state *e = &c->exps[it.exp];
    if (!md_worker_has_input(&c->self, it.exp, it.stage) &&
        md_worker_set_input(&c->self, it.exp, it.stage, e->input.data, e->input.size, err) != MD_OK)
        return MD_ERR;
    const unsigned char *msg;
    size_t len;
    if (md_worker_compute(&c->self, it.exp, it.stage, it.unit, &msg, &len) != MD_OK)
        return md_error_set(err, "rank 0: out of memory");
    c->in_flight[0]++;
    return handle_result(c, 0, msg, len, err);
}

static int64_t total_in_flight(const coord *c)
{
    int64_t n = 0;
    for (int i = 0; i < c->world; i++) n += c->in_flight[i];
    return n;
}

/* The dispatch loop. Returns MD_OK; *abandoned = units still out on workers
 * when it had to give up waiting (stop/failure grace elapsed). */
static int dispatch(coord *c, int64_t *abandoned, md_error *err)
{
    int depth = c->opts->max_in_flight > 0 ? c->opts->max_in_flight : 2;
    double grace = md_params_float(&c->job->runtime, "stop_grace"), deadline = 0;
    double snap_every = md_params_float(&c->job->runtime, "snapshot_interval");
    int stopping = 0, idle = 0;
    unsigned char *buf = NULL;
    int cap = 0;
    *abandoned = 0;
    for (;;) {
        if (!stopping && ((c->opts->stop && *c->opts->stop) || c->failed)) {
            stopping = 1;
            deadline = md_clock_seconds() + grace;
            if (c->opts->progress && !c->failed) {
                md_progress_break_line(c->progress);
                fprintf(stderr, "mechdiff: rank 0: stop requested: finishing %lld units in flight (up to %.0f s), "
                                "then saving\n", (long long)total_in_flight(c), grace);
                char *held = c->inflight ? md_inflight_read(c->out) : NULL; /* names them if a rank died */
                if (held) fprintf(stderr, "mechdiff: rank 0: in flight now:\n%s", held);
                free(held);
            }
        }
        if (c->world == 1) {
            if (stopping || c->q_head == c->q_len) break;
            if (compute_local(c, err) != MD_OK) return MD_ERR;
        } else {
            for (int w = 1; !stopping && w < c->world && c->q_head < c->q_len; w += c->shard_k)
                while (c->in_flight[w] < depth && c->q_head < c->q_len)
                    if (send_unit(c, w, err) != MD_OK) return MD_ERR;
            md_coord_reap_sends(c, 0);
            int64_t out = total_in_flight(c);
            if (out == 0 && (stopping || c->q_head == c->q_len)) break;
            if (stopping && md_clock_seconds() > deadline) {
                *abandoned = out;
                break;
            }
            int n = 0, src = 0, got = md_coord_recv_result(c, &buf, &cap, &n, &src);
            if (got < 0) {
                free(buf);
                return md_error_set(err, "rank 0: out of memory for a %d-byte result", n);
            }
            if (got > 0) {
                if (handle_result(c, src, buf, (size_t)n, err) != MD_OK) {
                    free(buf);
                    return MD_ERR;
                }
                idle = 0;
            } else if (++idle > 200) {
                struct timespec ts = {0, 100000}; /* nothing to do: yield the core to the workers */
                nanosleep(&ts, NULL);
            }
        }
        if (maybe_flush(c, 0, err) != MD_OK) break;
        md_progress_tick(c->progress, 0);
        if (!stopping && md_clock_seconds() - c->t_last_snapshot > snap_every && md_coord_snapshot(c, "running", err) != MD_OK) break;
    }
    free(buf);
    return err->msg[0] ? MD_ERR : MD_OK;
}

/* The units the previous run left in flight (reported: they are computed
 * again) and this run's list of its own (OUT.h5.inflight; a one-rank run
 * keeps none and drops the old one). */
static int start_inflight(coord *c, md_error *err)
{
    char *left = md_inflight_read(c->out);
    if (left && c->opts->progress)
        fprintf(stderr, "mechdiff: rank 0: the previous run on %s stopped while these units were in flight "
                        "(they are computed again now):\n%s", c->out, left);
    free(left);
    if (c->world == 1) {
        md_inflight_drop(c->out);
        return MD_OK;
    }
    return md_inflight_open(&c->inflight, c->out, c->world, err);
}

/* Rank 0's state for a run: the output's canonical path, the per-rank
 * tables, the worker of a one-rank run, provenance, numerics, the segment. */
static int coord_setup(coord *c, md_error *err)
{
    int n = c->job->n_exps;
    if (md_outlock_resolve(md_job_output(c->job), c->out, sizeof c->out, err) != MD_OK) return MD_ERR;
    md_run_journal_path(c->out, c->jpath, sizeof c->jpath);
    c->exps = calloc((size_t)n, sizeof *c->exps);
    c->in_flight = calloc((size_t)c->world, sizeof *c->in_flight);
    c->have_stage = calloc((size_t)c->world, sizeof *c->have_stage);
    if (!c->exps || !c->in_flight || !c->have_stage) return md_error_set(err, "rank 0: out of memory");
    for (int w = 0; w < c->world; w++) {
        c->have_stage[w] = malloc((size_t)n * sizeof **c->have_stage);
        if (!c->have_stage[w]) return md_error_set(err, "rank 0: out of memory");
        for (int i = 0; i < n; i++) c->have_stage[w][i] = -1;
    }
    if (!c->exp_opts) return md_error_set(err, "rank 0: out of memory (options)"); /* md_run binds them */
    if (c->world == 1 && md_worker_init(&c->self, c->job, 0, err) != MD_OK) return MD_ERR;
    if (md_prov_collect_with(c->job, &c->digests, &c->models, &c->n_models, &c->data, &c->n_data, c->identity,
                             c->opts->progress, err) != MD_OK)
        return md_error_prefix(err, "rank 0");
    c->prov = (md_provenance){.job_yaml = c->job_yaml, .job_sha256 = c->identity,
                              .job_name = md_params_str(&c->job->top, "name"), .part_index = c->part_index,
                              .part_count = c->part_count, .models = c->models, .n_models = c->n_models,
                              .data = c->data, .n_data = c->n_data};
    if (md_prov_resolve_numerics(c->job, &c->numerics, err) != MD_OK) return md_error_prefix(err, "rank 0");
    c->seg = (md_segment){.id = -1, .start_time = wall_s(), .world_size = c->world, .numerics = &c->numerics};
    gethostname(c->seg.hostname, sizeof c->seg.hostname - 1);
    c->t_start = c->t_last_flush = c->t_last_snapshot = md_clock_seconds();
    return MD_OK;
}

/* Locks the output, recovers what an earlier run left (file and journal),
 * plans every experiment's first stage, writes the first snapshot and
 * queues the units not done yet. */
static int coord_start(coord *c, md_error *err)
{
    int n = c->job->n_exps;
    if (md_coord_lock_output(c, err) != MD_OK || md_coord_recover(c, err) != MD_OK) return MD_ERR;
    if (start_inflight(c, err) != MD_OK) return MD_ERR;
    for (int i = 0; i < n; i++)
        if (advance(c, i, 0, err) != MD_OK) return MD_ERR;
    if (md_coord_snapshot(c, "running", err) != MD_OK) return MD_ERR; /* creates the file, defines stages */
    for (int i = 0; i < n; i++) {
        exp_state *e = &c->exps[i];
        for (int64_t u = 0; u < e->plan.n_units; u++) c->done_units += e->done[u] && in_part(c, u);
        if (e->status == EXP_RUNNING && queue_stage(c, i, err) != MD_OK) return MD_ERR;
    }
    md_progress_print_plan(c->progress, c->toks);
    md_tokcache_free(c->toks); /* the start-up is over: later plans load what they need */
    c->toks = NULL;
    int64_t in_file = 0, planned = 0; /* every stage's, as the plan line counts them (done_units: the current stages') */
    if (c->progress) md_progress_counts(c->progress, &in_file, &planned, NULL);
    if (c->opts->progress && in_file)
        fprintf(stderr, "mechdiff: rank 0: resuming %s: %lld units already done\n", c->out, (long long)in_file);
    return MD_OK;
}

/* After the dispatch loop (rc its result, abandoned the units left out on
 * workers): the last snapshot, the end line, the lock and in-flight list,
 * and the exit code of the run. */
static int coord_finish(coord *c, int rc, int64_t abandoned, md_run_stats *stats, md_error *err)
{
    int n = c->job->n_exps;
    md_progress_tick(c->progress, 1);
    int stopped = c->opts->stop && *c->opts->stop;
    const char *why = rc != MD_OK || c->failed ? "error" : stopped && !all_done(c) ? "stopped (signal)"
                      : c->part_count > 0 ? "part done" : "finished";
    md_error serr;
    md_error_clear(&serr);
    if (md_coord_snapshot(c, why, &serr) != MD_OK) { /* results in the journal stay safe for the next run */
        if (rc == MD_OK) *err = serr;
        rc = MD_ERR;
    }
    stats->finished = all_done(c) && !c->failed && rc == MD_OK;
    int n_dsets = 0;
    for (int i = 0; i < n; i++) n_dsets += c->exps[i].n_dsets;
    md_progress_print_end(c->progress, why, c->out, n_dsets);
    md_inflight_close(c->inflight, total_in_flight(c) == 0);
    c->inflight = NULL;
    if (stats->finished) { /* nothing of the run is left beside OUT.h5 */
        md_outlock_release(c->out, c->lock_fd, 1);
        c->lock_fd = -1;
    }
    if (abandoned > 0) {
        fprintf(stderr, "mechdiff: rank 0: %lld units still computing after the grace period; their results are "
                        "dropped (recomputed on resume); aborting the other ranks\n", (long long)abandoned);
        MPI_Abort(c->comm, c->failed || rc != MD_OK ? MD_EXIT_ERROR : MD_EXIT_REQUEUE);
    }
    if (rc != MD_OK) return MD_EXIT_ERROR;
    if (c->failed) {
        *err = c->fail;
        return MD_EXIT_ERROR;
    }
    if (!stats->finished && stopped) return MD_EXIT_REQUEUE;
    return MD_EXIT_OK;
}

static int coordinator(coord *c, md_run_stats *stats, md_error *err)
{
    if (coord_setup(c, err) != MD_OK || coord_start(c, err) != MD_OK) return MD_ERR;
    int64_t abandoned = 0;
    double t0 = md_clock_seconds();
    int rc = dispatch(c, &abandoned, err);
    stats->units = c->run_units;
    stats->seconds = md_clock_seconds() - t0;
    return coord_finish(c, rc, abandoned, stats, err);
}

int md_run(const md_run_opts *opts, MPI_Comm comm, md_run_stats *stats, md_error *err)
{
    coord c;
    memset(&c, 0, sizeof c);
    memset(stats, 0, sizeof *stats);
    md_error_clear(err);
    c.opts = opts;
    c.comm = comm;
    int rank;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &c.world);
    int ok = rank != 0 || md_coord_load_job(&c, err) == MD_OK;
    if (md_coord_share_job(&c, rank, ok, err) != MD_OK) {
        int refused = !c.job_yaml; /* rank 0 refused the job: every rank exits as it does */
        md_coord_free(&c);
        return refused ? MD_EXIT_USAGE : MD_EXIT_ERROR;
    }
    /* Layer-sharded model copies: worker ranks form groups of shard_k
     * consecutive ranks; the first of each leads (gets units, runs the
     * kinds), the others serve its model's later layers. */
    c.shard_k = (int)md_params_int(&c.job->runtime, "shard_ranks");
    if (c.shard_k > 1 && (c.world == 1 || (c.world - 1) % c.shard_k != 0)) {
        if (rank == 0)
            md_error_set(err, "runtime.shard_ranks is %d: run with 1 + a multiple of %d ranks (rank 0 coordinates, "
                              "each group of %d holds one copy of the models), not %d",
                         c.shard_k, c.shard_k, c.shard_k, c.world);
        md_coord_free(&c);
        return MD_EXIT_USAGE;
    }
    if (c.shard_k < 1) c.shard_k = 1;
    if (rank == 0) { /* the first line, before the start-up hashing; no progress if this fails */
        md_error perr; /* the experiments' options: bound once, for the coordinator and its progress */
        if (md_kind_bind_opts(c.job, &c.exp_opts, &perr) == MD_OK) {
            md_progress_opts po = {.job = c.job, .exp_opts = c.exp_opts, .output = md_job_output(c.job),
                                   .world = c.world, .shard_k = c.shard_k, .part_index = c.part_index,
                                   .part_count = c.part_count, .enabled = opts->progress};
            if (md_progress_create(&c.progress, &po, &perr) == MD_OK) md_progress_print_start(c.progress);
        }
    }
    md_error herr; /* a failure here is met again, and reported, by md_prov_collect_with on rank 0 */
    md_hashshare_run(c.job, comm, rank == 0 && opts->progress, &c.digests, &herr);
    MPI_Comm group = MPI_COMM_NULL;
    if (c.shard_k > 1)
        MPI_Comm_split(comm, rank == 0 ? MPI_UNDEFINED : (rank - 1) / c.shard_k, rank, &group);
    int status;
    if (rank == 0) {
        status = coordinator(&c, stats, err);
        md_progress_free(c.progress);
        c.progress = NULL;
        md_prov_free_digests(&c.digests);
        if (status == MD_ERR) status = c.lock_held ? MD_EXIT_LOCKED : MD_EXIT_ERROR; /* never -1 (exit 255) */
        if (status == MD_EXIT_ERROR && err->msg[0] && strncmp(err->msg, "rank ", 5) != 0)
            md_error_prefix(err, "rank 0");
        if (status == MD_EXIT_ERROR) md_coord_explain_space(&c, err);
        md_coord_stop_workers(&c, status, err); /* every path out of the coordinator releases the workers */
    } else if (c.shard_k > 1 && (rank - 1) % c.shard_k != 0) {
        status = md_shard_serve(group, err) == MD_OK ? MD_EXIT_OK : MD_EXIT_ERROR;
    } else {
        md_worker w;
        md_shard_group *g = NULL;
        status = MD_EXIT_ERROR;
        if (md_worker_init(&w, c.job, rank, err) == MD_OK) {
            if (c.shard_k == 1 || md_shard_group_create(&g, group, err) == MD_OK) {
                w.shard = g;
                if (md_worker_loop(&w, comm, err) == MD_OK) status = MD_EXIT_OK;
            }
            md_worker_free(&w); /* frees the group's models before the group */
        }
        md_shard_group_close(g);
    }
    if (group != MPI_COMM_NULL) MPI_Comm_free(&group);
    /* Every rank leaves with rank 0's status. */
    MPI_Bcast(&status, 1, MPI_INT, 0, comm);
    md_coord_free(&c);
    return status;
}
