/* cmd_run.c — `mechdiff run JOB.yaml [-o OUT.h5] [--force-new] [--part i/n]`:
 * runs or resumes a job, alone or under mpirun/srun (see mechdiff/runner.h). */
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mechdiff/runner.h"
#include "tools/cmds.h"

/* Set by SIGTERM/SIGUSR1/SIGINT; the runner polls it. The one global of the command
 * (a signal handler can reach nothing else). */
static volatile sig_atomic_t g_stop = 0;

static void on_stop_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mechdiff run JOB.yaml [-o OUT.h5] [--force-new] [--allow-mixed-numerics] [--part I/N] [--quiet]\n"
            "       mpirun -np N mechdiff run JOB.yaml ...   |   srun mechdiff run JOB.yaml ...\n\n"
            "Runs the job's experiments: rank 0 coordinates and writes OUT.h5, the other ranks compute\n"
            "(one rank does both). If OUT.h5 exists it resumes: finished units are skipped. An OUT.h5\n"
            "of a different job is refused unless --force-new.\n\n"
            "  -o OUT.h5     output file (default: the job's `output`)\n"
            "  --force-new   replace an output written by a different job\n"
            "  --allow-mixed-numerics  resume although the backend or precision differs from the run\n"
            "                that wrote OUT.h5 (refused otherwise); the file records which units each\n"
            "                setup computed (/provenance/segments/<k>/done_at_start)\n"
            "  --part I/N    compute only part I of N (units u with u %% N == I), for Slurm arrays;\n"
            "                the default output becomes OUT.partIofN.h5; combine with `mechdiff merge`\n"
            "  --quiet       no progress output\n\n"
            "Progress: a bar on a terminal, one line every runtime.progress_interval s otherwise.\n"
            "Signals: SIGTERM, SIGUSR1 or SIGINT (Ctrl-C; a second one ends the run at once) stop handing\n"
            "out units, wait up to runtime.stop_grace s for units in flight, save, and exit with status\n"
            "%d (resumable: requeue and run again).\n"
            "Under mpirun send SIGUSR1 (mpirun forwards it). SIGTERM or SIGINT to mpirun: mpirun sends\n"
            "SIGTERM to the ranks, kills them a moment later (units in flight are lost), exits 1 itself.\n"
            "Exit status (every rank, also under mpirun/srun): 0 done, 1 error while running (message\n"
            "names rank and unit; a full disk: free space, run again), 2 bad usage or job file, %d output\n"
            "locked by another run (wait for it or use another -o), %d stopped by a signal (resumable).\n"
            "A rank killed by SIGKILL (or the OOM killer) has no status of its own: mpirun exits\n"
            "137 (128 + 9). Whatever stopped a run, the same command resumes it; results already in\n"
            "OUT.h5 or fsync'd in OUT.h5.journal are kept.\n",
            MD_EXIT_REQUEUE, MD_EXIT_LOCKED, MD_EXIT_REQUEUE);
}

int cmd_run(int argc, char **argv)
{
    if (cmd_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    md_run_opts opts = {.part_index = -1, .progress = 1, .stop = &g_stop};
    for (int i = 1; i < argc; i++) {
        int needs_value = strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--part") == 0;
        if (needs_value && (i + 1 >= argc || argv[i + 1][0] == '\0')) {
            return cmd_usage_error("run", usage, "%s needs a value", argv[i]);
        } else if (strcmp(argv[i], "-o") == 0) {
            opts.output = argv[++i];
        } else if (strcmp(argv[i], "--force-new") == 0) {
            opts.force_new = 1;
        } else if (strcmp(argv[i], "--allow-mixed-numerics") == 0) {
            opts.allow_mixed_numerics = 1;
        } else if (strcmp(argv[i], "--quiet") == 0) {
            opts.progress = 0;
        } else if (strcmp(argv[i], "--part") == 0) {
            char tail = '\0';
            if (sscanf(argv[++i], "%d/%d%c", &opts.part_index, &opts.part_count, &tail) != 2 ||
                opts.part_count < 1 || opts.part_index < 0 || opts.part_index >= opts.part_count)
                return cmd_usage_error("run", usage, "--part expects I/N with 0 <= I < N, got '%s'", argv[i]);
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cmd_usage_error("run", usage, "unknown option '%s'", argv[i]);
        } else if (opts.job_path) {
            return cmd_usage_error("run", usage, "one job file at a time ('%s' is a second)", argv[i]);
        } else {
            opts.job_path = argv[i];
        }
    }
    if (!opts.job_path || !opts.job_path[0]) return cmd_usage_error("run", usage, "no job file given");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_flags = SA_RESETHAND; /* Ctrl-C saves like SIGTERM; a second one ends the run at once */
    sigaction(SIGINT, &sa, NULL);

    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    md_run_stats stats;
    md_error err;
    int status = md_run(&opts, MPI_COMM_WORLD, &stats, &err);
    if (rank == 0 && status != MD_EXIT_OK && err.msg[0]) fprintf(stderr, "mechdiff: %s\n", err.msg);
    if (rank == 0 && status == MD_EXIT_REQUEUE)
        fprintf(stderr, "mechdiff: stopped by a signal after saving; run the same command again to resume "
                        "(exit status %d)\n", MD_EXIT_REQUEUE);
    MPI_Finalize();
    if (status != MD_EXIT_OK) {
        /* Not through exit(): after H5Fclose of a snapshot failed (a full
         * disk: its metadata cannot be flushed), HDF5 1.10 keeps the file's
         * id but frees the file, and its atexit clean-up then crashed the
         * run (status 139, not 1). Every file is closed or discarded. */
        fflush(NULL);
        _exit(status);
    }
    return status;
}
