#!/usr/bin/env bash
# Dev-only: the GPU checks of the CUDA backend (issues 8 and 19), run on a
# machine with an NVIDIA GPU and the CUDA runtime but none of our other
# dependencies (the `device` tool's image). Pack first, here:
#   scripts/dev/pack_gpu_carry.sh build-gpu gpu-carry
# then on the GPU machine (docs/cuda.md, "The next GPU session"):
#   scripts/dev/gpu_checks.sh gpu-carry OUT_DIR [paper] [ops] [bench] [patching] [quickstart]
# (no step names = all, in this order: the most valuable figures first).
# The whole run stays within BUDGET seconds (default 450, under 8 minutes):
# each step gets a timeout of at most its own cap and what is left (the
# paper step also passes it on as DEADLINE, so its runs end in time); a
# step that would get under 20 s is skipped (steps.txt says so). Every
# timeout around mpirun is --foreground (see bench/bench_paper_gpu.sh: a
# plain one often leaves the ranks running, on the GPU, into later steps).
#
# What comes back: the `device` tool returns at most 8 files from its $OUT
# (16 MiB each, 2 folders deep), so the steps write into GPU_CHECKS_WORK (default
# /tmp/md-gpu-checks, emptied first) and after every step OUT_DIR gets
#   results.tgz  every file there but the .h5 results (replaced atomically,
#                so a cut-off run returns the figures of the steps before)
#   env.txt, steps.txt  (also inside results.tgz)
# A step in which a GPU program failed (not skipped, not cut by its timeout)
# is run once more with MECHDIFF_CUDA_SYNC=1 when 30 s of the budget are
# left, so that its log names the op (and layer) a kernel fault came from
# (docs/cuda.md, "Finding a kernel fault"): the rerun's files carry _sync
# (ops_sync.txt, paper_sync/ + paper_sync.log: only the first failed run, on
# the model kept from the first try; quickstart_gpu_sync.log, kn8b_sync_*:
# the GPU runs alone); steps.txt says which step failed and was rerun.
# It holds: env.txt, steps.txt (each step's exit status and seconds),
#   paper/ + paper.log  bench/bench_paper_gpu.sh: the knowledge grid at 32
#           layers at Llama-3-8B widths, profiled; paper/paper.txt + paper.json
#   ops.txt (+ ops_profile.txt, ops_hooks.txt, ops_sync_fault.txt), bench.txt, patching.txt
#   (+ kn8b_*), quickstart.txt (+ _cmp, logs)
# A carry dir without rt.tar.xz is taken as a build dir of this machine
# (mechdiff, bench/bench_gpu, tests/test_{backend_ops,backend_attn,backend_forward,profile,hook_batch,cuda_sync};
# no runtime unpacked): e.g. BUDGET=120 scripts/dev/gpu_checks.sh build /tmp/o
# paper with BACKEND=cpu LAYERS=2 VOCAB=7310 PAIRS=2 is a dry run of the paper
# step (tests/e2e/gpu_checks_dry.sh runs one in ctest).
set -uo pipefail
PY=${PY:-python3}
C=${1:?carry dir}; O=${2:?out dir}; shift 2
STEPS=${*:-paper ops bench patching quickstart}
BUDGET=${BUDGET:-450}
T0=$(date +%s)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
mkdir -p "$O" || exit 1
O=$(cd "$O" && pwd)
W=${GPU_CHECKS_WORK:-/tmp/md-gpu-checks}
mkdir -p "$W" && W=$(cd "$W" && pwd) || exit 1
case "$W/" in "$O"/*) echo "GPU_CHECKS_WORK ($W) must not be inside the out dir ($O)"; exit 2 ;; esac
case "$O/" in "$W"/*) echo "the out dir ($O) must not be inside GPU_CHECKS_WORK ($W), which is emptied"; exit 2 ;; esac
rm -rf "${W:?}"/* && [ -d "$C" ] && C=$(cd "$C" && pwd) || { echo "carry dir $C missing" | tee "$O/env.txt"; exit 1; }

# pack: the work folder (without result files) into OUT_DIR/results.tgz, replaced
# atomically; over 15 MiB (the tool returns files up to 16 MiB) without logs
pack() {
  local x=(--exclude='*.h5' --exclude='*.h5.*' --exclude=m8b)
  tar -czf "$O/results.tgz.part" -C "$W" "${x[@]}" . 2>/dev/null
  if [ "$(stat -c %s "$O/results.tgz.part" 2>/dev/null || echo 0)" -gt $((15 << 20)) ]; then
    echo "results.tgz over 15 MiB: packed without the *.log files" >> "$W/steps.txt"
    tar -czf "$O/results.tgz.part" -C "$W" "${x[@]}" --exclude='*.log' . 2>/dev/null
  fi
  mv -f "$O/results.tgz.part" "$O/results.tgz" 2>/dev/null
  cp -f "$W/env.txt" "$W/steps.txt" "$O/" 2>/dev/null
  return 0
}
touch "$W/steps.txt"

if [ -f "$C/rt.tar.xz" ]; then
  # Runtime: our shared libraries in /opt/md/lib, Open MPI at its Debian paths
  # (its plugins, help texts and orted are looked up there); cuBLAS from the
  # machine's CUDA toolkit.
  mkdir -p /opt/md && tar -xJf "$C/rt.tar.xz" -C /opt/md ||
    { echo "cannot unpack $C/rt.tar.xz into /opt/md" | tee "$W/env.txt"; pack; exit 1; }
  # Overwrite a distribution's own Open MPI there (its plugins would load our
  # libpmix/libmpi from /opt/md/lib and fail on missing symbols).
  if ! cmp -s /opt/md/lib/libmpi.so.40 /usr/lib/x86_64-linux-gnu/libmpi.so.40; then
    rm -rf /usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3
    cp -a /opt/md/usr/. /usr/ && { [ ! -d /opt/md/etc ] || cp -a /opt/md/etc/. /etc/; } ||
      { echo "cannot install Open MPI from /opt/md/usr" | tee "$W/env.txt"; pack; exit 1; }
  fi
  CUBLAS=$(find /usr/local/cuda/ /usr/local/cuda*/ /usr/lib /opt -name 'libcublas.so.13' 2>/dev/null | head -1)
  CUBLAS=${CUBLAS:+$(dirname "$CUBLAS")}
  export LD_LIBRARY_PATH=$C/bin:/opt/md/lib${CUBLAS:+:$CUBLAS}:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
  BIN=$C/bin; MD=$BIN/mechdiff; OPS=$BIN/test_backend_ops; BENCH=$BIN/bench_gpu
