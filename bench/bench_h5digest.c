/* bench_h5digest.c — the cost of the results digests (src/runner/h5digest.h):
 * the SHA-256 of every result dataset's values, written by the snapshot that
 * finishes a job and checked by `mechdiff verify`.
 *
 *   build/bench/bench_h5digest [SIZE_MB] [DIR]
 *
 * Writes DIR/bench_h5digest.h5 (default /tmp) holding one dataset shaped as
 * knowledge's acts_true at Llama-3-8B widths, [pair, 32 layers, 14
 * positions, 4096], float32, chunked one pair at a time with shuffle +
 * deflate 4 as the writer stores it (h5out.c), filled with activation-like
 * values (a sum of uniforms: as incompressible as real activations),
 * SIZE_MB of values (default 1024). Then, alternated, best of 3, all from
 * the page cache, in CPU seconds of this process: reading every value back
 * (the floor of any check),
 * md_h5digest_write_all (what the finishing snapshot adds) and
 * md_h5digest_check (what verify adds). Prints seconds, GB/s of values and
 * the ratios to writing the dataset once and to reading it. */
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mechdiff/error.h"
#include "runner/h5digest.h"

#define LAYERS 32
#define POS 14
#define HIDDEN 4096

/* CPU seconds of this process: the machine these figures come from is
 * shared, so wall-clock times would measure the other users too. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One pair's activations: sums of 4 uniforms, centred, scaled. */
static void fill(float *v, size_t n, uint64_t *s)
{
    for (size_t i = 0; i < n; i++) {
        double x = 0;
        for (int k = 0; k < 4; k++) {
            *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
            x += (double)(*s >> 11) / 9007199254740992.0;
        }
        v[i] = (float)((x - 2.0) * 1.7);
    }
}

/* Writes the dataset from two pairs' values in turn (made before the
 * clock starts); returns its seconds. */
static double write_file(const char *path, hsize_t pairs, float *row)
{
    size_t n = (size_t)LAYERS * POS * HIDDEN;
    uint64_t seed = 1;
    fill(row, 2 * n, &seed);
    double t0 = now();
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t g = H5Gcreate2(f, "knowledge", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[4] = {pairs, LAYERS, POS, HIDDEN}, chunk[4] = {1, 16, POS, HIDDEN}, one[4] = {1, LAYERS, POS, HIDDEN};
    hid_t sp = H5Screate_simple(4, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 4, chunk); /* one pair, half the layers: <= 4 MiB, as h5out.c halves */
    H5Pset_shuffle(dcpl);
    H5Pset_deflate(dcpl, 4);
    hid_t d = H5Dcreate2(g, "acts_true", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    hid_t ms = H5Screate_simple(4, one, NULL);
    for (hsize_t p = 0; p < pairs; p++) {
        hsize_t off[4] = {p, 0, 0, 0};
        H5Sselect_hyperslab(sp, H5S_SELECT_SET, off, NULL, one, NULL);
        H5Dwrite(d, H5T_NATIVE_FLOAT, ms, sp, H5P_DEFAULT, row + (p % 2) * n);
    }
    H5Sclose(ms);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Gclose(g);
    H5Fclose(f);
    return now() - t0;
}

/* Reads every value back, a pair at a time; returns seconds. */
static double read_all(const char *path, hsize_t pairs, float *row)
{
    double t0 = now();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), d = H5Dopen2(f, "/knowledge/acts_true", H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hsize_t one[4] = {1, LAYERS, POS, HIDDEN};
    hid_t ms = H5Screate_simple(4, one, NULL);
    for (hsize_t p = 0; p < pairs; p++) {
        hsize_t off[4] = {p, 0, 0, 0};
        H5Sselect_hyperslab(sp, H5S_SELECT_SET, off, NULL, one, NULL);
        H5Dread(d, H5T_NATIVE_FLOAT, ms, sp, H5P_DEFAULT, row);
    }
    H5Sclose(ms);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
    return now() - t0;
}

int main(int argc, char **argv)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    double mb = argc > 1 ? atof(argv[1]) : 1024;
    char path[4096];
    snprintf(path, sizeof path, "%s/bench_h5digest.h5", argc > 2 ? argv[2] : "/tmp");
    size_t per_pair = (size_t)LAYERS * POS * HIDDEN;
    hsize_t pairs = (hsize_t)(mb * 1e6 / (double)(per_pair * sizeof(float)) + 0.5);
    if (pairs < 1) pairs = 1;
    float *row = malloc(2 * per_pair * sizeof *row);
    if (!row) return 1;
    double gb = (double)pairs * (double)per_pair * 4 / 1e9, t_write = write_file(path, pairs, row);
    double best_read = 1e30, best_write = 1e30, best_check = 1e30;
    md_error err;
    int ok = 1;
    for (int rep = 0; rep < 3 && ok; rep++) {
        double t = read_all(path, pairs, row);
        if (t < best_read) best_read = t;
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        t = now();
        ok = md_h5digest_write_all(f, &err) == MD_OK;
        t = now() - t;
        H5Fclose(f);
        if (t < best_write) best_write = t;
        f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        char want[65], got[65];
        t = now();
        ok = ok && md_h5digest_check(f, "/knowledge/acts_true", want, got, &err) == 1;
        t = now() - t;
        H5Fclose(f);
        if (t < best_check) best_check = t;
    }
    free(row);
    remove(path);
    if (!ok) {
        fprintf(stderr, "bench_h5digest: %s\n", err.msg[0] ? err.msg : "the digest did not match");
        return 1;
    }
    printf("acts_true [%llu, %d, %d, %d] float32, %.3f GB of values (shuffle + deflate 4)\n",
           (unsigned long long)pairs, LAYERS, POS, HIDDEN, gb);
    printf("write once (deflate)        %8.3f CPU s  %6.3f GB/s\n", t_write, gb / t_write);
    printf("read all values back        %8.3f CPU s  %6.3f GB/s\n", best_read, gb / best_read);
    printf("digest written (finish)     %8.3f CPU s  %6.3f GB/s\n", best_write, gb / best_write);
    printf("digest checked (verify)     %8.3f CPU s  %6.3f GB/s\n", best_check, gb / best_check);
    printf("ratios: digest / read %.2f, digest / write once %.2f\n", best_write / best_read, best_write / t_write);
    return 0;
}
