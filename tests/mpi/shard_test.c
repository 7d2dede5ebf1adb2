/* shard_test.c — a layer-sharded model (run under mpirun -np 3: rank 0 leads,
 * ranks 1 and 2 hold the later layers) gives the same numbers as the whole
 * model on one rank, bit for bit: full forward with every hook read, the
 * knowledge experiment's fork + per-sequence-start partial forward, and
 * generation with an addition and an ablation hook.
 *   mpirun -np 3 shard_test MODEL_DIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mechdiff/generate.h"
#include "mechdiff/shard.h"
#include "testutil.h"

static int run(md_model *m, int T, const int *ids, float *logits, float **reads, md_error *err)
{
    md_kvcache *kc = NULL;
    if (md_kvcache_create(&kc, m, 1, T, err) != MD_OK) return MD_ERR;
    md_hook hooks[MD_HOOK_COUNT];
    md_forward f;
    md_forward_init_tokens(&f, m, 1, T, ids);
    f.cache = kc;
    f.logits = MD_LOGITS_ALL;
    f.logits_out = logits;
    f.hooks = hooks;
    f.n_hooks = MD_HOOK_COUNT;
    for (int p = 0; p < MD_HOOK_COUNT; p++) {
        hooks[p] = (md_hook){.point = p, .op = MD_HOOK_READ, .layer = MD_ALL, .seq = MD_ALL, .pos = MD_ALL};
        hooks[p].out = reads[p] = calloc(md_hook_read_count(m, &f, &hooks[p]), sizeof(float));
    }
    int rc = md_model_forward(m, &f, err);
    md_kvcache_free(kc);
    return rc;
}

/* The knowledge pattern: clean run, fork at t, one sequence per start layer
 * with a patched state; logits of two ids. Returns [L][2]. */