else
  CUBLAS="(build dir: the system's)"
  BIN=$C; MD=$C/mechdiff; OPS=$C/tests/test_backend_ops; BENCH=$C/bench/bench_gpu
fi
# MECHDIFF_CUDA_SYNC: 0 (the CUDA backend's default) but for the rerun of a
# failed step; always set, so mpirun can pass it on (-x)
export MECHDIFF_CUDA_SYNC=${MECHDIFF_CUDA_SYNC:-0}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader \
       OMPI_MCA_pml=ob1 OMPI_MCA_mtl=^ofi OMPI_MCA_btl_vader_single_copy_mechanism=none HDF5_USE_FILE_LOCKING=FALSE
# Preflight: what the carried build needs from this machine, said plainly
# (the steps still run, so their own messages come back too).
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*' | sed 's/^/driver supports /'
  echo "cublas: ${CUBLAS:-NOT FOUND}"
  [ -n "$CUBLAS" ] || echo "PREFLIGHT: libcublas.so.13 not found under /usr/local/cuda*, /usr/lib, /opt: the" \
    "carried build was linked against CUDA 13's cuBLAS; every GPU step will fail to start"
  for p in "$MD" "$OPS" "$BENCH"; do
    miss=$(ldd "$p" 2>&1 | grep -E 'not found|No such file' | tr -s ' \t' ' ')
    [ -z "$miss" ] || echo "PREFLIGHT: $p cannot load:$miss"
  done
  ldd "$MD" | grep -E 'cublas|cudart'
  timeout -k 5 30 "$BENCH" --rows none 2>&1 | head -2   # "GPU 0: NAME, cc ..." or "no GPU: <the runtime's reason>"
  nproc; free -g | head -2
  df -h /tmp /dev/shm | tail -2; git -C "$ROOT" log -1 --format='commit %h %s' 2>/dev/null; } > "$W/env.txt" 2>&1
