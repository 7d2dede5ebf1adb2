/* test_device.c — binding a rank to a GPU (local-rank variables, error
 * messages with and without a GPU) and the spellings of the CUDA precision
 * modes shared by the job keys and the environment variables. Moved out of
 * test_backend_ops.c (file size); runs without a GPU. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/backend.h"
#include "mechdiff/device.h"
#include "testutil.h"

static void device_binding(void)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID",
                                 "MV2_COMM_WORLD_LOCAL_RANK", "PMI_LOCAL_RANK", "PALS_LOCAL_RANKID"};
    char *saved[6];
    for (int i = 0; i < 6; i++) {
        const char *s = getenv(vars[i]);
        saved[i] = s ? strdup(s) : NULL;
        unsetenv(vars[i]);
    }
    CHECK(md_device_local_rank() == -1);
    setenv("SLURM_LOCALID", "2", 1);
    CHECK(md_device_local_rank() == 2);
    setenv("OMPI_COMM_WORLD_LOCAL_RANK", "5", 1);
    CHECK(md_device_local_rank() == 5); /* Open MPI's variable wins */
    setenv("OMPI_COMM_WORLD_LOCAL_RANK", "x", 1);
    CHECK(md_device_local_rank() == 2); /* malformed: ignored */
    for (int i = 0; i < 6; i++) {
        if (saved[i]) setenv(vars[i], saved[i], 1);
        else unsetenv(vars[i]);
        free(saved[i]);
    }
    int n = -1;
    char why[512] = "";
    CHECK(md_device_count(&n, why, sizeof why) == MD_OK && n >= 0);
    md_error err;
    md_error_clear(&err);
    int dev = -7;
    if (n == 0) {
        CHECK(md_device_pick(&dev, &err) == MD_ERR && dev == -1);
        CHECK_MSG(strstr(err.msg, "no GPU visible") && strstr(err.msg, "backend: cpu"), "%s", err.msg);
        printf("  device pick without a GPU: %s\n", err.msg);
        md_backend *be = NULL;
        CHECK(md_backend_create(&be, MD_BACKEND_CUDA, NULL, &err) == MD_ERR && be == NULL);
        printf("  cuda backend without a GPU: %s\n", err.msg);
        CHECK(strstr(err.msg, "no GPU visible") || strstr(err.msg, "built without CUDA"));
    } else {
        CHECK(md_device_pick(&dev, &err) == MD_OK && dev >= 0 && dev < n);
        md_device_info info;
        CHECK_MSG(md_device_query(dev, &info, &err) == MD_OK, "%s", err.msg);
        printf("  device pick: %d of %d (%s, cc %d.%d, build archs %s)\n", dev, n, info.name, info.cc_major,
               info.cc_minor, md_device_build_archs());
        setenv("MECHDIFF_CUDA_DEVICE", "999", 1);
        CHECK(md_device_pick(&dev, &err) == MD_ERR && strstr(err.msg, "MECHDIFF_CUDA_DEVICE"));
        unsetenv("MECHDIFF_CUDA_DEVICE");
    }
}

/* The job keys and the environment variables share one spelling of the modes. */
static void cuda_mode_parse(void)
{
    md_cuda_weights w = MD_CUDA_WEIGHTS_BF16;
    md_cuda_gemm g = MD_CUDA_GEMM_X3;
    CHECK(md_cuda_weights_parse("auto", &w) == 0 && w == MD_CUDA_WEIGHTS_AUTO);
    CHECK(md_cuda_weights_parse("f32", &w) == 0 && w == MD_CUDA_WEIGHTS_F32);
    CHECK(md_cuda_weights_parse("fp32", &w) == 0 && w == MD_CUDA_WEIGHTS_F32);
    CHECK(md_cuda_weights_parse("bf16", &w) == 0 && w == MD_CUDA_WEIGHTS_BF16);
    CHECK(md_cuda_weights_parse("fp16", &w) == -1 && w == MD_CUDA_WEIGHTS_BF16);
    CHECK(md_cuda_weights_parse(NULL, &w) == -1);
    CHECK(md_cuda_gemm_parse("bf16", &g) == 0 && g == MD_CUDA_GEMM_BF16);
    CHECK(md_cuda_gemm_parse("x3", &g) == 0 && g == MD_CUDA_GEMM_X3);
    CHECK(md_cuda_gemm_parse("auto", &g) == 0 && g == MD_CUDA_GEMM_AUTO);
    CHECK(md_cuda_gemm_parse("X3", &g) == -1 && g == MD_CUDA_GEMM_AUTO);
}

int main(void)
{
    printf("device binding:\n");
    device_binding();
    cuda_mode_parse();
    TEST_MAIN_END();
}
