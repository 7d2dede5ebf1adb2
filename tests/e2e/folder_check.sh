#!/bin/bash
# folder_check.sh — `validate` (and `run`, before any worker starts) checks
# every model folder for what a worker will need, with an error that says
# what to do. Before, a folder with only pytorch_model.bin passed validate and
# the run died at unit 8. Cases: .bin only (how to convert), an index naming
# a missing shard, a tensor missing, tokenizer.model without tokenizer.json,
# a refusal role asking for its chat template when the folder has none.
. "$(dirname "$0")/../lib.sh"
need_pair
ORG=$ROOT/models/organism-base
job() { # $1 folder for role base, $2 experiment line (default: a small knowledge one)
    local exp=${2:-}
    [ -n "$exp" ] || exp='  - {kind: knowledge, datasets: [cities], max_pairs: 2}'
    cat > "$WORK/job.yaml" <<YAML
name: folder-check
models: {base: $1, instruct: $ROOT/models/organism-instruct}
datasets: {cities: $ROOT/data/cities.csv, harmful: $ROOT/data/harmful.csv, harmless: $ROOT/data/harmless.csv}
experiments:
$exp
YAML
}
expect() { # $1 grep pattern of the error
    "$MECHDIFF" validate "$WORK/job.yaml" >"$WORK/out" 2>"$WORK/err" && { cat "$WORK/out"; fail "accepted (wanted: $1)"; }
    grep -q -- "$1" "$WORK/err" || { cat "$WORK/err"; fail "message does not say '$1'"; }
    echo "ok: $(head -c 240 "$WORK/err")"
}
copy_org() { mkdir -p "$1"; cp "$ORG"/*.json "$1/"; }

job "$ORG"
"$MECHDIFF" validate "$WORK/job.yaml" >/dev/null || fail "the shipped model does not validate"

copy_org "$WORK/bin"
head -c 4096 /dev/urandom > "$WORK/bin/pytorch_model.bin"
job "$WORK/bin"
expect "model 'base' ($WORK/bin): only PyTorch weights (pytorch_model.bin).*safe_serialization=True"
# the same at `run`: nothing starts, nothing is written
"$MECHDIFF" run "$WORK/job.yaml" -o "$WORK/bin.h5" 2>/dev/null && fail "run started on a .bin-only folder"
[ ! -e "$WORK/bin.h5" ] || fail "run wrote an output for a .bin-only folder"

copy_org "$WORK/shard"
/usr/bin/python3 - "$ORG/model.safetensors" "$WORK/shard" <<'PY'
import json, os, shutil, struct, sys
src, d = sys.argv[1], sys.argv[2]
shutil.copy(src, os.path.join(d, "model-00001-of-00002.safetensors"))
n = struct.unpack("<Q", open(src, "rb").read(8))[0]
names = [k for k in json.loads(open(src, "rb").read(8 + n)[8:]) if k != "__metadata__"]
wm = {k: "model-00001-of-00002.safetensors" for k in names}
wm["model.layers.3.mlp.down_proj.weight"] = "model-00002-of-00002.safetensors"
json.dump({"metadata": {}, "weight_map": wm}, open(os.path.join(d, "model.safetensors.index.json"), "w"))
PY
job "$WORK/shard"
expect "model-00002-of-00002.safetensors"

copy_org "$WORK/tensor"
/usr/bin/python3 - "$ORG/model.safetensors" "$WORK/tensor/model.safetensors" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
del h["model.layers.2.self_attn.k_proj.weight"]
hb = json.dumps(h).encode()
hb += b" " * ((8 - len(hb) % 8) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(hb)) + hb + b[8 + n:])
PY
job "$WORK/tensor"
expect "model 'base'.*model.layers.2.self_attn.k_proj.weight' is missing"

mkdir -p "$WORK/spm"
cp "$ORG/config.json" "$ORG/model.safetensors" "$WORK/spm/"
head -c 100 /dev/urandom > "$WORK/spm/tokenizer.model"
job "$WORK/spm"
expect "only tokenizer.model.*tokenizer.json"

mkdir -p "$WORK/notmpl"
cp "$ORG/config.json" "$ORG/model.safetensors" "$ORG/tokenizer.json" "$WORK/notmpl/"
job "$WORK/notmpl" "  - {kind: refusal, harmful: harmful, harmless: harmless, n_train: 8, n_test: 2, templates: {base: chat}}"
expect "key 'templates': model 'base' has no chat template"
echo "PASS: validate names what a worker would miss, and how to fix it"
