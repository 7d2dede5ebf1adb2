#!/usr/bin/env bash
# report.sh — analysis/report.py builds one Markdown + HTML report from the
# output of a small `mechdiff run` (a `confidence` job on two golden
# checkpoints: llama3_f32 as "base", its bf16 rounding as "instruct"); every
# expected section heading is there (the other findings as "Skipped" notes
# until their modules and experiments are in the file), the entropy-neuron
# overlap sits beside the paper's number, the figure exists, and a model
# compared with itself overlaps 10/10, the overlap has its chance level and
# figure, and the same seed gives the same report; a knowledge window too
# short for the subject/object columns gives n/a and a note. $1: build dir.
set -euo pipefail
BUILD=${1:?build dir}
MECHDIFF=${MECHDIFF:-$BUILD/mechdiff}
PY=${PYTHON:-/usr/bin/python3}
[ -x "$MECHDIFF" ] || { echo "no binary at $MECHDIFF"; exit 77; }
"$PY" -c "import numpy, h5py, matplotlib" 2>/dev/null || { echo "$PY lacks numpy/h5py/matplotlib"; exit 77; }
SRC=$(pwd)
TMP=$(mktemp -d "${MECHDIFF_TMP:-$BUILD}/report.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
G=$SRC/tests/golden/models
cat >"$TMP/job.yaml" <<YAML
name: report-test
output: out.h5
models:
  base: $G/llama3_f32
  instruct: $G/llama3_bf16
  same: $G/llama3_f32
experiments:
  - kind: confidence
    neuron_block: 16
    wu_block: 50
YAML
"$MECHDIFF" run "$TMP/job.yaml" --quiet
"$PY" analysis/report.py "$TMP/out.h5" -o "$TMP/report"
MD=$TMP/report/report.md
for h in "## At a glance" "## Knowledge: patching maps and correlations" "## Knowledge: cross-model patching" \
         "## Truthfulness: truth-direction transfer and IE" "## Refusal: refusal scores" \
         "## Confidence: entropy-neuron overlap"; do
  grep -qF -- "$h" "$MD" || { echo "missing heading: $h"; cat "$MD"; exit 1; }
done
grep -qF "| base | same | 10/10 | 1.00 |" "$MD" || { echo "self overlap is not 10/10"; grep "^| base" "$MD"; exit 1; }
grep -qF "paper" "$MD" && grep -qF "8–10 of 10 (Llama-3.1: 8/10)" "$MD" || { echo "paper number missing"; exit 1; }
grep -q "<h2>Confidence: entropy-neuron overlap</h2>" "$TMP/report/report.html" || { echo "HTML lacks the section"; exit 1; }
[ -s "$TMP/report/figures/confidence_confidence_scatter.png" ] || { echo "scatter figure missing"; exit 1; }
[ -s "$TMP/report/figures/confidence_confidence_overlap.png" ] || { echo "overlap figure missing"; exit 1; }
grep -qE "\| base \| instruct \| [0-9]+/10 \| [0-9.]+ \| [0-9.]+ \[[0-9]+, [0-9]+\] of [0-9]+ kept \|" "$MD" \
  || { echo "no chance level beside the overlap"; grep "^| base" "$MD"; exit 1; }
# the same seed gives the same intervals, another seed may not (reproducible bootstrap)
"$PY" analysis/report.py "$TMP/out.h5" -o "$TMP/report2" > /dev/null
cmp -s "$MD" "$TMP/report2/report.md" || { echo "report not reproducible with the same seed"; exit 1; }
# a knowledge window too short to reach the subject and object: n/a cells and
# a note that says why and what to change, never a bare nan
cat >"$TMP/kn.yaml" <<YAML
name: report-kn
models: {base: $SRC/models/organism-base, instruct: $SRC/models/organism-instruct}
datasets: {cities: $SRC/data/cities.csv}
experiments:
  - {kind: knowledge, datasets: [cities], max_pairs: 4, n_toks: 2}
YAML
"$MECHDIFF" run "$TMP/kn.yaml" -o "$TMP/kn.h5" --quiet
"$PY" analysis/report.py "$TMP/kn.h5" -o "$TMP/report-kn" > /dev/null
KN=$TMP/report-kn/report.md
grep -qE "^\| cities \| base \| instruct \| .* \| n/a \| n/a \|$" "$KN" || { echo "no n/a cells"; grep "^| cities" "$KN"; exit 1; }
grep -qF "no subject and object columns (n/a in the table): the patched window of the last 2 positions" "$KN" \
  || { echo "no note on the n/a columns"; cat "$KN"; exit 1; }
! grep -q "| nan |" "$KN" || { echo "a bare nan in the knowledge table"; exit 1; }
echo "report.sh: ok"
