#!/usr/bin/env bash
# The study's knowledge grid at real widths on the CPU: few-shot cities prompts
# (4 shots, ~80 tokens), the last 14 positions, every layer, on a generated
# 4-layer Llama-3-8B-width checkpoint (real 128256 vocabulary, random bf16
# weights; `make-model --like llama3-8b`), one single-threaded worker.
# Prints cells/s (net of the start-up, timed by a 1-pair run in the same
# invocation), the GEMM FLOP rate of the run as a share of plain cblas_sgemm
# (numpy on the same OpenBLAS, one thread) on the layer's shapes, and the
# estimate for the 32-layer model: per pair, for the study's grid (cities,
# 238 pairs, 3 models + 4 cross-model directions as in
# jobs/knowledge_cities.yaml) on N CPU cores and on one GPU (the H200 rate
# of docs/cuda.md scaled by FLOPs per cell).
#   bench/bench_paper_cpu.sh BUILD_DIR [PAIRS=3] [MODEL_DIR] [FP32_CACHE_MB=256]
# MODEL_DIR: where the checkpoint is (generated there if absent; kept).
# FP32_CACHE_MB: runtime.fp32_cache_mb (256 = default: most weights converted
# from bf16 on the fly; 4096 holds the 4 layers in fp32).
set -euo pipefail
BUILD=$(cd "${1:?build dir}" && pwd); PAIRS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
M=${3:-$T/model}; CACHE=${4:-256}
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
if [ ! -f "$M/model.safetensors" ]; then
  "$BUILD/mechdiff" make-model --like llama3-8b --layers 4 --seed 1 -o "$M" >/dev/null
fi
cp "$ROOT/models/organism-base/tokenizer.json" "$ROOT/models/organism-base/tokenizer_config.json" "$M/"
for p in 1 "$PAIRS"; do
  cat > "$T/job$p.yaml" <<YAML
name: bench-paper-cpu
models: {base: $M}
datasets: {cities: $ROOT/data/cities.csv}
runtime: {hash_weights: false, fp32_cache_mb: $CACHE}
experiments:
  - {kind: knowledge, datasets: [cities], max_pairs: $p, n_toks: 14, n_shots: 4, shot_seed: 1}
YAML
  s=$(date +%s.%N)
  mpirun --oversubscribe -np 2 "$BUILD/mechdiff" run "$T/job$p.yaml" -o "$T/out$p.h5" --quiet
  e=$(date +%s.%N)
  echo "$p $(echo "$e - $s" | bc)" >> "$T/times"
done
echo "runtime.fp32_cache_mb $CACHE"
/usr/bin/python3 - "$T" "$M" "$PAIRS" <<'PY'
import json, sys, time
import h5py, numpy as np
t, model, P = sys.argv[1], sys.argv[2], int(sys.argv[3])
times = {int(k): float(v) for k, v in (l.split() for l in open(f"{t}/times"))}
c = json.load(open(f"{model}/config.json"))
d, ff, L, V = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"]
h = c.get("head_dim") or d // c["num_attention_heads"]
qd, kvd = c["num_attention_heads"] * h, c["num_key_value_heads"] * h
row = 2 * (d * qd + 2 * d * kvd + qd * d + 3 * d * ff)   # GEMM FLOPs of one row through one layer
with h5py.File(f"{t}/out{P}.h5") as f:
    eff = f["knowledge/cities/base->base/effect"][...]
    lens = f["knowledge/cities/pairs/prompt_len"][...]
pairs, _, N = eff.shape
def flops(T, layers):  # two clean runs + each cell's partial forward from layer l+1 on, rows T-t; logits of 1 row
    return (2 * T * layers * row + sum((layers - l - 1) * (T - tt) for tt in range(T - N, T) for l in range(layers)) * row
            + (2 + layers * N) * 2 * d * V)
f_run = sum(flops(int(T), L) for T in lens)
net = times[P] - times[1]                      # P-1 pairs beyond the 1-pair start-up run
f_net = f_run * (P - 1) / P
cells = pairs * L * N
rate = f_net / net
# plain sgemm on the layer's shapes, one thread, fp32
res = {}
for rows in (64, 256, 1024):
    x = np.random.standard_normal((rows, d)).astype(np.float32)
    ws = [np.random.standard_normal((d, n)).astype(np.float32) for n in (qd, kvd, kvd, d, ff, ff)] + \
         [np.random.standard_normal((ff, d)).astype(np.float32)]
    xf = np.random.standard_normal((rows, ff)).astype(np.float32)
    s = time.perf_counter(); n = 0
    while time.perf_counter() - s < 1.5:
        for w in ws[:-1]:
            (x @ w)
        xf @ ws[-1]
        n += 1
    res[rows] = n * rows * row / (time.perf_counter() - s)
print(f"model {model}: {L} layers, d {d}, ff {ff}, vocab {V}; cities, 4 shots: prompts {lens.min()}-{lens.max()} tokens "
      f"(mean {lens.mean():.0f}), last {N} positions, every layer")
print(f"{pairs} pairs = {cells} cells: {times[P]:.1f} s; 1-pair start-up run {times[1]:.1f} s; "
      f"net {cells * (P - 1) / P / net:.2f} cells/s, {net / (P - 1):.1f} s per pair (1 worker, 1 thread)")
print(f"GEMM FLOPs {rate / 1e9:.1f} GFLOP/s = {100 * rate / res[64]:.0f} % / {100 * rate / res[256]:.0f} % / "
      f"{100 * rate / res[1024]:.0f} % of plain sgemm on the layer shapes at 64 / 256 / 1024 rows "
      f"({res[64] / 1e9:.1f} / {res[256] / 1e9:.1f} / {res[1024] / 1e9:.1f} GFLOP/s)")
Tm = int(round(lens.mean()))
per_pair_32 = net / (P - 1) * flops(Tm, 32) / flops(Tm, L)
grid_pairs, combos = 238, 7
cpu_h = per_pair_32 * grid_pairs * combos / 3600
print(f"estimate, 32 layers (Llama-3.1-8B): {32 * N} cells and {flops(Tm, 32) / flops(Tm, L):.1f}x the FLOPs per pair "
      f"-> {per_pair_32:.0f} s per pair per core; the study's cities grid ({grid_pairs} pairs x {combos} model "
      f"combinations) {cpu_h:.0f} core-hours = {cpu_h / 15:.1f} h on a 16-core node (15 workers)")
gpu_cells_4 = 1863.0  # docs/cuda.md: H200, one worker, 4 layers, 13 positions, ~80-token prompts
per_cell = lambda layers, n: flops(Tm, layers) / (layers * n)
gpu_rate_32 = gpu_cells_4 * per_cell(4, 13) / per_cell(32, N)
gpu_h = grid_pairs * combos * 32 * N / gpu_rate_32 / 3600
print(f"estimate, one H200 worker (docs/cuda.md's 1863 cells/s at 4 layers scaled by FLOPs per cell): "
      f"{gpu_rate_32:.0f} cells/s at 32 layers -> the cities grid in {gpu_h * 60:.0f} min per GPU")
PY
