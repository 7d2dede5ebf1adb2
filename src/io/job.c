/* job.c — the YAML job file (see include/mechdiff/job.h): the key tables
 * of the top level and runtime, reading the file, and the walk over its
 * document (top level, runtime, each experiment against its kind's keys,
 * defaults, the output path, the missing datasets) into an md_job.
 *
 * libyaml's document API gives a node tree with start marks; every value is
 * checked against a schema (md_key tables: top level, runtime, the kind's)
 * by job_value.c, and every problem is appended to the error as
 * "file:line:col: key 'k': ...". */
#include "mechdiff/job.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "mechdiff/experiment.h"
#include "io/job_value.h"
#include "io/job_yaml.h"

const md_key MD_JOB_TOP_KEYS[] = {
    {.name = "name", .type = MD_KEY_STRING, .def = "job", .doc = "Name of the job (provenance, progress lines)."},
    {.name = "output", .type = MD_KEY_STRING, .def = "",
     .doc = "Output HDF5 file; empty = `<job file stem>.h5` next to the job file. `run -o` overrides."},
    {.name = "seed", .type = MD_KEY_INT, .def = "1", .doc = "Seed for every random choice (few-shot shuffles, splits).",
     .min = 0, .max = 4294967295.0},
    {.name = "models", .type = MD_KEY_MAP, .def = "", .item = MD_KEY_DIR,
     .doc = "Role -> Hugging Face model folder (`base`, `sft`, `instruct`, ...)."},
    {.name = "datasets", .type = MD_KEY_MAP, .def = "", .item = MD_KEY_FILE,
     .doc = "Dataset name -> CSV file."},
    {0}};

const md_key MD_JOB_RUNTIME_KEYS[] = {
    {.name = "progress_interval", .type = MD_KEY_FLOAT, .def = "10",
     .doc = "Seconds between progress lines (a terminal without mpirun/srun gets a live bar instead; "
            "MECHDIFF_PROGRESS=lines|bar chooses).", .min = 0.1, .max = 86400},
    {.name = "flush_units", .type = MD_KEY_INT, .def = "64",
     .doc = "Results are made durable (journal fsync) at least every this many units.", .min = 1, .max = 1e9},
    {.name = "flush_interval", .type = MD_KEY_FLOAT, .def = "5",
     .doc = "... and at least every this many seconds.", .min = 0.01, .max = 86400},
    {.name = "snapshot_interval", .type = MD_KEY_FLOAT, .def = "300",
     .doc = "Seconds between folds of the journal into the HDF5 file (also at stage ends and exit).",
     .min = 1, .max = 1e7},
    {.name = "backend", .type = MD_KEY_STRING, .def = "cpu", .allowed = "cpu|cuda",
     .doc = "Compute backend of the workers ($MECHDIFF_BACKEND, when set, replaces it: the Slurm templates set it)."},
    {.name = "fp32_cache_mb", .type = MD_KEY_INT, .def = "-1", .min = -1, .max = 1e8,
     .doc = "backend cpu: MiB of bf16/f16 weights each worker keeps converted to fp32 (4 bytes per parameter); "
            "the rest is streamed: converted for every matmul on the GEMM's threads (from 64 rows the same GEMM "
            "and result as cached). -1 = auto: half the memory available when the model loads (cgroup limit "
            "included), divided among the node's ranks, at least 256; 0 = stream everything."},
    {.name = "cuda_weights", .type = MD_KEY_STRING, .def = "auto", .allowed = "auto|bf16|f32",
     .doc = "backend cuda: weight matrices stored on the GPU in bf16 (exact for bf16 checkpoints) or f32 (2x "
            "memory; closest to the CPU for f16/f32 checkpoints). auto = $MECHDIFF_CUDA_WEIGHTS, else bf16."},
    {.name = "cuda_gemm", .type = MD_KEY_STRING, .def = "auto", .allowed = "auto|x3|bf16",
     .doc = "backend cuda: activations enter bf16 GEMMs as three exact bf16 pieces (x3: fp32-exact, matches the "
            "CPU to ~1e-13 NMSE) or rounded to bf16 (3x fewer flops, ~2e-6 NMSE per GEMM). auto = "
            "$MECHDIFF_CUDA_GEMM, else x3."},
    {.name = "stop_grace", .type = MD_KEY_FLOAT, .def = "5",
     .doc = "On SIGTERM/SIGUSR1, seconds to wait for units in flight before dropping them.", .min = 0, .max = 8},
    {.name = "array_index", .type = MD_KEY_INT, .def = "-1",
     .doc = "This part of a job split over a Slurm array (-1 = whole job); `run --part i/n` overrides.",
     .min = -1, .max = 1e6},
    {.name = "array_count", .type = MD_KEY_INT, .def = "0", .doc = "Number of parts (0 = whole job).",
     .min = 0, .max = 1e6},
    {.name = "shard_ranks", .type = MD_KEY_INT, .def = "1",
     .doc = "Worker ranks per model copy: > 1 splits each model's layers over a group of this many ranks (a "
            "pipeline; for models too big for one rank's memory or GPU). Needs 1 + a multiple of it ranks; "
            "results are identical.",
     .min = 1, .max = 4096},
    {.name = "hash_weights", .type = MD_KEY_BOOL, .def = "true",
     .doc = "SHA-256 every weight file for provenance and the resume check."},
    {0}};

