#!/usr/bin/env bash
# How messages name files (README.md, "Paths in messages"): the output of a
# job by its canonical path (absolute, links followed, no '.', '..' or '//'),
# the same in validate's 'output' line, its --print, and run's start and
# final lines, whether it came from the job's `output` (relative to the job
# file, in folders that do not exist yet) or from -o (relative to the
# current folder, or a symbolic link); a file given to status as typed.
# (A run printed 'output /x/./a/../out/y.h5' at the start and
# 'wrote /x/out/y.h5' at the end; validate printed 'jobs/../out/x.h5'.)
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
R=$(realpath "$T")
mkdir "$T/jobs" "$T/out"
printf 'name: paths\noutput: ../res/./new//x.h5\nexperiments:\n  - {kind: selftest, units: 4, rows: 2, cols: 2}\n' > "$T/jobs/job.yaml"
# start line, final line: both the canonical path
names() { # $1 = want, rest = run's arguments
  local want=$1; shift
  (cd "$T" && "$MD" run "$@" 2> "$T/err") || fail "run $*: $(cat "$T/err")"
  grep -q "starting job .*; output $want\$" "$T/err" || fail "run $*: start line: $(grep starting "$T/err")"
  grep -q "finished: wrote $want (" "$T/err" || fail "run $*: final line: $(grep finished "$T/err")"
}
"$MD" validate "$T/jobs/job.yaml" > "$T/v.txt"
grep -q "job.yaml: valid; output $R/res/new/x.h5\$" "$T/v.txt" || fail "validate: $(tail -1 "$T/v.txt")"
"$MD" validate "$T/jobs/job.yaml" --print | grep -q "^output: \"$R/res/new/x.h5\"\$" || fail "validate --print: output"
[ ! -e "$T/res" ] || fail "validate created the output folder"
names "$R/res/new/x.h5" jobs/job.yaml
names "$R/out/x.h5" jobs/job.yaml -o out//x.h5
names "$R/out/y.h5" jobs/job.yaml -o ./a/../out/y.h5
ln -s "$T/out/x.h5" "$T/link.h5"
names "$R/out/x.h5" jobs/job.yaml -o link.h5
# a path longer than run can hold is refused, not cut to another file's name
long="$T/$(printf 'd/%.0s' $(seq 2100))x.h5"
! (cd "$T" && "$MD" run jobs/job.yaml -o "$long" 2> "$T/err") || fail "run -o (4200 bytes) ran"
grep -q "output path too long" "$T/err" || fail "run -o (4200 bytes): $(cut -c1-300 "$T/err")"
[ ! -e "$T/d" ] || fail "run -o (4200 bytes) created $T/d"
# the job stored in the file says the same
"$PY" -c "import h5py, sys; print(h5py.File(sys.argv[1], 'r')['provenance'].attrs['job_yaml'])" "$T/out/y.h5" > "$T/job_yaml"
grep -q "^output: \"$R/out/y.h5\"\$" "$T/job_yaml" || fail "/provenance job_yaml: output is not $R/out/y.h5"
# a file given to status: as typed
(cd "$T" && "$MD" status out//x.h5) | head -1 | grep -q "^out//x.h5: job \"paths\"" || fail "status header"
echo "paths: ok"
