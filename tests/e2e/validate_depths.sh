#!/usr/bin/env bash
# validate checks the layer keys of truth, refusal and refusal_sweep once per
# model depth: two roles whose models share a depth that differs from the
# first role's get one line per problem naming both ("models 'sft', 'dpo'
# have 2 layers"), not a line each; one such role keeps the singular line.
# The 2-layer models are the shipped instruct model cut to its first 2 layers.
. "$(dirname "$0")/../lib.sh"
need_pair
$PY - "$ROOT/models/organism-instruct" "$WORK/sft2" "$WORK/dpo2" <<'PY' || fail "cannot cut the model"
import json, os, shutil, struct, sys
src = sys.argv[1]
raw = open(os.path.join(src, "model.safetensors"), "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr, base = json.loads(raw[8:8 + n]), 8 + n
for dst in sys.argv[2:]:
    os.makedirs(dst)
    out, blobs, off = {}, [], 0
    for k, v in hdr.items():
        if k == "__metadata__":
            out[k] = v
            continue
        if ".layers." in k and int(k.split(".layers.")[1].split(".")[0]) >= 2:
            continue
        b = raw[base + v["data_offsets"][0]:base + v["data_offsets"][1]]
        out[k] = dict(dtype=v["dtype"], shape=v["shape"], data_offsets=[off, off + len(b)])
        off += len(b)
        blobs.append(b)
    h = json.dumps(out).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(dst, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    cfg = json.load(open(os.path.join(src, "config.json")))
    cfg["num_hidden_layers"] = 2
    json.dump(cfg, open(os.path.join(dst, "config.json"), "w"))
    for name in os.listdir(src):
        if name not in ("model.safetensors", "config.json"):
            shutil.copy(os.path.join(src, name), dst)
PY
exps='experiments:
  - {kind: refusal, n_train: 8, n_test: 4, layer: 3, addition_layer: 3}
  - {kind: refusal_sweep, n_train: 8, n_test: 4, layers: all, positions: [-1]}
  - {kind: truth, train_datasets: [cities], test_datasets: [cities], layer: 3, intervention_layers: 3-3}'
data="datasets: {harmful: $ROOT/data/harmful.csv, harmless: $ROOT/data/harmless.csv, cities: $ROOT/data/cities.csv}"
printf 'name: depths\nmodels: {base: %s, sft: %s, dpo: %s}\n%s\n%s\n' "$ROOT/models/organism-base" "$WORK/sft2" \
  "$WORK/dpo2" "$data" "$exps" > "$WORK/two.yaml"
expect_status 2 "invalid (11 problems above)" "$MECHDIFF" validate "$WORK/two.yaml"
cat "$WORK/err"
for want in "experiment 'refusal': key 'layer'/'addition_layer': 3/3 but models 'sft', 'dpo' have 2 layers" \
            "experiment 'refusal_sweep': key 'layers': 'all' but model 'base' has 4 layers and models 'sft', 'dpo' 2; list the layers" \
            "experiment 'refusal_sweep': key 'layers': 2 but models 'sft', 'dpo' have 2 layers" \
            "experiment 'truth': key 'layer': 3 but models 'sft', 'dpo' have 2 layers" \
            "experiment 'truth': key 'intervention_layers': '3-3' is not -1, 'a' or 'a-b' with 0 <= a <= b < 2 (layers of models 'sft', 'dpo')"; do
  [ "$(grep -cF -- "$want" "$WORK/err")" = 1 ] || fail "not once: $want"
done
# the layer keys: 5 lines in all (one per problem), 6 'do not pair' (one per role that differs), 0 naming one model
n=$(grep -c "key 'layer\|key 'intervention_layers'" "$WORK/err")
[ "$n" = 5 ] || fail "layer lines: $n (want 5)"
[ "$(grep -c "do not pair" "$WORK/err")" = 6 ] || fail "pair lines"
! grep -q "but model 'sft'\|but model 'dpo'\|of model 'sft'\|of model 'dpo'" "$WORK/err" || fail "a line for one role of a shared depth"
# one role of that depth: the singular line, as before
printf 'name: depth\nmodels: {base: %s, sft: %s}\n%s\n%s\n' "$ROOT/models/organism-base" "$WORK/sft2" "$data" "$exps" \
  > "$WORK/one.yaml"
expect_status 2 "invalid (8 problems above)" "$MECHDIFF" validate "$WORK/one.yaml"
grep -qF "experiment 'truth': key 'layer': 3 but model 'sft' has 2 layers" "$WORK/err" || fail "singular line"
grep -qF "(layers of model 'sft')" "$WORK/err" || fail "singular intervention_layers line"
echo "validate_depths: ok"
