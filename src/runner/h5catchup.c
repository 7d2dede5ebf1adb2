/* h5catchup.c — catching OUT.h5.prev up with the published OUT.h5 by copying
 * compressed chunks and provenance (see src/runner/h5catchup.h). */
#include "runner/h5catchup.h"

#include <stdlib.h>
#include <string.h>

#include "runner/h5util.h"

/* A dataset of the published file and the chunks already copied from it. */
typedef struct src_dset {
    char path[MD_PATH_MAX + 160];
    hid_t id;                  /* owned; -1 = not copyable (write values) */
    int rank;
    hsize_t dims[MD_MAX_DIMS], chunk[MD_MAX_DIMS];
    uint64_t raw;              /* bytes of one chunk's values (at most 2^40) */
    uint64_t *seen;            /* open addressing: linear chunk index + 1, 0 = empty (owned) */
    size_t n_seen, cap_seen;   /* cap_seen: a power of two */
} src_dset;

struct md_h5catchup {
    hid_t file;                /* the published file, read-only (owned) */
    char name[4096];           /* its path, for messages */
    src_dset *dsets;           /* owned */
    int n_dsets;
    void *buf;                 /* one stored chunk (owned) */
    size_t cap;
    int64_t chunks;
    double bytes;
};

int md_h5catchup_open(md_h5catchup **out, hid_t published, md_error *err)
{
    *out = calloc(1, sizeof **out);
    if (!*out) {
        H5Fclose(published);
        return md_error_set(err, "out of memory");
    }
    (*out)->file = published;
    if (H5Fget_name(published, (*out)->name, sizeof (*out)->name) < 0) snprintf((*out)->name, sizeof (*out)->name, "OUT.h5");
    return MD_OK;
}

/* 1 when the chunks of src and dst can be exchanged as stored: the same
 * fixed-size type, shape, chunk shape and filters. */
static int same_storage(hid_t src, hid_t dst, src_dset *d)
{
    hid_t ts = H5Dget_type(src), td = H5Dget_type(dst);
    hid_t ss = H5Dget_space(src), sd = H5Dget_space(dst);
    hid_t ps = H5Dget_create_plist(src), pd = H5Dget_create_plist(dst);
    hsize_t dd[MD_MAX_DIMS], cd[MD_MAX_DIMS];
    int ok = ts >= 0 && td >= 0 && ss >= 0 && sd >= 0 && ps >= 0 && pd >= 0 && H5Tequal(ts, td) > 0 &&
             H5Tdetect_class(ts, H5T_VLEN) == 0 && H5Tdetect_class(ts, H5T_REFERENCE) == 0 &&
             !(H5Tget_class(ts) == H5T_STRING && H5Tis_variable_str(ts) != 0);
    d->rank = ok ? H5Sget_simple_extent_ndims(ss) : -1;
    ok = ok && d->rank >= 1 && d->rank <= MD_MAX_DIMS && H5Sget_simple_extent_ndims(sd) == d->rank &&
         H5Sget_simple_extent_dims(ss, d->dims, NULL) >= 0 && H5Sget_simple_extent_dims(sd, dd, NULL) >= 0 &&
         memcmp(d->dims, dd, (size_t)d->rank * sizeof *dd) == 0 && H5Pget_layout(ps) == H5D_CHUNKED &&
         H5Pget_layout(pd) == H5D_CHUNKED && H5Pget_chunk(ps, d->rank, d->chunk) == d->rank &&
         H5Pget_chunk(pd, d->rank, cd) == d->rank && memcmp(d->chunk, cd, (size_t)d->rank * sizeof *cd) == 0;
    d->raw = ok ? H5Tget_size(ts) : 0;
    for (int i = 0; ok && i < d->rank; i++) d->raw = d->chunk[i] > ((uint64_t)1 << 40) / (d->raw ? d->raw : 1)
                                                      ? (uint64_t)1 << 40 : d->raw * d->chunk[i];
    int nf = ok ? H5Pget_nfilters(ps) : -1;
    ok = ok && nf >= 0 && H5Pget_nfilters(pd) == nf;
    for (int i = 0; ok && i < nf; i++) {
        unsigned flags, vs[8], vd[8];
        size_t ns = 8, nd = 8;
        ok = H5Pget_filter2(ps, (unsigned)i, &flags, &ns, vs, 0, NULL, NULL) ==
                 H5Pget_filter2(pd, (unsigned)i, &flags, &nd, vd, 0, NULL, NULL) &&
             ns == nd && memcmp(vs, vd, (ns < 8 ? ns : 8) * sizeof *vs) == 0;
    }
    H5Tclose(ts);
    H5Tclose(td);
    H5Sclose(ss);
    H5Sclose(sd);
    H5Pclose(ps);
    H5Pclose(pd);
    return ok;
}

