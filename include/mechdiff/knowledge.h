/* knowledge.h — the knowledge experiment's data preparation (docs/methods.md,
 * "Knowledge"): few-shot prompts and TRUE/FALSE pair curation from a
 * `statement,label` CSV. Shared by the `knowledge` kind's plan (rank 0) and
 * compute (workers), which must derive identical pairs from the same job.
 * Ownership: md_kn_dataset owns everything in it. */
#ifndef MECHDIFF_KNOWLEDGE_H
#define MECHDIFF_KNOWLEDGE_H

#include "mechdiff/error.h"
#include "mechdiff/tokenizer.h"

typedef struct md_kn_pair {
    int true_row, false_row;     /* CSV rows (0-based, header excluded) */
    int *true_ids, *false_ids;   /* full prompts, BOS included [len] */
    int len;
    int diff_first, diff_last;   /* positions where the prompts differ (subject span) */
    int stmt_first;              /* first position of the statement in the prompt */
} md_kn_pair;

typedef struct md_kn_dataset {
    char *name;
    char *few_shot;              /* the few-shot prefix text */
    char **statements;           /* [n_rows] */
    int *labels;                 /* [n_rows] */
    int n_rows;
    md_kn_pair *pairs;
    int n_pairs;
    int n_toks;                  /* positions patched, counted from the end */
    int suffix_tokens;           /* tokens of the suffix (" This statement is:") */
    int dropped_no_partner;      /* TRUE statements with no FALSE partner of the same template */
    int dropped_prompt_mismatch; /* template matched but full prompts tokenised differently */
    int dropped_max_pairs;       /* beyond max_pairs */
    int unpaired_false;
} md_kn_dataset;

typedef struct md_kn_options {
    int n_shots;                 /* few-shot lines (4) */
    int shot_seed;               /* shuffle seed (1) */
    int max_pairs;               /* 0 = all */
    int n_toks;                  /* 0 = auto: statement + suffix of the shortest pair */
    const char *suffix;          /* " This statement is:" */
    const char *true_word;       /* " TRUE" */
    const char *false_word;      /* " FALSE" */
} md_kn_options;

/* Reads the CSV, builds the few-shot prefix (md_fewshot_draw, fewshot.h), curates pairs. */
int md_kn_dataset_build(md_kn_dataset *out, const char *name, const char *csv_path,
                        const md_tokenizer *tok, const md_kn_options *opt, md_error *err);
void md_kn_dataset_free(md_kn_dataset *ds);

/* The study's normalisation of a patching map (20 bins over [min-1e-5,
 * max+1e-5]; lower 10 → 0, upper 10 → 0.1 .. 1.0), in place. */
void md_kn_normalise(float *map, int n);

#endif
