/* test_cuda_sync.c — MECHDIFF_CUDA_SYNC=1 names the op a kernel fault comes
 * from (src/backend/cuda/cuda_memory.cu, cu_check). A fault is provoked on
 * purpose: `add` into an address no allocation holds. It breaks the CUDA
 * context of its process, so each case runs in a child forked before this
 * process touches CUDA, and reports through a pipe:
 *   sync off: the first op to report the fault (usually a later one: `add`
 *             returns before its kernel runs) says to rerun with
 *             MECHDIFF_CUDA_SYNC=1;
 *   sync on:  `add` itself fails, naming `add` and the synchronisation;
 *   MECHDIFF_CUDA_SYNC=yes: the backend is not created, the message names
 *             the variable and its values.
 * (That the waits change no number and that MECHDIFF_PROFILE's spans still
 * work with them: test_profile --gpu.)
 *   test_cuda_sync --gpu   (ctest gpu.test_cuda_sync; scripts/dev/gpu_checks.sh,
 *                          step ops); 77 = no GPU or no CUDA in this build */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mechdiff/backend.h"
#include "mechdiff/device.h"
#include "testutil.h"

#define N_OPS 3
static const char *const OP_NAMES[N_OPS] = {"add", "scale", "to_host"};

/* What a child saw: "skip" (no device), "create" (creation failed) or "ops";
 * msg: the creation's message, or per op its status and message. */
typedef struct outcome {
    char kind[8];
    int rc[N_OPS];
    char msg[N_OPS][sizeof(((md_error *)0)->msg)];
} outcome;

/* The child's work: the backend under MECHDIFF_CUDA_SYNC=sync, then the
 * faulting add, a scale and a copy back, each op's status and message. */
static void child(const char *sync, outcome *o)
{
    setenv("MECHDIFF_CUDA_SYNC", sync, 1);
    int n = 0, dev = 0;
    char why[512] = "";
    md_device_count(&n, why, sizeof why);
    if (n <= 0) {
        snprintf(o->kind, sizeof o->kind, "skip");
        snprintf(o->msg[0], sizeof o->msg[0], "%s", why);
        return;
    }
    md_error err;
    md_error_clear(&err);
    if (md_device_pick(&dev, &err) != MD_OK) dev = 0;
    md_backend_options on_dev = {.device = dev};
    md_backend *be = NULL;
    if (md_backend_create(&be, MD_BACKEND_CUDA, &on_dev, &err) != MD_OK) {
        snprintf(o->kind, sizeof o->kind, "create");
        snprintf(o->msg[0], sizeof o->msg[0], "%s", err.msg);
        return;
    }
    snprintf(o->kind, sizeof o->kind, "ops");
    size_t count = (size_t)1 << 20;
    float *x = be->ops->alloc(be, count * sizeof(float)), host[4];
    float *nowhere = (float *)(uintptr_t)0x1000; /* no device allocation is there */
    for (int i = 0; i < N_OPS; i++) {
        md_error_clear(&err);
        if (i == 0) o->rc[i] = be->ops->add(be, nowhere, x, count, &err);
        else if (i == 1) o->rc[i] = be->ops->scale(be, x, count, 2.0f, &err);
        else o->rc[i] = be->ops->to_host(be, host, x, sizeof host, &err);
        snprintf(o->msg[i], sizeof o->msg[i], "%s", err.msg);
    }
    /* the context is broken: the backend is not destroyed, the process ends */
}

/* Runs child(sync) in a fork; MD_ERR when it could not run or report. */
static int in_child(const char *sync, outcome *o)
{
    int fd[2];
    memset(o, 0, sizeof *o);
    if (pipe(fd) != 0) return MD_ERR;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return MD_ERR;
    }
    if (pid == 0) {
        close(fd[0]);
        child(sync, o);
        ssize_t w = write(fd[1], o, sizeof *o);
        _exit(w == (ssize_t)sizeof *o ? 0 : 1);
    }
    close(fd[1]);
    size_t got = 0;
    while (got < sizeof *o) {
        ssize_t r = read(fd[0], (char *)o + got, sizeof *o - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return got == sizeof *o && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? MD_OK : MD_ERR;
}

static void print_outcome(const char *sync, const outcome *o)
{
    printf("MECHDIFF_CUDA_SYNC=%s: %s\n", sync, o->kind);
    for (int i = 0; i < N_OPS && strcmp(o->kind, "ops") == 0; i++)
        printf("  %-8s %s %s\n", OP_NAMES[i], o->rc[i] == MD_OK ? "ok" : "FAILED:", o->msg[i]);
    if (strcmp(o->kind, "ops") != 0) printf("  %s\n", o->msg[0]);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv; /* --gpu or not: there is nothing to check without a GPU */
    outcome off, on, bad;
    CHECK_MSG(in_child("0", &off) == MD_OK, "the child with MECHDIFF_CUDA_SYNC=0 did not report");
    if (strcmp(off.kind, "skip") == 0) {
        printf("cuda: skipped (no device): %s\n", off.msg[0]);
        return 77;
    }
    CHECK_MSG(in_child("1", &on) == MD_OK, "the child with MECHDIFF_CUDA_SYNC=1 did not report");
    CHECK_MSG(in_child("yes", &bad) == MD_OK, "the child with MECHDIFF_CUDA_SYNC=yes did not report");
    print_outcome("0", &off);
    print_outcome("1", &on);
    print_outcome("yes", &bad);

    /* off: the first op that reports the fault (add returns before its kernel runs) gives the hint */
    int first = 0;
    while (first < N_OPS && off.rc[first] == MD_OK) first++;
    CHECK_MSG(strcmp(off.kind, "ops") == 0 && first < N_OPS, "sync off: no op reported the fault");
    if (first < N_OPS) {
        CHECK_MSG(strstr(off.msg[first], "rerun with MECHDIFF_CUDA_SYNC=1") != NULL, "sync off: %s", off.msg[first]);
        printf("sync off: the fault of add was reported by %s\n", OP_NAMES[first]);
    }

    /* on: add reports its own fault */
    CHECK_MSG(strcmp(on.kind, "ops") == 0 && on.rc[0] != MD_OK, "sync on: add returned MD_OK");
    CHECK_MSG(strstr(on.msg[0], "): add: ") && strstr(on.msg[0], "MECHDIFF_CUDA_SYNC=1: the stream was synchronised"),
              "sync on: add's message: %s", on.msg[0]);

    /* a bad value: no backend, a message naming the variable */
    CHECK_MSG(strcmp(bad.kind, "create") == 0 && strstr(bad.msg[0], "MECHDIFF_CUDA_SYNC='yes'") &&
                  strstr(bad.msg[0], "use 1"),
              "MECHDIFF_CUDA_SYNC=yes: %s: %s", bad.kind, bad.msg[0]);
    TEST_MAIN_END();
}
