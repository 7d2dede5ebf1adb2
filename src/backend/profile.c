/* profile.c — the profiling backend (see profile.h): every op of the
 * wrapped backend between two time marks, totals per op class, a summary on
 * stderr at destroy. */
#include "backend/profile.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mechdiff/clock.h"

/* The wrapper's state; owns `inner`. */
typedef struct prof_impl {
    md_backend *inner;
    md_prof_timer timer;  /* all NULL: the host clock */
    md_backend_ops ops;   /* this backend's table (optional ops only where inner has them) */
    md_prof_stats st;
} prof_impl;

typedef struct prof_span {
    double t0;
    int handle; /* device span, -1 when none */
} prof_span;

static const char *const CLASS_NAMES[MD_PROF_N_CLASSES] = {"gemm.f32",  "gemm.f16", "gemm.bf16", "attention",
                                                           "other",     "copy",     "prepare"};

const char *md_prof_class_name(md_prof_class c)
{
    return c >= 0 && c < MD_PROF_N_CLASSES ? CLASS_NAMES[c] : "?";
}

int md_profile_wanted(void)
{
    const char *v = getenv("MECHDIFF_PROFILE");
    return v && *v && strcmp(v, "0") != 0;
}

static prof_impl *impl_of(md_backend *be) { return (prof_impl *)be->impl; }

static prof_span span_begin(prof_impl *p, md_prof_class cls)
{
    prof_span s = {md_clock_seconds(), -1};
    if (cls != MD_PROF_PREPARE && p->st.first_op == 0.0) p->st.first_op = s.t0;
    if (p->timer.begin && cls != MD_PROF_PREPARE) s.handle = p->timer.begin(p->inner, &p->st);
    return s;
}

/* Closes span s of class cls (flops: GEMMs only) and passes rc through. */
static int span_end(prof_impl *p, prof_span s, md_prof_class cls, uint64_t flops, int rc)
{
    if (s.handle >= 0) p->timer.end(p->inner, s.handle, cls);
    double t = md_clock_seconds();
    if (s.handle < 0) p->st.seconds[cls] += t - s.t0; /* host clock: no device span */
    if (cls != MD_PROF_PREPARE) p->st.last_op = t;
    p->st.calls[cls]++;
    p->st.flops[cls] += flops;
    return rc;
}

static md_prof_class gemm_class(md_dtype t)
{
    return t == MD_DTYPE_BF16 ? MD_PROF_GEMM_BF16 : t == MD_DTYPE_F16 ? MD_PROF_GEMM_F16 : MD_PROF_GEMM_F32;
}

/* ------------------------------------------------------------ the ops */

static void *pf_alloc(md_backend *be, size_t bytes)
{
    prof_impl *p = impl_of(be);
    return p->inner->ops->alloc(p->inner, bytes);
}

static void pf_free(md_backend *be, void *ptr)
{
    prof_impl *p = impl_of(be);
    p->inner->ops->free(p->inner, ptr);
}

static int pf_to_device(md_backend *be, void *dst, const void *src, size_t bytes, md_error *err)
{
    prof_impl *p = impl_of(be);
    prof_span s = span_begin(p, MD_PROF_COPY);
    return span_end(p, s, MD_PROF_COPY, 0, p->inner->ops->to_device(p->inner, dst, src, bytes, err));
}

static int pf_to_host(md_backend *be, void *dst, const void *src, size_t bytes, md_error *err)
{
    prof_impl *p = impl_of(be);
    prof_span s = span_begin(p, MD_PROF_COPY);
    return span_end(p, s, MD_PROF_COPY, 0, p->inner->ops->to_host(p->inner, dst, src, bytes, err));
}

static int pf_put_cells(md_backend *be, float *x, int n, int w, const size_t *off, const float *src, int add,
                        float coef, md_error *err)
{
    prof_impl *p = impl_of(be);
    prof_span s = span_begin(p, MD_PROF_COPY);
    return span_end(p, s, MD_PROF_COPY, 0, p->inner->ops->put_cells(p->inner, x, n, w, off, src, add, coef, err));
}

