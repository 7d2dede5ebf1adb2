/* kn_pairs.c — few-shot prompts and TRUE/FALSE pair curation for the
 * knowledge experiment (docs/methods.md "Knowledge"):
 *   prompt = n_shots lines "<statement> This statement is: TRUE|FALSE\n"
 *            (examples drawn and shuffled with shot_seed, half true, half
 *            false, excluded from the pairs) + "<statement>" + suffix;
 *   pair   = a TRUE and a FALSE statement with the same token template:
 *            same number of tokens, same last word; the tokens that differ
 *            span the subject. No filter on model correctness. */
#include "mechdiff/knowledge.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mechdiff/csv.h"
#include "mechdiff/fewshot.h"

/* The last whitespace-separated word without trailing punctuation: a
 * pointer into s and *len, at most 255 bytes (the first 255 are compared). */
static const char *last_word(const char *s, size_t *len)
{
    size_t n = strlen(s);
    while (n > 0 && (ispunct((unsigned char)s[n - 1]) || isspace((unsigned char)s[n - 1]))) n--;
    size_t b = n;
    while (b > 0 && !isspace((unsigned char)s[b - 1])) b--;
    *len = n - b < 255 ? n - b : 255;
    return s + b;
}

/* 1 when a and b (same length n) differ at all; [first, last] is the span
 * that holds every difference (the subject; equal tokens inside it are
 * allowed: "Lima" and "Rome" may share a middle piece). */
static int diff_span(const int *a, const int *b, int n, int *first, int *last)
{
    int f = -1, l = -1;
    for (int i = 0; i < n; i++)
        if (a[i] != b[i]) {
            if (f < 0) f = i;
            l = i;
        }
    if (f < 0) return 0;
    *first = f;
    *last = l;
    return 1;
}

static int encode_prompt(const md_tokenizer *tok, const char *prefix, const char *stmt, const char *suffix,
                         int **ids, size_t *n, md_error *err)
{
    size_t len = strlen(prefix) + strlen(stmt) + strlen(suffix) + 1;
    char *text = malloc(len);
    if (!text) return md_error_set(err, "out of memory");
    snprintf(text, len, "%s%s%s", prefix, stmt, suffix);
    int rc = md_tokenizer_encode(tok, text, 1, ids, n, err);
    free(text);
    return rc;
}

/* Statements and labels of every CSV row into ds; *n_true, *n_false. */
static int kn_read_rows(md_kn_dataset *ds, const md_csv *csv, int cs, int cl, const char *csv_path, int *n_true,
                        int *n_false, md_error *err)
{
    *n_true = *n_false = 0;
    for (int r = 0; r < csv->n_rows; r++) {
        const char *lab = md_csv_cell(csv, r, cl);
        if (strcmp(lab, "1") != 0 && strcmp(lab, "0") != 0 && strcmp(lab, "1.0") != 0 && strcmp(lab, "0.0") != 0 &&
            strcasecmp(lab, "true") != 0 && strcasecmp(lab, "false") != 0)
            return md_error_set(err, "%s: row %d: label '%s' is not 1/0 (or true/false)", csv_path, r + 2, lab);
        ds->labels[r] = lab[0] == '1' || strcasecmp(lab, "true") == 0;
        if (!(ds->statements[r] = strdup(md_csv_cell(csv, r, cs))))
            return md_error_set(err, "out of memory curating pairs of %s", csv_path);
        if (ds->labels[r]) (*n_true)++;
        else (*n_false)++;
    }
    return MD_OK;
}

/* A FALSE row that may partner a TRUE row: its token count and last word. */
typedef struct {
    size_t tlen, wlen;
    const char *word;
    int row;
} kn_cand;

/* The FALSE rows not drawn as few-shot examples, sorted by (token count,
 * last word, row), so that the rows of one template are found by binary
 * search in CSV order (was a scan of every row per TRUE row: quadratic,
 * 3 s for 16 000 rows); next[k] skips the candidates paired already. */
typedef struct {
    kn_cand *c;
    int *next; /* next[k] == k: candidate k is unused; else one after it to look at (path halving) */
    int n;
} kn_index;

