/* h5out.c — the results file (layout: include/mechdiff/h5out.h; journal: journal.h).
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
#include <hdf5_hl.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mechdiff/version.h"
#include "runner/h5catchup.h"
#include "runner/h5digest.h"
#include "runner/h5scale.h"
#include "runner/h5util.h"

typedef struct dset_cache {
    char path[MD_PATH_MAX + 160];
    hid_t id;
} dset_cache;

typedef struct region_rec {
    int64_t unit;
    char *text;                /* owned */
} region_rec;

typedef struct stage_cache {
    char exp[128];
    int stage;
    hid_t done_id, regions_id;
    uint8_t *done;             /* [n] (owned) */
    int64_t n;
    region_rec *regions;       /* pending region strings (owned) */
    int n_regions, cap_regions;
} stage_cache;

struct md_h5out {
    char path[4096];
    char tmp[4200], prev[4200];
    hid_t file;
    uint64_t generation;
    int incremental;           /* started from OUT.h5.prev */
    int keep_prev;             /* commit keeps the replaced file as OUT.h5.prev */
    int defined;               /* md_h5out_define was called */
    md_h5catchup *catchup;     /* the published file, to catch up from (incremental; owned) */
    int copy_chunks;           /* catch up by copying compressed chunks (else write values) */
    int64_t kill_gen, kill_after, n_applied; /* MECHDIFF_TEST_KILL_SNAPSHOT */
    double t0, bytes_applied;  /* MECHDIFF_SNAPSHOT_LOG */
    dset_cache *dsets;
    int n_dsets;
    stage_cache *stages;
    int n_stages;
};

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

/* The test hook: SIGKILL when this snapshot writes generation kill_gen and
 * `count` reached kill_after. */
static void test_kill_point(const md_h5out *h, int64_t count)
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

static hid_t cached_dataset(md_h5out *h, const char *full)
{
    for (int i = 0; i < h->n_dsets; i++)
        if (strcmp(h->dsets[i].path, full) == 0) return h->dsets[i].id;
    if (!md_h5_exists(h->file, full)) return -1;
    hid_t id = H5Dopen2(h->file, full, H5P_DEFAULT);
    if (id < 0) return -1;
    dset_cache *grown = realloc(h->dsets, (size_t)(h->n_dsets + 1) * sizeof *grown);
    if (!grown) {
        H5Dclose(id);
        return -1;
    }
    h->dsets = grown;
    snprintf(h->dsets[h->n_dsets].path, sizeof h->dsets[0].path, "%s", full);
    h->dsets[h->n_dsets++].id = id;
    return id;
}

static int create_dataset(md_h5out *h, const char *full, const md_dset *ds, const md_plan *plan, md_error *err)
{
    hsize_t dims[MD_MAX_DIMS], chunk[MD_MAX_DIMS];
    size_t esize = ds->type == MD_H5_STR ? 16 : md_h5type_size(ds->type), bytes = esize;
    for (int i = 0; i < ds->rank; i++) {
        dims[i] = (hsize_t)ds->dims[i];
        chunk[i] = (hsize_t)ds->chunk[i];
        bytes *= chunk[i];
    }
    /* Keep chunks at most ~4 MiB: halve the leading dimensions. */
    for (int i = 0; bytes > ((size_t)4 << 20) && i < ds->rank; i++)
        while (bytes > ((size_t)4 << 20) && chunk[i] > 1) {
            bytes /= chunk[i];
            chunk[i] = (chunk[i] + 1) / 2;
            bytes *= chunk[i];
        }
    hid_t ft = md_h5_file_type(ds->type), sp = H5Screate_simple(ds->rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, ds->rank, chunk);
    if (ds->deflate > 0 && ds->type != MD_H5_STR && H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) {
        H5Pset_shuffle(dcpl);
        H5Pset_deflate(dcpl, (unsigned)ds->deflate);
    }
    if (ds->type == MD_H5_F32) {
        float nan = NAN;
        H5Pset_fill_value(dcpl, H5T_NATIVE_FLOAT, &nan); /* unwritten = NaN, visible in partial files */
    } else if (ds->type == MD_H5_F64) {
        double nan = NAN;
        H5Pset_fill_value(dcpl, H5T_NATIVE_DOUBLE, &nan);
    }
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t d = H5Dcreate2(h->file, full, ft, sp, lcpl, dcpl, H5P_DEFAULT);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Tclose(ft);
    if (d < 0) return md_error_set(err, "%s: cannot create dataset %s", h->tmp, full);
    md_h5_attr_str(d, "units", ds->units);
    md_h5_attr_str(d, "description", ds->description);
    char parent_path[MD_PATH_MAX + 160];
    snprintf(parent_path, sizeof parent_path, "%s", full);
    *strrchr(parent_path, '/') = '\0';
    hid_t parent = H5Gopen2(h->file, parent_path[0] ? parent_path : "/", H5P_DEFAULT);
    int rc = MD_OK;
    for (int i = 0; i < ds->rank && rc == MD_OK; i++) {
        if (!ds->dim_names[i][0]) continue;
        H5DSset_label(d, (unsigned)i, ds->dim_names[i]);
        if (md_h5scale_attach(parent, d, (unsigned)i, ds->dim_names[i], ds->dims[i],
                              md_plan_axis_find(plan, ds->path, ds->dim_names[i])) != MD_OK)
            rc = md_error_set(err, "%s: cannot attach the dimension scale '%s' of %s", h->tmp, ds->dim_names[i], full);
    }
    H5Gclose(parent);
    H5Dclose(d);
    return rc;
}