/* The published dataset at `full` (opened and checked against dst once). */
static src_dset *find_dset(md_h5catchup *cu, hid_t dst, const char *full, md_error *err)
{
    for (int i = 0; i < cu->n_dsets; i++)
        if (strcmp(cu->dsets[i].path, full) == 0) return &cu->dsets[i];
    src_dset *grown = realloc(cu->dsets, (size_t)(cu->n_dsets + 1) * sizeof *grown);
    if (!grown) {
        md_error_set(err, "out of memory");
        return NULL;
    }
    cu->dsets = grown;
    src_dset *d = &cu->dsets[cu->n_dsets++];
    memset(d, 0, sizeof *d);
    snprintf(d->path, sizeof d->path, "%s", full);
    H5E_BEGIN_TRY
    {
        d->id = md_h5_exists(cu->file, full) ? H5Dopen2(cu->file, full, H5P_DEFAULT) : -1;
        if (d->id >= 0 && !same_storage(d->id, dst, d)) {
            H5Dclose(d->id);
            d->id = -1;
        }
    }
    H5E_END_TRY;
    return d;
}

/* Adds a linear chunk index to d's set: 1 when it was not there. */
static int seen_add(src_dset *d, uint64_t linear, md_error *err)
{
    if (2 * (d->n_seen + 1) > d->cap_seen) {
        size_t cap = d->cap_seen ? 2 * d->cap_seen : 64;
        uint64_t *t = calloc(cap, sizeof *t);
        if (!t) return md_error_set(err, "out of memory");
        for (size_t i = 0; i < d->cap_seen; i++) {
            if (!d->seen[i]) continue;
            size_t k = (size_t)(d->seen[i] * 0x9E3779B97F4A7C15ull) & (cap - 1);
            while (t[k]) k = (k + 1) & (cap - 1);
            t[k] = d->seen[i];
        }
        free(d->seen);
        d->seen = t;
        d->cap_seen = cap;
    }
    uint64_t key = linear + 1;
    size_t k = (size_t)(key * 0x9E3779B97F4A7C15ull) & (d->cap_seen - 1);
    for (; d->seen[k]; k = (k + 1) & (d->cap_seen - 1))
        if (d->seen[k] == key) return 0;
    d->seen[k] = key;
    d->n_seen++;
    return 1;
}

/* The chunk grid of a piece: first and last chunk index per dimension. */
static int piece_grid(const src_dset *d, const md_piece *pc, hsize_t first[], hsize_t last[])
{
    if (pc->rank != d->rank) return 0;
    for (int i = 0; i < d->rank; i++) {
        if (pc->count[i] < 1 || (hsize_t)(pc->offset[i] + pc->count[i]) > d->dims[i]) return 0;
        first[i] = (hsize_t)pc->offset[i] / d->chunk[i];
        last[i] = (hsize_t)(pc->offset[i] + pc->count[i] - 1) / d->chunk[i];
    }
    return 1;
}

/* Steps idx through the grid first..last (the last dimension fastest): 0 at the end. */
static int grid_next(int rank, const hsize_t first[], const hsize_t last[], hsize_t idx[])
{
    for (int i = rank - 1; i >= 0; i--) {
        if (idx[i] < last[i]) {
            idx[i]++;
            return 1;
        }
        idx[i] = first[i];
    }
    return 0;
}