const md_key MD_EXP_COMMON_KEYS[] = {
    {.name = "kind", .type = MD_KEY_STRING, .def = NULL, .doc = "Experiment kind (see the kinds below)."},
    {.name = "name", .type = MD_KEY_STRING, .def = "",
     .doc = "Output group `/<name>`; empty = the kind. Must be unique in the job."},
    {0}};

static const md_key *schema_find(const md_key *const *schemas, const char *name)
{
    for (int s = 0; schemas[s]; s++)
        for (const md_key *k = schemas[s]; k->name; k++)
            if (strcmp(k->name, name) == 0) return k;
    return NULL;
}

static void list_keys(const md_key *const *schemas, const char *const *extra, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int s = 0; schemas[s]; s++)
        for (const md_key *k = schemas[s]; k->name && used < len; k++)
            used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "", k->name);
    for (int i = 0; extra && extra[i] && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "", extra[i]);
}

/* Parses a mapping against the concatenated schemas into out (one value per
 * key, schema order). Keys listed in `extra` are allowed and skipped (the
 * caller handles them). `where` names the mapping in messages. */
static int parse_mapping(md_job_pctx *pc, yaml_node_t *map, const md_key *const *schemas,
                         const char *const *extra, const char *where, md_params *out)
{
    int n_keys = 0;
    for (int s = 0; schemas[s]; s++)
        for (const md_key *k = schemas[s]; k->name; k++) n_keys++;
    out->v = calloc((size_t)n_keys, sizeof *out->v);
    if (!out->v) return MD_ERR;
    out->n = n_keys;
    int i = 0;
    for (int s = 0; schemas[s]; s++)
        for (const md_key *k = schemas[s]; k->name; k++) out->v[i++].key = k;

    int errors_before = pc->n_errors;
    if (map && map->type != YAML_MAPPING_NODE && !(map->type == YAML_SCALAR_NODE && !md_job_node_text(map)[0])) {
        md_job_add_error(pc, map, "%s: expected a map, got %s", where, md_job_node_kind(map));
        map = NULL;
    }
    if (map && map->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
            yaml_node_t *kn = md_job_node_at(pc, pr->key), *vn = md_job_node_at(pc, pr->value);
            const char *name = md_job_node_text(kn);
            int is_extra = 0;
            for (int e = 0; extra && extra[e]; e++) is_extra |= strcmp(extra[e], name) == 0;
            if (is_extra) continue;
            const md_key *k = schema_find(schemas, name);
            if (!k) {
                char keys[512];
                list_keys(schemas, extra, keys, sizeof keys);
                md_job_add_error(pc, kn, "key '%s': unknown key in %s (known: %s)", name, where, keys);
                continue;
            }
            md_value *v = (md_value *)md_params_find(out, name);
            if (v->line) {
                md_job_add_error(pc, kn, "key '%s': given twice in %s (first at line %d)", name, where, v->line);
                continue;
            }
            md_job_parse_value(pc, k, vn, v);
            if (!v->line) v->line = (int)vn->start_mark.line + 1;
        }
    }
    for (i = 0; i < out->n; i++) {
        md_value *v = &out->v[i];
        if (v->line) continue;
        if (!v->key->def) {
            md_job_add_error(pc, map, "key '%s': required in %s (%s)", v->key->name, where, v->key->doc);
            continue;
        }
        if (md_job_default_value(v->key, v) != MD_OK)
            md_job_add_error(pc, map, "key '%s': bad default (bug)", v->key->name);
    }
    return pc->n_errors == errors_before ? MD_OK : MD_ERR;
}

