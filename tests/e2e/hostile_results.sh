#!/usr/bin/env bash
# Results files that come back edited by hand (h5py, R, Julia), truncated by
# a full disk or half-copied: tests/e2e/lib/hostile_variants.py derives each
# variant from a small valid file, and `mechdiff status`, a resume (`run` on
# it) and `merge` must either give the right result (the harmless variants:
# the resume finishes the job and its results equal an untouched run's) or
# refuse with a status of 1 and one line that names the file and what is wrong,
# no HDF5 error stack, no crash, and the refused file's bytes unchanged (no
# OUT.h5.tmp left either). Before the fixes this test came with: a
# 2-element layout_version and a 2-D done dataset crashed (SIGSEGV);
# reshaped/retyped datasets were resumed into (exit 0); a float32 part was
# merged by reading floats as doubles (garbage values, exit 0).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
GEN="$ROOT/tests/e2e/lib/hostile_variants.py"
"$PY" -c 'import h5py' 2>/dev/null || { echo "SKIP: no h5py"; exit 77; }
cd "$T"
# `run` under AddressSanitizer (scripts/test.sh): Open MPI never frees what
# MPI_Init allocates, so leaks are checked in status and merge only
run() { ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" "$MD" run "$@"; }
printf 'name: x\nexperiments:\n  - {kind: selftest, units: 6, rows: 2, cols: 3}\n' > job.yaml
run job.yaml -o full.h5 --quiet
# k2: killed after publishing snapshot 2 (its journal not yet rotated: the
# base of the journal variants); k3: after snapshot 3 (stage 0 done, stage 1
# planned, none of its units done: a resume reads stage 0 back, then writes)
for g in 2 3; do
  rc=0
  (MECHDIFF_TEST_KILL_SNAPSHOT=$g:-1 run job.yaml -o k$g.h5 --quiet; exit $?) 2>/dev/null || rc=$?
  [ "$rc" = 137 ] || fail "the kill at snapshot $g: status $rc"
  rm -f k$g.h5.lock
done
[ -s k2.h5.journal ] || fail "no journal beside k2.h5"

# check WHAT DIR STATUS PATTERN CMD...: exit STATUS; with STATUS 1 the
# message is one line, holds PATTERN (grep -E) and the file's name
check() {
  local what=$1 dir=$2 want=$3 pat=$4 rc=0
  shift 4
  "$@" > "$dir/out" 2> "$dir/err" || rc=$?
  [ "$rc" -lt 128 ] || fail "$what: crashed (status $rc): $(head -c 600 "$dir/err")"
  ! grep -q "HDF5-DIAG\|AddressSanitizer\|runtime error\|LeakSanitizer" "$dir/err" ||
    fail "$what: an HDF5 error stack or a sanitizer report: $(head -c 600 "$dir/err")"
  [ "$rc" = "$want" ] || fail "$what: status $rc (want $want): $(head -c 600 "$dir/err")"
  [ "$want" = 1 ] || return 0
  [ "$(wc -l < "$dir/err")" = 1 ] || fail "$what: more than one line: $(head -c 600 "$dir/err")"
  grep -qE -- "$pat" "$dir/err" || fail "$what: message lacks '$pat': $(cat "$dir/err")"
  grep -qF -- "$dir/out.h5" "$dir/err" || fail "$what: message does not name $dir/out.h5: $(cat "$dir/err")"
}

# resume WHAT DIR PATTERN JOB REF: `run JOB` on DIR/out.h5: with PATTERN ok
# it finishes with REF's results; else it is refused, the file unchanged
resume() {
  local sum
  sum=$(sha256sum < "$2/out.h5")
  if [ "$3" = ok ]; then
    check "$1: resume" "$2" 0 "" run "$4" -o "$2/out.h5" --quiet
    same_results "$5" "$2/out.h5"
  else
    check "$1: resume" "$2" 1 "$3" run "$4" -o "$2/out.h5" --quiet
    [ "$(sha256sum < "$2/out.h5")" = "$sum" ] || fail "$1: a refused resume changed the file"
    [ ! -e "$2/out.h5.tmp" ] || fail "$1: a refused resume left out.h5.tmp"
  fi
}

# variant | status: ok (status 3, not finished) or the pattern of its refusal
# | resume: ok (status 0, the results of full.h5) or the pattern
EDITED="the file was edited or damaged: restore it from a copy, or start over"
while IFS='|' read -r v st rs; do
  [ -n "$v" ] || continue
  base=k3.h5
  case $v in journal_*) base=k2.h5 ;; esac
  d=$T/v/$v
  "$PY" "$GEN" "$base" "$d" "$v" || fail "$v: cannot make the variant"
  sum=$(sha256sum < "$d/out.h5")
  if [ "$st" = ok ]; then check "$v: status" "$d" 3 "" "$MD" status "$d/out.h5"
  else check "$v: status" "$d" 1 "$st" "$MD" status "$d/out.h5"; fi
  [ "$(sha256sum < "$d/out.h5")" = "$sum" ] || fail "$v: status changed the file"
  resume "$v" "$d" "$rs" job.yaml full.h5
