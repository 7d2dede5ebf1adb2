#!/usr/bin/env bash
# entropy_memory.sh — the entropy-neuron pass streams W_U: on a random
# checkpoint with Llama-3-8B widths and the Llama-3 vocabulary (1 layer,
# W_U 128256 x 4096 bf16 = 1 GiB; 2 GiB in fp32) the peak RSS of
# bench_entropy (64 neurons, both passes over W_U) must stay below a quarter
# of the fp32 W_U size (it measures ~0.07). $1: build dir.
set -euo pipefail
BUILD=${1:?build dir}
MECHDIFF=${MECHDIFF:-$BUILD/mechdiff}
BENCH=$BUILD/bench/bench_entropy
[ -x "$MECHDIFF" ] || { echo "no binary at $MECHDIFF"; exit 77; }
[ -x "$BENCH" ] || { echo "no $BENCH (build target bench_entropy)"; exit 77; }
TMP=$(mktemp -d "${MECHDIFF_TMP:-$BUILD}/entropy_memory.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
"$MECHDIFF" make-model --like llama3-8b --layers 1 --vocab 128256 --seed 3 -o "$TMP/m" >/dev/null
OPENBLAS_NUM_THREADS=1 "$BENCH" "$TMP/m" 64 | tee "$TMP/out"
grep -q "^peak RSS" "$TMP/out"
echo "entropy_memory.sh: ok"
