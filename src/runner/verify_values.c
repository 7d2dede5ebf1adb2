/* verify_values.c — `mechdiff verify`: the values of a results file.
 *   - every done unit is read back through its regions (md_reader_unit, as
 *     merge reads it): each region inside a dataset of the experiment, and
 *     each value finite unless the kind's table lets the dataset hold NaN
 *     (md_result_check_values, the check the runner made before writing);
 *   - the datasets a plan writes (at_plan), whole: finite likewise;
 *   - each kind's range invariants below, whole datasets (NaN skipped: the
 *     not-yet-done marker, or nan_ok's "no value");
 *   - the SHA-256 of each dataset's values where the file carries one
 *     (h5digest.h).
 * The ranges hold for every valid run; each names where the code makes it
 * true. Tolerances: cosines are dot / (|a| |b|) in double, within 1e-9 of
 * [-1, 1]; an entropy log(z) - sum(e x)/z in double may round a one-hot
 * distribution's 0 to about -1e-16, so >= -1e-9. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/h5out.h"
#include "mechdiff/result_check.h"
#include "runner/h5digest.h"
#include "runner/h5util.h"
#include "runner/verify_int.h"

typedef struct range_rule {
    const char *kind;      /* NULL = every kind */
    const char *path;      /* the outputs-table template */
    double lo, hi;
    int integral;          /* values are 0/1 (hi = 1) or integers */
    const char *why;       /* what makes it true */
} range_rule;

static const range_rule RULES[] = {
    {"selftest", "values", 0, 1, 0, "hash(seed, unit, row, col) in [0, 1) (selftest.c)"},
    {"selftest", "column_mean", 0, 1, 0, "a mean of values in [0, 1)"},
    {"truth", "labels/{dataset}", 0, 1, 1, "1 = true statement"},
    {"truth", "train_accuracy", 0, 1, 0, "an accuracy: correct / n (md_dir_probe_accuracy)"},
    {"truth", "accuracy", 0, 1, 0, "an accuracy: correct / n (md_dir_probe_accuracy)"},
    {"truth", "fewshot_accuracy", 0, 1, 0, "an accuracy: correct / n"},
    {"truth", "interv/{dataset}/p_true", 0, 1, 0, "a softmax probability"},
    {"truth", "interv/{dataset}/p_false", 0, 1, 0, "a softmax probability"},
    {"truth", "pd", -1, 1, 0, "a mean of P(true) - P(false) (md_dir_pd)"},
    {"truth", "cosine", -1 - 1e-9, 1 + 1e-9, 0, "a cosine (md_dir_cosine)"},
    {"truth", "direction_norm", 0, INFINITY, 0, "a norm"},
    {"truth", "interv/{dataset}/index", 0, INFINITY, 1, "an index into statements/<dataset>"},
    {"refusal", "refusal_score", 0, 1, 0, "a refusal rate: mean of 0/1 flags (md_dirseq_read_rate)"},
    {"refusal", "score", 0, 1, 0, "a refusal rate: mean of 0/1 flags (md_dirseq_read_rate)"},
    {"refusal", "refused", 0, 1, 1, "1 = the completion starts with a refusal prefix"},
    {"refusal", "gen/{set}/{target}/{intervention}/refused", 0, 1, 1, "1 = the completion starts with a refusal prefix"},
    {"refusal", "cosine", -1 - 1e-9, 1 + 1e-9, 0, "a cosine (md_dir_cosine)"},
    {"refusal", "mean_diff_norm", 0, INFINITY, 0, "a norm"},
    {"confidence", "{model}/norm", 0, INFINITY, 0, "a norm (entropy.c)"},
    {"confidence", "{model}/logitvar", 0, INFINITY, 0, "a variance, clamped at 0 (entropy.c)"},
    {"confidence", "{model}/norm_threshold", 0, INFINITY, 0, "a percentile of norms"},
    {"confidence", "{model}/entropy", -1e-9, INFINITY, 0, "an entropy (md_entropy_softmax)"},
    {"confidence", "{model}/entropy_ablated", -1e-9, INFINITY, 0, "an entropy (md_entropy_softmax)"},
    {"confidence", "{model}/selected", -1, INFINITY, 1, "a neuron index, -1 = fewer neurons qualified"},
    {"confidence", "{model}/prompt_len", 1, INFINITY, 1, "a prompt length in tokens"},
    {"confidence", "pairs/{a}->{b}/overlap", 0, INFINITY, 1, "a count of shared neurons"},
    {"confidence", "pairs/{a}->{b}/iou", 0, 1, 0, "|A n B| / |A u B|"},
    {"knowledge", "{dataset}/pairs/true_ids", 0, INFINITY, 1, "token ids"},
    {"knowledge", "{dataset}/pairs/false_ids", 0, INFINITY, 1, "token ids"},
    {"knowledge", "{dataset}/pairs/window_position", 0, INFINITY, 1, "an index in the prompt"},
    {"knowledge", "{dataset}/pairs/subject_first", -1, INFINITY, 1, "a window index, -1 = before the window"},
    {"knowledge", "{dataset}/pairs/subject_last", -1, INFINITY, 1, "a window index, -1 = before the window"},
    {"knowledge", "{dataset}/pairs/prompt_len", 1, INFINITY, 1, "a prompt length in tokens"},
    {NULL, NULL, 0, 0, 0, NULL},
};

