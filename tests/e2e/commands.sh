#!/usr/bin/env bash
# The engine's commands on the golden checkpoints (tests/golden/models):
# inspect, forward (HDF5 logits + hook activations vs transformers), generate
# (greedy ids vs transformers), --help everywhere, and bad input: truncated
# or corrupt checkpoints, an unsupported config, an unknown hook, a token id
# outside the vocabulary — each a clear message and a non-zero exit.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
G=tests/golden/models

for sub in inspect tokenize forward generate make-model run validate status merge verify; do
  "$MD" "$sub" --help | grep -qi usage || fail "$sub --help"
done
"$MD" --help >/dev/null

"$MD" inspect "$G/llama3_f32" > "$T/inspect.txt"
grep -q "LlamaForCausalLM" "$T/inspect.txt" && grep -q "grouped-query" "$T/inspect.txt" && grep -q "llama3" "$T/inspect.txt" \
  || fail "inspect output: $(cat "$T/inspect.txt")"
"$MD" inspect "$G/llama3_sharded_f32" | grep -q "in 4 file(s)" || fail "inspect sharded"

# forward on sequence 0 of the golden batch, all hooks
ids=$("$PY" -c "
import struct, json, sys
f = open('$G/llama3_f32/golden.safetensors', 'rb'); n = struct.unpack('<Q', f.read(8))[0]; h = json.loads(f.read(n))
b, e = h['input_ids']['data_offsets']; f.seek(8 + n + b); import array; a = array.array('f'); a.frombytes(f.read(e - b))
print(','.join(str(int(x)) for x in a[:12]))")
"$MD" forward "$G/llama3_f32" --ids "$ids" --hooks resid_pre,attn_out,resid_mid,mlp_out,resid_post,mlp_post -o "$T/fwd.h5"
"$PY" - "$T/fwd.h5" "$G/llama3_f32/golden.safetensors" <<'PY'
import sys, json, struct, h5py, numpy as np
f = open(sys.argv[2], "rb"); n = struct.unpack("<Q", f.read(8))[0]; hdr = json.loads(f.read(n)); base = 8 + n
def tensor(name):
    b, e = hdr[name]["data_offsets"]; f.seek(base + b)
    return np.frombuffer(f.read(e - b), dtype="<f4").reshape(hdr[name]["shape"])
out = h5py.File(sys.argv[1], "r")
d = np.abs(out["logits"][...] - tensor("logits")[0]).max()
assert d <= 1e-4, d
for hook in ["resid_pre", "attn_out", "resid_mid", "mlp_out", "resid_post", "mlp_post"]:
    ref = tensor("acts." + hook)[:, 0]          # [layer][batch][pos][width] -> sequence 0
    got = out["acts/" + hook][...]              # [layer][pos][width]
    assert got.shape == ref.shape, (hook, got.shape, ref.shape)
    assert np.abs(got - ref).max() <= 1e-4, hook
assert list(out["token_ids"][...]) == [int(x) for x in tensor("input_ids")[0]]
print(f"forward: logits max |d| {d:.2e}, 6 hooks match")
PY

# generate: greedy ids equal transformers'
read -r prompt want < <("$PY" -c "
import struct, json, array
f = open('$G/mistral_f32/golden.safetensors', 'rb'); n = struct.unpack('<Q', f.read(8))[0]; h = json.loads(f.read(n))
def t(k):
    b, e = h[k]['data_offsets']; f.seek(8 + n + b); a = array.array('f'); a.frombytes(f.read(e - b)); return [int(x) for x in a]
print(','.join(map(str, t('generate.prompt'))), ','.join(map(str, t('generate.ids'))))")
got=$("$MD" generate "$G/mistral_f32" --ids "$prompt" -n 8 --ids-out)
[ "$got" = "$want" ] || fail "generate: got $got, want $want"
echo "generate: $got"

# bad input
expect_fail() { # $1 = pattern expected in stderr, rest = command
  local pat=$1; shift
  if "$@" > "$T/out" 2> "$T/err"; then fail "accepted: $*"; fi
  grep -q -- "$pat" "$T/err" || fail "message for '$*' lacks '$pat': $(cat "$T/err")"
  # under the ASan build: the error path leaks nothing and touches nothing it should not
  if grep -q "Sanitizer" "$T/err"; then cat "$T/err"; fail "sanitizer report on the error path of: $*"; fi
}
cp -r "$G/llama3_f32" "$T/trunc"
truncate -s 5000 "$T/trunc/model.safetensors"
expect_fail "model.safetensors" "$MD" forward "$T/trunc" --ids 1,2 -o "$T/x.h5"
cp -r "$G/llama3_f32" "$T/corrupt"
printf '\xff\xff\xff\xff\xff\xff\x00\x00' | dd of="$T/corrupt/model.safetensors" conv=notrunc 2>/dev/null
expect_fail "model.safetensors" "$MD" inspect "$T/corrupt"
cp -r "$G/llama3_f32" "$T/badcfg"
sed -i 's/"silu"/"gelu"/' "$T/badcfg/config.json"
expect_fail "hidden_act" "$MD" inspect "$T/badcfg"
cp -r "$G/llama3_f32" "$T/missing"
"$PY" - "$T/missing/model.safetensors" <<'PY'
import sys, json, struct
p = sys.argv[1]; raw = open(p, "rb").read(); n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n])
h["model.norm.weightX"] = h.pop("model.norm.weight")
hb = json.dumps(h).encode(); hb += b" " * (-len(hb) % 8)
open(p, "wb").write(struct.pack("<Q", len(hb)) + hb + raw[8 + n:])
PY
expect_fail "model.norm.weight" "$MD" forward "$T/missing" --ids 1,2 -o "$T/x.h5"
expect_fail "unknown hook point" "$MD" forward "$G/llama3_f32" --ids 1,2 --hooks resid_middle -o "$T/x.h5"
expect_fail "outside the vocabulary" "$MD" forward "$G/llama3_f32" --ids 1,99999 -o "$T/x.h5"
expect_fail "no tokenizer.json" "$MD" generate "$G/llama3_f32" --prompt "hello"
[ ! -e "$T/x.h5" ] || fail "a failed forward left an output file"
echo "commands: ok"