static yaml_node_t *map_get(md_job_pctx *pc, yaml_node_t *map, const char *name)
{
    if (!map || map->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++)
        if (strcmp(md_job_node_text(md_job_node_at(pc, pr->key)), name) == 0) return md_job_node_at(pc, pr->value);
    return NULL;
}

static void kinds_list(char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (const md_kind *const *k = md_kinds(); *k && used < len; k++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? "|" : "", (*k)->name);
}

static void parse_experiment(md_job_pctx *pc, yaml_node_t *n, md_exp_spec *e, int index)
{
    char where[64];
    snprintf(where, sizeof where, "experiments[%d]", index);
    e->line = (int)n->start_mark.line + 1;
    e->col = (int)n->start_mark.column + 1;
    if (n->type != YAML_MAPPING_NODE) {
        md_job_add_error(pc, n, "%s: expected a map with a 'kind' key, got %s", where, md_job_node_kind(n));
        return;
    }
    yaml_node_t *kn = map_get(pc, n, "kind");
    if (!kn) {
        md_job_add_error(pc, n, "key 'kind': required in %s", where);
        return;
    }
    e->impl = md_kind_find(md_job_node_text(kn));
    if (!e->impl) {
        char kinds[256], got[256];
        kinds_list(kinds, sizeof kinds);
        md_job_node_describe(kn, got, sizeof got);
        md_job_add_error(pc, kn, "key 'kind': expected one of %s, got %s", kinds, got);
        return;
    }
    const md_key *schemas[] = {MD_EXP_COMMON_KEYS, e->impl->keys, NULL};
    snprintf(where, sizeof where, "experiments[%d] (kind %s)", index, e->impl->name);
    parse_mapping(pc, n, schemas, NULL, where, &e->params);
    e->kind = strdup(e->impl->name);
    const char *name = md_params_str(&e->params, "name");
    e->name = strdup(name[0] ? name : e->impl->name);
    md_value *nv = (md_value *)md_params_find(&e->params, "name");
    if (nv && e->name && !name[0]) {
        free(nv->s);
        nv->s = strdup(e->name);
    }
}

/* Default output: <job dir>/<job file stem>.h5. */
static void default_output(md_job *job, md_params *top)
{
    md_value *v = (md_value *)md_params_find(top, "output");
    if (!v) return;
    if (v->s && v->s[0]) {
        char *p = md_job_resolve_path(job->dir, v->s);
        free(v->s);
        v->s = p;
        return;
    }
    const char *base = strrchr(job->source, '/');
    base = base ? base + 1 : job->source;
    char stem[256];
    snprintf(stem, sizeof stem, "%s", base);
    char *dot = strrchr(stem, '.');
    if (dot && dot != stem) *dot = '\0';
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s.h5", job->dir, stem);
    free(v->s);
    v->s = strdup(path);
}

