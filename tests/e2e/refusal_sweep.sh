#!/usr/bin/env bash
# refusal_sweep kind end to end on the shipped organism pair: a small sweep
# (n_train 16, n_test 8, every layer, 2 positions) runs on 1 and 3 MPI ranks
# with bit-identical /refusal_sweep datasets; every score is in [0, 1] (NaN
# exactly where the direction is 0: layer 0 at a template token); the
# best (layer, position) per model is reported as an attribute of `score` and
# agrees with the scores and with the stored `refused` flags; the directions
# are unit mean differences of the stored activations; it takes < 60 s;
# `kind: refusal` with `sweep: true` (the kind this alias maps to) writes the
# same datasets.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
command -v mpirun >/dev/null || { echo "SKIP: no mpirun"; exit 77; }
BASE=$ROOT/models/organism-base INST=$ROOT/models/organism-instruct
[ -f "$BASE/config.json" ] && [ -f "$INST/config.json" ] || { echo "SKIP: the organism models are not there"; exit 77; }
cat > "$WORK/job.yaml" <<YAML
name: sweep-test
models: {base: $BASE, instruct: $INST}
datasets: {harmful: $ROOT/data/harmful.csv, harmless: $ROOT/data/harmless.csv}
experiments:
  - kind: refusal_sweep
    n_train: 16
    n_test: 8
    positions: [-1, -2]
    batch: 8
YAML
start=$(date +%s)
"$MECHDIFF" validate "$WORK/job.yaml" > /dev/null
"$MECHDIFF" run "$WORK/job.yaml" -o "$WORK/r1.h5" > "$WORK/log1" 2>&1 || { cat "$WORK/log1"; fail "1 rank"; }
$MPIRUN -np 3 "$MECHDIFF" run "$WORK/job.yaml" -o "$WORK/r3.h5" > "$WORK/log3" 2>&1 || { cat "$WORK/log3"; fail "3 ranks"; }
secs=$(( $(date +%s) - start ))
[ "$secs" -lt 60 ] || fail "the sweep took $secs s (limit 60)"
for p in direction refused score acts/base/harmful acts/instruct/harmless; do
  h5diff "$WORK/r1.h5" "$WORK/r3.h5" "/refusal_sweep/$p" "/refusal_sweep/$p" || fail "/refusal_sweep/$p differs between 1 and 3 ranks"
done
same_results "$WORK/r1.h5" "$WORK/r3.h5" || fail "results differ between 1 and 3 ranks"
/usr/bin/python3 - "$WORK/r1.h5" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")["refusal_sweep"]
sc, ref = f["score"][...], f["refused"][...]
L = int(h5py.File(sys.argv[1], "r")["refusal_sweep"].attrs["layers"].split(",")[-1]) + 1
assert sc.shape == (2, L, 2) and ref.shape == (2, L, 2, 8), (sc.shape, ref.shape)
dz = (f["direction"][...] == 0).all(-1)  # no direction (equal means, e.g. layer 0 at a template token)
assert np.array_equal(np.isnan(sc), dz), (sc, dz)
assert (~dz).any() and (sc[~dz] >= 0).all() and (sc[~dz] <= 1).all(), sc
assert np.array_equal(sc[~dz], ref.mean(-1)[~dz]), "score != mean of refused"
layers = [int(v) for v in f.attrs["layers"].split(",")]
positions = [int(v) for v in f.attrs["positions"].split(",")]
assert positions == [-1, -2], positions
assert f["score"].attrs["layers"] == f.attrs["layers"] and f["score"].attrs["positions"] == f.attrs["positions"]
for m, role in enumerate(["base", "instruct"]):
    a = f["score"].attrs[f"best_{role}"]
    a = a.decode() if isinstance(a, bytes) else a
    w = a.split()
    li, pi = layers.index(int(w[1])), positions.index(int(w[3]))
    assert sc[m, li, pi] == np.nanmin(sc[m]) and float(w[5]) == np.nanmin(sc[m]), (role, a, sc[m])
    for l in range(L):
        for p in range(2):
            hb = f[f"acts/{role}/harmful"][:, l, p].astype(np.float64)
            hl = f[f"acts/{role}/harmless"][:, l, p].astype(np.float64)
            r = hb.mean(0) - hl.mean(0)
            if dz[m, l, p]:
                assert np.abs(r).max() < 1e-6, (role, l, p)
                continue
            assert np.allclose(r / np.linalg.norm(r), f["direction"][m, l, p], rtol=1e-4, atol=1e-6), (role, l, p)
    txt = f[f"gen/{role}/layer{layers[li]}_pos{positions[pi]}/text"][...]
    assert len(txt) == 8
    print(f"refusal_sweep: {role} scores by layer x position {np.round(sc[m], 2).tolist()}; best: {a}")
PY
# refusal_sweep is an alias: kind: refusal with sweep: true (layers/positions
# spelt sweep_layers/sweep_positions) writes the very same datasets
"$MECHDIFF" validate "$WORK/job.yaml" | grep -q "alias: kind: refusal with sweep: true" || fail "validate does not name the alias"
sed 's/kind: refusal_sweep/kind: refusal\n    name: refusal_sweep\n    sweep: true/; s/positions:/sweep_positions:/' "$WORK/job.yaml" > "$WORK/new.yaml"
"$MECHDIFF" run "$WORK/new.yaml" -o "$WORK/new.h5" > "$WORK/lognew" 2>&1 || { cat "$WORK/lognew"; fail "refusal sweep: true"; }
/usr/bin/python3 "$ROOT/scripts/dev/compare_h5.py" "$WORK/r1.h5" "$WORK/new.h5" --rtol 0 > "$WORK/cmp" ||
  { cat "$WORK/cmp"; fail "refusal sweep: true differs from kind: refusal_sweep"; }
grep -qE "compared [6-9][0-9] datasets" "$WORK/cmp" || { cat "$WORK/cmp"; fail "too few datasets compared"; }
sed 's/kind: refusal_sweep/kind: refusal\n    sweep: true/; s/positions: \[-1, -2\]/sweep_positions: [-1, 2]/' "$WORK/job.yaml" > "$WORK/bad3.yaml"
if "$MECHDIFF" validate "$WORK/bad3.yaml" > /dev/null 2> "$WORK/err"; then fail "sweep position 2 accepted"; fi
grep -q "key 'sweep_positions': '2'" "$WORK/err" || { cat "$WORK/err"; fail "sweep_positions message"; }
# bad candidates are clear errors naming the key
sed 's/positions: \[-1, -2\]/positions: [-1, 2]/' "$WORK/job.yaml" > "$WORK/bad.yaml"
if "$MECHDIFF" validate "$WORK/bad.yaml" > /dev/null 2> "$WORK/err"; then fail "position 2 accepted"; fi
grep -q "bad.yaml:[0-9]*:[0-9]*: .*key 'positions': '2'" "$WORK/err" || { cat "$WORK/err"; fail "positions message"; }
sed 's/positions: \[-1, -2\]/layers: [0, 99]/' "$WORK/job.yaml" > "$WORK/bad2.yaml"
if "$MECHDIFF" validate "$WORK/bad2.yaml" > /dev/null 2> "$WORK/err"; then fail "layer 99 accepted"; fi
grep -q "key 'layers': '99'" "$WORK/err" || { cat "$WORK/err"; fail "layers message"; }
echo "refusal_sweep: 1 rank == 3 ranks in $secs s"
