#!/usr/bin/env bash
# Head-level vs residual patching grid (issue 18): the same knowledge job on
# the shipped organism pair (base and instruct, each patched within itself),
# run with `component: resid_post` and with `component: head`, timed in one
# run. Cells: pair x layer x position for the residual grid (effect), pair x
# layer x head x position for the head grid (effect_head), summed over the
# (target, source) combinations. Prints cells/s of each and their ratio
# (head/resid), also net of the fixed start-up (MPI init, model and tokenizer
# load, pair curation: a 1-pair resid_post run, timed in the same run).
#   bench/bench_heads.sh BUILD_DIR [PAIRS=60, the quickstart grid] [RANKS=1] [N_TOKS=4]
set -euo pipefail
BUILD=${1:?build dir}; PAIRS=${2:-60}; RANKS=${3:-1}; NTOKS=${4:-4}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for mode in resid_post head startup; do
  comp=$mode pairs=$PAIRS
  [ "$mode" = startup ] && comp=resid_post pairs=1
  cat > "$T/$mode.yaml" <<YAML
name: bench-heads
models: {base: $ROOT/models/organism-base, instruct: $ROOT/models/organism-instruct}
datasets: {cities: $ROOT/data/cities.csv}
runtime: {hash_weights: false}
experiments:
  - {kind: knowledge, datasets: [cities], max_pairs: $pairs, n_toks: $NTOKS, component: $comp}
YAML
  run=("$BUILD/mechdiff" run "$T/$mode.yaml" -o "$T/$mode.h5")
  [ "$RANKS" -gt 1 ] && run=(mpirun --oversubscribe -np "$RANKS" "${run[@]}")
  s=$(date +%s.%N); "${run[@]}" > /dev/null 2>&1; e=$(date +%s.%N)
  echo "$mode $(echo "$e - $s" | bc)" >> "$T/times"
done
/usr/bin/python3 - "$T" <<'PY'
import sys, h5py
t = sys.argv[1]
times = {k: float(v) for k, v in (l.split() for l in open(f"{t}/times"))}
def cells(path, name):
    n, shapes = 0, []
    def visit(key, obj):
        nonlocal n
        if isinstance(obj, h5py.Dataset) and key.rsplit("/", 1)[-1] == name:
            n += obj.size
            shapes.append(f"{key} {obj.shape}")
    with h5py.File(path, "r") as f:
        f["knowledge"].visititems(visit)
    if not n:
        sys.exit(f"bench_heads: no '{name}' dataset in {path}")
    return n, shapes
rc, rs = cells(f"{t}/resid_post.h5", "effect")
hc, hs = cells(f"{t}/head.h5", "effect_head")
r_s, h_s, st = times["resid_post"], times["head"], times["startup"]
print("residual grid: " + "; ".join(rs))
print("head grid    : " + "; ".join(hs))
print(f"resid_post: {rc:8d} cells {r_s:8.2f} s {rc / r_s:10.1f} cells/s (net of start-up {rc / max(r_s - st, 1e-9):10.1f})")
print(f"head      : {hc:8d} cells {h_s:8.2f} s {hc / h_s:10.1f} cells/s (net of start-up {hc / max(h_s - st, 1e-9):10.1f})")
print(f"cells/s head/resid {hc / h_s / (rc / r_s):.3f} (net of start-up {(hc / max(h_s - st, 1e-9)) / (rc / max(r_s - st, 1e-9)):.3f}); "
      f"wall-clock head/resid {h_s / r_s:.2f}x; start-up (1-pair resid run) {st:.2f} s")
PY
