#!/usr/bin/env bash
# truth kind end to end: a small truth job (train on two datasets, test on
# cities) runs on 1 and 3 MPI ranks with bit-identical /truth datasets; the
# transfer table has every source x target cell in [0, 1]; PD / IE are
# finite; two random control directions are unit vectors whose IE matches
# the stored probabilities; an intervention with coefficient 0 (directions
# and controls) equals the clean run; the
# probe's train accuracy and the accuracy table agree with a numpy
# recomputation from the stored activations; analysis/truth.py writes its
# tables and plot. Runs on the organism pair when models/organism-base and
# -instruct exist, else on two tiny random-weight Llama checkpoints with the
# organism tokenizer (what it checks is then the runner/unit design and the
# math, not the science).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
command -v mpirun >/dev/null || { echo "SKIP: no mpirun"; exit 77; }
TOK=$ROOT/models/organism/tokenizer/tokenizer.json
if [ -f "$ROOT/models/organism-base/config.json" ] && [ -f "$ROOT/models/organism-instruct/config.json" ]; then
  BASE=$ROOT/models/organism-base INST=$ROOT/models/organism-instruct LAYERS=""
  echo "truth: on the organism pair"
else
  [ -f "$TOK" ] || { echo "SKIP: neither the organism models nor $TOK are there"; exit 77; }
  tiny_model "$WORK/base" 1
  tiny_model "$WORK/instruct" 2
  BASE=$WORK/base INST=$WORK/instruct LAYERS="layer: 1
    intervention_layers: 0-1"
fi
job() { # $1 file, $2 coefficient
  cat > "$1" <<YAML
name: truth-test
models: {base: $BASE, instruct: $INST}
datasets: {cities: $ROOT/data/cities.csv, sp_en_trans: $ROOT/data/sp_en_trans.csv,
           animal_class: $ROOT/data/animal_class.csv}
experiments:
  - kind: truth
    train_datasets: [sp_en_trans, animal_class]
    test_datasets: [cities]
    max_statements: 30
    batch: 7
    coefficient: $2
    control_directions: 2
    $LAYERS
YAML
}
job "$WORK/job.yaml" 1
job "$WORK/zero.yaml" 0
"$MECHDIFF" validate "$WORK/job.yaml"
"$MECHDIFF" run "$WORK/job.yaml" -o "$WORK/r1.h5"
$MPIRUN -np 3 "$MECHDIFF" run "$WORK/job.yaml" -o "$WORK/r3.h5"
for p in direction/base direction/instruct probe/base cosine accuracy train_accuracy acts/instruct/cities \
         interv/cities/p_true interv/cities/p_false pd ie ie_control control_directions fewshot_accuracy; do
  h5diff "$WORK/r1.h5" "$WORK/r3.h5" "/truth/$p" "/truth/$p" || fail "/truth/$p differs between 1 and 3 ranks"
done
same_results "$WORK/r1.h5" "$WORK/r3.h5" || fail "results differ between 1 and 3 ranks"
"$MECHDIFF" run "$WORK/zero.yaml" -o "$WORK/z.h5"
/usr/bin/python3 - "$WORK/r1.h5" "$WORK/z.h5" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")["truth"]
z = h5py.File(sys.argv[2], "r")["truth"]
acc = f["accuracy"][...]
assert acc.shape == (2, 2, 1) and np.isfinite(acc).all() and (acc >= 0).all() and (acc <= 1).all(), acc
ie, pd = f["ie"][...], f["pd"][...]
assert ie.shape == (2, 2, 1, 3) and np.isfinite(ie).all(), ie
assert pd.shape == (2, 1, 5, 2) and np.isfinite(pd).all(), pd  # clean, 2 directions, 2 controls
assert np.allclose(ie[..., 2], ie[..., :2].mean(-1))
# recompute direction, probe accuracy and transfer table from the stored activations
train = ["sp_en_trans", "animal_class"]
def centred(m, ds):
    x = f[f"acts/{m}/{ds}"][...].astype(np.float64)
    return x - x.mean(0)
for a, m in enumerate(["base", "instruct"]):
    x = np.concatenate([centred(m, ds) for ds in train])
    y = np.concatenate([f[f"labels/{ds}"][...] for ds in train])
    th = x[y == 1].mean(0) - x[y == 0].mean(0)
    assert np.allclose(th, f[f"direction/{m}"][...], rtol=1e-4, atol=1e-6), m
    w, b = f[f"probe/{m}"][...]
    s = x @ th
    assert abs(((w * s + b > 0) == (y == 1)).mean() - f["train_accuracy"][a]) < 1e-12
    for t, mt in enumerate(["base", "instruct"]):
        xt, yt = centred(mt, "cities"), f["labels/cities"][...]
        ours = ((w * (xt @ th) + b > 0) == (yt == 1)).mean()
        assert abs(ours - acc[a, t, 0]) < 1e-9, (m, mt, ours, acc[a, t, 0])
