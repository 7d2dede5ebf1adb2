/* device.c — rank → GPU binding (see include/mechdiff/device.h). Plain C:
 * the CUDA runtime is only reached through src/backend/cuda/cuda_api.h. */
#include "mechdiff/device.h"

#include <errno.h>
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef MECHDIFF_HAVE_CUDA
#include "backend/cuda/cuda_api.h"
#endif

/* Parses a non-negative int; -1 when absent or malformed. */
static int env_int(const char *name)
{
    const char *s = getenv(name);
    if (!s || !*s) return -1;
    errno = 0;
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0 || v > INT_MAX) return -1;
    return (int)v;
}

static const char *const LOCAL_RANK_VARS[] = {
    "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID",
    "MV2_COMM_WORLD_LOCAL_RANK", "PMI_LOCAL_RANK", "PALS_LOCAL_RANKID", NULL};

int md_device_local_rank(void)
{
    for (int i = 0; LOCAL_RANK_VARS[i]; i++) {
        int v = env_int(LOCAL_RANK_VARS[i]);
        if (v >= 0) return v;
    }
    return -1;
}

int md_device_count(int *n, char *why, size_t why_len)
{
    *n = 0;
#ifdef MECHDIFF_HAVE_CUDA
    return md_cuda_device_count(n, why, why_len);
#else
    if (why && why_len) snprintf(why, why_len, "this mechdiff was built without CUDA (-DMECHDIFF_CUDA=OFF)");
    return MD_OK;
#endif
}

const char *md_device_build_archs(void)
{
#ifdef MECHDIFF_HAVE_CUDA
    return md_cuda_build_archs();
#else
    return "";
#endif
}

int md_device_query(int device, md_device_info *info, md_error *err)
{
    memset(info, 0, sizeof *info);
#ifdef MECHDIFF_HAVE_CUDA
    return md_cuda_device_query(device, info, err);
#else
    return md_error_set(err, "GPU %d: this mechdiff was built without CUDA (rebuild with -DMECHDIFF_CUDA=ON, "
                             "or use the CPU backend: runtime: {backend: cpu})", device);
#endif
}

int md_device_pick(int *device, md_error *err)
{
    *device = -1;
    char why[512] = "";
    int n = 0;
    if (md_device_count(&n, why, sizeof why) != MD_OK) return MD_ERR;
    if (n <= 0) {
        const char *vis = getenv("CUDA_VISIBLE_DEVICES");
        return md_error_set(err, "no GPU visible to this rank (CUDA_VISIBLE_DEVICES=%s%s%s): %s; run on the CPU "
                                 "backend instead (runtime: {backend: cpu} in the job file), or ask the batch "
                                 "system for GPUs (e.g. sbatch --gpus-per-node=N)",
                            vis ? "'" : "", vis ? vis : "unset", vis ? "'" : "", why[0] ? why : "no device");
    }
    const char *forced = getenv("MECHDIFF_CUDA_DEVICE");
    if (forced && *forced) {
        int d = env_int("MECHDIFF_CUDA_DEVICE");
        if (d < 0 || d >= n)
            return md_error_set(err, "MECHDIFF_CUDA_DEVICE='%s' is not one of the %d visible GPU ordinals [0, %d)",
                                forced, n, n);
        *device = d;
        return MD_OK;
    }
    int lr = md_device_local_rank();
    if (lr < 0) {
        int inited = 0, finalized = 0, size = 1;
        MPI_Initialized(&inited);
        MPI_Finalized(&finalized);
        if (inited && !finalized) MPI_Comm_size(MPI_COMM_WORLD, &size);
        if (size > 1)
            return md_error_set(err, "cannot tell this rank's node-local rank to pick a GPU: none of "
                                     "OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID, MPI_LOCALRANKID, "
                                     "MV2_COMM_WORLD_LOCAL_RANK, PMI_LOCAL_RANK, PALS_LOCAL_RANKID is set "
                                     "(%d MPI ranks); launch with mpirun/srun or set MECHDIFF_CUDA_DEVICE per rank",
                                size);
        lr = 0; /* a single process without a launcher */
    }
    *device = lr % n;
    return MD_OK;
}
