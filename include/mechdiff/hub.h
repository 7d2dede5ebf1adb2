/* hub.h — Hugging Face cache folders as model folders.
 *
 * `huggingface-cli download org/name` (without --local-dir) leaves
 *   ~/.cache/huggingface/hub/models--org--name/
 *     refs/main               the commit sha the download resolved "main" to
 *     snapshots/<sha>/        the files (symlinks into blobs/)
 *     blobs/
 * Only snapshots/<sha>/ is a model folder. md_hub_resolve_dir maps the repo
 * folder to that snapshot (refs/main, else the only snapshot), so a job or a
 * command can name either; the resolved path (with the sha in it) is what the
 * job keeps, hence what the output's provenance records. */
#ifndef MECHDIFF_HUB_H
#define MECHDIFF_HUB_H

#include <stddef.h>

#include "mechdiff/error.h"

/* If DIR is a hub repo folder (it has snapshots/ and no config.json), writes
 * DIR/snapshots/<sha> to out: the sha of refs/main, or the only snapshot when
 * refs/main is absent. Any other DIR is copied to out unchanged. Errors (the
 * message names DIR and what to do): refs/main names a missing snapshot or
 * something that is not a snapshot name (a path with "/", "." or ".."),
 * refs/main is not a regular file (a FIFO is refused, never read),
 * several snapshots and no refs/main, no snapshot, out too small. */
int md_hub_resolve_dir(const char *dir, char *out, size_t out_len, md_error *err);

#endif
