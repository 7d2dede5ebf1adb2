#!/usr/bin/env bash
# A resume with --allow-mixed-numerics records done_at_start/<experiment>/
# stage<k> for every experiment and stage of the file, each the flags the
# file held (provenance.c: copy_experiment hands each stage its experiment's
# name); a done dataset that cannot be read stops the resume with a message
# naming it. The earlier "other" setup is written with h5py (no GPU here).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
printf 'name: mixst\nexperiments:\n  - {name: a, kind: selftest, units: 9, rows: 1, cols: 2, stages: 2}\n  - {name: b, kind: selftest, units: 7, rows: 1, cols: 2, stages: 2}\n' > "$WORK/job.yaml"
OUT=$WORK/out.h5
"$MECHDIFF" run "$WORK/job.yaml" -o "$OUT" --quiet || fail "first run"
cp "$OUT" "$WORK/broken.h5"
# another setup before; stage 1 of each experiment partly undone (recomputed by the resume)
$PY - "$OUT" "$WORK/before.npz" <<'PY'
import sys, h5py
import numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    f["provenance/segments/0000"].attrs["numeric_setup"] = "backend=cuda weights=bf16 gemm=x3"
    f["completion/a/stage1/done"][0::2] = 0
    f["completion/b/stage1/done"][1::3] = 0
    np.savez(sys.argv[2], **{"%s_%d" % (e, s): f["completion/%s/stage%d/done" % (e, s)][...]
                             for e in ("a", "b") for s in (0, 1)})
PY
"$MECHDIFF" run "$WORK/job.yaml" -o "$OUT" --quiet --allow-mixed-numerics 2> "$WORK/err" || { cat "$WORK/err"; fail "forced resume"; }
$PY - "$OUT" "$WORK/before.npz" <<'PY'
import sys, h5py
import numpy as np
before = np.load(sys.argv[2])
with h5py.File(sys.argv[1], "r") as f:
    segs = f["provenance/segments"]
    s = segs[sorted(segs)[-1]]["done_at_start"]
    got = sorted("%s/%s" % (e, k) for e in s for k in s[e])
    assert got == ["a/stage0", "a/stage1", "b/stage0", "b/stage1"], got
    for e in ("a", "b"):
        for k in (0, 1):
            want = before["%s_%d" % (e, k)]
            assert np.array_equal(s["%s/stage%d" % (e, k)][...], want), (e, k, s["%s/stage%d" % (e, k)][...], want)
        assert f["completion/%s/stage1/done" % e][...].all(), "the resume did not finish " + e
assert not before["a_1"].all() and not before["b_1"].all() and before["a_0"].all()
PY
# a done dataset of the wrong shape: the message names it
$PY - "$WORK/broken.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    f["provenance/segments/0000"].attrs["numeric_setup"] = "backend=cuda weights=bf16 gemm=x3"
    del f["completion/b/stage1/done"]
    f["completion/b/stage1"].create_dataset("done", data=[[1, 1], [1, 1]], dtype="u1")
PY
expect_status 1 "broken.h5: cannot read the done flags to record the mix: /completion/b/stage1/done is not a 1-D" \
  "$MECHDIFF" run "$WORK/job.yaml" -o "$WORK/broken.h5" --quiet --allow-mixed-numerics
! grep -q "records the units done before it" "$WORK/err" || fail "a failed copy still says the segment records it"
echo "numerics_mixed_stages: ok"
