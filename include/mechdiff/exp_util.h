/* exp_util.h — the job context of an experiment kind (src/exp/<kind>.c):
 * the "file:line:col: experiment 'x'" prefix of its errors, the roles it
 * compares (its `models` key, else every role of the job's `models` map),
 * their configs and tokenizers, and its datasets. The other shared pieces
 * live in one module each: exp_units.h (batches, unit tables), exp_blob.h
 * (stage blobs), exp_batch.h (padding, batched activation reads),
 * exp_prompt.h (instruction prompts, generation), exp_output.h (declaring
 * outputs), directions.h (direction math).
 *
 * Everything here is deterministic and depends only on its arguments (the
 * rules of experiment.h). Ownership: stated per function; nothing keeps a
 * pointer to its arguments. */
#ifndef MECHDIFF_EXP_UTIL_H
#define MECHDIFF_EXP_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "mechdiff/error.h"
#include "mechdiff/experiment.h"
#include "mechdiff/hf_config.h"
#include "mechdiff/tokenizer.h"

/* Size of a buffer for md_exp_format_where. */
#define MD_EXP_WHERE_MAX 512

/* "<job file>:<line>:<col>: experiment '<name>'" into buf[n]; returns buf. */
const char *md_exp_format_where(const md_kind_ctx *ctx, char *buf, size_t n);

/* Number of roles of the experiment: its `models` list, or (when that is
 * empty) every role of the job's `models` map. */
int md_exp_count_roles(const md_kind_ctx *ctx);
/* Role i of that list (points into the job), NULL past its end. */
const char *md_exp_get_role(const md_kind_ctx *ctx, int i);
/* roles[0..*n) = the experiment's roles (pointers into the job). Errors
 * (starting with `where`): fewer than 1 or more than max roles, a role that is
 * not in the job's models map. */
int md_exp_resolve_roles(const md_kind_ctx *ctx, const char *where, const char **roles, int max, int *n,
                         md_error *err);
/* Config and tokenizer of a role's model folder (*tok from ctx->toks,
 * md_tokcache_acquire: the caller ends its use with
 * md_tokcache_release(ctx->toks, *tok), which frees it when ctx has no
 * cache). Errors are prefixed "<where>: model '<role>'". */
int md_exp_load_role(const md_kind_ctx *ctx, const char *where, const char *role, md_config *cfg,
                     md_tokenizer **tok, md_error *err);
/* One model of a pair: its role, folder, config and tokenizer (borrowed). */
typedef struct md_exp_model {
    const char *role;
    const char *dir;
    const md_config *cfg;
    const md_tokenizer *tok;
} md_exp_model;

/* The vocabulary half of the pairing rule: the tokenizers are of one kind,
 * every id below the smaller vocabulary size is the same token in both
 * (md_tokenizer_first_difference: the larger's extra ids are appended
 * tokens; rows of embed/lm_head beyond either tokenizer are padding), and a
 * probe text and each of words (NULL-terminated, may be NULL) encode to
 * the same ids in both. MD_OK, or MD_ERR with the first difference in
 * why[cap] (the id and its two tokens, or the text and the first id that
 * differs). Cost: one pass over the shared ids and a few encodings. */
int md_exp_pair_vocabularies(const md_exp_model *a, const md_exp_model *b, const char *const *words, char *why,
                             size_t cap);
/* The pairing rule of every cross-model comparison (knowledge's `cross`
 * and its shared prompts, truth and refusal directions; docs/methods.md,
 * "Pairs of models"): with same_arch, every field of config.json that
 * changes the forward agrees (md_hf_config_check_pair: all but
 * vocab_size), and the vocabularies pair (md_exp_pair_vocabularies). MD_OK,
 * else an error "<where>: <what>: 'a' and 'b': <difference> (what to do)"
 * that also names both folders when the vocabularies differ (one line of
 * a few hundred bytes: several fit one md_error). */
int md_exp_check_pair(const char *where, const char *what, const md_exp_model *a, const md_exp_model *b,
                      const char *const *words, int same_arch, md_error *err);
/* When the config.json vocab_size of the job's models differ: 1, and one
 * line into buf[cap] saying which models have how many ids more than the
 * smallest (the run's start-up says it once); else 0. Reads each model's
 * config.json. */
int md_exp_describe_vocabularies(const md_job *job, char *buf, size_t cap);
/* The layer keys of a kind are checked once per model depth (one line per
 * problem, not one per role). depth[0..n): each role's number of layers (-1
 * = its model did not load). 0 when role i has no depth or an earlier role
 * has the same; else the number of roles of its depth, named in who
 * ("model 'a'" or "models 'a', 'b'": the message's subject, for "has" or
 * "have"). */
int md_exp_depth_roles(const char *const *roles, const int *depth, int n, int i, char *who, size_t cap);
/* MD_OK when true_word and false_word are one token each of tok (role's
 * tokenizer), else one error starting with `where` that names every word
 * that splits, into what, and how to choose others. */
int md_exp_check_answer_words(const md_kind_ctx *ctx, const char *where, const char *role, const md_tokenizer *tok,
                              const char *true_word, const char *false_word, md_error *err);
/* Counts the tokens of one prompt (arg: the caller's description of it)
 * into *n; the ids are not kept. */
typedef int (*md_exp_count_fn)(void *arg, size_t *n, md_error *err);

/* A model's context, the prompts checked against it, and what a prompt
 * that does not fit is told (md_exp_check_fits). */
typedef struct md_exp_fit {
    const md_config *cfg;   /* the model: cfg->max_position (<= 0: no limit) */
    const char *where;      /* md_exp_format_where */
    const char *role;       /* the model's role */
    const char *key;        /* the key to change */
    const char *advice;     /* how ("use fewer n_shots or shorter statements") */
    int extra;              /* positions generated after the prompt (0: none) */
    md_exp_count_fn count;  /* counts a prompt's tokens */
} md_exp_fit;

/* Whether one prompt (arg, for f->count) and f->extra generated positions
 * fit the model's context. At most one token per byte (byte-level BPE,
 * byte fallback) bounds a prompt by its bytes + the tokens added around
 * them (`bound`): when bound + extra fit it is not encoded. MD_OK when it
 * fits; else MD_ERR with "<where>: key '<key>': <what> has N tokens, more
 * than the max_position_embeddings M of model '<role>' (<advice>)" (with
 * extra: "needs N positions (P prompt tokens + E generated after the
 * first)"); what is formatted only then. A count that fails is prefixed
 * "<where>: model '<role>': <what>". */
int md_exp_check_fits(const md_exp_fit *f, void *arg, size_t bound, md_error *err, const char *what, ...)
    __attribute__((format(printf, 5, 6)));

/* Path of dataset `name` in the job's datasets map, or NULL with err set
 * ("<where>: key '<key>': '<name>' is not in the job's datasets map ..."). */
const char *md_exp_find_dataset(const md_kind_ctx *ctx, const char *where, const char *key, const char *name,
                                md_error *err);

#endif
