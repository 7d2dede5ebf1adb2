/* cmd_verify.c — `mechdiff verify OUT.h5 [--quiet]`: whether a results file
 * is complete and internally consistent, from the file alone (the checks:
 * include/mechdiff/verify.h). Read-only: the file is never changed. */
#include <stdio.h>
#include <string.h>

#include "mechdiff/verify.h"
#include "tools/cmds.h"

enum { VERIFY_VALID = 0, VERIFY_INCOMPLETE = 1, VERIFY_INVALID = 4 }; /* 2: a bad command line (cmd_usage_error) */

static void usage(FILE *f)
{
    fprintf(f, "usage: mechdiff verify OUT.h5 [--quiet]\n\n"
               "Checks a results file without the job, models or data: the root and /provenance\n"
               "attributes and run segments, every stage's done flags and regions, every dataset a\n"
               "stage recorded as declared (a missing one is named with its experiment and stage;\n"
               "files of older builds have no record: not checked), every dataset\n"
               "against its kind's outputs table (type, rank, units, description, dimension scales,\n"
               "list attributes naming an axis), every done unit read back through its regions,\n"
               "values finite where the kind never writes NaN and inside each kind's true ranges,\n"
               "and each dataset's SHA-256 where the run that finished the job wrote one (files of\n"
               "older builds have none: not checked). Each defect is one line naming the file and\n"
               "the HDF5 object; a partly done file gets lines 'incomplete: EXP stage S N/M units'.\n"
               "  --quiet   print only defects and incomplete stages, no summary line\n"
               "Exit status: 0 valid and complete, 1 valid but incomplete (a running or stopped job,\n"
               "a part of an array job, a merged file before its last run), 2 usage error,\n"
               "4 invalid (defects found, or not a readable mechdiff results file of layout 2: files of\n"
               "mechdiff before 2026-12-07, layout 1, are not verified).\n");
}

int cmd_verify(int argc, char **argv)
{
    if (cmd_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    int quiet = 0;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quiet") == 0) quiet = 1;
        else if (argv[i][0] == '-' && argv[i][1] != '\0')
            return cmd_usage_error("verify", usage, "unknown option '%s'", argv[i]);
        else if (path)
            return cmd_usage_error("verify", usage, "one results file at a time ('%s' is a second)", argv[i]);
        else path = argv[i];
    }
    if (!path || !path[0]) return cmd_usage_error("verify", usage, "no results file given");
    md_error err;
    if (cmd_check_results_path(path, "", &err) != MD_OK) {
        fprintf(stderr, "mechdiff verify: %s; give the OUT.h5 a run wrote\n", err.msg);
        return VERIFY_INVALID;
    }
    md_verify_result res;
    if (md_verify_file(path, stdout, &res) != 0) return VERIFY_INVALID;
    if (!quiet) {
        printf("%s: %s: %lld datasets, %lld stages, %lld done units read back; SHA-256 of the values: %lld "
               "matched, %lld without one (not checked); declared datasets: %lld present, %lld stages without "
               "a record (not checked)\n",
               path, res.defects ? "INVALID" : res.incomplete ? "valid, incomplete" : "valid and complete",
               (long long)res.datasets, (long long)res.stages, (long long)res.units_read,
               (long long)res.digests_checked, (long long)res.digests_absent, (long long)res.declared_present,
               (long long)res.stages_unrecorded);
        if (res.defects) printf("%s: %lld defects\n", path, (long long)res.defects);
    }
    return res.defects ? VERIFY_INVALID : res.incomplete ? VERIFY_INCOMPLETE : VERIFY_VALID;
}
