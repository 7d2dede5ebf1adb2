/* cmd_forward.c — `mechdiff forward DIR (--prompt|--chat|--ids) [--hooks ...] -o OUT.h5`:
 * one forward pass written in the convention of a job's results file
 * (include/mechdiff/h5out.h): named dimensions as HDF5 dimension scales,
 * units and description on every dataset, the prompt's tokens as strings
 * on the position axis, and /provenance (model hashes, numeric setup,
 * version, command). Layout:
 *   /position [position] i32 scale, /layer, /vocab, /hidden, /mlp  scales
 *   /token [position] str, /token_ids [position] i32
 *   /logits [position, vocab] f32
 *   /acts/<hook> [layer, position, hidden|mlp] f32
 *   /provenance (attrs), /provenance/models/model (attrs)
 * Written to OUT.tmp, then renamed. */
#include <hdf5.h>
#include <hdf5_hl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mechdiff/forward.h"
#include "mechdiff/h5out.h"
#include "mechdiff/outlock.h"
#include "mechdiff/provenance.h"
#include "mechdiff/version.h"
#include "tools/cmds.h"
#include "tools/prompt_args.h"

enum { SC_POSITION, SC_LAYER, SC_VOCAB, SC_HIDDEN, SC_MLP, SC_COUNT };
static const char *const SCALE_NAMES[SC_COUNT] = {"position", "layer", "vocab", "hidden", "mlp"};

static void usage(FILE *f)
{
    fprintf(f, "usage: mechdiff forward DIR (--prompt TEXT | --chat TEXT | --ids 1,2,3)\n"
               "                        [--hooks resid_pre,attn_out,resid_mid,mlp_out,resid_post,mlp_post]\n"
               "                        [--chat-template NAME|FORMAT] -o OUT.h5\n\n"
               "Runs one forward pass and writes, as a job's results file does (named dimensions,\n"
               "units, descriptions, provenance): /logits [position, vocab], /token_ids and /token\n"
               "(the tokens as text) [position] and, per hook, /acts/<hook> [layer, position, hidden]\n"
               "(mlp_post: [layer, position, mlp]), float32. xarray: xr.open_dataset(OUT, engine=\"h5netcdf\").\n"
               "--chat-template (with --chat): base, llama3, llama2, mistral, tulu, model (its own,\n"
               "the default), or a format string with {instruction} (\\n is a newline).\n");
}

static int attr_str(hid_t obj, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1), s = H5Screate(H5S_SCALAR);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = a < 0 ? -1 : H5Awrite(a, t, &value);
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
    return r < 0 ? -1 : 0;
}

