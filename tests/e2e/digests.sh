#!/usr/bin/env bash
# Start-up digests (issue 16 item 8): the weight files and datasets hashed
# for provenance, through the user's digest cache and the one next to the
# output (<output folder>/.mechdiff-digests), shared among readers:
#  - a first run hashes every file, says so in time-stamped lines, and
#    stores the digests in both caches; provenance holds sha256sum's digests;
#  - a run with an empty user cache (a node whose home is not shared) finds
#    every digest next to the output (N/N cached), copies them into its user
#    cache and writes the same provenance;
#  - 3 ranks as 3 readers (MECHDIFF_HASH_READERS=rank), no caches: the files
#    are shared among the readers, gathered on rank 0, same digests;
#  - MECHDIFF_DIGEST_CACHE=off creates no cache folder.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
need_pair
mkdir -p "$T/out" "$T/m"
# the pair, copied with old times (the caches store only files older than 2 s)
for r in base instruct; do cp -r "$ROOT/models/organism-$r" "$T/m/$r"; done
find "$T/m" -type f -exec touch -d '1 hour ago' {} +
cat > "$T/job.yaml" <<YAML
name: digests
models: {base: $T/m/base, instruct: $T/m/instruct}
datasets: {cities: $ROOT/data/cities.csv}
experiments:
  - {kind: selftest, units: 1, stages: 1}
YAML
# provenance digests of OUT against sha256sum of the files
same_digests() {
  "$PY" - "$1" "$T/m" <<'PY'
import h5py, hashlib, sys
out, m = sys.argv[1], sys.argv[2]
n = 0
with h5py.File(out, "r") as f:
    for role in ("base", "instruct"):
        g = f[f"provenance/models/{role}"]
        for line in g.attrs["weight_sha256"].splitlines():
            digest, name = line.split("  ")
            want = hashlib.sha256(open(f"{m}/{role}/{name}", "rb").read()).hexdigest()
            assert digest == want, (role, name, digest, want)
            n += 1
assert n >= 2, n
print(f"{n} weight digests = sha256sum")
PY
}
TS='mechdiff: [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z '

MECHDIFF_DIGEST_CACHE=$T/user1 "$MECHDIFF" run "$T/job.yaml" -o "$T/out/a.h5" 2> "$T/a.log" || { cat "$T/a.log"; fail "first run"; }
grep -Eq "${TS}hashing ([0-9]+) files \([0-9.]+ GB\): 0/\1 cached" "$T/a.log" || { cat "$T/a.log"; fail "first hashing line"; }
grep -Eq "${TS}hashed [0-9]+ files in" "$T/a.log" || { cat "$T/a.log"; fail "hashed line"; }
n_out=$(ls "$T/out/.mechdiff-digests" | wc -l); n_user=$(ls "$T/user1" | wc -l)
[ "$n_out" -ge 3 ] && [ "$n_out" = "$n_user" ] || fail "entries: $n_out next to the output, $n_user in the user cache"
[ "$(stat -c %a "$T/out/.mechdiff-digests")" = 700 ] || fail "the cache folder is not private"
same_digests "$T/out/a.h5"

# another node: its user cache is empty, the one next to the output is not
MECHDIFF_DIGEST_CACHE=$T/user2 "$MECHDIFF" run "$T/job.yaml" -o "$T/out/b.h5" 2> "$T/b.log" || { cat "$T/b.log"; fail "second run"; }
grep -Eq "${TS}hashing ([0-9]+) files \([0-9.]+ GB\): \1/\1 cached" "$T/b.log" || { cat "$T/b.log"; fail "not all cached"; }
grep -q "hashed" "$T/b.log" && { cat "$T/b.log"; fail "read files the cache knew"; }
[ "$(ls "$T/user2" | wc -l)" = "$n_out" ] || fail "the hits were not copied into the user cache"
same_digests "$T/out/b.h5"
# a changed file is read again (the entry's key has its times)
touch -d '30 minutes ago' "$T/m/base/model.safetensors"
MECHDIFF_DIGEST_CACHE=$T/user2 "$MECHDIFF" run "$T/job.yaml" -o "$T/out/c.h5" 2> "$T/c.log" || fail "third run"
grep -Eq "hashing ([0-9]+) files \([0-9.]+ GB\): ([0-9]+)/\1 cached.*, 1 to read" "$T/c.log" || { cat "$T/c.log"; fail "changed file"; }

# three readers on this machine, no cache
MECHDIFF_DIGEST_CACHE=off $MPIRUN -np 3 -x MECHDIFF_DIGEST_CACHE -x MECHDIFF_HASH_READERS=rank \
  "$MECHDIFF" run "$T/job.yaml" -o "$T/none/d.h5" 2> "$T/d.log" || { cat "$T/d.log"; fail "3 readers"; }
grep -Eq "0/[0-9]+ cached.* to read .* by 3 readers" "$T/d.log" || { cat "$T/d.log"; fail "not shared by 3 readers"; }
grep -Eq "hashed [0-9]+ files .* by 3 readers in" "$T/d.log" || { cat "$T/d.log"; fail "no gathered line"; }
[ -e "$T/none/.mechdiff-digests" ] && fail "a cache folder with MECHDIFF_DIGEST_CACHE=off"
same_digests "$T/none/d.h5"
echo OK
