/* registry.c — the experiment kinds the runner knows (see experiment.h).
 * To add a kind: declare its md_kind here and add one line to KINDS. */
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
