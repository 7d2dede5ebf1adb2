/* fuzz_catchup.c — the incremental snapshot's reading of the published file
 * (md_h5out_begin_incremental, md_h5out_catch_up: src/runner/h5catchup.c,
 * snapfile.c) on damaged pairs of versions.
 *
 * On its first input it writes six generations of a selftest job of 70
 * units with mechdiff's own writer (fuzz_results_base.h: stage 0 defined;
 * units 0-15; 16-31; 32-69 in a second run; stage 1 defined with units
 * 0-23; 24-69, finished with its digests) and keeps three pairs (OUT.h5.prev
 * = generation g-1, OUT.h5 = g, the units g added = the journal of g-1;
 * the values dataset holds 64 units a chunk, so a catch-up copies whole
 * chunks, one of them not yet stored in g-1). An input's first byte picks
 * the pair and how it is damaged; the rest edits OUT.h5 (and, by the first
 * byte, OUT.h5.prev) through the HDF5 API (fuzz_results_edit.h) or below
 * it (fuzz_bytes.h). The harness then does what a run's snapshot does:
 * md_h5out_begin_incremental with the marks of the files as written (or,
 * by the first byte, a mark that no longer matches one of them; a run
 * whose first snapshot it is, or not; MECHDIFF_SNAPSHOT_REDEFLATE or not),
 * md_h5out_catch_up of every unit of the journal of g-1, md_h5out_apply
 * of a few more (the journal of g), md_h5out_commit keeping OUT.h5 as
 * OUT.h5.prev.
 *
 * Checks beyond the sanitizers and fuzz_check.h:
 *   - a stale mark is never taken (OUT.h5.prev left as it was), a clean
 *     pair always is;
 *   - a refusal at any step leaves OUT.h5 as published and no OUT.h5.tmp,
 *     and its message is one line;
 *   - after a commit: OUT.h5.prev is the published file, byte for byte;
 *     in the snapshot every element of a dataset a unit wrote is the
 *     unit's value (journal of g), the unit's value or the published
 *     file's (journal of g-1: written, or its chunk copied), or else
 *     OUT.h5.prev's or the published file's (a copied chunk); every unit
 *     applied is done, the others as in OUT.h5.prev; verify reads it;
 *   - from a clean pair: the snapshot's datasets equal, bit for bit, those
 *     of the snapshot the copy would write (a copy of OUT.h5 plus the
 *     journal of g), and verify finds no defect in it.
 * FUZZ_SHOW=1 prints the refusals; FUZZ_CATCHUP_KEEP=DIR keeps the files
 * (out.h5, out.h5.prev) of a failed check in DIR; FUZZ_CATCHUP_DUMP=DIR writes
 * the generations there (gen1.h5 ... gen6.h5). */
#include "fuzz_bytes.h"
#include "fuzz_check.h"
#include "fuzz_results_edit.h"
#include "mechdiff/snapfile.h"
#include "runner/h5util.h"

#define CU_JOB "name: fz\nseed: 1\nexperiments:\n  - {kind: selftest, units: 70, rows: 2, cols: 3, stages: 2}\n"
#define CU_BLOCK 8 /* units per bit of a mask */

/* A pair: OUT.h5.prev = generation prev, OUT.h5 = prev + 1. */
typedef struct cu_pair {
    int prev, stage;
    unsigned catch_mask, apply_mask; /* the journal of g-1 (in OUT.h5), of g (not yet) */
} cu_pair;

static const cu_pair PAIRS[] = {
    {.prev = 2, .stage = 0, .catch_mask = 0x00c, .apply_mask = 0x010},
    {.prev = 3, .stage = 0, .catch_mask = 0x1f0, .apply_mask = 0},
    {.prev = 5, .stage = 1, .catch_mask = 0x1f8, .apply_mask = 0},
};
#define CU_N_PAIRS (int)(sizeof PAIRS / sizeof *PAIRS)
#define CU_GENS 7

