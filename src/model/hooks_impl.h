/* hooks_impl.h — a forward's hooks: checked once, applied at each hook
 * point of each layer (hooks.c; used by forward.c only, not installed). */
#ifndef MECHDIFF_HOOKS_IMPL_H
#define MECHDIFF_HOOKS_IMPL_H

#include "mechdiff/forward.h"

/* MD_OK, or MD_ERR naming the first bad hook of f (point, op, buffers,
 * sequence, layer, head, batched cells). */
int md_hooks_check(const md_model *m, const md_forward *f, md_error *err);
/* 1 when a hook at `point` applies to `layer`; with writes_only, only
 * replace/add/ablate hooks count. */
int md_hooks_at(const md_forward *f, md_hook_point point, int layer, int writes_only);
/* Applies every hook registered at (point, layer) to buf (backend memory),
 * whose rows are [seq][pos - t0] of the point's row width; only the first
 * na sequences are live. */
int md_hooks_run(md_model *m, const md_forward *f, md_hook_point point, int layer, float *buf, int na,
                 md_error *err);

#endif
