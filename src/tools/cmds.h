/* cmds.h — the subcommands of the mechdiff command, one file each
 * (src/tools/cmd_<name>.c). Each returns the process exit status. */
#ifndef MECHDIFF_TOOLS_CMDS_H
#define MECHDIFF_TOOLS_CMDS_H

#include <stddef.h>
#include <stdio.h>

#include "mechdiff/error.h"

int cmd_inspect(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_make_model(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_verify(int argc, char **argv);

/* True when argv holds -h or --help. */
int cmd_wants_help(int argc, char **argv);

/* The start of a subcommand without options (inspect, status, merge):
 * -h/--help prints its usage to stdout and returns 0; an argument after
 * argv[0] that looks like an option ("-x", "--x") prints
 * "mechdiff <cmd>: unknown option '...'", a blank line and the usage to
 * stderr and returns 2 (a file whose name starts with '-' is named as
 * ./-x); else returns -1: go on. The caller returns any value >= 0. */
int cmd_start_plain(const char *cmd, void (*usage)(FILE *), int argc, char **argv);

/* A bad command line: prints "mechdiff <cmd>: <what is wrong>", a blank
 * line and the subcommand's usage to stderr; returns 2 (the exit status of
 * a bad command line). */
int cmd_usage_error(const char *cmd, void (*usage)(FILE *), const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The model folder named by arg into out (len bytes): a Hugging Face cache
 * repository becomes its snapshot (md_hub_resolve_dir). When arg does not
 * exist, is not a folder, or (need_config) holds no config.json, prints
 * "mechdiff <cmd>: <arg>: <what is wrong and what to give>" and returns 1
 * (the exit status of a file error); 0 when out names a folder. */
int cmd_model_dir(const char *cmd, const char *arg, int need_config, char *out, size_t len);

/* Whether path can be a results file to read: it exists (else "PATH: no
 * such file" + missing_note), is a regular file (else "PATH: a folder, not a
 * results file") and is readable. MD_OK, or MD_ERR with that line in err. */
int cmd_check_results_path(const char *path, const char *missing_note, md_error *err);

/* When the file at path, which is not a readable results file (err says
 * why), is the output of `mechdiff forward`, replaces err by a message
 * saying so and `what` (what the command reads instead). */
void cmd_explain_not_results(const char *path, const char *what, md_error *err);

#endif
