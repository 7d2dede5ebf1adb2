/* prompt_args.c — see prompt_args.h. */
#include "tools/prompt_args.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int prompt_args_parse(prompt_args *pa, int argc, char **argv, int *i)
{
    const char **slot = NULL;
    if (strcmp(argv[*i], "--prompt") == 0) slot = &pa->prompt;
    else if (strcmp(argv[*i], "--chat") == 0) slot = &pa->chat;
    else if (strcmp(argv[*i], "--ids") == 0) slot = &pa->ids;
    else if (strcmp(argv[*i], "--chat-template") == 0) slot = &pa->chat_format;
    else return 0;
    if (*i + 1 >= argc) return -1;
    *slot = argv[++*i];
    return 1;
}

const char *prompt_args_check(const prompt_args *pa)
{
    int given = !!pa->prompt + !!pa->chat + !!pa->ids;
    if (given != 1)
        return given ? "give one of --prompt TEXT, --chat TEXT, --ids 1,2,3, not several"
                     : "no prompt given: give one of --prompt TEXT, --chat TEXT, --ids 1,2,3";
    if (pa->chat_format && !pa->chat) return "--chat-template needs --chat";
    if (pa->chat_format && md_chat_parse_name(pa->chat_format) == MD_CHAT_UNKNOWN &&
        !strstr(pa->chat_format, "{instruction}"))
        return "--chat-template: neither a name (base, llama3, llama2, mistral, tulu, model) nor a format string "
               "with {instruction}";
    return NULL;
}

static int parse_ids(const char *s, int **ids, size_t *n, md_error *err)
{
    size_t cap = 16, cnt = 0;
    int *v = malloc(cap * sizeof(int));
    if (!v) return md_error_set(err, "out of memory");
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x > 0x7fffffff) {
            free(v);
            return md_error_set(err, "--ids: '%s' is not a comma-separated list of token ids", s);
        }
        if (cnt == cap) {
            int *nv = realloc(v, (cap *= 2) * sizeof(int));
            if (!nv) {
                free(v);
                return md_error_set(err, "out of memory");
            }
            v = nv;
        }
        v[cnt++] = (int)x;
        p = end;
        if (*p == ',') p++;
        else if (*p) {
            free(v);
            return md_error_set(err, "--ids: unexpected '%c' in '%s'", *p, s);
        }
    }
    if (cnt == 0) {
        free(v);
        return md_error_set(err, "--ids: no ids given");
    }
    *ids = v;
    *n = cnt;
    return MD_OK;
}

int prompt_args_tokens(const prompt_args *pa, const md_model *m, int **ids, size_t *n, md_error *err)
{
    const char *bad = prompt_args_check(pa);
    if (bad) return md_error_set(err, "%s", bad);
    if (pa->ids) return parse_ids(pa->ids, ids, n, err);
    if (!m->tok)
        return md_error_set(err, "%s has no tokenizer.json: use --ids, or copy the tokenizer files into it",
                            m->dir);
    if (pa->prompt) return md_tokenizer_encode(m->tok, pa->prompt, 1, ids, n, err);
    md_chat_kind kind = m->chat;
    const char *fmt = NULL;
    if (pa->chat_format) {
        kind = md_chat_parse_name(pa->chat_format);
        if (kind == MD_CHAT_UNKNOWN) {
            kind = MD_CHAT_FORMAT;
            fmt = pa->chat_format;
        }
    }
    if (kind == MD_CHAT_UNKNOWN)
        return md_error_set(err, "%s has no chat template (no chat_template.jinja, no chat_template in "
                                 "tokenizer_config.json): give --chat-template with a format string containing "
                                 "{instruction} (\\n is a newline) or a name: base, llama3, llama2, mistral, tulu",
                            m->dir);
    return md_chat_encode(m->tok, kind, fmt, pa->chat, ids, n, err);
}