typedef struct cu_state {
    rb_job j;
    md_blob next;               /* stage 1's input (stage 0's finish) */
    uint8_t *gen[CU_GENS];      /* generation g's bytes (owned) */
    size_t len[CU_GENS];
    char out[600], prev[600], tmp[600], ref[600];
} cu_state;

static cu_state cs;

static void cu_keep(int g, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f || fseek(f, 0, SEEK_END) != 0) abort();
    long n = ftell(f);
    rewind(f);
    cs.gen[g] = malloc((size_t)n);
    if (n <= 0 || !cs.gen[g] || fread(cs.gen[g], 1, (size_t)n, f) != (size_t)n) abort();
    cs.len[g] = (size_t)n;
    fclose(f);
}

/* Writes the generations 1..6 (see the head comment). */
static void cu_chain(void)
{
    static const unsigned masks[CU_GENS] = {0, 0, 0x003, 0x00c, 0x1f0, 0x007, 0x1f8};
    rb_job_load(&cs.j, CU_JOB);
    rb_prov rp;
    rb_prov_init(&rp, &cs.j);
    char path[600];
    snprintf(path, sizeof path, "%s/chain.h5", fuzz_dir());
    unlink(path);
    md_prov_numerics num;
    rb_numerics(&num, RB_SETUP);
    md_segment seg = {.id = -1, .start_time = 1.8e9, .end_time = 1.8e9 + 5, .world_size = 2, .hostname = "fuzz",
                      .exit = "running", .numerics = &num};
    md_blob empty = {0};
    for (int g = 1; g < CU_GENS; g++) {
        int stage = g >= 5;
        if (g == 4) seg.id = -1, snprintf(seg.hostname, sizeof seg.hostname, "fuzz2"); /* a second run */
        if (g == 5) rb_finish(&cs.j, path, &cs.next);
        if (g == 6) seg.exit = "finished", seg.finished = 1;
        rb_snapshot(&cs.j, path, &rp.prov, stage, stage ? &cs.next : &empty, g == 1 || g == 5, masks[g], CU_BLOCK,
                    &seg);
        cu_keep(g, path);
        const char *dump = getenv("FUZZ_CATCHUP_DUMP"); /* the generations, to craft an input */
        char to[1200];
        snprintf(to, sizeof to, "%s/gen%d.h5", dump ? dump : "", g);
        FILE *f = dump ? fopen(to, "wb") : NULL;
        if (f) fwrite(cs.gen[g], 1, cs.len[g], f), fclose(f);
    }
    snprintf(cs.out, sizeof cs.out, "%s/out.h5", fuzz_dir());
    snprintf(cs.prev, sizeof cs.prev, "%s/out.h5.prev", fuzz_dir());
    snprintf(cs.tmp, sizeof cs.tmp, "%s/out.h5.tmp", fuzz_dir());
    snprintf(cs.ref, sizeof cs.ref, "%s/ref.h5", fuzz_dir());
}

/* A file image opened read-only in memory under name (-1 when HDF5 refuses
 * it; two images open at once need two names: HDF5 takes a second open of
 * a name for the file already open). */
static hid_t cu_open_image(const uint8_t *img, size_t len, const char *name)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), f;
    H5Pset_fapl_core(fapl, 1 << 16, 0);
    H5Pset_file_image(fapl, (void *)img, len);
    f = H5Fopen(name, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    return f;
}

static void cu_one_line(const char *msg, const char *who)
{
    if (getenv("FUZZ_SHOW")) fprintf(stderr, "fuzz_catchup: %s: %s\n", who, msg);
    if (!msg[0] || strchr(msg, '\n')) {
        fprintf(stderr, "fuzz_catchup: %s: an empty or multi-line message: '%s'\n", who, msg);
        abort();
    }
}

static void cu_fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_catchup: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    const char *keep = getenv("FUZZ_CATCHUP_KEEP");
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "cp %s/out.h5* '%s'/", fuzz_dir(), keep ? keep : "");
    if (keep && system(cmd) != 0) fprintf(stderr, "fuzz_catchup: could not keep the files in %s\n", keep);
    abort();
}

