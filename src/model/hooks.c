/* hooks.c — the hook points of the forward pass: names, cell widths, and
 * applying a forward's hooks to one activation buffer.
 *
 * One hook is one backend op per layer, not one per sequence: a replace or
 * add of scattered cells (one position of every sequence, one head's
 * slices, a batched hook's cells) is one put_cells, a read of them one
 * get_cells; hooks on whole rows of every position are one op on the block
 * of rows (to_host, add_vec, ablate). Only an ablation of slices or of one
 * position runs cell by cell. */
#include <stdlib.h>
#include <string.h>

#include "model/hooks_impl.h"

static const char *HOOK_NAMES[MD_HOOK_COUNT] = {"resid_pre", "attn_out", "resid_mid", "mlp_out",
                                                "resid_post", "mlp_post", "z", "pattern"};

static const char *HOOK_OPS[] = {"read", "replace", "add", "ablate"};

const char *md_hook_point_name(md_hook_point p)
{
    return (p >= 0 && p < MD_HOOK_COUNT) ? HOOK_NAMES[p] : "?";
}

int md_hook_point_parse(const char *name)
{
    for (int i = 0; i < MD_HOOK_COUNT; i++)
        if (strcmp(name, HOOK_NAMES[i]) == 0) return i;
    return -1;
}

static int is_per_head(md_hook_point p)
{
    return p == MD_HOOK_Z || p == MD_HOOK_PATTERN;
}

/* Floats per head of a per-head point's row. */
static size_t head_chunk(const md_model *m, const md_forward *f, md_hook_point p)
{
    return p == MD_HOOK_Z ? (size_t)m->cfg.head_dim : (size_t)f->t1;
}

/* Floats of a whole row (one position) of the activation at point p. */
static size_t row_width(const md_model *m, const md_forward *f, md_hook_point p)
{
    return is_per_head(p) ? (size_t)m->cfg.n_heads * head_chunk(m, f, p) : (size_t)md_model_hook_width(m, p);
}

size_t md_hook_cell_width(const md_model *m, const md_forward *f, const md_hook *h)
{
    if (is_per_head(h->point) && (h->head != MD_ALL || h->seq_head)) return head_chunk(m, f, h->point);
    return row_width(m, f, h->point);
}

size_t md_hook_read_count(const md_model *m, const md_forward *f, const md_hook *h)
{
    size_t L = h->layer == MD_ALL ? (size_t)m->cfg.n_layers : 1;
    size_t S = h->seq == MD_ALL ? (size_t)f->n_seq : 1;
    size_t P = h->pos == MD_ALL ? (size_t)(f->t1 - f->t0) : 1;
    return L * S * P * md_hook_cell_width(m, f, h);
}

int md_hooks_at(const md_forward *f, md_hook_point point, int layer, int writes_only)
{
    for (int i = 0; i < f->n_hooks; i++) {
        const md_hook *h = &f->hooks[i];
        if (h->point == point && (h->layer == MD_ALL || h->layer == layer) && (!writes_only || h->op != MD_HOOK_READ))
            return 1;
    }
    return 0;
}

/* A batched hook's per-sequence fields. */
static int check_batched(const md_model *m, const md_forward *f, const md_hook *h, int i, md_error *err)
{
    const char *name = md_hook_point_name(h->point);
    if (!h->seq_pos) {
        if (h->seq_head)
            return md_error_set(err, "forward: hook %d (%s): seq_head needs seq_pos (a batched hook)", i, name);
        return MD_OK;
    }
    if (h->op != MD_HOOK_REPLACE && h->op != MD_HOOK_ADD)
        return md_error_set(err, "forward: hook %d (%s): per-sequence positions are for replace and add hooks", i,
                            name);
    if (h->seq != MD_ALL || h->pos != MD_ALL)
        return md_error_set(err, "forward: hook %d (%s): a batched hook (seq_pos) needs seq = pos = MD_ALL", i, name);
    if (h->seq_head && !is_per_head(h->point))
        return md_error_set(err, "forward: hook %d (%s): seq_head is for the per-head points z and pattern", i, name);
    for (int s = 0; h->seq_head && s < f->n_seq; s++)
        if (h->seq_head[s] < 0 || h->seq_head[s] >= m->cfg.n_heads)
            return md_error_set(err, "forward: hook %d (%s): sequence %d's head %d outside [0, %d) of %s", i, name, s,
                                h->seq_head[s], m->cfg.n_heads, m->dir);
    return MD_OK;
}

