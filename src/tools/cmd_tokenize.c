/* cmd_tokenize.c — `mechdiff tokenize DIR TEXT [--json] [--no-special]
 * [--chat] [--chat-template NAME|FORMAT]`: encodes TEXT (or the chat prompt
 * of TEXT) with DIR/tokenizer.json and prints the ids and pieces. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/chat.h"
#include "mechdiff/sbuf.h"
#include "mechdiff/tokenizer.h"
#include "tools/cmds.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mechdiff tokenize [--json] [--no-special] [--chat] [--chat-template NAME|FORMAT]\n"
            "                         [--] DIR TEXT\n\n"
            "Encodes TEXT (\"-\" reads standard input, which may hold NUL bytes) with\n"
            "DIR/tokenizer.json (and "
            "DIR/tokenizer_config.json when present); DIR may hold only tokenizer files.\n\n"
            "  --json        print {\"ids\": [...], \"pieces\": [...]} with the vocabulary pieces\n"
            "  --no-special  add no BOS (or other post-processor tokens)\n"
            "  --chat        encode the chat prompt of TEXT as one user turn: the model's own\n"
            "                template (chat_template.jinja or tokenizer_config.json) rendered\n"
            "                as transformers' apply_chat_template renders it\n"
            "  --chat-template NAME|FORMAT  with --chat: base, llama3, llama2, mistral, tulu,\n"
            "                model, or a format string with {instruction} (\\n is a newline)\n"
            "  --            end of options (for a TEXT that starts with \"--\")\n"
            "  -h, --help    this help\n\n"
            "Default output: one line per token, id<TAB>text, where text is what the\n"
            "piece stands for with \\n, \\t, \\r, \\\\ and bytes that are not valid UTF-8\n"
            "(\\xNN) escaped.\n");
}

/* Prints s[0..n) with control characters and invalid UTF-8 escaped. */
static void print_readable(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c == '\\') fputs("\\\\", stdout);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else if (c < 0x80) putchar(c);
        else {
            size_t l = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
            int ok = l && i + l <= n && c >= 0xC2 && c <= 0xF4;
            for (size_t k = 1; ok && k < l; k++) ok = (u[i + k] & 0xC0) == 0x80;
            if (ok) {
                fwrite(s + i, 1, l, stdout);
                i += l;
                continue;
            }
            printf("\\x%02x", c);
        }
        i++;
    }
}

/* All of standard input (which may hold NUL bytes); *len its length. */
static char *read_stdin(size_t *len)
{
    md_sbuf b = {0}; /* the text: handed to the caller */
    size_t r = 0;
    do { /* fread writes into the reserved room; n and the NUL follow it */
        if (md_sbuf_reserve(&b, 4096) != MD_OK) break;
        r = fread(b.s + b.n, 1, b.cap - b.n - 1, stdin);
        b.n += r;
        b.s[b.n] = '\0';
    } while (r > 0);
    if (ferror(stdin)) {
        md_sbuf_free(&b);
        return NULL;
    }
    *len = b.n;
    return md_sbuf_take(&b); /* NULL when out of memory */
}

/* The ids of text, or of its chat prompt (chat != 0; chat_template may name
 * another template or give a format string). */
static int encode(const md_tokenizer *tok, const char *text, size_t len, int special, int chat,
                  const char *chat_template, int **ids, size_t *n, md_error *err)
{
    if (!chat) return md_tokenizer_encode_n(tok, text, len, special, ids, n, err);
    md_chat_kind kind = md_chat_detect(md_tokenizer_chat_template(tok));
    const char *fmt = NULL;
    if (chat_template) {
        kind = md_chat_parse_name(chat_template);
        if (kind == MD_CHAT_UNKNOWN) {
            kind = MD_CHAT_FORMAT;
            fmt = chat_template;
        }
    }
    if (kind == MD_CHAT_UNKNOWN)
        return md_error_set(err, "the tokenizer has no chat template (no chat_template.jinja, no chat_template in "
                                 "tokenizer_config.json): give --chat-template with a format string containing "
                                 "{instruction} or a name (base, llama3, llama2, mistral, tulu)");
    return md_chat_encode(tok, kind, fmt, text, ids, n, err);
}

/* The command line of tokenize. */
typedef struct tok_args {
    const char *pos[2];        /* tokenizer folder, TEXT */
    int npos, json, special, chat;
    const char *chat_template; /* --chat-template or NULL */
} tok_args;

