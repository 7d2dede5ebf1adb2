#!/usr/bin/env bash
# Patching throughput: the same knowledge job, same ranks, run with prefix
# reuse + batched partial forwards (default) and with `naive: true` (one full
# forward per cell). Prints cells/s of both, the wall-clock ratio (goal >= 8x
# on the quickstart grid), the same ratio net of the fixed start-up (MPI
# init, model and tokenizer load, pair curation: a 1-pair run of the batched
# job, timed in the same run), the FLOP ratio of the two paths, and checks
# the results agree (max |d effect| <= 1e-4).
#   bench/bench_patching.sh BUILD_DIR [PAIRS=60, the quickstart grid] [RANKS=1] [BASE MODEL] [DATASET CSV]
set -euo pipefail
BUILD=${1:?build dir}; PAIRS=${2:-60}; RANKS=${3:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODEL=${4:-$ROOT/models/organism-base}; CSV=${5:-$ROOT/data/cities.csv}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for mode in false true startup; do
  naive=$mode pairs=$PAIRS
  [ "$mode" = startup ] && naive=false pairs=1
  cat > "$T/$mode.yaml" <<YAML
name: bench-patching
models: {base: $MODEL}
datasets: {cities: $CSV}
runtime: {hash_weights: false}
experiments:
  - {kind: knowledge, datasets: [cities], max_pairs: $pairs, naive: $naive}
YAML
  run=("$BUILD/mechdiff" run "$T/$mode.yaml" -o "$T/$mode.h5")
  [ "$RANKS" -gt 1 ] && run=(mpirun --oversubscribe -np "$RANKS" "${run[@]}")
  s=$(date +%s.%N); "${run[@]}" 2>/dev/null; e=$(date +%s.%N)
  echo "$mode $(echo "$e - $s" | bc)" >> "$T/times"
done
/usr/bin/python3 - "$T" "$MODEL" <<'PY'
import sys, json, h5py, numpy as np
t, model = sys.argv[1], sys.argv[2]
times = dict(l.split() for l in open(f"{t}/times"))
fast_s, naive_s, start_s = float(times["false"]), float(times["true"]), float(times["startup"])
c = json.load(open(f"{model}/config.json"))
d, ff, L = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
h = c.get("head_dim") or d // c["num_attention_heads"]
qd, kvd = c["num_attention_heads"] * h, c.get("num_key_value_heads", c["num_attention_heads"]) * h
row = 2 * (d * qd + 2 * d * kvd + qd * d + 3 * d * ff)   # GEMM FLOPs of one row through one layer
with h5py.File(f"{t}/false.h5") as a, h5py.File(f"{t}/true.h5") as b:
    ea, eb = a["knowledge/cities/base->base/effect"][...], b["knowledge/cities/base->base/effect"][...]
    lens = a["knowledge/cities/pairs/prompt_len"][...]
P, _, N = ea.shape
cells = P * L * N
naive_flops = fast_flops = 0
for T in lens:
    naive_flops += 2 * T * L * row + L * N * T * L * row          # clean runs + one full forward per cell
    fast_flops += 2 * T * L * row + sum((L - l - 1) * (T - t) for t in range(T - N, T) for l in range(L)) * row
diff = float(np.abs(ea - eb).max())
print(f"model {model}: {L} layers, d {d}; {P} pairs x {L} layers x {N} positions = {cells} cells")
print(f"naive : {naive_s:8.2f} s  {cells / naive_s:10.1f} cells/s")
print(f"batched prefix reuse: {fast_s:8.2f} s  {cells / fast_s:10.1f} cells/s")
print(f"wall-clock speed-up {naive_s / fast_s:.1f}x (goal >= 8x); FLOP ratio naive/fast {naive_flops / fast_flops:.1f}x")
print(f"fixed start-up (1-pair run) {start_s:.2f} s; net of it: {(naive_s - start_s) / (fast_s - start_s):.1f}x")
print(f"max |effect difference| {diff:.2e} ({'identical within 1e-4' if diff <= 1e-4 else 'DIFFERENT'})")
PY
