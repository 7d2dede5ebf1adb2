/* test_verify.c — the tables behind `mechdiff verify` (src/runner/verify*.c):
 * every output of every kind, its path template instantiated with made-up
 * names, is matched to an entry that verifies it the same way (type, dims,
 * units, stage, at_plan, nan_ok: the entries two kinds' modes share a path
 * with differ in rank or type); a path of another shape is matched by none;
 * and every range invariant names an output its kind still has (a renamed
 * output would silently drop its check); the stage names a reader takes.
 * The checks themselves on real
 * files: tests/e2e/verify.sh. */
#include <stdio.h>
#include <string.h>

#include "mechdiff/experiment.h"
#include "runner/h5util.h"
#include "runner/verify_int.h"
#include "testutil.h"

static int count_dims(const char *dims)
{
    int n = dims && dims[0] ? 1 : 0;
    for (const char *c = dims; c && *c; c++) n += *c == ',';
    return n;
}

/* tpl with every {name} replaced by "n<k>" (no '/'). */
static void instantiate(const char *tpl, char *out, size_t len)
{
    size_t at = 0;
    int k = 0;
    for (const char *p = tpl; *p && at + 8 < len; p++) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            at += (size_t)snprintf(out + at, len - at, "n%d", k++);
            p = close ? close : p;
        } else {
            out[at++] = *p;
        }
    }
    out[at] = '\0';
}

static int same_checks(const md_output *a, const md_output *b)
{
    return a->type == b->type && !strcmp(a->dims, b->dims) && !strcmp(a->units ? a->units : "", b->units ? b->units : "") &&
           a->stage == b->stage && a->at_plan == b->at_plan && a->nan_ok == b->nan_ok;
}

int main(void)
{
    int n_outputs = 0;
    for (const md_kind *const *k = md_kinds(); *k; k++)
        for (const md_output *o = (*k)->outputs; o && o->path; o++, n_outputs++) {
            char path[MD_PATH_MAX];
            instantiate(o->path, path, sizeof path);
            const md_output *m = md_verify_match_output(*k, path, o->type, count_dims(o->dims));
            CHECK_MSG(m && same_checks(m, o), "kind %s: %s (as %s) matched %s", (*k)->name, o->path, path,
                      m ? m->path : "nothing");
            char deeper[MD_PATH_MAX + 8];
            snprintf(deeper, sizeof deeper, "x/%s", path);
            const md_output *d = md_verify_match_output(*k, deeper, o->type, count_dims(o->dims));
            CHECK_MSG(!d || strchr(d->path, '{'), "kind %s: %s matched the fixed path %s", (*k)->name, deeper,
                      d ? d->path : "");
        }
    CHECK(n_outputs > 40);
    const md_kind *kn = md_kind_find("knowledge");
    CHECK(kn && md_verify_match_output(kn, "cities/instruct->base/effect", MD_H5_F32, 3));
    CHECK(kn && !md_verify_match_output(kn, "cities/effect", MD_H5_F32, 3));
    CHECK(kn && !md_verify_match_output(kn, "cities/instruct->base/effect", MD_H5_F64, 3));
    CHECK(kn && !md_verify_match_output(kn, "cities/instruct->base/effect", MD_H5_F32, 2));
    CHECK(kn && !md_verify_match_output(kn, "a/b/c/effect", MD_H5_F32, 3));
    const md_kind *rf = md_kind_find("refusal"), *sw = md_kind_find("refusal_sweep");
    CHECK(rf && sw && sw->outputs == rf->outputs);
    char bad[256] = "";
    CHECK_MSG(md_verify_rules_known(bad, sizeof bad), "%s", bad);
    /* stage groups: only the names the writer gives (a hand-made "stage99999999999" was read as stage
     * 1215752191, and verify then looped over the stages missing below it) */
    CHECK(md_h5_parse_stage("stage0") == 0 && md_h5_parse_stage("stage7") == MD_KIND_MAX_STAGES - 1);
    static const char *const not_stages[] = {"stage8", "stage01", "stage+1", "stage-1", "stage", "stagex",
                                             "stage1x", "stage99999999999", "Stage1", " stage1"};
    for (size_t i = 0; i < sizeof not_stages / sizeof *not_stages; i++)
        CHECK_MSG(md_h5_parse_stage(not_stages[i]) == -1, "'%s' read as a stage", not_stages[i]);
    TEST_MAIN_END();
}
