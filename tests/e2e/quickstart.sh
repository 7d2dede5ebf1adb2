#!/usr/bin/env bash
# The README's quickstart, as CI runs it: jobs/quickstart.yaml (all four
# experiments on the shipped model pair) on 3 MPI ranks, then the report,
# which must contain every section (knowledge maps, cross-model patching,
# truth, refusal, confidence), none skipped, each beside the paper's numbers.
set -euo pipefail
BUILD=${1:?build dir}
MD=${MECHDIFF:-$BUILD/mechdiff}
source tests/mpi/lib/common.sh "$BUILD"
need_pair
T=$WORK
"$MD" validate jobs/quickstart.yaml > /dev/null
start=$(date +%s)
mpirun --oversubscribe -np 3 "$MD" run jobs/quickstart.yaml -o "$T/quickstart.h5" --quiet
echo "quickstart sweep: $(( $(date +%s) - start )) s on 3 ranks"
"$MD" status "$T/quickstart.h5" | grep -q FINISHED
"${PYTHON:-/usr/bin/python3}" analysis/report.py "$T/quickstart.h5" -o "$T/report" > "$T/log"
cat "$T/log"
for section in "## At a glance" "## Knowledge: activation patching maps" "## Knowledge: cross-model patching" \
               "## Truthfulness" "## Refusal" "## Confidence"; do
  grep -q "^$section" "$T/report/report.md" || { echo "FAIL: the report lacks '$section'"; exit 1; }
done
grep -q "Skipped: none" "$T/report/report.md" || { grep "Skipped" "$T/report/report.md"; exit 1; }
grep -q "0.98-0.99" "$T/report/report.md" && grep -q "Llama-3.1: 8/10" "$T/report/report.md"
[ -s "$T/report/report.html" ] && ls "$T/report"/*.png > /dev/null
echo "quickstart: ok"
