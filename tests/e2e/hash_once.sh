#!/usr/bin/env bash
# The provenance hashes a file once however many times the job lists it
# (provenance.c same_files: device and inode): two roles on one model folder
# (one of them through a symlink), one CSV under two dataset names; a copy of
# it is another file and is hashed. Every role and name still records the
# digest, equal to sha256sum's, alone and under MPI (the per-node readers).
. "$(dirname "$0")/../lib.sh"
need_pair
export MECHDIFF_DIGEST_CACHE=off # no cache: every file the job lists is read
ln -s "$ROOT/models/organism-base" "$WORK/base-link"
ln -s "$ROOT/data/harmful.csv" "$WORK/h-link.csv"
cp "$ROOT/data/harmful.csv" "$WORK/h-copy.csv"
cat > "$WORK/job.yaml" <<YAML
name: hash-once
models: {base: $ROOT/models/organism-base, again: $WORK/base-link, instruct: $ROOT/models/organism-instruct}
datasets: {h: $ROOT/data/harmful.csv, h2: $WORK/h-link.csv, h3: $WORK/h-copy.csv}
experiments:
  - {kind: selftest, units: 2, stages: 1}
YAML
check() { # $1: results file, $2: its log
  grep -q "hashing 4 files" "$2" || fail "not 4 files hashed (2 weight files, the CSV and its copy): $(grep -i hash "$2")"
  ! grep -q "hashing [5-9] files" "$2" || fail "a file hashed twice: $(grep -i hash "$2")"
  $PY - "$1" "$ROOT" "$WORK" <<'PY' || fail "$1: digests"
import hashlib, sys, h5py
out, root, work = sys.argv[1:]
sha = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
p = h5py.File(out, "r")["provenance"]
w = sha(root + "/models/organism-base/model.safetensors")
for role in ("base", "again"):
    assert p["models"][role].attrs["weight_sha256"] == w + "  model.safetensors\n", (role, p["models"][role].attrs["weight_sha256"])
assert p["models/instruct"].attrs["weight_sha256"].startswith(sha(root + "/models/organism-instruct/model.safetensors"))
c = sha(root + "/data/harmful.csv")
for name in ("h", "h2", "h3"):
    assert p["datasets"][name].attrs["sha256"] == c, name
PY
}
"$MECHDIFF" run "$WORK/job.yaml" -o "$WORK/one.h5" 2> "$WORK/log1" || { cat "$WORK/log1"; fail "run"; }
check "$WORK/one.h5" "$WORK/log1"
$MPIRUN -np 2 "$MECHDIFF" run "$WORK/job.yaml" -o "$WORK/two.h5" 2> "$WORK/log2" || { cat "$WORK/log2"; fail "run on 2 ranks"; }
check "$WORK/two.h5" "$WORK/log2"
echo "hash_once: ok"