/* ---- the snapshot's content ------------------------------------------ */

/* The values of a whole dataset, read as memory type of t. */
typedef struct cu_vals {
    int ok, rank;
    hsize_t dims[MD_MAX_DIMS];
    size_t n, esize;
    uint8_t *buf;              /* n * esize bytes; strings: n char * (owned, reclaimed) */
    hid_t mt, sp;
} cu_vals;

static void cu_vals_free(cu_vals *v)
{
    if (v->buf && v->esize == 0) H5Dvlen_reclaim(v->mt, v->sp, H5P_DEFAULT, v->buf);
    free(v->buf);
    if (v->mt >= 0) H5Tclose(v->mt);
    if (v->sp >= 0) H5Sclose(v->sp);
    memset(v, 0, sizeof *v);
    v->mt = v->sp = -1;
}

/* Reads dataset full of f (f < 0: none) as type t; want (when given): the rank and dims it must have. */
static void cu_read(hid_t f, const char *full, md_h5type t, const cu_vals *want, cu_vals *v)
{
    memset(v, 0, sizeof *v);
    v->mt = v->sp = -1;
    hid_t d = -1;
    H5E_BEGIN_TRY { d = f >= 0 && md_h5_exists(f, full) ? H5Dopen2(f, full, H5P_DEFAULT) : -1; }
    H5E_END_TRY;
    if (d < 0) return;
    v->sp = H5Dget_space(d);
    v->rank = v->sp >= 0 ? H5Sget_simple_extent_ndims(v->sp) : -1;
    v->n = 1;
    int ok = v->rank >= 1 && v->rank <= MD_MAX_DIMS && H5Sget_simple_extent_dims(v->sp, v->dims, NULL) == v->rank;
    for (int i = 0; ok && i < v->rank; i++) {
        ok = v->dims[i] <= (1u << 20) && (v->n *= v->dims[i]) <= (1u << 20);
        if (want) ok = ok && want->rank == v->rank && want->dims[i] == v->dims[i];
    }
    v->esize = md_h5type_size(t);
    v->mt = md_h5_mem_type(t);
    v->buf = ok ? calloc(v->n ? v->n : 1, v->esize ? v->esize : sizeof(char *)) : NULL;
    herr_t st = -1;
    H5E_BEGIN_TRY { st = v->buf ? H5Dread(d, v->mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v->buf) : -1; }
    H5E_END_TRY;
    H5Dclose(d);
    v->ok = st >= 0;
    if (!v->ok && v->buf && v->esize == 0) memset(v->buf, 0, v->n * sizeof(char *)); /* nothing to reclaim */
}

static int cu_same(const cu_vals *a, const cu_vals *b, size_t i)
{
    if (!b->ok) return 0;
    if (a->esize) return memcmp(a->buf + i * a->esize, b->buf + i * a->esize, a->esize) == 0;
    const char *x = ((char **)a->buf)[i], *y = ((char **)b->buf)[i];
    return x && y ? strcmp(x, y) == 0 : x == y;
}

/* The expected content of one dataset: the journal's values and which units wrote each element. */
typedef struct cu_dset {
    char full[MD_PATH_MAX + 32];
    md_h5type type;
    cu_vals snap, prev, pub;
    uint8_t *by;               /* [n] 0 = no unit, 1 = journal of g-1, 2 = journal of g */
    const void **val;          /* [n] the unit's value (into the results below) */
} cu_dset;

typedef struct cu_expect {
    cu_dset d[8];
    int n;
    md_result res[CU_BLOCK * 9];
    int n_res;
} cu_expect;

