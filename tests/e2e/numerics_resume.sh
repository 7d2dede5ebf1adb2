#!/usr/bin/env bash
# numerics_resume.sh — every run segment records its resolved numeric setup
# (backend, weight and GEMM precision, BLAS, devices; never "auto"), and a
# resume whose setup differs from the file's last segment is refused unless
# --allow-mixed-numerics, which then records the units done before the new
# setup took over. The earlier "other" setup is written into the file with
# h5py (this machine has no GPU to produce one). $1: build dir.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
cat > "$WORK/job.yaml" <<YAML
name: numerics
models: {base: $(pwd)/tests/golden/models/llama3_f32}
experiments:
  - {kind: selftest, units: 12, stages: 1}
YAML
OUT=$WORK/out.h5
"$MECHDIFF" run "$WORK/job.yaml" -o "$OUT" --quiet || fail "first run"
/usr/bin/python3 - "$OUT" <<'PY'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
s = dict(f["provenance/segments/0000"].attrs)
f.close()
want = {"numeric_setup": "backend=cpu weights=f32 gemm=f32", "backend": "cpu",
        "gemm_precision": "fp32 (cblas_sgemm)"}
for k, v in want.items():
    assert s[k] == v, (k, s[k])
assert "OPENBLAS_NUM_THREADS=1" in s["blas"] and s["devices"].startswith("cpu: "), s
assert "auto" not in s["numeric_setup"]
# pretend the first segment ran on a GPU in bf16
with h5py.File(sys.argv[1], "r+") as f:
    f["provenance/segments/0000"].attrs["numeric_setup"] = "backend=cuda weights=bf16 gemm=x3"
PY
if "$MECHDIFF" run "$WORK/job.yaml" -o "$OUT" --quiet 2> "$WORK/err"; then fail "a resume with another numeric setup was not refused"; fi
grep -q "backend=cuda weights=bf16 gemm=x3.*backend=cpu weights=f32 gemm=f32.*--allow-mixed-numerics" "$WORK/err" \
  || { cat "$WORK/err"; fail "the refusal does not name both setups and the way out"; }
"$MECHDIFF" run "$WORK/job.yaml" -o "$OUT" --quiet --allow-mixed-numerics 2> "$WORK/err2" || { cat "$WORK/err2"; fail "forced resume"; }
/usr/bin/python3 - "$OUT" <<'PY'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
segs = sorted(f["provenance/segments"])
assert len(segs) == 2, segs
s = f["provenance/segments"][segs[-1]]
assert s.attrs["mixed_with_setup"] == "backend=cuda weights=bf16 gemm=x3", dict(s.attrs)
assert s.attrs["numeric_setup"] == "backend=cpu weights=f32 gemm=f32"
done = s["done_at_start/selftest/stage0"][...]
assert done.shape == (12,) and done.all(), done   # all 12 units came from the earlier setup
print("numerics_resume: segments record their setup; mixed resume refused, forced one recorded")
PY
# the same setup resumes silently
"$MECHDIFF" run "$WORK/job.yaml" -o "$OUT" --quiet || fail "resume with the same setup"
echo "numerics_resume: ok"
