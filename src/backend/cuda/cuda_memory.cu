/* cuda_memory.cu — the CUDA backend's errors, scratch buffers, copies and
 * weight uploads (see cuda_impl.h; numerics and streams: backend_cuda.cu).
 *
 * Errors. Every op returns MD_OK or MD_ERR with a message naming the
 * device, the op and what CUDA or cuBLAS reported (out of memory with the
 * sizes, a failed launch); the forward adds the layer, the runner the unit.
 * alloc returns NULL after printing the sizes, so the caller reports it.
 * A kernel fault (illegal address, ...) is asynchronous: by default the
 * next call that waits for the stream reports it, under its own name, with
 * a hint; with MECHDIFF_CUDA_SYNC=1 (c->sync) each checked launch or copy
 * is followed by a wait, so the op that faulted reports it. */
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_impl.h"

int cu_fail(const cu_impl *c, md_error *err, const char *op, const char *what)
{
    return md_error_set(err, "cuda backend (device %d, %s): %s: %s", c ? c->device : -1, c ? c->name : "?", op,
                        what);
}

/* Errors of a kernel that already ran: they surface at the next call that
 * waits, which need not be the op that launched the kernel. */
static int is_async_fault(cudaError_t e)
{
    return e == cudaErrorIllegalAddress || e == cudaErrorLaunchFailure || e == cudaErrorAssert ||
           e == cudaErrorIllegalInstruction || e == cudaErrorMisalignedAddress ||
           e == cudaErrorInvalidAddressSpace || e == cudaErrorInvalidPc || e == cudaErrorHardwareStackError ||
           e == cudaErrorLaunchTimeout;
}

/* The failure e of op, and what it tells of who faulted: found by the
 * wait after op's own launch (waited), or a kernel fault that an earlier op
 * may have caused (without MECHDIFF_CUDA_SYNC: the hint to set it). */
static int fail_cuda(const cu_impl *c, cudaError_t e, const char *op, int waited, md_error *err)
{
    char what[384];
    cudaGetLastError(); /* clear a non-sticky error so later calls report their own */
    if (waited)
        snprintf(what, sizeof what, "%s (MECHDIFF_CUDA_SYNC=1: the stream was synchronised after this op's "
                 "launch, so this op faulted)", cudaGetErrorString(e));
    else if (is_async_fault(e) && !(c && c->sync))
        snprintf(what, sizeof what, "%s (a kernel fault is reported by the next call that waits, maybe not the "
                 "op that faulted: rerun with MECHDIFF_CUDA_SYNC=1 to name it)", cudaGetErrorString(e));
    else
        snprintf(what, sizeof what, "%s", cudaGetErrorString(e));
    return cu_fail(c, err, op, what);
}

int cu_sync_point(const cu_impl *c, const char *op, md_error *err)
{
    if (!c->sync) return MD_OK;
    cudaError_t e = cudaStreamSynchronize(c->stream);
    if (e == cudaSuccess) e = cudaGetLastError();
    return e == cudaSuccess ? MD_OK : fail_cuda(c, e, op, 1, err);
}

int cu_check(const cu_impl *c, cudaError_t e, const char *op, md_error *err)
{
    if (e != cudaSuccess) return fail_cuda(c, e, op, 0, err);
    return cu_sync_point(c, op, err);
}

int cu_check_launch(const cu_impl *c, const char *op, md_error *err)
{
    return cu_check(c, cudaGetLastError(), op, err);
}

const char *cu_blas_status_name(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "cuBLAS not initialised";
    case CUBLAS_STATUS_ALLOC_FAILED: return "cuBLAS allocation failed (out of GPU memory)";
    case CUBLAS_STATUS_INVALID_VALUE: return "cuBLAS invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "cuBLAS architecture mismatch";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "cuBLAS execution failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "cuBLAS: not supported on this device";
    default: return "cuBLAS error";
    }
}

int cu_check_blas(const cu_impl *c, cublasStatus_t s, const char *op, md_error *err)
{
    return s == CUBLAS_STATUS_SUCCESS ? cu_sync_point(c, op, err) : cu_fail(c, err, op, cu_blas_status_name(s));
}

/* The stream is synchronised first: earlier ops may still read the old buffer. */
void *cu_scratch_get(cu_impl *c, cu_scratch *s, size_t need, const char *op, md_error *err)
{
    if (need <= s->bytes && s->p) return s->p;
    size_t want = need + need / 4 + 256;
    if (cu_check(c, cudaStreamSynchronize(c->stream), op, err) != MD_OK) return NULL;
    if (s->p) cudaFree(s->p);
    s->p = NULL;
    s->bytes = 0;
    if (cudaMalloc(&s->p, want) != cudaSuccess) {
        cudaGetLastError();
        s->p = NULL;
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        char msg[256];
        snprintf(msg, sizeof msg, "out of GPU memory for a %.1f MiB scratch buffer (%.1f MiB free of %.1f MiB)",
                 cu_mib(want), cu_mib(fr), cu_mib(tot));
        cu_fail(c, err, op, msg);
        return NULL;
    }
    s->bytes = want;
    return s->p;
}