/* Names of datasets of every kind that hold ids, rows and positions. */
static int nonneg_by_name(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return !strcmp(base, "token_id") || !strcmp(base, "token_position") || !strcmp(base, "csv_row") ||
           !strcmp(base, "test_csv_row");
}

static const range_rule NONNEG = {NULL, NULL, 0, INFINITY, 1, "an id, CSV row or token index"};

static const range_rule *rule_of(const md_vdset *ds)
{
    const char *kind = ds->kind->alias ? "refusal" : ds->kind->name;
    for (const range_rule *r = RULES; r->path; r++)
        if (!strcmp(r->kind, kind) && !strcmp(r->path, ds->out->path)) return r;
    return nonneg_by_name(ds->out->path) ? &NONNEG : NULL;
}

int md_verify_rules_known(char *bad, size_t len)
{
    for (const range_rule *r = RULES; r->path; r++) {
        const md_kind *k = md_kind_find(r->kind);
        const md_output *o = k ? k->outputs : NULL;
        while (o && o->path && strcmp(o->path, r->path) != 0) o++;
        if (!o || !o->path) {
            snprintf(bad, len, "kind '%s' has no output '%s'", r->kind, r->path);
            return 0;
        }
    }
    return 1;
}

/* "[pair 3, layer 1]" of flat index i of ds. */
static void coords(const md_vdset *ds, int64_t i, char *buf, size_t len)
{
    int64_t idx[MD_MAX_DIMS];
    for (int k = ds->rank - 1; k >= 0; k--) {
        idx[k] = ds->dims[k] ? i % ds->dims[k] : 0;
        i = ds->dims[k] ? i / ds->dims[k] : 0;
    }
    size_t at = 0;
    buf[0] = '\0';
    for (int k = 0; k < ds->rank && at < len; k++) {
        char dim[64];
        md_verify_dim_name(ds->out->dims, k, dim, sizeof dim);
        at += (size_t)snprintf(buf + at, len - at, "%s%s %lld", k ? ", " : "[", dim, (long long)idx[k]);
    }
    if (at < len) snprintf(buf + at, len - at, "]");
}

/* What scan_dataset counts: values that are not finite (when finite) and
 * out of the range rule (when rule), and the first of each. */
typedef struct scan {
    const md_vdset *ds;
    const range_rule *rule;
    int finite;
    int64_t bad_range, bad_finite, first_range, first_finite;
    double v_range, v_finite;
} scan;

