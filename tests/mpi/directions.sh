#!/usr/bin/env bash
# refusal (and, once it lands, truth) directions on 1 and 3 MPI ranks are
# bit-identical: h5diff of every dataset of /refusal (directions, cosine,
# activations, generations, scores). Runs on two tiny random-weight Llama
# checkpoints made here (vocab of the organism tokenizer), so it needs no
# trained model; what it checks is the runner/unit design, not the science.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
command -v mpirun >/dev/null || { echo "SKIP: no mpirun"; exit 77; }
TOK=$ROOT/models/organism/tokenizer/tokenizer.json
[ -f "$TOK" ] || { echo "SKIP: $TOK is not there"; exit 77; }
tiny_model "$WORK/base" 1
tiny_model "$WORK/instruct" 2
cat > "$WORK/job.yaml" <<YAML
name: directions-test
models: {base: $WORK/base, instruct: $WORK/instruct}
datasets: {harmful: $ROOT/data/harmful.csv, harmless: $ROOT/data/harmless.csv}
experiments:
  - kind: refusal
    n_train: 12
    n_test: 6
    batch: 5
    layer: 1
    positions: {base: -2, instruct: -1}
    templates: {instruct: tulu}
    coefficients: {base: 4, instruct: 8}
    max_new_tokens: 4
YAML
"$MECHDIFF" validate "$WORK/job.yaml"
"$MECHDIFF" run "$WORK/job.yaml" -o "$WORK/r1.h5"
$MPIRUN -np 3 "$MECHDIFF" run "$WORK/job.yaml" -o "$WORK/r3.h5"
for p in direction mean_diff cosine refusal_score acts/base/harmful acts/instruct/harmless \
         gen/harmful/instruct/ablate_base/text gen/harmless/base/add_instruct/refused; do
  h5diff "$WORK/r1.h5" "$WORK/r3.h5" "/refusal/$p" "/refusal/$p" || fail "/refusal/$p differs between 1 and 3 ranks"
done
same_results "$WORK/r1.h5" "$WORK/r3.h5" || fail "results differ between 1 and 3 ranks"
/usr/bin/python3 - "$WORK/r1.h5" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")["refusal"]
d = f["direction"][...]
assert d.shape[0] == 2 and np.allclose(np.linalg.norm(d, axis=1), 1), d.shape
c = f["cosine"][...]
assert np.allclose(np.diag(c), 1) and np.allclose(c, c.T), c
s = f["refusal_score"][...]
assert s.shape == (2, 5, 2) and np.isnan(s[:, 3:, 0]).all() and not np.isnan(s[:, :3, :]).any(), s
t = f["gen/harmful/base/none/text"][...]
assert len(t) == 6, t
print("directions: cosine base/instruct %.3f, texts e.g. %r" % (c[0, 1], t[0]))
PY
/usr/bin/python3 "$ROOT/analysis/refusal.py" "$WORK/r1.h5" -o "$WORK/an" > /dev/null && [ -s "$WORK/an/refusal_scores.png" ] || fail "analysis/refusal.py"
echo "directions: 1 rank == 3 ranks"