/* Limits checked before libyaml sees the text: a job file is a page of
 * settings, and libyaml spends quadratic time on deep nesting (40 000
 * nested '[' took 23 s). */
#define JOB_MAX_BYTES (1u << 20)
#define JOB_MAX_DEPTH 64

/* The missing dataset files (check_path), each once at its key with the
 * experiments that name it: their own checks would only say it again. */
static void report_missing(md_job_pctx *pc, const md_job *job)
{
    for (int m = 0; m < pc->n_missing; m++) {
        char users[640] = "";
        for (int i = 0; i < job->n_exps; i++) {
            size_t used = strlen(users);
            if (job->exps[i].name && md_job_exp_uses_dataset(job, i, pc->missing[m].name))
                snprintf(users + used, sizeof users - used, "%s'%s'", used ? ", " : "; used by experiments ", job->exps[i].name);
        }
        char *path = md_job_resolve_path(pc->dir, md_job_node_text(pc->missing[m].at));
        pc->n_errors--; /* counted when it was found */
        md_job_add_error(pc, pc->missing[m].at,
                         "key 'datasets.%s': file '%s' does not exist (relative paths are relative to the job "
                         "file's folder%s)", pc->missing[m].name, path ? path : "?", users);
        free(path);
    }
    pc->n_missing = 0;
}

/* The "YAML syntax error" of the parser's last failed load. */
static void set_syntax_error(const yaml_parser_t *parser, const char *source, md_error *err)
{
    md_error_set(err, "%s:%d:%d: YAML syntax error: %s %s", source, (int)parser->problem_mark.line + 1,
                 (int)parser->problem_mark.column + 1, parser->problem ? parser->problem : "",
                 parser->context ? parser->context : "");
}

/* Loads the job file's one YAML document into pc->doc (*have_doc = 1 once it
 * is there: the caller deletes it) and deletes the parser. MD_ERR on a
 * syntax error or a second document. */
static int load_document(yaml_parser_t *parser, md_job_pctx *pc, const char *source, int *have_doc, md_error *err)
{
    if (!yaml_parser_load(parser, &pc->doc)) {
        set_syntax_error(parser, source, err);
        yaml_parser_delete(parser);
        return MD_ERR;
    }
    *have_doc = 1;
    yaml_document_t extra;
    if (!yaml_parser_load(parser, &extra)) {
        set_syntax_error(parser, source, err);
        yaml_parser_delete(parser);
        return MD_ERR;
    }
    yaml_node_t *second = yaml_document_get_root_node(&extra);
    int second_line = second ? (int)extra.start_mark.line + 1 : 0;
    yaml_document_delete(&extra);
    yaml_parser_delete(parser);
    if (second)
        return md_error_set(err, "%s:%d:1: a second YAML document: a job file holds one (remove the '---' and what "
                            "follows, or merge them)", source, second_line);
    return MD_OK;
}

/* The `experiments:` list into job->exps (names checked distinct). MD_ERR
 * when it is not a list or memory runs out; other problems are counted in pc. */
static int parse_experiments(md_job_pctx *pc, yaml_node_t *root, md_job *job)
{
    yaml_node_t *exps = map_get(pc, root, "experiments");
    if (!exps || exps->type != YAML_SEQUENCE_NODE) {
        md_job_add_error(pc, exps ? exps : root, "key 'experiments': expected a list of experiments, got %s",
                         exps ? md_job_node_kind(exps) : "nothing");
        return MD_ERR;
    }
    int n = (int)(exps->data.sequence.items.top - exps->data.sequence.items.start);
    job->exps = calloc((size_t)(n ? n : 1), sizeof *job->exps);
    if (!job->exps) return MD_ERR;
    job->n_exps = n;
    for (int i = 0; i < n; i++) {
        yaml_node_t *en = md_job_node_at(pc, exps->data.sequence.items.start[i]);
        parse_experiment(pc, en, &job->exps[i], i);
        for (int j = 0; j < i; j++)
            if (job->exps[i].name && job->exps[j].name && strcmp(job->exps[i].name, job->exps[j].name) == 0)
                md_job_add_error(pc, en,
                                 "key 'name': experiment name '%s' already used at line %d (set distinct names)",
                                 job->exps[i].name, job->exps[j].line);
    }
    if (n == 0) md_job_add_error(pc, exps, "key 'experiments': the list is empty");
    return MD_OK;
}

