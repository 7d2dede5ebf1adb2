#!/usr/bin/env bash
# The record of each stage's declared datasets (attribute `datasets` of
# /completion/<experiment>/stage<k>, src/runner/h5declared.h) and what
# `mechdiff verify` makes of it:
#   - a small run of every kind records every dataset it writes, and each
#     recorded dataset deleted in turn (h5py `del`) is named by verify in one
#     line (file, dataset, experiment, stage; exit 4); a group or a soft
#     link in its place, a record of another type and an entry that is no
#     relative path (absolute, a "." part) are defects too; a dataset name
#     with ".." (an ordinary HDF5 name) is not;
#   - files without the record (earlier builds: every `datasets` attribute
#     removed) verify as before (exit 0, nothing printed with --quiet) and
#     resume: a killed run's file stripped of it finishes with the results
#     of an uninterrupted run, the stage it found left without a record and
#     the stage it created with one; a killed run resumed (incremental
#     snapshot from OUT.h5.prev) keeps every record;
#   - merge carries part 0's records; a dataset deleted from the merged file
#     is named; the merged file run to the end verifies.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
"$PY" -c 'import h5py' 2>/dev/null || { echo "SKIP: no h5py"; exit 77; }
need_pair
cd "$T"
run() { ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" "$MD" run "$@"; }
# summary FILE PATTERN: verify's summary line of FILE holds PATTERN
summary() {
  local s rc=0
  s=$("$MD" verify "$1") || rc=$?
  [ "$rc" -lt 2 ] || fail "$1: verify status $rc: $s"
  grep -qE -- "$2" <<< "$s" || fail "$1: verify's summary lacks '$2': $s"
}

cat > q.yaml <<YAML
name: declared
seed: 1
$(job_pair)
datasets:
$(for d in cities sp_en_trans harmful harmless; do echo "  $d: $ROOT/data/$d.csv"; done)
  v1..2: $ROOT/data/cities.csv  # '..' is an ordinary HDF5 name: recorded and verified as any
experiments:
  - {kind: knowledge, datasets: [v1..2], cross: [instruct->base], max_pairs: 2, n_toks: 2}
  - {kind: truth, train_datasets: [sp_en_trans], test_datasets: [cities], max_statements: 40, control_directions: 1}
  - {kind: refusal, n_train: 8, n_test: 3, max_new_tokens: 2, templates: {base: base, instruct: chat}}
  - {kind: confidence, prompts: cities, max_prompts: 4}
  - {kind: selftest, units: 4, rows: 2, cols: 3}
YAML
run q.yaml -o q.h5 --quiet
"$MD" verify --quiet q.h5 || fail "the fresh file does not verify: $("$MD" verify q.h5)"
summary q.h5 "valid and complete: .*declared datasets: [1-9][0-9]* present, 0 stages without a record"

# every dataset of every experiment is recorded by exactly one stage, and
# each one deleted is named; then a group in its place and a bad record
"$PY" - "$MD" q.h5 <<'PY'
import shutil, subprocess, sys, h5py, numpy as np
md, src = sys.argv[1], sys.argv[2]
records, written = [], set()
with h5py.File(src, "r") as f:
    for exp, eg in f["completion"].items():
        for name, st in eg.items():
            names = st.attrs["datasets"]
            assert names.ndim == 1 and all(isinstance(n, str) for n in names), (exp, name, names)
            records.append((exp, int(name[5:]), list(names)))
        f[exp].visititems(lambda n, o: written.add(f"{exp}/{n}")
                          if isinstance(o, h5py.Dataset) and "units" in o.attrs else None)
recorded = [f"{e}/{n}" for e, _, names in records for n in names]
assert len(recorded) == len(set(recorded)), "a dataset recorded by two stages"
assert set(recorded) == written, f"recorded but not written: {sorted(set(recorded) - written)[:5]}; " \
                                 f"written but not recorded: {sorted(written - set(recorded))[:5]}"

def verify(path):
    r = subprocess.run([md, "verify", "--quiet", path], capture_output=True, text=True)
    assert r.returncode < 128 and "HDF5-DIAG" not in r.stderr + r.stdout, (path, r.returncode, r.stderr[:600])
    return r.returncode, r.stdout.splitlines()

checked = 0
for exp, k, names in records:
    for n in names:
        shutil.copy(src, "d.h5")
        with h5py.File("d.h5", "r+") as f:
            del f[f"{exp}/{n}"]
        rc, lines = verify("d.h5")
        want = (f"d.h5: /{exp}/{n}: missing: dataset '{n}' of experiment {exp}, declared by its stage {k} "
                f"(/completion/{exp}/stage{k} attribute 'datasets')")
        named = [l for l in lines if ": missing: dataset " in l]
        assert rc == 4 and named == [want], f"{exp}/{n} deleted: status {rc}, lines {lines[:8]}"
        checked += 1
exp, k, names = records[0]
shutil.copy(src, "d.h5")
with h5py.File("d.h5", "r+") as f:
    del f[f"{exp}/{names[0]}"]
    f.create_group(f"{exp}/{names[0]}")
rc, lines = verify("d.h5")
assert rc == 4 and any(l.startswith(f"d.h5: /{exp}/{names[0]}: not a dataset (a group): dataset '{names[0]}' of "
                                    f"experiment {exp}, declared by its stage {k}") for l in lines), lines[:8]
if len(names) > 1:  # a soft link in its place, to another dataset of the stage
    shutil.copy(src, "d.h5")
    with h5py.File("d.h5", "r+") as f:
        del f[f"{exp}/{names[0]}"]
        f[f"{exp}/{names[0]}"] = h5py.SoftLink(f"/{exp}/{names[1]}")
    rc, lines = verify("d.h5")
    assert rc == 4 and any(l.startswith(f"d.h5: /{exp}/{names[0]}: a soft or external link, not the dataset")
                           for l in lines), lines[:8]
for bad, what in [(np.int64(3), "integers of rank 0"), (np.array([b"x/./y"]), "entry 0 'x/./y' is not a path"),
                  (np.array([b"/knowledge/x"]), "entry 0 '/knowledge/x' is not a path")]:
    shutil.copy(src, "d.h5")
    with h5py.File("d.h5", "r+") as f:
        f[f"completion/{exp}/stage{k}"].attrs["datasets"] = bad
    rc, lines = verify("d.h5")
    assert rc == 4 and any(l.startswith(f"d.h5: /completion/{exp}/stage{k}: attribute 'datasets'") and what in l
                           for l in lines), (what, lines[:8])
print(f"{checked} recorded datasets of {len(records)} stages deleted in turn: each named by verify")
PY

# a file of an earlier build (no record): verifies as before
cp q.h5 old.h5
strip_declared old.h5
"$MD" verify --quiet old.h5 > out.txt || fail "a file without records: $("$MD" verify old.h5)"
[ ! -s out.txt ] || fail "a file without records: --quiet printed $(head -c 600 out.txt)"
summary old.h5 "valid and complete: .*declared datasets: 0 present, 12 stages without a record"

# resume: a run killed after stage 0 of selftest (OUT.h5.prev, journals left)
printf 'name: s\nexperiments:\n  - {kind: selftest, units: 6, rows: 2, cols: 3}\n' > s.yaml
run s.yaml -o ref.h5 --quiet
for f in k kold; do
  (MECHDIFF_TEST_KILL_SNAPSHOT=2:-1 run s.yaml -o $f.h5 --quiet; exit $?) 2>/dev/null || true
  rm -f $f.h5.lock
done
strip_declared kold.h5
summary kold.h5 "valid, incomplete: .*declared datasets: 0 present, 1 stages without a record"
run s.yaml -o kold.h5 --quiet || fail "a killed run's file without records does not resume"
# the results of an uninterrupted run; every attribute too, but the record
# of the stage the killed run had created
cp ref.h5 ref0.h5
"$PY" -c 'import sys, h5py; del h5py.File(sys.argv[1], "r+")["completion/selftest/stage0"].attrs["datasets"]' ref0.h5
same_results ref0.h5 kold.h5
"$MD" verify --quiet kold.h5 || fail "the resumed old file: $("$MD" verify kold.h5)"
summary kold.h5 "valid and complete: .*declared datasets: 2 present, 1 stages without a record"
"$PY" -c 'import sys, h5py; f = h5py.File(sys.argv[1], "r")["completion/selftest"]
assert "datasets" not in f["stage0"].attrs and list(f["stage1"].attrs["datasets"]) == ["column_mean", "centred"]' kold.h5 \
  || fail "resume of an old file: stage 0 should stay without a record, stage 1 have one"
MECHDIFF_SNAPSHOT_LOG=1 run s.yaml -o k.h5 --quiet 2> log.txt
grep -q "(incremental)" log.txt || fail "the resume did not start from OUT.h5.prev: $(cat log.txt)"
summary k.h5 "valid and complete: .*declared datasets: 5 present, 0 stages without a record"

# merge: part 0's records; a deleted dataset is named in the merged file
run s.yaml --part 0/2 -o p0.h5 --quiet
run s.yaml --part 1/2 -o p1.h5 --quiet
"$MD" merge m.h5 p0.h5 p1.h5 > /dev/null
"$PY" - p0.h5 m.h5 <<'PY' || fail "merge did not carry part 0's records"
import sys, h5py
a, b = (h5py.File(p, "r")["completion/selftest"] for p in sys.argv[1:])
assert list(a) == list(b) and all(list(a[s].attrs["datasets"]) == list(b[s].attrs["datasets"]) for s in a)
PY
cp m.h5 md.h5
"$PY" -c 'import sys, h5py; del h5py.File(sys.argv[1], "r+")["selftest/label"]' md.h5
rc=0; "$MD" verify --quiet md.h5 > out.txt || rc=$?
[ "$rc" = 4 ] && grep -qF "md.h5: /selftest/label: missing: dataset 'label' of experiment selftest, declared by its stage 0" out.txt \
  || fail "a dataset deleted from the merged file: status $rc, $(head -c 600 out.txt)"
run s.yaml -o m.h5 --quiet
summary m.h5 "valid and complete: .*declared datasets: 5 present, 0 stages without a record"
echo "PASS: verify_declared"
