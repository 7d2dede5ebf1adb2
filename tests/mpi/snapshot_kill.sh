#!/bin/bash
# snapshot_kill.sh — the incremental snapshot (OUT.h5.prev brought up to date
# from the journals, src/runner/h5out.c) under kill -9:
#  1. the coordinator is SIGKILLed inside an incremental snapshot, after N
#     units were written into OUT.h5.tmp (MECHDIFF_TEST_KILL_SNAPSHOT=G:N, a
#     test-only switch), on 1 and on 3 ranks, just before the rename
#     (N = 0: OUT.h5.prev and OUT.h5 are then one file), and just after it
#     (N = -1: the journal is a generation behind). Each time OUT.h5 is
#     a readable HDF5 file (h5dump, plain h5py) whose done units all have
#     their data, the journal still holds every unit finished since (status),
#     the resume starts from exactly those units and ends equal to an
#     uninterrupted run (compare_h5.py --rtol 0 and h5diff);
#  2. readers (h5py, analysis/mdread.py) open OUT.h5 again and again while a
#     job takes a snapshot every second: every open works and shows data for
#     every done unit; a version held open by mdread for 4 s (several
#     snapshots, file locking off) stays the version it was (never taken
#     back as OUT.h5.tmp);
#  3. a finished run leaves no OUT.h5.prev, OUT.h5.journal.prev or OUT.h5.tmp,
#     and links planted at those names are replaced, never written through.
. "$(dirname "$0")/../lib.sh"
cat > "$WORK/job.yaml" <<'YAML'
name: snapshot_kill
seed: 11
runtime: {flush_units: 2, flush_interval: 0.05, snapshot_interval: 1, progress_interval: 100}
experiments:
  - kind: selftest
    units: 500
    rows: 3
    cols: 40
    sleep_ms: 25   # stage 0 spans 6+ snapshots also on 3 ranks (the kill generations below)
YAML
"$MECHDIFF" run "$WORK/job.yaml" -o "$WORK/ref.h5" --quiet || fail "reference run: status $?"
for f in ref.h5.prev ref.h5.journal.prev ref.h5.tmp; do [ ! -e "$WORK/$f" ] || fail "a finished run left $f"; done

# check_killed OUT GEN: readable, done units complete, journal = the units finished since
check_killed() {
    readable "$1"
    /usr/bin/python3 - "$1" "$2" <<'PY' || fail "$1 after the kill"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:   # plain open: no SWMR, no h5clear needed
    gen = int(f["provenance"].attrs["generation"])
    assert gen == int(sys.argv[2]) - 1, f"generation {gen}, expected the one before the killed snapshot"
    done = f["completion/selftest/stage0/done"][...].astype(bool)
    vals = f["selftest/values"][...]
    labels = f["selftest/label"][...]
    assert done.any(), "no unit done in the file"
    assert np.isfinite(vals[done]).all(), "a done unit without its data"
    assert np.isnan(vals[~done]).all(), "data of a unit not marked done"
    assert all(labels[u] == b"unit %d" % u for u in np.flatnonzero(done)), "a done unit without its label"
    print(f"killed in snapshot {sys.argv[2]}: OUT.h5 generation {gen} readable, {done.sum()} done units complete")
PY
    [ -e "$1.tmp" ] || fail "no OUT.h5.tmp: the kill did not happen inside a snapshot"
}

# units_known OUT: done in the file + records in the journal of its generation (mechdiff status)
units_known() {
    "$MECHDIFF" status "$1" | awk '/stage 0:/ { print $4; exit }'
}

run_kill() { # NAME GEN:N RANKS
    local out="$WORK/$1.h5" cmd
    if [ "$3" = 1 ]; then cmd=("$MECHDIFF" run "$WORK/job.yaml" -o "$out" --quiet)
    else cmd=($MPIRUN -np "$3" "$MECHDIFF" run "$WORK/job.yaml" -o "$out" --quiet); fi
    # (in a subshell, whose stderr takes the shell's "Killed" notice)
    (MECHDIFF_TEST_KILL_SNAPSHOT=$2 MECHDIFF_SNAPSHOT_LOG=1 setsid "${cmd[@]}" >"$WORK/$1.log" 2>&1; exit $?) 2>/dev/null &&
        fail "$1: not killed"
    grep -q "snapshot $((${2%%:*} - 1)) (incremental)" "$WORK/$1.log" ||
        { cat "$WORK/$1.log"; fail "$1: the snapshot before the killed one was not incremental"; }
}

# 1a. killed while writing units into OUT.h5.prev-turned-OUT.h5.tmp, 1 rank and 3 ranks
for spec in "one 5:4 1" "three 4:6 3"; do
    set -- $spec
    run_kill "$1" "$2" "$3"
    out="$WORK/$1.h5"
    check_killed "$out" "${2%%:*}"
    [ ! -e "$out.prev" ] || fail "$1: OUT.h5.prev still there: the killed snapshot was not incremental"
    known=$(units_known "$out")
    "$MECHDIFF" status "$out" | grep -q "in the journal" || fail "$1: status shows no journal units"
    "$MECHDIFF" run "$WORK/job.yaml" -o "$out" 2>"$WORK/$1.resume" || { cat "$WORK/$1.resume"; fail "$1: resume"; }
    grep -q "resuming $out: $known units already done" "$WORK/$1.resume" ||
        { cat "$WORK/$1.resume"; fail "$1: the resume did not start from the $known units finished before the kill"; }
    /usr/bin/python3 scripts/dev/compare_h5.py "$WORK/ref.h5" "$out" --rtol 0 >"$WORK/$1.cmp" ||
        { tail "$WORK/$1.cmp"; fail "$1: resumed result differs from the uninterrupted run"; }
    same_results "$WORK/ref.h5" "$out"
    echo "ok: $1 rank(s), killed in snapshot ${2%%:*} after ${2##*:} units: $known units kept, resume equals the uninterrupted run"