cat "$W/env.txt"
pack
secs() { date +%s.%N; }
minus() { awk -v e="$1" -v s="$2" 'BEGIN{printf "%.2f", e - s}'; }
# seconds left of BUDGET (5 kept for the last lines); cap MAX: a timeout of at most MAX and what is left
left() { echo $((BUDGET - ($(date +%s) - T0) - 5)); }
cap() { local l; l=$(left); [ "$l" -lt "$1" ] && set -- "$l"; [ "$1" -lt 1 ] && echo 1 || echo "$1"; }

# failed RC: a GPU program of the step failed (not skipped: 77, not cut by
# its timeout: 124, 137): the step returns 2 and is rerun (below)
failed() { case $1 in 0|77|124|137) ;; *) bad=2 ;; esac; }
# The paper runs (bench_paper_gpu.sh's DIR/times: run, exit status, ...)
# whose last try failed so (a first try's failure that the fallback block
# mended does not count), in order.
paper_failed() {
  awk '!($1 in last) {order[n++] = $1} {last[$1] = $2}
       END {for (i = 0; i < n; i++) if (last[order[i]] !~ /^(0|124|137)$/) print order[i]}' "$1/times" 2>/dev/null
}

# run_step STEP X: one step; X is "" or, for the rerun with
# MECHDIFF_CUDA_SYNC=1, "_sync", which every file of the step carries (the
# first run's files stay). Returns 2 when a GPU program failed, else 0.
run_step() {
  local step=$1 X=$2 bad=0 t s e rc
  case $step in
paper)  # issue 19: the grid at 32 layers, GEMM fraction of the bf16 peak, the study in GPU-hours
  t=$(cap 270)
  # the rerun: the first run that failed, on the model the first one kept
  local runs=${RUNS:-} model=${MODEL:-}
  if [ -n "$X" ]; then
    runs=$(paper_failed "$W/paper" | head -1)
    [ -n "$runs" ] || { echo "paper: no failed run to repeat" | tee "$W/paper$X.log"; return 0; }
    # the first that exists, in this order (`ls -d` would sort them: /dev/shm before MODEL_DIR)
    local d
    for d in "${MODEL_DIR:-}" /dev/shm/md-paper-model /tmp/md-paper-model; do
      [ -n "$model" ] || { [ -n "$d" ] && [ -d "$d" ] && model=$d; }
    done
  fi
  # DEADLINE: the runs inside end before this step's timeout, a backstop that
  # signals the script alone (--foreground): mpirun under a run's own timeout
  # must get one SIGTERM (a second one makes it exit without stopping its ranks)
  DEADLINE=$(( $(date +%s) + t - 5 )) RUN_TIMEOUT=${RUN_TIMEOUT:-90} RUNS=$runs MODEL=$model KEEP_MODEL=1 \
    SQUARE=$([ -n "$X" ] && echo 4096 || echo "${SQUARE:-4096,8192,16384}") timeout --foreground -k 10 "$t" bash bench/bench_paper_gpu.sh "$BIN" "$W/paper$X" > "$W/paper$X.log" 2>&1
  echo "paper: exit $? (timeout $t s)" >> "$W/paper$X.log"
  [ -z "$(paper_failed "$W/paper$X")" ] || bad=2
  tail -n 60 "$W/paper$X.log" ;;
