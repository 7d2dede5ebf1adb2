#!/usr/bin/env bash
# The study's knowledge grid at real widths on the CPU (issue 19): few-shot
# cities prompts (4 shots, ~80 tokens), the last 14 positions, every layer,
# on a generated 4-layer Llama-3-8B-width checkpoint (real 128256
# vocabulary, random bf16 weights; `make-model --like llama3-8b`), one rank,
# one thread (OPENBLAS_NUM_THREADS=1). In one invocation:
#   1. a start-up run (1 pair, n_toks 1), the grid with the default
#      pair_block (pairs batched through the weights together) and, unless
#      PERPAIR=0, the grid with pair_block 1 (the previous per-pair units);
#      BLOCKS="4 8" adds those block sizes;
#   2. plain cblas_sgemm (numpy on the same OpenBLAS, one thread) on the
#      layer's shapes at 64 / 256 / 1024 rows;
#   3. unless PEER=0, the same grid for the first PEER_PAIRS pairs in a
#      Hugging Face forward-hook loop batched per pair
#      (scripts/dev/hf_peer_grid.py, torch.set_num_threads(1), with
#      $PEER_PYTHON, default /tmp/venv/bin/python; skipped when it lacks torch).
# Prints cells/s, the grid's GEMM FLOP rate as a share of plain sgemm (goal
# >= 0.7), the FLOP ratio vs naive (one full forward per cell), mechdiff's
# speed-up over the peer per pair at equal threads (goal >= 10x) with the
# largest effect difference between the two, and the estimate of the whole
# study's CPU cost (four analyses, Llama-3.1-8B base/SFT/instruct) from the
# measured rate. Every figure is given in CPU seconds (user + system of the
# one-thread process: robust to other jobs on a shared machine) and in
# wall-clock seconds; on a quiet machine the two agree. Run it nice'd.
#   bench/bench_paper_cpu.sh BUILD_DIR [PAIRS=16] [MODEL_DIR] [FP32_CACHE_MB=-1] [PEER_PAIRS=2]
# MODEL_DIR: where the checkpoint is (generated there if absent; kept).
# FP32_CACHE_MB: runtime.fp32_cache_mb (-1 = auto, from available memory;
# 0 = every bf16 weight converted on the fly).
set -euo pipefail
BUILD=$(cd "${1:?build dir}" && pwd); PAIRS=${2:-16}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
M=$(realpath -m "${3:-$T/model}"); CACHE=${4:--1}; PEER_PAIRS=${5:-2}
PEER_PYTHON=${PEER_PYTHON:-/tmp/venv/bin/python}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
if [ ! -f "$M/model.safetensors" ]; then
  "$BUILD/mechdiff" make-model --like llama3-8b --layers 4 --seed 1 -o "$M" >/dev/null
fi
for f in tokenizer.json tokenizer_config.json; do
  [ -f "$M/$f" ] || cp "$ROOT/models/organism-base/$f" "$M/"
done
run() { # $1 = name, $2 = max_pairs, $3 = n_toks, $4 = pair_block
  cat > "$T/$1.yaml" <<YAML
name: bench-paper-cpu
models: {base: $M}
datasets: {cities: $ROOT/data/cities.csv}
runtime: {hash_weights: false, fp32_cache_mb: $CACHE}
experiments:
  - {kind: knowledge, datasets: [cities], max_pairs: $2, n_toks: $3, n_shots: 4, shot_seed: 1, pair_block: $4}
YAML
  local TIMEFORMAT='%R %U %S' tm  # wall, user and system seconds of the one-rank run
  tm=$( { time "$BUILD/mechdiff" run "$T/$1.yaml" -o "$T/$1.h5" --quiet 2>"$T/$1.err" >/dev/null; } 2>&1 ) \
    || { cat "$T/$1.err"; exit 1; }
  echo "$1 $tm" >> "$T/times"
}
run startup 1 1 0
run batched "$PAIRS" 14 0
[ "${PERPAIR:-1}" = 1 ] && run perpair "$PAIRS" 14 1
for b in ${BLOCKS:-}; do run "block$b" "$PAIRS" 14 "$b"; done  # BLOCKS="4 8": more block sizes
# the peer reads the very token ids mechdiff used (mechdiff tokenize on the same prompts)
PEER_OK=0
if [ "${PEER:-1}" = 1 ] && "$PEER_PYTHON" -c "import torch, transformers" 2>/dev/null; then
  /usr/bin/python3 - "$T" "$BUILD/mechdiff" "$M" "$PEER_PAIRS" <<'PY'
import json, subprocess, sys
import h5py
t, md, model, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with h5py.File(f"{t}/batched.h5") as f:
    g = f["knowledge/cities/pairs"]
    prefix = g["true_statement"].attrs["few_shot_prefix"]
    prefix = prefix.decode() if isinstance(prefix, bytes) else prefix
    rows = []
    for i in range(min(n, g["prompt_len"].shape[0])):
        pr = {}
        for side in ("true", "false"):
            stmt = g[f"{side}_statement"][i]
            stmt = stmt.decode() if isinstance(stmt, bytes) else stmt
            out = subprocess.run([md, "tokenize", "--json", model, "-"], input=(prefix + stmt + " This statement is:").encode(),
                                 capture_output=True, check=True).stdout
            ids = json.loads(out)["ids"]
            w = g[f"{side}_ids"][i]
            assert len(ids) == g["prompt_len"][i] and list(ids[-len(w):]) == list(w), f"pair {i}: ids differ"
            pr[f"{side}_ids"] = ids
        rows.append(pr)
json.dump(rows, open(f"{t}/pairs.json", "w"))
ids = [json.loads(subprocess.run([md, "tokenize", "--json", "--no-special", model, w], capture_output=True,
                                 check=True).stdout)["ids"][0] for w in (" TRUE", " FALSE")]
open(f"{t}/answer_ids", "w").write(f"{ids[0]} {ids[1]}\n")
PY
  OPENBLAS_NUM_THREADS=1 "$PEER_PYTHON" "$ROOT/scripts/dev/hf_peer_grid.py" --model "$M" --pairs "$T/pairs.json" \
    --n-toks 14 --ids $(cat "$T/answer_ids") --threads 1 --out "$T/peer.json"
  PEER_OK=1
else
  echo "peer skipped (PEER=0, or $PEER_PYTHON has no torch + transformers)"
fi
echo "runtime.fp32_cache_mb $CACHE; machine load $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 "$ROOT/bench/paper_cpu_report.py" "$T" "$M" "$PEER_OK"