/* md_job_parse_string; keep_soft = 1 also returns the job in *out when its
 * only problems are missing files/folders (with MD_ERR and the messages). */
static int parse_text(const char *text, const char *source, const char *base_dir, int check_paths, int keep_soft,
                      md_job **out, md_error *err)
{
    *out = NULL;
    md_error_clear(err);
    md_error local;
    if (!err) err = &local;
    md_error_clear(err);
    md_job_pctx pc = {.source = source, .check_paths = check_paths, .err = err};
    if (md_job_yaml_check_depth(text, source, JOB_MAX_DEPTH, err) != MD_OK) return MD_ERR;
    md_job *job = calloc(1, sizeof *job);
    yaml_parser_t parser;
    int have_doc = 0;
    if (!job || !yaml_parser_initialize(&parser)) {
        free(job);
        return md_error_set(err, "%s: out of memory", source);
    }
    job->source = strdup(source);
    char cwd[PATH_MAX];
    job->dir = md_job_resolve_path(getcwd(cwd, sizeof cwd) ? cwd : ".", base_dir ? base_dir : ".");
    pc.dir = job->dir;

    yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    if (load_document(&parser, &pc, source, &have_doc, err) != MD_OK) goto fail;
    yaml_node_t *root = yaml_document_get_root_node(&pc.doc);
    if (!root) {
        md_error_set(err, "%s:1:1: the job file is empty (expected a map with 'experiments')", source);
        goto fail;
    }
    if (root->type != YAML_MAPPING_NODE) {
        md_job_add_error(&pc, root, "top level: expected a map, got %s", md_job_node_kind(root));
        goto fail;
    }
    static const char *const structural[] = {"runtime", "experiments", NULL};
    const md_key *top_schemas[] = {MD_JOB_TOP_KEYS, NULL};
    const md_key *rt_schemas[] = {MD_JOB_RUNTIME_KEYS, NULL};
    parse_mapping(&pc, root, top_schemas, structural, "the top level", &job->top);
    parse_mapping(&pc, map_get(&pc, root, "runtime"), rt_schemas, NULL, "runtime", &job->runtime);
    default_output(job, &job->top);

    if (parse_experiments(&pc, root, job) != MD_OK) goto fail;
    report_missing(&pc, job);
    if (pc.n_errors && !(keep_soft && pc.n_errors == pc.n_path_errors)) goto fail;
    yaml_document_delete(&pc.doc);
    *out = job;
    return pc.n_errors ? MD_ERR : MD_OK;

fail:
    report_missing(&pc, job);
    if (have_doc) yaml_document_delete(&pc.doc);
    md_job_free(job);
    return MD_ERR;
}

/* $MECHDIFF_BACKEND (cpu|cuda), when set, replaces runtime.backend: the Slurm
 * templates pick the hardware (slurm/gpu.sbatch exports cuda, slurm/cpu.sbatch
 * cpu), whatever the job file says. runtime: keys never change results. Rank 0
 * only (workers read the broadcast job, which carries the choice). */
static int apply_backend_env(md_job *job, md_error *err)
{
    const char *want = getenv("MECHDIFF_BACKEND");
    if (!want || !want[0]) return MD_OK;
    if (strcmp(want, "cpu") != 0 && strcmp(want, "cuda") != 0)
        return md_error_set(err, "environment variable MECHDIFF_BACKEND='%s': expected cpu or cuda (or unset it)",
                            want);
    for (int i = 0; i < job->runtime.n; i++) {
        md_value *v = &job->runtime.v[i];
        if (strcmp(v->key->name, "backend") != 0) continue;
        char *s = strdup(want);
        if (!s) return md_error_set(err, "out of memory");
        free(v->s);
        v->s = s;
    }
    return MD_OK;
}