/* 1 when every chunk of the grid is stored in the published file. */
static int all_stored(const src_dset *d, const hsize_t first[], const hsize_t last[])
{
    hsize_t idx[MD_MAX_DIMS], off[MD_MAX_DIMS];
    memcpy(idx, first, (size_t)d->rank * sizeof *idx);
    do {
        for (int i = 0; i < d->rank; i++) off[i] = idx[i] * d->chunk[i];
        unsigned mask = 0;
        haddr_t addr = HADDR_UNDEF;
        hsize_t size = 0;
        herr_t st;
        H5E_BEGIN_TRY { st = H5Dget_chunk_info_by_coord(d->id, off, &mask, &addr, &size); }
        H5E_END_TRY;
        if (st < 0 || addr == HADDR_UNDEF || size == 0) return 0;
    } while (grid_next(d->rank, first, last, idx));
    return 1;
}

/* Copies the stored chunk at offset off from d into dst. */
static int copy_chunk(md_h5catchup *cu, const src_dset *d, hid_t dst, const hsize_t off[], md_error *err)
{
    hsize_t size = 0;
    if (H5Dget_chunk_storage_size(d->id, off, &size) < 0 || size == 0)
        return md_error_set(err, "%s: %s: cannot find the size of a stored chunk", cu->name, d->path);
    /* The size comes from the file's chunk index, which damage may set to
       anything: a stored chunk holds its values deflated (deflate adds a few
       bytes a block), never more than half as much again. */
    if (size > d->raw + d->raw / 2 + 4096)
        return md_error_set(err, "%s: %s: a stored chunk of %llu bytes, where its values take %llu: the file is damaged",
                            cu->name, d->path, (unsigned long long)size, (unsigned long long)d->raw);
    if (size > cu->cap) {
        void *b = realloc(cu->buf, (size_t)size);
        if (!b) return md_error_set(err, "out of memory (a chunk of %llu bytes)", (unsigned long long)size);
        cu->buf = b;
        cu->cap = (size_t)size;
    }
    uint32_t filters = 0;
    if (H5Dread_chunk(d->id, H5P_DEFAULT, off, &filters, cu->buf) < 0)
        return md_error_set(err, "%s: %s: cannot read a stored chunk", cu->name, d->path);
    if (H5Dwrite_chunk(dst, H5P_DEFAULT, filters, off, (size_t)size, cu->buf) < 0)
        return md_error_set(err, "%s: cannot write a stored chunk into the snapshot", d->path);
    cu->chunks++;
    cu->bytes += (double)size;
    return MD_OK;
}

int md_h5catchup_copy_piece(md_h5catchup *cu, hid_t dst, const char *full, const md_piece *pc, md_error *err)
{
    src_dset *d = find_dset(cu, dst, full, err);
    if (!d) return MD_ERR;
    hsize_t first[MD_MAX_DIMS], last[MD_MAX_DIMS], idx[MD_MAX_DIMS], off[MD_MAX_DIMS];
    if (d->id < 0 || !piece_grid(d, pc, first, last) || !all_stored(d, first, last)) return 0;
    memcpy(idx, first, (size_t)d->rank * sizeof *idx);
    do {
        uint64_t linear = 0;
        for (int i = 0; i < d->rank; i++) {
            hsize_t n = (d->dims[i] + d->chunk[i] - 1) / d->chunk[i];
            linear = linear * n + idx[i];
            off[i] = idx[i] * d->chunk[i];
        }
        int fresh = seen_add(d, linear, err);
        if (fresh < 0 || (fresh && copy_chunk(cu, d, dst, off, err) != MD_OK)) return MD_ERR;
    } while (grid_next(d->rank, first, last, idx));
    return 1;
}

