/* cmd_generate.c — `mechdiff generate DIR (--prompt TEXT | --chat TEXT) [-n 16]`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/generate.h"
#include "tools/cmds.h"
#include "tools/prompt_args.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: mechdiff generate DIR (--prompt TEXT | --chat TEXT | --ids 1,2,3) [-n N]\n"
               "                         [--chat-template NAME|FORMAT] [--ids-out]\n\n"
               "Greedy continuation of a prompt, printed as text (stops at EOS or after N new\n"
               "tokens, default 16). --chat renders TEXT as one user turn of the model's own\n"
               "chat template (chat_template.jinja or tokenizer_config.json), exactly as\n"
               "transformers' apply_chat_template does; --chat-template picks another: base,\n"
               "llama3, llama2, mistral, tulu, model (its own, the default), or a format string\n"
               "with {instruction} in which \\n is a newline and \\t a tab.\n"
               "--ids-out prints the new token ids instead of text.\n");
}

int cmd_generate(int argc, char **argv)
{
    if (cmd_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    prompt_args pa = {0};
    const char *dir = NULL;
    int n_new = 16, ids_out = 0;
    for (int i = 1; i < argc; i++) {
        int r = prompt_args_parse(&pa, argc, argv, &i);
        if (r < 0) return cmd_usage_error("generate", usage, "%s needs a value", argv[i]);
        if (r) continue;
        if (strcmp(argv[i], "-n") == 0) {
            char *end = NULL;
            long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
            if (i + 1 >= argc) return cmd_usage_error("generate", usage, "-n needs a value");
            if (end == argv[i + 1] || *end || v < 1 || v > MD_GENERATE_MAX_NEW)
                return cmd_usage_error("generate", usage, "-n '%s' must be an integer in 1..%d", argv[i + 1], MD_GENERATE_MAX_NEW);
            n_new = (int)v;
            i++;
        } else if (strcmp(argv[i], "--ids-out") == 0) {
            ids_out = 1;
        } else if (argv[i][0] == '-') {
            return cmd_usage_error("generate", usage, "unknown option '%s'", argv[i]);
        } else if (dir) {
            return cmd_usage_error("generate", usage, "unexpected argument '%s' (one model folder; quote TEXT as one "
                                   "argument)", argv[i]);
        } else {
            dir = argv[i];
        }
    }
    if (!dir) return cmd_usage_error("generate", usage, "no model folder given");
    const char *bad = prompt_args_check(&pa);
    if (bad) return cmd_usage_error("generate", usage, "%s", bad);
    md_error err = {0};
    md_model *m = NULL;
    int *ids = NULL;
    size_t n = 0;
    md_generation g = {0};
    char *text = NULL;
    int rc = 1;
    char snap[4096];
    if (cmd_model_dir("generate", dir, 1, snap, sizeof snap)) return 1;
    if (md_model_load(&m, snap, NULL, &err) != MD_OK) goto fail;
    if (prompt_args_tokens(&pa, m, &ids, &n, &err) != MD_OK) goto fail;
    const int *prompts[1] = {ids};
    int len = (int)n;
    if (md_generate_greedy(m, 1, prompts, &len, n_new, NULL, 0, &g, &err) != MD_OK) goto fail;
    if (ids_out || !m->tok) {
        for (int i = 0; i < g.out_len[0]; i++) printf("%s%d", i ? "," : "", g.out_ids[0][i]);
        printf("\n");
    } else {
        if (md_tokenizer_decode_generated(m->tok, g.out_ids[0], (size_t)g.out_len[0], 1, &text, &err) != MD_OK)
            goto fail;
        printf("%s\n", text);
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "mechdiff generate: %s\n", err.msg);
done:
    free(text);
    md_generation_free(&g);
    free(ids);
    md_model_free(m);
    return rc;
}
