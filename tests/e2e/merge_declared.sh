#!/usr/bin/env bash
# `mechdiff merge` and the record of each stage's declared datasets
# (attribute `datasets` of /completion/<experiment>/stage<k>,
# src/runner/h5declared.h):
#   - a part 0 without records (written by a build before them) takes each
#     stage's record from the first later part that has one: the merged file
#     verifies with every stage checked and holds the results and attributes
#     of a merge of unedited parts;
#   - a later part without records leaves part 0's;
#   - two parts whose records of one stage differ (different jobs or builds)
#     are refused: the message names both part files, the experiment and the
#     stage, and no merged file is written; so is a part whose record is not
#     a list of strings.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
"$PY" -c 'import h5py' 2>/dev/null || { echo "SKIP: no h5py"; exit 77; }
cd "$T"
run() { ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" "$MD" run "$@"; }
# records FILE: every stage's record, one line each ("exp/stageK: a b c")
records() {
  "$PY" - "$1" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    for e, eg in f["completion"].items():
        for s, st in eg.items():
            print(f"{e}/{s}: " + (" ".join(st.attrs["datasets"]) if "datasets" in st.attrs else "(none)"))
PY
}
# set_record FILE EXP STAGE NAME...: writes the record of one stage
set_record() {
  "$PY" - "$@" <<'PY'
import sys, h5py
path, exp, stage, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
with h5py.File(path, "r+") as f:
    st = f[f"completion/{exp}/stage{stage}"]
    del st.attrs["datasets"]
    st.attrs.create("datasets", names, dtype=h5py.string_dtype())
PY
}

# summary FILE: verify's summary says every stage's record was checked
summary() {
  local s rc=0
  s=$("$MD" verify "$1") || rc=$?
  [ "$rc" -lt 2 ] || fail "$1: verify status $rc: $s"
  grep -qE -- "declared datasets: [1-9][0-9]* present, 0 stages without a record" <<< "$s" \
    || fail "$1: verify's summary: $s"
}

cat > s.yaml <<'YAML'
name: s
experiments:
  - {kind: selftest, units: 9, rows: 2, cols: 3}
  - {kind: selftest, name: other, units: 5, rows: 3, cols: 2, stages: 1}
YAML
for i in 0 1 2; do run s.yaml --part $i/3 -o p$i.h5 --quiet; done
"$MD" merge m.h5 p0.h5 p1.h5 p2.h5 > /dev/null
want=$(records m.h5)
grep -q "selftest/stage0: [a-z]" <<< "$want" && grep -q "other/stage0: [a-z]" <<< "$want" \
  || fail "the parts of this build should have records: $want"
stages=$(grep -c . <<< "$want")
summary m.h5

# part 0 of an earlier build: the records come from part 1
cp p0.h5 old0.h5
strip_declared old0.h5
[ "$(records old0.h5 | grep -c '(none)')" = "$stages" ] || fail "strip left records: $(records old0.h5)"
"$MD" merge mo.h5 old0.h5 p1.h5 p2.h5 > /dev/null || fail "merge with a part 0 without records failed"
[ "$(records mo.h5)" = "$want" ] || fail "records taken from part 1: $(records mo.h5), want $want"
summary mo.h5
same_results m.h5 mo.h5
# ... and a dataset deleted from it is named by the record it got
cp mo.h5 md.h5
"$PY" -c 'import sys, h5py; del h5py.File(sys.argv[1], "r+")["other/label"]' md.h5
rc=0; "$MD" verify --quiet md.h5 > out.txt || rc=$?
[ "$rc" = 4 ] && grep -qF "md.h5: /other/label: missing: dataset 'label' of experiment other, declared by its stage 0" out.txt \
  || fail "a dataset deleted from the merged file: status $rc, $(head -c 600 out.txt)"

# a later part without records: part 0's stay
cp p2.h5 old2.h5
strip_declared old2.h5
"$MD" merge m2.h5 p0.h5 p1.h5 old2.h5 > /dev/null || fail "merge with a part 2 without records failed"
[ "$(records m2.h5)" = "$want" ] || fail "part 0's records: $(records m2.h5), want $want"

# different records of one stage: refused, both files named (part 0 has
# none, so the two compared are parts 1 and 2)
cp p2.h5 bad2.h5
set_record bad2.h5 other 0 label
expect_status 1 "mechdiff merge: p1.h5 and bad2.h5 hold different records of the datasets of experiment other stage 0 (attribute 'datasets' of /completion/other/stage0: [0-9]* and 1 names): the parts come from different jobs or builds of mechdiff" \
  "$MD" merge x.h5 old0.h5 p1.h5 bad2.h5
[ ! -e x.h5 ] && [ ! -e x.h5.tmp ] || fail "a refused merge left x.h5 or x.h5.tmp"
# the same names in another order differ too
cp p1.h5 bad1.h5
"$PY" - bad1.h5 <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    st = f["completion/selftest/stage0"]
    names = list(st.attrs["datasets"])[::-1]
    del st.attrs["datasets"]
    st.attrs.create("datasets", names, dtype=h5py.string_dtype())
PY
expect_status 1 "mechdiff merge: p0.h5 and bad1.h5 hold different records of the datasets of experiment selftest stage 0" \
  "$MD" merge x.h5 p0.h5 bad1.h5 p2.h5
[ ! -e x.h5 ] || fail "a refused merge left x.h5"
# a record that is no list of strings
cp p1.h5 int1.h5
"$PY" -c 'import sys, h5py; h5py.File(sys.argv[1], "r+")["completion/other/stage0"].attrs["datasets"] = 3' int1.h5
expect_status 1 "mechdiff merge: int1.h5: /completion/other/stage0: attribute 'datasets' holds integers of rank 0, not a list of dataset paths" \
  "$MD" merge x.h5 p0.h5 int1.h5 p2.h5
[ ! -e x.h5 ] || fail "a refused merge left x.h5"
echo "PASS: merge_declared"