done

# 1b. killed between keeping OUT.h5.prev (a hard link) and the rename: both names are one file
run_kill link 5:0 1
out="$WORK/link.h5"
check_killed "$out" 5
[ "$(stat -c %i "$out")" = "$(stat -c %i "$out.prev")" ] || fail "link: OUT.h5.prev should be OUT.h5 itself here"
MECHDIFF_SNAPSHOT_LOG=1 "$MECHDIFF" run "$WORK/job.yaml" -o "$out" --quiet 2>"$WORK/link.resume" || fail "link: resume"
# the first snapshot of a run copies; the one after must not take a .prev that is OUT.h5
grep -q "snapshot 5 (copy)" "$WORK/link.resume" || { cat "$WORK/link.resume"; fail "link: first snapshot of the resume"; }
/usr/bin/python3 scripts/dev/compare_h5.py "$WORK/ref.h5" "$out" --rtol 0 >/dev/null || fail "link: resumed result differs"
echo "ok: killed between link and rename: resume equals the uninterrupted run"

# 1c. killed after the rename, before the journal rotation: the journal is a generation behind
run_kill rot 5:-1 1
out="$WORK/rot.h5"
readable "$out"
[ ! -e "$out.tmp" ] || fail "rot: OUT.h5.tmp left although the rename happened"
/usr/bin/python3 - "$out" "$out.journal" <<'PY' || fail "rot: state after the kill"
import struct, sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    gen = int(f["provenance"].attrs["generation"])
jgen = struct.unpack("<Q", open(sys.argv[2], "rb").read()[8:16])[0]
assert gen == 5 and jgen == 4, (gen, jgen)
PY
"$MECHDIFF" run "$WORK/job.yaml" -o "$out" --quiet || fail "rot: resume"
/usr/bin/python3 scripts/dev/compare_h5.py "$WORK/ref.h5" "$out" --rtol 0 >/dev/null || fail "rot: resumed result differs"
echo "ok: killed between the rename and the journal rotation: resume equals the uninterrupted run"

# 2. readers while snapshots are taken every second
out="$WORK/live.h5"
MECHDIFF_SNAPSHOT_LOG=1 "$MECHDIFF" run "$WORK/job.yaml" -o "$out" --quiet 2>"$WORK/live.log" &
pid=$!
PYTHONPATH=analysis /usr/bin/python3 - "$out" "$pid" <<'PY' || fail "a reader failed while the job wrote"
import os, sys, time, h5py, numpy as np
import mdread
path, pid = sys.argv[1], int(sys.argv[2])
opens = 0
held = None
def state(h5):
    done = h5["completion/selftest/stage0/done"][...].astype(bool)
    vals = h5["selftest/values"][...]
    assert np.isfinite(vals[done]).all() and np.isnan(vals[~done]).all(), "done flags and data disagree"
    fd = h5.id.get_vfd_handle()                  # the bytes of this version, past HDF5's caches
    return done, os.pread(fd, os.fstat(fd).st_size, 0)
while True:
    alive = os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] != "Z"
    if os.path.exists(path):
        with h5py.File(path, "r") as f:
            done = f["completion/selftest/stage0/done"][...].astype(bool)
            vals = f["selftest/values"][...]
            assert np.isfinite(vals[done]).all(), "a done unit without its data"
        if held is False:
            mdread.Results(path).close()
        elif held is None and opens > 5:
            held = mdread.Results(path)
            held_at, held_state = time.time(), state(held.h5)
        elif held is not None and time.time() - held_at > 4:
            again = state(held.h5)
            assert (again[0] == held_state[0]).all() and again[1] == held_state[1], "the version held open was rewritten"
            held.close()
            held = False
            print("a version held open for 4 s stayed unchanged")
        else:
            mdread.Results(path).close()
        opens += 1
    if not alive:
        break
    time.sleep(0.05)
assert held is False, "the held version was not checked"
assert opens > 20, f"only {opens} reads"
print(f"{opens} reads while the job ran, all consistent")
PY
wait $pid || fail "live run: status $?"
n_inc=$(grep -c "(incremental)" "$WORK/live.log")
[ "$n_inc" -ge 2 ] || { cat "$WORK/live.log"; fail "only $n_inc incremental snapshots in the live run"; }
/usr/bin/python3 scripts/dev/compare_h5.py "$WORK/ref.h5" "$out" --rtol 0 >/dev/null || fail "live: result differs"
# 3. nothing left behind; planted links are replaced, never written through
for f in live.h5.prev live.h5.journal.prev live.h5.tmp; do [ ! -e "$WORK/$f" ] || fail "a finished run left $f"; done
echo "ok: readers during $n_inc incremental snapshots; nothing left behind"
echo victim > "$WORK/victim"
ln -s "$WORK/victim" "$WORK/planted.h5.prev"; ln -s "$WORK/victim" "$WORK/planted.h5.journal.prev"
"$MECHDIFF" run "$WORK/job.yaml" -o "$WORK/planted.h5" --quiet || fail "run with planted links"
[ "$(cat "$WORK/victim")" = victim ] || fail "a planted link was written through"
/usr/bin/python3 scripts/dev/compare_h5.py "$WORK/ref.h5" "$WORK/planted.h5" --rtol 0 >/dev/null || fail "planted: result differs"
echo "ok: links planted as OUT.h5.prev and OUT.h5.journal.prev are not followed"
