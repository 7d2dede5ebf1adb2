#!/usr/bin/env bash
# No silent NaN (issue 14 item 2): a checkpoint with one NaN (or infinity)
# weight in one layer is refused when that tensor is bound, naming the model
# folder and the tensor (so the layer) -- by `forward`, `inspect` and a
# knowledge run (which exited 0 with all-NaN effects before). The results side (a NaN or
# infinity sent by a worker or put by a plan) is unit.test_result_check.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
# poison DIR TENSOR VALUE: sets element 5 of TENSOR to VALUE (nan / inf) in place
poison() {
  $PY - "$1/model.safetensors" "$2" "$3" <<'PY'
import json, struct, sys
import numpy as np
path, name, val = sys.argv[1], sys.argv[2], float(sys.argv[3])
raw = bytearray(open(path, "rb").read()); n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n])
t = h[name]; off = 8 + n + t["data_offsets"][0] + 5 * {"F32": 4, "F16": 2, "BF16": 2}[t["dtype"]]
if t["dtype"] == "F32": raw[off:off + 4] = np.float32(val).tobytes()
elif t["dtype"] == "F16": raw[off:off + 2] = np.float16(val).tobytes()
else: raw[off:off + 2] = np.float32(val).tobytes()[2:4]   # bf16 = the high half of the f32
open(path, "wb").write(bytes(raw))
PY
}
G=tests/golden/models
for v in nan inf -inf; do
  rm -rf "$T/g"; cp -r "$G/llama3_f32" "$T/g"
  poison "$T/g" model.layers.1.mlp.up_proj.weight $v
  expect_status 1 "model.layers.1.mlp.up_proj.weight' holds" "$MD" forward "$T/g" --ids 1,2,3 -o "$T/x.h5"
  [ ! -e "$T/x.h5" ] || fail "a refused forward left an output"
done
grep -q "holds an infinity" "$T/err" || fail "-inf not named an infinity: $(cat "$T/err")"
rm -rf "$T/m"; cp -r "$G/mistral_f32" "$T/m"; poison "$T/m" model.embed_tokens.weight nan
expect_status 1 "model.embed_tokens.weight' holds NaN" "$MD" inspect "$T/m"

if [ -f models/organism-instruct/model.safetensors ]; then
  cp -r models/organism-instruct "$T/instruct"
  poison "$T/instruct" model.layers.2.self_attn.o_proj.weight nan
  cat > "$T/job.yaml" <<YAML
name: nan-weights
models: {base: $ROOT/models/organism-base, instruct: $T/instruct}
datasets: {cities: $ROOT/data/cities.csv}
experiments:
  - kind: knowledge
    datasets: [cities]
    cross: [all]
    max_pairs: 2
YAML
  # validate checks the folders' structure without reading every weight; the
  # workers read them when they load the model: an error of the run (status 1)
  "$MD" validate "$T/job.yaml" > /dev/null || fail "validate reads every weight (it should not)"
  expect_status 1 "$T/instruct: tensor 'model.layers.2.self_attn.o_proj.weight' holds NaN" \
    "$MD" run "$T/job.yaml" -o "$T/k.h5" --quiet
  expect_status 1 "model.layers.2.self_attn.o_proj.weight' holds NaN" \
    $MPIRUN -np 2 "$MD" run "$T/job.yaml" -o "$T/k2.h5" --quiet
else
  echo "(organism pair absent: the knowledge-run case is skipped)"
fi
echo "nonfinite: ok"
