#!/bin/bash
# ranks.sh — a two-stage selftest job gives bit-identical datasets on 1, 2
# and 4 ranks (dynamic scheduling, uneven unit costs), and finished files.
. "$(dirname "$0")/../lib.sh"
cat > "$WORK/job.yaml" <<'YAML'
name: ranks
seed: 11
experiments:
  - kind: selftest
    units: 300
    rows: 3
    cols: 7
    spin: 20000
    cost_variation: 4
  - kind: selftest
    name: second
    units: 37
    stages: 1
YAML
for n in 1 2 4; do
    if [ $n = 1 ]; then "$MECHDIFF" run "$WORK/job.yaml" -o "$WORK/r$n.h5" --quiet || fail "1 rank: status $?"
    else $MPIRUN -np $n "$MECHDIFF" run "$WORK/job.yaml" -o "$WORK/r$n.h5" --quiet || fail "$n ranks: status $?"; fi
    "$MECHDIFF" status "$WORK/r$n.h5" >/dev/null || fail "$n ranks: status says not finished"
done
same_results "$WORK/r1.h5" "$WORK/r2.h5"
same_results "$WORK/r1.h5" "$WORK/r4.h5"
# the provenance records the world size of each run
/usr/bin/python3 - "$WORK" <<'PY' || fail "provenance"
import sys, h5py
w = sys.argv[1]
for n in (1, 2, 4):
    f = h5py.File(f"{w}/r{n}.h5", "r")
    p = f["provenance"].attrs
    assert p["world_size"] == n and p["finished"] == 1, dict(p)
    assert "kind: \"selftest\"" in p["job_yaml"]
    assert f["selftest/values"].dims[0].label == "unit"
    assert f["completion/selftest/stage1/done"][:].all()
PY
echo "PASS: 1, 2 and 4 ranks give identical results"
