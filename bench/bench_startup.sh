#!/usr/bin/env bash
# Start-up cost of weight hashing: a job with three model roles whose
# checkpoints are generated at Llama-3.1-8B widths (`make-model`, LAYERS
# decoder layers each, default 4: 3 x 1.75 GB), run three times on one rank:
#   cold   no digest cache, the page cache dropped (echo 3 >
#          /proc/sys/vm/drop_caches where permitted, else the checkpoints'
#          pages evicted with posix_fadvise DONTNEED): every byte read from
#          disk and hashed
#   hot    no digest cache, checkpoints in the page cache: hashing alone
#   warm   the digest caches of the cold run (what a resume, requeue or array
#          task sees): nothing hashed
#   other  an empty user cache, the cache next to the output of the cold run
#          (<output folder>/.mechdiff-digests): a requeue or array task on a
#          node whose home is not shared
# The job's only experiment is a 1-unit `selftest`, so a run's wall time is
# its start-up (MPI init, job parsing, provenance with the weight digests,
# creating the results file) plus exit. Prints per run the hashing time (from
# the run's own progress line) and the wall time, and the verdict of the
# goal: warm (and other) start-up <= 2 s.
#   bench/bench_startup.sh BUILD_DIR [LAYERS=4] [WORK_DIR=mktemp]
set -euo pipefail
BUILD=${1:?build dir}; LAYERS=${2:-4}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=${3:-$(mktemp -d)}; trap 'rm -rf "$T"' EXIT
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for role in base instruct tulu; do
  "$BUILD/mechdiff" make-model --like llama3-8b --layers "$LAYERS" --seed ${#role} --vocab 32000 -o "$T/$role" >/dev/null
done
cat > "$T/job.yaml" <<YAML
name: bench-startup
models: {base: $T/base, instruct: $T/instruct, tulu: $T/tulu}
datasets: {cities: $ROOT/data/cities.csv}
runtime: {hash_weights: true}
experiments:
  - {kind: selftest, units: 1, stages: 1}
YAML
evict() {
  sync
  if (echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null; then echo "cold: page cache dropped (drop_caches)"; return; fi
  echo "cold: drop_caches not permitted; the checkpoints' pages evicted (posix_fadvise DONTNEED)"
  /usr/bin/python3 - "$T" <<'PY'
import os, sys, glob
for p in glob.glob(f"{sys.argv[1]}/*/model.safetensors"):
    fd = os.open(p, os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)
PY
}
run() { # name cache_dir
  rm -f "$T"/out.h5*
  local s e; s=$(date +%s.%N)
  MECHDIFF_DIGEST_CACHE=$2 "$BUILD/mechdiff" run "$T/job.yaml" -o "$T/out.h5" 2>"$T/$1.log"
  e=$(date +%s.%N)
  local hashed; hashed=$(grep -o 'hashed [0-9]* files in [0-9.]* s' "$T/$1.log" | awk '{print $5}' || true)
  hashed=${hashed:-0}  # every digest from a cache: nothing hashed
  local line; line=$(grep -E 'hashing [0-9]+ files \(' "$T/$1.log" | head -1 | sed 's/^mechdiff: [^ ]* //' || true)
  printf '%-5s hashing %6.2f s   start-up (whole run) %6.2f s   (%s)\n' "$1" "$hashed" "$(echo "$e - $s" | bc)" "$line"
  echo "$1 $hashed $(echo "$e - $s" | bc)" >> "$T/times"
}
du -sh "$T"/base "$T"/instruct "$T"/tulu | awk '{printf "%s %s  ", $2, $1} END {print ""}' | sed "s|$T/||g"
sleep 3  # the cache stores only files older than 2 s
rm -rf "$T/cache" "$T/.mechdiff-digests"
evict; run cold "$T/cache"
run hot off
run warm "$T/cache"
run other "$T/empty-cache"
awk '{h[$1]=$2; w[$1]=$3} END {
  printf "start-up cold %.2f s, hot %.2f s, warm %.2f s, other node %.2f s: warm/cold %.3f\n", w["cold"], w["hot"], w["warm"], w["other"], w["warm"]/w["cold"];
  printf "goal warm <= 2 s: %s; other node (cache next to the output only) <= 2 s: %s\n",
    w["warm"] <= 2 ? "met" : "NOT met", w["other"] <= 2 ? "met" : "NOT met" }' "$T/times"