int md_job_parse_string(const char *text, const char *source, const char *base_dir, int check_paths,
                        md_job **out, md_error *err)
{
    return parse_text(text, source, base_dir, check_paths, 0, out, err);
}

/* The text of a job file: a regular file or a pipe (`<(...)`), at most
 * JOB_MAX_BYTES (so /dev/zero or a huge file is an error, not an endless
 * read). Returns malloc'd text or NULL. */
static char *read_job_text(const char *path, md_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return md_error_set(err, "%s: cannot open job file: %s", path, strerror(errno)), NULL;
    if (S_ISDIR(st.st_mode))
        return md_error_set(err, "%s: is a folder; give the path of a job file (.yaml)", path), NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return md_error_set(err, "%s: cannot open job file: %s", path, strerror(errno)), NULL;
    char *text = malloc(JOB_MAX_BYTES + 2);
    size_t len = text ? fread(text, 1, JOB_MAX_BYTES + 1, f) : 0;
    int bad = text && ferror(f);
    fclose(f);
    if (!text) return md_error_set(err, "%s: out of memory", path), NULL;
    if (bad || len > JOB_MAX_BYTES || memchr(text, '\0', len)) {
        md_error_set(err, "%s: %s", path, bad ? "read error" : len > JOB_MAX_BYTES
                     ? "larger than the 1 MiB a job file may have" : "contains NUL bytes: not a YAML text file");
        free(text);
        return NULL;
    }
    text[len] = '\0';
    return text;
}

static int parse_file(const char *path, int keep_soft, md_job **out, md_error *err)
{
    *out = NULL;
    char *text = read_job_text(path, err);
    if (!text) return MD_ERR;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0'; else snprintf(dir, sizeof dir, ".");
    if (slash == dir) snprintf(dir, sizeof dir, "/");
    int rc = parse_text(text, path, dir, 1, keep_soft, out, err);
    free(text);
    if (*out && apply_backend_env(*out, err) != MD_OK) {
        md_job_free(*out);
        *out = NULL;
        rc = MD_ERR;
    }
    return rc;
}

int md_job_parse_file(const char *path, md_job **out, md_error *err)
{
    return parse_file(path, 0, out, err);
}

int md_job_check_file(const char *path, md_tokcache *toks, md_job **out, md_error *err)
{
    int rc = parse_file(path, 1, out, err);
    if (!*out) return MD_ERR;
    md_error more;
    if (md_job_validate(*out, toks, &more) != MD_OK) {
        size_t used = rc == MD_OK ? 0 : strlen(err->msg);
        if (rc == MD_OK) err->msg[0] = '\0';
        snprintf(err->msg + used, sizeof err->msg - used, "%s%s", used ? "\n" : "", more.msg);
        rc = MD_ERR;
    }
    return rc;
}

const char *md_job_output(const md_job *job)
{
    return md_params_str(&job->top, "output");
}

int md_job_set_output(md_job *job, const char *path, md_error *err)
{
    md_value *v = (md_value *)md_params_find(&job->top, "output");
    if (!v) return md_error_set(err, "%s: the job has no 'output' key", job->source ? job->source : "job");
    char *copy = strdup(path);
    if (!copy) return md_error_set(err, "out of memory");
    free(v->s);
    v->s = copy;
    return MD_OK;
}

void md_job_free(md_job *job)
{
    if (!job) return;
    for (int i = 0; i < job->n_exps; i++) {
        free(job->exps[i].kind);
        free(job->exps[i].name);
        md_params_free(&job->exps[i].params);
    }
    free(job->exps);
    md_params_free(&job->top);
    md_params_free(&job->runtime);
    free(job->source);
    free(job->dir);
    free(job);
}
