/* mechdiff.c — the command: dispatches to one subcommand. */
#include <errno.h>
#include <hdf5.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mechdiff/hub.h"
#include "mechdiff/version.h"
#include "tools/cmds.h"

typedef struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} subcommand;

static const subcommand SUBCOMMANDS[] = {
    {"inspect", cmd_inspect, "architecture, sizes, dtype, tokenizer and chat template of a model folder"},
    {"tokenize", cmd_tokenize, "token ids and pieces of a text"},
    {"forward", cmd_forward, "one forward pass; logits and hook activations to HDF5"},
    {"generate", cmd_generate, "greedy continuation of a prompt"},
    {"make-model", cmd_make_model, "write a random-weights HF checkpoint with real widths"},
    {"run", cmd_run, "run (or resume) a job file, alone or under mpirun/srun"},
    {"validate", cmd_validate, "check a job file without running it"},
    {"status", cmd_status, "progress of a running or stopped job's output file"},
    {"merge", cmd_merge, "combine the output files of a job split over a Slurm array"},
    {"verify", cmd_verify, "whether a results file is complete and internally consistent"},
};

int cmd_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return 1;
    return 0;
}

int cmd_start_plain(const char *cmd, void (*usage)(FILE *), int argc, char **argv)
{
    if (cmd_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "mechdiff %s: unknown option '%s'\n\n", cmd, argv[i]);
            usage(stderr);
            return 2;
        }
    return -1;
}

int cmd_usage_error(const char *cmd, void (*usage)(FILE *), const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mechdiff %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n\n");
    va_end(ap);
    usage(stderr);
    return 2;
}

int cmd_model_dir(const char *cmd, const char *arg, int need_config, char *out, size_t len)
{
    struct stat st;
    md_error err;
    char cfg[4200];
    if (stat(arg, &st) != 0) {
        fprintf(stderr, "mechdiff %s: %s: %s; give the folder of a Hugging Face checkpoint (config.json, "
                        "*.safetensors, tokenizer.json)\n",
                cmd, arg, errno == ENOENT ? "no such folder" : strerror(errno));
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "mechdiff %s: %s: a file, not a folder; give the model folder that holds it\n", cmd, arg);
        return 1;
    }
    if (md_hub_resolve_dir(arg, out, len, &err) != MD_OK) {
        fprintf(stderr, "mechdiff %s: %s\n", cmd, err.msg);
        return 1;
    }
    snprintf(cfg, sizeof cfg, "%s/config.json", out);
    if (need_config && stat(cfg, &st) != 0) {
        fprintf(stderr, "mechdiff %s: %s: not a model folder (no config.json); give the folder of a Hugging Face "
                        "checkpoint\n", cmd, arg);
        return 1;
    }
    return 0;
}

int cmd_check_results_path(const char *path, const char *missing_note, md_error *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT) return md_error_set(err, "%s: no such file%s", path, missing_note);
        return md_error_set(err, "%s: %s", path, strerror(errno));
    }
    if (!S_ISREG(sb.st_mode))
        return md_error_set(err, "%s: %s, not a results file", path, S_ISDIR(sb.st_mode) ? "a folder" : "a special file");
    if (access(path, R_OK) != 0) /* said as such, not as "not a readable HDF5 file" */
        return md_error_set(err, "%s: cannot read: %s", path, strerror(errno));
    return MD_OK;
}

void cmd_explain_not_results(const char *path, const char *what, md_error *err)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return;
    int forward = H5Lexists(f, "logits", H5P_DEFAULT) > 0 && H5Lexists(f, "token_ids", H5P_DEFAULT) > 0;
    H5Fclose(f);
    if (forward)
        md_error_set(err, "%s: the output of `mechdiff forward` (one forward pass: /logits, /token_ids), not the "
                          "results file of a job: %s", path, what);
}

static void usage(FILE *f)
{
    fprintf(f, "mechdiff %s (%s) — compare a base LLM with its post-trained version\n\n"
               "usage: mechdiff <command> [args]   (mechdiff <command> --help for details)\n"
               "       mechdiff --version\n\n",
            MECHDIFF_VERSION, MECHDIFF_GIT_REV);
    for (size_t i = 0; i < sizeof SUBCOMMANDS / sizeof SUBCOMMANDS[0]; i++)
        fprintf(f, "  %-11s %s\n", SUBCOMMANDS[i].name, SUBCOMMANDS[i].summary);
}

int main(int argc, char **argv)
{
    /* Every HDF5 failure is reported by the caller in one line naming the
     * file; HDF5's own ~20-line error stack would bury it. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (argc < 2) {
        fprintf(stderr, "mechdiff: no command given\n\n");
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("mechdiff %s (%s)\n", MECHDIFF_VERSION, MECHDIFF_GIT_REV);
        return 0;
    }
    for (size_t i = 0; i < sizeof SUBCOMMANDS / sizeof SUBCOMMANDS[0]; i++)
        if (strcmp(argv[1], SUBCOMMANDS[i].name) == 0) return SUBCOMMANDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "mechdiff: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
