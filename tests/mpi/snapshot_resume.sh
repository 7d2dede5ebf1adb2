#!/bin/bash
# snapshot_resume.sh — the first snapshot of a resumed run starts from
# OUT.h5.prev too (src/runner/h5out.c), catching up by copying OUT.h5's
# compressed chunks, and only when OUT.h5 and OUT.h5.prev are exactly the
# files the journals' marks name:
#  1. a run stopped by SIGTERM keeps OUT.h5.prev and OUT.h5.journal.prev;
#     resumed twice in a row (stopped again in between), each resume's first
#     snapshot is incremental and copies chunks, earlier segments keep their
#     ends, and the second one, killed just after publishing its first
#     snapshot, published values equal to OUT.h5 before it (compare_h5.py
#     --rtol 0, h5diff); a kill -9 while units run is resumed the same way
#     (the recovery snapshot is incremental);
#  2. killed inside a resume's first, incremental snapshot: while catching up
#     (after 1 unit), between link and rename, after the rename: OUT.h5 stays
#     readable with its done units complete, and every resume ends equal to
#     an uninterrupted run;
#  3. OUT.h5 edited between runs (h5py r+), OUT.h5.prev touched, or the
#     journal of an older format: the first snapshot copies, the edit is
#     kept, the result equals an uninterrupted run.
. "$(dirname "$0")/../lib.sh"
job() { # job.yaml SNAPSHOT_INTERVAL (runtime is not part of the job's identity: one job, two paces)
    cat > "$1" <<YAML
name: snapshot_resume
seed: 3
runtime: {flush_units: 2, flush_interval: 0.05, snapshot_interval: $2, progress_interval: 100}
experiments:
  - kind: selftest
    units: 400
    rows: 3
    cols: 40
    sleep_ms: 15
YAML
}
job "$WORK/job.yaml" 1
job "$WORK/slow.yaml" 3600 # stopped or killed 1 s after its first snapshot: never inside a snapshot
"$MECHDIFF" run "$WORK/job.yaml" -o "$WORK/ref.h5" --quiet || fail "reference run: status $?"
export MECHDIFF_SNAPSHOT_LOG=1

# stop_after NAME OUT YAML N SIG: runs until the log shows N snapshots, lets
# units run 1 s more (they are journaled: the next catch-up has records), sends SIG
stop_after() {
    local log="$WORK/$1.log" n
    setsid "$MECHDIFF" run "$3" -o "$2" --quiet >"$log" 2>&1 &
    local pid=$!
    for _ in $(seq 600); do
        n=$(grep -c "^mechdiff: snapshot" "$log")
        [ "$n" -ge "$4" ] && break
        sleep 0.05
    done
    [ "$n" -ge "$4" ] || { cat "$log"; fail "$1: only $n snapshots"; }
    sleep 1
    if [ "$5" = KILL ]; then kill_job "$pid"; else kill -"$5" "$pid"; fi
    wait "$pid" 2>/dev/null
    echo $? > "$WORK/$1.status"
}
# first_snapshot LOG: "GEN MODE CHUNKS" of the run's first snapshot
first_snapshot() {
    sed -n 's/^mechdiff: snapshot \([0-9]*\) (\([a-z]*\)).* \([0-9]*\) chunks .*/\1 \2 \3/p' "$1" | head -1
}
gen_of() { /usr/bin/python3 -c "import h5py,sys; print(int(h5py.File(sys.argv[1],'r')['provenance'].attrs['generation']))" "$1"; }
equal_to_ref() { # OUT NAME
    /usr/bin/python3 scripts/dev/compare_h5.py "$WORK/ref.h5" "$1" --rtol 0 >"$WORK/$2.cmp" ||
        { tail "$WORK/$2.cmp"; fail "$2: result differs from the uninterrupted run"; }
    same_results "$WORK/ref.h5" "$1"
}
complete_units() { # OUT: done units have their data, others none (plain h5py open)
    readable "$1"
    /usr/bin/python3 - "$1" <<'PY' || fail "$1: done flags and data disagree"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    done = f["completion/selftest/stage0/done"][...].astype(bool)
    vals = f["selftest/values"][...]
    assert done.any() and np.isfinite(vals[done]).all() and np.isnan(vals[~done]).all()
PY
}

