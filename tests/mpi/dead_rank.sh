#!/usr/bin/env bash
# A worker rank that dies (SIGKILL in the middle of a unit) ends the job;
# the output stays readable, `mechdiff status` names the rank and the units
# it held (OUT.h5.inflight), and the next run on the same output says which
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
$MPIRUN -np 3 "$MECHDIFF" run "$WORK/ok.yaml" -o "$WORK/out.h5" --force-new 2> "$WORK/log2"
grep -Eq "in flight.*" "$WORK/log2" && grep -Eq "rank [12]: .*unit 40" "$WORK/log2" || { cat "$WORK/log2"; fail "the next run does not name the units in flight"; }
"$MECHDIFF" run "$WORK/ok.yaml" -o "$WORK/ref.h5" 2>/dev/null
same_results "$WORK/ref.h5" "$WORK/out.h5"
[ ! -e "$WORK/out.h5.inflight" ] || fail "a finished run left OUT.h5.inflight"
echo "dead rank: ok"