ops)  # every op and whole golden forwards vs the CPU backend, three modes; MECHDIFF_PROFILE's cudaEvent spans
  local end prog
  end=$(( $(date +%s) + $(cap 150) ))   # the three programs share the 150 s
  : > "$W/ops$X.txt"
  for prog in "$OPS" "${OPS%/*}/test_backend_attn" "${OPS%/*}/test_backend_forward"; do
    t=$(cap $((end - $(date +%s))))
    timeout -k 5 "$t" "$prog" --gpu >> "$W/ops$X.txt" 2>&1; rc=$?; failed $rc
    echo "${prog##*/} --gpu: exit $rc (timeout $t s)" | tee -a "$W/ops$X.txt"
  done
  tail -40 "$W/ops$X.txt"
  timeout -k 5 "$(cap 30)" "${OPS%/*}/test_profile" --gpu > "$W/ops_profile$X.txt" 2>&1; rc=$?; failed $rc
  echo "test_profile --gpu: exit $rc" | tee -a "$W/ops_profile$X.txt"; grep -v "^mechdiff profile:" "$W/ops_profile$X.txt"
  # batched hooks (put_cells) on CUDA == single hooks, bit for bit (issue 19)
  timeout -k 5 "$(cap 60)" "${OPS%/*}/test_hook_batch" --gpu > "$W/ops_hooks$X.txt" 2>&1; rc=$?; failed $rc
  echo "test_hook_batch --gpu: exit $rc" | tee -a "$W/ops_hooks$X.txt"; tail -5 "$W/ops_hooks$X.txt"
  # MECHDIFF_CUDA_SYNC=1 names the op of a provoked kernel fault (its own children set the variable)
  timeout -k 5 "$(cap 30)" "${OPS%/*}/test_cuda_sync" --gpu > "$W/ops_sync_fault$X.txt" 2>&1; rc=$?; failed $rc
  echo "test_cuda_sync --gpu: exit $rc" | tee -a "$W/ops_sync_fault$X.txt"; tail -12 "$W/ops_sync_fault$X.txt" ;;
bench)  # GEMM fractions of the bf16 peak at Llama-3-8B widths
  timeout -k 5 "$(cap 60)" "$BENCH" --like llama3-8b --rows 1,16,128,512,2048,8192 > "$W/bench$X.txt" 2>&1; rc=$?
  failed $rc
  echo "bench: exit $rc" >> "$W/bench$X.txt"; cat "$W/bench$X.txt" ;;
quickstart)  # the quickstart sweep on the GPU vs on the CPU, same ranks (the rerun: the GPU run alone)
  # beside quickstart.yaml: its relative paths are relative to its folder (removed after the run)
  sed 's/^runtime:$/runtime:\n  backend: cuda/' jobs/quickstart.yaml > jobs/quickstart_gpu.yaml
  grep -A2 '^runtime:' jobs/quickstart_gpu.yaml
  s=$(secs); timeout --foreground -k 10 "$(cap 40)" mpirun --oversubscribe -np 3 -x OPENBLAS_NUM_THREADS=1 \
      -x MECHDIFF_CUDA_SYNC "$MD" run jobs/quickstart_gpu.yaml -o "$W/quickstart_gpu$X.h5" --quiet \
      > "$W/quickstart_gpu$X.log" 2>&1; rc=$?; e=$(secs)
  rm -f jobs/quickstart_gpu.yaml
  failed $rc
  echo "gpu quickstart: exit $rc, $(minus "$e" "$s") s" | tee "$W/quickstart$X.txt"
  if [ -z "$X" ]; then
    s=$(secs); timeout --foreground -k 10 "$(cap 60)" mpirun --oversubscribe -np 3 -x OPENBLAS_NUM_THREADS=1 "$MD" run \
        jobs/quickstart.yaml -o "$W/quickstart_cpu.h5" --quiet > "$W/quickstart_cpu.log" 2>&1; rc=$?; e=$(secs)
    echo "cpu quickstart (1 thread per rank): exit $rc, $(minus "$e" "$s") s" | tee -a "$W/quickstart.txt"
    tail -n 5 "$W/quickstart_gpu.log" "$W/quickstart_cpu.log"
    $PY scripts/dev/compare_h5.py "$W/quickstart_cpu.h5" "$W/quickstart_gpu.h5" > "$W/quickstart_cmp.txt" 2>&1
    echo "compare: exit $?" >> "$W/quickstart_cmp.txt"; grep -E 'differs|only in|compared|exit' "$W/quickstart_cmp.txt"
  else
    tail -n 20 "$W/quickstart_gpu$X.log"
  fi ;;