static stage_cache *get_stage(md_h5out *h, const char *exp, int stage, md_error *err)
{
    for (int i = 0; i < h->n_stages; i++)
        if (h->stages[i].stage == stage && strcmp(h->stages[i].exp, exp) == 0) return &h->stages[i];
    char path[1024];
    snprintf(path, sizeof path, "/completion/%s/stage%d", exp, stage);
    if (!md_h5_exists(h->file, path)) {
        md_error_set(err, "%s: %s is not defined", h->tmp, path);
        return NULL;
    }
    stage_cache *grown = realloc(h->stages, (size_t)(h->n_stages + 1) * sizeof *grown);
    if (!grown) {
        md_error_set(err, "out of memory");
        return NULL;
    }
    h->stages = grown;
    stage_cache *s = &h->stages[h->n_stages];
    memset(s, 0, sizeof *s);
    snprintf(s->exp, sizeof s->exp, "%s", exp);
    s->stage = stage;
    char p2[1100], p3[1100];
    snprintf(p2, sizeof p2, "%s/done", path);
    snprintf(p3, sizeof p3, "%s/regions", path);
    if (!(s->done = md_h5_read_flags(h->file, p2, &s->n, err)) ||
        (s->regions_id = md_h5_open_regions(h->file, p3, s->n, err)) < 0) {
        free(s->done);
        md_error_prefix(err, "%s", h->path);
        return NULL;
    }
    s->done_id = H5Dopen2(h->file, p2, H5P_DEFAULT);
    h->n_stages++;
    return s;
}

/* Appends "path[o+c,...]" (the piece's hyperslab) to region. */
static void append_region(char *region, size_t rlen, const md_piece *pc)
{
    size_t used = strlen(region);
    used += (size_t)snprintf(region + used, rlen - used, "%s%s[", used ? ";" : "", pc->path);
    for (int i = 0; i < pc->rank && used < rlen; i++)
        used += (size_t)snprintf(region + used, rlen - used, "%s%lld+%lld", i ? "," : "", (long long)pc->offset[i],
                                 (long long)pc->count[i]);
    if (used < rlen) snprintf(region + used, rlen - used, "]");
}

/* Copies the chunks of piece pc from the published file (catch-up): 1 done, 0 write values, MD_ERR. */
static int copy_piece(md_h5out *h, const char *exp, const md_piece *pc, md_error *err)
{
    if (!h->catchup || !h->copy_chunks) return 0;
    char full[MD_PATH_MAX + 160];
    snprintf(full, sizeof full, "/%s/%s", exp, pc->path);
    hid_t d = cached_dataset(h, full);
    if (d < 0) return md_error_set(err, "%s: dataset %s does not exist", h->tmp, full);
    return md_h5catchup_copy_piece(h->catchup, d, full, pc, err);
}