static int cand_cmp(const void *pa, const void *pb)
{
    const kn_cand *a = pa, *b = pb;
    if (a->tlen != b->tlen) return a->tlen < b->tlen ? -1 : 1;
    if (a->wlen != b->wlen) return a->wlen < b->wlen ? -1 : 1;
    int c = memcmp(a->word, b->word, a->wlen);
    return c ? c : (a->row > b->row) - (a->row < b->row);
}

static int kn_index_build(kn_index *ix, const md_kn_dataset *ds, const size_t *tlen, const int *used)
{
    ix->n = 0;
    ix->c = malloc((size_t)(ds->n_rows + 1) * sizeof *ix->c);
    ix->next = malloc((size_t)(ds->n_rows + 1) * sizeof *ix->next);
    if (!ix->c || !ix->next) return MD_ERR;
    for (int f = 0; f < ds->n_rows; f++) {
        if (ds->labels[f] || used[f]) continue;
        kn_cand *c = &ix->c[ix->n++];
        c->tlen = tlen[f];
        c->word = last_word(ds->statements[f], &c->wlen);
        c->row = f;
    }
    qsort(ix->c, (size_t)ix->n, sizeof *ix->c, cand_cmp);
    for (int k = 0; k <= ix->n; k++) ix->next[k] = k;
    return MD_OK;
}

/* The first unused candidate at or after k (ix->n when none). */
static int kn_index_unused(kn_index *ix, int k)
{
    while (ix->next[k] != k) {
        ix->next[k] = ix->next[ix->next[k]];
        k = ix->next[k];
    }
    return k;
}

/* The candidate (index into ix->c) of the first unused FALSE row, in CSV
 * order, with TRUE row t's token template (same length, same last word,
 * some difference), or -1. */
static int kn_find_partner(const md_kn_dataset *ds, kn_index *ix, int *const *tmpl, const size_t *tlen, int t)
{
    kn_cand key = {.tlen = tlen[t], .row = -1};
    key.word = last_word(ds->statements[t], &key.wlen);
    int lo = 0, hi = ix->n, f0, l0;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (cand_cmp(&ix->c[mid], &key) < 0) lo = mid + 1;
        else hi = mid;
    }
    for (int k = kn_index_unused(ix, lo); k < ix->n; k = kn_index_unused(ix, k + 1)) {
        const kn_cand *c = &ix->c[k];
        if (c->tlen != key.tlen || c->wlen != key.wlen || memcmp(c->word, key.word, key.wlen) != 0) break;
        if (diff_span(tmpl[t], tmpl[c->row], (int)key.tlen, &f0, &l0)) return k;
    }
    return -1;
}

/* Encodes the prompts of pair (t, f) as ds->pairs[ds->n_pairs]: 1 when kept,
 * 0 when the full prompts tokenise differently (counted), MD_ERR on error.
 * *window = statement + suffix tokens of the pair. */
static int kn_add_pair(md_kn_dataset *ds, const md_tokenizer *tok, const md_kn_options *opt, int t, int f,
                       int stmt_tokens, int *window, md_error *err)
{
    md_kn_pair *p = &ds->pairs[ds->n_pairs];
    size_t nt = 0, nf = 0, nsfx = 0;
    int *sfx = NULL;
    if (encode_prompt(tok, ds->few_shot, ds->statements[t], opt->suffix, &p->true_ids, &nt, err) != MD_OK ||
        encode_prompt(tok, ds->few_shot, ds->statements[f], opt->suffix, &p->false_ids, &nf, err) != MD_OK)
        goto fail;
    if (nt != nf || !diff_span(p->true_ids, p->false_ids, (int)nt, &p->diff_first, &p->diff_last)) {
        free(p->true_ids), free(p->false_ids);
        p->true_ids = p->false_ids = NULL;
        ds->dropped_prompt_mismatch++;
        return 0;
    }
    p->true_row = t;
    p->false_row = f;
    p->len = (int)nt;
    if (md_tokenizer_encode(tok, opt->suffix, 0, &sfx, &nsfx, err) != MD_OK) goto fail_kept;
    free(sfx);
    ds->suffix_tokens = (int)nsfx;
    *window = stmt_tokens + (int)nsfx;
    p->stmt_first = p->len - *window;
    return 1;
fail:
    free(p->true_ids), free(p->false_ids);
    p->true_ids = p->false_ids = NULL;
    return MD_ERR;
fail_kept: /* the ids stay with the pair table (freed with ds); count it */
    ds->n_pairs++;
    return MD_ERR;
}