patching)  # patching cells/s at Llama-3-8B widths (4 layers, the organism's vocabulary), 1 GPU vs all CPU cores
  local V M8 run be block np pairs
  V=$($PY -c "import json;print(json.load(open('models/organism-base/config.json'))['vocab_size'])")
  M8=$W/m8b
  timeout -k 5 "$(cap 60)" "$MD" make-model --like llama3-8b --layers 4 --seed 1 --vocab "$V" -o "$M8" > /dev/null &&
    cp models/organism-base/tokenizer*.json "$M8/" || echo "make-model --layers 4: failed" >> "$W/patching$X.txt"
  for run in cuda cpu cuda1; do
    # GPU: one worker rank on the GPU (cuda: the default pair_block, 64 pairs
    # per unit batched through the weights; cuda1: pair_block 1, one pair per
    # unit, issue 19's before). CPU: the usual CPU deployment, one
    # single-threaded worker rank per core (nproc - 1 workers + coordinator).
    # The rerun: the GPU runs alone, into kn8b_sync_*.
    be=${run%1}; block=0; [ $run = cuda1 ] && block=1
    [ -n "$X" ] && [ $be = cpu ] && continue
    np=2; pairs=${PAIRS_GPU:-128}; [ $be = cpu ] && np=$(nproc) && pairs=${PAIRS_CPU:-$(($(nproc) - 1))}
    [ $run = cuda1 ] && pairs=${PAIRS_GPU1:-32}
    cat > "$W/kn8b${X}_$run.yaml" <<YAML
name: bench-8b-$run
models: {base: $M8}
datasets: {cities: $ROOT/data/cities.csv}
runtime: {hash_weights: false, backend: $be}
experiments:
  - {kind: knowledge, datasets: [cities], max_pairs: $pairs, pair_block: $block}
YAML
    [ "$(left)" -lt 20 ] && { echo "$run: skipped (budget spent)" >> "$W/patching$X.txt"; continue; }
    t=$(cap 60)
    s=$(secs); timeout --foreground -k 10 "$t" mpirun --oversubscribe --bind-to none -np $np -x OPENBLAS_NUM_THREADS=1 \
        -x MECHDIFF_CUDA_SYNC "$MD" run "$W/kn8b${X}_$run.yaml" -o "$W/kn8b${X}_$run.h5" --quiet > "$W/kn8b${X}_$run.log" 2>&1
    rc=$?; e=$(secs)
    [ $be = cpu ] || failed $rc
    echo "$run $rc $(minus "$e" "$s")" >> "$W/kn8b${X}_times"
  done
  if [ -z "$X" ]; then
  $PY - "$W" >> "$W/patching.txt" 2>&1 <<'PY'
import sys, h5py, numpy as np
o = sys.argv[1]
t = {l.split()[0]: (int(l.split()[1]), float(l.split()[2])) for l in open(f"{o}/kn8b_times")}
res = {}
for be in ("cuda", "cpu", "cuda1"):
    if be not in t:
        continue
    rc, s = t[be]
    if rc:
        print(f"{be}: exit {rc} after {s:.1f} s"); continue
    with h5py.File(f"{o}/kn8b_{be}.h5") as f:
        e = f["knowledge/cities/base->base/effect"][...]
    res[be] = e
    print(f"{be}: {e.size} cells ({e.shape[0]} pairs x {e.shape[1]} layers x {e.shape[2]} positions) in {s:.1f} s "
          f"(incl. start and weight load) = {e.size / s:.1f} cells/s")
