#!/bin/bash
# own_job_doc.sh — runs every block of docs/own-job.md marked *(tested)*,
# exactly as written and in order, from the root of a copy of the repository
# (models/, data/, analysis/ linked, build/mechdiff the binary under test):
# two make-model checkpoints of Qwen2.5-7B widths with the shipped pair's
# tokenizer, the user's job with all four kinds, validate, a run on 3 MPI
# ranks stopped by SIGUSR1 and resumed, status, verify, the report, and the
# Python that reads the file without mechdiff. Then checks what the doc says
# of it: the stopped run exits 75 (or 0 when it finished first), status says
# not finished, the file verifies, the report has all four analyses with
# none skipped. Writes ~2 GB of checkpoints in the scratch folder; about
# two minutes on 2 cores.
. "$(dirname "$0")/../lib.sh"
need_pair
"$PY" -c "import numpy, h5py, matplotlib, xarray, h5netcdf" 2>/dev/null \
    || { echo "SKIP: $PY lacks numpy/h5py/matplotlib/xarray/h5netcdf"; exit 77; }
command -v mpirun >/dev/null || { echo "SKIP: no mpirun"; exit 77; }

"$PY" - "$ROOT/docs/own-job.md" "$WORK" <<'PY' || fail "cannot extract the tested blocks"
import re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r"^\*\(tested\)\*\n```(sh|python)\n(.*?)^```", text, re.S | re.M)
assert len(blocks) == 5, f"{len(blocks)} tested blocks (want 5)"
for i, (lang, body) in enumerate(blocks):
    open(f"{sys.argv[2]}/block{i + 1}.{'sh' if lang == 'sh' else 'py'}", "w").write(body)
print(len(blocks), "tested blocks")
PY

C=$WORK/clone
mkdir -p "$C/build" "$C/jobs" "$C/out"
for d in models data analysis; do ln -s "$ROOT/$d" "$C/$d"; done
ln -s "$MECHDIFF" "$C/build/mechdiff"
cd "$C"
for i in 1 2 3 4 5; do
    echo "=== docs/own-job.md tested block $i" >>"$WORK/doc.out"
    if [ -f "$WORK/block$i.sh" ]; then
        bash -e "$WORK/block$i.sh" >>"$WORK/doc.out" 2>&1
    else
        /usr/bin/python3 "$WORK/block$i.py" >>"$WORK/doc.out" 2>&1
    fi || { tail -40 "$WORK/doc.out"; fail "docs/own-job.md tested block $i failed"; }
done

grep -Eq "stopped: exit 75|finished: wrote .*/out/my_pair.h5" "$WORK/doc.out" \
    || { cat "$WORK/doc.out"; fail "the SIGUSR1'd run neither stopped with exit 75 nor finished"; }
if grep -q "stopped: exit 75" "$WORK/doc.out"; then
    grep -q "not finished: exit 3" "$WORK/doc.out" || { cat "$WORK/doc.out"; fail "status of the stopped run did not exit 3"; }
fi
grep -q "valid and complete" "$WORK/doc.out" || { cat "$WORK/doc.out"; fail "verify did not say valid and complete"; }
R=$C/report/my_pair/report.md
[ -s "$R" ] || fail "no $R"
grep -q "(0 skipped)" "$WORK/doc.out" || { cat "$R"; fail "the report skipped a section"; }
for h in "## Knowledge: activation patching maps" "## Truthfulness" "## Refusal" "## Confidence: entropy-neuron overlap"; do
    grep -qF -- "$h" "$R" || fail "report: no '$h' section"
done
grep -E "stopped: exit|not finished: exit|valid and complete" "$WORK/doc.out"
echo "PASS: docs/own-job.md's tested blocks run as written"