/* A 1-D int32 dimension scale 0..n-1 named `name` at the file's root. */
static hid_t make_scale(hid_t file, const char *name, hsize_t n)
{
    int *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v) return -1;
    for (hsize_t i = 0; i < n; i++) v[i] = (int)i;
    hid_t s = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(file, name, H5T_NATIVE_INT, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int ok = d >= 0 && H5Dwrite(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0 &&
             H5DSset_scale(d, name) >= 0 && attr_str(d, "description", "index along this dimension") == 0;
    free(v);
    H5Sclose(s);
    if (!ok && d >= 0) {
        H5Dclose(d);
        d = -1;
    }
    return d;
}

/* Writes a dataset whose axes are the given scales, with units and description. */
static int write_data(hid_t loc, const char *name, hid_t type, int rank, const hid_t *scales, const void *data,
                      const char *units, const char *description)
{
    hsize_t dims[3];
    for (int i = 0; i < rank; i++) {
        hid_t sp = H5Dget_space(scales[i]);
        H5Sget_simple_extent_dims(sp, &dims[i], NULL);
        H5Sclose(sp);
    }
    hid_t s = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(loc, name, type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int bad = d < 0 || H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0;
    for (int i = 0; !bad && i < rank; i++) {
        char label[32];
        H5Iget_name(scales[i], label, sizeof label);
        bad |= H5DSattach_scale(d, scales[i], (unsigned)i) < 0 || H5DSset_label(d, (unsigned)i, label + 1) < 0;
    }
    if (!bad) bad |= attr_str(d, "units", units) | attr_str(d, "description", description);
    if (d >= 0) H5Dclose(d);
    H5Sclose(s);
    return bad ? -1 : 0;
}

/* The token strings of ids (one per position); bytes that are not valid
 * UTF-8 on their own (a byte-level piece of a longer character) as \xNN. */
static char **token_texts(const md_tokenizer *tok, const int *ids, size_t n, md_error *err)
{
    char **out = calloc(n ? n : 1, sizeof *out);
    for (size_t i = 0; out && i < n; i++) {
        char *raw = NULL;
        size_t len = 0;
        if (!tok) { /* a checkpoint without tokenizer files (make-model): the id stands in */
            char idtxt[32];
            snprintf(idtxt, sizeof idtxt, "#%d", ids[i]);
            raw = strdup(idtxt);
            len = raw ? strlen(raw) : 0;
        } else if (md_tokenizer_piece_text(tok, ids[i], &raw, &len, err) != MD_OK) {
            raw = NULL;
        }
        char *t = malloc(4 * len + 1);
        size_t k = 0;
        for (size_t j = 0; t && raw && j < len;) {
            unsigned c = (unsigned char)raw[j];
            int need = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
            int ok = need > 0 && j + (size_t)need <= len && c != 0;
            for (int q = 1; ok && q < need; q++) ok = ((unsigned char)raw[j + (size_t)q] >> 6) == 2;
            if (ok) {
                memcpy(t + k, raw + j, (size_t)need);
                k += (size_t)need;
                j += (size_t)need;
            } else {
                k += (size_t)sprintf(t + k, "\\x%02x", c);
                j++;
            }
        }
        if (t) t[k] = '\0';
        free(raw);
        out[i] = t ? t : strdup("?");
    }
    return out;
}

/* /provenance: version, command, host, time, numeric setup and the model's hashes. */
static int write_provenance(hid_t file, const char *dir, int argc, char **argv, md_error *err)
{
    md_model_prov *m = calloc(1, sizeof *m); /* owned: md_prov_free */
    md_prov_numerics num;
    if (!m) return md_error_set(err, "out of memory");
    snprintf(m->role, sizeof m->role, "model");
    snprintf(m->dir, sizeof m->dir, "%s", dir);
    int rc = md_prov_hash_model(m, 0, err);
    if (rc == MD_OK) rc = md_prov_resolve_numerics_for("cpu", NULL, NULL, &num, err);
    if (rc != MD_OK) {
        md_prov_free(m, 1, NULL);
        return MD_ERR;
    }
    char cmd[8192] = "mechdiff", when[64], host[256] = "";
    for (int i = 0; i < argc; i++) {
        size_t used = strlen(cmd);
        snprintf(cmd + used, sizeof cmd - used, " %s", argv[i]);
    }
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    gethostname(host, sizeof host - 1);
    hid_t g = H5Gcreate2(file, "provenance", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t mg = g >= 0 ? H5Gcreate2(g, "models", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    hid_t one = mg >= 0 ? H5Gcreate2(mg, "model", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    int bad = one < 0;
    if (!bad) {
        bad |= attr_str(g, "command", cmd) | attr_str(g, "mechdiff_version", MECHDIFF_VERSION) |
               attr_str(g, "git_revision", MECHDIFF_GIT_REV) | attr_str(g, "created", when) |
               attr_str(g, "hostname", host) | md_prov_write_numerics(g, &num);
        bad |= md_prov_write_model(one, m);
    }
    if (one >= 0) H5Gclose(one);
    if (mg >= 0) H5Gclose(mg);
    if (g >= 0) H5Gclose(g);
    md_prov_free_numerics(&num);
    md_prov_free(m, 1, NULL);
    return bad ? md_error_set(err, "cannot write /provenance") : MD_OK;
}

/* Everything but the provenance: scales, tokens, logits, activations. */
static int write_results(hid_t file, const md_model *m, const int *ids, size_t n, const float *logits,
                         const md_hook *hooks, int n_hooks, md_error *err)
{
    hid_t sc[SC_COUNT];
    const hsize_t len[SC_COUNT] = {n, (hsize_t)m->cfg.n_layers, (hsize_t)m->cfg.vocab_size,
                                   (hsize_t)md_model_hook_width(m, MD_HOOK_RESID_POST),
                                   (hsize_t)md_model_hook_width(m, MD_HOOK_MLP_POST)};
    int bad = attr_str(file, "title", "mechdiff forward pass") | attr_str(file, "mechdiff_version", MECHDIFF_VERSION) |
              attr_str(file, "provenance", "see /provenance");
    for (int i = 0; i < SC_COUNT; i++) {
        sc[i] = make_scale(file, SCALE_NAMES[i], len[i]);
        bad |= sc[i] < 0;
    }
    char **texts = bad ? NULL : token_texts(m->tok, ids, n, err);
    if (texts) {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5T_CSET_UTF8);
        bad |= write_data(file, "token", t, 1, &sc[SC_POSITION], texts, "",
                          "the token at each position as text (bytes that are not UTF-8 alone as \\xNN)");
        H5Tclose(t);
        for (size_t i = 0; i < n; i++) free(texts[i]);
        free(texts);
    } else {
        bad = 1;
    }
    bad |= write_data(file, "token_ids", H5T_NATIVE_INT, 1, &sc[SC_POSITION], ids, "", "token id at each position");
    hid_t lg[2] = {sc[SC_POSITION], sc[SC_VOCAB]};
    bad |= write_data(file, "logits", H5T_NATIVE_FLOAT, 2, lg, logits, "logit",
                      "next-token logits at each position (before softmax)");
    if (n_hooks) {
        hid_t g = H5Gcreate2(file, "acts", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        for (int i = 0; g >= 0 && i < n_hooks; i++) {
            int mlp = hooks[i].point == MD_HOOK_MLP_POST;
            hid_t ax[3] = {sc[SC_LAYER], sc[SC_POSITION], sc[mlp ? SC_MLP : SC_HIDDEN]};
            char desc[160];
            snprintf(desc, sizeof desc, "activation at hook point %s of every layer and position (TransformerLens "
                                        "names; docs/methods.md#models)", md_hook_point_name(hooks[i].point));
            bad |= write_data(g, md_hook_point_name(hooks[i].point), H5T_NATIVE_FLOAT, 3, ax, hooks[i].out,
                              "activation", desc);
        }
        bad |= g < 0;
        if (g >= 0) H5Gclose(g);
    }
    for (int i = 0; i < SC_COUNT; i++)
        if (sc[i] >= 0) H5Dclose(sc[i]);
    return bad ? md_error_set(err, "writing the results datasets failed") : MD_OK;
}

static int parse_hooks(const char *arg, md_hook *hooks, int *n_hooks, md_error *err)
{
    char *list = strdup(arg); /* owned */
    if (!list) return md_error_set(err, "out of memory");
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        int p = md_hook_point_parse(tok), seen = 0;
        if (p == MD_HOOK_Z || p == MD_HOOK_PATTERN) p = -1; /* per-head points: [L][P][d] layout only here */
        for (int i = 0; p >= 0 && i < *n_hooks; i++) seen |= (int)hooks[i].point == p;
        if (p < 0 || seen) {
            md_error_set(err, "--hooks: %s hook point '%s' (known: resid_pre, attn_out, resid_mid, mlp_out, "
                              "resid_post, mlp_post)", p < 0 ? "unknown" : "repeated", tok);
            free(list);
            return MD_ERR;
        }
        hooks[(*n_hooks)++] = (md_hook){.point = p, .op = MD_HOOK_READ, .layer = MD_ALL, .seq = MD_ALL, .pos = MD_ALL};
    }
    free(list);
    return MD_OK;
}

/* 0, or 2 (what is wrong and the usage printed) for a bad command line. */
static int parse_args(int argc, char **argv, prompt_args *pa, const char **dir, const char **out,
                      const char **hooks_arg)
{
    for (int i = 1; i < argc; i++) {
        int r = prompt_args_parse(pa, argc, argv, &i);
        if (r < 0) return cmd_usage_error("forward", usage, "%s needs a value", argv[i]);
        if (r) continue;
        const char **slot = strcmp(argv[i], "-o") == 0 ? out : strcmp(argv[i], "--hooks") == 0 ? hooks_arg : NULL;
        if (slot && i + 1 >= argc) return cmd_usage_error("forward", usage, "%s needs a value", argv[i]);
        if (slot) *slot = argv[++i];
        else if (argv[i][0] == '-') return cmd_usage_error("forward", usage, "unknown option '%s'", argv[i]);
        else if (*dir)
            return cmd_usage_error("forward", usage, "unexpected argument '%s' (one model folder; quote TEXT as one "
                                   "argument)", argv[i]);
        else *dir = argv[i];
    }
    if (!*dir) return cmd_usage_error("forward", usage, "no model folder given");
    if (!*out) return cmd_usage_error("forward", usage, "no output file given: -o OUT.h5");
    const char *bad = prompt_args_check(pa);
    return bad ? cmd_usage_error("forward", usage, "%s", bad) : 0;
}

/* What one forward command holds (the pointers owned; freed at the end of
 * cmd_forward). */
typedef struct fwd_state {
    md_model *m;
    md_kvcache *kc;
    int *ids;                     /* [n] the prompt's tokens */
    size_t n;
    float *logits;                /* [n][vocab] */
    md_hook hooks[MD_HOOK_COUNT]; /* the --hooks read points, each with its buffer .out */
    int n_hooks;
} fwd_state;

/* Allocates the hook buffers, the logits and the KV cache and runs the
 * forward pass of s->ids through s->m. */
static int fwd_run(fwd_state *s, md_error *err)
{
    md_forward f;
    md_forward_init_tokens(&f, s->m, 1, (int)s->n, s->ids);
    f.logits = MD_LOGITS_ALL;
    f.hooks = s->hooks;
    f.n_hooks = s->n_hooks;
    for (int i = 0; i < s->n_hooks; i++) {
        s->hooks[i].out = malloc(md_hook_read_count(s->m, &f, &s->hooks[i]) * sizeof(float));
        if (!s->hooks[i].out) return md_error_set(err, "out of memory for hook buffers");
    }
    s->logits = malloc(s->n * (size_t)s->m->cfg.vocab_size * sizeof(float));
    if (!s->logits) return md_error_set(err, "out of memory for logits");
    f.logits_out = s->logits;
    if (md_kvcache_create(&s->kc, s->m, 1, (int)s->n, err) != MD_OK) return MD_ERR;
    f.cache = s->kc;
    return md_model_forward(s->m, &f, err);
}

/* Writes the results and provenance into tmp and renames it to real (out
 * names it in the message). *file: tmp's handle, -1 once closed; on MD_ERR
 * the caller closes and removes it when it is still open. */
static int fwd_write(const fwd_state *s, hid_t *file, const char *tmp, const char *real, const char *out,
                     const char *dir, int argc, char **argv, md_error *err)
{
    *file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (*file < 0) return md_error_set(err, "cannot create %s (is the folder writable?)", tmp);
    if (write_results(*file, s->m, s->ids, s->n, s->logits, s->hooks, s->n_hooks, err) != MD_OK ||
        write_provenance(*file, dir, argc, argv, err) != MD_OK) {
        md_error_prefix(err, "%s", tmp);
        return MD_ERR;
    }
    int bad = H5Fclose(*file) < 0;
    *file = -1;
    if (bad || rename(tmp, real) != 0) {
        md_error_set(err, "writing %s failed", out);
        remove(tmp);
        return MD_ERR;
    }
    return MD_OK;
}

int cmd_forward(int argc, char **argv)
{
    if (cmd_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    prompt_args pa = {0};
    const char *dir = NULL, *out = NULL, *hooks_arg = NULL;
    if (parse_args(argc, argv, &pa, &dir, &out, &hooks_arg) != 0) return 2;
    md_error err = {0};
    fwd_state s = {0};
    char tmp[PATH_MAX + 8], real[PATH_MAX];
    hid_t file = -1;
    int rc = 1;
    char snap[4096];
    if (hooks_arg && parse_hooks(hooks_arg, s.hooks, &s.n_hooks, &err) != MD_OK)
        return cmd_usage_error("forward", usage, "%s", err.msg);
    if (cmd_model_dir("forward", dir, 1, snap, sizeof snap)) return 1;
    /* the output as run takes it (parent folders created, a folder refused, a link followed), before the model loads */
    if (md_outlock_resolve(out, real, sizeof real, &err) != MD_OK) goto fail;
    if (md_model_load(&s.m, snap, NULL, &err) != MD_OK) goto fail;
    if (prompt_args_tokens(&pa, s.m, &s.ids, &s.n, &err) != MD_OK) goto fail;
    if (fwd_run(&s, &err) != MD_OK) goto fail;
    snprintf(tmp, sizeof tmp, "%s.tmp", real);
    if (fwd_write(&s, &file, tmp, real, out, dir, argc, argv, &err) != MD_OK) goto fail;
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "mechdiff forward: %s\n", err.msg);
    if (file >= 0) {
        H5Fclose(file);
        remove(tmp);
    }
done:
    for (int i = 0; i < s.n_hooks; i++) free(s.hooks[i].out);
    free(s.logits);
    free(s.ids);
    md_kvcache_free(s.kc);
    md_model_free(s.m);
    return rc;
}
