#!/usr/bin/env bash
# One clear line for the small error cases of issue 14 item 10 (the job-file
# ones are in job_limits.sh): no HDF5 error stack before the message for a
# corrupt output, a folder output or `status` of a missing file; `merge` of
# files that are not parts says so (was "part -1 of a job split into 0
# parts"); an overflowing tensor shape is named as such (was "size = 0
# bytes"); `validate` says a problem that both the check and the plan of a kind
# find once (was twice: 'key 'models': 0 roles' of truth and refusal); a
# missing model folder once, at its key; a role outside the models map once
# (also beside another model's missing folder).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
expect() { # $1 = status, $2 = pattern, rest = command: a one-line message, no HDF5 stack
  expect_status "$@"
  [ "$(wc -l < "$T/err")" = 1 ] || fail "more than one line from: ${*:3} -- $(head -c 600 "$T/err")"
}
printf 'name: x\nexperiments:\n  - {kind: selftest, units: 4, rows: 2, cols: 2}\n' > "$T/job.yaml"
"$MD" run "$T/job.yaml" -o "$T/whole.h5" --quiet
expect 1 "not a part" "$MD" merge "$T/m.h5" "$T/whole.h5" "$T/whole.h5"
expect 1 "no such file" "$MD" status "$T/absent.h5"
expect 1 "a folder" "$MD" status "$T"
echo junk > "$T/junk.h5"
expect 1 "not a readable HDF5 file" "$MD" status "$T/junk.h5"
expect 1 "not a readable HDF5 file" "$MD" merge "$T/m.h5" "$T/junk.h5"
expect 1 "not a readable HDF5 file" "$MD" run "$T/job.yaml" -o "$T/junk.h5" --quiet
mkdir "$T/dir.h5"
expect 1 "not a regular file" "$MD" run "$T/job.yaml" -o "$T/dir.h5" --quiet
# a tensor whose shape overflows 64 bits
mkdir "$T/ovf"; cp tests/golden/models/llama3_f32/config.json "$T/ovf/"
/usr/bin/python3 - "$T/ovf/model.safetensors" <<'PY'
import json, struct, sys
h = json.dumps({"w": {"dtype": "F32", "shape": [2**62, 2**62], "data_offsets": [0, 0]}}).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h)
PY
expect 1 "overflows 64 bits" "$MD" inspect "$T/ovf"
for kind in truth refusal refusal_sweep confidence; do
  printf 'experiments:\n  - {kind: %s}\n' "$kind" > "$T/nomodels.yaml"
  expect 2 "experiment '$kind': key 'models': 0 roles" "$MD" validate "$T/nomodels.yaml"
  # a model folder that does not exist: said once, at its key (was also "no
  # weights" and the kind's "config.json: cannot open", twice for confidence)
  printf 'models: {base: %s}\nexperiments:\n  - {kind: %s}\n' "$T/nowhere" "$kind" > "$T/nofolder.yaml"
  expect 2 "key 'models.base': folder .* does not exist" "$MD" validate "$T/nofolder.yaml"
  grep -q "not planned: the folder of its model 'base' is missing" "$T/out" || fail "$kind: no 'not planned' line"
  # a role the models map lacks (confidence printed "(null)/config.json")
  printf 'models: {base: %s}\nexperiments:\n  - {kind: %s, models: [base, nope]}\n' "$PWD/models/organism-base" \
    "$kind" > "$T/norole.yaml"
  expect 2 "experiment '$kind': key 'models': role 'nope' is not in the job's models map" "$MD" validate "$T/norole.yaml"
  # ... also when another model's folder is missing: the experiment uses only its own list (its role
  # was not checked and it was 'not planned' for the folder of a model it does not use)
  printf 'models: {base: %s}\nexperiments:\n  - {kind: %s, models: [nope]}\n' "$T/nowhere" "$kind" > "$T/norole2.yaml"
  expect_status 2 "experiment '$kind': key 'models': role 'nope' is not in the job's models map" "$MD" validate \
    "$T/norole2.yaml"
  ! grep -q "not planned: the folder of its model 'base'" "$T/out" || fail "$kind: 'not planned' for a model it does not use"
done
echo "small_errors: ok"