/* H5Aiterate callback: (re)writes attribute `name` of src on the object *arg. */
static herr_t copy_attr(hid_t src, const char *name, const H5A_info_t *info, void *arg)
{
    (void)info;
    hid_t dst = *(hid_t *)arg;
    hid_t a = H5Aopen(src, name, H5P_DEFAULT), t = a >= 0 ? H5Aget_type(a) : -1, sp = a >= 0 ? H5Aget_space(a) : -1;
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    size_t bytes = t >= 0 && n >= 0 ? (size_t)n * H5Tget_size(t) : 0;
    void *buf = bytes || n == 0 ? calloc(bytes ? bytes : 1, 1) : NULL;
    int read = buf && H5Tdetect_class(t, H5T_REFERENCE) == 0 && H5Aread(a, t, buf) >= 0;
    int rc = read && (H5Aexists(dst, name) <= 0 || H5Adelete(dst, name) >= 0) ? 0 : -1;
    hid_t b = rc == 0 ? H5Acreate2(dst, name, t, sp, H5P_DEFAULT, H5P_DEFAULT) : -1;
    if (b < 0 || H5Awrite(b, t, buf) < 0) rc = -1;
    if (read && (H5Tdetect_class(t, H5T_VLEN) > 0 || H5Tis_variable_str(t) > 0))
        H5Dvlen_reclaim(t, sp, H5P_DEFAULT, buf); /* the strings H5Aread allocated */
    if (b >= 0) H5Aclose(b);
    free(buf);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return rc;
}

/* Every attribute of src_path in the published file onto the same object of dst_file. */
static int copy_attrs(hid_t src_file, hid_t dst_file, const char *path)
{
    hid_t s = H5Oopen(src_file, path, H5P_DEFAULT), d = s >= 0 ? H5Oopen(dst_file, path, H5P_DEFAULT) : -1;
    int rc = d >= 0 && H5Aiterate2(s, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, copy_attr, &d) >= 0 ? MD_OK : MD_ERR;
    if (d >= 0) H5Oclose(d);
    if (s >= 0) H5Oclose(s);
    return rc;
}

typedef struct seg_copy {
    hid_t src_file, dst_file, dst_segs;
} seg_copy;

/* H5Literate callback over the published segments: attributes, or the whole group when dst lacks it. */
static herr_t copy_segment(hid_t src_segs, const char *name, const H5L_info_t *info, void *arg)
{
    (void)info;
    seg_copy *sc = arg;
    if (H5Lexists(sc->dst_segs, name, H5P_DEFAULT) <= 0)
        return H5Ocopy(src_segs, name, sc->dst_segs, name, H5P_DEFAULT, H5P_DEFAULT) < 0 ? -1 : 0;
    char path[300];
    snprintf(path, sizeof path, "/provenance/segments/%s", name);
    return copy_attrs(sc->src_file, sc->dst_file, path) == MD_OK ? 0 : -1;
}

int md_h5catchup_copy_provenance(md_h5catchup *cu, hid_t dst_file, md_error *err)
{
    int rc = copy_attrs(cu->file, dst_file, "/") | copy_attrs(cu->file, dst_file, "/provenance");
    if (rc == MD_OK && md_h5_exists(cu->file, "/provenance/segments")) {
        hid_t src = H5Gopen2(cu->file, "/provenance/segments", H5P_DEFAULT);
        seg_copy sc = {.src_file = cu->file, .dst_file = dst_file,
                       .dst_segs = md_h5_group_open_or_create(dst_file, "/provenance/segments")};
        if (src < 0 || sc.dst_segs < 0 || H5Literate(src, H5_INDEX_NAME, H5_ITER_INC, NULL, copy_segment, &sc) < 0)
            rc = MD_ERR;
        if (sc.dst_segs >= 0) H5Gclose(sc.dst_segs);
        if (src >= 0) H5Gclose(src);
    }
    return rc == MD_OK ? MD_OK : md_error_set(err, "cannot copy the provenance of the published file");
}

void md_h5catchup_counts(const md_h5catchup *cu, int64_t *chunks, double *bytes)
{
    *chunks = cu ? cu->chunks : 0;
    *bytes = cu ? cu->bytes : 0;
}

void md_h5catchup_close(md_h5catchup *cu)
{
    if (!cu) return;
    for (int i = 0; i < cu->n_dsets; i++) {
        if (cu->dsets[i].id >= 0) H5Dclose(cu->dsets[i].id);
        free(cu->dsets[i].seen);
    }
    free(cu->dsets);
    free(cu->buf);
    if (cu->file >= 0) H5Fclose(cu->file);
    free(cu);
}
