/* exp_util.h — helpers shared by the experiment kinds (src/exp/<kind>.c): the
 * "file:line:col: experiment 'x'" prefix of their errors, the roles an
 * experiment compares (its `models` key, else every role of the job's
 * `models` map), batch bookkeeping and unit tables, the shared dataset
 * declaration of a plan, and the batched left-padded forward that reads one
 * hook point of every prompt.
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
#include "mechdiff/forward.h"
#include "mechdiff/chat.h"
#include "mechdiff/csv.h"
#include "mechdiff/hf_config.h"
#include "mechdiff/tokenizer.h"

struct md_model;

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
/* Config and tokenizer of a role's model folder (*tok owned by the caller,
 * md_tokenizer_free). Errors are prefixed "<where>: model '<role>'". */
int md_exp_load_role(const md_kind_ctx *ctx, const char *where, const char *role, md_config *cfg,
                     md_tokenizer **tok, md_error *err);
/* MD_OK when the models of role0 and role pair (directions cross between
 * them): the same architecture in every field that changes the forward
 * (md_hf_config_check_pair), else an error starting with `where`. */
int md_exp_check_widths(const char *where, const char *role0, const md_config *c0, const char *role,
                        const md_config *c, md_error *err);
/* Path of dataset `name` in the job's datasets map, or NULL with err set
 * ("<where>: key '<key>': '<name>' is not in the job's datasets map ..."). */
const char *md_exp_find_dataset(const md_kind_ctx *ctx, const char *where, const char *key, const char *name,
                                md_error *err);

/* Batches of `batch` items that cover n items. */
int md_exp_count_batches(int n, int batch);
/* Batch b of n items: *first = its first item; returns how many it holds. */
int md_exp_slice_batch(int n, int batch, int b, int *first);

/* A stage's unit table: unit u stands for the tuple key[u][0..4) (model, set,
 * batch ... as the kind defines them; unused columns 0). Owned by the kind's
 * state: md_exp_free_units. */
typedef struct md_exp_units {
    int n;         /* units added */
    int (*key)[4]; /* [capacity][4] */
} md_exp_units;
/* Room for cap units (n = 0). */
int md_exp_alloc_units(md_exp_units *u, int cap, md_error *err);
/* Appends a unit (the caller allocated room for it). */
void md_exp_add_unit(md_exp_units *u, int k0, int k1, int k2, int k3);
void md_exp_free_units(md_exp_units *u);

/* "a,b,c" of items[0..n) into val[cap] (cut at cap). */
void md_exp_join_names(char *val, size_t cap, const char *const *items, int n);
/* Declares dataset `path` of a plan: dims and dimension names [rank]; f32
 * matrices are chunked by 64 rows and deflated. */
int md_exp_declare_dset(md_plan *plan, const char *path, md_h5type type, int rank, const int64_t *dims,
                        const char *const *names, const char *units, const char *desc, md_error *err);
/* The name of a unit in progress lines and errors: "<exp>/stage <s>/unit <u>". */
void md_exp_name_unit(const md_kind_ctx *ctx, int stage, int64_t unit, char *buf, size_t len);

/* Stage blobs of n_hd int32 (a header: sizes) then doubles; n_hd even keeps
 * the doubles 8-byte aligned. A zeroed blob with header hd[0..n_hd) and room
 * for n_f64 doubles (*f64 points at them), *bytes its size; owned by the
 * caller (free), NULL when out of memory. */
void *md_exp_alloc_blob(const int32_t *hd, int n_hd, size_t n_f64, double **f64, size_t *bytes);
/* Copies the header of stage input b into hd[0..n_hd); the error "<kind>:
 * stage input is missing" when b is NULL or shorter than that. */
int md_exp_read_blob_header(const md_blob *b, const char *kind, int32_t *hd, int n_hd, md_error *err);
/* *f64 = the doubles after the header when b holds n_hd int32 and exactly
 * n_f64 doubles, else the error "<kind>: stage input has <size> bytes,
 * expected <size>". */
int md_exp_view_blob_f64(const md_blob *b, const char *kind, int n_hd, size_t n_f64, const double **f64,
                         md_error *err);

/* Frees ids[0..n) and ids (NULL allowed). */
void md_exp_free_ids(int **ids, int n);
/* Left-pads n encoded prompts ids[i][0..len[i]) to the longest (*T) with the
 * model's BOS (0 without one): *pad [n] pad lengths, *tok [n][T]; both owned
 * by the caller (free, also on error). */
int md_exp_pad_batch(const struct md_model *m, int **ids, const int *len, int n, int *T, int **pad, int **tok,
                     md_error *err);
/* One left-padded batched forward of n prompts, stopped after the deepest
 * of `layers`, that reads hook point `hook` at every (layers[li], pos[pi])
 * — positions counted from the end of every prompt (-1 = last token; the
 * caller checks len[i] >= -pos[pi]) — into acts[n_layers][n_pos][n][hook
 * width] (caller's). */
int md_exp_read_acts_grid(struct md_model *m, int **ids, const int *len, int n, int hook, const int *layers,
                          int n_layers, const int *pos, int n_pos, float *acts, md_error *err);
/* md_exp_read_acts_grid at one (layer, pos): acts[n][hook width]. */
int md_exp_read_acts(struct md_model *m, int **ids, const int *len, int n, int hook, int layer, int pos,
                     float *acts, md_error *err);

/* Instruction prompts (refusal kinds). The template of a role from the
 * experiment's `templates` map: "base", "chat" (the model's own, recognised
 * from its tokenizer_config.json), a template name, or a format string with
 * {instruction} once; *fmt is NULL unless *kind is MD_CHAT_FORMAT. */
int md_exp_instruction_template(const md_kind_ctx *ctx, const char *role, md_chat_kind model_chat, md_chat_kind *kind,
                                const char **fmt, md_error *err);
/* Renders and encodes the instructions of rows idx[0..n) of column col of
 * csv in the role's template, BOS added: ids[i] malloc'd, len[i]. */
int md_exp_encode_instructions(const md_kind_ctx *ctx, struct md_model *m, const char *role, const md_csv *csv, int col,
                               const int *idx, int n, int **ids, int *len, md_error *err);
/* md_plan_put of the strings of rows idx[0..n) of a CSV column at offset off
 * of a 1-D string dataset. */
int md_exp_put_csv_strings(md_plan *plan, const char *path, const md_csv *t, int col, const int *idx, int n, int64_t off,
                           md_error *err);
/* Greedy generation of n prompts (hooks applied at every step, may be none),
 * decoded without special tokens: refused[i] = starts with a refusal prefix,
 * *joined = the n texts NUL-terminated back to back (*total bytes; malloc'd,
 * the caller frees, NULL on error). */
int md_exp_generate_refusals(struct md_model *m, int **ids, const int *len, int n, int max_new, const md_hook *hooks,
                             int n_hooks, int32_t *refused, char **joined, size_t *total, md_error *err);

#endif
