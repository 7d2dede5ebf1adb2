/* h5out.c — the results file's snapshots: begin (a copy, OUT.h5.prev or a
 * new file with its provenance), commit (segment, fsync, rename), discard
 * (layout: include/mechdiff/h5out.h; journal: journal.h; what a snapshot
 * writes, datasets, stages and units: h5out_data.c).
 *
 * Durable writes, O(new data) per snapshot. HDF5 never writes OUT.h5:
 * serial HDF5 updates metadata in place in no particular order (a writer
 * killed inside H5Dwrite/H5Fclose can leave a file no reader opens), and
 * SWMR would keep plain readers out and forbid new datasets. Every snapshot
 * writes the private OUT.h5.tmp and publishes it with rename(2) after
 * H5Fclose and fsync. OUT.h5.tmp is
 *   - copy (md_h5out_begin): a copy of OUT.h5 (copy_file_range: a reflink
 *     where the file system has them), then the journal applied. O(file).
 *   - incremental (md_h5out_begin_incremental): each commit keeps the file
 *     it replaces as OUT.h5.prev (a hard link made before the rename):
 *     generation g-1 when OUT.h5 is g. The next snapshot renames OUT.h5.prev
 *     to OUT.h5.tmp, catches up with the journal of g-1 (OUT.h5.journal.prev:
 *     exactly the units OUT.h5 has and OUT.h5.prev lacks) by copying their
 *     chunks from OUT.h5 as stored, compressed (h5catchup.h; values are
 *     written only where a chunk cannot be copied: strings), then applies
 *     the journal of g. O(data of the last two intervals), each unit
 *     deflated once.
 *
 * The incremental start is taken only when every check holds, else the
 * snapshot copies (never wrong, only slower): OUT.h5 and OUT.h5.prev still
 * carry the marks (snapfile.h: device, inode, size, mtime ns) that the
 * headers of the journals of g and g-1 took when those versions were
 * published (neither written since, by a user or a killed commit; a kill
 * between rename and journal rotation leaves a journal of another
 * generation and mark); OUT.h5.prev is not OUT.h5's inode (a kill between
 * link and rename), no reader holds an HDF5 file lock on it, it is the same
 * job, one generation behind, with the same defined_generation (the
 * snapshot that last created datasets or stages: journals cannot recreate
 * definitions). Then OUT.h5 = OUT.h5.prev + journal of g-1 in every dataset
 * and done flag, across runs too: a resumed run's first snapshot is
 * incremental and takes from OUT.h5 what commits write outside journals
 * (root and /provenance attributes, segments; first_of_run). A run that
 * ends with work left (stop, error, kill) leaves OUT.h5.prev and
 * OUT.h5.journal.prev for its resume; one that completes removes them.
 *
 * Guarantees, and why they hold:
 *   - OUT.h5 is readable at every instant: it is only ever a file written,
 *     closed and fsync'd before rename(2) made it OUT.h5, and never written
 *     while it is OUT.h5 (the catch-up only reads it). A kill -9 in a
 *     snapshot leaves the last published version (the next start discards
 *     OUT.h5.tmp). Done flags and regions follow the data in the same file.
 *   - No finished unit is lost: a unit is finished once its journal record
 *     is fsync'd (journal.h); the journal of g becomes OUT.h5.journal.prev
 *     only after g+1, which holds all its records, is published. On start,
 *     a journal of the file's generation is folded; an older one is in it.
 *   - Bit-identical results: a unit owns its hyperslab and its done flag is
 *     set, not counted (a record applied twice writes the same bytes); a
 *     copied chunk is OUT.h5's, i.e. OUT.h5.prev's plus the journal of g-1.
 *   - The price: two versions (OUT.h5, OUT.h5.prev) and two journals in the
 *     folder while a job runs or waits for its resume. A version a reader
 *     holds under a shared flock (HDF5 file locking; analysis/mdread.py) is
 *     never taken back; a reader without a lock that keeps one version open
 *     across two snapshots may see it rewritten.
 *
 * Test and benchmark switches (environment; a run never needs them):
 * MECHDIFF_SNAPSHOT_COPY=1 always copies (the design before the incremental
 * start); MECHDIFF_SNAPSHOT_REDEFLATE=1 catches up by writing values, not
 * copying chunks (the design before the chunk copy); MECHDIFF_SNAPSHOT_LOG=1
 * prints a line per snapshot (mode, seconds, units, MiB of values written,
 * file size, time at its end, chunks and MiB copied compressed);
 * MECHDIFF_TEST_KILL_SNAPSHOT=G:N (tests only) SIGKILLs this process in the
 * snapshot writing generation G after N units were caught up or written
 * (N = 0: after OUT.h5.prev is kept, before the rename; N = -1: after the
 * rename, before the journal rotation). */
