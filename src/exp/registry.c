/* registry.c — the experiment kinds the runner knows (see experiment.h), and
 * the binding of an experiment's options (the one md_params_bind of a kind's
 * keys). To add a kind: declare its md_kind here and add one line to KINDS. */
#include <stdlib.h>
#include <string.h>

#include "mechdiff/experiment.h"

extern const md_kind md_kind_selftest; /* src/exp/selftest.c */
extern const md_kind md_kind_knowledge; /* src/exp/knowledge.c */
extern const md_kind md_kind_confidence; /* src/exp/confidence.c */
extern const md_kind md_kind_refusal; /* src/exp/refusal.c */
extern const md_kind md_kind_refusal_sweep; /* src/exp/refusal.c: alias of refusal with sweep: true */
extern const md_kind md_kind_truth; /* src/exp/truth.c */

static const md_kind *const KINDS[] = {
    &md_kind_selftest,
    &md_kind_knowledge,
    &md_kind_confidence,
    &md_kind_refusal,
    &md_kind_refusal_sweep,
    &md_kind_truth,
    NULL,
};

const md_kind *const *md_kinds(void)
{
    return KINDS;
}

const md_kind *md_kind_find(const char *name)
{
    for (const md_kind *const *k = KINDS; *k; k++)
        if (strcmp((*k)->name, name) == 0) return *k;
    return NULL;
}

int md_kind_bind_opts(const md_job *job, void ***opts, md_error *err)
{
    *opts = calloc((size_t)(job->n_exps > 0 ? job->n_exps : 1), sizeof(void *));
    if (!*opts) return md_error_set(err, "out of memory");
    for (int i = 0; i < job->n_exps; i++) {
        const md_exp_spec *e = &job->exps[i];
        if (!e->impl->opts) continue;
        if (!((*opts)[i] = calloc(1, e->impl->opts_size))) {
            md_kind_free_opts(job, *opts);
            *opts = NULL;
            return md_error_set(err, "out of memory");
        }
        md_params_bind(&e->params, e->impl->opts, (*opts)[i]);
    }
    return MD_OK;
}

void md_kind_free_opts(const md_job *job, void **opts)
{
    if (!opts) return;
    for (int i = 0; i < job->n_exps; i++) free(opts[i]);
    free(opts);
}

md_kind_ctx md_kind_ctx_of(const md_job *job, void *const *opts, int i)
{
    return (md_kind_ctx){.job = job, .exp = &job->exps[i], .exp_index = i, .opts = opts ? opts[i] : NULL};
}

/* What is known without the kind's estimate: stage 0 not, the later stages
 * not when the kind has several, else that there are none. */
static void default_estimate(const md_kind *k, md_stage_estimate out[MD_KIND_MAX_STAGES])
{
    for (int s = 0; s < MD_KIND_MAX_STAGES; s++)
        out[s] = (md_stage_estimate){.units = s == 0 || k->finish_stage ? -1 : 0};
}

int md_kind_estimate_stages(const md_kind_ctx *ctx, md_stage_estimate out[MD_KIND_MAX_STAGES], md_error *err)
{
    const md_kind *k = ctx->exp->impl;
    if (k->estimate) {
        memset(out, 0, MD_KIND_MAX_STAGES * sizeof *out);
        if (k->estimate(ctx, out, err) == MD_OK) return MD_OK;
    }
    default_estimate(k, out);
    return k->estimate ? MD_ERR : MD_OK;
}