/* Marks the elements of piece pc (by: 1 or 2) with the unit's values (type: the plan's). */
static void cu_expect_piece(cu_expect *e, hid_t snap, hid_t prev, hid_t pub, const md_piece *pc, md_h5type type,
                            uint8_t by)
{
    char full[MD_PATH_MAX + 32];
    snprintf(full, sizeof full, "/selftest/%s", pc->path);
    cu_dset *d = NULL;
    for (int i = 0; i < e->n && !d; i++)
        if (!strcmp(e->d[i].full, full)) d = &e->d[i];
    if (!d) {
        if (e->n == 8) cu_fail("more datasets than expected", full);
        d = &e->d[e->n++];
        memset(d, 0, sizeof *d);
        snprintf(d->full, sizeof d->full, "%s", full);
        d->type = type;
        cu_read(snap, full, type, NULL, &d->snap);
        cu_read(prev, full, type, d->snap.ok ? &d->snap : NULL, &d->prev);
        cu_read(pub, full, type, d->snap.ok ? &d->snap : NULL, &d->pub);
        /* damage the snapshot took over as it was (a chunk copied as stored
           is not inflated: a corrupt one stays corrupt, as in the copy) */
        if (!d->snap.ok && d->prev.ok && d->pub.ok) cu_fail("a snapshot committed with a dataset it cannot read", full);
        d->by = calloc(d->snap.n ? d->snap.n : 1, 1);
        d->val = calloc(d->snap.n ? d->snap.n : 1, sizeof *d->val);
        if (!d->by || !d->val) abort();
    }
    if (!d->snap.ok) return; /* unreadable in a source too (above) */
    if (pc->rank != d->snap.rank) cu_fail("a unit was committed into a dataset of another rank", full);
    size_t elems = 1;
    for (int i = 0; i < pc->rank; i++) {
        if (pc->offset[i] < 0 || pc->count[i] < 1 || (hsize_t)(pc->offset[i] + pc->count[i]) > d->snap.dims[i])
            cu_fail("a unit was committed outside its dataset", full);
        elems *= (size_t)pc->count[i];
    }
    const char *s = pc->data;
    for (size_t k = 0; k < elems; k++) { /* k: row-major index within the piece */
        size_t lin = 0, rest = k, stride = elems;
        for (int i = 0; i < pc->rank; i++) {
            stride /= (size_t)pc->count[i];
            lin = lin * d->snap.dims[i] + (size_t)pc->offset[i] + rest / stride;
            rest %= stride;
        }
        d->by[lin] = by;
        if (d->snap.esize) {
            d->val[lin] = (const uint8_t *)pc->data + k * d->snap.esize;
        } else {
            d->val[lin] = s;
            s += strlen(s) + 1;
        }
    }
}

/* Every element of every dataset a unit wrote is as the head comment says. */
static void cu_check_dset(const cu_dset *d)
{
    for (size_t i = 0; i < d->snap.n; i++) {
        int journal = 0;
        if (d->by[i]) {
            if (d->snap.esize) journal = memcmp(d->snap.buf + i * d->snap.esize, d->val[i], d->snap.esize) == 0;
            else journal = ((char **)d->snap.buf)[i] && strcmp(((char **)d->snap.buf)[i], d->val[i]) == 0;
        }
        int ok = d->by[i] == 2 ? journal
                 : d->by[i] == 1 ? journal || cu_same(&d->snap, &d->pub, i)
                                 : cu_same(&d->snap, &d->prev, i) || cu_same(&d->snap, &d->pub, i);
        if (!ok) {
            char at[64];
            snprintf(at, sizeof at, "element %zu (written by %s)", i,
                     d->by[i] == 2 ? "the journal of g" : d->by[i] ? "the journal of g-1" : "no unit");
            fprintf(stderr, "fuzz_catchup: %s: %s holds neither the unit's value nor what a source file holds\n",
                    d->full, at);
            abort();
        }
    }
}