static int pf_get_cells(md_backend *be, float *dst, const float *x, int n, int w, const size_t *off, md_error *err)
{
    prof_impl *p = impl_of(be);
    prof_span s = span_begin(p, MD_PROF_COPY);
    return span_end(p, s, MD_PROF_COPY, 0, p->inner->ops->get_cells(p->inner, dst, x, n, w, off, err));
}

static int pf_copy(md_backend *be, void *dst, const void *src, size_t bytes, md_error *err)
{
    prof_impl *p = impl_of(be);
    prof_span s = span_begin(p, MD_PROF_COPY);
    return span_end(p, s, MD_PROF_COPY, 0, p->inner->ops->copy(p->inner, dst, src, bytes, err));
}

static int pf_prepare(md_backend *be, md_weight *w, md_error *err)
{
    prof_impl *p = impl_of(be);
    prof_span s = span_begin(p, MD_PROF_PREPARE);
    return span_end(p, s, MD_PROF_PREPARE, 0, p->inner->ops->prepare(p->inner, w, err));
}

static void pf_release(md_backend *be, md_weight *w)
{
    prof_impl *p = impl_of(be);
    p->inner->ops->release(p->inner, w);
}

static int pf_matmul(md_backend *be, float *y, const float *x, const md_weight *w, int n, md_error *err)
{
    prof_impl *p = impl_of(be);
    md_prof_class cls = gemm_class(w->dtype);
    uint64_t flops = n > 0 ? 2u * (uint64_t)n * (uint64_t)w->rows * (uint64_t)w->cols : 0;
    prof_span s = span_begin(p, cls);
    return span_end(p, s, cls, flops, p->inner->ops->matmul(p->inner, y, x, w, n, err));
}

static int pf_add_bias(md_backend *be, float *y, const md_weight *b, int n, md_error *err)
{
    prof_impl *p = impl_of(be);
    prof_span s = span_begin(p, MD_PROF_OTHER);
    return span_end(p, s, MD_PROF_OTHER, 0, p->inner->ops->add_bias(p->inner, y, b, n, err));
}

static int pf_rmsnorm(md_backend *be, float *y, const float *x, const md_weight *g, int n, int d, float eps,
                      md_error *err)
{
    prof_impl *p = impl_of(be);
    prof_span s = span_begin(p, MD_PROF_OTHER);
    return span_end(p, s, MD_PROF_OTHER, 0, p->inner->ops->rmsnorm(p->inner, y, x, g, n, d, eps, err));
}

static int pf_rope(md_backend *be, float *x, int n, int n_heads, int head_dim, const int *pos, const float *inv_freq,
                   md_error *err)
{
    prof_impl *p = impl_of(be);
    prof_span s = span_begin(p, MD_PROF_OTHER);
    return span_end(p, s, MD_PROF_OTHER, 0,
                    p->inner->ops->rope(p->inner, x, n, n_heads, head_dim, pos, inv_freq, err));
}

static int pf_attention(md_backend *be, float *out, const float *q, int nq, int q_pos0, const float *k0,
                        const float *v0, int n0, const float *k1, const float *v1, int n1, int pad,
                        const md_attn_shape *shape, float *probs, md_error *err)
{
    prof_impl *p = impl_of(be);
    prof_span s = span_begin(p, MD_PROF_ATTENTION);
    return span_end(p, s, MD_PROF_ATTENTION, 0,
                    p->inner->ops->attention(p->inner, out, q, nq, q_pos0, k0, v0, n0, k1, v1, n1, pad, shape, probs,
                                             err));
}

static int pf_attn_mix(md_backend *be, float *out, const float *probs, int nq, int q_pos0, const float *v0, int n0,
                       const float *v1, int n1, int pad, const md_attn_shape *shape, md_error *err)
{
    prof_impl *p = impl_of(be);
    prof_span s = span_begin(p, MD_PROF_ATTENTION);
    return span_end(p, s, MD_PROF_ATTENTION, 0,
                    p->inner->ops->attn_mix(p->inner, out, probs, nq, q_pos0, v0, n0, v1, n1, pad, shape, err));
}