/* Few-shot examples: walk a seeded permutation, take half true, half false
 * (md_fewshot_draw); marks their rows in used. */
static int kn_draw_shots(md_kn_dataset *ds, const md_kn_options *opt, int *used, md_error *err)
{
    int shots[64], ns = 0;
    md_fewshot_opts fo = {.n_shots = opt->n_shots, .shot_seed = opt->shot_seed, .suffix = opt->suffix,
                          .true_word = opt->true_word, .false_word = opt->false_word};
    if (md_fewshot_draw((const char *const *)ds->statements, ds->labels, ds->n_rows, &fo, shots, 64, &ns,
                        &ds->few_shot, err) != MD_OK)
        return MD_ERR;
    for (int i = 0; i < ns; i++) used[shots[i]] = 1;
    return MD_OK;
}

/* Pairs each unused TRUE row with its first free FALSE partner of the same
 * template (kn_add_pair), counting the rows dropped; *min_window: the
 * smallest statement + suffix window of the kept pairs. */
static int kn_pair_rows(md_kn_dataset *ds, const md_tokenizer *tok, const md_kn_options *opt, kn_index *ix,
                        int **tmpl, const size_t *tlen, int *used, int *min_window, md_error *err)
{
    for (int t = 0; t < ds->n_rows; t++) {
        if (!ds->labels[t] || used[t]) continue;
        int k = kn_find_partner(ds, ix, tmpl, tlen, t), partner = k < 0 ? -1 : ix->c[k].row, window = 0;
        if (partner < 0) {
            ds->dropped_no_partner++;
            continue;
        }
        if (opt->max_pairs > 0 && ds->n_pairs >= opt->max_pairs) {
            ds->dropped_max_pairs++;
            continue;
        }
        int kept = kn_add_pair(ds, tok, opt, t, partner, (int)tlen[t], &window, err);
        if (kept == MD_ERR) return MD_ERR;
        if (!kept) continue;
        if (window < *min_window) *min_window = window;
        used[t] = used[partner] = 1;
        ix->next[k] = k + 1;
        ds->n_pairs++;
    }
    return MD_OK;
}

/* Counts the unpaired FALSE rows, refuses a dataset without pairs and sets
 * ds->n_toks (n_toks, or the smallest window; at most a prompt's length - 1). */
static int kn_finish(md_kn_dataset *ds, const md_kn_options *opt, const int *used, int min_window,
                     const char *csv_path, md_error *err)
{
    for (int r = 0; r < ds->n_rows; r++)
        if (!ds->labels[r] && !used[r]) ds->unpaired_false++;
    if (ds->n_pairs == 0) {
        md_error_set(err, "%s: no TRUE/FALSE pair has the same token template (%d TRUE statements had no "
                          "partner, %d tokenised differently in the prompt)",
                     csv_path, ds->dropped_no_partner, ds->dropped_prompt_mismatch);
        return MD_ERR;
    }
    ds->n_toks = opt->n_toks > 0 ? opt->n_toks : min_window;
    for (int i = 0; i < ds->n_pairs; i++)
        if (ds->n_toks > ds->pairs[i].len - 1) ds->n_toks = ds->pairs[i].len - 1;
    return MD_OK;
}

