#!/usr/bin/env bash
# Snapshot cost vs results-file size, across the designs of the snapshot
# (src/runner/h5out.c), in one invocation.
#
# Workload: the knowledge kind with store_activations (14 positions, every
# layer: 1.75 MiB of activations per pair) on a generated 4-layer
# Llama-3-8B-width checkpoint (`make-model --like llama3-8b --layers 4`), one
# rank (rank 0 computes the units itself, so every second a snapshot takes
# is a second of wall time). What grows the file: on a CPU this job writes
# ~30 KB/s, far from the tens of GB an 8B job writes on GPUs, so after a
# short seed run (which defines the datasets) the bench adds an uncompressed
# SIZE-GB dataset /bench_filler to the stopped file, standing in for the
# activations a long run would have stored. From that file (rebuilt the same
# way for each design) the job is resumed with the same remaining PAIRS (+1
# if the seed run finished none) pairs:
#   before:    MECHDIFF_SNAPSHOT_COPY=1, every snapshot copies OUT.h5 (the design before issue 17)
#   redeflate: MECHDIFF_SNAPSHOT_REDEFLATE=1, OUT.h5.prev + the last two journals, the
#              older journal's units written (deflated) again (the design before the chunk copy)
#   after:     the default, OUT.h5.prev + the last two journals, the older journal's units'
#              chunks copied compressed from OUT.h5
# MECHDIFF_SNAPSHOT_LOG=1 reports each snapshot's seconds and file size.
# Prints per size and design: the first snapshot of the run (a copy in all
# three: the file has no OUT.h5.prev), the periodic ones (count, mean, max,
# each), the final one (it also frees the replaced version of the file), and
# the write overhead = periodic + final seconds / the compute seconds between
# the first and the final snapshot (that window minus the snapshots in it);
# the ratios before/after, redeflate/after and large/small size; whether the
# three designs wrote the same /knowledge datasets (SHA-256).
# Then, per size, the first snapshot of a resumed run: a run from the same
# file (snapshot_interval 1 s) is stopped (SIGTERM) after two snapshots
# (about 2 pairs: the stopped runs need PAIRS >= 4), resumed with
# MECHDIFF_SNAPSHOT_COPY=1 and stopped after its first snapshot (a copy: the
# design before the incremental resume), then resumed in the default design
# (its first snapshot starts from OUT.h5.prev) and stopped again; printed:
# both first snapshots and their ratio.
#   bench/bench_snapshot.sh BUILD_DIR [SIZES_GB="1 10"] [PAIRS=3] [INTERVAL_S=20] [MODEL_DIR]
# Disk: up to 3 x the largest size + the 3.6 GB checkpoint (deleted at exit
# unless MODEL_DIR is given). Not a test: ratios measured in one run.
set -euo pipefail
BUILD=$(cd "${1:?build dir}" && pwd); SIZES=${2:-"1 10"}; PAIRS=${3:-3}; INTERVAL=${4:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/bench_snapshot.XXXXXX"); trap 'rm -rf "$T"' EXIT
M=${5:-$T/model}
MD=$BUILD/mechdiff
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE
if [ ! -f "$M/model.safetensors" ]; then
  "$MD" make-model --like llama3-8b --layers 4 --seed 1 -o "$M" >/dev/null
fi
cp "$ROOT/models/organism-base/tokenizer.json" "$ROOT/models/organism-base/tokenizer_config.json" "$M/"
cat > "$T/job.yaml" <<YAML
name: bench-snapshot
models: {base: $M}
datasets: {cities: $ROOT/data/cities.csv}
runtime: {hash_weights: false, snapshot_interval: $INTERVAL, progress_interval: 600}
experiments:
  - {kind: knowledge, datasets: [cities], max_pairs: $((PAIRS + 1)), pair_block: 1, n_toks: 14, n_shots: 4,
     shot_seed: 1, store_activations: true}
YAML

# the same job (runtime is not part of its identity), a snapshot every second: the resume runs
sed "s/snapshot_interval: $INTERVAL/snapshot_interval: 1/" "$T/job.yaml" > "$T/fast.yaml"
cut -d' ' -f1-3 /proc/loadavg > "$T/load0"
# Seed: define the datasets, then stop (SIGTERM: status 75, resumable).
"$MD" run "$T/job.yaml" -o "$T/seed.h5" --quiet & pid=$!
while [ ! -e "$T/seed.h5" ]; do sleep 0.5; done
kill -TERM $pid; wait $pid || [ $? = 75 ] || { echo "seed run failed" >&2; exit 1; }

# grow SIZE: run.h5 = the seed file + SIZE GB of filler (the same bytes for every
# design; written, not copied, to keep the disk peak low)
grow() {
  cp "$T/seed.h5" "$T/run.h5"
  /usr/bin/python3 - "$T/run.h5" "$1" <<'PY'
import sys, h5py, numpy as np
path, gb = sys.argv[1], float(sys.argv[2])
n = int(gb * 1e9) // 4
block = np.full(1 << 24, 0.5, np.float32)          # 64 MiB
with h5py.File(path, "r+") as f:
    d = f.create_dataset("bench_filler/data", (n,), np.float32, chunks=(1 << 20,))
    for i in range(0, n, block.size):
        d[i:i + block.size] = block[: min(block.size, n - i)]
PY
  sync
}
# stop_after LOG N [ENV...]: runs the job on run.h5 (snapshots every second), SIGTERM
# once LOG shows N snapshots; each stop lets the unit under way finish
stop_after() {
  local log=$1 n=$2
  shift 2
  : > "$log"
  env "$@" MECHDIFF_SNAPSHOT_LOG=1 "$MD" run "$T/fast.yaml" -o "$T/run.h5" --quiet 2>>"$log" & local pid=$!
  while [ "$(grep -c '^mechdiff: snapshot' "$log" || true)" -lt "$n" ] && kill -0 $pid 2>/dev/null; do sleep 0.2; done
  kill -TERM $pid 2>/dev/null || true
  wait $pid || [ $? = 75 ] || { echo "stopped run failed: $log" >&2; cat "$log" >&2; exit 1; }
}

for size in $SIZES; do
  for mode in after redeflate before; do
    grow "$size"
    s=$(date +%s.%N)
    case $mode in
      before) design=(MECHDIFF_SNAPSHOT_COPY=1) ;;
      redeflate) design=(MECHDIFF_SNAPSHOT_REDEFLATE=1) ;;
      *) design=() ;;
    esac
    env "${design[@]}" MECHDIFF_SNAPSHOT_LOG=1 "$MD" run "$T/job.yaml" -o "$T/run.h5" --quiet 2>"$T/log.$size.$mode"
    e=$(date +%s.%N)
    echo "$size $mode $(echo "$e - $s" | bc)" >> "$T/walls"
    /usr/bin/python3 - "$T/run.h5" > "$T/sum.$size.$mode" <<'PY'
