/* fewshot.c — the few-shot prefix of the true/false prompts (see fewshot.h). */
#include "mechdiff/fewshot.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64 — the deterministic random source. */
static uint64_t fs_rand(uint64_t *s)
{
    uint64_t x = (*s += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void shuffle(int *v, int n, uint64_t *s)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(fs_rand(s) % (uint64_t)(i + 1));
        int t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

int md_fewshot_draw(const char *const *statements, const int *labels, int n_rows, const md_fewshot_opts *opt,
                    int *shots, int cap, int *n_drawn, char **prefix, md_error *err)
{
    int *order = malloc((size_t)(n_rows > 0 ? n_rows : 1) * sizeof(int));
    if (!order) return md_error_set(err, "out of memory");
    uint64_t rng = (uint64_t)opt->shot_seed;
    for (int r = 0; r < n_rows; r++) order[r] = r;
    shuffle(order, n_rows, &rng);
    int half = opt->n_shots / 2, ns = 0, want_t = half, want_f = opt->n_shots - half;
    for (int i = 0; i < n_rows && ns < opt->n_shots && ns < cap; i++)
        if (labels[order[i]] ? want_t-- > 0 : want_f-- > 0) shots[ns++] = order[i];
    free(order);
    shuffle(shots, ns, &rng);
    size_t size = 1;
    for (int i = 0; i < ns; i++)
        size += strlen(statements[shots[i]]) + strlen(opt->suffix) +
                strlen(labels[shots[i]] ? opt->true_word : opt->false_word) + 1;
    char *text = malloc(size);
    if (!text) return md_error_set(err, "out of memory");
    for (size_t i = 0, off = 0; i < (size_t)ns; i++)
        off += (size_t)snprintf(text + off, size - off, "%s%s%s\n", statements[shots[i]], opt->suffix,
                                labels[shots[i]] ? opt->true_word : opt->false_word);
    if (ns == 0) text[0] = '\0';
    *prefix = text;
    *n_drawn = ns;
    return MD_OK;
}
