/* folder_check.h — at validate time, everything a worker will need from a
 * model folder, so that a job fails in seconds on the login node instead of
 * at unit 8 on the cluster: config.json; safetensors weights (single or
 * sharded, every shard present, every tensor the config implies with its
 * shape — the worker's own binding, without the NaN/inf scan the workers do
 * when they load); the
 * tokenizer (tokenizer.json loads, fits the vocabulary). Chat templates are
 * checked by the kinds that use them (refusal's `templates`).
 * A folder with only PyTorch .bin / .pth weights, or only tokenizer.model,
 * gets an error that says how to download or convert what is missing. */
#ifndef MECHDIFF_FOLDER_CHECK_H
#define MECHDIFF_FOLDER_CHECK_H

#include "mechdiff/error.h"
#include "mechdiff/tokcache.h"

/* Checks model folder DIR of role ROLE (for the message). MD_OK or MD_ERR
 * with "model 'ROLE' (DIR): what is wrong; what to do". Maps the weight
 * files without reading every weight (nothing is converted but the norm
 * vectors). The tokenizer comes from toks (borrowed; NULL: loaded and freed
 * here); the messages are the same either way. */
int md_folder_check(const char *role, const char *dir, md_tokcache *toks, md_error *err);

#endif