import hashlib, sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    done = f["completion/knowledge/stage0/done"][...]
    print("pairs done", int(done.sum()), "of", done.size)
    def digest(n, o):
        if isinstance(o, h5py.Dataset):
            v = o[...]
            b = b"\0".join(x for x in v.ravel()) if v.dtype.kind == "O" else v.tobytes()
            print(n, hashlib.sha256(b).hexdigest())
    f["knowledge"].visititems(digest)
PY
    rm -f "$T/run.h5"*
  done
  # the first snapshot of a resumed run: copy (before) vs from OUT.h5.prev (after)
  grow "$size"
  stop_after "$T/resume.$size.stop" 2
  stop_after "$T/resume.$size.before" 1 MECHDIFF_SNAPSHOT_COPY=1
  stop_after "$T/resume.$size.after" 1
  rm -f "$T/run.h5"*
done
/usr/bin/python3 - "$T" "$PAIRS" "$INTERVAL" <<'PY'
import re, sys
t, pairs, interval = sys.argv[1], int(sys.argv[2]), sys.argv[3]
walls = {}
for line in open(f"{t}/walls"):
    size, mode, w = line.split()
    walls[(size, mode)] = float(w)
pat = re.compile(r"snapshot (\d+) \((\w+)\): ([\d.]+) s, (\d+) units, ([\d.]+) MiB applied, file ([\d.]+) MiB, at ([\d.]+)")
print(f"knowledge, store_activations, 4-layer Llama-3-8B widths, 1 rank (computes and writes), "
      f"snapshot_interval {interval} s; load average {open(f'{t}/load0').read().strip()} at the start, "
      f"{' '.join(open('/proc/loadavg').read().split()[:3])} at the end")