/* The done flags of the snapshot: the units applied are done, the others as in OUT.h5.prev. */
static void cu_check_done(hid_t snap, hid_t prev, int stage, const uint8_t *applied, int64_t n_units)
{
    char p[128];
    md_error err;
    int64_t n = 0, np = 0;
    snprintf(p, sizeof p, "/completion/selftest/stage%d/done", stage);
    uint8_t *done = md_h5_read_flags(snap, p, &n, &err), *was = NULL;
    if (!done) cu_fail("the snapshot's done flags cannot be read", err.msg);
    H5E_BEGIN_TRY { was = prev >= 0 ? md_h5_read_flags(prev, p, &np, &err) : NULL; }
    H5E_END_TRY;
    for (int64_t u = 0; u < n; u++) {
        int want = u < n_units && applied[u] ? 1 : was && np == n ? was[u] : done[u];
        if (done[u] != want) cu_fail("a done flag of the snapshot is not the units applied", p);
    }
    free(done);
    free(was);
}

/* The content checks after a commit (prev_img, pub_img: the two sources). */
static void cu_check_snapshot(const cu_pair *p, const md_blob *in, const uint8_t *prev_img, size_t prev_len,
                              const uint8_t *pub_img, size_t pub_len)
{
    hid_t fapl = md_h5_fapl_unlocked();
    hid_t snap = H5Fopen(cs.out, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (snap < 0) cu_fail("the committed snapshot does not open", cs.out);
    hid_t prev = cu_open_image(prev_img, prev_len, "prev.h5"), pub = cu_open_image(pub_img, pub_len, "pub.h5");
    md_kind_ctx ctx = md_kind_ctx_of(cs.j.job, cs.j.opts, 0);
    static cu_expect e;
    uint8_t applied[CU_BLOCK * 9] = {0};
    md_plan plan;
    rb_plan(&cs.j, p->stage, in, &plan);
    e.n = e.n_res = 0;
    for (int64_t u = 0; u < CU_BLOCK * 9 && u < 70; u++) {
        uint8_t by = p->apply_mask >> (u / CU_BLOCK) & 1 ? 2 : p->catch_mask >> (u / CU_BLOCK) & 1 ? 1 : 0;
        if (!by) continue;
        md_result *r = &e.res[e.n_res++];
        md_error err;
        md_result_init(r);
        if (ctx.exp->impl->compute(&ctx, NULL, NULL, p->stage, in, u, r, &err) != MD_OK) abort();
        size_t len, pos = 0;
        const void *bytes = md_result_bytes(r, &len);
        md_piece pc;
        while (md_result_next(bytes, len, &pos, &pc, &err) == 1) {
            const md_dset *ds = md_piece_check(&pc, plan.dsets, plan.n_dsets, &err);
            if (!ds) cu_fail("selftest's result does not fit its plan", err.msg);
            cu_expect_piece(&e, snap, prev, pub, &pc, ds->type, by);
        }
        applied[u] = 1;
    }
    for (int i = 0; i < e.n; i++) {
        if (e.d[i].snap.ok) cu_check_dset(&e.d[i]);
        cu_vals_free(&e.d[i].snap), cu_vals_free(&e.d[i].prev), cu_vals_free(&e.d[i].pub);
        free(e.d[i].by);
        free(e.d[i].val);
    }
    for (int i = 0; i < e.n_res; i++) md_result_free(&e.res[i]);
    md_plan_free(&plan);
    cu_check_done(snap, prev, p->stage, applied, 70);
    H5Fclose(snap);
    if (prev >= 0) H5Fclose(prev);
    if (pub >= 0) H5Fclose(pub);
}

/* ---- the clean pair: incremental = copy ------------------------------- */

static herr_t cu_cmp_one(hid_t a, const char *name, const H5O_info_t *info, void *arg)
{
    hid_t b = *(hid_t *)arg;
    if (info->type != H5O_TYPE_DATASET || !strncmp(name, "provenance", 10)) return 0;
    hid_t da = H5Dopen2(a, name, H5P_DEFAULT), db = H5Dopen2(b, name, H5P_DEFAULT);
    hid_t t = da >= 0 ? H5Dget_type(da) : -1, sp = da >= 0 ? H5Dget_space(da) : -1;
    int str = t >= 0 && H5Tis_variable_str(t) > 0;
    hid_t mt = str ? md_h5_str_type() : t >= 0 ? H5Tget_native_type(t, H5T_DIR_ASCEND) : -1;
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    size_t es = str ? sizeof(char *) : mt >= 0 ? H5Tget_size(mt) : 0;
    void *x = n >= 0 && es ? calloc((size_t)n + 1, es) : NULL, *y = x ? calloc((size_t)n + 1, es) : NULL;
    int same = y && db >= 0 && H5Dread(da, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0 &&
               H5Dread(db, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, y) >= 0;
    for (hssize_t i = 0; same && i < n; i++) {
        if (!str) same = memcmp((char *)x + i * es, (char *)y + i * es, es) == 0;
        else same = strcmp(((char **)x)[i] ? ((char **)x)[i] : "", ((char **)y)[i] ? ((char **)y)[i] : "") == 0;
    }
    if (str && x) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, x);
    if (str && y) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, y);
    free(x), free(y);
    if (mt >= 0) H5Tclose(mt);
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    if (da >= 0) H5Dclose(da);
    if (db >= 0) H5Dclose(db);
    if (!same) cu_fail("from a clean pair, the incremental snapshot differs from the copy in", name);
    return 0;
}

