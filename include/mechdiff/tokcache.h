/* tokcache.h — the tokenizers of one process phase (validate; a run's
 * start-up: validation, stage-0 plans, progress estimate), each model
 * folder's loaded once however its path is spelled: a real vocabulary
 * (~150k tokens) takes ~1.4 s.
 * Ownership: the caller that creates the cache owns it and frees it at the
 * end of the phase (no global state); it owns every tokenizer it hands
 * out, which the callers borrow until md_tokcache_free. Without a cache
 * (NULL) md_tokcache_acquire loads a tokenizer that md_tokcache_release
 * frees, so code that is passed a cache or none reads the same. */
#ifndef MECHDIFF_TOKCACHE_H
#define MECHDIFF_TOKCACHE_H

#include "mechdiff/error.h"
#include "mechdiff/tokenizer.h"

typedef struct md_tokcache md_tokcache;

int md_tokcache_create(md_tokcache **out, md_error *err);
void md_tokcache_free(md_tokcache *c);

/* The tokenizer of folder DIR (md_tokenizer_load's errors, unprefixed):
 * cached after the first successful load; a failed load is not cached (the
 * next acquire loads again and reports the same error).
 *
 * The cache is keyed by the folder's identity (device and inode of DIR,
 * following links), not by its spelling: models/x, ./models/x/, an absolute
 * path and a symbolic link to the folder share one load, and the paths the
 * shared tokenizer names in its own messages are those of the first
 * spelling. The folder, not tokenizer.json, is the key because a load reads
 * three files of it (tokenizer.json, tokenizer_config.json with the chat
 * template and BOS/EOS names, chat_template.jinja): two folders that link
 * to one tokenizer.json may still differ in their chat template (a base and
 * an instruct model), so they load apart. */
int md_tokcache_acquire(md_tokcache *c, const char *dir, md_tokenizer **tok, md_error *err);
/* Ends the use of tok from md_tokcache_acquire(c, ...): frees it when c is
 * NULL, else nothing (the cache frees it). tok may be NULL. */
void md_tokcache_release(md_tokcache *c, md_tokenizer *tok);

#endif