print(f"{'file GiB':>8} {'design':>7} {'first s':>8} {'periodic':>8} {'mean s':>7} {'max s':>7} {'final s':>8} "
      f"{'compute s':>9} {'wall s':>7} {'overhead':>9}")
res = {}
sizes = sorted({s for s, _ in walls}, key=float)
for size in sizes:
    for mode in ("before", "redeflate", "after"):
        snaps = [(kind, float(s), float(mib), float(at))
                 for g, kind, s, u, a, mib, at in pat.findall(open(f"{t}/log.{size}.{mode}").read())]
        first, periodic, final = snaps[0], snaps[1:-1], snaps[-1]
        per = [s for _, s, _, _ in periodic]
        later = per + [final[1]]
        compute = (final[3] - first[3]) - sum(later)
        mean = sum(per) / len(per) if per else 0.0
        res[(size, mode)] = (mean, sum(later) / compute if compute > 0 else 0.0)
        kinds = "/".join(sorted({k[:4] for k, _, _, _ in periodic + [final]}))
        print(f"{first[2] / 1024:8.2f} {mode:>7} {first[1]:8.2f} {len(per):>3} {kinds:<4} {mean:7.3f} "
              f"{max(per or [0]):7.3f} {final[1]:8.3f} {compute:9.1f} {walls[(size, mode)]:7.1f} "
              f"{100 * res[(size, mode)][1]:8.2f}%")
        print(f"{'':17}periodic: {' '.join(f'{x:.3f}' for x in per)}")
    sums = {m: open(f"{t}/sum.{size}.{m}").read().splitlines() for m in ("before", "redeflate", "after")}
    sa = sums["after"]
    print(f"  {sa[0]}; /knowledge datasets identical in the three designs (SHA-256): "
          f"{sums['before'] == sa and sums['redeflate'] == sa}")
    for m in ("before", "redeflate"):
        for x, y in zip(sums[m], sa):
            if x != y:
                print(f"    {m} differs: {x.split()[0]}")
for size in sizes:
    b, r, a = res[(size, "before")], res[(size, "redeflate")], res[(size, "after")]
    print(f"size {size} GB: periodic snapshot before/after = {b[0] / max(a[0], 1e-9):.0f}x, "
          f"redeflate/after (chunk copy) = {r[0] / max(a[0], 1e-9):.2f}x; write overhead (periodic + final) "
          f"before {100 * b[1]:.1f}%, redeflate {100 * r[1]:.2f}%, after {100 * a[1]:.2f}% of compute")
for size in sizes:
    first = {}
    for m in ("before", "after"):
        g, kind, s, u, a, mib, at = pat.findall(open(f"{t}/resume.{size}.{m}").read())[0]
        first[m] = (kind, float(s), float(mib))
    (kb, sb, mib), (ka, sa, _) = first["before"], first["after"]
    print(f"size {size} GB, first snapshot of a resumed run ({mib / 1024:.2f} GiB file): "
          f"before ({kb}) {sb:.3f} s, after ({ka}) {sa:.3f} s = {sb / max(sa, 1e-9):.0f}x")
if len(sizes) > 1:
    lo, hi = sizes[0], sizes[-1]
    for mode in ("before", "after"):
        print(f"{mode}: periodic snapshot at {hi} GB / at {lo} GB = {res[(hi, mode)][0] / max(res[(lo, mode)][0], 1e-9):.2f}x")
PY