/* The snapshot the copy writes: OUT.h5 as published (now OUT.h5.prev) + the journal of g. */
static void cu_check_like_copy(const cu_pair *p, const md_blob *in)
{
    md_h5out *h = NULL;
    md_error err;
    md_result res;
    md_result_init(&res);
    unlink(cs.ref);
    if (md_h5out_begin(&h, cs.ref, cs.prev, NULL, &err) != MD_OK) cu_fail("the copy", err.msg);
    for (int64_t u = 0; u < 70; u++) {
        size_t len;
        if (!(p->apply_mask >> (u / CU_BLOCK) & 1)) continue;
        rb_compute(&cs.j, p->stage, in, u, &res);
        if (md_h5out_apply(h, "selftest", p->stage, u, md_result_bytes(&res, &len), len, &err) != MD_OK)
            cu_fail("the copy's apply", err.msg);
    }
    md_prov_numerics num;
    rb_numerics(&num, RB_SETUP);
    md_segment seg = {.id = -1, .start_time = 1.9e9, .end_time = 1.9e9, .world_size = 1, .hostname = "fz",
                      .exit = "running", .numerics = &num, .finished = p->stage == 1};
    if (md_h5out_commit(h, &seg, &err) != MD_OK) cu_fail("the copy's commit", err.msg);
    md_result_free(&res);
    hid_t fapl = md_h5_fapl_unlocked();
    hid_t a = H5Fopen(cs.out, H5F_ACC_RDONLY, fapl), b = H5Fopen(cs.ref, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (a < 0 || b < 0) cu_fail("the snapshots to compare do not open", NULL);
    H5Ovisit(a, H5_INDEX_NAME, H5_ITER_INC, cu_cmp_one, &b);
    H5Fclose(a);
    H5Fclose(b);
    unlink(cs.ref);
}

/* ---- one input -------------------------------------------------------- */

/* A refused step: OUT.h5 as published, no OUT.h5.tmp. */
static void cu_after_refusal(const uint8_t *pub, size_t pub_len)
{
    check_unchanged(cs.out, pub, pub_len);
}

/* Catch-up, apply, commit; 1 when committed. */
static int cu_snapshot(md_h5out *h, const cu_pair *p, const md_blob *in)
{
    md_error err;
    md_result res;
    md_result_init(&res);
    int rc = MD_OK;
    for (int pass = 1; pass <= 2 && rc == MD_OK; pass++) {
        unsigned mask = pass == 1 ? p->catch_mask : p->apply_mask;
        for (int64_t u = 0; u < 70 && rc == MD_OK; u++) {
            size_t len;
            if (!(mask >> (u / CU_BLOCK) & 1)) continue;
            rb_compute(&cs.j, p->stage, in, u, &res);
            const void *bytes = md_result_bytes(&res, &len);
            rc = pass == 1 ? md_h5out_catch_up(h, "selftest", p->stage, u, bytes, len, &err)
                           : md_h5out_apply(h, "selftest", p->stage, u, bytes, len, &err);
        }
    }
    md_result_free(&res);
    if (rc != MD_OK) {
        cu_one_line(err.msg, "catch-up or apply");
        md_h5out_discard(h);
        return 0;
    }
    md_prov_numerics num;
    rb_numerics(&num, RB_SETUP);
    md_segment seg = {.id = -1, .start_time = 1.9e9, .end_time = 1.9e9, .world_size = 1, .hostname = "fz",
                      .exit = "running", .numerics = &num, .finished = p->stage == 1};
    md_h5out_keep_previous(h);
    if (md_h5out_commit(h, &seg, &err) != MD_OK) {
        cu_one_line(err.msg, "commit");
        return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cs.gen[1]) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        cu_chain();
    }
    fz z = {data, size};
    unsigned head = fz_u8(&z), stale = head >> 5 & 3;
    const cu_pair *p = &PAIRS[head % CU_N_PAIRS];
    int first_of_run = head >> 2 & 1, below_api = head >> 4 & 1, n_prev = head >> 3 & 1 ? 1 + (int)(fz_u8(&z) % 8) : 0;
    size_t prev_len, pub_len, left = z.n;
    uint8_t *prev_img = below_api ? fb_damage_image(&z, cs.gen[p->prev], cs.len[p->prev], n_prev, &prev_len)
                                  : fz_edit_image(&z, cs.gen[p->prev], cs.len[p->prev], n_prev, &prev_len);
    int clean = z.n == left;
    left = z.n;
    uint8_t *pub_img = below_api ? fb_damage_image(&z, cs.gen[p->prev + 1], cs.len[p->prev + 1], 48, &pub_len)
                                 : fz_edit_image(&z, cs.gen[p->prev + 1], cs.len[p->prev + 1], 48, &pub_len);
    clean = clean && z.n == left;
    md_blob empty = {0};
    const md_blob *in = p->stage ? &cs.next : &empty;
    if (head >> 7 & 1) setenv("MECHDIFF_SNAPSHOT_REDEFLATE", "1", 1);
    else unsetenv("MECHDIFF_SNAPSHOT_REDEFLATE");
    unlink(cs.tmp);
    fuzz_write("out.h5", pub_img, pub_len);
    fuzz_write("out.h5.prev", prev_img, prev_len);
    md_snapfile_mark cur, prev;
    md_snapfile_mark_of(cs.out, &cur);
    md_snapfile_mark_of(cs.prev, &prev);
    if (stale == 1) cur.mtime_ns ^= 1; /* OUT.h5 written since its journal's header took the mark */
    if (stale == 2) prev.size++;
    int64_t ids = open_ids();
    md_h5out *h = NULL;
    md_error err;
    if (md_h5out_begin_incremental(&h, cs.out, &cur, &prev, first_of_run, &err) != MD_OK)
        cu_fail("md_h5out_begin_incremental failed", err.msg);
    if (!h) {
        if (clean && (stale == 0 || stale == 3)) cu_fail("a clean pair was not taken", NULL);
        if (stale == 1 || stale == 2) check_unchanged(cs.prev, prev_img, prev_len);
        cu_after_refusal(pub_img, pub_len);
    } else if (stale == 1 || stale == 2) {
        cu_fail("an incremental start from a file whose mark does not match", NULL);
    } else if (!cu_snapshot(h, p, in)) {
        cu_after_refusal(pub_img, pub_len);
    } else {
        check_unchanged(cs.prev, pub_img, pub_len); /* the replaced version, kept */
        cu_check_snapshot(p, in, prev_img, prev_len, pub_img, pub_len);
        md_verify_result res;
        int vrc = run_verify(cs.out, &res);
        if (clean && (vrc != MD_OK || res.defects)) cu_fail("verify finds defects in the snapshot of a clean pair", NULL);
        if (clean) cu_check_like_copy(p, in);
    }
    ids_closed(ids, "the incremental snapshot");
    free(prev_img);
    free(pub_img);
    return 0;
}
