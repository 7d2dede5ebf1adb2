#!/usr/bin/env bash
# make_model.sh — `mechdiff make-model` writes a loadable random checkpoint:
# a 1-layer Llama-3-8B-like model with --vocab 1000; checks the files, the
# safetensors header (standard-library Python), determinism from the seed,
# a Mistral-like f16 model,
# and argument errors. $1: build dir; $MECHDIFF: the binary.
set -euo pipefail
BUILD=${1:?build dir}
MECHDIFF=${MECHDIFF:-$BUILD/mechdiff}
PY=${PYTHON:-/usr/bin/python3}
[ -x "$MECHDIFF" ] || { echo "no binary at $MECHDIFF"; exit 77; }
[ -x "$PY" ] || { echo "no python3 at $PY"; exit 77; }
TMP=$(mktemp -d "${MECHDIFF_TMP:-$BUILD}/make_model.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

"$MECHDIFF" make-model --help | grep -q "No tokenizer"
"$MECHDIFF" make-model --like llama3-8b --layers 1 --seed 7 --vocab 1000 -o "$TMP/m"
for f in config.json generation_config.json model.safetensors; do
  [ -s "$TMP/m/$f" ] || { echo "missing $TMP/m/$f"; exit 1; }
done
[ ! -e "$TMP/m/model.safetensors.tmp" ] || { echo "temporary file left behind"; exit 1; }

"$PY" - "$TMP/m" <<'PYEOF'
import json, os, struct, sys
d = sys.argv[1]
cfg = json.load(open(os.path.join(d, "config.json")))
assert cfg["architectures"] == ["LlamaForCausalLM"], cfg["architectures"]
assert (cfg["hidden_size"], cfg["intermediate_size"], cfg["num_attention_heads"],
        cfg["num_key_value_heads"], cfg["num_hidden_layers"], cfg["vocab_size"]) == (4096, 14336, 32, 8, 1, 1000), cfg
assert cfg["rope_scaling"]["rope_type"] == "llama3" and cfg["rope_theta"] == 500000.0
assert cfg["rms_norm_eps"] == 1e-5 and cfg["tie_word_embeddings"] is False
path = os.path.join(d, "model.safetensors")
size = os.path.getsize(path)
with open(path, "rb") as f:
    (n,) = struct.unpack("<Q", f.read(8))
    assert n % 8 == 0 and 8 + n <= size, n
    hdr = json.loads(f.read(n))
    d_model, ffn, q, kv, V = 4096, 14336, 4096, 1024, 1000
    want = {"model.embed_tokens.weight": [V, d_model], "model.norm.weight": [d_model], "lm_head.weight": [V, d_model],
            "model.layers.0.input_layernorm.weight": [d_model],
            "model.layers.0.post_attention_layernorm.weight": [d_model],
            "model.layers.0.self_attn.q_proj.weight": [q, d_model],
            "model.layers.0.self_attn.k_proj.weight": [kv, d_model],
            "model.layers.0.self_attn.v_proj.weight": [kv, d_model],
            "model.layers.0.self_attn.o_proj.weight": [d_model, q],
            "model.layers.0.mlp.gate_proj.weight": [ffn, d_model],
            "model.layers.0.mlp.up_proj.weight": [ffn, d_model],
            "model.layers.0.mlp.down_proj.weight": [d_model, ffn]}
    meta = hdr.pop("__metadata__", {})
    assert meta.get("format") == "pt", meta
    assert set(hdr) == set(want), sorted(set(hdr) ^ set(want))
    end = 0
    for name, t in sorted(hdr.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        assert t["dtype"] == "BF16" and t["shape"] == want[name], (name, t)
        b, e = t["data_offsets"]
        numel = 1
        for s in t["shape"]:
            numel *= s
        assert b == end and e - b == 2 * numel, (name, b, e)
        end = e
    assert 8 + n + end == size, (n, end, size)
    # Norm gains are exactly 1.0 (bf16 0x3f80); projections look like N(0, 0.02^2).
    t = hdr["model.norm.weight"]
    f.seek(8 + n + t["data_offsets"][0])
    assert set(struct.unpack("<4096H", f.read(8192))) == {0x3F80}
    t = hdr["model.layers.0.mlp.up_proj.weight"]
    f.seek(8 + n + t["data_offsets"][0])
    vals = [struct.unpack("<f", struct.pack("<I", h << 16))[0] for h in struct.unpack("<20000H", f.read(40000))]
    mean = sum(vals) / len(vals)
    std = (sum((v - mean) ** 2 for v in vals) / len(vals)) ** 0.5
    assert abs(mean) < 1e-3 and abs(std - 0.02) < 1e-3, (mean, std)
print("header ok:", len(hdr), "tensors,", size, "bytes")
PYEOF

# Same seed -> same bytes (the seed's effect on values is covered by
# tests/unit/test_make_model.c). Then a Mistral-like f16 model; each extra
# model is deleted at once to keep disk use low.
"$MECHDIFF" make-model --like llama3-8b --layers 1 --seed 7 --vocab 1000 -o "$TMP/b" >/dev/null
cmp -s "$TMP/m/model.safetensors" "$TMP/b/model.safetensors" || { echo "same seed gave different weights"; exit 1; }
rm -rf "$TMP/b"
"$MECHDIFF" make-model --like mistral-7b --layers 1 --seed 8 --vocab 64 --dtype f16 -o "$TMP/c" >/dev/null
grep -q '"MistralForCausalLM"' "$TMP/c/config.json"
grep -q '"sliding_window": null' "$TMP/c/config.json"
grep -q '"torch_dtype": "float16"' "$TMP/c/config.json"
"$PY" -c 'import json,struct,sys; f=open(sys.argv[1],"rb"); n=struct.unpack("<Q",f.read(8))[0]; h=json.loads(f.read(n)); h.pop("__metadata__"); assert {t["dtype"] for t in h.values()}=={"F16"}; assert h["model.embed_tokens.weight"]["shape"]==[64,4096]' "$TMP/c/model.safetensors"
rm -rf "$TMP/c"

# inspect reads it back, when that command exists.
if "$MECHDIFF" inspect "$TMP/m" >"$TMP/inspect.out" 2>&1; then
  echo "inspect ok"
elif grep -q "not built yet" "$TMP/inspect.out"; then
  echo "inspect not built; skipped"
else
  cat "$TMP/inspect.out"; echo "inspect failed on the made model"; exit 1
fi

# The other families: a 1-layer model of each loads (inspect binds every
# tensor the family needs) with the family's switches. (Their numbers:
# the goldens of test_forward.)
for fam in "qwen2.5-7b Qwen2ForCausalLM q/k:.*bias yes" "qwen3-8b Qwen3ForCausalLM RMSNorm per head" \
           "gemma2-9b Gemma2ForCausalLM soft-cap 30" "olmo2-7b Olmo2ForCausalLM after attention and MLP"; do
  set -- $fam
  like=$1 arch=$2; shift 2; want="$*"
  rm -rf "$TMP/f"
  "$MECHDIFF" make-model --like "$like" --layers 1 --seed 3 --vocab 64 -o "$TMP/f" >/dev/null
  "$MECHDIFF" inspect "$TMP/f" >"$TMP/inspect.out" 2>&1 || { cat "$TMP/inspect.out"; echo "$like: inspect failed"; exit 1; }
  grep -q "architecture: *$arch" "$TMP/inspect.out" && grep -q "$want" "$TMP/inspect.out" \
    || { cat "$TMP/inspect.out"; echo "$like: inspect lacks '$arch' / '$want'"; exit 1; }
  rm -rf "$TMP/f"
done

# Argument errors exit 2 with a message.
set +e
"$MECHDIFF" make-model --like gpt2 --layers 1 --seed 1 -o "$TMP/x" 2>"$TMP/err"; rc=$?
set -e
[ $rc -ne 0 ] && grep -q "gpt2" "$TMP/err" || { echo "unknown family not reported (rc $rc)"; cat "$TMP/err"; exit 1; }
set +e
"$MECHDIFF" make-model --like llama2-13b --seed 1 -o "$TMP/x" 2>"$TMP/err"; rc=$?
set -e
[ $rc -eq 2 ] || { echo "missing --layers not reported (rc $rc)"; exit 1; }
echo "make_model.sh: ok"
