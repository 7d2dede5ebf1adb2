/* safetensors.h — read-only, mmap'd access to safetensors checkpoints
 * (single file or sharded with model.safetensors.index.json), and a
 * streaming writer.
 *
 * Ownership: md_safetensors owns its mappings and every md_tensor_info; the
 * `data` pointers stay valid until md_safetensors_close(). Nothing is copied:
 * tensor data points into the mapped file. */
#ifndef MECHDIFF_SAFETENSORS_H
#define MECHDIFF_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "mechdiff/dtype.h"
#include "mechdiff/error.h"

#define MD_TENSOR_MAX_DIMS 8

typedef struct md_tensor_info {
    const char *name;          /* tensor name as in the header */
    md_dtype dtype;
    int ndim;
    int64_t shape[MD_TENSOR_MAX_DIMS];
    const void *data;          /* into the mapping (read-only) */
    size_t nbytes;
    int file_index;            /* which shard file */
} md_tensor_info;

typedef struct md_safetensors md_safetensors;

/* Opens DIR/model.safetensors.index.json if present (all shards it names),
 * else DIR/model.safetensors. Validates every header field by field. */
int md_safetensors_open_dir(md_safetensors **out, const char *dir, md_error *err);
/* Opens one .safetensors file. */
int md_safetensors_open_file(md_safetensors **out, const char *path, md_error *err);
void md_safetensors_close(md_safetensors *st);

size_t md_safetensors_count(const md_safetensors *st);
const md_tensor_info *md_safetensors_at(const md_safetensors *st, size_t i);
/* NULL when absent. */
const md_tensor_info *md_safetensors_find(const md_safetensors *st, const char *name);
/* Number of files and their paths (for provenance hashing). */
size_t md_safetensors_file_count(const md_safetensors *st);
const char *md_safetensors_file_path(const md_safetensors *st, size_t i);
/* Total bytes of all mapped files. */
size_t md_safetensors_total_bytes(const md_safetensors *st);
/* MD_OK when every element of t is finite; else an error naming `model`,
 * the tensor (whose name names the layer), the element and NaN/infinity.
 * Reads the whole tensor (a vectorised pass over the mapping), then drops
 * the pages it read from the caller's resident set (madvise DONTNEED on the
 * read-only mapping: later reads fault them back in from the page cache). */
int md_safetensors_check_finite(const md_tensor_info *t, const char *model, md_error *err);
/* Number of elements (product of the shape; 1 for a scalar). */
size_t md_tensor_numel(const md_tensor_info *t);

/* Notes on the reader:
 * - md_safetensors_at() orders tensors by shard, then by data offset;
 *   md_safetensors_find() is a binary search over a by-name index.
 * - Every tensor's `data` is aligned to its element size (files whose header
 *   length breaks that are rejected; the safetensors library pads headers to
 *   8 bytes, so real checkpoints always pass).
 * - Sharded folders: tensors present in a shard but absent from weight_map are
 *   still exposed; a name present in two shards is an error. */

/* Streaming writer: declare every tensor first (name, dtype, shape), then
 * md_safetensors_writer_begin() writes the header, then the data of each
 * tensor is appended in declaration order with md_safetensors_writer_put()
 * (possibly in several pieces). Writes to PATH.tmp and renames on finish. */
typedef struct md_safetensors_writer md_safetensors_writer;
int md_safetensors_writer_create(md_safetensors_writer **out, const char *path, md_error *err);
int md_safetensors_writer_declare(md_safetensors_writer *w, const char *name, md_dtype dtype,
                                  int ndim, const int64_t *shape, md_error *err);
int md_safetensors_writer_begin(md_safetensors_writer *w, md_error *err);
int md_safetensors_writer_put(md_safetensors_writer *w, const void *data, size_t nbytes, md_error *err);
/* Adds a "__metadata__" string entry (before begin; "format":"pt" is set by
 * default). */
int md_safetensors_writer_set_metadata(md_safetensors_writer *w, const char *key, const char *value,
                                       md_error *err);
/* Checks every declared byte was written, closes, renames. Frees w. */
int md_safetensors_writer_finish(md_safetensors_writer *w, md_error *err);
/* Frees w without finishing (removes the temporary file). */
void md_safetensors_writer_abort(md_safetensors_writer *w);

#endif
