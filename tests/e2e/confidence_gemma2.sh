#!/bin/bash
# confidence_gemma2.sh — the entropy-neuron statistics of a Gemma-2 checkpoint
# (make-model --like gemma2-9b, 1 layer, random norm gains written in) equal a
# numpy reference that folds (1 + w) of model.norm into W_U and (1 + p) of the
# last post_feedforward_layernorm into the neurons' W_down columns
# (docs/methods.md, Confidence), and differ from the reference without the
# "1 +" (so the test sees the form). Tolerance: cosines are fp32 dot products
# of unit bf16-exact vectors (d 3584), about 1e-6 relative each; LogitVar
# (~1/d) and norms are compared at 1e-3 of their largest value.
. "$(dirname "$0")/../lib.sh"
M=$WORK/gemma
"$MECHDIFF" make-model --like gemma2-9b --layers 1 --seed 3 --vocab 512 -o "$M" >/dev/null || fail "make-model"
/usr/bin/python3 - "$M/model.safetensors" <<'PY' || fail "writing random norm gains"
import json, struct, sys
import numpy as np
path = sys.argv[1]
with open(path, "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    hdr = json.loads(f.read(n))
    rng = np.random.default_rng(7)
    for name in ("model.norm.weight", "model.layers.0.post_feedforward_layernorm.weight"):
        t = hdr[name]
        assert t["dtype"] == "BF16"
        w = rng.uniform(-0.9, 2.0, t["shape"]).astype(np.float32)
        f.seek(8 + n + t["data_offsets"][0])
        f.write((w.view(np.uint32) >> 16).astype(np.uint16).tobytes())
PY
cat >"$WORK/job.yaml" <<YAML
name: confidence-gemma2
output: $WORK/out.h5
seed: 1
models:
  base: $M
runtime:
  backend: cpu
experiments:
  - kind: confidence
YAML
"$MECHDIFF" run "$WORK/job.yaml" >"$WORK/log" 2>&1 || { cat "$WORK/log"; fail "confidence on a Gemma-2 checkpoint"; }
/usr/bin/python3 - "$M/model.safetensors" "$WORK/out.h5" <<'PY' || fail "LogitVar / norm differ from the (1 + w) reference"
import json, struct, sys
import h5py
import numpy as np
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    hdr = json.loads(f.read(n))
    def get(name):
        t = hdr[name]
        a, b = t["data_offsets"]
        f.seek(8 + n + a)
        u = np.frombuffer(f.read(b - a), dtype=np.uint16).astype(np.uint32) << 16
        return u.view(np.float32).reshape(t["shape"])
    wu, g = get("model.embed_tokens.weight"), get("model.norm.weight")
    wd, p = get("model.layers.0.mlp.down_proj.weight"), get("model.layers.0.post_feedforward_layernorm.weight")
def ref(plus):
    u = wu.astype(np.float64) * (plus + g)
    u -= u.mean(axis=0)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    w = (plus + p.astype(np.float64))[:, None] * wd
    norm = np.linalg.norm(w, axis=0)
    cos = u @ (w / norm)
    return norm, cos.var(axis=0, ddof=1)
with h5py.File(sys.argv[2], "r") as h:
    got_norm, got_lv = h["confidence/base/norm"][()], h["confidence/base/logitvar"][()]
norm, lv = ref(1.0)
e_norm = np.abs(got_norm - norm).max() / norm.max()
e_lv = np.abs(got_lv - lv).max() / lv.max()
norm0, lv0 = ref(0.0)
d_lv = np.abs(lv0 - lv).max() / lv.max()
print(f"max rel error: norm {e_norm:.2e}, LogitVar {e_lv:.2e}; without the '1 +': LogitVar differs by {d_lv:.2e}")
sys.exit(0 if e_norm < 1e-3 and e_lv < 1e-3 and d_lv > 1e-2 else 1)
PY
echo "PASS: Gemma-2 entropy-neuron statistics match the (1 + w) reference"
