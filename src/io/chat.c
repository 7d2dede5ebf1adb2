/* chat.c — chat prompts (see include/mechdiff/chat.h).
 *
 * The model's template goes through the Jinja interpreter (src/io/jinja_*.c).
 * Exact texts of the fixed renderers, one user turn plus the generation
 * prompt (never BOS):
 *   LLAMA3  "<|start_header_id|>user<|end_header_id|>\n\n" + trim(msg) +
 *           "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
 *           (Llama-3.0's template without BOS; Llama-3.1's adds a system
 *           block: use the model's template for it)
 *   LLAMA2  "[INST] " + strip(msg) + " [/INST]"
 *   MISTRAL "[INST] " + msg + "[/INST]"   (Mistral v0.3 template)
 *   TULU    "<|user|>\n" + msg + "\n<|assistant|>\n"
 *   BASE    "User: " + msg + "\nAssistant:"
 *   FORMAT  fmt, with \n, \t and \\ unescaped, its single "{instruction}"
 *           replaced by msg
 * trim/strip remove leading and trailing ASCII whitespace.
 * Ownership: every returned string or id array is malloc'd for the caller. */
#include "mechdiff/chat.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/jinja.h"

static const char PLACEHOLDER[] = "{instruction}";

md_chat_kind md_chat_detect(const char *jinja)
{
    return jinja ? MD_CHAT_MODEL : MD_CHAT_UNKNOWN;
}

static const struct {
    md_chat_kind kind;
    const char *name;
} NAMES[] = {
    {MD_CHAT_LLAMA3, "llama3"}, {MD_CHAT_LLAMA2, "llama2"}, {MD_CHAT_MISTRAL, "mistral"},
    {MD_CHAT_TULU, "tulu"},     {MD_CHAT_BASE, "base"},     {MD_CHAT_FORMAT, "format"},
    {MD_CHAT_MODEL, "model"},
};

md_chat_kind md_chat_parse_name(const char *name)
{
    if (!name) return MD_CHAT_UNKNOWN;
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (NAMES[i].kind != MD_CHAT_FORMAT && strcmp(name, NAMES[i].name) == 0) return NAMES[i].kind;
    return MD_CHAT_UNKNOWN;
}

const char *md_chat_name(md_chat_kind kind)
{
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (NAMES[i].kind == kind) return NAMES[i].name;
    return "unknown";
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* *out = a + msg[trimmed?] + b (malloc'd). */
static int wrap(const char *a, const char *msg, size_t ml, const char *b, char **out, md_error *err)
{
    size_t al = strlen(a), bl = strlen(b);
    char *s = malloc(al + ml + bl + 1);
    if (!s) return md_error_set(err, "out of memory rendering a chat prompt");
    memcpy(s, a, al);
    memcpy(s + al, msg, ml);
    memcpy(s + al + ml, b, bl + 1);
    *out = s;
    return MD_OK;
}

/* --- format strings ---------------------------------------------------------- */

/* fmt with the escapes backslash-n, backslash-t and a doubled backslash turned into newline, tab and
 * backslash (malloc'd). */
static char *unescape(const char *fmt)
{
    size_t n = strlen(fmt);
    char *u = malloc(n + 1), *q = u;
    if (!u) return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = fmt[i], e = fmt[i + 1];
        if (c == '\\' && (e == 'n' || e == 't' || e == '\\')) {
            *q++ = e == 'n' ? '\n' : e == 't' ? '\t' : '\\';
            i++;
        } else {
            *q++ = c;
        }
    }
    *q = '\0';
    return u;
}

/* fmt (unescaped) with its one "{instruction}" replaced by msg[0..ml). */
static int render_format(const char *fmt, const char *given, const char *msg, size_t ml, char **out, md_error *err)
{
    const char *p = strstr(fmt, PLACEHOLDER);
    if (!p)
        return md_error_set(err, "chat format \"%s\" does not contain \"%s\"; put it where the instruction goes",
                            given, PLACEHOLDER);
    if (strstr(p + 1, PLACEHOLDER))
        return md_error_set(err, "chat format \"%s\" contains \"%s\" more than once; use it exactly once", given,
                            PLACEHOLDER);
    size_t head = (size_t)(p - fmt);
    size_t tail = strlen(p + sizeof PLACEHOLDER - 1);
    char *s = malloc(head + ml + tail + 1);
    if (!s) return md_error_set(err, "out of memory rendering a chat prompt");
    memcpy(s, fmt, head);
    memcpy(s + head, msg, ml);
    memcpy(s + head + ml, p + sizeof PLACEHOLDER - 1, tail + 1);
    *out = s;
    return MD_OK;
}

int md_chat_render(md_chat_kind kind, const char *fmt, const char *instruction, char **out, md_error *err)
{
    *out = NULL;
    if (!instruction) return md_error_set(err, "chat render: instruction is NULL");
    const char *msg = instruction;
    size_t ml = strlen(msg);
    if (kind == MD_CHAT_LLAMA3 || kind == MD_CHAT_LLAMA2) {
        while (ml && is_ws(*msg)) { msg++; ml--; }
        while (ml && is_ws(msg[ml - 1])) ml--;
    }
    switch (kind) {
    case MD_CHAT_LLAMA3:
        return wrap("<|start_header_id|>user<|end_header_id|>\n\n", msg, ml,
                    "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", out, err);
    case MD_CHAT_LLAMA2:
        return wrap("[INST] ", msg, ml, " [/INST]", out, err);
    case MD_CHAT_MISTRAL:
        return wrap("[INST] ", msg, ml, "[/INST]", out, err);
    case MD_CHAT_TULU:
        return wrap("<|user|>\n", msg, ml, "\n<|assistant|>\n", out, err);
    case MD_CHAT_BASE:
        return wrap("User: ", msg, ml, "\nAssistant:", out, err);
    case MD_CHAT_FORMAT: {
        if (!fmt) return md_error_set(err, "chat format: no format string given; pass one containing \"%s\"", PLACEHOLDER);
        char *u = unescape(fmt);
        if (!u) return md_error_set(err, "out of memory rendering a chat prompt");
        int rc = render_format(u, fmt, msg, ml, out, err);
        free(u);
        return rc;
    }
    case MD_CHAT_MODEL:
        return md_error_set(err, "chat render: the model's own template needs its tokenizer (md_chat_encode)");
    default:
        return md_error_set(err, "chat render: unknown chat kind %d; use model, llama3, llama2, mistral, tulu, base "
                            "or a format string with \"%s\"", (int)kind, PLACEHOLDER);
    }
}

/* --- the model's template ------------------------------------------------------ */

/* {"role": ..., "content": ...} for each message (a new reference). */
static json_t *messages_json(const md_chat_message *msgs, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        json_t *m = json_pack("{s:s,s:s}", "role", msgs[i].role ? msgs[i].role : "",
                              "content", msgs[i].content ? msgs[i].content : "");
        if (!m || json_array_append_new(a, m)) {
            json_decref(a);
            a = NULL;
        }
    }
    return a;
}