#include "mechdiff/h5out.h"
#include "mechdiff/provenance.h"
#include "mechdiff/snapfile.h"

#include <errno.h>
#include <hdf5.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mechdiff/version.h"
#include "runner/h5digest.h"
#include "runner/h5out_int.h"
#include "runner/h5util.h"

/* ---- snapshot -------------------------------------------------------- */

static int write_provenance(hid_t f, const md_provenance *prov)
{
    char when[64];
    md_h5_iso_time(md_h5_now(), when, sizeof when);
    int rc = MD_OK;
    rc |= md_h5_attr_str(f, "title", "mechdiff results (base vs post-trained LLM, Du et al. 2025)");
    rc |= md_h5_attr_str(f, "mechdiff_version", MECHDIFF_VERSION);
    rc |= md_h5_attr_str(f, "job_name", prov->job_name);
    rc |= md_h5_attr_str(f, "job_sha256", prov->job_sha256);
    rc |= md_h5_attr_i64(f, "layout_version", MD_RESULTS_LAYOUT);
    rc |= md_h5_attr_str(f, "provenance", "see /provenance (run-dependent: times, host, ranks)");
    hid_t g = md_h5_group_open_or_create(f, "/provenance");
    if (g < 0) return MD_ERR;
    rc |= md_h5_attr_str(g, "job_yaml", prov->job_yaml);
    rc |= md_h5_attr_str(g, "job_sha256", prov->job_sha256);
    rc |= md_h5_attr_str(g, "job_sha256_covers",
                   "resolved job without runtime/output, model weight and config hashes, dataset hashes");
    rc |= md_h5_attr_str(g, "mechdiff_version", MECHDIFF_VERSION);
    rc |= md_h5_attr_str(g, "git_revision", MECHDIFF_GIT_REV);
    rc |= md_h5_attr_str(g, "created", when);
    rc |= md_h5_attr_i64(g, "generation", 0);
    rc |= md_h5_attr_i64(g, "finished", 0);
    rc |= md_h5_attr_i64(g, "part_index", prov->part_index);
    rc |= md_h5_attr_i64(g, "part_count", prov->part_count);
    for (int i = 0; i < prov->n_models; i++) {
        const md_model_prov *m = &prov->models[i];
        char path[200];
        snprintf(path, sizeof path, "/provenance/models/%s", m->role);
        hid_t mg = md_h5_group_open_or_create(f, path);
        rc |= md_h5_attr_str(mg, "path", m->dir);
        rc |= md_h5_attr_str(mg, "config_json", m->config_json ? m->config_json : "");
        size_t cap = 1;
        for (int k = 0; k < m->n_files; k++) cap += strlen(m->files[k]) + 70;
        char *list = calloc(cap, 1);
        for (int k = 0; list && k < m->n_files; k++) {
            strcat(list, m->sha256[k]);
            strcat(list, "  ");
            strcat(list, m->files[k]);
            strcat(list, "\n");
        }
        rc |= md_h5_attr_str(mg, "weight_sha256", list ? list : "");
        rc |= md_h5_attr_str(mg, "weight_sha256_format", "sha256sum -c format, file names relative to path");
        free(list);
        H5Gclose(mg);
    }
    for (int i = 0; i < prov->n_data; i++) {
        char path[200];
        snprintf(path, sizeof path, "/provenance/datasets/%s", prov->data[i].name);
        hid_t dg = md_h5_group_open_or_create(f, path);
        rc |= md_h5_attr_str(dg, "path", prov->data[i].path);
        rc |= md_h5_attr_str(dg, "sha256", prov->data[i].sha256);
        H5Gclose(dg);
    }
    H5Gclose(g);
    return rc ? MD_ERR : MD_OK;
}

