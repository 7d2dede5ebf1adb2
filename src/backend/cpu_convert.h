/* cpu_convert.h — bf16/f16 → fp32 conversion of a weight panel on several
 * threads (internal to the CPU backend). */
#ifndef MECHDIFF_CPU_CONVERT_H
#define MECHDIFF_CPU_CONVERT_H

#include <stddef.h>

#include "mechdiff/dtype.h"

/* dst[0..n) = fp32(src[0..n)) split over up to n_threads threads (the
 * caller's thread works too); the values are those of md_dtype_to_f32.
 * Returns 0, or -1 when a thread could not be started (then everything
 * was converted on the calling thread). */
int md_cpu_convert_f32(float *dst, const void *src, md_dtype dt, size_t n, int n_threads);

#endif
