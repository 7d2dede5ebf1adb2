/* cmds.h — the subcommands of the mechdiff command, one file each
 * (src/tools/cmd_<name>.c). Each returns the process exit status. */
#ifndef MECHDIFF_TOOLS_CMDS_H
#define MECHDIFF_TOOLS_CMDS_H

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

/* For subcommands without options (inspect, status, merge): when an argument
 * after argv[0] looks like an option ("-x", "--x"), prints
 * "mechdiff <cmd>: unknown option '...'" to stderr and returns 1 (the caller
 * then prints its usage and exits 2); else 0. A file whose name starts with
 * '-' is named as ./-x. */
int cmd_reject_options(const char *cmd, int argc, char **argv);

#endif