static int scan_values(void *buf, int64_t first, int64_t n, void *arg)
{
    scan *s = arg;
    const double *x = buf;
    for (int64_t i = 0; i < n; i++) {
        if (s->finite && !isfinite(x[i]) && !(s->ds->out->nan_ok && isnan(x[i]))) {
            if (!s->bad_finite++) s->first_finite = first + i, s->v_finite = x[i];
        } else if (s->rule && !isnan(x[i]) &&
                   (x[i] < s->rule->lo || x[i] > s->rule->hi || (s->rule->integral && x[i] != floor(x[i])))) {
            if (!s->bad_range++) s->first_range = first + i, s->v_range = x[i];
        }
    }
    return 0;
}

/* Scans a numeric dataset as doubles in blocks of its first dimension:
 * non-finite values (when finite) and the range rule (when rule). */
static void scan_dataset(md_vctx *v, const md_vdset *ds, const range_rule *rule, int finite)
{
    scan s = {.ds = ds, .rule = rule, .finite = finite, .first_range = -1, .first_finite = -1};
    hid_t d = H5Dopen2(v->file, ds->path, H5P_DEFAULT);
    if (md_h5_read_blocks(d, H5T_NATIVE_DOUBLE, sizeof(double), (size_t)1 << 25, scan_values, &s) != 0)
        md_verify_defect(v, ds->path, "its values cannot be read (a damaged chunk?)");
    H5Dclose(d);
    char at[512];
    if (s.bad_finite) {
        coords(ds, s.first_finite, at, sizeof at);
        md_verify_defect(v, ds->path, "%lld non-finite values, the first %s = %g (kind '%s' never writes one here)",
                         (long long)s.bad_finite, at, s.v_finite, ds->kind->name);
    }
    if (s.bad_range) {
        coords(ds, s.first_range, at, sizeof at);
        md_verify_defect(v, ds->path, "%lld values outside [%g, %g]%s, the first %s = %.17g (%s)",
                         (long long)s.bad_range, rule->lo, rule->hi, rule->integral ? " or not whole" : "", at,
                         s.v_range, rule->why);
    }
}

/* The md_dset of a found dataset, for md_result_check_values. */
static void as_dset(const md_vdset *ds, md_dset *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%.*s", (int)sizeof out->path - 1, ds->path + strlen(ds->exp) + 2);
    out->type = ds->type;
    out->rank = ds->rank;
    for (int k = 0; k < ds->rank; k++) {
        out->dims[k] = ds->dims[k];
        md_verify_dim_name(ds->out->dims, k, out->dim_names[k], sizeof out->dim_names[k]);
    }
    snprintf(out->units, sizeof out->units, "%s", ds->out->units ? ds->out->units : "");
    out->nan_ok = ds->out->nan_ok;
}

static const md_vdset *find_dset(const md_vctx *v, const char *exp, const char *rel)
{
    char full[MD_PATH_MAX + 160];
    snprintf(full, sizeof full, "/%s/%s", exp, rel);
    for (int i = 0; i < v->n_dsets; i++)
        if (!strcmp(v->dsets[i].path, full)) return &v->dsets[i];
    return NULL;
}

/* Whether every unit of stage st writes something: the stage has datasets
 * its units write (at_plan 0). True of every kind but selftest (payload:
 * false units write nothing); stages without such datasets (truth's and
 * refusal's stage 2, confidence's later stages without prompts) have
 * units that write nothing. */
static int units_write(const md_vctx *v, const md_vstage *st)
{
    for (int i = 0; i < v->n_dsets; i++) {
        const md_vdset *ds = &v->dsets[i];
        if (ds->out && !strcmp(ds->exp, st->exp) && ds->out->stage == st->stage && !ds->out->at_plan)
            return strcmp(ds->kind->name, "selftest") != 0;
    }
    return 0;
}