if "cuda" in res and "cuda1" in res:
    print(f"GPU pair_block 64 / pair_block 1 cells/s (start-up included in both): "
          f"{(res['cuda'].size / t['cuda'][1]) / (res['cuda1'].size / t['cuda1'][1]):.1f}x; max |effect difference| "
          f"over the first {res['cuda1'].shape[0]} pairs {np.abs(res['cuda'][:res['cuda1'].shape[0]] - res['cuda1']).max():.2e}")
if "cuda" in res and "cpu" in res:
    print(f"GPU / CPU cells/s ratio: {(res['cuda'].size / t['cuda'][1]) / (res['cpu'].size / t['cpu'][1]):.1f}x")
    # the pairs both runs computed (matched by statement), effect by effect
    with h5py.File(f"{o}/kn8b_cuda.h5") as fa, h5py.File(f"{o}/kn8b_cpu.h5") as fb:
        sa = list(fa["knowledge/cities/pairs/true_statement"][...])
        sb = list(fb["knowledge/cities/pairs/true_statement"][...])
    where = {s: i for i, s in enumerate(sa)}
    both = [(where[s], j) for j, s in enumerate(sb) if s in where]
    ia, ib = [p[0] for p in both], [p[1] for p in both]
    d = float(np.abs(res["cuda"][ia] - res["cpu"][ib]).max())
    scale = float(np.abs(res["cpu"][ib]).max())
    print(f"{len(both)} pairs in both: max |effect difference| {d:.2e} on a largest |effect| of {scale:.2f} "
          f"(relative {d / scale:.1e})")
PY

  else
    cat "$W/kn8b_sync_times" >> "$W/patching$X.txt" 2>/dev/null
    tail -n 5 "$W"/kn8b_sync_*.log >> "$W/patching$X.txt" 2>/dev/null
  fi
  rm -rf "$M8"
  cat "$W/patching$X.txt" ;;
*) echo "unknown step '$step' (paper ops bench patching quickstart)" ;;
  esac
  return $bad
}

for step in $STEPS; do
  [ "$(left)" -lt 20 ] && { echo "$step: skipped (budget of $BUDGET s spent)" | tee -a "$W/steps.txt"; continue; }
  step_t0=$(secs)
  run_step "$step" ""; rc=$?
  echo "$step: $(minus "$(secs)" "$step_t0") s$([ $rc = 2 ] && echo "; a GPU program failed")" | tee -a "$W/steps.txt"
  pack
  # A failed GPU program once more with MECHDIFF_CUDA_SYNC=1 (docs/cuda.md,
  # "Finding a kernel fault"): its log then names the op (and layer) that
  # faulted, not the later one that noticed it. Files: *_sync*.
  if [ $rc = 2 ] && [ "$MECHDIFF_CUDA_SYNC" != 1 ]; then
    if [ "$(left)" -lt 30 ]; then
      echo "$step: not rerun with MECHDIFF_CUDA_SYNC=1 (under 30 s of the budget left)" | tee -a "$W/steps.txt"
    else
      step_t0=$(secs)
      MECHDIFF_CUDA_SYNC=1; run_step "$step" _sync; rc=$?; MECHDIFF_CUDA_SYNC=0
      echo "$step rerun with MECHDIFF_CUDA_SYNC=1 (files *_sync*): $(minus "$(secs)" "$step_t0") s$([ $rc = 2 ] &&
            echo "; a GPU program failed")" | tee -a "$W/steps.txt"
      pack
    fi
  fi
  # the paper step's generated model (kept for a rerun), after a timeout too
  [ "$step" != paper ] || [ -n "${MODEL:-}" ] || rm -rf "${MODEL_DIR:-/tmp/md-paper-model}" /tmp/md-paper-model \
    /dev/shm/md-paper-model
done
echo "all steps: $(( $(date +%s) - T0 )) s (budget $BUDGET s)" | tee -a "$W/steps.txt"
pack
