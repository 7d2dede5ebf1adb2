/* test_params.c — key lookups of md_params: every kind's key table resolves
 * through the typed getters with its defaults, and asking for a key the
 * schema does not have (a misspelt "max_pair" where "max_pairs" is meant) or
 * for the wrong type aborts instead of reading as 0. Typed options: every
 * key bound once into a struct of the kind's opts_size, bound once per job
 * by md_kind_bind_opts, and no kind binds its options itself (per call). */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mechdiff/experiment.h"
#include "mechdiff/schema.h"
#include "testutil.h"

/* md_params of a schema with every value zeroed (as the parser starts). */
static md_params params_of(const md_key *keys)
{
    int n = 0;
    while (keys[n].name) n++;
    md_params p = {.v = calloc((size_t)(n ? n : 1), sizeof(md_value)), .n = n};
    for (int i = 0; i < n; i++) p.v[i].key = &keys[i];
    return p;
}

/* 1 when fn(p, name) aborts in a child process. */
static int aborts(void (*fn)(const md_params *, const char *), const md_params *p, const char *name)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        fn(p, name);
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void get_int(const md_params *p, const char *n) { (void)md_params_int(p, n); }
static void get_str(const md_params *p, const char *n) { (void)md_params_str(p, n); }
static void get_float(const md_params *p, const char *n) { (void)md_params_float(p, n); }
static void get_count(const md_params *p, const char *n) { (void)md_params_count(p, n); }
static void get_map(const md_params *p, const char *n) { (void)md_params_map_get(p, n, "x"); }

/* Bytes of the options field a key of type t is bound to (schema.h). */
static size_t field_size(md_key_type t)
{
    switch (t) {
    case MD_KEY_INT: return sizeof(int64_t);
    case MD_KEY_FLOAT: return sizeof(double);
    case MD_KEY_BOOL: return sizeof(int);
    default: return sizeof(void *);
    }
}

/* 1 when the file at path contains s. */
static int file_has(const char *path, const char *s)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, s) != NULL;
}

/* Options are bound once, by md_kind_bind_opts (src/exp/registry.c) for
 * whoever calls a kind: no file under src/exp or src/runner binds them
 * itself (md_params_bind per call), and every kind's callbacks read
 * ctx->opts. Returns the files read. */
static int check_no_binding_per_call(void)
{
    const char *dirs[] = {"src/exp", "src/runner", "src/tools"};
    int files = 0;
    for (int d = 0; d < 3; d++) {
        DIR *dir = opendir(dirs[d]);
        CHECK_MSG(dir != NULL, "%s (the test runs in the source tree)", dirs[d]);
        if (!dir) continue;
        for (struct dirent *de; (de = readdir(dir));) {
            size_t n = strlen(de->d_name);
            if (n < 3 || (strcmp(de->d_name + n - 2, ".c") && strcmp(de->d_name + n - 2, ".h"))) continue;
            char path[512];
            snprintf(path, sizeof path, "%s/%s", dirs[d], de->d_name);
            files++;
            if (strcmp(path, "src/exp/registry.c") == 0) continue;
            CHECK_MSG(!file_has(path, "md_params_bind("), "%s binds options itself", path);
            CHECK_MSG(!file_has(path, "_get_opts("), "%s re-binds options per call", path);
        }
        closedir(dir);
    }
    return files;
}

