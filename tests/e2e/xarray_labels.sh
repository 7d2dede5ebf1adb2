#!/usr/bin/env bash
# The results file explains itself (issue 16): a quickstart-like job on the
# shipped pair (knowledge with a cross-model direction, truth, refusal,
# confidence, a refusal sweep over sparse layers), read with plain xarray through h5netcdf — no mechdiff code, no
# analysis/ — selecting by role names (groups <source>-><target> and their
# attributes), condition / intervention / set / effect names (string
# dimension scales) and token strings (pairs/true_tokens); every selected
# value equals the raw HDF5 element it names. `ncdump -h` reads the file and
# shows the string scales. A model whose tokenizer adds no BOS token gets
# descriptions that say so. Checks: tests/e2e/lib/xarray_labels.py.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
need_pair
"$PY" -c "import xarray, h5netcdf" 2>/dev/null || { echo "SKIP: python3-xarray / python3-h5netcdf not installed"; exit 77; }
command -v ncdump > /dev/null || { echo "SKIP: ncdump (netcdf-bin) not installed"; exit 77; }
# the instruct model with a tokenizer that adds no BOS token
mkdir -p "$WORK/nobos"
cp models/organism-instruct/* "$WORK/nobos/"
"$PY" - "$WORK/nobos" <<'PY'
import json, sys
for name, drop in (("tokenizer.json", "post_processor"), ("tokenizer_config.json", "add_bos_token")):
    c = json.load(open(sys.argv[1] + "/" + name))
    c[drop] = None if drop == "post_processor" else False
    json.dump(c, open(sys.argv[1] + "/" + name, "w"))
PY
cat > "$WORK/job.yaml" <<YAML
name: labels
seed: 1
models: {base: $ROOT/models/organism-base, instruct: $ROOT/models/organism-instruct}
datasets: {cities: $ROOT/data/cities.csv, sp_en_trans: $ROOT/data/sp_en_trans.csv,
           animal_class: $ROOT/data/animal_class.csv, harmful: $ROOT/data/harmful.csv,
           harmless: $ROOT/data/harmless.csv}
experiments:
  - kind: knowledge
    datasets: [cities]
    cross: [instruct->base]
    max_pairs: 8
  - kind: truth
    train_datasets: [sp_en_trans, animal_class]
    test_datasets: [cities]
    max_statements: 40
    control_directions: 1
  - kind: refusal
    n_train: 16
    n_test: 6
    max_new_tokens: 4
    templates: {base: base, instruct: chat}
  - kind: refusal
    name: sweep
    sweep: true
    sweep_layers: [1, 3]
    sweep_positions: [-1, -3]
    n_train: 8
    n_test: 3
    max_new_tokens: 2
    templates: {base: base, instruct: chat}
  - kind: confidence
    prompts: cities
    max_prompts: 6
YAML
cat > "$WORK/nobos.yaml" <<YAML
name: nobos
models: {nobos: $WORK/nobos}
datasets: {cities: $ROOT/data/cities.csv}
experiments:
  - kind: knowledge
    datasets: [cities]
    max_pairs: 2
  - kind: confidence
    prompts: cities
    max_prompts: 2
YAML
$MPIRUN -np 3 "$MECHDIFF" run "$WORK/job.yaml" -o "$WORK/labels.h5" --quiet
"$MECHDIFF" run "$WORK/nobos.yaml" -o "$WORK/nobos.h5" --quiet
"$PY" tests/e2e/lib/xarray_labels.py "$WORK/labels.h5" "$WORK/nobos.h5"
