#!/usr/bin/env bash
# The study's knowledge grid on one GPU (issue 19), the GPU side of
# bench/bench_paper_cpu.sh: a generated 32-layer Llama-3-8B-width checkpoint
# (real 128256 vocabulary, random bf16 weights, `make-model --like
# llama3-8b`), few-shot cities prompts (4 shots, ~80 tokens), the last 14
# positions, every layer, one worker rank on one GPU, MECHDIFF_PROFILE=1.
#   bench/bench_paper_gpu.sh BIN_DIR OUT_DIR
# BIN_DIR holds mechdiff (and bench_gpu, here or in BIN_DIR/bench/): the
# gpu-carry bin/ folder on the GPU machine, a build folder here.
# In order (the most valuable first; OUT_DIR/paper.txt is rewritten after
# every run, so a cut-off run leaves the figures so far):
#   make_model.txt  make-model's time (generated into MODEL_DIR, removed at
#                   the end unless KEEP_MODEL=1; MODEL=DIR uses DIR as is)
#   peak.txt        bench_gpu --square: the largest square bf16 GEMMs (the
#                   measured bf16 peak); BACKEND=cuda only
#   runs (RUNS, default "bf16 x3 perpair noprof"), each NAME.h5 + NAME.log:
#     bf16     PAIRS pairs, pair_block BLOCK, MECHDIFF_CUDA_GEMM=bf16, profiled
#     x3       the same in the default x3 GEMM mode (fp32-exact activations)
#     perpair  PERPAIR_PAIRS pairs, pair_block 1 (issue 19's before), bf16, profiled
#     noprof   as bf16 without MECHDIFF_PROFILE (its cost; same effects)
#   paper.txt, paper.json  bench/paper_gpu_report.py: cells/s, GEMM TFLOPS,
#                   fraction of the measured and the datasheet bf16 peak, the
#                   whole-study estimate in GPU-hours (bench/study_cost.py)
# Environment (defaults): BACKEND=cuda (cpu: a dry run of the whole chain,
# e.g. BACKEND=cpu LAYERS=2 VOCAB=7310 PAIRS=2 (VOCAB >= the organism
# tokenizer's 7310, whose tokenizer files are copied in) or MODEL=models/organism-base),
# LAYERS=32, VOCAB (the family's), PAIRS=128, PERPAIR_PAIRS=16, BLOCK (64 on
# cuda, 16 on cpu; a run that fails with it, e.g. out of GPU memory, is run
# once more and the rest are run with FALLBACK_BLOCK=16), RUN_TIMEOUT=150 s
# per run, MODEL_DIR (/dev/shm/md-paper-model when tmpfs has room, else /tmp/...),
# SQUARE=4096,8192,16384, DATASET=cities, N_SHOTS=4, N_TOKS=14, PY=python3,
# DEADLINE (epoch seconds; scripts/dev/gpu_checks.sh sets it): every timeout
# ends by then, a run with under MIN_RUN (20) s left is skipped
# (OUT_DIR/skipped), so the caller's own timeout never has to cut a run.
# Timeouts are `--foreground`: mpirun gets one SIGTERM and stops its ranks.
# A plain `timeout` signals its child and then its process group, and
# mpirun takes a second SIGTERM as "exit now": measured here, 4 of 5 plain
# `timeout 4 mpirun` left both ranks running, 0 of 6 with --foreground.
set -uo pipefail
BIN=$(cd "${1:?bin dir (mechdiff, bench_gpu)}" && pwd); O=${2:?out dir}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-python3}
BACKEND=${BACKEND:-cuda}; LAYERS=${LAYERS:-32}; PAIRS=${PAIRS:-128}; PERPAIR_PAIRS=${PERPAIR_PAIRS:-16}
RUNS=${RUNS:-bf16 x3 perpair noprof}; RUN_TIMEOUT=${RUN_TIMEOUT:-150}
DATASET=${DATASET:-cities}; N_SHOTS=${N_SHOTS:-4}; N_TOKS=${N_TOKS:-14}
BLOCK=${BLOCK:-$([ "$BACKEND" = cuda ] && echo 64 || echo 16)}; FALLBACK_BLOCK=${FALLBACK_BLOCK:-16}
MD=$BIN/mechdiff
BENCH=$BIN/bench_gpu; [ -x "$BENCH" ] || BENCH=$BIN/bench/bench_gpu
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
mkdir -p "$O"; O=$(cd "$O" && pwd); rm -f "$O/times" "$O/skipped"
failed=0
secs() { date +%s.%N; }
minus() { awk -v e="$1" -v s="$2" 'BEGIN{printf "%.2f", e - s}'; }
# tmo MAX: a timeout of MAX seconds, or what is left before DEADLINE (3 s kept)
tmo() { local l; [ -n "${DEADLINE:-}" ] || { echo "$1"; return; }; l=$((DEADLINE - $(date +%s) - 3))
        [ "$l" -lt "$1" ] && set -- "$l"; [ "$1" -lt 1 ] && echo 1 || echo "$1"; }