static int patch_grid(md_model *m, int T, const int *ids, int t, float *out, md_error *err)
{
    int L = m->cfg.n_layers, d = m->cfg.d_model, np = T - t;
    md_kvcache *root = NULL, *fork = NULL;
    float *post = malloc((size_t)L * T * d * sizeof(float)), lg[2];
    md_hook rd = {.point = MD_HOOK_RESID_POST, .op = MD_HOOK_READ, .layer = MD_ALL, .seq = 0, .pos = MD_ALL, .out = post};
    int two[2] = {3, 4};
    md_forward f;
    md_forward_init_tokens(&f, m, 1, T, ids);
    f.logit_ids = two;
    f.n_logit_ids = 2;
    f.logits_out = lg;
    f.hooks = &rd;
    f.n_hooks = 1;
    if (md_kvcache_create(&root, m, 1, T, err) != MD_OK) return MD_ERR;
    f.cache = root;
    if (md_model_forward(m, &f, err) != MD_OK) return MD_ERR;
    if (md_kvcache_fork(&fork, root, t, L, np, err) != MD_OK) return MD_ERR;
    int *starts = malloc((size_t)L * sizeof(int));
    float *rin = malloc((size_t)L * np * d * sizeof(float));
    for (int l = 0; l < L; l++) {
        starts[l] = l + 1;
        memcpy(rin + (size_t)l * np * d, post + ((size_t)l * T + t) * d, (size_t)np * d * sizeof(float));
        rin[(size_t)l * np * d] += 1.0f; /* the "patch" */
    }
    md_forward p;
    md_forward_init(&p, m);
    p.n_seq = L;
    p.t0 = t;
    p.t1 = T;
    p.resid_in = rin;
    p.seq_layer_start = starts;
    p.cache = fork;
    p.logit_ids = two;
    p.n_logit_ids = 2;
    p.logits_out = out;
    int rc = md_model_forward(m, &p, err);
    md_kvcache_free(fork);
    md_kvcache_free(root);
    free(post);
    free(starts);
    free(rin);
    return rc;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    setvbuf(stdout, NULL, _IONBF, 0);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    md_error err = {0};
    if (argc < 2) {
        fprintf(stderr, "usage: mpirun -np N shard_test MODEL_DIR\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    MPI_Comm gc; /* the group's own communicator */
    MPI_Comm_dup(MPI_COMM_WORLD, &gc);
    if (rank > 0) {
        int rc = md_shard_serve(gc, &err);
        if (rc != MD_OK) fprintf(stderr, "rank %d: %s\n", rank, err.msg);
        MPI_Finalize();
        return rc == MD_OK ? 0 : 1;
    }
    md_model *local = NULL, *sharded = NULL;
    md_shard_group *g = NULL;
    md_model_options opt;
    md_model_options_init(&opt);
    opt.skip_tokenizer = 1;
    CHECK_MSG(md_model_load(&local, argv[1], &opt, &err) == MD_OK, "%s", err.msg);
    CHECK(md_shard_group_create(&g, gc, &err) == MD_OK);
    CHECK_MSG(md_shard_load(g, &sharded, argv[1], &opt, &err) == MD_OK, "%s", err.msg);
    if (!local || !sharded) MPI_Abort(MPI_COMM_WORLD, 1);
    printf("sharded over %d ranks: leader holds layers [%d, %d) of %d\n", size, sharded->layer_lo,
           sharded->layer_hi, sharded->cfg.n_layers);
    int T = 24, V = local->cfg.vocab_size;
    int ids[24];
    for (int i = 0; i < T; i++) ids[i] = (int)((i * 7919u + 13u) % (unsigned)V);

    /* 1. full forward, every hook read */
    float *la = malloc((size_t)T * V * sizeof(float)), *lb = malloc((size_t)T * V * sizeof(float));
    float *ra[MD_HOOK_COUNT], *rb[MD_HOOK_COUNT];
    CHECK(run(local, T, ids, la, ra, &err) == MD_OK);
    CHECK_MSG(run(sharded, T, ids, lb, rb, &err) == MD_OK, "%s", err.msg);
    CHECK(memcmp(la, lb, (size_t)T * V * sizeof(float)) == 0);
    md_forward tmp;
    md_forward_init(&tmp, local);
    tmp.n_seq = 1;
    tmp.t0 = 0;
    tmp.t1 = T;
    for (int p = 0; p < MD_HOOK_COUNT; p++) {
        md_hook h = {.point = p, .layer = MD_ALL, .seq = MD_ALL, .pos = MD_ALL};
        CHECK_MSG(memcmp(ra[p], rb[p], md_hook_read_count(local, &tmp, &h) * sizeof(float)) == 0, "hook %s",
                  md_hook_point_name(p));
        free(ra[p]);
        free(rb[p]);
    }
    /* 2. the patching pattern */
    int L = local->cfg.n_layers;
    float *pa = malloc((size_t)L * 2 * sizeof(float)), *pb = malloc((size_t)L * 2 * sizeof(float));
    CHECK(patch_grid(local, T, ids, T - 5, pa, &err) == MD_OK);
    CHECK_MSG(patch_grid(sharded, T, ids, T - 5, pb, &err) == MD_OK, "%s", err.msg);
    CHECK(memcmp(pa, pb, (size_t)L * 2 * sizeof(float)) == 0);
    /* 3. generation with hooks in the members' layers */
    float *dir = calloc((size_t)local->cfg.d_model, sizeof(float));
    dir[3] = 1.0f;
    md_hook hk[2] = {{.point = MD_HOOK_RESID_PRE, .op = MD_HOOK_ADD, .layer = L - 1, .vec = dir, .coef = 2.0f},
                     {.point = MD_HOOK_RESID_MID, .op = MD_HOOK_ABLATE, .layer = MD_ALL, .vec = dir}};
    const int *pp[2] = {ids, ids + 3};
    int len[2] = {10, 7};
    md_generation ga, gb;
    CHECK(md_generate_greedy(local, 2, pp, len, 6, hk, 2, &ga, &err) == MD_OK);
    CHECK_MSG(md_generate_greedy(sharded, 2, pp, len, 6, hk, 2, &gb, &err) == MD_OK, "%s", err.msg);
    for (int s = 0; s < 2; s++)
        CHECK(ga.out_len[s] == gb.out_len[s] &&
              memcmp(ga.out_ids[s], gb.out_ids[s], (size_t)ga.out_len[s] * sizeof(int)) == 0);
    md_generation_free(&ga);
    md_generation_free(&gb);
    /* 4. a member's error reaches the leader, naming the member */
    md_kvcache *big = NULL;
    int bad = md_kvcache_create(&big, sharded, 1, 1 << 30, &err);
    CHECK(bad == MD_ERR);
    md_kvcache_free(big);
    free(dir);
    free(la);
    free(lb);
    free(pa);
    free(pb);
    md_model_free(local);
    md_model_free(sharded);
    md_shard_group_close(g);
    printf("%d checks, %d failed\n", tu_checks, tu_failures);
    MPI_Finalize();
    return tu_failures ? 1 : 0;
}
