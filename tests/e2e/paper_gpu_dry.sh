#!/usr/bin/env bash
# paper_gpu_dry.sh — bench/bench_paper_gpu.sh (the GPU session's `paper`
# step, scripts/dev/gpu_checks.sh) end to end on the CPU backend, on the
# shipped organism with larger_than (prompts of different lengths, so the
# blocks carry left padding): three profiled runs and an unprofiled one go
# through mpirun, MECHDIFF_PROFILE's summaries and bench/paper_gpu_report.py.
# Checks: the GEMM FLOPs counted by the profiler equal bench/study_cost.py's
# block formula exactly (padding rows included) in every profiled run;
# profiling changes no effect (noprof vs bf16: difference 0); pair_block 1
# agrees with blocks of 16 within 1e-5 x max |effect| (fp32 row-count
# rounding, as tests/e2e/knowledge.sh); cells/s and the study estimate
# (GPU-hours) are positive numbers in paper.json; a run that fails with
# BLOCK is run again with FALLBACK_BLOCK (here: BLOCK=-1, refused).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
need_pair
"$PY" -c "import h5py, numpy" 2>/dev/null || { echo "SKIP: no h5py/numpy for $PY"; exit 77; }
BIN=$WORK/bin; mkdir -p "$BIN"; ln -s "$MECHDIFF" "$BIN/mechdiff"
# BLOCK=-1 is refused by the job check: the first run fails and is run again with FALLBACK_BLOCK=16
BACKEND=cpu MODEL=models/organism-base DATASET=larger_than N_SHOTS=0 N_TOKS=8 PAIRS=24 PERPAIR_PAIRS=6 BLOCK=-1 \
  RUNS="bf16 x3 perpair noprof" PY=$PY bash bench/bench_paper_gpu.sh "$BIN" "$WORK/out" > "$WORK/stdout" 2>&1 ||
  { cat "$WORK/stdout"; fail "bench_paper_gpu.sh failed"; }
cat "$WORK/out/paper.txt"
grep -q "pair_block" "$WORK/out/bf16.try1.log" || fail "the failed first try's log was not kept"
grep -q "bf16 failed with pair_block -1: the remaining runs use pair_block 16" "$WORK/stdout" ||
  fail "no fallback to pair_block 16"
n=$(grep -c "= the block formula exactly" "$WORK/out/paper.txt" || true)
[ "$n" = 3 ] || fail "the counted GEMM FLOPs equal the block formula in $n of 3 profiled runs"
"$PY" - "$WORK/out/paper.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
runs = j["runs"]
assert set(runs) == {"bf16", "x3", "perpair", "noprof"}, runs.keys()
for name in ("bf16", "x3", "perpair"):
    r = runs[name]
    assert r["gemm_flops"] == r["flops_padded"] >= r["flops_useful"] > 0, (name, r)
    assert (r["flops_padded"] > r["flops_useful"]) == (name != "perpair"), (name, r)  # blocks of 16 pad
    assert r["cells_per_s"] > 0 and r["gemm_s"] > 0 and r["window_s"] > r["gemm_s"], (name, r)
    assert r["share"]["attention"] > 0 and r["share"]["other"] > 0, (name, r)
assert runs["perpair"]["pair_block"] == 1 and runs["perpair"]["flops_padded"] == runs["perpair"]["flops_useful"]
assert j["noprof_vs_bf16_max_effect_diff"] == 0.0, j   # the wrapper changes no number
assert j["x3_vs_bf16_max_effect_diff"] == 0.0, j       # the cpu backend has no GEMM modes
assert 0 <= j["perpair_vs_bf16_max_effect_diff"] <= 1e-5 * j["perpair_vs_bf16_max_abs_effect"], j
assert j["study_gpu_hours_bf16"] > 0 and j["study_gpu_hours_x3"] > 0, j
print("paper.json ok")
PY
echo "paper_gpu_dry.sh: ok"
