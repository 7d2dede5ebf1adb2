#!/usr/bin/env bash
# Start-up of a real-width job, load included, and the worker's memory: a
# 3-role knowledge job (base, sft, instruct) on generated Llama-3-8B-width
# checkpoints (`make-model --like llama3-8b`, the real 128256 vocabulary,
# LAYERS layers each, random bf16 weights), 1 coordinator + 1 worker, one
# pair: the wall time of MPI start + SHA-256 of every weight file + loading
# the three models + the first unit of each role, run three ways:
#   cold  no digest cache, the page cache dropped (echo 3 >
#         /proc/sys/vm/drop_caches where permitted, else the files' pages
#         evicted with posix_fadvise DONTNEED)
#   hot   no digest cache, files in the page cache (hashing from memory)
#   warm  the digest caches of the cold run, files in the page cache (what a
#         requeued or resumed run sees)
#   other an empty user cache, the cache next to the output of the cold run
#         (a requeue on a node whose home is not shared), files in the page
#         cache
# and the worker's peak RSS (VmHWM, RssAnon, RssFile sampled every 50 ms)
# with the three roles mapped vs the weights it touches (every layer tensor
# and the final norm of each role; of the embedding the prompt's rows and of
# lm_head the answer words' rows only — the knowledge kind needs two logits —
# both not counted) plus its scratch: per role the fp32 cache
# (runtime.fp32_cache_mb, CACHE_MB=256 here: the default -1 sizes it from
# the node's free memory, which would make the figure depend on the machine)
# and one streaming panel of at most 256 MiB (docs/architecture-model.md).
# Goal: peak RSS <= 1.2 x (touched + scratch). Then extrapolates per GB to
# the real 3 x Llama-3.1-8B job.
# (bench/bench_startup.sh times the hashing part alone, on a selftest job.)
#   bench/bench_load.sh BUILD_DIR [LAYERS=2] [MODELS_DIR]
# MODELS_DIR: where the checkpoints are (generated there if absent; kept).
set -euo pipefail
BUILD=$(cd "${1:?build dir}" && pwd); LAYERS=${2:-2}; CACHE_MB=${CACHE_MB:-256}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
M=${3:-$T/models}
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MD=$BUILD/mechdiff
seed=1
for r in base sft instruct; do
  if [ ! -f "$M/$r/model.safetensors" ]; then
    s=$(date +%s.%N)
    "$MD" make-model --like llama3-8b --layers "$LAYERS" --seed $seed -o "$M/$r" >/dev/null
    echo "generated $M/$r in $(echo "$(date +%s.%N) - $s" | bc) s"
  fi
  cp "$ROOT/models/organism-base/tokenizer.json" "$ROOT/models/organism-base/tokenizer_config.json" "$M/$r/"
  seed=$((seed + 1))
done
cat > "$T/job.yaml" <<YAML
name: bench-load
models: {base: $M/base, sft: $M/sft, instruct: $M/instruct}
datasets: {cities: $ROOT/data/cities.csv}
runtime: {fp32_cache_mb: $CACHE_MB}
experiments:
  - {kind: knowledge, datasets: [cities], models: [base, sft, instruct], max_pairs: 1, n_toks: 2}
YAML
# per-rank sampler of peak VmHWM / RssAnon / RssFile (kB)
cat > "$T/sample.sh" <<'EOF'
#!/bin/bash
out=$1; shift
"$@" & p=$!
hwm=0 anon=0 file=0
while kill -0 $p 2>/dev/null; do
  while read -r k v _; do
    case "$k" in
      VmHWM:) [ "$v" -gt "$hwm" ] && hwm=$v ;;
      RssAnon:) [ "$v" -gt "$anon" ] && anon=$v ;;
      RssFile:) [ "$v" -gt "$file" ] && file=$v ;;
    esac
  done < /proc/$p/status 2>/dev/null || true
  sleep 0.05
