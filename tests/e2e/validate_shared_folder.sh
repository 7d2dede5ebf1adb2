#!/usr/bin/env bash
# validate checks a model folder once however many roles name it
# (job_check.c first_role_of_folder: device and inode, a symlink included):
# a broken folder under two roles is one problem naming both keys, beside
# the line of another broken folder; a sound shared folder validates.
. "$(dirname "$0")/../lib.sh"
need_pair
mkdir "$WORK/broken"
cp "$ROOT"/models/organism-base/* "$WORK/broken/"
sed -i 's/"num_hidden_layers": 4/"num_hidden_layers": 6/' "$WORK/broken/config.json"
ln -s "$WORK/broken" "$WORK/broken-link"
cp -r "$WORK/broken" "$WORK/broken2" # another folder: its own line
cat > "$WORK/bad.yaml" <<YAML
name: shared
models: {base: $WORK/broken, again: $WORK/broken-link, other: $WORK/broken2}
experiments:
  - {kind: selftest, units: 2}
YAML
expect_status 2 "invalid (2 problems above)" "$MECHDIFF" validate "$WORK/bad.yaml"
cat "$WORK/err"
grep -q "keys 'models.base', 'models.again': model 'base': .*num_hidden_layers = 6" "$WORK/err" || fail "shared folder line"
grep -q "key 'models.other': model 'other': .*num_hidden_layers = 6" "$WORK/err" || fail "the other folder's line"
[ "$(grep -c "num_hidden_layers = 6" "$WORK/err")" = 2 ] || fail "not one line per folder"
cat > "$WORK/good.yaml" <<YAML
name: shared-ok
models: {base: $ROOT/models/organism-base, again: $ROOT/models/organism-base}
experiments:
  - {kind: selftest, units: 2}
YAML
"$MECHDIFF" validate "$WORK/good.yaml" > "$WORK/out" 2> "$WORK/err" || fail "a shared sound folder: $(cat "$WORK/err")"
grep -q "valid; output" "$WORK/out" || fail "no valid line"
echo "validate_shared_folder: ok"
