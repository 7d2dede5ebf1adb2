#!/usr/bin/env bash
# Job files that are legal-looking but hostile, and `validate` reporting
# everything at once (issue 14 items 4, 9, 10):
#  - a plan larger than a job can hold (selftest units 1e9, a 2 PB dataset)
#    is refused naming the key / dataset and the limit, in bounded memory;
#  - a job file over 1 MiB, /dev/zero, 40 000 nested '[' and 70 nested "- "
#    are refused at once (libyaml took 23 s on the nesting; /dev/zero read
#    until memory ran out);
#  - a folder as the job file says so (was "the job file is empty"); a
#    second YAML document is refused (was silently ignored);
#  - a missing dataset file, a CUDA request on a CPU build and a missing
#    column are all reported by one `validate`.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
limited() { (ulimit -v 3000000; exec timeout 10 "$@"); } # 3 GB of address space, 10 s
expect() { # $1 = pattern in stderr, rest = command (status must be 2)
  local pat=$1; shift
  expect_status 2 "$pat" limited "$@"
}
printf 'name: x\nexperiments:\n  - kind: selftest\n    units: 1000000000\n' > "$T/units.yaml"
expect "key 'units': expected int in \[1, 16777216\]" "$MD" validate "$T/units.yaml"
printf 'name: x\nexperiments:\n  - kind: selftest\n    units: 16000000\n    rows: 4096\n    cols: 4096\n' > "$T/dset.yaml"
expect "dataset 'values' would hold .* more than a job can hold" "$MD" validate "$T/dset.yaml"
/usr/bin/python3 -c "print('name: x\nexperiments:\n  - kind: selftest\n' + '#' * (1 << 20))" > "$T/big.yaml"
expect "larger than the 1 MiB" "$MD" validate "$T/big.yaml"
expect "larger than the 1 MiB" "$MD" validate /dev/zero
/usr/bin/python3 -c "print('name: x\nexperiments: ' + '[' * 40000 + ']' * 40000)" > "$T/flow.yaml"
expect "nesting deeper than 64" "$MD" validate "$T/flow.yaml"
/usr/bin/python3 -c "print('name: x\nexperiments:\n' + '  - ' * 70 + 'a')" > "$T/block.yaml"
expect "nesting deeper than 64" "$MD" validate "$T/block.yaml"
expect "is a folder" "$MD" validate "$T"
expect "is a folder" "$MD" run "$T"
printf 'name: x\nexperiments:\n  - kind: selftest\n---\nname: y\n' > "$T/two.yaml"
expect "two.yaml:4:1: a second YAML document" "$MD" validate "$T/two.yaml"
# a job read from a pipe still works
"$MD" validate <(printf 'name: x\nexperiments:\n  - kind: selftest\n') > /dev/null || fail "job from a pipe"

# every problem at once
if [ -f models/organism-base/model.safetensors ]; then
  printf 'statement,foo\nThe sky is blue.,1\n' > "$T/nocol.csv"
  cat > "$T/multi.yaml" <<YAML
name: multi
models: {base: $ROOT/models/organism-base, instruct: $ROOT/models/organism-instruct}
datasets: {gone: $T/missing.csv, nocol: $T/nocol.csv}
runtime: {backend: cuda}
experiments:
  - kind: knowledge
    name: a
    datasets: [gone]
  - kind: knowledge
    name: b
    datasets: [nocol]
YAML
  expect "missing.csv' does not exist" env -u MECHDIFF_BACKEND "$MD" validate "$T/multi.yaml"
  grep -q "no column 'label'" "$T/err" || fail "the missing column was not reported with the missing file: $(cat "$T/err")"
  # the missing file once, at its key, naming the experiment that uses it (not again from a's checks and plan)
  [ "$(grep -c "missing.csv" "$T/err")" = 1 ] || fail "the missing file was reported more than once: $(cat "$T/err")"
  grep -q "datasets.gone': file .*missing.csv' does not exist.*used by experiments 'a')" "$T/err" ||
    fail "the missing file's report does not name experiment a: $(cat "$T/err")"
  if ! grep -q "MECHDIFF_CUDA:BOOL=ON" "$BUILD/CMakeCache.txt" 2>/dev/null; then # a CPU build
    grep -q "built without CUDA" "$T/err" || fail "the CUDA request was not reported with the missing file: $(cat "$T/err")"
  fi
else
  echo "(organism pair absent: the all-at-once case is skipped)"
fi
echo "job_limits: ok"
