/* kn_output.h — private to the `knowledge` kind (knowledge.c: keys, state,
 * plan of the result datasets, compute; kn_output.c: its outputs table and
 * the plan-time pair tables of a dataset). */
#ifndef MECHDIFF_EXP_KN_OUTPUT_H
#define MECHDIFF_EXP_KN_OUTPUT_H

#include "mechdiff/error.h"
#include "mechdiff/experiment.h"
#include "mechdiff/knowledge.h"
#include "mechdiff/tokenizer.h"

enum {
    KO_TRUE_STATEMENT, KO_FALSE_STATEMENT, KO_TRUE_IDS, KO_FALSE_IDS, KO_TRUE_TOKENS, KO_FALSE_TOKENS,
    KO_WINDOW_POSITION, KO_SUBJECT_FIRST, KO_SUBJECT_LAST, KO_PROMPT_LEN, KO_EFFECT, KO_EFFECT_HEAD, KO_CLEAN_TRUE,
    KO_CLEAN_FALSE, KO_ACTS_TRUE, KO_ACTS_FALSE
};

/* Every dataset the kind writes ({0}-terminated, indexed by KO_*). Result
 * groups are named <source>-><target> (the job's `cross` item; within a
 * model <role>-><role>). */
extern const md_output MD_KN_OUTPUTS[];

/* The group of (dataset, source, target) results: "cities/instruct->base". */
void md_kn_group(char *buf, size_t cap, const char *dataset, const char *source, const char *target);

/* Declares the axes of dataset ds (its pairs and window positions, scoped to ds->name) and writes its pair
 * tables (statements, window ids and tokens, positions, subject span, prompt
 * lengths) with their curation attributes. tok is the tokenizer the pairs
 * were curated with. */
int md_kn_plan_pairs(md_plan *plan, const md_kn_dataset *ds, const md_tokenizer *tok, md_error *err);

/* Attributes source, target and description on the result group of
 * (dataset, source, target), declared before. */
int md_kn_plan_group_attrs(md_plan *plan, const char *dataset, const char *source, const char *target,
                           md_error *err);

#endif