int md_hooks_check(const md_model *m, const md_forward *f, md_error *err)
{
    const md_config *c = &m->cfg;
    for (int i = 0; i < f->n_hooks; i++) {
        const md_hook *h = &f->hooks[i];
        if (h->point < 0 || h->point >= MD_HOOK_COUNT) return md_error_set(err, "forward: hook %d: bad point", i);
        if (h->op == MD_HOOK_READ ? !h->out : !h->vec)
            return md_error_set(err, "forward: hook %d (%s): missing %s buffer", i, md_hook_point_name(h->point),
                                h->op == MD_HOOK_READ ? "out" : "vec");
        if (h->seq != MD_ALL && (h->seq < 0 || h->seq >= f->n_seq))
            return md_error_set(err, "forward: hook %d: sequence %d outside the batch of %d", i, h->seq, f->n_seq);
        if (h->layer != MD_ALL && (h->layer < 0 || h->layer >= c->n_layers))
            return md_error_set(err, "forward: hook %d: layer %d outside [0, %d)", i, h->layer, c->n_layers);
        if (is_per_head(h->point) && h->head != MD_ALL && (h->head < 0 || h->head >= c->n_heads))
            return md_error_set(err, "forward: hook %d (%s): head %d outside [0, %d) of %s", i,
                                md_hook_point_name(h->point), h->head, c->n_heads, m->dir);
        if (h->op < MD_HOOK_READ || h->op > MD_HOOK_ABLATE)
            return md_error_set(err, "forward: hook %d: bad op %d", i, (int)h->op);
        if (check_batched(m, f, h, i, err) != MD_OK) return MD_ERR;
    }
    return MD_OK;
}

/* One hook on p_n rows of `stride` floats starting at `rows`; the cell of a
 * row is [off, off + cw). out_rows: where a READ of these rows goes. Whole
 * rows are one op; slices one op per row (ablate only: hook_get / hook_put
 * take the other ops' slices). */
static int hook_rows(md_backend *be, const md_hook *h, float *rows, int p_n, size_t stride, size_t off, size_t cw,
                     const float *v, float *out_rows, md_error *err)
{
    const md_backend_ops *ops = be->ops;
    int rc = MD_OK;
    if (cw == stride) {
        switch (h->op) {
        case MD_HOOK_READ: return ops->to_host(be, out_rows, rows, (size_t)p_n * cw * sizeof(float), err);
        case MD_HOOK_ADD: return ops->add_vec(be, rows, p_n, (int)cw, v, h->coef, err);
        case MD_HOOK_ABLATE: return ops->ablate(be, rows, p_n, (int)cw, v, err);
        default: return md_error_set(err, "internal: a replace reached hook_rows");
        }
    }
    if (h->op != MD_HOOK_ABLATE)
        return md_error_set(err, "internal: a %s of slices reached hook_rows", HOOK_OPS[h->op]);
    for (int p = 0; p < p_n && rc == MD_OK; p++)
        rc = ops->ablate(be, rows + (size_t)p * stride + off, 1, (int)cw, v, err);
    return rc;
}

enum { FEW = 16 }; /* a single hook's cells need no heap */

/* The cells of one hook application: offsets (floats into the buffer) and
 * the source row of each (NULL for a read); arrays inline up to FEW cells,
 * else malloc'd (cells_free). */
