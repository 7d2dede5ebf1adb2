/* backend.c — picks a backend by kind (see include/mechdiff/backend.h). */
#include "mechdiff/backend.h"

#include <string.h>

#include "backend/profile.h"

int md_backend_cpu_create(md_backend **out, const md_backend_options *opt, md_error *err);
#ifdef MECHDIFF_HAVE_CUDA
#include "backend/cuda/cuda_api.h"
#endif

static int create_kind(md_backend **out, md_backend_kind kind, const md_backend_options *opt,
                       const md_prof_timer **timer, md_error *err)
{
    *timer = NULL;
    switch (kind) {
    case MD_BACKEND_CPU:
        return md_backend_cpu_create(out, opt, err);
    case MD_BACKEND_CUDA:
#ifdef MECHDIFF_HAVE_CUDA
        *timer = md_backend_cuda_timer();
        return md_backend_cuda_create(out, opt->device, opt->cuda_weights, opt->cuda_gemm, err);
#else
        return md_error_set(err, "backend 'cuda' requested but this mechdiff was built without CUDA "
                                 "(rebuild with -DMECHDIFF_CUDA=ON)");
#endif
    }
    return md_error_set(err, "unknown backend kind %d", (int)kind);
}

/* With MECHDIFF_PROFILE set, the backend comes wrapped in the profiling
 * backend (src/backend/profile.h). */
int md_backend_create(md_backend **out, md_backend_kind kind, const md_backend_options *opt, md_error *err)
{
    md_backend_options none = {0};
    const md_prof_timer *timer = NULL;
    if (!opt) opt = &none;
    *out = NULL;
    if (create_kind(out, kind, opt, &timer, err) != MD_OK) return MD_ERR;
    if (md_profile_wanted() && md_profile_wrap(out, timer, err) != MD_OK) {
        md_backend_destroy(*out);
        *out = NULL;
        return MD_ERR;
    }
    return MD_OK;
}

void md_backend_destroy(md_backend *be)
{
    if (be) be->ops->destroy(be);
}

int md_cuda_weights_parse(const char *s, md_cuda_weights *out)
{
    if (!s) return -1;
    if (strcmp(s, "auto") == 0) *out = MD_CUDA_WEIGHTS_AUTO;
    else if (strcmp(s, "bf16") == 0) *out = MD_CUDA_WEIGHTS_BF16;
    else if (strcmp(s, "f32") == 0 || strcmp(s, "fp32") == 0) *out = MD_CUDA_WEIGHTS_F32;
    else return -1;
    return 0;
}

int md_cuda_gemm_parse(const char *s, md_cuda_gemm *out)
{
    if (!s) return -1;
    if (strcmp(s, "auto") == 0) *out = MD_CUDA_GEMM_AUTO;
    else if (strcmp(s, "x3") == 0) *out = MD_CUDA_GEMM_X3;
    else if (strcmp(s, "bf16") == 0) *out = MD_CUDA_GEMM_BF16;
    else return -1;
    return 0;
}