/* Writes one piece into /<exp>/<piece path>. Appends "path[o+c,...]" to region. */
static int write_piece(md_h5out *h, const char *exp, const md_piece *pc, char *region, size_t rlen,
                       md_error *err)
{
    char full[MD_PATH_MAX + 160];
    snprintf(full, sizeof full, "/%s/%s", exp, pc->path);
    hid_t d = cached_dataset(h, full);
    if (d < 0) return md_error_set(err, "%s: dataset %s does not exist", h->tmp, full);
    md_h5type type;
    if (md_h5_dataset_type(d, &type) != MD_OK) return md_error_set(err, "%s: unsupported type", full);
    hsize_t off[MD_MAX_DIMS], cnt[MD_MAX_DIMS];
    size_t elems = 1;
    for (int i = 0; i < pc->rank; i++) {
        off[i] = (hsize_t)pc->offset[i];
        cnt[i] = (hsize_t)pc->count[i];
        elems *= cnt[i];
    }
    if (type != MD_H5_STR && pc->nbytes != elems * md_h5type_size(type))
        return md_error_set(err, "%s: %s: a piece of %zu bytes for %zu values of %zu bytes", h->tmp, full, pc->nbytes,
                            elems, md_h5type_size(type));
    hid_t fs = H5Dget_space(d);
    if (H5Sget_simple_extent_ndims(fs) != pc->rank) {
        H5Sclose(fs);
        return md_error_set(err, "%s: %s: rank mismatch", h->tmp, full);
    }
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL);
    hid_t ms = H5Screate_simple(pc->rank, cnt, NULL), mt = md_h5_mem_type(type);
    herr_t st;
    if (type == MD_H5_STR) {
        const char **ptrs = malloc(elems * sizeof *ptrs);
        const char *s = pc->data;
        for (size_t i = 0; ptrs && i < elems; i++) {
            ptrs[i] = s;
            s += strlen(s) + 1;
        }
        st = ptrs ? H5Dwrite(d, mt, ms, fs, H5P_DEFAULT, ptrs) : -1;
        free(ptrs);
    } else {
        st = H5Dwrite(d, mt, ms, fs, H5P_DEFAULT, pc->data);
    }
    H5Tclose(mt);
    H5Sclose(ms);
    H5Sclose(fs);
    if (st < 0) return md_error_set(err, "%s: write to %s failed%s", h->tmp, full, md_snapfile_io_reason(errno));
    if (region) append_region(region, rlen, pc);
    return MD_OK;
}