typedef struct cell_list {
    size_t *off;
    const float **src;
    int n;
    size_t off_few[FEW];
    const float *src_few[FEW];
} cell_list;

static void cells_free(cell_list *c)
{
    if (c->off != c->off_few) free(c->off);
    if (c->src != c->src_few) free((void *)c->src);
}

/* The cells of h among the first na sequences, in (sequence, position)
 * order: for a read, cell k goes to row k of its output block. */
static int cells_collect(cell_list *c, const md_forward *f, const md_hook *h, int na, size_t stride, size_t cw,
                         md_error *err)
{
    int np = f->t1 - f->t0;
    int s_lo = h->seq == MD_ALL ? 0 : h->seq, s_hi = h->seq == MD_ALL ? na : h->seq + 1;
    if (s_hi > na) s_hi = na;
    size_t n_p = h->seq_pos || h->pos != MD_ALL ? 1 : (size_t)np;
    size_t cap = (size_t)(s_hi > s_lo ? s_hi - s_lo : 0) * n_p;
    c->n = 0;
    c->off = cap <= FEW ? c->off_few : malloc(cap * sizeof *c->off);
    c->src = cap <= FEW ? c->src_few : malloc(cap * sizeof *c->src);
    if (!c->off || !c->src) {
        cells_free(c);
        return md_error_set(err, "out of memory for %zu hook cells", cap);
    }
    for (int s = s_lo; s < s_hi; s++) {
        int t = h->seq_pos ? h->seq_pos[s] : h->pos, all = !h->seq_pos && t == MD_ALL;
        if (h->seq_pos && (t < f->t0 || t >= f->t1)) continue; /* not this sequence, or not in this run */
        int p_lo = all ? 0 : t - f->t0, p_hi = all ? np : p_lo + 1;
        int head = h->seq_head ? h->seq_head[s] : h->head;
        size_t hoff = cw == stride ? 0 : (size_t)head * cw;
        const float *v = h->vec ? h->vec + (h->vec_per_seq ? (size_t)s * cw : 0) : NULL;
        for (int p = p_lo; p < p_hi; p++) {
            c->off[c->n] = ((size_t)s * np + p) * stride + hoff;
            c->src[c->n++] = v;
        }
    }
    return MD_OK;
}

/* A replace or add: all its cells in one put_cells, from the hook's vec
 * where the cells' rows follow each other there, else from a packed copy. */
static int hook_put(md_backend *be, const md_forward *f, const md_hook *h, float *buf, int na, size_t stride,
                    size_t cw, md_error *err)
{
    cell_list c;
    if (cells_collect(&c, f, h, na, stride, cw, err) != MD_OK) return MD_ERR;
    int n = c.n, rc = MD_OK, packed = 0;
    float *pack = NULL;
    for (int i = 1; i < n && !packed; i++) packed = c.src[i] != c.src[0] + (size_t)i * cw;
    if (packed && !(pack = malloc((size_t)n * cw * sizeof(float)))) rc = md_error_set(err, "out of memory");
    for (int i = 0; pack && i < n; i++) memcpy(pack + (size_t)i * cw, c.src[i], cw * sizeof(float));
    if (rc == MD_OK && n > 0)
        rc = be->ops->put_cells(be, buf, n, (int)cw, c.off, pack ? pack : c.src[0], h->op == MD_HOOK_ADD, h->coef,
                                err);
    free(pack);
    cells_free(&c);
    return rc;
}

/* A read of scattered cells (one position, or one head's slices): one
 * get_cells into this layer's block of out [L][S][P][cw]. */
