#!/usr/bin/env bash
# `mechdiff verify` (include/mechdiff/verify.h): a quickstart-like results
# file on the shipped pair (every kind, knowledge with activations and head
# patching, a refusal sweep) is valid and complete (exit 0), its digests all
# checked, and so is a file whose role name holds a comma; a file of a
# killed run, a part of an array job and a merged file before its last run
# are valid but incomplete (exit 1), and only the run that finishes the
# whole job writes the sha256 attributes; each
# hand-edited variant of tests/e2e/lib/verify_variants.py is caught (exit 4)
# with a line naming the file, the HDF5 object and what is wrong, no HDF5
# error stack, no crash, the file unchanged. Usage errors exit 2.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
GEN="$ROOT/tests/e2e/lib/verify_variants.py"
"$PY" -c 'import h5py' 2>/dev/null || { echo "SKIP: no h5py"; exit 77; }
need_pair
cd "$T"
# `run` under AddressSanitizer (scripts/test.sh): Open MPI never frees what
# MPI_Init allocates, so leaks are checked in verify only
run() { ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" "$MD" run "$@"; }

# verify_is WHAT STATUS FILE [PATTERN]: verify --quiet exits STATUS; its
# output holds PATTERN (grep -E) on a line that names FILE; no crash
verify_is() {
  local what=$1 want=$2 file=$3 pat=${4:-} rc=0 sum
  sum=$(sha256sum < "$file")
  "$MD" verify --quiet "$file" > out.txt 2> err.txt || rc=$?
  [ "$rc" -lt 128 ] || fail "$what: crashed (status $rc): $(head -c 600 err.txt)"
  ! grep -q "HDF5-DIAG\|AddressSanitizer\|runtime error\|LeakSanitizer" err.txt out.txt ||
    fail "$what: an HDF5 error stack or a sanitizer report: $(head -c 600 err.txt)"
  [ "$rc" = "$want" ] || fail "$what: status $rc (want $want): $(head -c 900 out.txt)"
  [ "$(sha256sum < "$file")" = "$sum" ] || fail "$what: verify changed the file"
  [ -n "$pat" ] || { [ ! -s out.txt ] || fail "$what: --quiet printed: $(head -c 600 out.txt)"; return 0; }
  grep -E -- "$pat" out.txt | grep -qF -- "$file: " || fail "$what: no line naming $file with '$pat': $(head -c 900 out.txt)"
}

cat > job.yaml <<YAML
name: verifyq
seed: 1
$(job_pair cities sp_en_trans animal_class harmful harmless)
experiments:
  - {kind: knowledge, datasets: [cities], cross: [instruct->base], max_pairs: 8, store_activations: true}
  - {kind: knowledge, name: heads, component: head, datasets: [cities], max_pairs: 3}
  - kind: truth
    train_datasets: [sp_en_trans, animal_class]
    test_datasets: [cities]
    max_statements: 40
    control_directions: 1
  - {kind: refusal, n_train: 16, n_test: 6, max_new_tokens: 4, templates: {base: base, instruct: chat}}
  - kind: refusal
    name: sweep
    sweep: true
    sweep_layers: [1, 3]
    sweep_positions: [-1, -3]
    n_train: 8
    n_test: 3
    max_new_tokens: 2
    templates: {base: base, instruct: chat}
  - {kind: confidence, prompts: cities, max_prompts: 6}
YAML
run job.yaml -o q.h5 --quiet
verify_is "quickstart-like file" 0 q.h5
"$MD" verify q.h5 > sum.txt
grep -q "q.h5: valid and complete: .* 0 without one" sum.txt || fail "summary: $(cat sum.txt)"
! grep -q " 0 matched" sum.txt || fail "no digest was checked: $(cat sum.txt)"

# a killed run (stage 0 of selftest done, the job not finished), the parts
# of an array job and their merge: valid, incomplete, no digests
printf 'name: s\nexperiments:\n  - {kind: selftest, units: 6, rows: 2, cols: 3}\n' > s.yaml
(MECHDIFF_TEST_KILL_SNAPSHOT=2:-1 run s.yaml -o k.h5 --quiet; exit $?) 2>/dev/null || true
rm -f k.h5.lock
verify_is "killed run" 1 k.h5 "incomplete: .*run the job again"
{ "$MD" verify k.h5 || true; } | grep -q "0 matched, 3 without one" || fail "a killed run's file has digests"
# the file of a job that is running
printf 'name: slow\nexperiments:\n  - {kind: selftest, units: 40, rows: 2, cols: 3, sleep_ms: 100}\n' > slow.yaml
run slow.yaml -o r.h5 --quiet & pid=$!
for _ in $(seq 100); do [ -e r.h5 ] && break; sleep 0.1; done
verify_is "a running job" 1 r.h5 "incomplete: selftest stage 0 [0-9]+/40 units"
kill -TERM $pid; wait $pid || true
run s.yaml --part 0/2 -o p0.h5 --quiet
run s.yaml --part 1/2 -o p1.h5 --quiet
verify_is "part 0/2" 1 p0.h5 "incomplete: a part of the job"
cp p1.h5 p1x.h5
"$PY" -c 'import sys, h5py; d = h5py.File(sys.argv[1], "r+")["completion/selftest/stage0/done"]; v = d[...]; v[3] = 0; d[...] = v' p1x.h5
verify_is "part 1/2 with unit 3 undone" 4 p1x.h5 "/completion/selftest/stage0/done: 1 units of part 1/2 not done, but /provenance says the part finished"
"$MD" merge m.h5 p0.h5 p1.h5 > /dev/null
verify_is "merged" 1 m.h5 "incomplete: "
run s.yaml -o m.h5 --quiet
verify_is "merged, then run" 0 m.h5
"$MD" verify m.h5 | grep -q "5 matched, 0 without one" || fail "the finished merge has no digests: $("$MD" verify m.h5)"

# a role named with a comma: the list attributes ('models', 'conditions')
# are their scales joined by ',', valid (not counted as more entries)
cat > comma.yaml <<YAML
name: comma
seed: 1
models: {"ba,se": $ROOT/models/organism-base, instruct: $ROOT/models/organism-instruct}
datasets: {cities: $ROOT/data/cities.csv, sp_en_trans: $ROOT/data/sp_en_trans.csv}
experiments:
  - {kind: truth, train_datasets: [sp_en_trans], test_datasets: [cities], max_statements: 40, control_directions: 1}
YAML
run comma.yaml -o comma.h5 --quiet
verify_is "a role with a comma" 0 comma.h5

# a resume forced onto another numeric setup records done_at_start flags
# in its segment: valid; flags edited to 2 are caught
run s.yaml -o mixed.h5 --quiet
"$PY" -c 'import sys, h5py; h5py.File(sys.argv[1], "r+")["provenance/segments/0000"].attrs["numeric_setup"] = "backend=cuda weights=bf16 gemm=x3"' mixed.h5
run s.yaml -o mixed.h5 --quiet --allow-mixed-numerics
verify_is "mixed numerics" 0 mixed.h5
"$PY" - mixed.h5 <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    d = f["provenance/segments/0001/done_at_start/selftest/stage0"]
    v = d[...]
    v[0] = 2
    d[...] = v
PY
verify_is "done_at_start edited" 4 mixed.h5 "/provenance/segments/0001/done_at_start/selftest/stage0: not 1-D done flags"

# variant | status | pattern of the line that names the object
while IFS='|' read -r v st pat; do
  [ -n "$v" ] || continue
  "$PY" "$GEN" q.h5 "v/$v" "$v" || fail "$v: cannot make the variant"
  verify_is "$v" "$st" "v/$v/out.h5" "$pat"
done <<'EOF_V'
untouched|0|
digests_stripped|0|
digest_one_stripped|0|
partial|1|incomplete: truth stage 1 3/24 units
units_deleted|4|/knowledge/cities/instruct->base/effect: attribute 'units' is missing
units_changed|4|/knowledge/cities/instruct->base/effect: attribute 'units' is 'prob', kind 'knowledge' writes 'logit'
description_deleted|4|/truth/pd: attribute 'description' is missing
scale_detached|4|/truth/pd: dimension 2 \(condition\) has no dimension scale attached
scale_longer|4|/refusal/refusal_score: dimension 2 \(set\) is 2 long, its scale 'set' 3
scale_renamed|4|/truth/pd: dimension 2 is labelled by the scale 'cond', the kind names it 'condition'
axis_attr_longer|4|/refusal/refusal_score: attribute 'sets' lists 3 entries, dimension 2 \(set\) is 2 long
axis_attr_order|4|/truth/pd: attribute 'conditions' entry 0 is 'dir_base', the scale of condition holds 'clean'
pair_attrs|4|/knowledge/cities/instruct->base: attributes source 'base' and target 'base' do not match
segment_exit|4|/provenance/segments/0000: attribute 'exit' is 'bogus'
segment_world_size|4|/provenance/segments/0000: attribute 'world_size' holds 1 value of class string
segment_renamed|4|/provenance/segments/0005: segment 0 is named '0005', not '0000'
model_path_deleted|4|/provenance/models/base: attribute 'path' is missing
layout_deleted|4|written in results layout 1; this mechdiff verifies layout 2 only
root_sha_differs|4|/: attribute 'job_sha256' differs from /provenance's
done_flipped|4|/completion/truth/stage1/regions: unit 5 is marked done but its regions entry is empty
finished_undone|4|/completion/truth/stage1/done: 1 of 24 units not done, but /provenance says finished
stage_deleted|4|/completion/truth/stage1: missing, but a later stage of truth is planned
experiment_deleted|4|/truth: missing: the stored job's experiment 2 \(kind truth\) writes it
experiment_index|4|/completion/truth/stage1: experiment_index 5, the stored job lists it as 2
stage_kind|4|/completion/truth/stage0: attribute 'kind' is 'refusal', /truth says 'truth'
kind_unknown|4|/truth: attribute 'kind' is 'nope', not a kind this mechdiff knows
extra_dataset|4|/truth/extra: float64 of rank 1 is not a dataset kind 'truth' writes
retyped|4|/truth/pd: float32 of rank 4 is not a dataset kind 'truth' writes
effect_nan|4|/knowledge/cities/instruct->base/effect: unit [0-9]+ of stage 0: .*\[pair 0, layer 0, position 0\]: the value is NaN
direction_norm_inf|4|/truth/direction_norm: 1 non-finite values, the first \[model 0\] = inf
accuracy_range|4|/truth/accuracy: 1 values outside \[0, 1\], the first \[source 0, target 0, test_dataset 0\] = 1.5
refused_range|4|/refusal/gen/harmful/instruct/none/refused: 1 values outside \[0, 1\] or not whole, the first \[row 0\] = 2
entropy_negative|4|/confidence/base/entropy: 1 values outside \[-1e-09, inf\], the first \[prompt 0\] = -0.5
value_edited|4|/truth/pd: its values' SHA-256 is .*the values were edited
label_edited|4|/truth/statements/cities: its values' SHA-256 is .*the values were edited
stage_name_huge|4|/completion/truth/stage99999999999: not a stage<k> group \(k from 0 to 7\)
dataset_deleted|4|/truth/[a-z_]+: dimension [0-9] \([a-z_]+\): its scale '[a-z_]+' has a REFERENCE_LIST that cannot be read or lists a dataset the file no longer has
scale_deleted|4|/truth/pd: dimension 2 \(condition\): its scale reference points at no dataset of the file
digest_int|4|/truth/pd: attribute 'sha256' holds 1 value of class integer
region_outside|4|/completion/knowledge/stage0/regions: unit 0: .*outside the dataset
region_malformed|4|/completion/knowledge/stage0/regions: unit 0: .*malformed region
EOF_V
# every variant of the generator is in the list above
for v in $("$PY" "$GEN" list); do [ -d "v/$v" ] || fail "variant $v is not tested"; done
# an in-place edit is caught by the digest alone: without it the file passes
"$PY" "$GEN" "v/value_edited/out.h5" v/value_edited_nodigest digests_stripped
verify_is "value_edited without digests" 0 v/value_edited_nodigest/out.h5

# not a results file, no file, usage
printf 'not hdf5' > junk.h5
verify_is "junk" 4 junk.h5 "not a readable HDF5 file"
rc=0; "$MD" verify no-such.h5 > /dev/null 2>&1 || rc=$?; [ "$rc" = 4 ] || fail "a missing file: status $rc"
rc=0; "$MD" verify > /dev/null 2>&1 || rc=$?; [ "$rc" = 2 ] || fail "no file: status $rc"
rc=0; "$MD" verify --bogus q.h5 > /dev/null 2>&1 || rc=$?; [ "$rc" = 2 ] || fail "an unknown option: status $rc"
rc=0; "$MD" verify q.h5 q.h5 > /dev/null 2>&1 || rc=$?; [ "$rc" = 2 ] || fail "two files: status $rc"
# the exit statuses of --help and of README.md's Commands block agree
help=$("$MD" verify --help | tr -s ' \n' '  ')
readme=$(sed -n '/^mechdiff verify /,/^mechdiff [a-z-]* /p' "$ROOT/README.md" | sed 's/^  *//' | tr -s ' \n' '  ')
for code in "0 valid and complete" "1 valid but incomplete" "4 invalid"; do
  echo "$help" | grep -qF "$code" || fail "mechdiff verify --help lacks exit status '$code'"
  echo "$readme" | grep -qF "$code" || fail "README.md's Commands line of verify lacks exit status '$code'"
done
echo "$help" | grep -qF "2 usage error" || fail "mechdiff verify --help lacks exit status 2"
echo "PASS: verify"
