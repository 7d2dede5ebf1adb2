/* h5out_data.c — what a snapshot of the results file writes into its
 * OUT.h5.tmp (the snapshot itself, begin/commit: h5out.c; the layout:
 * include/mechdiff/h5out.h): the datasets and /completion stages a plan
 * declares (md_h5out_define), each unit's pieces, done flag and region
 * (md_h5out_apply; md_h5out_catch_up copies a unit's chunks from the
 * published file), and the caches of open datasets and stage flags that
 * the commit flushes and closes. Ownership: the caches belong to the
 * md_h5out handle (h5out_int.h). */
#include <errno.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/h5out.h"
#include "mechdiff/snapfile.h"
#include "runner/h5catchup.h"
#include "runner/h5declared.h"
#include "runner/h5out_int.h"
#include "runner/h5scale.h"
#include "runner/h5util.h"

static hid_t cached_dataset(md_h5out *h, const char *full)
{
    for (int i = 0; i < h->n_dsets; i++)
        if (strcmp(h->dsets[i].path, full) == 0) return h->dsets[i].id;
    if (!md_h5_exists(h->file, full)) return -1;
    hid_t id = H5Dopen2(h->file, full, H5P_DEFAULT);
    if (id < 0) return -1;
    md_h5out_dset *grown = realloc(h->dsets, (size_t)(h->n_dsets + 1) * sizeof *grown);
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

static md_h5out_stage *get_stage(md_h5out *h, const char *exp, int stage, md_error *err)
{
    for (int i = 0; i < h->n_stages; i++)
        if (h->stages[i].stage == stage && strcmp(h->stages[i].exp, exp) == 0) return &h->stages[i];
    char path[1024];
    snprintf(path, sizeof path, "/completion/%s/stage%d", exp, stage);
    if (!md_h5_exists(h->file, path)) {
        md_error_set(err, "%s: %s is not defined", h->tmp, path);
        return NULL;
    }
    md_h5out_stage *grown = realloc(h->stages, (size_t)(h->n_stages + 1) * sizeof *grown);
    if (!grown) {
        md_error_set(err, "out of memory");
        return NULL;
    }
    h->stages = grown;
    md_h5out_stage *s = &h->stages[h->n_stages];
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

/* 1 when data[0..nbytes) is exactly n NUL-terminated strings. */
static int holds_strings(const char *data, size_t nbytes, size_t n)
{
    size_t nul = 0;
    for (size_t i = 0; i < nbytes; i++) nul += data[i] == '\0';
    return nul == n && (n == 0 || data[nbytes - 1] == '\0');
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
    /* a string dataset where the plan has numbers (a file edited by hand):
       the piece's bytes are not strings to walk */
    if (type == MD_H5_STR && !holds_strings(pc->data, pc->nbytes, elems))
        return md_error_set(err, "%s: %s holds strings, the piece of %zu bytes for it does not hold %zu of them: " MD_H5_EDITED_HINT,
                            h->tmp, full, pc->nbytes, elems);
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

/* Creates the stage group path (/completion/<exp>/stage<k>): its
 * attributes, the record of the datasets its plan declares (h5declared.h),
 * the done flags and regions with their `unit` scale. */
static int create_stage(md_h5out *h, const char *path, const char *kind, int exp_index, const md_plan *plan,
                        md_error *err)
{
    hid_t sg = md_h5_group_open_or_create(h->file, path);
    if (sg < 0) return md_error_set(err, "%s: cannot create %s", h->tmp, path);
    /* each attribute checked: a stage without them would not verify, and a resume could not read it */
    const char *bad = md_h5_attr_str(sg, "kind", kind) != MD_OK ? "kind"
                    : md_h5_attr_i64(sg, "experiment_index", exp_index) != MD_OK ? "experiment_index"
                    : md_h5_attr_i64(sg, "stage", plan->stage) != MD_OK ? "stage"
                    : md_h5_attr_i64(sg, "n_units", plan->n_units) != MD_OK ? "n_units"
                    : md_h5declared_write_list(sg, plan) != MD_OK ? MD_H5DECLARED_ATTR : NULL;
    if (bad) {
        H5Gclose(sg);
        return md_error_set(err, "%s: cannot write the attribute %s of %s", h->tmp, bad, path);
    }
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
    } else if (create_stage(h, path, kind, exp_index, plan, err) != MD_OK) {
        return MD_ERR;
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
    md_h5out_stage *s = get_stage(h, exp_name, stage, err);
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
    md_h5out_test_kill_point(h, ++h->n_applied);
    s->done[unit] = 1;
    if (s->n_regions == s->cap_regions) {
        int cap = s->cap_regions ? s->cap_regions * 2 : 256;
        md_h5out_region *g = realloc(s->regions, (size_t)cap * sizeof *g);
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
    md_h5out_stage *s = get_stage(h, exp_name, stage, err);
    if (!s) return NULL;
    *n_units = s->n;
    return s->done;
}

static int flush_stage(md_h5out_stage *s, md_error *err)
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

int md_h5out_flush_stages(md_h5out *h, md_error *err)
{
    int rc = MD_OK;
    for (int i = 0; i < h->n_stages && rc == MD_OK; i++) rc = flush_stage(&h->stages[i], err);
    return rc;
}

int md_h5out_close_caches(md_h5out *h)
{
    int bad = 0;
    for (int i = 0; i < h->n_dsets; i++) bad |= H5Dclose(h->dsets[i].id) < 0;
    free(h->dsets);
    for (int i = 0; i < h->n_stages; i++) {
        md_h5out_stage *s = &h->stages[i];
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