static int hook_get(md_backend *be, const md_forward *f, const md_hook *h, int layer, const float *buf, int na,
                    size_t stride, size_t cw, md_error *err)
{
    cell_list c;
    if (cells_collect(&c, f, h, na, stride, cw, err) != MD_OK) return MD_ERR;
    size_t S = h->seq == MD_ALL ? (size_t)f->n_seq : 1, P = h->pos == MD_ALL ? (size_t)(f->t1 - f->t0) : 1;
    size_t li = h->layer == MD_ALL ? (size_t)layer : 0;
    int rc = c.n > 0 ? be->ops->get_cells(be, h->out + li * S * P * cw, buf, c.n, (int)cw, c.off, err) : MD_OK;
    cells_free(&c);
    return rc;
}

/* A hook on whole rows of every position (all live sequences at once when
 * it covers all of them with one vec), or an ablation of slices. */
static int hook_seqs(md_backend *be, const md_forward *f, const md_hook *h, int layer, float *buf, int na,
                     size_t stride, size_t cw, md_error *err)
{
    int np = f->t1 - f->t0, rc = MD_OK;
    size_t off = cw == stride ? 0 : (size_t)h->head * cw;
    int s_lo = h->seq == MD_ALL ? 0 : h->seq, s_hi = h->seq == MD_ALL ? na : h->seq + 1;
    if (s_hi > na) s_hi = na;
    int p_lo = h->pos == MD_ALL ? 0 : h->pos - f->t0;
    int p_n = h->pos == MD_ALL ? np : 1;
    size_t S = h->seq == MD_ALL ? (size_t)f->n_seq : 1;
    size_t li = h->layer == MD_ALL ? (size_t)layer : 0;
    int block = h->seq == MD_ALL && h->pos == MD_ALL && cw == stride && (h->op == MD_HOOK_READ || !h->vec_per_seq);
    if (block) { /* rows [seq][pos] of sequences 0..na-1 follow each other, in buf and in out */
        float *out_rows = h->op == MD_HOOK_READ ? h->out + li * S * (size_t)np * cw : NULL;
        return hook_rows(be, h, buf, na * np, stride, 0, cw, h->vec, out_rows, err);
    }
    for (int s = s_lo; s < s_hi && rc == MD_OK; s++) {
        size_t si = h->seq == MD_ALL ? (size_t)s : 0;
        float *out_rows = h->op == MD_HOOK_READ ? h->out + ((li * S + si) * (size_t)p_n) * cw : NULL;
        const float *v = h->vec ? h->vec + (h->vec_per_seq ? (size_t)s * cw : 0) : NULL;
        rc = hook_rows(be, h, buf + ((size_t)s * np + p_lo) * stride, p_n, stride, off, cw, v, out_rows, err);
    }
    return rc;
}

int md_hooks_run(md_model *m, const md_forward *f, md_hook_point point, int layer, float *buf, int na,
                 md_error *err)
{
    int rc = MD_OK;
    size_t stride = row_width(m, f, point);
    for (int i = 0; i < f->n_hooks && rc == MD_OK; i++) {
        const md_hook *h = &f->hooks[i];
        if (h->point != point || (h->layer != MD_ALL && h->layer != layer)) continue;
        if (h->pos != MD_ALL && (h->pos < f->t0 || h->pos >= f->t1)) continue;
        size_t cw = md_hook_cell_width(m, f, h);
        /* whole rows of every position of one sequence, or of all with one vec: one op on a block of rows */
        int rows = cw == stride && h->pos == MD_ALL && !h->seq_pos && h->op != MD_HOOK_REPLACE &&
                   (h->seq != MD_ALL || h->op == MD_HOOK_READ || !h->vec_per_seq);
        if (rows || h->op == MD_HOOK_ABLATE) rc = hook_seqs(m->be, f, h, layer, buf, na, stride, cw, err);
        else if (h->op == MD_HOOK_READ) rc = hook_get(m->be, f, h, layer, buf, na, stride, cw, err);
        else rc = hook_put(m->be, f, h, buf, na, stride, cw, err);
        if (rc != MD_OK) md_error_prefix(err, "hook %d (%s %s)", i, HOOK_NAMES[point], HOOK_OPS[h->op]);
    }
    return rc;
}
