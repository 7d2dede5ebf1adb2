#!/usr/bin/env bash
# `mechdiff status LINK`, LINK a symbolic link in another folder to a run's
# output, reads OUT.h5.lock, OUT.h5.journal and OUT.h5.inflight beside the
# real file, as `run` writes them (it read LINK.lock ... beside the link, so
# it showed no journal units, no units in flight and no live run):
#  1. while a run on 2 ranks is going: "in flight now (the run pid N on HOST
#     is still going)" and the units the worker holds, through the link;
#  2. after a rank died: the same lines through the link as through the real
#     name (only the header names the path as given).
. "$(dirname "$0")/../lib.sh"
mkdir "$T/run" "$T/elsewhere"
ln -s "$T/run/out.h5" "$T/elsewhere/link.h5"
printf 'name: link\nruntime: {progress_interval: 100}\nexperiments:\n  - {kind: selftest, units: 400, sleep_ms: 10}\n' > "$T/slow.yaml"
$MPIRUN -np 2 "$MD" run "$T/slow.yaml" -o "$T/run/out.h5" --quiet 2> "$T/log" & pid=$!
seen=0
for _ in $(seq 100); do
  sleep 0.1
  "$MD" status "$T/elsewhere/link.h5" > "$T/status" 2>/dev/null || true
  if grep -q "in flight now (the run pid [0-9]* on .* is still going)" "$T/status"; then seen=1; break; fi
done
wait $pid || fail "the run failed: $(cat "$T/log")"
[ "$seen" = 1 ] || { cat "$T/status"; fail "status through a link never saw the live run in flight"; }
grep -Eq "^    rank 1: .*selftest" "$T/status" || { cat "$T/status"; fail "status through a link: no unit of rank 1"; }
head -1 "$T/status" | grep -q "^$T/elsewhere/link.h5: job \"link\"" || fail "status header: $(head -1 "$T/status")"

printf 'name: dead\nexperiments:\n  - {kind: selftest, units: 120, sleep_ms: 2, die_unit: 40}\n' > "$T/die.yaml"
rm -f "$T"/run/out.h5*
! $MPIRUN -np 3 "$MD" run "$T/die.yaml" -o "$T/run/out.h5" > "$T/log" 2>&1 || fail "a dead rank did not fail the job"
lock=$(sed -n 's/^pid \([0-9]*\) on .*/\1/p' "$T/run/out.h5.lock")
for _ in $(seq 50); do case "$(ps -o stat= -p "$lock" 2>/dev/null)" in "" | Z*) break ;; esac; sleep 0.1; done
"$MD" status "$T/run/out.h5" > "$T/real.txt" || true
"$MD" status "$T/elsewhere/link.h5" > "$T/link.txt" || true
grep -q "in flight when the last run stopped" "$T/real.txt" || { cat "$T/real.txt"; fail "status: no units in flight"; }
diff <(tail -n +2 "$T/real.txt" | grep -v "last .* s ago") <(tail -n +2 "$T/link.txt" | grep -v "last .* s ago") ||
  fail "status through a link differs from status of the real file"
[ ! -e "$T/elsewhere/link.h5.lock" ] && [ ! -e "$T/elsewhere/link.h5.journal" ] || fail "status wrote beside the link"
echo "status_link: ok"