/* Reads the command line into a; returns -1 to go on, else the exit status
 * (0 after --help, the usage error's status). */
static int parse_args(int argc, char **argv, tok_args *a)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
    int opts = 1;
    for (int i = 1; i < argc; i++) {
        if (opts && strcmp(argv[i], "--") == 0) opts = 0;
        else if (opts && strcmp(argv[i], "--chat") == 0) a->chat = 1;
        else if (opts && strcmp(argv[i], "--chat-template") == 0 && i + 1 < argc) a->chat_template = argv[++i];
        else if (!opts && a->npos < 2) a->pos[a->npos++] = argv[i];
        else if (strcmp(argv[i], "--json") == 0) a->json = 1;
        else if (strcmp(argv[i], "--no-special") == 0) a->special = 0;
        else if (opts && strcmp(argv[i], "--chat-template") == 0)
            return cmd_usage_error("tokenize", usage, "--chat-template needs a value");
        else if (strncmp(argv[i], "--", 2) == 0)
            return cmd_usage_error("tokenize", usage, "unknown option '%s' (a TEXT that starts with \"--\" goes after "
                                   "--)", argv[i]);
        else if (a->npos < 2) a->pos[a->npos++] = argv[i];
        else
            return cmd_usage_error("tokenize", usage, "unexpected argument '%s' (quote TEXT as one argument)", argv[i]);
    }
    if (a->npos < 2)
        return cmd_usage_error("tokenize", usage, a->npos ? "no TEXT given (\"-\" reads standard input)"
                                                         : "no tokenizer folder and TEXT given");
    if (a->chat_template && !a->chat) return cmd_usage_error("tokenize", usage, "--chat-template needs --chat");
    return -1;
}

/* --json: {"ids": [...], "pieces": [...]} on stdout. MD_ERR (reported) when a
 * piece cannot be formatted. */
static int print_json(const md_tokenizer *tok, const int *ids, size_t n)
{
    fputs("{\"ids\": [", stdout);
    for (size_t i = 0; i < n; i++) printf("%s%d", i ? ", " : "", ids[i]);
    fputs("], \"pieces\": [", stdout);
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_string(md_tokenizer_piece(tok, ids[i]));
        char *d = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
        json_decref(s);
        if (!d) {
            fprintf(stderr, "mechdiff tokenize: cannot format piece of id %d\n", ids[i]);
            return MD_ERR;
        }
        printf("%s%s", i ? ", " : "", d);
        free(d);
    }
    fputs("]}\n", stdout);
    return MD_OK;
}

/* One "ID<TAB>readable piece" line per token. MD_ERR (reported) on error. */
static int print_lines(const md_tokenizer *tok, const int *ids, size_t n, md_error *err)
{
    for (size_t i = 0; i < n; i++) {
        char *pt = NULL;
        size_t pl = 0;
        if (md_tokenizer_piece_text(tok, ids[i], &pt, &pl, err)) {
            fprintf(stderr, "mechdiff tokenize: %s\n", err->msg);
            return MD_ERR;
        }
        printf("%d\t", ids[i]);
        print_readable(pt, pl);
        putchar('\n');
        free(pt);
    }
    return MD_OK;
}

int cmd_tokenize(int argc, char **argv)
{
    tok_args a = {.special = 1};
    int status = parse_args(argc, argv, &a);
    if (status >= 0) return status;
    status = 1;
    md_error err = {{0}};
    md_tokenizer *tok = NULL;
    int *ids = NULL;
    size_t n = 0;
    char *owned = NULL;
    const char *text = a.pos[1];
    size_t text_len = strlen(text);
    if (strcmp(text, "-") == 0) {
        owned = read_stdin(&text_len);
        if (!owned) {
            fprintf(stderr, "mechdiff tokenize: cannot read standard input\n");
            goto out;
        }
        text = owned;
    }
    char dir[4096];
    if (cmd_model_dir("tokenize", a.pos[0], 0, dir, sizeof dir)) goto out;
    if (md_tokenizer_load(&tok, dir, &err) ||
        encode(tok, text, text_len, a.special, a.chat, a.chat_template, &ids, &n, &err)) {
        fprintf(stderr, "mechdiff tokenize: %s\n", err.msg);
        goto out;
    }
    if (a.json ? print_json(tok, ids, n) : print_lines(tok, ids, n, &err)) goto out;
    status = fflush(stdout) == 0 ? 0 : 1;
out:
    free(ids);
    free(owned);
    md_tokenizer_free(tok);
    return status;
}
