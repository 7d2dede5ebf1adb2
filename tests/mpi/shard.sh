#!/usr/bin/env bash
# Layer-sharded models on CPU ranks give the same numbers as one rank:
#  1. the engine (tests/mpi/shard_test.c, 3 ranks: the leader holds 2 of the 4
#     layers of the shipped base model, each member 1; and 2 ranks on the
#     Gemma-2 and OLMo-2 goldens): full forward with every hook read, fork +
#     per-sequence-start patching, generation with hooks;
#  2. the runner: knowledge jobs (resid_post; mlp_out and heads, whose
#     batched hooks cross to the members) with runtime.shard_ranks: 2 on 5 ranks (the
#     coordinator + 2 groups of 2) equals the same job on 1 rank (h5diff), and
#     a rank count that does not fit the groups is a clear error.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
need_pair
mpirun --oversubscribe -np 3 "$BUILD/tests/shard_test" models/organism-base
# the post-norm families (Gemma-2, OLMo-2) split over 2 ranks (their goldens hold 2 layers)
for m in gemma2_f32 olmo2_bf16; do
  mpirun --oversubscribe -np 2 "$BUILD/tests/shard_test" "tests/golden/models/$m"
done

job() { # $1 = file, $2 = shard_ranks
  cat > "$1" <<YAML
name: shard-test
$(job_pair cities)
runtime: {shard_ranks: $2, hash_weights: false}
experiments:
  - {kind: knowledge, datasets: [cities], cross: [all], max_pairs: 4}
  - {kind: knowledge, name: kn_mlp_out, datasets: [cities], max_pairs: 3, n_toks: 3, hook: mlp_out}
  - {kind: knowledge, name: kn_heads, datasets: [cities], max_pairs: 3, n_toks: 3, component: head}
YAML
}
job "$T/one.yaml" 1
job "$T/sharded.yaml" 2
"$MD" run "$T/one.yaml" -o "$T/one.h5"
mpirun --oversubscribe -np 5 "$MD" run "$T/sharded.yaml" -o "$T/sharded.h5"
for g in knowledge kn_mlp_out kn_heads; do h5diff "$T/one.h5" "$T/sharded.h5" /$g /$g; done
echo "sharded (2 groups of 2 ranks) == 1 rank"
if mpirun --oversubscribe -np 4 "$MD" run "$T/sharded.yaml" -o "$T/bad.h5" 2> "$T/err"; then
  echo "FAIL: 4 ranks accepted with shard_ranks 2"; exit 1
fi
grep -q "shard_ranks is 2" "$T/err" || { cat "$T/err"; exit 1; }
echo "shard: ok"
