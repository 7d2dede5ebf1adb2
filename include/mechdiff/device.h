/* device.h — which GPU a rank uses, and what that GPU is.
 *
 * One GPU per worker rank: the node-local rank (from the launcher's
 * environment) modulo the number of visible devices picks the ordinal, so
 * `mpirun -np 8` on a node with 8 GPUs, or `srun --gpus-per-node=8
 * --ntasks-per-node=8`, puts one rank on each GPU. With Slurm's per-task GPU
 * binding (--gpus-per-task=1) each rank sees one device and picks 0.
 *
 * Plain C; a build without CUDA (MECHDIFF_CUDA=OFF) reports 0 devices. */
#ifndef MECHDIFF_DEVICE_H
#define MECHDIFF_DEVICE_H

#include <stddef.h>

#include "mechdiff/error.h"

typedef struct md_device_info {
    int ordinal;
    char name[256];
    int cc_major, cc_minor;      /* compute capability */
    int sm_count;
    int clock_khz;               /* peak SM clock */
    size_t mem_total, mem_free;  /* bytes */
    double bf16_peak_tflops;     /* dense bf16 tensor-core peak estimated from the
                                  * compute capability, SMs and clock (0: unknown);
                                  * MECHDIFF_BF16_PEAK_TFLOPS overrides it */
} md_device_info;

/* Number of CUDA devices this process sees (CUDA_VISIBLE_DEVICES applies).
 * No driver, no device or a build without CUDA give *n = 0 and MD_OK; `why`
 * (may be NULL) receives the reason in that case. */
int md_device_count(int *n, char *why, size_t why_len);

/* The node-local rank from the launcher: OMPI_COMM_WORLD_LOCAL_RANK,
 * SLURM_LOCALID, MPI_LOCALRANKID (MPICH/Hydra), MV2_COMM_WORLD_LOCAL_RANK,
 * PMI_LOCAL_RANK, PALS_LOCAL_RANKID, first set wins; -1 when none is set. */
int md_device_local_rank(void);

/* The GPU ordinal for this rank: MECHDIFF_CUDA_DEVICE when set (must be a
 * visible ordinal), else local rank modulo visible devices (a single-rank
 * run without a launcher uses 0). Errors: no GPU visible (names
 * CUDA_VISIBLE_DEVICES and says how to select the CPU backend), several MPI
 * ranks but no local-rank variable, a bad MECHDIFF_CUDA_DEVICE. */
int md_device_pick(int *device, md_error *err);

/* Fills *info for a visible ordinal. */
int md_device_query(int device, md_device_info *info, md_error *err);

/* The CUDA architectures this build was compiled for ("80;90"), or "" when
 * built without CUDA. */
const char *md_device_build_archs(void);

#endif