void cu_scratch_free(cu_scratch *s)
{
    if (s->p) cudaFree(s->p);
    s->p = NULL;
    s->bytes = 0;
}

/* ------------------------------------------------------- memory and copies */

void *cu_alloc(md_backend *be, size_t bytes)
{
    cu_impl *c = cu_impl_of(be);
    void *p = NULL;
    if (bytes == 0) bytes = 64;
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
        cudaGetLastError();
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        fprintf(stderr,
                "mechdiff: cuda backend (device %d, %s): out of GPU memory: %.1f MiB needed, %.1f MiB free of "
                "%.1f MiB (weights hold %.1f MiB); use smaller batches, layer sharding over more ranks, or "
                "the CPU backend\n",
                c->device, c->name, cu_mib(bytes), cu_mib(fr), cu_mib(tot), cu_mib(c->weight_bytes));
        return NULL;
    }
    md_error err;
    md_error_clear(&err);
    if (cu_check(c, cudaMemsetAsync(p, 0, bytes, c->stream), "alloc: zeroing", &err) != MD_OK) {
        fprintf(stderr, "mechdiff: %s\n", err.msg);
        cudaFree(p);
        return NULL;
    }
    return p;
}

/* Frees are best effort: a failure here (an earlier fault the stream
 * reports) was or will be reported by the op that caused it. */
void cu_free(md_backend *be, void *p)
{
    cu_impl *c = cu_impl_of(be);
    if (!p) return;
    if (cudaStreamSynchronize(c->stream) != cudaSuccess) cudaGetLastError();
    if (cudaFree(p) != cudaSuccess) cudaGetLastError();
}

int cu_to_device(md_backend *be, void *dst, const void *src, size_t bytes, md_error *err)
{
    cu_impl *c = cu_impl_of(be);
    if (!bytes) return MD_OK;
    return cu_check(c, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream), "to_device", err);
}

int cu_to_host(md_backend *be, void *dst, const void *src, size_t bytes, md_error *err)
{
    cu_impl *c = cu_impl_of(be);
    if (bytes &&
        cu_check(c, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream), "to_host", err) != MD_OK)
        return MD_ERR;
    return cu_check(c, cudaStreamSynchronize(c->stream), "to_host (an earlier op failed)", err);
}

int cu_copy(md_backend *be, void *dst, const void *src, size_t bytes, md_error *err)
{
    cu_impl *c = cu_impl_of(be);
    if (!bytes || dst == src) return MD_OK;
    return cu_check(c, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream), "copy", err);
}

/* ----------------------------------------------------------------- weights */

static cu_record *rec_by_dev(cu_impl *c, const void *dev)
{
    for (int i = 0; i < c->n_recs; i++)
        if (c->recs[i].dev == dev) return &c->recs[i];
    return NULL;
}

/* Uploads host data (dtype hd, n elements) into dst (dtype dd) on the
 * stream: a plain copy when the dtypes agree, else staged and converted on
 * the device CU_STAGE_BYTES at a time. */
static int upload(cu_impl *c, void *dst, md_dtype dd, const void *host, md_dtype hd, size_t n, md_error *err)
{
    size_t hs = md_dtype_size(hd), ds = md_dtype_size(dd);
    cudaError_t e;
    if (hd == dd) {
        e = cudaMemcpyAsync(dst, host, n * hs, cudaMemcpyHostToDevice, c->stream);
        if (e != cudaSuccess) goto fail;
        return MD_OK;
    }
    if (!c->stage.p) {
        e = cudaMalloc(&c->stage.p, CU_STAGE_BYTES);
        if (e != cudaSuccess) goto fail;
        c->stage.bytes = CU_STAGE_BYTES;
    }
    {
        size_t per = CU_STAGE_BYTES / hs;
        for (size_t off = 0; off < n; off += per) {
            size_t k = n - off < per ? n - off : per;
            e = cudaMemcpyAsync(c->stage.p, (const char *)host + off * hs, k * hs, cudaMemcpyHostToDevice, c->stream);
            if (e != cudaSuccess) goto fail;
            e = cu_launch_convert(c->stream, (char *)dst + off * ds, dd, c->stage.p, hd, k);
            if (e != cudaSuccess) goto fail;
        }
    }
    return MD_OK;
fail:
    cudaGetLastError();
    return md_error_set(err, "cuda backend: uploading a weight to device %d failed: %s", c->device,
                        cudaGetErrorString(e));
}

