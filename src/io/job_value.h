/* job_value.h — internal to src/io/job.c and job_value.c: the context of
 * one job file's parse and one key's value.
 *
 * job.c walks the document (top level, runtime, experiments) and hands each
 * key's node to md_job_parse_value (job_value.c), which records every
 * problem in the context's error as "file:line:col: key 'k': ..." and goes
 * on (so one run reports them all).
 * Ownership: the context points into the caller's document and error; an
 * md_value's strings and lists are malloc'd and belong to the md_params
 * that holds it (md_params_free). */
#ifndef MECHDIFF_IO_JOB_VALUE_H
#define MECHDIFF_IO_JOB_VALUE_H

#include <stddef.h>
#include <yaml.h>

#include "mechdiff/error.h"
#include "mechdiff/schema.h"

/* Parse context: the document, where it came from, the error being built
 * (job.c sets it up). */
typedef struct md_job_pctx {
    yaml_document_t doc;
    const char *source;
    const char *dir;
    int check_paths;
    md_error *err;
    int n_errors;
    int n_path_errors;         /* of n_errors: files/folders that do not exist */
    const char *dataset;       /* the `datasets` entry whose path is being checked */
    struct {                   /* missing dataset files, reported with the experiments */
        const yaml_node_t *at; /* that name them (report_missing) */
        const char *name;      /* (both point into doc) */
    } missing[32];
    int n_missing;
} md_job_pctx;

/* Appends "source:line:col: <text>" (at = NULL: 1:1) as a line of pc->err
 * and counts an error (also when the line no longer fits). */
void md_job_add_error(md_job_pctx *pc, const yaml_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The node at index of pc's document. */
yaml_node_t *md_job_node_at(md_job_pctx *pc, int index);

/* A scalar's text ("" for a list or a map; owned by the document). */
const char *md_job_node_text(const yaml_node_t *n);

/* "a list", "a map" or "a scalar" (static text), for "expected X, got Y". */
const char *md_job_node_kind(const yaml_node_t *n);

/* What was found, for "expected X, got Y": 'text' of a scalar, else its kind. */
void md_job_node_describe(const yaml_node_t *n, char *buf, size_t len);

/* dir/rel, or rel when absolute or dir is empty; canonicalised when it
 * exists. Returns a malloc'd path (the caller frees it) or NULL. */
char *md_job_resolve_path(const char *dir, const char *rel);

/* Parses node n as the value of key k into v (its line and column
 * recorded); a problem is added to pc's error and leaves v as far as it got. */
void md_job_parse_value(md_job_pctx *pc, const md_key *k, yaml_node_t *n, md_value *v);

/* Sets v to k's default (the schema's text; lists comma-separated, maps
 * empty). Returns MD_OK, or MD_ERR (out of memory, or a default that does
 * not parse: a bug in the table). */
int md_job_default_value(const md_key *k, md_value *v);

#endif