done <<EOF
root_layout_deleted|ok|written in results layout 1 .*refusing to resume
layout_future|ok|written in results layout 99 .*refusing to resume
layout_string|attribute 'layout_version' of / holds 1 value of class string, not one integer: $EDITED|attribute 'layout_version' of / holds 1 value of class string
layout_array|attribute 'layout_version' of / holds 2 values of class integer|attribute 'layout_version' of / holds 2 values
job_sha256_deleted|attribute 'job_sha256' of /provenance is missing: $EDITED|attribute 'job_sha256' of /provenance is missing
job_sha256_int|attribute 'job_sha256' of /provenance holds 1 value of class integer, not one string|attribute 'job_sha256' of /provenance holds 1 value of class integer
job_yaml_deleted|ok|ok
generation_string|attribute 'generation' of /provenance holds 1 value of class string|attribute 'generation' of /provenance holds 1 value of class string
generation_float|attribute 'generation' of /provenance holds 1 value of class float|attribute 'generation' of /provenance holds 1 value of class float
part_count_string|attribute 'part_count' of /provenance holds 1 value of class string|attribute 'part_count' of /provenance
part_count_huge|attribute 'part_count' of /provenance is 4294967296, not in \[0, 2147483647\]: $EDITED|attribute 'part_count' of /provenance is 4294967296
n_units_string|ok|ok
done_longer|ok|/completion/selftest/stage0/regions is missing or not 9 strings
done_shorter|ok|/completion/selftest/stage0/regions is missing or not 4 strings
stage_resized|ok|selftest stage 0 has 4 units in the file but 6 in the plan
done_2d|/completion/selftest/stage0/done is not a 1-D integer dataset \(rank 2, integer\): $EDITED|/completion/selftest/stage0/done is not a 1-D integer dataset \(rank 2
done_float|stage0/done is not a 1-D integer dataset \(rank 1, float\)|stage0/done is not a 1-D integer dataset \(rank 1, float\)
done_string|stage0/done is not a 1-D integer dataset \(rank 1, string\)|stage0/done is not a 1-D integer dataset \(rank 1, string\)
done_value_2|/completion/selftest/stage0/done holds 2 at unit 1, not 0 or 1|stage0/done holds 2 at unit 1, not 0 or 1
done_value_0|ok|ok
done_huge|/completion/selftest/stage0/done holds 1099511627776 flags, more than the 16777216 units a stage can have: $EDITED|stage0/done holds 1099511627776 flags, more than the 16777216 units
values_shape|ok|dataset /selftest/values is \[7,2,3\] of float64, the job declares \[6,2,3\] of float64: $EDITED
values_nan|ok|plan of stage 1 from stage 0's results in .*out.h5: .*the value is NaN
values_rank|ok|dataset /selftest/values is \[6,6\] of float64, the job declares \[6,2,3\]
values_f32|ok|dataset /selftest/values is \[6,2,3\] of float32, the job declares \[6,2,3\] of float64
values_string|ok|dataset /selftest/values is \[6,2,3\] of string
centred_shape|ok|dataset /selftest/centred is \[6,4\] of float32, the job declares \[6,3\] of float32
values_deleted|ok|dataset /selftest/values is missing, but /completion/selftest/stage0/done marks units done
experiment_deleted|ok|dataset /selftest/values is missing, but /completion/selftest/stage0/done marks units done
regions_deleted|ok|/completion/selftest/stage0/regions is missing or not 6 strings
stage_deleted|ok|ok
provenance_deleted|no /provenance group: not a mechdiff results file|no /provenance group: not a mechdiff results file
segments_deleted|ok|ok
truncated_0|not a readable HDF5 file|not a readable HDF5 file
truncated_1pct|not a readable HDF5 file|not a readable HDF5 file
truncated_50pct|not a readable HDF5 file|not a readable HDF5 file
truncated_90pct|not a readable HDF5 file|not a readable HDF5 file
truncated_last_byte|not a readable HDF5 file|not a readable HDF5 file
journal_garbage|ok|ok
journal_truncated|ok|ok
journal_header_only|ok|ok
prev_garbage|ok|ok
prev_truncated|ok|ok
inflight_garbage|ok|ok
EOF
# every variant of the generator is in the table above or below
"$PY" "$GEN" list | while read -r v; do [ -d "$T/v/$v" ] || [[ $v == part_* ]] || fail "variant $v not tested"; done

# merge: the parts of a one-stage job (part 1 holds units 1, 3, 5), of another job, ...
printf 'name: x\nexperiments:\n  - {kind: selftest, units: 6, rows: 2, cols: 3, stages: 1}\n' > pjob.yaml
printf 'name: x\nseed: 5\nexperiments:\n  - {kind: selftest, units: 6, rows: 2, cols: 3, stages: 1}\n' > qjob.yaml
for i in 0 1; do
  for j in p q; do run ${j}job.yaml --part $i/2 -o $j$i.h5 --quiet || fail "run --part $i/2 of ${j}job.yaml"; done
done
"$MD" merge whole.h5 p0.h5 p1.h5 > /dev/null || fail "merge of the untouched parts"
mkdir -p v/merge_other_job v/merge_twice
cp q1.h5 v/merge_other_job/out.h5
cp p0.h5 v/merge_twice/out.h5
check "merge: parts of different jobs" v/merge_other_job 1 "is from a different job than" \
  "$MD" merge v/merge_other_job/m.h5 p0.h5 v/merge_other_job/out.h5
check "merge: a part given twice" v/merge_twice 1 "is part 0/2, which was given twice" \
  "$MD" merge v/merge_twice/m.h5 p0.h5 v/merge_twice/out.h5
while IFS='|' read -r v pat; do
  [ -n "$v" ] || continue
  d=$T/v/$v
  "$PY" "$GEN" p1.h5 "$d" "$v" || fail "$v: cannot make the variant"
  sum=$(sha256sum < "$d/out.h5")
  check "$v: merge" "$d" 1 "$pat" "$MD" merge "$d/m.h5" p0.h5 "$d/out.h5"
  [ "$(sha256sum < "$d/out.h5")" = "$sum" ] || fail "$v: merge changed the part"
  [ ! -e "$d/m.h5" ] && [ ! -e "$d/m.h5.tmp" ] || fail "$v: a refused merge left m.h5 or m.h5.tmp"
done <<EOF
part_region_malformed|/completion/selftest/stage0/regions\[1\]: malformed region 'values\[1\+1,0\+2'
part_region_outside|regions\[1\] names a piece of /selftest/values outside the dataset
part_region_huge|regions\[1\] names a piece of /selftest/values outside the dataset
part_region_rank|regions\[1\] names a piece of /selftest/values outside the dataset \(rank 3\)
part_region_newline|/completion/selftest/stage0/regions\[1\]: malformed region 'val\?ues\[1\+1,0\+2,0\+3\]'
part_region_nodataset|results file has no dataset /selftest/nope
part_region_escape|results file has no dataset /selftest/../provenance
part_values_f32|dataset /selftest/values is missing or differs from the one of .*p0.h5 \(shape or type\)
part_values_shape|dataset /selftest/values is missing or differs from the one of .*p0.h5
part_done_2d|stage0/done is not a 1-D integer dataset \(rank 2
part_done_longer|stage0/regions is missing or not 9 strings
part_regions_deleted|stage0/regions is missing or not 6 strings
part_truncated|not a readable HDF5 file
part_index_string|attribute 'part_index' of /provenance holds 1 value of class string
part_index_7|says it is part 7 of 2, which no part of a 2-way split is
EOF
"$PY" "$GEN" list | while read -r v; do [ -d "$T/v/$v" ] || fail "variant $v not tested"; done

# a real kind on the shipped pair (2 units): unit 1 marked undone (the resume
# recomputes it: the untouched run's results), then a dataset of it retyped,
# reshaped or deleted (tests/e2e/lib/hostile_variants.py, `dataset`)
need_pair
{ job_pair cities; printf 'experiments:\n  - {kind: knowledge, datasets: [cities], max_pairs: 4}\n'; } > kn.yaml
run kn.yaml -o kn.h5 --quiet
"$PY" "$GEN" kn.h5 "$T/v/kn" kn_partial
mv "$T/v/kn/out.h5" kn_partial.h5
E=/knowledge/cities/base-\>base/effect
while IFS='|' read -r v how pat; do
  d=$T/v/$v
  "$PY" "$GEN" kn_partial.h5 "$d" dataset "$how"
  resume "$v" "$d" "$pat" kn.yaml kn.h5
done <<EOF
kn_untouched|none|ok
kn_effect_f64|retype $E|dataset $E is \[4,4,12\] of float64, the job declares \[4,4,12\] of float32
kn_effect_shape|longer $E|dataset $E is \[4,4,13\] of float64, the job declares \[4,4,12\]
kn_effect_deleted|delete $E|dataset $E is missing, but /completion/knowledge/stage0/done marks units done
kn_statement_int|int /knowledge/cities/pairs/false_statement|dataset /knowledge/cities/pairs/false_statement is \[4\] of int64, the job declares \[4\] of string
EOF
# analysis/report.py on a truncated file: one line naming it (was h5py's traceback)
"$PY" "$GEN" kn.h5 "$T/v/kn_truncated" truncated_50pct
check "report.py: truncated" "$T/v/kn_truncated" 1 "not a readable HDF5 file .*truncated or not a results file" \
  "$PY" "$ROOT/analysis/report.py" "$T/v/kn_truncated/out.h5" -o "$T/v/kn_truncated/report"
echo "hostile_results: ok"
