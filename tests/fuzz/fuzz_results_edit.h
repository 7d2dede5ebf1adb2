/* fuzz_results_edit.h — hand edits of a results file, chosen by the fuzz
 * input, made through the HDF5 API on an in-memory copy (core driver, no
 * backing store) of a valid file (fuzz_results_base.h): what h5py, R or a
 * careless script does to a file — objects deleted, renamed, replaced by
 * others of another type, rank or shape (0-long and huge declared
 * dimensions with chunked storage), attributes of other classes and
 * values (NaN, negative, beyond 64 bits, arrays, empty, fixed strings
 * without their NUL, non-UTF-8), values overwritten, region strings
 * rewritten, soft, external and cyclic hard links, dimension scales
 * detached or made of the wrong dataset, groups and datasets of every
 * kind's outputs table. The file stays well-formed HDF5: mechdiff's
 * handling of wrong content is what is fuzzed, not libhdf5's parser.
 * Every decision reads the input through fz (zeros once it is used up, and
 * 0 is always the harmless choice). */
#ifndef MECHDIFF_FUZZ_RESULTS_EDIT_H
#define MECHDIFF_FUZZ_RESULTS_EDIT_H

#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>

#include "fuzz_common.h"
#include "fuzz_input.h"
#include "fuzz_results_base.h"
#include "mechdiff/experiment.h"
#include "runner/h5util.h"

/* Up to max bytes of text (a length byte, then the bytes; may hold NUL). */
static size_t fz_bytes(fz *z, char *buf, size_t max)
{
    size_t n = fz_u8(z) % (max + 1);
    for (size_t i = 0; i < n; i++) buf[i] = (char)fz_u8(z);
    return n;
}

static const char *const FZ_NAMES[] = {
    "kind", "n_units", "stage", "experiment_index", "units", "description", "sha256", "finished", "part_index",
    "part_count", "generation", "defined_generation", "layout_version", "job_sha256", "job_yaml", "mechdiff_version",
    "numeric_setup", "exit", "world_size", "start_time", "end_time", "hostname", "git_revision", "title", "job_name",
    "provenance", "created", "job_sha256_covers", "path", "config_json", "weight_sha256", "weight_sha256_format",
    "backend", "weight_precision", "gemm_precision", "blas", "devices", "models", "cols", "rows", "units", "source",
    "target", "CLASS", "NAME", "REFERENCE_LIST", "DIMENSION_LIST", "DIMENSION_LABELS", "done", "regions", "unit",
    "values", "label", "checksum", "column_mean", "centred", "row", "col", "stage0", "stage1", "stage2", "stage-1",
    "stagex", "stage00", "selftest", "completion", "segments", "0000", "0001", "0003", "done_at_start", "datasets",
    "base->instruct", "a->b", "note", "sets", "layers", "stage8", "stage99999999999", "stage+1",
};
#define FZ_N_NAMES (sizeof FZ_NAMES / sizeof *FZ_NAMES)

/* A name: one of FZ_NAMES, or fuzz text (no '/', not empty, not "."). */
static void fz_name(fz *z, char *buf, size_t len)
{
    unsigned c = fz_u8(z);
    if (c < 224) {
        snprintf(buf, len, "%s", FZ_NAMES[c % FZ_N_NAMES]);
        return;
    }
    char raw[40];
    size_t n = fz_bytes(z, raw, sizeof raw - 1);
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < len; i++)
        if (raw[i] != '/' && raw[i] != '\0') buf[k++] = raw[i];
    buf[k] = '\0';
    if (!k || !strcmp(buf, ".")) snprintf(buf, len, "x");
}

/* The link paths of the file (H5Lvisit: soft links listed, not followed). */
typedef struct fz_objs {
    char path[256][300];
    int is_dataset[256];
    int n;
} fz_objs;

static herr_t fz_list_one(hid_t g, const char *name, const H5L_info_t *info, void *arg)
{
    fz_objs *o = arg;
    H5O_info_t oi;
    if (o->n == 256) return 0;
    o->is_dataset[o->n] = info->type == H5L_TYPE_HARD && H5Oget_info_by_name2(g, name, &oi, H5O_INFO_BASIC,
                                                                               H5P_DEFAULT) >= 0 &&
                          oi.type == H5O_TYPE_DATASET;
    snprintf(o->path[o->n++], sizeof o->path[0], "/%s", name);
    return 0;
}

