/* fewshot.h — the few-shot prefix of the true/false prompts that the
 * knowledge and truth kinds share (docs/methods.md, "Knowledge" and
 * "Truthfulness": the same seed gives the same prompts in both):
 *   n_shots lines "<statement><suffix><true_word|false_word>\n".
 * Deterministic (splitmix64); ownership per function. */
#ifndef MECHDIFF_FEWSHOT_H
#define MECHDIFF_FEWSHOT_H

#include "mechdiff/error.h"

typedef struct md_fewshot_opts {
    int n_shots;                 /* few-shot lines (4) */
    int shot_seed;               /* shuffle seed (1) */
    const char *suffix;          /* " This statement is:" */
    const char *true_word;       /* " TRUE" */
    const char *false_word;      /* " FALSE" */
} md_fewshot_opts;

/* Walks a splitmix64 permutation (seed opt->shot_seed) of rows [0, n_rows),
 * takes the first n_shots/2 true and n_shots - n_shots/2 false rows (at most
 * cap in all), shuffles them with the same stream, and renders one line per
 * example. shots[0..*n_drawn) = the rows drawn, in prompt order (fewer than
 * opt->n_shots when the rows run out: the caller decides whether that is an
 * error). *prefix is malloc'd, owned by the caller. MD_ERR only when out of
 * memory. */
int md_fewshot_draw(const char *const *statements, const int *labels, int n_rows, const md_fewshot_opts *opt,
                    int *shots, int cap, int *n_drawn, char **prefix, md_error *err);

#endif
