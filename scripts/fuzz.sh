#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz (clang, -fsanitize=fuzzer,
# address,undefined; build dir build-fuzz) and runs each on a seed corpus
# made from the repository's own files (golden checkpoints and tokenizers,
# model configs, the shipped jobs and datasets).
#   scripts/fuzz.sh --runs N [HARNESS...]       N executions of each (smoke test)
#   scripts/fuzz.sh --time SECONDS [HARNESS...] each for SECONDS (a long run)
# HARNESS: safetensors, config, tokenizer, job, chat_template, csv, fewshot,
# st_index, tokenizer_config, generation_config, hub, journal, model, results, h5bytes,
# catchup, shard_msg, generate (default: all).
# The corpus grows in build-fuzz/corpus/<harness>; a crash or leak stops the run, leaves
# build-fuzz/crash-* (or leak-*) and exits non-zero. h5bytes and catchup (results files
# damaged below the HDF5 API, on which libhdf5 itself crashes) run forked past crashes
# (leaks inside libhdf5 suppressed: tests/fuzz/libhdf5.supp); each crash left in
# build-fuzz/art-<harness>/ is replayed by scripts/dev/fuzz_triage.sh, and the run fails
# only on one that is not in libhdf5 (tests/fuzz/README.md, "known libhdf5 crashes"). The last line of each
# run is libFuzzer's "Done N runs in S second(s)". A crash's input belongs in
# tests/fuzz/regress/<harness>/ once fixed: ctest replays it there.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${FUZZ_BUILD:-build-fuzz}
LIMIT=(-runs=20000)
if [ "${1:-}" = --runs ]; then LIMIT=(-runs="$2"); shift 2
elif [ "${1:-}" = --time ]; then LIMIT=(-max_total_time="$2"); shift 2; fi
HARNESSES=("$@")
[ ${#HARNESSES[@]} -gt 0 ] || HARNESSES=(safetensors config tokenizer job chat_template csv fewshot st_index
  tokenizer_config generation_config hub journal model results h5bytes catchup shard_msg generate)
command -v clang >/dev/null || { echo "fuzz.sh: clang is not installed (scripts/install-deps.sh)"; exit 1; }
CC=clang scripts/build.sh "$BUILD" -DMECHDIFF_FUZZ=ON -DMECHDIFF_NATIVE=OFF >/dev/null

# Seed corpora (rebuilt each time; the corpus dirs keep what the fuzzer found).
SEEDS="$BUILD/seeds"
rm -rf "$SEEDS"; mkdir -p "$SEEDS"/{safetensors,config,tokenizer,job,chat_template,csv,fewshot,st_index} \
  "$SEEDS"/{tokenizer_config,generation_config,hub,journal,model,results,h5bytes,catchup,shard_msg,generate}
cp tests/golden/templates/*.jinja "$SEEDS/chat_template/"
for d in tests/golden/models/*/ models/organism-base/; do
  n=$(basename "$d")
  cp "$d/config.json" "$SEEDS/config/$n.json"
  if [ -f "$d/generation_config.json" ]; then
    cp "$d/generation_config.json" "$SEEDS/config/$n-gen.json"
    cp "$d/generation_config.json" "$SEEDS/generation_config/$n.json"
  fi
done
cp tests/golden/models/llama3_sharded_f32/model.safetensors.index.json "$SEEDS/st_index/"
for d in tests/golden/tokenizers/*/ models/organism-base/; do
  [ -f "$d/tokenizer_config.json" ] && cp "$d/tokenizer_config.json" "$SEEDS/tokenizer_config/$(basename "$d").json"
done
for c in data/*.csv; do head -n 60 "$c" > "$SEEDS/csv/$(basename "$c")"; done
for c in cities larger_than sp_en_trans; do  # true word, false word, suffix, "n_shots seed", label+statement lines
  { printf ' TRUE\n FALSE\n This statement is:\n4 1\n'; sed -n '2,40p' "data/$c.csv" | sed -E 's/^"?(.*)"?,([01])$/\2\1/'; } \
    > "$SEEDS/fewshot/$c"
done
# results: the first byte picks the valid file fuzz_results edits (finished, stopped, part, mixed)
for b in 0 1 2 3; do printf "\\$b" > "$SEEDS/results/base$b"; printf "\\$b" > "$SEEDS/h5bytes/base$b"; done
# catchup: the first byte picks the pair (% 3) and how it is damaged (fuzz_catchup.c)
for b in 000 001 002 004 010 020 200; do printf "\\$b" > "$SEEDS/catchup/head$b"; done
printf '0123abcd\n' > "$SEEDS/hub/ref"; printf '89efcafe' > "$SEEDS/hub/ref-bare"; : > "$SEEDS/hub/empty"
[ ! -d tests/fuzz/regress ] || for d in tests/fuzz/regress/*/; do cp "$d"* "$SEEDS/$(basename "$d")/" 2>/dev/null || true; done
for j in jobs/*.yaml; do cp "$j" "$SEEDS/job/"; done
printf 'name: x\nexperiments:\n  - {kind: selftest, units: 4, rows: 2, cols: 3, stages: 2}\n' > "$SEEDS/job/selftest.yaml"
/usr/bin/python3 - "$SEEDS" tests/golden <<'PY'
# Small seeds that parse: safetensors files of a few tiny tensors (every
# dtype, metadata, a header padded to 8), and tokenizer.json files cut down
# to ~300 pieces, each followed by a NUL and a text to encode.
import json, struct, sys, glob, os
seeds, golden = sys.argv[1], sys.argv[2]
def st(path, tensors, meta=None):
    hdr, data = {}, b""
    for name, dt, shape in tensors:
        n = 1
        for s in shape: n *= s
        b = bytes((i * 37) % 251 for i in range(n * {"F32": 4, "F16": 2, "BF16": 2}[dt]))
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    if meta: hdr["__metadata__"] = meta
    h = json.dumps(hdr).encode(); h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)
st(f"{seeds}/safetensors/a.safetensors", [("model.layers.0.mlp.up_proj.weight", "BF16", [4, 3]),
   ("model.norm.weight", "F32", [3]), ("lm_head.weight", "F16", [2, 3])], {"format": "pt"})
st(f"{seeds}/safetensors/b.safetensors", [("x", "F32", []), ("empty", "F16", [0, 5])])
text = "Hello, world! The city of Baibra is in Fenwick. 12345 ünïcödé <|eot_id|>\n\tTRUE"
for p in sorted(glob.glob(f"{golden}/tokenizers/*/tokenizer.json")):
    t = json.load(open(p)); m = t["model"]
    if isinstance(m.get("vocab"), dict):
        keep = dict(sorted(m["vocab"].items(), key=lambda kv: kv[1])[:300])
        m["vocab"] = keep
        if "merges" in m:
            def ok(x):
                a, b = x.split(" ", 1) if isinstance(x, str) else x
                return a in keep and b in keep and a + b in keep
            m["merges"] = [x for x in m["merges"] if ok(x)]
        t["added_tokens"] = [a for a in t.get("added_tokens", []) if a["id"] < 300]
    name = os.path.basename(os.path.dirname(p))
    open(f"{seeds}/tokenizer/{name}", "wb").write(json.dumps(t).encode() + b"\0" + text.encode())
# journals (fuzz_journal sets the CRCs): a header of each format, records of
# a unit header (md_unit_hdr: exp, stage, unit, status) and a few result bytes, a torn tail
rec = lambda n: b"MDRC" + bytes(4) + struct.pack("<Qd", 24 + n, 1.5) + struct.pack("<IIqII", 0, 1, 7, 0, 0) + bytes(n)
open(f"{seeds}/journal/v2", "wb").write(b"MDJRNL02" + struct.pack("<Q", 3) + bytes(48) + rec(8) + rec(0) + b"MDRC\0")
# model headers (fuzz_model adds the golden Qwen2 bf16 data section)
blob = open(f"{golden}/models/qwen2_bf16/model.safetensors", "rb").read()
open(f"{seeds}/model/qwen2_bf16.json", "wb").write(blob[8:8 + struct.unpack("<Q", blob[:8])[0]])
open(f"{seeds}/journal/v1", "wb").write(b"MDJRNL01" + struct.pack("<Q", 1) + bytes(8) + rec(4))
PY

status=0
for h in "${HARNESSES[@]}"; do
  exe="$BUILD/tests/fuzz/fuzz_$h"
  [ -x "$exe" ] || { echo "fuzz.sh: no harness $exe"; exit 1; }
  mkdir -p "$BUILD/corpus/$h"
  max_len=16384; [ "$h" = tokenizer ] && max_len=32768
  echo "== fuzz_$h ${LIMIT[*]}"
  art="$BUILD/"
  past=()
  lsan=""
  if [ "$h" = h5bytes ] || [ "$h" = catchup ]; then
    art="$BUILD/art-$h/"
    rm -rf "$art"; mkdir -p "$art"
    past=(-fork=1 -ignore_crashes=1 -timeout=10 -rss_limit_mb=2048)
    lsan=suppressions=$PWD/tests/fuzz/libhdf5.supp
  fi
  ok=1
  ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=$lsan UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    OPENBLAS_NUM_THREADS=1 "$exe" "${LIMIT[@]}" "${past[@]}" -max_len=$max_len -artifact_prefix="$art" \
    -print_final_stats=1 "$BUILD/corpus/$h" "$SEEDS/$h" > "$BUILD/fuzz_$h.log" 2>&1 || ok=0
  if [ ${#past[@]} -gt 0 ]; then # forked: exits 1 after any crash; the triage decides
    grep -q "^INFO: exiting" "$BUILD/fuzz_$h.log" && ok=1
    if compgen -G "$art*" >/dev/null && ! scripts/dev/fuzz_triage.sh "$exe" "$art"*; then
      echo "fuzz.sh: fuzz_$h crashed outside libhdf5 (inputs: $art)"; ok=0
    fi
  fi
  if [ $ok = 0 ]; then
    tail -40 "$BUILD/fuzz_$h.log"; echo "fuzz.sh: fuzz_$h FAILED (see $BUILD/fuzz_$h.log)"; status=1
  fi
  grep -E "^Done [0-9]+ runs|stat::number_of_executed_units|^#[0-9]+: cov" "$BUILD/fuzz_$h.log" | tail -2 || true
done
exit $status
