#!/usr/bin/env bash
# `mechdiff merge` of more parts than the descriptor limit lets it hold open
# at once (a job may be split into up to 10^6 parts; RLIMIT_NOFILE is often
# 1024): with `ulimit -n 12` and 16 parts, merge opens each part only while
# it reads it and gives the same file as a merge that keeps them all open
# (two experiments, one of two stages, so the parts are read again for each
# experiment and stage). Before the fix merge kept every part open and
# failed with "p6.h5: cannot open results file".
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
"$PY" -c 'import h5py' 2>/dev/null || { echo "SKIP: no h5py"; exit 77; }
cd "$T"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" # `run` is an MPI program
cat > s.yaml <<'YAML'
name: s
experiments:
  - {kind: selftest, units: 20, rows: 2, cols: 3}
  - {kind: selftest, name: other, units: 7, rows: 3, cols: 2, stages: 1}
YAML
N=16
parts=()
for i in $(seq 0 $((N - 1))); do
  "$MD" run s.yaml --part "$i/$N" -o "p$i.h5" --quiet
  parts+=("p$i.h5")
done
"$MD" merge all.h5 "${parts[@]}" > /dev/null || fail "merge of $N parts"
rc=0
(ulimit -n 12 && "$MD" merge few.h5 "${parts[@]}") > out.txt 2> err.txt || rc=$?
[ "$rc" = 0 ] || fail "merge of $N parts with 12 descriptors: status $rc: $(head -c 600 err.txt)"
grep -q "merged $N parts" out.txt || fail "merge's summary: $(cat out.txt)"
same_results all.h5 few.h5
rc=0
"$MD" verify --quiet few.h5 > out.txt || rc=$?
[ "$rc" -lt 2 ] || fail "the merge with few descriptors does not verify (status $rc): $(head -c 600 out.txt)"
echo "PASS: merge_many_parts"