static void fz_list(hid_t f, fz_objs *o)
{
    o->n = 0;
    snprintf(o->path[o->n++], sizeof o->path[0], "/");
    H5Lvisit(f, H5_INDEX_NAME, H5_ITER_INC, fz_list_one, o);
}

/* One of the listed paths (fresh listing). */
static const char *fz_pick(fz *z, hid_t f, fz_objs *o)
{
    fz_list(f, o);
    return o->path[fz_u8(z) % o->n];
}

/* One of the listed datasets (any listed path when there is none). */
static const char *fz_pick_dataset(fz *z, hid_t f, fz_objs *o)
{
    fz_list(f, o);
    int n = 0, want;
    for (int i = 0; i < o->n; i++) n += o->is_dataset[i];
    if (!n) return o->path[0];
    want = (int)(fz_u8(z) % (unsigned)n);
    for (int i = 0; i < o->n; i++)
        if (o->is_dataset[i] && want-- == 0) return o->path[i];
    return o->path[0];
}

/* A path for something new: a listed group's path plus a name. */
static void fz_new_path(fz *z, hid_t f, fz_objs *o, char *buf, size_t len)
{
    const char *parent = fz_pick(z, f, o);
    char name[64];
    fz_name(z, name, sizeof name);
    snprintf(buf, len, "%s/%s", strcmp(parent, "/") ? parent : "", name);
}

static const double FZ_DOUBLES[] = {0.5, NAN, INFINITY, -INFINITY, -1, 2, 1e300, -0.0, 255, 3, 1.5, 0, 1, -2.5e-300};