done
wait $p; rc=$?
echo "$hwm $anon $file" > "$out.${OMPI_COMM_WORLD_RANK:-0}"
exit $rc
EOF
chmod +x "$T/sample.sh"
evict() {
  sync
  if (echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null; then echo "cold: page cache dropped (drop_caches)"; return; fi
  echo "cold: drop_caches not permitted; the checkpoints' pages evicted (posix_fadvise DONTNEED)"
  /usr/bin/python3 - "$M" <<'PY'
import glob, os, sys
for p in glob.glob(f"{sys.argv[1]}/*/*"):
    fd = os.open(p, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
PY
}
run() { # name digest-cache
  local s e
  s=$(date +%s.%N)
  MECHDIFF_DIGEST_CACHE=$2 mpirun --oversubscribe -x MECHDIFF_DIGEST_CACHE -np 2 "$T/sample.sh" "$T/rss_$1" \
    "$MD" run "$T/job.yaml" -o "$T/$1.h5" --quiet
  e=$(date +%s.%N)
  echo "$1 $(echo "$e - $s" | bc)" >> "$T/times"
}
sync
sleep 3  # the digest cache stores only files older than 2 s
rm -rf "$T/cache" "$T/.mechdiff-digests"
evict; run cold "$T/cache"
run hot off
run warm "$T/cache"
run other "$T/empty-cache"
s=$(date +%s.%N); sha256sum "$M/base/model.safetensors" >/dev/null; e=$(date +%s.%N)
echo "sha $(echo "$e - $s" | bc)" >> "$T/times"
/usr/bin/python3 - "$T" "$M" "$CACHE_MB" <<'PY'
import json, os, struct, sys
t, m, cache_mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
times = {k: float(v) for k, v in (l.split() for l in open(f"{t}/times"))}
def header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))
total = touched = 0
for r in ("base", "sft", "instruct"):
    p = os.path.join(m, r, "model.safetensors")
    total += os.path.getsize(p)
    for k, v in header(p).items():
        if k not in ("__metadata__", "model.embed_tokens.weight", "lm_head.weight"):
            touched += v["data_offsets"][1] - v["data_offsets"][0]
cfg = json.load(open(os.path.join(m, "base", "config.json")))
one = os.path.getsize(os.path.join(m, "base", "model.safetensors"))
scratch = 3 * (cache_mb + 256) * 2**20  # per role: fp32 cache + one streaming panel
GB = 1e9
rss = {n: [int(x) * 1024 for x in open(f"{t}/rss_{n}.1").read().split()] for n in ("cold", "hot", "warm", "other")}
print(f"3 roles x Llama-3-8B widths, {cfg['num_hidden_layers']} layers, vocab {cfg['vocab_size']}: "
      f"{total / GB:.2f} GB of weights ({one / GB:.2f} GB per role), 1 coordinator + 1 worker, 1 pair")
print("MPI start + hash + load of 3 roles + first unit of each role:")
print(f"  cold {times['cold']:.2f} s (no digest cache, pages evicted)   hot {times['hot']:.2f} s (no digest cache)"
      f"   warm {times['warm']:.2f} s (digest caches)   other node {times['other']:.2f} s (only the cache next to "
      f"the output)")
hash_s, read_s = times["hot"] - times["warm"], times["cold"] - times["hot"]
print(f"  hashing {total / GB:.2f} GB from memory: {hash_s:.2f} s ({total / max(hash_s, 1e-9) / GB:.2f} GB/s; "
      f"sha256sum of one file {one / times['sha'] / GB:.2f} GB/s); reading it from disk adds "
      + (f"{read_s:.2f} s ({total / read_s / GB:.2f} GB/s)" if read_s > 0 else
         f"{read_s:.2f} s: not separable from the run-to-run noise of this machine"))
read_s = max(read_s, 0.0)
hwm, anon, rfile = rss["warm"]
print(f"worker peak RSS: warm {hwm / GB:.2f} GB (anon {anon / GB:.2f} + file {rfile / GB:.2f}); "
      f"cold {rss['cold'][0] / GB:.2f} GB; hot {rss['hot'][0] / GB:.2f} GB")
need = touched + scratch
worst = max(r[0] for r in rss.values())
print(f"  touched weights {touched / GB:.2f} GB + scratch {scratch / GB:.2f} GB (3 x ({cache_mb} MiB fp32 cache + "
      f"256 MiB panel)) = {need / GB:.2f} GB; "
      f"max RSS / (touched + scratch) = {worst / need:.2f} (goal <= 1.2: {'met' if worst <= 1.2 * need else 'NOT met'})")
print(f"  of it anonymous {anon / GB:.2f} GB (scratch {scratch / GB:.2f} GB) and file-backed {rfile / GB:.2f} GB of the "
      f"{total / GB:.2f} GB mapped; RSS / (every mapped weight + scratch) = {worst / (total + scratch):.2f}")
real = 3 * 16.06e9
rest = times["warm"]
print(f"extrapolated to 3 x Llama-3.1-8B ({real / GB:.1f} GB bf16) on this machine's rates: first run hashes "
      f"{real / (total / max(hash_s, 1e-9)):.0f} s from memory + reads {real / (total / max(read_s, 1e-9)):.0f} s "
      f"from disk (per GB: {hash_s / (total / GB):.2f} s + {read_s / (total / GB):.2f} s); requeued/resumed runs "
      f"skip the hash (digest caches); warm start-up here {rest:.2f} s incl. MPI, loading and the first units "
      f"({rest / (total / GB):.2f} s per GB of weights)")
PY