int main(void)
{
    const md_kind *kn = md_kind_find("knowledge");
    CHECK(kn != NULL);
    if (!kn) TEST_MAIN_END();
    md_params p = params_of(kn->keys);
    CHECK(!aborts(get_int, &p, "max_pairs"));
    CHECK(aborts(get_int, &p, "max_pair"));      /* the misspelling of the issue */
    CHECK(aborts(get_str, &p, "max_pairs"));     /* an int key read as a string */
    CHECK(aborts(get_float, &p, "max_pairs"));
    CHECK(aborts(get_count, &p, "max_pairs"));
    free(p.v);
    /* every key of every kind answers its own type's getter and no other's */
    for (const md_kind *const *k = md_kinds(); *k; k++) {
        md_params q = params_of((*k)->keys);
        for (int i = 0; i < q.n; i++) {
            const md_key *key = q.v[i].key;
            void (*own)(const md_params *, const char *) = NULL;
            switch (key->type) {
            case MD_KEY_INT: case MD_KEY_BOOL: own = get_int; break;
            case MD_KEY_FLOAT: own = get_float; break;
            case MD_KEY_STRING: case MD_KEY_FILE: case MD_KEY_DIR: own = get_str; break;
            case MD_KEY_STRLIST: own = get_count; break;
            case MD_KEY_MAP: own = get_map; break;
            }
            CHECK_MSG(own && !aborts(own, &q, key->name), "kind %s key %s", (*k)->name, key->name);
            CHECK_MSG(aborts(own == get_float ? get_int : get_float, &q, key->name), "kind %s key %s",
                      (*k)->name, key->name);
        }
        CHECK_MSG(aborts(get_int, &q, "no_such_key"), "kind %s", (*k)->name);
        free(q.v);
    }
    /* typed options: a kind with an options table binds every key of its
     * schema exactly once and nothing else, and binding reads the values */
    int with_opts = 0;
    for (const md_kind *const *k = md_kinds(); *k; k++) {
        if (!(*k)->opts) continue;
        with_opts++;
        for (const md_key *key = (*k)->keys; key->name; key++) {
            int n = 0;
            for (const md_opt_bind *b = (*k)->opts; b->key; b++) n += strcmp(b->key, key->name) == 0;
            CHECK_MSG(n == 1, "kind %s: key %s bound %d times", (*k)->name, key->name, n);
        }
        for (const md_opt_bind *b = (*k)->opts; b->key; b++) {
            int n = 0;
            for (const md_key *key = (*k)->keys; key->name; key++) n += strcmp(b->key, key->name) == 0;
            CHECK_MSG(n == 1, "kind %s: binding %s names no key", (*k)->name, b->key);
        }
        md_params q = params_of((*k)->keys);
        for (int i = 0; i < q.n; i++) q.v[i].i = 1000 + i, q.v[i].f = 0.5 + i;
        unsigned char opts[4096] = {0};
        md_params_bind(&q, (*k)->opts, opts);
        for (const md_opt_bind *b = (*k)->opts; b->key; b++) {
            const md_value *v = md_params_find(&q, b->key);
            if (v->key->type == MD_KEY_INT) {
                int64_t x;
                memcpy(&x, opts + b->offset, sizeof x);
                CHECK_MSG(x == v->i, "kind %s: %s bound as %lld", (*k)->name, b->key, (long long)x);
            } else if (v->key->type == MD_KEY_FLOAT) {
                double x;
                memcpy(&x, opts + b->offset, sizeof x);
                CHECK_MSG(x == v->f, "kind %s: %s bound as %g", (*k)->name, b->key, x);
            }
        }
        free(q.v);
    }
    CHECK(with_opts >= 1);
    /* the options struct holds every binding, and md_kind_bind_opts fills
     * one per experiment exactly as md_params_bind does */
    for (const md_kind *const *k = md_kinds(); *k; k++) {
        CHECK_MSG(!(*k)->opts == !(*k)->opts_size, "kind %s: opts and opts_size go together", (*k)->name);
        if (!(*k)->opts) continue;
        for (const md_opt_bind *b = (*k)->opts; b->key; b++) {
            const md_key *key = (*k)->keys;
            while (key->name && strcmp(key->name, b->key)) key++;
            if (key->name)
                CHECK_MSG(b->offset + field_size(key->type) <= (*k)->opts_size, "kind %s: %s beyond opts_size %zu",
                          (*k)->name, b->key, (*k)->opts_size);
        }
        md_params q = params_of((*k)->keys);
        for (int i = 0; i < q.n; i++) q.v[i].i = 7 * i + 1, q.v[i].f = 0.25 * i;
        md_exp_spec specs[2] = {{.impl = *k, .params = q}, {.impl = *k, .params = q}};
        md_job job = {.exps = specs, .n_exps = 2};
        void **opts = NULL;
        md_error err;
        CHECK(md_kind_bind_opts(&job, &opts, &err) == MD_OK);
        unsigned char *want = calloc(1, (*k)->opts_size);
        md_params_bind(&q, (*k)->opts, want);
        for (int i = 0; opts && want && i < 2; i++) {
            CHECK_MSG(opts[i] && memcmp(opts[i], want, (*k)->opts_size) == 0, "kind %s: bound options differ",
                      (*k)->name);
            md_kind_ctx ctx = md_kind_ctx_of(&job, opts, i);
            CHECK(ctx.opts == opts[i] && ctx.exp == &specs[i] && ctx.exp_index == i);
        }
        free(want);
        md_kind_free_opts(&job, opts);
        free(q.v);
    }
    CHECK(check_no_binding_per_call() > 20);
    TEST_MAIN_END();
}