int md_kn_dataset_build(md_kn_dataset *ds, const char *name, const char *csv_path, const md_tokenizer *tok,
                        const md_kn_options *opt, md_error *err)
{
    memset(ds, 0, sizeof *ds);
    md_csv *csv = NULL;
    int **tmpl = NULL;
    size_t *tlen = NULL;
    int *used = NULL;
    kn_index ix = {0};
    if (md_csv_read(&csv, csv_path, err) != MD_OK) return MD_ERR;
    int cs = md_csv_column(csv, "statement", err), cl = cs < 0 ? -1 : md_csv_column(csv, "label", err);
    if (cs < 0 || cl < 0) goto fail;
    ds->name = strdup(name);
    ds->n_rows = csv->n_rows;
    ds->statements = calloc((size_t)csv->n_rows + 1, sizeof(char *));
    ds->labels = calloc((size_t)csv->n_rows + 1, sizeof(int));
    if (!ds->name || !ds->statements || !ds->labels) goto oom;
    int n_true = 0, n_false = 0;
    if (kn_read_rows(ds, csv, cs, cl, csv_path, &n_true, &n_false, err) != MD_OK) goto fail;
    int half = opt->n_shots / 2;
    if (n_true < half + 1 || n_false < opt->n_shots - half + 1) {
        md_error_set(err, "%s: %d true and %d false statements are too few for %d few-shot examples and a pair",
                     csv_path, n_true, n_false, opt->n_shots);
        goto fail;
    }

    /* Few-shot examples: walk a seeded permutation, take half true, half false. */
    used = calloc((size_t)csv->n_rows, sizeof(int));
    if (!used || kn_draw_shots(ds, opt, used, err) != MD_OK) goto oom;

    /* Token templates of the bare statements. */
    tmpl = calloc((size_t)csv->n_rows, sizeof(int *));
    tlen = calloc((size_t)csv->n_rows, sizeof(size_t));
    ds->pairs = calloc((size_t)(n_true > 0 ? n_true : 1), sizeof(md_kn_pair));
    if (!tmpl || !tlen || !ds->pairs) goto oom;
    for (int r = 0; r < csv->n_rows; r++)
        if (md_tokenizer_encode(tok, ds->statements[r], 0, &tmpl[r], &tlen[r], err) != MD_OK) goto fail;

    if (kn_index_build(&ix, ds, tlen, used) != MD_OK) goto oom;
    int min_window = 1 << 30;
    if (kn_pair_rows(ds, tok, opt, &ix, tmpl, tlen, used, &min_window, err) != MD_OK) goto fail;
    if (kn_finish(ds, opt, used, min_window, csv_path, err) != MD_OK) goto fail;
    for (int r = 0; r < csv->n_rows; r++) free(tmpl[r]);
    free(tmpl);
    free(tlen);
    free(used);
    free(ix.c);
    free(ix.next);
    md_csv_free(csv);
    return MD_OK;
oom:
    md_error_set(err, "out of memory curating pairs of %s", csv_path);
fail:
    if (tmpl)
        for (int r = 0; r < csv->n_rows; r++) free(tmpl[r]);
    free(tmpl);
    free(tlen);
    free(used);
    free(ix.c);
    free(ix.next);
    md_csv_free(csv);
    md_kn_dataset_free(ds);
    return MD_ERR;
}

void md_kn_dataset_free(md_kn_dataset *ds)
{
    if (!ds) return;
    for (int i = 0; i < ds->n_pairs; i++) {
        free(ds->pairs[i].true_ids);
        free(ds->pairs[i].false_ids);
    }
    free(ds->pairs);
    if (ds->statements)
        for (int r = 0; r < ds->n_rows; r++) free(ds->statements[r]);
    free(ds->statements);
    free(ds->labels);
    free(ds->few_shot);
    free(ds->name);
    memset(ds, 0, sizeof *ds);
}

void md_kn_normalise(float *map, int n)
{
    if (n <= 0) return;
    float lo = map[0], hi = map[0];
    for (int i = 1; i < n; i++) {
        if (map[i] < lo) lo = map[i];
        if (map[i] > hi) hi = map[i];
    }
    double a = lo - 1e-5, w = ((double)hi + 1e-5 - a) / 20.0;
    for (int i = 0; i < n; i++) {
        int bin = (int)((map[i] - a) / w);
        if (bin > 19) bin = 19;
        if (bin < 0) bin = 0;
        map[i] = bin < 10 ? 0.0f : (float)(bin - 9) / 10.0f;
    }
}
