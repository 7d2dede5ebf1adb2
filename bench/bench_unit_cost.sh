#!/usr/bin/env bash
# The ETA's unit costs at Llama-3-8B widths: seconds per unit of every kind
# and stage against the cost the kinds give their units (progress.h, "ETA by
# cost"; bench_eta.sh checks the ETA on the d=128 organism only). A
# generated checkpoint with the widths of Llama-3.1-8B (`make-model --like
# llama3-8b`: d 4096, d_ff 14336, 32/8 heads, bf16 random weights) but
# LAYERS decoder layers (default 2) and the vocabulary scaled with them,
# VOCAB = 128256 x LAYERS / 32, at most the 7310 ids of the organism's
# tokenizer that drives it (generations must decode): 7310 at 2 layers, so
# that the logits' share of a token's multiply-adds (V d = 29.9M against
# L (2 d^2 + 2 d d_kv + 3 d d_ff) = 436M: 6.9%) is about the real 32-layer
# model's (525M against 6.98G: 7.5%).
# A small job with one role and a few units of every kind is run once
# (`mechdiff run`, one rank), then bench_unit_cost recomputes up to
# MAX_UNITS units of every stage from that file and prints CPU seconds per
# token pass of cost per stage and its ratio to the job's (1.0 = the cost
# model is right for that stage). One thread (OPENBLAS_NUM_THREADS=1), nice'd;
# CPU seconds are robust to a shared machine, wall seconds are not.
#   bench/bench_unit_cost.sh BUILD_DIR [MAX_UNITS=2] [LAYERS=2] [MODEL_DIR]
# MODEL_DIR: where the checkpoint is (generated there if absent; kept).
set -euo pipefail
BUILD=$(cd "${1:?build dir}" && pwd); MAX_UNITS=${2:-2}; LAYERS=${3:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
M=$(realpath -m "${4:-$T/model}")
VOCAB=$((128256 * LAYERS / 32)); [ "$VOCAB" -le 7310 ] || VOCAB=7310
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
if [ ! -f "$M/model.safetensors" ]; then
  nice "$BUILD/mechdiff" make-model --like llama3-8b --layers "$LAYERS" --vocab "$VOCAB" --seed 1 --threads 1 \
    -o "$M" >/dev/null
fi
for f in tokenizer.json tokenizer_config.json; do
  [ -f "$M/$f" ] || cp "$ROOT/models/organism-base/$f" "$M/"
done
cat > "$T/job.yaml" <<YAML
name: bench-unit-cost
seed: 1
models: {base: $M}
datasets: {cities: $ROOT/data/cities.csv, sp_en_trans: $ROOT/data/sp_en_trans.csv,
           harmful: $ROOT/data/harmful.csv, harmless: $ROOT/data/harmless.csv}
runtime: {hash_weights: false}
# The study's batch sizes (the kinds' defaults), few units; truth and refusal
# read layer 0 (refusal at resid_post: its resid_pre there is the embedding
# of the same last token in every prompt), so that their collect forward
# stops after 1 of the 2 blocks as the study's does after about 12 of 32.
experiments:
  - {kind: knowledge, datasets: [cities], max_pairs: 4, n_shots: 2}
  - {kind: truth, train_datasets: [sp_en_trans], test_datasets: [cities], max_statements: 32, n_shots: 2,
     layer: 0}
  - {kind: refusal, n_train: 16, n_test: 16, templates: {base: base}, hook: resid_post, layer: 0}
  - {kind: confidence, prompts: cities, max_prompts: 8, neuron_block: 7168}
YAML
TIMEFORMAT='%R s wall, %U s user'
echo "model: llama3-8b widths, $LAYERS layers, vocab $VOCAB, bf16; machine load $(cut -d' ' -f1-3 /proc/loadavg)"
{ time nice "$BUILD/mechdiff" run "$T/job.yaml" -o "$T/out.h5" 2> "$T/run.log" >/dev/null; } 2>&1 \
  | sed 's/^/run: /' || { cat "$T/run.log"; exit 1; }
grep "units per experiment" "$T/run.log" | sed 's/^mechdiff: [^ ]* //'
nice "$BUILD/bench/bench_unit_cost" "$T/job.yaml" "$T/out.h5" "$MAX_UNITS"
echo "machine load after: $(cut -d' ' -f1-3 /proc/loadavg) (2 shared cores: wall s/unit is noisy when the load" \
     "is above 1; the ratios come from CPU seconds)"
