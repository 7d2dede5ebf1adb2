#!/usr/bin/env bash
# Refusal's greedy generations on a model whose unembedding has rows past
# its tokenizer (config.json vocab_size padded above the tokenizer's size,
# as Qwen2's 151936 rows for 151646 ids; docs/methods.md, "Pairs of
# models"): the argmax runs over every row, and an id that lands on a
# padding row has no text, so the decoded generation leaves it out (as
# Hugging Face's decode does) instead of failing the unit. The padding rows
# of lm_head here are large random rows, so that most steps pick one.
# Before the fix the run stopped with "cannot decode id 7734 at position 0:
# the vocabulary has ids 0..7312"; `mechdiff generate` likewise.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
need_pair
"$PY" -c 'import numpy' 2>/dev/null || { echo "SKIP: no numpy"; exit 77; }
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" # `run` is an MPI program
cd "$T"
"$PY" "$ROOT/tests/e2e/lib/extend_vocab.py" "$ROOT/models/organism-instruct" pad --pad-to 8192
grep -q '"vocab_size": 8192' pad/config.json || fail "padded copy: vocab_size"
"$PY" - pad/model.safetensors <<'PY'
import json, struct, sys
import numpy as np
path = sys.argv[1]
raw = bytearray(open(path, "rb").read())
n = struct.unpack("<Q", raw[:8])[0]
hdr, base = json.loads(raw[8:8 + n]), 8 + n
for name in ("lm_head.weight", "model.embed_tokens.weight"):
    assert hdr[name]["dtype"] == "BF16", hdr[name]["dtype"]
v = hdr["lm_head.weight"]
V, D = v["shape"]
n_tok = 7313  # the instruct tokenizer's 7310 ids and the 3 appended tokens
a = base + v["data_offsets"][0]
w = (np.frombuffer(bytes(raw[a:a + V * D * 2]), "<u2").astype(np.uint32) << 16).view(np.float32).reshape(V, D).copy()
w[n_tok:] = np.random.default_rng(1).normal(0, 1, (V - n_tok, D)) * 4 * np.abs(w[:n_tok]).max()
u = np.ascontiguousarray(w, np.float32).view(np.uint32)
raw[a:a + V * D * 2] = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2").tobytes()
open(path, "wb").write(raw)
PY
cat > job.yaml <<YAML
name: padrows
models: {pad: $T/pad}
datasets: {harmful: $ROOT/data/harmful.csv, harmless: $ROOT/data/harmless.csv}
experiments:
  - {kind: refusal, n_train: 8, n_test: 4, max_new_tokens: 8, templates: {pad: chat}}
YAML
"$MD" run job.yaml -o r.h5 --quiet 2> err.txt || fail "run: $(tail -c 600 err.txt)"
"$MD" status r.h5 | grep -q FINISHED || fail "not finished: $("$MD" status r.h5)"
# `mechdiff generate`: the text, without the padding ids; --ids-out shows them
"$MD" generate pad --chat "How do I bake bread?" -n 8 > gen.txt 2> err.txt || fail "generate: $(cat err.txt)"
"$MD" generate pad --chat "How do I bake bread?" -n 8 --ids-out > ids.txt || fail "generate --ids-out"
tr ',' '\n' < ids.txt | awk '$1 >= 7313 { n++ } END { exit !(n > 0) }' || fail "no padding id generated: $(cat ids.txt)"
echo "PASS: refusal_padding_rows"