/* 1 when the environment variable `name` is "1". */
static int env_on(const char *name)
{
    const char *v = getenv(name);
    return v && strcmp(v, "1") == 0;
}

/* A handle for a snapshot of path (no file open yet). */
static md_h5out *new_handle(const char *path)
{
    md_h5out *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->file = -1;
    snprintf(h->path, sizeof h->path, "%s", path);
    snprintf(h->tmp, sizeof h->tmp, "%s.tmp", path);
    snprintf(h->prev, sizeof h->prev, "%s.prev", path);
    h->t0 = md_h5_now();
    h->kill_gen = -1;
    const char *kill = getenv("MECHDIFF_TEST_KILL_SNAPSHOT");
    long long g, n;
    if (kill && sscanf(kill, "%lld:%lld", &g, &n) == 2) h->kill_gen = g, h->kill_after = n;
    return h;
}

void md_h5out_test_kill_point(const md_h5out *h, int64_t count)
{
    if (h->kill_gen == (int64_t)h->generation + 1 && count == h->kill_after) raise(SIGKILL);
}

int md_h5out_begin(md_h5out **out, const char *path, const char *source, const md_provenance *prov,
                   md_error *err)
{
    *out = NULL;
    md_h5out *h = new_handle(path);
    if (!h) return md_error_set(err, "out of memory");
    unlink(h->tmp);
    struct stat st;
    if (!source && stat(path, &st) == 0) source = path;
    hid_t fapl = md_h5_fapl_unlocked();
    if (source) {
        if (md_snapfile_copy(source, h->tmp, err) != MD_OK) goto fail;
        h->file = H5Fopen(h->tmp, H5F_ACC_RDWR, fapl);
        if (h->file < 0) {
            md_error_set(err, "%s: cannot open the copy of %s as HDF5", h->tmp, source);
            goto fail;
        }
        hid_t g = H5Gopen2(h->file, "/provenance", H5P_DEFAULT);
        if (g < 0) {
            md_error_set(err, "%s: no /provenance group: not a mechdiff results file", source);
            goto fail;
        }
        h->generation = (uint64_t)md_h5_attr_read_i64(g, "generation", 0);
        H5Gclose(g);
    } else {
        h->file = H5Fcreate(h->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        if (h->file < 0) {
            md_error_set(err, "%s: cannot create HDF5 file (does the folder exist and is it writable?)", h->tmp);
            goto fail;
        }
        if (write_provenance(h->file, prov) != MD_OK) {
            md_error_set(err, "%s: cannot write provenance", h->tmp);
            goto fail;
        }
    }
    H5Pclose(fapl);
    *out = h;
    return MD_OK;
fail:
    H5Pclose(fapl);
    md_h5out_discard(h);
    return MD_ERR;
}

/* Identity of a results file for the incremental check. */
typedef struct version_id {
    int64_t generation, defined;
    char *job;                 /* owned */
} version_id;

static int read_version(hid_t f, version_id *v)
{
    hid_t g = H5Gopen2(f, "/provenance", H5P_DEFAULT);
    if (g < 0) return MD_ERR;
    v->generation = md_h5_attr_read_i64(g, "generation", -1);
    v->defined = md_h5_attr_read_i64(g, "defined_generation", -1);
    v->job = md_h5_attr_read_str(g, "job_sha256");
    H5Gclose(g);
    return v->job ? MD_OK : MD_ERR;
}

int md_h5out_begin_incremental(md_h5out **out, const char *path, const md_snapfile_mark *path_mark,
                               const md_snapfile_mark *prev_mark, int first_of_run, md_error *err)
{
    *out = NULL;
    if (env_on("MECHDIFF_SNAPSHOT_COPY")) return MD_OK;
    if (!md_snapfile_mark_matches(path, path_mark)) return MD_OK; /* not the file the last commit published */
    md_h5out *h = new_handle(path);
    if (!h) return md_error_set(err, "out of memory");
    h->copy_chunks = !env_on("MECHDIFF_SNAPSHOT_REDEFLATE");
    version_id cur = {0}, old = {0};
    hid_t fapl = md_h5_fapl_unlocked(), f = -1;
    int ok = 0;
    H5E_BEGIN_TRY
    {
        f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
        ok = f >= 0 && read_version(f, &cur) == MD_OK && cur.defined >= 0 && cur.generation >= 1 &&
             md_snapfile_take_previous(path, h->prev, h->tmp, prev_mark);
        if (ok) h->file = H5Fopen(h->tmp, H5F_ACC_RDWR, fapl);
        ok = ok && h->file >= 0 && read_version(h->file, &old) == MD_OK && old.generation == cur.generation - 1 &&
             old.defined == cur.defined && strcmp(old.job, cur.job) == 0;
    }
    H5E_END_TRY;
    H5Pclose(fapl);
    free(cur.job);
    free(old.job);
    /* OUT.h5 stays open to copy chunks from (h->catchup owns f); a run's
       first snapshot takes its provenance (earlier segments as they ended) */
    if (f >= 0 && md_h5catchup_open(&h->catchup, f, err) != MD_OK) ok = 0;
    ok = ok && (!first_of_run || md_h5catchup_copy_provenance(h->catchup, h->file, err) == MD_OK);
    if (!ok) { /* not usable: the snapshot copies instead (h->tmp, if taken, is removed) */
        md_error_clear(err);
        md_h5out_discard(h);
        return MD_OK;
    }
    h->generation = (uint64_t)cur.generation;
    h->incremental = 1;
    *out = h;
    return MD_OK;
}

void md_h5out_keep_previous(md_h5out *h)
{
    h->keep_prev = 1;
}

void md_h5out_drop_previous(const char *path)
{
    char prev[4200];
    snprintf(prev, sizeof prev, "%s.prev", path);
    unlink(prev); /* a file or a link, never a folder (unlink refuses those) */
}

int md_h5out_set_part(md_h5out *h, int part_index, int part_count, md_error *err)
{
    hid_t g = H5Gopen2(h->file, "/provenance", H5P_DEFAULT);
    int rc = md_h5_attr_i64(g, "part_index", part_index) | md_h5_attr_i64(g, "part_count", part_count);
    H5Gclose(g);
    return rc ? md_error_set(err, "%s: cannot write part attributes", h->tmp) : MD_OK;
}

static herr_t count_links(hid_t g, const char *name, const H5L_info_t *info, void *arg)
{
    (void)g, (void)name, (void)info;
    (*(int *)arg)++;
    return 0;
}

static int write_segment(md_h5out *h, md_segment *seg)
{
    hid_t segs = md_h5_group_open_or_create(h->file, "/provenance/segments");
    if (segs < 0) return MD_ERR;
    if (seg->id < 0) {
        int n = 0;
        H5Literate(segs, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, count_links, &n);
        seg->id = n;
    }
    char name[32], t0[64], t1[64];
    snprintf(name, sizeof name, "%04d", seg->id);
    hid_t g = md_h5_group_open_or_create(segs, name);
    md_h5_iso_time(seg->start_time, t0, sizeof t0);
    md_h5_iso_time(seg->end_time, t1, sizeof t1);
    int rc = md_h5_attr_str(g, "start_time", t0) | md_h5_attr_str(g, "end_time", t1) |
             md_h5_attr_i64(g, "world_size", seg->world_size) | md_h5_attr_str(g, "hostname", seg->hostname) |
             md_h5_attr_str(g, "exit", seg->exit ? seg->exit : "") | md_h5_attr_str(g, "git_revision", MECHDIFF_GIT_REV);
    if (seg->numerics) rc |= md_prov_write_numerics(g, seg->numerics);
    H5Gclose(g);
    H5Gclose(segs);
    hid_t p = H5Gopen2(h->file, "/provenance", H5P_DEFAULT);
    rc |= md_h5_attr_str(p, "end_time", t1) | md_h5_attr_i64(p, "world_size", seg->world_size) |
          md_h5_attr_str(p, "hostname", seg->hostname) | md_h5_attr_i64(p, "finished", seg->finished) |
          md_h5_attr_i64(p, "generation", (int64_t)(h->generation + 1));
    /* The generation whose snapshot last created datasets or stages (see the
     * top of this file); absent in files of older versions: set now. */
    if (h->defined || md_h5_attr_read_i64(p, "defined_generation", -1) < 0)
        rc |= md_h5_attr_i64(p, "defined_generation", (int64_t)(h->generation + 1));
    if (H5Aexists(p, "start_time") <= 0) rc |= md_h5_attr_str(p, "start_time", t0);
    H5Gclose(p);
    return rc ? MD_ERR : MD_OK;
}

/* MECHDIFF_SNAPSHOT_LOG=1: one line per snapshot on stderr. */
static void log_snapshot(const md_h5out *h)
{
    if (!env_on("MECHDIFF_SNAPSHOT_LOG")) return;
    struct stat st;
    double mib = stat(h->path, &st) == 0 ? (double)st.st_size / 1048576.0 : 0, now = md_h5_now(), copied;
    int64_t chunks;
    md_h5catchup_counts(h->catchup, &chunks, &copied);
    fprintf(stderr, "mechdiff: snapshot %llu (%s): %.3f s, %lld units, %.1f MiB applied, file %.1f MiB, at %.3f; "
            "%lld chunks (%.1f MiB) copied compressed\n", (unsigned long long)(h->generation + 1),
            h->incremental ? "incremental" : "copy", now - h->t0, (long long)h->n_applied,
            h->bytes_applied / 1048576.0, mib, now, (long long)chunks, copied / 1048576.0);
}

int md_h5out_commit(md_h5out *h, md_segment *seg, md_error *err)
{
    int rc = md_h5out_flush_stages(h, err);
    if (md_h5out_close_caches(h) != MD_OK && rc == MD_OK)
        rc = md_error_set(err, "%s: writing the datasets failed%s", h->tmp, md_snapfile_io_reason(errno));
    if (rc == MD_OK && write_segment(h, seg) != MD_OK) rc = md_error_set(err, "%s: cannot write provenance", h->tmp);
    if (rc == MD_OK && seg->finished && md_h5digest_write_all(h->file, err) != MD_OK) rc = md_error_prefix(err, "%s", h->tmp);
    if (H5Fclose(h->file) < 0 && rc == MD_OK)
        rc = md_error_set(err, "%s: closing the HDF5 file failed%s", h->tmp, md_snapfile_io_reason(errno));
    h->file = -1;
    if (rc == MD_OK && md_snapfile_fsync(h->tmp) != MD_OK)
        rc = md_error_set(err, "%s: fsync failed%s", h->tmp, md_snapfile_io_reason(errno));
    if (rc == MD_OK && h->keep_prev) md_snapfile_keep_previous(h->path, h->prev); /* the old OUT.h5 lives on */
    if (rc == MD_OK) md_h5out_test_kill_point(h, 0);
    if (rc == MD_OK && rename(h->tmp, h->path) != 0)
        rc = md_error_set(err, "%s: rename to %s failed: %s", h->tmp, h->path, strerror(errno));
    if (rc == MD_OK) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", h->path);
        md_snapfile_fsync(dirname(dir));
        log_snapshot(h);
        md_h5out_test_kill_point(h, -1); /* published, the journal not yet rotated */
    }
    if (rc != MD_OK) unlink(h->tmp);
    md_h5catchup_close(h->catchup); /* the replaced version, read by the catch-up */
    free(h);
    return rc;
}

void md_h5out_discard(md_h5out *h)
{
    if (!h) return;
    md_h5out_close_caches(h);
    md_h5catchup_close(h->catchup);
    if (h->file >= 0) H5Fclose(h->file);
    unlink(h->tmp);
    free(h);
}