# PD / IE from the stored probabilities
idx = f["interv/cities/index"][...]
lab = f["labels/cities"][...][idx]
pt, pf = f["interv/cities/p_true"][...], f["interv/cities/p_false"][...]
for t in range(2):
    for a in range(2):
        d0 = (pt[t, 0] - pf[t, 0]).astype(np.float64); d1 = (pt[t, 1 + a] - pf[t, 1 + a]).astype(np.float64)
        pdf, pdt = d0[lab == 0].mean(), d0[lab == 1].mean()
        e_ft = (d1[lab == 0].mean() - pdf) / (1 - pdf)
        e_tf = (d1[lab == 1].mean() - pdt) / (-1 - pdt)
        assert abs(e_ft - ie[a, t, 0, 0]) < 1e-5 and abs(e_tf - ie[a, t, 0, 1]) < 1e-5, (a, t, e_ft, e_tf, ie[a, t, 0])
# the intervention moves PD the intended way within each model (direction + sign checks)
assert (pt[:, 1:] != pt[:, :1]).any(), "intervention changed nothing"
# coefficient 0: every intervened run equals the clean run
zt = z["interv/cities/p_true"][...]
assert np.array_equal(zt[:, 1:], np.broadcast_to(zt[:, :1], zt[:, 1:].shape)), "coefficient 0 != clean"
assert np.allclose(z["ie"][...], 0), z["ie"][...]
assert np.allclose(z["ie_control"][...], 0), z["ie_control"][...]
# random controls: unit vectors, scaled to the target's own direction norm, IE from the stored probabilities
cv = f["control_directions"][...]
assert cv.shape[0] == 2 and np.allclose(np.linalg.norm(cv, axis=1), 1.0), cv.shape
assert abs(float(cv[0] @ cv[1])) < 0.5, "control directions are not independent draws"
ct = f["ie_control"][...]
assert ct.shape == (2, 1, 2, 3) and np.isfinite(ct).all(), ct
for t in range(2):
    for k in range(2):
        d0 = (pt[t, 0] - pf[t, 0]).astype(np.float64); d1 = (pt[t, 3 + k] - pf[t, 3 + k]).astype(np.float64)
        pdf, pdt = d0[lab == 0].mean(), d0[lab == 1].mean()
        assert abs((d1[lab == 0].mean() - pdf) / (1 - pdf) - ct[t, 0, k, 0]) < 1e-5, (t, k)
        assert abs((d1[lab == 1].mean() - pdt) / (-1 - pdt) - ct[t, 0, k, 1]) < 1e-5, (t, k)
print("truth: accuracy base->base %.2f base->inst %.2f inst->base %.2f inst->inst %.2f; IE avg %s"
      % (acc[0, 0, 0], acc[0, 1, 0], acc[1, 0, 0], acc[1, 1, 0], np.round(ie[:, :, 0, 2].ravel(), 3)))
PY
if [ -f "$ROOT/analysis/truth.py" ]; then
  /usr/bin/python3 "$ROOT/analysis/truth.py" "$WORK/r1.h5" -o "$WORK/an" > /dev/null || fail "analysis/truth.py"
  [ -s "$WORK/an/truth_transfer.csv" ] && [ -s "$WORK/an/truth_pca.png" ] || fail "analysis/truth.py outputs missing"
fi
# bad input is a clear error naming the file:line:col and the key
expect_fail() { # $1 job, $2 grep pattern
  if "$MECHDIFF" validate "$1" > "$WORK/out" 2> "$WORK/err"; then fail "$1 accepted"; fi
  grep -q -- "$2" "$WORK/err" || { cat "$WORK/err"; fail "message does not match '$2'"; }
}
sed 's|test_datasets: \[cities\]|test_datasets: [towns]|' "$WORK/job.yaml" > "$WORK/bad1.yaml"
expect_fail "$WORK/bad1.yaml" "bad1.yaml:[0-9]*:[0-9]*: .*key 'test_datasets': 'towns' is not in the job's datasets map"
sed 's|max_statements: 30|max_statements: 30\n    intervention_layers: "3-1"|' "$WORK/job.yaml" | grep -v '^    intervention_layers: 0-1' > "$WORK/bad2.yaml"
expect_fail "$WORK/bad2.yaml" "key 'intervention_layers': '3-1' is not"
sed 's|max_statements: 30|max_statements: 30\n    true_word: " TRUTHY"|' "$WORK/job.yaml" > "$WORK/bad3.yaml"
expect_fail "$WORK/bad3.yaml" "model 'base' (.*): answer words that are not one token: true_word ' TRUTHY' ([0-9] pieces: "
echo "truth: 1 rank == 3 ranks"
