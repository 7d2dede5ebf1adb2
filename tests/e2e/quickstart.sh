#!/usr/bin/env bash
# The README's quickstart, as CI runs it: jobs/quickstart.yaml (all four
# experiments on the shipped model pair) on 3 MPI ranks, then the report,
# which must contain every section (knowledge maps, cross-model patching,
# truth, refusal, confidence), none skipped, each beside the paper's numbers;
# the output reads by names through xarray and ncdump (tests/e2e/lib/read_results.py).
# README.md stays true of it: its results table (between the
# quickstart-results markers) is the report's "At a glance" table (the file
# is bit-identical for any number of ranks), and its Python examples of
# "Reading the results" run on the file.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
need_pair
"$MD" validate jobs/quickstart.yaml > /dev/null
start=$(date +%s)
mpirun --oversubscribe -np 3 "$MD" run jobs/quickstart.yaml -o "$T/quickstart.h5" --quiet
echo "quickstart sweep: $(( $(date +%s) - start )) s on 3 ranks"
"$MD" status "$T/quickstart.h5" | grep -q FINISHED
# Read without mechdiff: xarray/h5netcdf, analysis/mdread.py by names, ncdump -h.
"${PYTHON:-/usr/bin/python3}" tests/e2e/lib/read_results.py "$T/quickstart.h5"
# The report's intervals are of the file's numbers (statistics recomputed from the stored data).
"${PYTHON:-/usr/bin/python3}" tests/e2e/lib/report_stats.py "$T/quickstart.h5"
"${PYTHON:-/usr/bin/python3}" analysis/report.py "$T/quickstart.h5" -o "$T/report" > "$T/log"
cat "$T/log"
for section in "## At a glance" "## Knowledge: activation patching maps" "## Knowledge: cross-model patching" \
               "## Truthfulness" "## Refusal" "## Confidence"; do
  grep -q "^$section" "$T/report/report.md" || { echo "FAIL: the report lacks '$section'"; exit 1; }
done
grep -q "Skipped: none" "$T/report/report.md" || { grep "Skipped" "$T/report/report.md"; exit 1; }
# README.md's results table is this report's (rerun the quickstart and paste it when the models or kinds change)
sed -n '/<!-- quickstart-results -->/,/<!-- \/quickstart-results -->/p' README.md | grep '^|' > "$T/readme_table.md"
[ -s "$T/readme_table.md" ] || { echo "FAIL: no table between README.md's quickstart-results markers"; exit 1; }
awk -v h="$(head -1 "$T/readme_table.md")" '$0 == h {on = 1} on && /^\|/ {print; next} on {exit}' \
  "$T/report/report.md" > "$T/report_table.md"
diff -u "$T/readme_table.md" "$T/report_table.md" \
  || { echo "FAIL: README.md's quickstart table is not the report's 'At a glance' table"; exit 1; }
# README.md's Python examples ("Reading the results") on this file
"${PYTHON:-/usr/bin/python3}" - "$T/quickstart.h5" <<'PY'
import re, sys
readme = open("README.md", encoding="utf-8").read()
m = re.search(r"^## Reading the results\n(.*?)(?=^## )", readme, re.S | re.M)
blocks = re.findall(r"^```python\n(.*?)^```", m.group(1) if m else "", re.S | re.M)
if len(blocks) < 2:
    sys.exit(f"FAIL: README.md's 'Reading the results' has {len(blocks)} Python examples (want 2)")
for i, code in enumerate(blocks):
    if '"out/quickstart.h5"' not in code:
        sys.exit(f"FAIL: README.md's Python example {i + 1} does not read out/quickstart.h5")
    exec(compile(code.replace('"out/quickstart.h5"', repr(sys.argv[1])), f"README.md example {i + 1}", "exec"), {})
print(f"README.md: {len(blocks)} Python examples ran on the quickstart file")
PY
# difference maps (post - base, cross - within) and intervals on every headline number
for f in knowledge_diff_knowledge_cities_instruct_vs_base knowledge_diff_knowledge_cities_instruct_to_base_vs_base \
         knowledge_correlation; do
  [ -s "$T/report/figures/$f.png" ] && grep -q "figures/$f.png" "$T/report/report.md" || { echo "FAIL: no $f"; exit 1; }
done
grep -q "| harmful refusal of instruct, no intervention (n=40) | 1.00 \[0.91, 1.00\] |" "$T/report/report.md" \
  || { echo "FAIL: refusal rate without its Wilson interval"; grep "harmful refusal" "$T/report/report.md"; exit 1; }
grep -qE "truth direction base→instruct \(cities, truth_at_object\) \| IE 0\.[0-9]{2} \[0\.[0-9]{2}, [01]\.[0-9]{2}\]" \
  "$T/report/report.md" || { echo "FAIL: IE without its bootstrap interval"; exit 1; }
grep -q "a rate near 0.5 is known to ±0.15" "$T/report/report.md" || { echo "FAIL: no precision note"; exit 1; }
# tables fit a 1280-px page: at most 7 columns, at most 150 characters a row
awk -F'|' '/^\|/ && (NF - 2 > 7 || length($0) > 150) { print "FAIL: table row too wide: " $0; bad = 1 } END { exit bad }' \
  "$T/report/report.md"
grep -q "0.98-0.99" "$T/report/report.md" && grep -q "Llama-3.1: 8/10" "$T/report/report.md"
[ -s "$T/report/report.html" ] && ls "$T/report"/*.png > /dev/null
# The organism's truth direction, read at the stated object (truth_at_object),
# must work as an intervention within and across models, and clearly beyond
# random directions of the same norm (the study-settings experiment is
# reported, not checked: on this organism it is a readout only).
"${PYTHON:-/usr/bin/python3}" - "$T/quickstart.h5" <<'PY'
import sys
import h5py
g = h5py.File(sys.argv[1], "r")["truth_at_object"]
ie, ctrl = g["ie"][...], g["ie_control"][...]  # [source, target, test, 3], [target, test, control, 3]
roles = g.attrs["models"].split(",")
bad = []
for a, src in enumerate(roles):
    for b, tgt in enumerate(roles):
        avg, c = float(ie[a, b, 0, 2]), float(ctrl[b, 0, :, 2].mean())
        print(f"truth_at_object {src}->{tgt}: IE {avg:.2f}, random controls {c:.2f}")
        if avg < 0.5 or avg < c + 0.3:
            bad.append(f"{src}->{tgt} IE {avg:.2f} (controls {c:.2f})")
if bad:
    sys.exit("FAIL: truth intervention too weak: " + "; ".join(bad))
PY
echo "quickstart: ok"
