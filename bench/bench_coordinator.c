/* bench_coordinator.c — the runner's own cost, with the selftest kind.
 *
 *   mpirun --oversubscribe -np 3 build/bench/bench_coordinator [units] [spin]
 *
 * 1. Coordinator throughput: units/s with a null-compute worker (selftest
 *    payload: false) on all ranks — every unit still goes through dispatch,
 *    MPI, checks, journal and completion marks (goal >= 10 000 units/s).
 * 2. Speed-up from 1 to 2 worker ranks on a compute-bound selftest (spin),
 *    same job, ranks {0,1} vs {0,1,2}: printed as a ratio (ideal 2.0; on a
 *    machine with fewer free cores than ranks it cannot reach that).
 * Output files go to $TMPDIR (default /tmp) and are removed. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mechdiff/runner.h"

static int run_job(MPI_Comm comm, const char *yaml_text, const char *tag, md_run_stats *st)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char job[512], out[512];
    snprintf(job, sizeof job, "%s/bench_coord_%s_%d.yaml", tmp, tag, (int)getpid());
    snprintf(out, sizeof out, "%s/bench_coord_%s_%d.h5", tmp, tag, (int)getpid());
    if (rank == 0) {
        FILE *f = fopen(job, "w");
        fputs(yaml_text, f);
        fclose(f);
    }
    md_run_opts opts = {.job_path = job, .output = out, .force_new = 1, .part_index = -1};
    md_error err;
    int status = md_run(&opts, comm, st, &err);
    if (rank == 0) {
        if (status != MD_EXIT_OK) fprintf(stderr, "bench_coordinator: %s: %s\n", tag, err.msg);
        unlink(job);
        unlink(out);
        char j[600];
        snprintf(j, sizeof j, "%s.journal", out);
        unlink(j);
        snprintf(j, sizeof j, "%s.lock", out);
        unlink(j);
    }
    return status;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, world;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    long units = argc > 1 ? atol(argv[1]) : 200000;
    long spin = argc > 2 ? atol(argv[2]) : 3000000;
    char yaml[1024];
    md_run_stats st;

    snprintf(yaml, sizeof yaml,
             "name: bench-null\nruntime: {flush_units: 4096}\nexperiments:\n"
             "  - kind: selftest\n    units: %ld\n    stages: 1\n    payload: false\n", units);
    if (run_job(MPI_COMM_WORLD, yaml, "null", &st) != MD_EXIT_OK) MPI_Abort(MPI_COMM_WORLD, 1);
    if (rank == 0)
        printf("null-compute units/s on %d rank(s) (%d worker%s): %.0f  (%ld units in %.3f s; goal >= 10000)\n", world,
               world > 1 ? world - 1 : 1, world > 2 ? "s" : "", (double)st.units / st.seconds, (long)st.units,
               st.seconds);

    if (world >= 3) {
        snprintf(yaml, sizeof yaml,
                 "name: bench-spin\nexperiments:\n  - kind: selftest\n    units: 64\n    stages: 1\n"
                 "    spin: %ld\n    cost_variation: 1\n", spin);
        double secs[2] = {0, 0};
        for (int workers = 1; workers <= 2; workers++) {
            MPI_Comm sub;
            MPI_Comm_split(MPI_COMM_WORLD, rank <= workers ? 0 : MPI_UNDEFINED, rank, &sub);
            if (sub != MPI_COMM_NULL) {
                if (run_job(sub, yaml, workers == 1 ? "w1" : "w2", &st) != MD_EXIT_OK) MPI_Abort(MPI_COMM_WORLD, 1);
                secs[workers - 1] = st.seconds;
                MPI_Comm_free(&sub);
            }
            MPI_Barrier(MPI_COMM_WORLD);
        }
        if (rank == 0)
            printf("compute-bound selftest (64 units, spin %ld): 1 worker %.2f s, 2 workers %.2f s, "
                   "speed-up %.2fx (ideal 2.00x)\n", spin, secs[0], secs[1], secs[0] / secs[1]);
    } else if (rank == 0) {
        printf("(run with -np 3 or more for the 1 -> 2 worker speed-up)\n");
    }
    MPI_Finalize();
    return 0;
}