int md_chat_render_jinja(const char *src, const char *origin, const md_chat_message *msgs, size_t n,
                         const md_chat_opts *opts, char **out, size_t *len, md_error *err)
{
    *out = NULL;
    if (len) *len = 0;
    md_jinja *t = NULL;
    json_t *ctx = json_object(), *m = messages_json(msgs, n);
    int rc = MD_ERR;
    if (!ctx || !m || json_object_set_new(ctx, "messages", m)) {
        if (!ctx) json_decref(m);
        md_error_set(err, "out of memory rendering a chat prompt");
        goto out;
    }
    if (json_object_set_new(ctx, "add_generation_prompt", json_boolean(opts->add_generation_prompt)) ||
        json_object_set_new(ctx, "tools", json_null()) || json_object_set_new(ctx, "documents", json_null()) ||
        (opts->bos_token && json_object_set_new(ctx, "bos_token", json_string(opts->bos_token))) ||
        (opts->eos_token && json_object_set_new(ctx, "eos_token", json_string(opts->eos_token)))) {
        md_error_set(err, "out of memory rendering a chat prompt");
        goto out;
    }
    if (md_jinja_parse(&t, src, strlen(src), origin ? origin : "chat template", err)) goto out;
    rc = md_jinja_render(t, ctx, opts->now ? opts->now : time(NULL), out, len, err);
out:
    md_jinja_free(t);
    json_decref(ctx);
    return rc;
}

static int encode_model(const md_tokenizer *tok, const char *instruction, int **ids, size_t *n_ids, md_error *err)
{
    const char *src = md_tokenizer_chat_template(tok);
    const char *origin = md_tokenizer_chat_template_origin(tok);
    if (!src)
        return md_error_set(err, "the model has no chat template (no chat_template.jinja, no chat_template in "
                                 "tokenizer_config.json); give a format string with {instruction} instead");
    md_chat_message msg = {"user", instruction};
    md_chat_opts o = {0};
    const char *epoch = getenv("SOURCE_DATE_EPOCH"); /* reproducible dates (strftime_now), as for builds */
    if (epoch && *epoch) o.now = (time_t)strtoll(epoch, NULL, 10);
    o.bos_token = md_tokenizer_piece(tok, md_tokenizer_bos_id(tok));
    o.eos_token = md_tokenizer_piece(tok, md_tokenizer_eos_id(tok));
    o.add_generation_prompt = 1;
    char *text = NULL;
    size_t len = 0;
    if (md_chat_render_jinja(src, origin, &msg, 1, &o, &text, &len, err))
        return md_error_prefix(err, "cannot render the chat template (give a format string with {instruction} "
                                    "instead; \\n in it is a newline)");
    int rc = md_tokenizer_encode_n(tok, text, len, 0, ids, n_ids, err);
    free(text);
    return rc;
}

int md_chat_encode(const md_tokenizer *tok, md_chat_kind kind, const char *fmt, const char *instruction, int **ids,
                   size_t *n_ids, md_error *err)
{
    *ids = NULL;
    *n_ids = 0;
    if (kind == MD_CHAT_MODEL) return encode_model(tok, instruction, ids, n_ids, err);
    char *text = NULL;
    if (md_chat_render(kind, fmt, instruction, &text, err)) return MD_ERR;
    int rc = md_tokenizer_encode(tok, text, 1, ids, n_ids, err);
    free(text);
    return rc;
}