# tmpfs when it has room for the checkpoint (+ 4 GB): no disk write-back
# (make-model fsyncs) and loads from memory; else /tmp.
default_model_dir() {
  local need=$(( (LAYERS * 436 + 1051 + 4096) / 1024 + 1 ))  # GB: layers x 436 MB + embed/lm_head (bf16) + 4
  local shm; shm=$(df --output=avail -BG /dev/shm 2>/dev/null | tail -1 | tr -dc 0-9)
  if [ -n "$shm" ] && [ "$shm" -ge "$need" ]; then echo /dev/shm/md-paper-model; else echo /tmp/md-paper-model; fi
}
M=${MODEL:-}
if [ -z "$M" ]; then
  M=${MODEL_DIR:-$(default_model_dir)}
  [ "${KEEP_MODEL:-0}" = 1 ] || trap 'rm -rf "$M"' EXIT
  rm -rf "$M"
  s=$(secs)
  timeout --foreground -k 10 "$(tmo 900)" \
    "$MD" make-model --like llama3-8b --layers "$LAYERS" --seed 1 ${VOCAB:+--vocab "$VOCAB"} -o "$M" >/dev/null ||
    { echo "make-model failed (exit $?)" | tee "$O/make_model.txt"; exit 1; }
  e=$(secs)
  echo "make-model --like llama3-8b --layers $LAYERS${VOCAB:+ --vocab $VOCAB}: $(du -sh "$M" | cut -f1) in" \
       "$(minus "$e" "$s") s on $(nproc) CPUs, into $M" | tee "$O/make_model.txt"
fi
M=$(cd "$M" && pwd)
for f in tokenizer.json tokenizer_config.json; do
  [ -f "$M/$f" ] || cp "$ROOT/models/organism-base/$f" "$M/"
done

if [ "$BACKEND" = cuda ]; then
  timeout --foreground -k 10 "$(tmo 90)" "$BENCH" --rows none --square "${SQUARE:-4096,8192,16384}" > "$O/peak.txt" 2>&1
  echo "bench_gpu --square: exit $?" >> "$O/peak.txt"; cat "$O/peak.txt"
fi

for run in $RUNS; do
 for try in 1 2; do  # a run that fails (not by its timeout) with blocks of BLOCK: once more with FALLBACK_BLOCK
  gemm=bf16; prof=1; block=$BLOCK; pairs=$PAIRS
  case $run in
    bf16) ;;
    x3) gemm=x3 ;;
    perpair) block=1; pairs=$PERPAIR_PAIRS ;;
    noprof) prof=0 ;;
    *) echo "unknown run '$run' (bf16 x3 perpair noprof)"; continue ;;
  esac
  cat > "$O/$run.yaml" <<YAML
name: bench-paper-gpu-$run
models: {base: $M}
datasets: {$DATASET: $ROOT/data/$DATASET.csv}
runtime: {hash_weights: false, backend: $BACKEND}
experiments:
  - {kind: knowledge, datasets: [$DATASET], max_pairs: $pairs, n_toks: $N_TOKS, n_shots: $N_SHOTS, shot_seed: 1, pair_block: $block}
YAML
  rm -f "$O/$run.h5"
  t=$(tmo "$RUN_TIMEOUT")
  [ "$t" -lt "${MIN_RUN:-20}" ] && { echo "$run: skipped ($t s left before the deadline)" | tee -a "$O/skipped"; break; }
  s=$(secs)
  MECHDIFF_PROFILE=$prof MECHDIFF_CUDA_GEMM=$gemm timeout --foreground -k 10 "$t" \
    mpirun --oversubscribe --bind-to none -np 2 -x OPENBLAS_NUM_THREADS=1 -x MECHDIFF_PROFILE -x MECHDIFF_CUDA_GEMM \
    "$MD" run "$O/$run.yaml" -o "$O/$run.h5" --quiet > "$O/$run.log" 2>&1
  rc=$?; e=$(secs)
  echo "$run $rc $(minus "$e" "$s") $block $gemm $prof $pairs" >> "$O/times"
  echo "$run: exit $rc, $(minus "$e" "$s") s (pair_block $block)"
  [ $rc = 0 ] || { tail -n 5 "$O/$run.log"; cp "$O/$run.log" "$O/$run.try$try.log"; }
  PYTHONPATH="$ROOT/bench" $PY "$ROOT/bench/paper_gpu_report.py" "$O" "$M" > "$O/paper.txt" 2>&1
  [ $rc = 0 ] && break
  [ $try = 1 ] && [ $rc != 124 ] && [ $rc != 137 ] && [ "$block" = "$BLOCK" ] && [ "$BLOCK" != "$FALLBACK_BLOCK" ] &&
    { echo "$run failed with pair_block $BLOCK: the remaining runs use pair_block $FALLBACK_BLOCK"; BLOCK=$FALLBACK_BLOCK;
      continue; }
  failed=1; break
 done
done
cat "$O/paper.txt"
exit $failed