int cu_prepare(md_backend *be, md_weight *w, md_error *err)
{
    cu_impl *c = cu_impl_of(be);
    w->prepared = NULL;
    if (w->dtype != MD_DTYPE_F32 && w->dtype != MD_DTYPE_F16 && w->dtype != MD_DTYPE_BF16)
        return md_error_set(err, "cuda backend: unsupported weight dtype %d", (int)w->dtype);
    int is_vector = w->rows == 1;
    md_dtype dd = is_vector ? MD_DTYPE_F32 : c->weight_dtype;
    /* the same tensor uploaded already (tied embeddings): share it */
    for (int i = 0; i < c->n_recs; i++) {
        cu_record *r = &c->recs[i];
        if (r->host == w->host && r->host_dtype == w->dtype && r->rows == w->rows && r->cols == w->cols &&
            r->dev_dtype == dd) {
            r->refs++;
            w->prepared = r->dev;
            return MD_OK;
        }
    }
    if (c->n_recs == c->cap_recs) {
        int cap = c->cap_recs ? 2 * c->cap_recs : 64;
        cu_record *g = (cu_record *)realloc(c->recs, (size_t)cap * sizeof *g);
        if (!g) return md_error_set(err, "cuda backend: out of host memory");
        c->recs = g;
        c->cap_recs = cap;
    }
    size_t n = (size_t)w->rows * (size_t)w->cols;
    size_t bytes = n * md_dtype_size(dd);
    void *dev = NULL;
    if (cudaMalloc(&dev, bytes ? bytes : 64) != cudaSuccess) {
        cudaGetLastError();
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        return md_error_set(err,
                            "cuda backend: out of GPU memory uploading a %dx%d %s weight: %.1f MiB needed, %.1f MiB "
                            "free of %.1f MiB on device %d (%s), %.1f MiB of weights uploaded so far; hold fewer "
                            "layers per rank (layer sharding), use a GPU with more memory%s, or the CPU backend",
                            w->rows, w->cols, md_dtype_name(dd), cu_mib(bytes), cu_mib(fr), cu_mib(tot), c->device, c->name,
                            cu_mib(c->weight_bytes),
                            c->weight_dtype == MD_DTYPE_F32 ? ", bf16 weights (unset MECHDIFF_CUDA_WEIGHTS)" : "");
    }
    if (upload(c, dev, dd, w->host, w->dtype, n, err) != MD_OK ||
        cu_sync_point(c, "prepare: upload", err) != MD_OK) {
        cudaFree(dev);
        return MD_ERR;
    }
    cu_record *r = &c->recs[c->n_recs++];
    r->host = w->host;
    r->host_dtype = w->dtype;
    r->rows = w->rows;
    r->cols = w->cols;
    r->dev = dev;
    r->dev_dtype = dd;
    r->bytes = bytes;
    r->refs = 1;
    c->weight_bytes += bytes;
    w->prepared = dev;
    return MD_OK;
}

void cu_release(md_backend *be, md_weight *w)
{
    cu_impl *c = cu_impl_of(be);
    if (!w->prepared) return;
    cu_record *r = rec_by_dev(c, w->prepared);
    w->prepared = NULL;
    if (!r || --r->refs > 0) return;
    if (cudaStreamSynchronize(c->stream) != cudaSuccess) cudaGetLastError(); /* best effort, as cu_free */
    cudaFree(r->dev);
    c->weight_bytes -= r->bytes;
    *r = c->recs[--c->n_recs];
}

/* Where a weight's elements live on the device. Besides a prepared weight
 * itself this resolves the two row views forward.c builds for logit ids: a
 * copy with rows = 1 whose `prepared` is (float *)U.prepared + id*cols (the
 * CPU backend's fp32 convention) and `host` still U's start, or one with
 * prepared = NULL and `host` pointing at the row in the mapping. */
int cu_resolve(cu_impl *c, const md_weight *w, cu_view *v, const char *op, md_error *err)
{
    /* a row view of an uploaded matrix (checked first: the fp32-convention
     * pointer may run past the bf16 allocation and even hit another one) */
    for (int i = 0; w->rows == 1 && i < c->n_recs; i++) {
        cu_record *q = &c->recs[i];
        if (q->rows <= 1 || q->cols != w->cols || q->host_dtype != w->dtype) continue;
        size_t row_bytes;
        ptrdiff_t off;
        if (w->prepared) {
            if (q->host != w->host) continue;
            row_bytes = (size_t)q->cols * sizeof(float);
            off = (const char *)w->prepared - (const char *)q->dev;
        } else {
            row_bytes = (size_t)q->cols * md_dtype_size(q->host_dtype);
            off = (const char *)w->host - (const char *)q->host;
        }
        if (off < 0 || (size_t)off % row_bytes) continue;
        size_t row = (size_t)off / row_bytes;
        if (row >= (size_t)q->rows) continue;
        v->dev = (const char *)q->dev + row * (size_t)q->cols * md_dtype_size(q->dev_dtype);
        v->dtype = q->dev_dtype;
        return MD_OK;
    }
    cu_record *r = w->prepared ? rec_by_dev(c, w->prepared) : NULL;
    if (r) {
        v->dev = r->dev;
        v->dtype = r->dev_dtype;
        return MD_OK;
    }
    return cu_fail(c, err, op, "a weight that was never prepared on this backend was passed in");
}