int md_h5out_define(md_h5out *h, const char *exp_name, int exp_index, const char *kind, const md_plan *plan,
                    md_error *err)
{
    char path[512];
    h->defined = 1; /* OUT.h5.prev lacks this: the next snapshot copies */
    snprintf(path, sizeof path, "/%s", exp_name);
    hid_t g = md_h5_group_open_or_create(h->file, path);
    if (g < 0) return md_error_set(err, "%s: cannot create group %s", h->tmp, path);
    md_h5_attr_str(g, "kind", kind);
    H5Gclose(g);
    for (int i = 0; i < plan->n_dsets; i++) {
        char full[MD_PATH_MAX + 160];
        snprintf(full, sizeof full, "/%s/%s", exp_name, plan->dsets[i].path);
        if (md_h5_check_dataset(h->file, full, &plan->dsets[i], exp_name, err) != MD_OK)
            return md_error_prefix(err, "%s", h->path);
        if (md_h5_exists(h->file, full)) continue;
        if (create_dataset(h, full, &plan->dsets[i], plan, err) != MD_OK) return MD_ERR;
    }
    for (int i = 0; i < plan->n_attrs; i++) {
        const md_attr_decl *a = &plan->attrs[i];
        char full[MD_PATH_MAX + 160];
        snprintf(full, sizeof full, "/%s%s%s", exp_name, a->path[0] ? "/" : "", a->path);
        hid_t o = H5Oopen(h->file, full, H5P_DEFAULT);
        if (o < 0) return md_error_set(err, "plan attribute '%s' on '%s', which does not exist", a->name, full);
        md_h5_attr_str(o, a->name, a->value);
        H5Oclose(o);
    }
    snprintf(path, sizeof path, "/completion/%s/stage%d", exp_name, plan->stage);
    if (md_h5_exists(h->file, path)) {
        hid_t sg = H5Gopen2(h->file, path, H5P_DEFAULT);
        int64_t n = md_h5_attr_read_i64(sg, "n_units", -1);
        H5Gclose(sg);
        if (n != plan->n_units)
            return md_error_set(err, "%s: %s has %lld units, the plan now has %lld (a changed job? use --force-new)",
                                h->path, path, (long long)n, (long long)plan->n_units);
    } else {
        hid_t sg = md_h5_group_open_or_create(h->file, path);
        if (sg < 0) return md_error_set(err, "%s: cannot create %s", h->tmp, path);
        md_h5_attr_str(sg, "kind", kind);
        md_h5_attr_i64(sg, "experiment_index", exp_index);
        md_h5_attr_i64(sg, "stage", plan->stage);
        md_h5_attr_i64(sg, "n_units", plan->n_units);
        hsize_t n = (hsize_t)plan->n_units, ch = n < 65536 ? n : 65536;
        hid_t sp = H5Screate_simple(1, &n, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_chunk(dcpl, 1, &ch);
        hid_t done = H5Dcreate2(sg, "done", H5T_STD_U8LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        md_h5_attr_str(done, "description", "1 = this work unit's results are in the file");
        hid_t st = md_h5_str_type();
        ch = n < 4096 ? n : 4096;
        H5Pset_chunk(dcpl, 1, &ch);
        hid_t reg = H5Dcreate2(sg, "regions", st, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        md_h5_attr_str(reg, "description", "hyperslabs written by the unit: dataset[offset+count,...];...");
        /* a named dimension `unit` (scale 0..n-1) for both: netCDF readers
           (ncdump, xarray) see no phony dimensions anywhere in the file */
        int scaled = done >= 0 && reg >= 0 && H5DSset_label(done, 0, "unit") >= 0 &&
                     H5DSset_label(reg, 0, "unit") >= 0 &&
                     md_h5scale_attach(sg, done, 0, "unit", plan->n_units, NULL) == MD_OK &&
                     md_h5scale_attach(sg, reg, 0, "unit", plan->n_units, NULL) == MD_OK;
        H5Tclose(st);
        H5Dclose(done);
        H5Dclose(reg);
        H5Pclose(dcpl);
        H5Sclose(sp);
        H5Gclose(sg);
        if (done < 0 || reg < 0 || !scaled) return md_error_set(err, "%s: cannot create %s/done", h->tmp, path);
    }
    const void *bytes;
    size_t len, pos = 0;
    md_result *puts = (md_result *)&plan->puts;
    bytes = md_result_bytes(puts, &len);
    md_piece pc;
    int r;
    while (bytes && (r = md_result_next(bytes, len, &pos, &pc, err)) == 1)
        if (write_piece(h, exp_name, &pc, NULL, 0, err) != MD_OK) return MD_ERR;
    return bytes && r == MD_ERR ? MD_ERR : MD_OK;
}

/* Writes one unit: each piece's values, or (from_published) its chunks
 * copied from the published file where possible; then its done flag and region. */
static int put_unit(md_h5out *h, const char *exp_name, int stage, int64_t unit, const void *result, size_t len,
                    int from_published, md_error *err)
{
    stage_cache *s = get_stage(h, exp_name, stage, err);
    if (!s) return MD_ERR;
    if (unit < 0 || unit >= s->n)
        return md_error_set(err, "%s: unit %lld outside stage %d of %s (%lld units)", h->tmp, (long long)unit, stage,
                            exp_name, (long long)s->n);
    char region[4096] = "";
    size_t pos = 0;
    md_piece pc;
    int r;
    while ((r = md_result_next(result, len, &pos, &pc, err)) == 1) {
        int copied = from_published ? copy_piece(h, exp_name, &pc, err) : 0;
        if (copied == MD_ERR) return MD_ERR;
        if (copied) append_region(region, sizeof region, &pc);
        else if (write_piece(h, exp_name, &pc, region, sizeof region, err) != MD_OK) return MD_ERR;
        else h->bytes_applied += (double)pc.nbytes;
    }
    if (r == MD_ERR) return MD_ERR;
    test_kill_point(h, ++h->n_applied);
    s->done[unit] = 1;
    if (s->n_regions == s->cap_regions) {
        int cap = s->cap_regions ? s->cap_regions * 2 : 256;
        region_rec *g = realloc(s->regions, (size_t)cap * sizeof *g);
        if (!g) return md_error_set(err, "out of memory");
        s->regions = g;
        s->cap_regions = cap;
    }
    s->regions[s->n_regions].unit = unit;
    s->regions[s->n_regions].text = strdup(region);
    if (!s->regions[s->n_regions].text) return md_error_set(err, "out of memory");
    s->n_regions++;
    return MD_OK;
}

int md_h5out_apply(md_h5out *h, const char *exp_name, int stage, int64_t unit, const void *result, size_t len,
                   md_error *err)
{
    return put_unit(h, exp_name, stage, unit, result, len, 0, err);
}

int md_h5out_catch_up(md_h5out *h, const char *exp_name, int stage, int64_t unit, const void *result, size_t len,
                      md_error *err)
{
    return put_unit(h, exp_name, stage, unit, result, len, 1, err);
}

const uint8_t *md_h5out_done(md_h5out *h, const char *exp_name, int stage, int64_t *n_units, md_error *err)
{
    *n_units = 0;
    char path[512];
    snprintf(path, sizeof path, "/completion/%s/stage%d", exp_name, stage);
    if (!md_h5_exists(h->file, path)) return NULL;
    stage_cache *s = get_stage(h, exp_name, stage, err);
    if (!s) return NULL;
    *n_units = s->n;
    return s->done;
}

int md_h5out_set_part(md_h5out *h, int part_index, int part_count, md_error *err)
{
    hid_t g = H5Gopen2(h->file, "/provenance", H5P_DEFAULT);
    int rc = md_h5_attr_i64(g, "part_index", part_index) | md_h5_attr_i64(g, "part_count", part_count);
    H5Gclose(g);
    return rc ? md_error_set(err, "%s: cannot write part attributes", h->tmp) : MD_OK;
}

static int flush_stage(stage_cache *s, md_error *err)
{
    int rc = MD_OK;
    if (H5Dwrite(s->done_id, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->done) < 0)
        rc = md_error_set(err, "cannot write done flags of %s stage %d", s->exp, s->stage);
    if (rc == MD_OK && s->n_regions) {
        hsize_t *coords = malloc((size_t)s->n_regions * sizeof *coords);
        const char **texts = malloc((size_t)s->n_regions * sizeof *texts);
        if (!coords || !texts) {
            rc = md_error_set(err, "out of memory");
        } else {
            for (int i = 0; i < s->n_regions; i++) {
                coords[i] = (hsize_t)s->regions[i].unit;
                texts[i] = s->regions[i].text;
            }
            hsize_t n = (hsize_t)s->n_regions;
            hid_t fs = H5Dget_space(s->regions_id), ms = H5Screate_simple(1, &n, NULL), t = md_h5_str_type();
            H5Sselect_elements(fs, H5S_SELECT_SET, n, coords);
            if (H5Dwrite(s->regions_id, t, ms, fs, H5P_DEFAULT, texts) < 0)
                rc = md_error_set(err, "cannot write regions of %s stage %d", s->exp, s->stage);
            H5Tclose(t);
            H5Sclose(ms);
            H5Sclose(fs);
        }
        free(coords);
        free(texts);
    }
    return rc;
}

/* MD_ERR when a dataset's cached chunks could not be written (a full disk). */
static int close_caches(md_h5out *h)
{
    int bad = 0;
    for (int i = 0; i < h->n_dsets; i++) bad |= H5Dclose(h->dsets[i].id) < 0;
    free(h->dsets);
    for (int i = 0; i < h->n_stages; i++) {
        stage_cache *s = &h->stages[i];
        bad |= H5Dclose(s->done_id) < 0;
        bad |= H5Dclose(s->regions_id) < 0;
        free(s->done);
        for (int k = 0; k < s->n_regions; k++) free(s->regions[k].text);
        free(s->regions);
    }
    free(h->stages);
    h->dsets = NULL, h->stages = NULL;
    h->n_dsets = h->n_stages = 0;
    return bad ? MD_ERR : MD_OK;
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
    int rc = MD_OK;
    for (int i = 0; i < h->n_stages && rc == MD_OK; i++) rc = flush_stage(&h->stages[i], err);
    if (close_caches(h) != MD_OK && rc == MD_OK)
        rc = md_error_set(err, "%s: writing the datasets failed%s", h->tmp, md_snapfile_io_reason(errno));
    if (rc == MD_OK && write_segment(h, seg) != MD_OK) rc = md_error_set(err, "%s: cannot write provenance", h->tmp);
    if (rc == MD_OK && seg->finished && md_h5digest_write_all(h->file, err) != MD_OK) rc = md_error_prefix(err, "%s", h->tmp);
    if (H5Fclose(h->file) < 0 && rc == MD_OK)
        rc = md_error_set(err, "%s: closing the HDF5 file failed%s", h->tmp, md_snapfile_io_reason(errno));
    h->file = -1;
    if (rc == MD_OK && md_snapfile_fsync(h->tmp) != MD_OK)
        rc = md_error_set(err, "%s: fsync failed%s", h->tmp, md_snapfile_io_reason(errno));
    if (rc == MD_OK && h->keep_prev) md_snapfile_keep_previous(h->path, h->prev); /* the old OUT.h5 lives on */
    if (rc == MD_OK) test_kill_point(h, 0);
    if (rc == MD_OK && rename(h->tmp, h->path) != 0)
        rc = md_error_set(err, "%s: rename to %s failed: %s", h->tmp, h->path, strerror(errno));
    if (rc == MD_OK) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", h->path);
        md_snapfile_fsync(dirname(dir));
        log_snapshot(h);
        test_kill_point(h, -1); /* published, the journal not yet rotated */
    }
    if (rc != MD_OK) unlink(h->tmp);
    md_h5catchup_close(h->catchup); /* the replaced version, read by the catch-up */
    free(h);
    return rc;
}

void md_h5out_discard(md_h5out *h)
{
    if (!h) return;
    close_caches(h);
    md_h5catchup_close(h->catchup);
    if (h->file >= 0) H5Fclose(h->file);
    unlink(h->tmp);
    free(h);
}