/* Every done unit of stage st read back through its regions. */
static void check_units(md_vctx *v, const md_vstage *st)
{
    int must_write = units_write(v, st);
    md_reader *r = NULL;
    md_error err;
    if (md_reader_open(&r, v->path, st->exp, &err) != MD_OK) return; /* opened once already */
    md_result res;
    md_result_init(&res);
    char object[600];
    snprintf(object, sizeof object, "/completion/%s/stage%d/regions", st->exp, st->stage);
    int64_t shown = 0;
    for (int64_t u = 0; u < st->n_units && shown < 3; u++) {
        if (!st->done[u]) continue;
        if (md_reader_unit(r, st->stage, u, &res, &err) != MD_OK) {
            md_verify_defect(v, object, "unit %lld: %s", (long long)u, err.msg);
            shown++;
            continue;
        }
        v->res->units_read++;
        if (must_write && res.n_pieces == 0) {
            md_verify_defect(v, object, "unit %lld is marked done but its regions entry is empty: units of this "
                             "stage always write results (a done flag set by hand, or merged from such a part?)",
                             (long long)u);
            shown++;
            continue;
        }
        size_t len, pos = 0;
        const void *bytes = md_result_bytes(&res, &len);
        md_piece pc;
        while (bytes && md_result_next(bytes, len, &pos, &pc, &err) == 1) {
            const md_vdset *ds = find_dset(v, st->exp, pc.path);
            if (!ds || !ds->out) continue; /* reported with the datasets */
            md_dset dd;
            as_dset(ds, &dd);
            if (md_result_check_values(&dd, pc.offset, pc.count, pc.data, pc.nbytes, &err) != MD_OK) {
                md_verify_defect(v, ds->path, "unit %lld of stage %d: %s", (long long)u, st->stage, err.msg);
                shown++;
                break;
            }
        }
    }
    md_result_free(&res);
    md_reader_close(r);
}

/* Whether ds is no larger than a plan declares one (else a defect: its
 * values are not read, a file may declare 2^60 elements in a few bytes);
 * *stored: some of its values are stored (none: every value is the fill
 * value, the not-done marker, and there is nothing to scan). */
static int declared_ok(md_vctx *v, const md_vdset *ds, int *stored)
{
    double bytes = ds->type == MD_H5_STR ? 8 : (double)md_h5type_size(ds->type);
    for (int k = 0; k < ds->rank; k++) bytes *= (double)ds->dims[k];
    if (bytes > MD_PLAN_MAX_DSET_BYTES) {
        md_verify_defect(v, ds->path, "declares %.3g bytes of values, more than a job can plan (%.3g): not read",
                         bytes, MD_PLAN_MAX_DSET_BYTES);
        return 0;
    }
    hid_t d = H5Dopen2(v->file, ds->path, H5P_DEFAULT);
    *stored = d >= 0 && H5Dget_storage_size(d) > 0;
    if (d >= 0) H5Dclose(d);
    return 1;
}

void md_verify_values(md_vctx *v)
{
    for (int i = 0; i < v->n_stages; i++) check_units(v, &v->stages[i]);
    for (int i = 0; i < v->n_dsets; i++) {
        const md_vdset *ds = &v->dsets[i];
        if (!ds->out) continue;
        int stored = 0;
        if (!declared_ok(v, ds, &stored)) continue;
        const range_rule *rule = rule_of(ds);
        int floats = ds->type == MD_H5_F32 || ds->type == MD_H5_F64;
        int finite = floats && ds->out->at_plan && !ds->out->nan_ok;
        int64_t n = 1;
        for (int k = 0; k < ds->rank; k++) n *= ds->dims[k];
        if (ds->out->at_plan && !stored && n > 0)
            md_verify_defect(v, ds->path, "holds no values: the plan writes them when it defines the stage");
        if (ds->type != MD_H5_STR && stored && (rule || finite)) scan_dataset(v, ds, rule, finite);
        char want[65], got[65];
        md_error err;
        int dg = md_h5digest_check(v->file, ds->path, want, got, &err);
        if (dg == 0) v->res->digests_absent++;
        else if (dg == 1) v->res->digests_checked++;
        else if (dg == -1)
            md_verify_defect(v, ds->path, "its values' SHA-256 is %.16s..., the attribute 'sha256' written when the job "
                             "finished says %.16s...: the values were edited", got, want);
        else md_verify_defect(v, ds->path, "%s", err.msg);
    }
}
