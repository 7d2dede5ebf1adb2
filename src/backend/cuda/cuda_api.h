/* cuda_api.h — private C interface between the plain-C parts of mechdiff
 * (src/core/device.c, src/backend/backend.c) and the CUDA translation unit
 * (backend_cuda.cu).
 * Only compiled in with MECHDIFF_HAVE_CUDA. */
#ifndef MECHDIFF_CUDA_API_H
#define MECHDIFF_CUDA_API_H

#include <stddef.h>

#include "backend/profile.h"
#include "mechdiff/backend.h"
#include "mechdiff/device.h"
#include "mechdiff/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Visible devices; 0 with the runtime's reason in `why` when none. */
int md_cuda_device_count(int *n, char *why, size_t why_len);
int md_cuda_device_query(int device, md_device_info *info, md_error *err);
/* CMAKE_CUDA_ARCHITECTURES of this build. */
const char *md_cuda_build_archs(void);
/* The CUDA backend on GPU `device` (md_backend_create's CUDA case). */
int md_backend_cuda_create(md_backend **out, int device, md_cuda_weights weights, md_cuda_gemm gemm,
                           md_error *err);
/* The device timer of MECHDIFF_PROFILE (cuda_profile.cu): cudaEvent pairs
 * on the backend's stream. */
const md_prof_timer *md_backend_cuda_timer(void);

#ifdef __cplusplus
}
#endif

#endif
