/* h5digest.h — private to src/runner (h5out.c writes, verify checks): the
 * SHA-256 of a results dataset's values, stored as the dataset's string
 * attribute `sha256` by the snapshot that finishes the whole job, so that
 * `mechdiff verify` catches values edited in place (same shape and type).
 *
 * What is hashed: the values in row-major order, numbers as the file stores
 * them (little-endian, the dataset's own width: float32/64, int32/64,
 * uint8), strings as their UTF-8 bytes each followed by one NUL byte. The
 * shape and type are not hashed (verify checks them against the kind's
 * table). Covered: every dataset under the experiment groups that is not a
 * dimension scale; not /completion, /provenance, scales or attributes. */
#ifndef MECHDIFF_RUNNER_H5DIGEST_H
#define MECHDIFF_RUNNER_H5DIGEST_H

#include <hdf5.h>

#include "mechdiff/error.h"

/* The hex SHA-256 of the values of the dataset at full. */
int md_h5digest_dataset(hid_t file, const char *full, char hex[65], md_error *err);
/* Writes attribute sha256 on every covered dataset of the file (open for
 * writing), unless it is a part of the job (/provenance part_count > 0).
 * MD_ERR with err naming the dataset. */
int md_h5digest_write_all(hid_t file, md_error *err);
/* The dataset's attribute sha256 against its values: 1 equal, 0 no such
 * attribute (a file not finished, or of a build before the digests), -1
 * different (want: the attribute, got: the values' digest), -2 when it
 * cannot be read (err says why). */
int md_h5digest_check(hid_t file, const char *full, char want[65], char got[65], md_error *err);

#endif
