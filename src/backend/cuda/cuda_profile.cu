/* cuda_profile.cu — the CUDA backend's device timer for MECHDIFF_PROFILE
 * (src/backend/profile.h): each op of the profiling backend is bracketed by
 * a cudaEvent pair recorded on the backend's stream, so a span is the
 * device time from the op's first kernel/GEMM start to its last one's end
 * (in a launch-bound stretch it includes the host's enqueue time). Events
 * are read in batches of CU_PROF_SPANS (one cudaEventSynchronize on the
 * last one) and at flush: profiling adds no per-op synchronisation.
 * With MECHDIFF_CUDA_SYNC=1 the op itself waits after each launch, between
 * its two events: the events stay valid, and a span then holds the op's
 * device time plus the host's wait and next enqueue between its launches
 * (the describe line says so); the gaps between ops fall outside spans. */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/cuda/cuda_impl.h"

extern "C" {
#include "backend/cuda/cuda_api.h"
}

/* Reads every recorded span into st and empties the list. */
static void harvest(cu_impl *c, md_prof_stats *st)
{
    if (c->prof_n == 0) return;
    cudaEventSynchronize(c->prof_ev[2 * c->prof_n - 1]);
    for (int i = 0; i < c->prof_n; i++) {
        float ms = 0.0f;
        if (cudaEventElapsedTime(&ms, c->prof_ev[2 * i], c->prof_ev[2 * i + 1]) == cudaSuccess)
            st->seconds[c->prof_cls[i]] += 1e-3 * ms;
    }
    cudaGetLastError(); /* an unreadable pair is skipped, not an op's error */
    c->prof_n = 0;
}

static int events_create(cu_impl *c)
{
    c->prof_ev = (cudaEvent_t *)calloc(2 * CU_PROF_SPANS, sizeof(cudaEvent_t));
    c->prof_cls = (unsigned char *)calloc(CU_PROF_SPANS, 1);
    int ok = c->prof_ev && c->prof_cls;
    for (int i = 0; ok && i < 2 * CU_PROF_SPANS; i++) ok = cudaEventCreate(&c->prof_ev[i]) == cudaSuccess;
    if (!ok) {
        cudaGetLastError();
        fprintf(stderr, "mechdiff profile: cuda backend (device %d): cannot create timing events; ops are timed "
                        "on the host instead\n", c->device);
        cu_profile_free(c);
        c->prof_failed = 1;
    }
    return ok;
}

static int timer_begin(md_backend *be, md_prof_stats *st)
{
    cu_impl *c = cu_impl_of(be);
    if (c->prof_failed || (!c->prof_ev && !events_create(c))) return -1;
    if (c->prof_n == CU_PROF_SPANS) harvest(c, st);
    if (cudaEventRecord(c->prof_ev[2 * c->prof_n], c->stream) != cudaSuccess) {
        cudaGetLastError();
        return -1;
    }
    return c->prof_n;
}

static void timer_end(md_backend *be, int span, md_prof_class cls)
{
    cu_impl *c = cu_impl_of(be);
    if (cudaEventRecord(c->prof_ev[2 * span + 1], c->stream) != cudaSuccess) {
        cudaGetLastError();
        return; /* the span is dropped */
    }
    c->prof_cls[span] = (unsigned char)cls;
    c->prof_n = span + 1;
}

static void timer_flush(md_backend *be, md_prof_stats *st) { harvest(cu_impl_of(be), st); }

static void timer_describe(md_backend *be, char *buf, size_t len)
{
    const cu_impl *c = cu_impl_of(be);
    snprintf(buf, len, "cuda backend, device %d (%s), weights %s, GEMM %s; cudaEvent spans%s", c->device, c->name,
             c->weight_dtype == MD_DTYPE_F32 ? "f32" : "bf16", c->gemm_mode == CU_GEMM_BF16 ? "bf16" : "x3",
             c->sync ? " (MECHDIFF_CUDA_SYNC=1: an op's span includes a host wait after each of its launches)" : "");
}

void cu_profile_free(cu_impl *c)
{
    if (c->prof_ev)
        for (int i = 0; i < 2 * CU_PROF_SPANS; i++)
            if (c->prof_ev[i]) cudaEventDestroy(c->prof_ev[i]);
    free(c->prof_ev);
    free(c->prof_cls);
    c->prof_ev = NULL;
    c->prof_cls = NULL;
    c->prof_n = 0;
}

extern "C" const md_prof_timer *md_backend_cuda_timer(void)
{
    static const md_prof_timer timer = {timer_begin, timer_end, timer_flush, timer_describe};
    return &timer;
}
