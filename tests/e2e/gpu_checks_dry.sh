#!/usr/bin/env bash
# gpu_checks_dry.sh — scripts/dev/gpu_checks.sh (the one command a GPU
# session runs) on the CPU build, as the `device` tool will see it:
#   - the steps paper (bench/bench_paper_gpu.sh on the CPU backend, the
#     organism), ops and bench (no GPU here: their programs skip) run, each
#     gets a steps.txt line, and OUT holds only what the tool returns: at
#     most 8 plain files with plain names (results.tgz, env.txt, steps.txt),
#     results.tgz holding every step's files but no .h5;
#   - with the budget spent every step is skipped and the files still come;
#   - a run of the paper step that reaches its timeout stops its MPI ranks
#     (under a plain `timeout`, mpirun got two SIGTERMs and often exited
#     leaving them running).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
need_pair
"$PY" -c "import h5py, numpy" 2>/dev/null || { echo "SKIP: no h5py/numpy for $PY"; exit 77; }
for p in tests/test_backend_ops tests/test_profile tests/test_hook_batch bench/bench_gpu; do
  [ -x "$BUILD/$p" ] || { echo "SKIP: $BUILD/$p not built"; exit 77; }
done
BUILD=$(cd "$BUILD" && pwd)
export BACKEND=cpu MODEL=models/organism-base DATASET=larger_than N_SHOTS=0 N_TOKS=8 PAIRS=4 PERPAIR_PAIRS=2 PY

# OUT as the device tool returns it: <= 8 files, no deeper than 2 folders, names of [A-Za-z0-9._-]
check_out() {
  local out=$1 n
  n=$(find "$out" -mindepth 1 | wc -l)
  [ "$n" -le 8 ] || fail "$out holds $n entries (the tool returns 8 files): $(ls "$out")"
  [ -z "$(find "$out" -mindepth 1 ! -type f)" ] || fail "$out holds more than plain files: $(find "$out" ! -type f)"
  [ -z "$(find "$out" -mindepth 1 -printf '%f\n' | grep -v -E '^[A-Za-z0-9._-]+$')" ] || fail "odd names in $out"
  for f in results.tgz env.txt steps.txt; do [ -s "$out/$f" ] || fail "$out/$f missing"; done
}

RUNS="bf16 perpair" BUDGET=150 GPU_CHECKS_WORK=$WORK/w1 bash scripts/dev/gpu_checks.sh "$BUILD" "$WORK/o1" paper ops bench \
  > "$WORK/log1" 2>&1 || { cat "$WORK/log1"; fail "gpu_checks.sh failed"; }
check_out "$WORK/o1"
tar -tzf "$WORK/o1/results.tgz" > "$WORK/list1"
for f in ./steps.txt ./env.txt ./paper.log ./paper/paper.txt ./paper/paper.json ./paper/bf16.log ./ops.txt \
         ./ops_profile.txt ./ops_hooks.txt ./bench.txt; do
  grep -qx -- "$f" "$WORK/list1" || fail "results.tgz lacks $f: $(tr '\n' ' ' < "$WORK/list1")"
done
! grep -q '\.h5$' "$WORK/list1" || fail "results.tgz holds .h5 files"
for s in paper ops bench "all steps"; do grep -q "^$s: " "$WORK/o1/steps.txt" || fail "steps.txt lacks $s"; done
grep -q "= the block formula exactly" "$WORK/w1/paper/paper.txt" || fail "the paper step gave no figures"
grep -q "paper: exit 0" "$WORK/w1/paper.log" || fail "paper step: $(tail -3 "$WORK/w1/paper.log")"
[ ! -e jobs/quickstart_gpu.yaml ] || fail "a quickstart_gpu.yaml was left in jobs/"
echo "dry run: $(tail -1 "$WORK/o1/steps.txt"); OUT: $(ls "$WORK/o1" | tr '\n' ' ')"

# budget spent: every step skipped, the files still there
BUDGET=10 GPU_CHECKS_WORK=$WORK/w2 bash scripts/dev/gpu_checks.sh "$BUILD" "$WORK/o2" paper ops > "$WORK/log2" 2>&1 ||
  fail "gpu_checks.sh with the budget spent failed: $(tail -3 "$WORK/log2")"
check_out "$WORK/o2"
[ "$(grep -c ': skipped (budget of 10 s spent)' "$WORK/o2/steps.txt")" = 2 ] || fail "steps not skipped: $(cat "$WORK/o2/steps.txt")"

# a run that reaches its timeout stops its ranks: a mechdiff that never
# ends under bench_paper_gpu.sh with a DEADLINE 12 s away (its run gets ~9 s)
mkdir -p "$WORK/slow"
printf '#!/usr/bin/env bash\nwhile :; do sleep 0.2; done\n' > "$WORK/slow/mechdiff"
chmod +x "$WORK/slow/mechdiff"
rc=0
DEADLINE=$(( $(date +%s) + 12 )) MIN_RUN=3 RUNS=bf16 RUN_TIMEOUT=300 \
  bash bench/bench_paper_gpu.sh "$WORK/slow" "$WORK/p3" > "$WORK/log3" 2>&1 || rc=$?
grep -q "^bf16 124 " "$WORK/p3/times" || fail "the run did not end by its timeout: $(cat "$WORK/p3/times" "$WORK/log3")"
sleep 2
left=$(ps -eo pid=,args= | grep -F "$WORK/slow/mechdiff" | grep -v grep || true)
[ -z "$left" ] || { kill $(echo "$left" | awk '{print $1}') 2>/dev/null; fail "the timed-out run's ranks kept running: $left"; }
echo "gpu_checks_dry: OK"
