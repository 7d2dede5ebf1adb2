/* h5digest.c — per-dataset SHA-256 of the results (see h5digest.h). */
#include "runner/h5digest.h"

#include <stdlib.h>
#include <string.h>

#include "mechdiff/experiment.h"
#include "mechdiff/sha256.h"
#include "runner/h5util.h"

/* The little-endian memory type that reproduces the file's bytes. */
static hid_t le_type(md_h5type t)
{
    return t == MD_H5_STR ? md_h5_str_type() : md_h5_file_type(t);
}

/* md_h5_block_fn: a block of values into the hash (arg: md_h5digest's
 * block), strings as their bytes and NUL. */
typedef struct hash_block {
    md_sha256 *ctx;
    md_h5type type;
} hash_block;

static int hash_values(void *buf, int64_t first, int64_t n, void *arg)
{
    (void)first;
    const hash_block *h = arg;
    if (h->type != MD_H5_STR) {
        md_sha256_update(h->ctx, buf, (size_t)n * md_h5type_size(h->type));
        return 0;
    }
    char **s = buf;
    for (int64_t i = 0; i < n; i++) md_sha256_update(h->ctx, s[i] ? s[i] : "", s[i] ? strlen(s[i]) + 1 : 1);
    return 0;
}

int md_h5digest_dataset(hid_t file, const char *full, char hex[65], md_error *err)
{
    int rank;
    int64_t dims[MD_MAX_DIMS];
    md_h5type type;
    if (md_h5_dataset_shape(file, full, &rank, dims, &type) != 1)
        return md_error_set(err, "%s: not a dataset of a type mechdiff writes", full);
    /* A dataset declared far larger than the file holds is mostly fill that
       nobody wrote (an edit by hand): hashing it would read that fill for
       hours. Deflate packs at most ~1032:1, so no written dataset comes near. */
    hsize_t file_size = 0;
    double declared = type == MD_H5_STR ? 16.0 : (double)md_h5type_size(type);
    for (int i = 0; i < rank; i++) declared *= (double)dims[i];
    hid_t fid = H5Iget_file_id(file); /* file may be a group of it */
    herr_t sized = fid >= 0 ? H5Fget_filesize(fid, &file_size) : -1;
    if (fid >= 0) H5Fclose(fid);
    if (sized >= 0 && declared > 2048.0 * (double)file_size + (double)(64 << 20))
        return md_error_set(err, "%s: declares %.0f bytes of values, more than a file of %llu bytes can hold written: "
                            MD_H5_EDITED_HINT, full, declared, (unsigned long long)file_size);
    md_sha256 ctx;
    if (md_sha256_init(&ctx, err) != MD_OK) return MD_ERR;
    hash_block h = {&ctx, type};
    hid_t d = H5Dopen2(file, full, H5P_DEFAULT), mt = le_type(type);
    size_t esize = type == MD_H5_STR ? sizeof(char *) : md_h5type_size(type);
    int rc = d >= 0 && mt >= 0 ? md_h5_read_blocks(d, mt, esize, (size_t)16 << 20, hash_values, &h) : -1;
    if (mt >= 0) H5Tclose(mt);
    if (d >= 0) H5Dclose(d);
    uint8_t dg[MD_SHA256_DIGEST_SIZE];
    if (rc != 0) {
        md_sha256_free(&ctx);
        return md_error_set(err, "%s: its values cannot be read (a damaged chunk?)", full);
    }
    if (md_sha256_final(&ctx, dg, err) != MD_OK) return MD_ERR;
    md_sha256_to_hex(dg, hex);
    return MD_OK;
}

typedef struct write_ctx {
    const char *group;
    md_error *err;
} write_ctx;

static herr_t write_one(hid_t g, const char *name, const H5O_info_t *info, void *arg)
{
    write_ctx *c = arg;
    if (info->type != H5O_TYPE_DATASET) return 0;
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    if (d < 0) return md_error_set(c->err, "cannot open /%s/%s", c->group, name), -1;
    int scale = md_h5_is_scale(d);
    char full[MD_PATH_MAX + 160], hex[65];
    snprintf(full, sizeof full, "/%s/%s", c->group, name);
    int rc = scale ? MD_OK : md_h5digest_dataset(g, full, hex, c->err);
    if (!scale && rc == MD_OK && md_h5_attr_str(d, "sha256", hex) != MD_OK)
        rc = md_error_set(c->err, "%s: cannot write its attribute sha256", full);
    H5Dclose(d);
    return rc == MD_OK ? 0 : -1;
}

static herr_t write_group(hid_t f, const char *name, const H5L_info_t *info, void *arg)
{
    (void)info;
    md_error *err = arg;
    if (!strcmp(name, "provenance") || !strcmp(name, "completion")) return 0;
    H5O_info_t oi;
    if (H5Oget_info_by_name2(f, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_GROUP) return 0;
    hid_t g = H5Gopen2(f, name, H5P_DEFAULT);
    write_ctx c = {name, err};
    herr_t rc = g >= 0 ? H5Ovisit2(g, H5_INDEX_NAME, H5_ITER_INC, write_one, &c, H5O_INFO_BASIC) : -1;
    if (g >= 0) H5Gclose(g);
    return rc < 0 ? -1 : 0;
}

int md_h5digest_write_all(hid_t file, md_error *err)
{
    md_error_clear(err);
    hid_t p = md_h5_exists(file, "/provenance") ? H5Gopen2(file, "/provenance", H5P_DEFAULT) : -1;
    int64_t parts = p >= 0 ? md_h5_attr_read_i64(p, "part_count", 0) : 0;
    if (p >= 0) H5Gclose(p);
    if (parts > 0) return MD_OK; /* a part: merge and the run after it finish the job */
    if (H5Literate(file, H5_INDEX_NAME, H5_ITER_INC, NULL, write_group, err) >= 0) return MD_OK;
    return err->msg[0] ? MD_ERR : md_error_set(err, "cannot list the experiment groups");
}

int md_h5digest_check(hid_t file, const char *full, char want[65], char got[65], md_error *err)
{
    want[0] = got[0] = '\0';
    hid_t d = H5Dopen2(file, full, H5P_DEFAULT);
    if (d < 0) return md_error_set(err, "cannot be opened"), -2;
    char *attr = md_h5_attr_read_str(d, "sha256");
    H5Dclose(d);
    if (!attr) return 0;
    snprintf(want, 65, "%s", attr);
    free(attr);
    if (md_h5digest_dataset(file, full, got, err) != MD_OK) return -2;
    return strcmp(want, got) == 0 ? 1 : -1;
}
