/* cpu_convert.c — threaded bf16/f16 → fp32 conversion (see cpu_convert.h).
 *
 * The conversion of a weight panel is memory bound (2 bytes read, 4
 * written per element); one thread reaches a fraction of the socket's
 * bandwidth, so a streamed matmul converts on as many threads as OpenBLAS
 * runs its GEMM with. Threads are started per call: a panel is >= 1M
 * elements (a few ms of work), against ~20 µs per pthread_create. */
#include "backend/cpu_convert.h"

#include <pthread.h>

/* Below this many elements per thread, fewer threads are used. */
#define CONVERT_MIN_PER_THREAD ((size_t)1 << 18)
#define CONVERT_MAX_THREADS 256

typedef struct convert_job {
    float *dst;
    const void *src;
    md_dtype dt;
    size_t n;
} convert_job;

static void *convert_run(void *arg)
{
    convert_job *j = arg;
    md_dtype_to_f32(j->dst, j->src, j->dt, j->n);
    return NULL;
}

int md_cpu_convert_f32(float *dst, const void *src, md_dtype dt, size_t n, int n_threads)
{
    size_t esz = md_dtype_size(dt);
    size_t max_t = n / CONVERT_MIN_PER_THREAD;
    int t = n_threads < 1 ? 1 : n_threads > CONVERT_MAX_THREADS ? CONVERT_MAX_THREADS : n_threads;
    if ((size_t)t > max_t) t = max_t > 0 ? (int)max_t : 1;
    if (t == 1) {
        md_dtype_to_f32(dst, src, dt, n);
        return 0;
    }
    convert_job jobs[CONVERT_MAX_THREADS];
    pthread_t tid[CONVERT_MAX_THREADS];
    int started[CONVERT_MAX_THREADS] = {0}, rc = 0;
    size_t per = (n + (size_t)t - 1) / (size_t)t;
    per = (per + 15) & ~(size_t)15; /* 64-byte aligned chunks of fp32 */
    for (int i = 0; i < t; i++) {
        size_t lo = (size_t)i * per, hi = lo + per < n ? lo + per : n;
        jobs[i] = (convert_job){dst + lo, (const char *)src + lo * esz, dt, lo < n ? hi - lo : 0};
    }
    for (int i = 1; i < t; i++)
        if (jobs[i].n) started[i] = pthread_create(&tid[i], NULL, convert_run, &jobs[i]) == 0;
    convert_run(&jobs[0]);
    for (int i = 1; i < t; i++) {
        if (started[i]) {
            pthread_join(tid[i], NULL);
        } else if (jobs[i].n) { /* could not start: do it here */
            convert_run(&jobs[i]);
            rc = -1;
        }
    }
    return rc;
}
