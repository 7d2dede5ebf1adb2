#!/usr/bin/env bash
# The refusal to resume another job's file names the first line of the
# job that differs (src/runner/runner_job.c, job_difference) also when the
# two lines differ only past their 255th byte (a long name or path): it
# shows the text around the difference. Before, lines were cut at 255
# bytes, compared equal, and the message said that the job's keys were the
# same, so a model or dataset file had changed.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" # `run` is an MPI program
cd "$T"
long=$(printf 'x%.0s' $(seq 1 290))
printf 'name: %sa\nexperiments:\n  - {kind: selftest, units: 3}\n' "$long" > a.yaml
printf 'name: %sb\nexperiments:\n  - {kind: selftest, units: 3}\n' "$long" > b.yaml
"$MD" run a.yaml -o r.h5 --quiet
expect_status 1 "was written by a different job" "$MD" run b.yaml -o r.h5 --quiet
grep -q "the first difference: '\.\.\.x*a\"*' in the file, '\.\.\.x*b\"*' in this job" "$WORK/err" \
  || fail "the difference past byte 255 is not shown: $(head -c 900 "$WORK/err")"
grep -q "keys are the same" "$WORK/err" && fail "said the keys are the same: $(head -c 900 "$WORK/err")"
echo "PASS: resume_long_line"
