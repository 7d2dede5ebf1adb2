#!/usr/bin/env bash
# A worker rank that dies (SIGKILL in the middle of a unit) ends the job;
# the output stays readable, `mechdiff status` names the rank and the units
# it held (OUT.h5.inflight) as held when the run stopped, also when its pid
# in OUT.h5.lock is another program's now, and the next run on the same output says which
# units were in flight and completes the job.
. "$(dirname "$0")/../lib.sh"
printf 'name: dead\nexperiments:\n  - {kind: selftest, units: 120, sleep_ms: 2, die_unit: 40}\n' > "$WORK/die.yaml"
printf 'name: dead\nexperiments:\n  - {kind: selftest, units: 120, sleep_ms: 2}\n' > "$WORK/ok.yaml"
if $MPIRUN -np 3 "$MECHDIFF" run "$WORK/die.yaml" -o "$WORK/out.h5" > "$WORK/log" 2>&1; then
  fail "a dead rank did not fail the job"
fi
readable "$WORK/out.h5"
"$MECHDIFF" status "$WORK/out.h5" > "$WORK/status" || true
cat "$WORK/status"
grep -Eq "rank [12]: .*unit 40" "$WORK/status" || { cat "$WORK/log"; fail "status does not name the rank and the unit"; }
# rank 0 may still be exiting when mpirun returns: once it is gone (or a
# zombie not reaped yet), its units are those of a run that stopped
pid=$(sed -n 's/^pid \([0-9]*\) on .*/\1/p' "$WORK/out.h5.lock")
for _ in $(seq 50); do case "$(ps -o stat= -p "$pid" 2>/dev/null)" in "" | Z*) break ;; esac; sleep 0.1; done
"$MECHDIFF" status "$WORK/out.h5" > "$WORK/status" || true
grep -q "in flight when the last run stopped" "$WORK/status" || { cat "$WORK/status"; fail "status of an ended run: not 'when the last run stopped'"; }
# OUT.h5.lock keeps the ended run's pid: a live process of another program
# given that pid since (this shell) is not the run (98bce8e: "in flight now")
printf 'pid %s on %s' $$ "$(hostname)" > "$WORK/out.h5.lock"
"$MECHDIFF" status "$WORK/out.h5" > "$WORK/status" || true
grep -q "in flight when the last run stopped" "$WORK/status" || { cat "$WORK/status"; fail "status took pid $$ (bash) for the run"; }
$MPIRUN -np 3 "$MECHDIFF" run "$WORK/ok.yaml" -o "$WORK/out.h5" --force-new 2> "$WORK/log2"
grep -Eq "in flight.*" "$WORK/log2" && grep -Eq "rank [12]: .*unit 40" "$WORK/log2" || { cat "$WORK/log2"; fail "the next run does not name the units in flight"; }
"$MECHDIFF" run "$WORK/ok.yaml" -o "$WORK/ref.h5" 2>/dev/null
same_results "$WORK/ref.h5" "$WORK/out.h5"
[ ! -e "$WORK/out.h5.inflight" ] || fail "a finished run left OUT.h5.inflight"
echo "dead rank: ok"
