/* profile.h — time and FLOPs per op class of a backend (internal).
 *
 * With MECHDIFF_PROFILE=1 in the environment, md_backend_create wraps the
 * backend it made in a profiling backend: the same op table, each op
 * forwarded to the real backend between two time marks. Classes: the GEMMs
 * by the weight's checkpoint dtype (gemm.f32 / gemm.f16 / gemm.bf16:
 * matmul, counting the useful 2·n·out·in FLOPs — with the CUDA backend's
 * x3 mode the tensor cores execute 3x that), attention (attention,
 * attention_seqs, attn_mix), other (norms, RoPE, activation, add, scale,
 * embed, bias, add_vec, ablate), copy (to_device, to_host, copy) and
 * prepare (weight conversion/upload: start-up). alloc, free and release are
 * not timed.
 *
 * Time marks: the host's monotonic clock around each call (the CPU
 * backend's ops are synchronous), or the backend's own device timer when it
 * has one (CUDA: a cudaEvent pair on its stream around the op, read back in
 * batches, so profiling adds no synchronisation; prepare is timed on the
 * host). When profiling is off nothing is wrapped: no cost.
 *
 * At destroy the wrapper prints one summary to stderr (a table and one
 * line `mechdiff profile json: {...}` for scripts; see docs/cuda.md), then
 * destroys the backend it owns. One summary per backend: a rank that loads
 * two models prints two. */
#ifndef MECHDIFF_BACKEND_PROFILE_H
#define MECHDIFF_BACKEND_PROFILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mechdiff/backend.h"

typedef enum md_prof_class {
    MD_PROF_GEMM_F32 = 0,
    MD_PROF_GEMM_F16,
    MD_PROF_GEMM_BF16,
    MD_PROF_ATTENTION,
    MD_PROF_OTHER,
    MD_PROF_COPY,
    MD_PROF_PREPARE,
    MD_PROF_N_CLASSES
} md_prof_class;

/* Totals of one profiled backend (plain data). */
typedef struct md_prof_stats {
    double seconds[MD_PROF_N_CLASSES];
    uint64_t flops[MD_PROF_N_CLASSES]; /* GEMM classes only: sum of 2·n·out·in */
    uint64_t calls[MD_PROF_N_CLASSES];
    double created;                    /* host clock at creation */
    double first_op, last_op;          /* host clock: first non-prepare op called, last op returned (0: none) */
} md_prof_stats;

/* A backend's device timer (NULL members: not offered). begin marks the
 * start of a span on the backend's stream and returns its handle (-1: the
 * span is not timed); end marks its end; the span's seconds are added to
 * st->seconds[cls] once the device has run it (at the latest in flush,
 * which waits for every open span). */
typedef struct md_prof_timer {
    int (*begin)(md_backend *inner, md_prof_stats *st);
    void (*end)(md_backend *inner, int span, md_prof_class cls);
    void (*flush)(md_backend *inner, md_prof_stats *st);
    /* one line naming the device and its modes, for the summary */
    void (*describe)(md_backend *inner, char *buf, size_t len);
} md_prof_timer;

/* 1 when MECHDIFF_PROFILE is set to something other than "" or "0". */
int md_profile_wanted(void);

/* Replaces *be by a profiling backend that owns it (timer NULL: the host
 * clock). On failure *be is left as it was and MD_ERR returned. */
int md_profile_wrap(md_backend **be, const md_prof_timer *timer, md_error *err);

/* The totals so far of a profiling backend (device spans still open are
 * added first); NULL when be is not one. */
const md_prof_stats *md_profile_stats(md_backend *be);

/* "gemm.bf16", "attention", ... */
const char *md_prof_class_name(md_prof_class c);

/* The summary (table + json line) of st for a backend described by `what`. */
void md_profile_print(FILE *f, const md_prof_stats *st, const char *what);

#endif
