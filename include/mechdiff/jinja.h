/* jinja.h — the subset of Jinja2 that Hugging Face chat templates use,
 * rendered as `transformers`' apply_chat_template renders them: an
 * environment with trim_blocks and lstrip_blocks, the loopcontrols
 * extension, and the globals raise_exception, strftime_now and namespace.
 *
 * Covered: text, {{ }}, {% %} and {# #} with "-" whitespace control;
 * if/elif/else, for (with else, loop.*, break/continue, tuple targets, the
 * loop filter "for x in xs if cond"), set (names and namespace attributes),
 * macro, generation; namespace() and dict() as transformers has them (from
 * keyword arguments, a dict or [key, value] pairs; a namespace prints as
 * <Namespace {...}>, is no mapping, not iterable, not JSON, and takes no
 * '_'-prefixed names, each refusal an error); expressions with
 * literals, lists, dicts, attributes, subscripts, slices, calls, filters,
 * tests, and/or/not, in, is, comparisons, arithmetic, ~ and a if b else c;
 * the filters, tests and string/dict methods real chat templates use.
 * Anything else is an error naming the template and the line.
 *
 * Values are Jansson values (json_t); the context of a render is a JSON
 * object (messages, bos_token, add_generation_prompt, ...).
 * Ownership: md_jinja owns its parse tree; md_jinja_render's *out is
 * malloc'd and owned by the caller; the context stays the caller's. */
#ifndef MECHDIFF_JINJA_H
#define MECHDIFF_JINJA_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

#include "mechdiff/error.h"

typedef struct md_jinja md_jinja;

/* Parses src[0..len); name (e.g. "DIR/tokenizer_config.json") names the
 * template in error messages, which give the line. */
int md_jinja_parse(md_jinja **out, const char *src, size_t len, const char *name, md_error *err);
void md_jinja_free(md_jinja *t);

/* Renders with the variables of ctx (a JSON object). now is the time
 * strftime_now formats (UTC), so that renders can be reproduced. *out is
 * NUL-terminated and *len bytes long. */
int md_jinja_render(const md_jinja *t, json_t *ctx, time_t now, char **out, size_t *len, md_error *err);

#endif