static int pf_attention_seqs(md_backend *be, float *out, const float *q, int n_seq, int nq, int q_pos0,
                             const float *k0, const float *v0, int n0, size_t kv0_stride, int n_par, const float *k1,
                             const float *v1, int n1, size_t kv1_stride, const int *pads, const md_attn_shape *shape,
                             md_error *err)
{
    prof_impl *p = impl_of(be);
    prof_span s = span_begin(p, MD_PROF_ATTENTION);
    return span_end(p, s, MD_PROF_ATTENTION, 0,
                    p->inner->ops->attention_seqs(p->inner, out, q, n_seq, nq, q_pos0, k0, v0, n0, kv0_stride, n_par,
                                                  k1, v1, n1, kv1_stride, pads, shape, err));
}

static int pf_gated_act(md_backend *be, float *h, const float *gate, const float *up, size_t n, md_act act,
                        md_error *err)
{
    prof_impl *p = impl_of(be);
    prof_span s = span_begin(p, MD_PROF_OTHER);
    return span_end(p, s, MD_PROF_OTHER, 0, p->inner->ops->gated_act(p->inner, h, gate, up, n, act, err));
}

static int pf_add(md_backend *be, float *y, const float *x, size_t n, md_error *err)
{
    prof_impl *p = impl_of(be);
    prof_span s = span_begin(p, MD_PROF_OTHER);
    return span_end(p, s, MD_PROF_OTHER, 0, p->inner->ops->add(p->inner, y, x, n, err));
}

static int pf_scale(md_backend *be, float *x, size_t n, float f, md_error *err)
{
    prof_impl *p = impl_of(be);
    prof_span s = span_begin(p, MD_PROF_OTHER);
    return span_end(p, s, MD_PROF_OTHER, 0, p->inner->ops->scale(p->inner, x, n, f, err));
}

static int pf_embed(md_backend *be, float *x, const int *tokens, int n, const md_weight *e, md_error *err)
{
    prof_impl *p = impl_of(be);
    prof_span s = span_begin(p, MD_PROF_OTHER);
    return span_end(p, s, MD_PROF_OTHER, 0, p->inner->ops->embed(p->inner, x, tokens, n, e, err));
}

static int pf_add_vec(md_backend *be, float *x, int n, int d, const float *v, float coef, md_error *err)
{
    prof_impl *p = impl_of(be);
    prof_span s = span_begin(p, MD_PROF_OTHER);
    return span_end(p, s, MD_PROF_OTHER, 0, p->inner->ops->add_vec(p->inner, x, n, d, v, coef, err));
}

static int pf_ablate(md_backend *be, float *x, int n, int d, const float *v, md_error *err)
{
    prof_impl *p = impl_of(be);
    prof_span s = span_begin(p, MD_PROF_OTHER);
    return span_end(p, s, MD_PROF_OTHER, 0, p->inner->ops->ablate(p->inner, x, n, d, v, err));
}

/* ------------------------------------------------------ summary, life */

/* The rank as the MPI launcher exports it ("-" outside one). */
static const char *rank_label(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return v;
    }
    return "-";
}

/* The summary's text into f (one stream: written by the caller at once). */
static void summary(FILE *f, const md_prof_stats *st, const char *what)
{
    double window = st->first_op > 0.0 && st->last_op > st->first_op ? st->last_op - st->first_op : 0.0;
    double busy = 0.0, life = md_clock_seconds() - st->created;
    for (int c = 0; c < MD_PROF_N_CLASSES; c++)
        if (c != MD_PROF_PREPARE) busy += st->seconds[c];
    const char *rank = rank_label();
    fprintf(f, "mechdiff profile [rank %s, pid %ld]: %s\n", rank, (long)getpid(), what);
    fprintf(f, "mechdiff profile:   %-10s %10s %11s %7s %14s %10s\n", "class", "calls", "seconds", "share", "GFLOP",
            "GFLOP/s");
    for (int c = 0; c < MD_PROF_N_CLASSES; c++) {
        if (!st->calls[c]) continue;
        double s = st->seconds[c], g = (double)st->flops[c] / 1e9;
        fprintf(f, "mechdiff profile:   %-10s %10llu %11.4f %6.1f%% %14.3f %10.1f\n", CLASS_NAMES[c],
                (unsigned long long)st->calls[c], s, window > 0.0 && c != MD_PROF_PREPARE ? 100.0 * s / window : 0.0,
                g, s > 0.0 && g > 0.0 ? g / s : 0.0);
    }
    fprintf(f, "mechdiff profile:   ops busy %.4f s of a %.4f s window (first op to last op; share = of the window);"
               " backend lifetime %.4f s\n", busy, window, life);
    fprintf(f, "mechdiff profile json: {\"rank\": \"%s\", \"pid\": %ld, \"backend\": \"", rank, (long)getpid());
    for (const char *c = what; *c; c++) { /* what is ours: only quotes and backslashes to escape */
        if (*c == '"' || *c == '\\') fputc('\\', f);
        fputc(*c, f);
    }
    fprintf(f, "\", \"window_s\": %.6f, \"busy_s\": %.6f, \"lifetime_s\": %.6f, \"classes\": {", window, busy, life);
    for (int c = 0, first = 1; c < MD_PROF_N_CLASSES; c++) {
        if (!st->calls[c]) continue;
        fprintf(f, "%s\"%s\": {\"calls\": %llu, \"seconds\": %.6f, \"flops\": %llu}", first ? "" : ", ",
                CLASS_NAMES[c], (unsigned long long)st->calls[c], st->seconds[c], (unsigned long long)st->flops[c]);
        first = 0;
    }
    fprintf(f, "}}\n");
}

