#!/usr/bin/env bash
# Start-up cost of weight hashing: a job with three model roles whose
# checkpoints are generated at Llama-3.1-8B widths (`make-model`, LAYERS
# decoder layers each, default 4: 3 x 1.75 GB), run three times on one rank:
#   cold   no digest cache, the checkpoints' pages evicted from the page cache
#          (posix_fadvise DONTNEED): every byte read from disk and hashed
#   hot    no digest cache, checkpoints in the page cache: hashing alone
#   warm   the digest cache of the cold run (what a resume, requeue or array
#          task sees): nothing hashed
# and prints each run's time to the end of hashing (from its own progress
# line) and its whole wall time (start-up + a 1-pair knowledge unit + exit).
# Goal: warm start-up <= 2 s.
#   bench/bench_startup.sh BUILD_DIR [LAYERS=4] [WORK_DIR=mktemp]
set -euo pipefail
BUILD=${1:?build dir}; LAYERS=${2:-4}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=${3:-$(mktemp -d)}; trap 'rm -rf "$T"' EXIT
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
VOCAB=$(/usr/bin/python3 -c "import json;print(json.load(open('$ROOT/models/organism-base/config.json'))['vocab_size'])")
for role in base instruct tulu; do
  "$BUILD/mechdiff" make-model --like llama3-8b --layers "$LAYERS" --seed ${#role} --vocab "$VOCAB" -o "$T/$role" >/dev/null
  cp "$ROOT/models/organism-base/tokenizer.json" "$ROOT/models/organism-base/tokenizer_config.json" "$T/$role/"
done
cat > "$T/job.yaml" <<YAML
name: bench-startup
models: {base: $T/base, instruct: $T/instruct, tulu: $T/tulu}
datasets: {cities: $ROOT/data/cities.csv}
runtime: {hash_weights: true}
experiments:
  - {kind: knowledge, datasets: [cities], max_pairs: 1, n_toks: 1, models: [base]}
YAML
evict() {
  /usr/bin/python3 - "$T" <<'PY'
import os, sys, glob
for p in glob.glob(f"{sys.argv[1]}/*/model.safetensors"):
    fd = os.open(p, os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)
PY
}
run() { # name cache_dir
  rm -f "$T/out.h5"
  local s e; s=$(date +%s.%N)
  MECHDIFF_DIGEST_CACHE=$2 "$BUILD/mechdiff" run "$T/job.yaml" -o "$T/out.h5" 2>"$T/$1.log"
  e=$(date +%s.%N)
  local hashed; hashed=$(grep -o 'hashed [0-9]* files in [0-9.]* s' "$T/$1.log" | awk '{print $5}')
  local line; line=$(grep 'hashed ' "$T/$1.log" | sed 's/^mechdiff: rank 0: //')
  printf '%-5s hashing %6.2f s   whole run %6.2f s   (%s)\n' "$1" "$hashed" "$(echo "$e - $s" | bc)" "$line"
  echo "$1 $hashed" >> "$T/times"
}
du -sh "$T"/base "$T"/instruct "$T"/tulu | awk '{printf "%s %s  ", $2, $1} END {print ""}' | sed "s|$T/||g"
sleep 3  # the cache stores only files older than 2 s
evict; run cold "$T/cache"
run hot off
run warm "$T/cache"
awk '{t[$1]=$2} END {printf "warm/cold hashing time: %.4f; warm start-up hashing %.2f s (goal <= 2 s)\n", t["warm"]/t["cold"], t["warm"]}' "$T/times"
