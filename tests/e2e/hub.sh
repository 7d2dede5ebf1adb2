#!/bin/bash
# hub.sh — a Hugging Face cache repo folder (models--org--name with refs/main,
# snapshots/<sha>/ of symlinks into blobs/, as huggingface-cli download
# leaves it) works wherever a model folder does: in a job (validate, run;
# /provenance/models/<role> path names the snapshot that ran) and for the
# commands (inspect, tokenize). Before: "config.json: cannot open".
. "$(dirname "$0")/../lib.sh"
need_pair
# hub_repo SRC_DIR REPO SHA: a cache repo folder holding SRC_DIR's files
hub_repo() {
    local f h
    mkdir -p "$2/blobs" "$2/refs" "$2/snapshots/$3"
    for f in "$1"/*; do
        h=$(sha256sum "$f" | cut -c1-64)
        cp "$f" "$2/blobs/$h"
        ln -s "../../blobs/$h" "$2/snapshots/$3/$(basename "$f")"
    done
    printf '%s' "$3" > "$2/refs/main"
}
HUB=$WORK/hub
SHA_OLD=0123456789abcdef0123456789abcdef01234567
SHA=89abcdef0123456789abcdef0123456789abcdef
hub_repo "$ROOT/models/organism-base" "$HUB/models--mechdiff--organism-base" "$SHA_OLD"
hub_repo "$ROOT/models/organism-base" "$HUB/models--mechdiff--organism-base" "$SHA" # a newer download: refs/main moves
hub_repo "$ROOT/models/organism-instruct" "$HUB/models--mechdiff--organism-instruct" "$SHA"

"$MECHDIFF" inspect "$HUB/models--mechdiff--organism-base" | grep -q "layers: *4" || fail "inspect on a cache repo folder"
"$MECHDIFF" tokenize "$HUB/models--mechdiff--organism-base" " TRUE" --no-special | grep -q "TRUE" || fail "tokenize on a cache repo folder"

cat > "$WORK/job.yaml" <<YAML
name: hub
models: {base: $HUB/models--mechdiff--organism-base, instruct: $HUB/models--mechdiff--organism-instruct}
datasets: {cities: $ROOT/data/cities.csv}
experiments:
  - kind: knowledge
    datasets: [cities]
    max_pairs: 2
YAML
"$MECHDIFF" validate "$WORK/job.yaml" --print >"$WORK/v.out" || { cat "$WORK/v.out"; fail "validate"; }
grep -q "snapshots/$SHA" "$WORK/v.out" || fail "the resolved job does not name the snapshot"
"$MECHDIFF" run "$WORK/job.yaml" -o "$WORK/out.h5" --quiet || fail "run"
/usr/bin/python3 - "$WORK/out.h5" "$HUB" "$SHA" <<'PY' || fail "provenance"
import h5py, sys
f = h5py.File(sys.argv[1], "r")
for role in ("base", "instruct"):
    path = f["/provenance/models/" + role].attrs["path"]
    path = path.decode() if isinstance(path, bytes) else path
    assert path.endswith("/snapshots/" + sys.argv[3]), (role, path)
    assert path.startswith(sys.argv[2]), path
print("provenance names the snapshots")
PY

# a refs/main that names a snapshot which is not there: validate names it
printf 'feedfacefeedfacefeedfacefeedfacefeedface' > "$HUB/models--mechdiff--organism-instruct/refs/main"
"$MECHDIFF" validate "$WORK/job.yaml" >/dev/null 2>"$WORK/err" && fail "validate accepted a missing snapshot"
grep -q "models.instruct.*feedface.*huggingface-cli download" "$WORK/err" || { cat "$WORK/err"; fail "error does not name the snapshot"; }
echo "PASS: cache repo folders resolve to refs/main's snapshot in jobs, provenance and commands"