void md_profile_print(FILE *f, const md_prof_stats *st, const char *what)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (m) { /* one write: the summaries of ranks sharing a stderr do not interleave line by line */
        summary(m, st, what);
        if (fclose(m) == 0) fwrite(text, 1, len, f);
    } else {
        summary(f, st, what);
    }
    free(text);
    fflush(f);
}

static void pf_destroy(md_backend *be)
{
    prof_impl *p = impl_of(be);
    char what[512];
    if (p->timer.flush) p->timer.flush(p->inner, &p->st);
    if (p->timer.describe) p->timer.describe(p->inner, what, sizeof what);
    else snprintf(what, sizeof what, "%s backend, host clock", p->inner->ops->name);
    md_profile_print(stderr, &p->st, what);
    md_backend_destroy(p->inner);
    free(p);
    free(be);
}

const md_prof_stats *md_profile_stats(md_backend *be)
{
    if (!be || be->ops->destroy != pf_destroy) return NULL;
    prof_impl *p = impl_of(be);
    if (p->timer.flush) p->timer.flush(p->inner, &p->st);
    return &p->st;
}

/* Every op of md_backend_ops is wrapped below: a new op that is not would
 * be a NULL call (or an unprofiled one) under MECHDIFF_PROFILE. This fails
 * the build until the table below has it (name + 23 ops). */
_Static_assert(sizeof(md_backend_ops) == sizeof(const char *) + 23 * sizeof(int (*)(void)),
               "md_backend_ops changed: wrap the new op in profile.c and update this count");

int md_profile_wrap(md_backend **be, const md_prof_timer *timer, md_error *err)
{
    md_backend *w = calloc(1, sizeof *w);
    prof_impl *p = calloc(1, sizeof *p);
    if (!w || !p) {
        free(w);
        free(p);
        return md_error_set(err, "MECHDIFF_PROFILE: out of memory for the profiling backend");
    }
    const md_backend_ops *in = (*be)->ops;
    p->inner = *be;
    if (timer) p->timer = *timer;
    p->st.created = md_clock_seconds();
    p->ops = (md_backend_ops){
        .name = in->name, .alloc = pf_alloc, .free = pf_free, .to_device = pf_to_device, .to_host = pf_to_host,
        .copy = pf_copy, .prepare = pf_prepare, .release = pf_release, .matmul = pf_matmul,
        .add_bias = pf_add_bias, .rmsnorm = pf_rmsnorm, .rope = pf_rope, .attention = pf_attention,
        .attn_mix = pf_attn_mix, .gated_act = pf_gated_act, .add = pf_add, .scale = pf_scale, .embed = pf_embed,
        .add_vec = pf_add_vec, .ablate = pf_ablate, .put_cells = pf_put_cells,
        .get_cells = pf_get_cells, .destroy = pf_destroy,
        .attention_seqs = in->attention_seqs ? pf_attention_seqs : NULL};
    w->ops = &p->ops;
    w->impl = p;
    *be = w;
    return MD_OK;
}