# 1. stopped, resumed and stopped, killed -9, recovered and stopped, resumed
#    and killed after its first snapshot: each first snapshot is incremental
OUT="$WORK/out.h5"
# check_first NAME GEN WHAT: the first snapshot in NAME.log writes GEN incrementally
# and copies chunks (WHAT = chunks) or applies units (WHAT = units)
check_first() {
    local fg mode units chunks
    read -r fg mode units chunks <<<"$(sed -n 's/^mechdiff: snapshot \([0-9]*\) (\([a-z]*\)): [0-9.]* s, \([0-9]*\) units.*; \([0-9]*\) chunks .*/\1 \2 \3 \4/p' "$WORK/$1.log" | head -1)"
    [ "$fg" = "$2" ] && [ "$mode" = incremental ] ||
        { cat "$WORK/$1.log"; fail "$1: first snapshot $fg is '$mode', expected $2, incremental"; }
    if [ "$3" = chunks ]; then [ "$chunks" -gt 0 ] || { cat "$WORK/$1.log"; fail "$1: the catch-up copied no chunk"; }
    else [ "$units" -gt 0 ] || { cat "$WORK/$1.log"; fail "$1: the first snapshot applied no unit"; }; fi
    echo "ok: $1: first snapshot $fg incremental, $units units, $chunks chunks copied compressed"
}
stop_after stop0 "$OUT" "$WORK/slow.yaml" 1 TERM
[ "$(cat "$WORK/stop0.status")" = 75 ] || fail "stop0: status $(cat "$WORK/stop0.status")"
[ -f "$OUT.prev" ] && [ -f "$OUT.journal.prev" ] || fail "a stopped run left no OUT.h5.prev / OUT.h5.journal.prev"
g=$(gen_of "$OUT")
stop_after resume1 "$OUT" "$WORK/slow.yaml" 1 TERM
check_first resume1 $((g + 1)) chunks
g=$(gen_of "$OUT")
stop_after killed "$OUT" "$WORK/slow.yaml" 1 KILL # while units run: snapshots every hour after the first
check_first killed $((g + 1)) chunks
[ ! -e "$OUT.tmp" ] || fail "killed: the kill landed inside a snapshot"
g=$(gen_of "$OUT")
stop_after recover "$OUT" "$WORK/slow.yaml" 1 TERM # its first snapshot folds the killed run's journal
check_first recover $((g + 1)) units
g=$(gen_of "$OUT")
cp "$OUT" "$WORK/before.h5"
MECHDIFF_TEST_KILL_SNAPSHOT=$((g + 1)):-1 "$MECHDIFF" run "$WORK/job.yaml" -o "$OUT" --quiet \
    >"$WORK/resume2.log" 2>&1 && fail "resume2: not killed" # right after publishing its first snapshot
check_first resume2 $((g + 1)) chunks
# that snapshot started from OUT.h5.prev: the same results as OUT.h5 before it
/usr/bin/python3 scripts/dev/compare_h5.py "$WORK/before.h5" "$OUT" --rtol 0 >"$WORK/before.cmp" ||
    { tail "$WORK/before.cmp"; fail "the incremental first snapshot differs from OUT.h5 before it"; }
same_results "$WORK/before.h5" "$OUT"
/usr/bin/python3 - "$OUT" <<'PY' || fail "segments after the resumes"
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    segs = f["provenance/segments"]
    exits = [segs[k].attrs["exit"] for k in sorted(segs)]
    want = ["stopped (signal)", "stopped (signal)", "running", "stopped (signal)", "running"]
    assert exits == want, exits
print("segments:", exits)
PY
echo "ok: the resume's incremental first snapshot equals OUT.h5 before it (values, done flags, regions)"
"$MECHDIFF" run "$WORK/job.yaml" -o "$OUT" --quiet 2>"$WORK/final.log" || { cat "$WORK/final.log"; fail "final resume"; }
equal_to_ref "$OUT" resumed
for f in out.h5.prev out.h5.journal.prev out.h5.tmp; do [ ! -e "$WORK/$f" ] || fail "a finished run left $f"; done
echo "ok: four resumes in a row, the last killed after its first snapshot, end equal to the uninterrupted run"