static double fz_double(fz *z)
{
    unsigned c = fz_u8(z);
    if (c < 224) return FZ_DOUBLES[c % (sizeof FZ_DOUBLES / sizeof *FZ_DOUBLES)];
    uint64_t bits = fz_u64(z, 8);
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static const int64_t FZ_INTS[] = {0, 1, -1, 2, 3, 7, INT64_MAX, INT64_MIN, 16777216, 4096, 1LL << 40, 100000, -3, 5};

static int64_t fz_int(fz *z)
{
    unsigned c = fz_u8(z);
    if (c < 224) return FZ_INTS[c % (sizeof FZ_INTS / sizeof *FZ_INTS)];
    return (int64_t)fz_u64(z, 8);
}

/* Text for a string attribute or value: a region list, a setup, a time, fuzz bytes. */
static size_t fz_text(fz *z, char *buf, size_t len)
{
    static const char *const pick[] = {"selftest", "running", "finished", "2026-01-01T00:00:00Z", RB_SETUP, "",
                                       "0.1.0", RB_IDENTITY, "unit", "1", "c0,c1,c2", "1,2", "a,b"};
    unsigned c = fz_u8(z);
    if (c < 64) return (size_t)snprintf(buf, len, "%s", pick[c % (sizeof pick / sizeof *pick)]);
    if (c < 160) { /* regions: path[o+c,...];... */
        static const char *const dsets[] = {"values", "label", "checksum", "centred", "column_mean", "unit", "nope",
                                            "../selftest/values", "", "row", "col"};
        size_t at = 0;
        for (int piece = 0, np = 1 + (int)(fz_u8(z) % 3); piece < np && at + 80 < len; piece++) {
            at += (size_t)snprintf(buf + at, len - at, "%s%s[", piece ? ";" : "", dsets[fz_u8(z) % 11]);
            for (int d = 0, rank = (int)(fz_u8(z) % 8); d < rank && at + 60 < len; d++) {
                int64_t o = fz_int(z), n = fz_int(z);
                unsigned form = fz_u8(z) % 8;
                if (form == 1) at += (size_t)snprintf(buf + at, len - at, "%s99999999999999999999+1", d ? "," : "");
                else if (form == 2) at += (size_t)snprintf(buf + at, len - at, "%s%lld", d ? "," : "", (long long)o);
                else at += (size_t)snprintf(buf + at, len - at, "%s%lld+%lld", d ? "," : "", (long long)o, (long long)n);
            }
            if (fz_u8(z) % 8) at += (size_t)snprintf(buf + at, len - at, "]");
        }
        return at;
    }
    return fz_bytes(z, buf, len - 1 < 255 ? len - 1 : 255);
}

/* A new type: the classes mechdiff writes and the others. */
static hid_t fz_type(fz *z)
{
    hid_t t = -1;
    switch (fz_u8(z) % 20) {
    case 0: return H5Tcopy(H5T_STD_I64LE);
    case 1: return H5Tcopy(H5T_IEEE_F64LE);
    case 2: return H5Tcopy(H5T_IEEE_F32LE);
    case 3: return H5Tcopy(H5T_STD_I32LE);
    case 4: return H5Tcopy(H5T_STD_U8LE);
    case 5: t = H5Tcopy(H5T_C_S1); H5Tset_size(t, H5T_VARIABLE); H5Tset_cset(t, H5T_CSET_UTF8); return t;
    case 6: t = H5Tcopy(H5T_C_S1); H5Tset_size(t, 1 + fz_u8(z) % 40); H5Tset_strpad(t, H5T_STR_NULLPAD); return t;
    case 7: t = H5Tcopy(H5T_C_S1); H5Tset_size(t, 1 + fz_u8(z) % 40); H5Tset_strpad(t, H5T_STR_SPACEPAD); return t;
    case 8: return H5Tcopy(H5T_STD_U64LE);
    case 9: return H5Tcopy(H5T_STD_I16BE);
    case 10: return H5Tcopy(H5T_STD_I8LE);
    case 11: return H5Tcopy(H5T_IEEE_F64BE);
    case 12: t = H5Tcreate(H5T_COMPOUND, 16); H5Tinsert(t, "a", 0, H5T_STD_I64LE); H5Tinsert(t, "b", 8, H5T_IEEE_F64LE); return t;
    case 13: return H5Tvlen_create(H5T_STD_I32LE);
    case 14: { hsize_t two = 2; return H5Tarray_create2(H5T_STD_I64LE, 1, &two); }
    case 15: t = H5Tenum_create(H5T_STD_I8LE); { signed char v = 0; H5Tenum_insert(t, "no", &v); v = 1; H5Tenum_insert(t, "yes", &v); } return t;
    case 16: return H5Tcopy(H5T_STD_B8LE);
    case 17: t = H5Tcreate(H5T_OPAQUE, 4); H5Tset_tag(t, "fz"); return t;
    case 18: return H5Tcopy(H5T_STD_REF_OBJ);
    default: t = H5Tcopy(H5T_C_S1); H5Tset_size(t, H5T_VARIABLE); H5Tset_cset(t, H5T_CSET_ASCII); return t;
    }
}

/* A new dataspace: scalar, null, or simple of rank 0..7 with small, 0 or
 * huge dims (*big: storage must be chunked, values never written). */
static hid_t fz_space(fz *z, int *big, hsize_t *npoints)
{
    *big = 0;
    *npoints = 1;
    unsigned c = fz_u8(z) % 16;
    if (c == 1) return H5Screate(H5S_SCALAR);
    if (c == 2) return *npoints = 0, H5Screate(H5S_NULL);
    int rank = c == 0 ? 1 : (int)(fz_u8(z) % 8);
    if (rank == 0) return H5Screate(H5S_SCALAR);
    hsize_t dims[8], max[8];
    for (int i = 0; i < rank; i++) {
        unsigned d = fz_u8(z);
        dims[i] = d < 200 ? d % 5 : d < 240 ? (hsize_t)d : d < 250 ? (hsize_t)1 << 40 : (hsize_t)1 << (32 + d % 30);
        max[i] = fz_u8(z) % 4 == 3 ? H5S_UNLIMITED : dims[i];
        *npoints = dims[i] && *npoints > UINT64_MAX / dims[i] ? UINT64_MAX : *npoints * dims[i];
    }
    *big = *npoints > 4096;
    for (int i = 0; i < rank; i++) *big |= max[i] == H5S_UNLIMITED;
    return H5Screate_simple(rank, dims, max);
}

/* Writes a value of every element (small spaces only) through a double or string memory type. */
static void fz_fill(fz *z, hid_t obj, int is_attr, hid_t type, hsize_t n)
{
    if (n == 0 || n > 4096) return;
    H5T_class_t c = H5Tget_class(type);
    if (c == H5T_STRING) {
        char **s = calloc(n, sizeof *s), buf[300];
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        for (hsize_t i = 0; s && i < n; i++) {
            size_t k = fz_text(z, buf, sizeof buf);
            buf[k] = '\0';
            s[i] = strdup(buf);
        }
        if (s) is_attr ? H5Awrite(obj, mt, s) : H5Dwrite(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, s);
        for (hsize_t i = 0; s && i < n; i++) free(s[i]);
        free(s);
        H5Tclose(mt);
    } else if (c == H5T_INTEGER || c == H5T_FLOAT) {
        double *v = malloc(n * sizeof *v);
        int ints = c == H5T_INTEGER && fz_u8(z) % 2;
        for (hsize_t i = 0; v && i < n; i++) {
            if (ints) {
                int64_t k = fz_int(z);
                memcpy(&v[i], &k, sizeof k);
            } else v[i] = fz_double(z);
        }
        hid_t mt = ints ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE;
        if (v) is_attr ? H5Awrite(obj, mt, v) : H5Dwrite(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
        free(v);
    }
}

/* Attribute name of obj replaced by one of a fuzz-chosen type, space and value. */
static void fz_set_attr(fz *z, hid_t f, fz_objs *o)
{
    const char *at = fz_pick(z, f, o);
    char name[64];
    fz_name(z, name, sizeof name);
    H5Adelete_by_name(f, at, name, H5P_DEFAULT);
    unsigned shape = fz_u8(z) % 8;
    hid_t t = shape == 0 ? H5Tcopy(H5T_C_S1) : fz_type(z), sp;
    hsize_t n = 1, two = 2, zero = 0;
    if (shape == 0) { /* a fixed string of exactly its text: no NUL (NULLPAD), maybe non-UTF-8 */
        char buf[300];
        size_t k = fz_text(z, buf, sizeof buf);
        H5Tset_size(t, k ? k : 1);
        H5Tset_strpad(t, fz_u8(z) % 2 ? H5T_STR_NULLPAD : H5T_STR_NULLTERM);
        H5Tset_cset(t, H5T_CSET_UTF8);
        sp = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate_by_name(f, at, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (a >= 0) H5Awrite(a, t, buf), H5Aclose(a);
        H5Sclose(sp);
        H5Tclose(t);
        return;
    }
    if (shape == 1) sp = H5Screate_simple(1, &two, NULL), n = 2;
    else if (shape == 2) sp = H5Screate(H5S_NULL), n = 0;
    else if (shape == 3) sp = H5Screate_simple(1, &zero, NULL), n = 0;
    else sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate_by_name(f, at, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        fz_fill(z, a, 1, t, n);
        H5Aclose(a);
    }
    H5Sclose(sp);
    H5Tclose(t);
}

/* A new dataset at path (replacing what is there): fuzz type and space,
 * chunked (huge or unlimited dims) or contiguous, small ones filled. */
static hid_t fz_dataset_at(fz *z, hid_t f, const char *path, hid_t t, hid_t sp, int big, hsize_t n)
{
    H5Ldelete(f, path, H5P_DEFAULT);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    int rank = H5Sget_simple_extent_ndims(sp);
    if ((big || fz_u8(z) % 2) && rank > 0 && H5Sget_simple_extent_type(sp) == H5S_SIMPLE) {
        hsize_t chunk[8];
        for (int i = 0; i < rank; i++) chunk[i] = 1 + fz_u8(z) % 4;
        H5Pset_chunk(dcpl, rank, chunk);
        if (fz_u8(z) % 2) H5Pset_deflate(dcpl, 1);
    }
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t d = H5Dcreate2(f, path, t, sp, lcpl, dcpl, H5P_DEFAULT);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    if (d >= 0 && !big) fz_fill(z, d, 0, t, n);
    return d;
}

static void fz_new_dataset(fz *z, hid_t f, fz_objs *o)
{
    char path[400];
    if (fz_u8(z) % 2) snprintf(path, sizeof path, "%s", fz_pick_dataset(z, f, o));
    else fz_new_path(z, f, o, path, sizeof path);
    if (!strcmp(path, "/")) return;
    int big;
    hsize_t n;
    hid_t t = fz_type(z), sp = fz_space(z, &big, &n);
    hid_t d = fz_dataset_at(z, f, path, t, sp, big, n);
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    H5Tclose(t);
}

/* Overwrites a few elements of a dataset (values: range, NaN, flags 2;
 * strings: regions, labels). */
static void fz_write_values(fz *z, hid_t f, fz_objs *o)
{
    hid_t d = H5Dopen2(f, fz_pick_dataset(z, f, o), H5P_DEFAULT);
    if (d < 0) return;
    hid_t sp = H5Dget_space(d), t = H5Dget_type(d);
    hssize_t n = H5Sget_select_npoints(sp);
    int rank = H5Sget_simple_extent_ndims(sp);
    for (int k = 0, times = 1 + (int)(fz_u8(z) % 3); n > 0 && rank >= 1 && rank <= 8 && k < times; k++) {
        hsize_t dims[8], coord[8], one = 1;
        H5Sget_simple_extent_dims(sp, dims, NULL);
        for (int i = 0; i < rank; i++) coord[i] = dims[i] ? fz_u8(z) % dims[i] : 0;
        H5Sselect_elements(sp, H5S_SELECT_SET, 1, coord);
        hid_t ms = H5Screate_simple(1, &one, NULL);
        if (H5Tget_class(t) == H5T_STRING) {
            char buf[300];
            size_t len = fz_text(z, buf, sizeof buf);
            buf[len] = '\0';
            char *s = buf;
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, H5T_VARIABLE);
            H5Dwrite(d, mt, ms, sp, H5P_DEFAULT, &s);
            H5Tclose(mt);
        } else {
            double v = fz_double(z);
            H5Dwrite(d, H5T_NATIVE_DOUBLE, ms, sp, H5P_DEFAULT, &v);
        }
        H5Sclose(ms);
    }
    H5Tclose(t);
    H5Sclose(sp);
    H5Dclose(d);
}

/* A dataset of some kind's outputs table, in an experiment group of that
 * kind, with its declared type and rank (or not), its attributes and
 * scales: verify's table, scale and range checks. */
static void fz_output(fz *z, hid_t f)
{
    const md_kind *const *kinds = md_kinds();
    int nk = 0;
    while (kinds[nk]) nk++;
    const md_kind *k = kinds[fz_u8(z) % nk];
    int no = 0;
    while (k->outputs && k->outputs[no].path) no++;
    if (!no) return;
    const md_output *out = &k->outputs[fz_u8(z) % no];
    char grp[80], path[400], rel[300];
    snprintf(grp, sizeof grp, "/%s", fz_u8(z) % 2 ? "selftest" : k->name);
    hid_t g = H5Lexists(f, grp + 1, H5P_DEFAULT) > 0 ? H5Gopen2(f, grp, H5P_DEFAULT) : H5Gcreate2(f, grp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return;
    if (fz_u8(z) % 4) { /* the group says the kind */
        hid_t st = H5Tcopy(H5T_C_S1), sc = H5Screate(H5S_SCALAR);
        const char *kn = k->name;
        H5Tset_size(st, H5T_VARIABLE);
        H5Adelete(g, "kind");
        hid_t a = H5Acreate2(g, "kind", st, sc, H5P_DEFAULT, H5P_DEFAULT);
        if (a >= 0) H5Awrite(a, st, &kn), H5Aclose(a);
        H5Tclose(st), H5Sclose(sc);
    }
    size_t at = 0;
    for (const char *p = out->path; *p && at + 20 < sizeof rel; p++) { /* {placeholder} -> a name */
        if (*p != '{') { rel[at++] = *p; continue; }
        static const char *const fill[] = {"base", "instruct", "cities", "base->instruct", "a,b", "x"};
        at += (size_t)snprintf(rel + at, sizeof rel - at, "%s", fill[fz_u8(z) % 6]);
        p = strchr(p, '}');
        if (!p) break;
    }
    rel[at] = '\0';
    snprintf(path, sizeof path, "%s/%s", grp, rel);
    int rank = 1;
    for (const char *p = out->dims; p && *p; p++) rank += *p == ',';
    if (!out->dims || !*out->dims) rank = 0;
    hsize_t dims[MD_MAX_DIMS], n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i] = fz_u8(z) % 4;
    hid_t t = fz_u8(z) % 4 ? md_h5_file_type(out->type) : fz_type(z);
    hid_t sp = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t d = fz_dataset_at(z, f, path, t, sp, 0, n);
    if (d >= 0) {
        char dimname[64];
        for (int i = 0; i < rank && fz_u8(z) % 4; i++) { /* its scale: the dimension's name, in the group */
            const char *p = out->dims;
            for (int s = 0; s < i && p; s++) p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL;
            snprintf(dimname, sizeof dimname, "%.*s", p ? (int)strcspn(p, ",") : 0, p ? p : "");
            char spath[200];
            snprintf(spath, sizeof spath, "%s/%s", grp, dimname[0] ? dimname : "dim");
            hid_t s = H5Lexists(f, spath + 1, H5P_DEFAULT) > 0 ? H5Dopen2(f, spath, H5P_DEFAULT) : -1;
            if (s < 0) {
                hsize_t len = fz_u8(z) % 8 ? dims[i] : dims[i] + 1;
                hid_t ssp = H5Screate_simple(1, &len, NULL);
                s = H5Dcreate2(f, spath, H5T_STD_I64LE, ssp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
                H5Sclose(ssp);
                if (s >= 0) H5DSset_scale(s, dimname);
            }
            if (s >= 0) H5DSattach_scale(d, s, (unsigned)i), H5DSset_label(d, (unsigned)i, dimname), H5Dclose(s);
        }
        const char *units = out->units ? out->units : "", *desc = out->description ? out->description : "";
        hid_t st = H5Tcopy(H5T_C_S1), sc = H5Screate(H5S_SCALAR);
        H5Tset_size(st, H5T_VARIABLE);
        hid_t a = fz_u8(z) % 4 ? H5Acreate2(d, "units", st, sc, H5P_DEFAULT, H5P_DEFAULT) : -1;
        if (a >= 0) H5Awrite(a, st, &units), H5Aclose(a);
        a = fz_u8(z) % 4 ? H5Acreate2(d, "description", st, sc, H5P_DEFAULT, H5P_DEFAULT) : -1;
        if (a >= 0) H5Awrite(a, st, &desc), H5Aclose(a);
        H5Tclose(st), H5Sclose(sc);
        H5Dclose(d);
    }
    H5Sclose(sp);
    H5Tclose(t);
    H5Gclose(g);
}

/* Soft, external or hard links: dangling, to the file itself, cycles. */
static void fz_link(fz *z, hid_t f, fz_objs *o)
{
    char at[400], target[400];
    unsigned kind = fz_u8(z) % 4;
    if (fz_u8(z) % 2) snprintf(at, sizeof at, "%s", fz_pick(z, f, o));
    else fz_new_path(z, f, o, at, sizeof at);
    if (!strcmp(at, "/")) return;
    if (fz_u8(z) % 4) snprintf(target, sizeof target, "%s", fz_pick(z, f, o));
    else fz_new_path(z, f, o, target, sizeof target);
    if (kind == 0 || kind == 3) { /* a hard link to an existing object: a group inside itself is a cycle */
        if (H5Lexists(f, "/", H5P_DEFAULT) < 0) return;
        H5Ldelete(f, at, H5P_DEFAULT);
        H5Lcreate_hard(f, target, f, at, H5P_DEFAULT, H5P_DEFAULT);
        return;
    }
    H5Ldelete(f, at, H5P_DEFAULT);
    if (kind == 1) H5Lcreate_soft(fz_u8(z) % 4 ? target : at, f, at, H5P_DEFAULT, H5P_DEFAULT);
    else H5Lcreate_external(fz_u8(z) % 2 ? "results.h5" : "missing.h5", target, f, at, H5P_DEFAULT, H5P_DEFAULT);
}

/* Dimension scales: detached, a dataset made a scale, a committed datatype among the datasets. */
static void fz_scales(fz *z, hid_t f, fz_objs *o)
{
    char a[300];
    snprintf(a, sizeof a, "%s", fz_pick(z, f, o));
    const char *b = fz_pick(z, f, o);
    unsigned what = fz_u8(z) % 4;
    if (what == 3) {
        char path[400];
        fz_new_path(z, f, o, path, sizeof path);
        hid_t t = H5Tcopy(H5T_STD_I32LE);
        H5Tcommit2(f, path, t, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Tclose(t);
        return;
    }
    hid_t d = H5Dopen2(f, a, H5P_DEFAULT), s = H5Dopen2(f, b, H5P_DEFAULT);
    unsigned dim = fz_u8(z) % 3;
    if (d >= 0 && what == 0 && s >= 0) H5DSdetach_scale(d, s, dim);
    if (d >= 0 && what == 1) H5DSset_scale(d, fz_u8(z) % 2 ? "unit" : NULL);
    if (d >= 0 && what == 2 && s >= 0) {
        if (H5DSis_scale(s) <= 0) H5DSset_scale(s, "fz");
        H5DSattach_scale(d, s, dim);
    }
    if (d >= 0) H5Dclose(d);
    if (s >= 0) H5Dclose(s);
}

/* A dataset replaced by one of its own type and rank, a dimension one
 * longer, shorter, 0 or huge (a reshape by hand; the attributes go). */
static void fz_reshape(fz *z, hid_t f, fz_objs *o)
{
    char path[300];
    snprintf(path, sizeof path, "%s", fz_pick_dataset(z, f, o));
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    if (d < 0) return;
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    hsize_t dims[8], n = 1;
    int rank = H5Sget_simple_extent_ndims(sp), big = 0;
    H5Dclose(d);
    if (rank >= 1 && rank <= 8 && H5Sget_simple_extent_dims(sp, dims, NULL) == rank) {
        unsigned k = fz_u8(z) % (unsigned)rank, how = fz_u8(z) % 4;
        dims[k] = how == 0 ? dims[k] + 1 : how == 1 ? (dims[k] ? dims[k] - 1 : 0) : how == 2 ? 0 : (hsize_t)1 << 36;
        for (int i = 0; i < rank; i++) n *= dims[i];
        big = how == 3;
        hid_t nsp = H5Screate_simple(rank, dims, NULL);
        hid_t nd = fz_dataset_at(z, f, path, t, nsp, big, n);
        if (nd >= 0) H5Dclose(nd);
        H5Sclose(nsp);
    }
    H5Sclose(sp);
    H5Tclose(t);
}

/* One edit of the file, chosen by the input. */
static void fz_edit(fz *z, hid_t f, fz_objs *o)
{
    char path[400];
    switch (fz_u8(z) % 11) {
    case 0: H5Ldelete(f, fz_pick(z, f, o), H5P_DEFAULT); break;
    case 1: {
        const char *at = fz_pick(z, f, o);
        char name[64];
        fz_name(z, name, sizeof name);
        H5Adelete_by_name(f, at, name, H5P_DEFAULT);
        break;
    }
    case 2: fz_set_attr(z, f, o); break;
    case 3: fz_new_dataset(z, f, o); break;
    case 4: fz_write_values(z, f, o); break;
    case 5: fz_output(z, f); break;
    case 6: fz_link(z, f, o); break;
    case 7: fz_scales(z, f, o); break;
    case 8: /* rename (stage0 -> stage1, a dataset into another group) */
        snprintf(path, sizeof path, "%s", fz_pick(z, f, o));
        if (strcmp(path, "/")) {
            char to[400];
            fz_new_path(z, f, o, to, sizeof to);
            H5Lmove(f, path, f, to, H5P_DEFAULT, H5P_DEFAULT);
        }
        break;
    case 9: fz_reshape(z, f, o); break;
    default: { /* a new group (a stage, an experiment, a segment) */
        fz_new_path(z, f, o, path, sizeof path);
        hid_t g = H5Gcreate2(f, path, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g >= 0) H5Gclose(g);
    }
    }
}

/* A copy of the file image[0..len) with up to max_edits edits of the input
 * made on it (core driver, in memory): its bytes (malloc'd) and *out_len. */
static inline uint8_t *fz_edit_image(fz *z, const uint8_t *image, size_t len, int max_edits, size_t *out_len)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, 1 << 16, 0);
    H5Pset_file_image(fapl, (void *)image, len);
    hid_t f = H5Fopen("edit.h5", H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    if (f < 0) abort();
    static fz_objs objs;
    for (int i = 0; i < max_edits && z->n; i++) fz_edit(z, f, &objs);
    H5Fflush(f, H5F_SCOPE_GLOBAL);
    ssize_t n = H5Fget_file_image(f, NULL, 0);
    uint8_t *img = n > 0 ? malloc((size_t)n) : NULL;
    if (!img || H5Fget_file_image(f, img, (size_t)n) != n) abort();
    H5Fclose(f);
    *out_len = (size_t)n;
    return img;
}

#endif
