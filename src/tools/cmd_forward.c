/* cmd_forward.c — `mechdiff forward DIR (--prompt|--chat|--ids) [--hooks ...] -o OUT.h5`:
 * one forward pass; /logits [position, vocab], /acts/<hook> [layer, position,
 * width] (float32) and /token_ids, written to OUT.tmp then renamed. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/hub.h"
#include "mechdiff/forward.h"
#include "mechdiff/version.h"
#include "tools/cmds.h"
#include "tools/prompt_args.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: mechdiff forward DIR (--prompt TEXT | --chat TEXT | --ids 1,2,3)\n"
               "                        [--hooks resid_pre,attn_out,resid_mid,mlp_out,resid_post,mlp_post]\n"
               "                        [--chat-template NAME|FORMAT] -o OUT.h5\n\n"
               "Runs one forward pass and writes /logits [position, vocab], /token_ids [position]\n"
               "and, per hook, /acts/<hook> [layer, position, width] as float32 HDF5.\n");
}

static int write_attr_str(hid_t obj, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1), s = H5Screate(H5S_SCALAR);
    H5Tset_size(t, strlen(value) + 1);
    hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = a < 0 ? -1 : H5Awrite(a, t, value);
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
    return r < 0 ? -1 : 0;
}

static int write_dataset(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims,
                         const void *data, const char *dim_names)
{
    hid_t s = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(loc, name, type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = d < 0 ? -1 : H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (d >= 0 && r >= 0) r = write_attr_str(d, "dims", dim_names);
    if (d >= 0) H5Dclose(d);
    H5Sclose(s);
    return r < 0 ? -1 : 0;
}

int cmd_forward(int argc, char **argv)
{
    if (cmd_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    prompt_args pa = {0};
    const char *dir = NULL, *out = NULL, *hooks_arg = NULL;
    for (int i = 1; i < argc; i++) {
        int r = prompt_args_parse(&pa, argc, argv, &i);
        if (r < 0) {
            fprintf(stderr, "mechdiff forward: %s needs a value\n", argv[i]);
            return 2;
        }
        if (r) continue;
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) out = argv[++i];
        else if (strcmp(argv[i], "--hooks") == 0 && i + 1 < argc) hooks_arg = argv[++i];
        else if (argv[i][0] != '-' && !dir) dir = argv[i];
        else {
            fprintf(stderr, "mechdiff forward: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!dir || !out) {
        usage(stderr);
        return 2;
    }
    md_error err = {0};
    md_model *m = NULL;
    md_kvcache *kc = NULL;
    int *ids = NULL;
    size_t n = 0;
    float *logits = NULL;
    md_hook hooks[MD_HOOK_COUNT];
    int n_hooks = 0;
    memset(hooks, 0, sizeof hooks);
    char tmp[4096];
    hid_t file = -1;
    int rc = 1;
    char snap[4096];
    if (md_hub_resolve_dir(dir, snap, sizeof snap, &err) != MD_OK || md_model_load(&m, snap, NULL, &err) != MD_OK)
        goto fail;
    if (prompt_args_tokens(&pa, m, &ids, &n, &err) != MD_OK) goto fail;
    if (hooks_arg) {
        char *list = strdup(hooks_arg);
        for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
            int p = md_hook_point_parse(tok);
            if (p < 0) {
                md_error_set(&err, "--hooks: unknown hook point '%s' (known: resid_pre, attn_out, resid_mid, "
                                   "mlp_out, resid_post, mlp_post)", tok);
                free(list);
                goto fail;
            }
            md_hook *h = &hooks[n_hooks++];
            h->point = p;
            h->op = MD_HOOK_READ;
            h->layer = MD_ALL;
            h->seq = MD_ALL;
            h->pos = MD_ALL;
        }
        free(list);
    }
    md_forward f;
    md_forward_init_tokens(&f, m, 1, (int)n, ids);
    f.logits = MD_LOGITS_ALL;
    f.hooks = hooks;
    f.n_hooks = n_hooks;
    for (int i = 0; i < n_hooks; i++) {
        hooks[i].out = malloc(md_hook_read_count(m, &f, &hooks[i]) * sizeof(float));
        if (!hooks[i].out) {
            md_error_set(&err, "out of memory for hook buffers");
            goto fail;
        }
    }
    logits = malloc(n * (size_t)m->cfg.vocab_size * sizeof(float));
    if (!logits) {
        md_error_set(&err, "out of memory for logits");
        goto fail;
    }
    f.logits_out = logits;
    if (md_kvcache_create(&kc, m, 1, (int)n, &err) != MD_OK) goto fail;
    f.cache = kc;
    if (md_model_forward(m, &f, &err) != MD_OK) goto fail;

    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0) {
        md_error_set(&err, "cannot create %s (is the folder writable?)", tmp);
        goto fail;
    }
    hsize_t dl[2] = {n, (hsize_t)m->cfg.vocab_size};
    int bad = write_dataset(file, "logits", H5T_NATIVE_FLOAT, 2, dl, logits, "position,vocab");
    hsize_t di[1] = {n};
    bad |= write_dataset(file, "token_ids", H5T_NATIVE_INT, 1, di, ids, "position");
    bad |= write_attr_str(file, "model", dir);
    bad |= write_attr_str(file, "mechdiff_version", MECHDIFF_VERSION " (" MECHDIFF_GIT_REV ")");
    if (n_hooks) {
        hid_t g = H5Gcreate2(file, "acts", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        for (int i = 0; i < n_hooks; i++) {
            hsize_t da[3] = {(hsize_t)m->cfg.n_layers, n, (hsize_t)md_model_hook_width(m, hooks[i].point)};
            bad |= write_dataset(g, md_hook_point_name(hooks[i].point), H5T_NATIVE_FLOAT, 3, da, hooks[i].out,
                                 "layer,position,width");
        }
        H5Gclose(g);
    }
    if (H5Fclose(file) < 0) bad = 1;
    file = -1;
    if (bad || rename(tmp, out) != 0) {
        md_error_set(&err, "writing %s failed", out);
        remove(tmp);
        goto fail;
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "mechdiff forward: %s\n", err.msg);
    if (file >= 0) {
        H5Fclose(file);
        remove(tmp);
    }
done:
    for (int i = 0; i < n_hooks; i++) free(hooks[i].out);
    free(logits);
    free(ids);
    md_kvcache_free(kc);
    md_model_free(m);
    return rc;
}