# 2. killed inside a resume's first (incremental) snapshot
for n in 1 0 -1; do
    OUT="$WORK/k$n.h5"
    stop_after "k$n-stop" "$OUT" "$WORK/slow.yaml" 1 TERM
    g=$(gen_of "$OUT")
    MECHDIFF_TEST_KILL_SNAPSHOT=$((g + 1)):$n "$MECHDIFF" run "$WORK/job.yaml" -o "$OUT" --quiet \
        >"$WORK/k$n.log" 2>&1 && fail "k$n: not killed"
    complete_units "$OUT"
    now=$(gen_of "$OUT")
    if [ "$n" = -1 ]; then [ "$now" = $((g + 1)) ] || fail "k$n: generation $now after the rename"
    else
        [ "$now" = "$g" ] && [ -e "$OUT.tmp" ] || fail "k$n: generation $now, OUT.h5.tmp missing: not killed in the snapshot"
    fi
    "$MECHDIFF" run "$WORK/job.yaml" -o "$OUT" --quiet 2>"$WORK/k$n.resume" || { cat "$WORK/k$n.resume"; fail "k$n: resume"; }
    equal_to_ref "$OUT" "k$n"
    echo "ok: killed in a resume's incremental first snapshot (generation $((g + 1)), point $n): resume equals the uninterrupted run"
done

# 3. edits between runs: the first snapshot copies
OUT="$WORK/ed.h5"
stop_after ed-stop "$OUT" "$WORK/slow.yaml" 1 TERM
/usr/bin/python3 -c "import h5py,sys; h5py.File(sys.argv[1],'r+')['selftest'].attrs['hand_edit'] = 'edited by hand'" "$OUT"
stop_after ed-resume "$OUT" "$WORK/slow.yaml" 1 TERM
read -r fg mode chunks <<<"$(first_snapshot "$WORK/ed-resume.log")"
[ "$mode" = copy ] || { cat "$WORK/ed-resume.log"; fail "OUT.h5 edited in between: first snapshot '$mode'"; }
touch "$OUT.prev"
stop_after ed-resume2 "$OUT" "$WORK/slow.yaml" 1 TERM
read -r fg mode chunks <<<"$(first_snapshot "$WORK/ed-resume2.log")"
[ "$mode" = copy ] || { cat "$WORK/ed-resume2.log"; fail "OUT.h5.prev touched: first snapshot '$mode'"; }
/usr/bin/python3 - "$OUT.journal" <<'PY' # rewrite the journal's header in the older format (24 bytes, no mark)
import struct, sys, zlib
b = open(sys.argv[1], "rb").read()
gen = b[8:16]
head = b"MDJRNL01" + gen
open(sys.argv[1], "wb").write(head + struct.pack("<II", zlib.crc32(head), 0) + b[64:])
PY
"$MECHDIFF" run "$WORK/job.yaml" -o "$OUT" --quiet 2>"$WORK/ed-final.log" || { cat "$WORK/ed-final.log"; fail "ed: final run"; }
read -r fg mode chunks <<<"$(first_snapshot "$WORK/ed-final.log")"
[ "$mode" = copy ] || { cat "$WORK/ed-final.log"; fail "a journal of the older format: first snapshot '$mode'"; }
/usr/bin/python3 -c "import h5py,sys; assert h5py.File(sys.argv[1],'r')['selftest'].attrs['hand_edit'] == 'edited by hand'" "$OUT" ||
    fail "the hand edit was lost"
/usr/bin/python3 scripts/dev/compare_h5.py "$WORK/ref.h5" "$OUT" --rtol 0 >"$WORK/ed.cmp" || # (h5diff: the edit differs)
    { tail "$WORK/ed.cmp"; fail "edited: result differs from the uninterrupted run"; }
echo "ok: an edited OUT.h5, a touched OUT.h5.prev, an older journal: the first snapshot copies; the edit is kept"
