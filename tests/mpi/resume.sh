#!/bin/bash
# resume.sh — crash safety and resume:
#  1. kill -9 of the whole job (process group) at random moments, 1 or 3
#     ranks, resume each time: the file is readable after every kill and the
#     final datasets equal an uninterrupted run's;
#  2. SIGTERM (1 rank) and SIGUSR1 (mpirun) exit within 10 s with status 75,
#     and the run resumes to the same result;
#  3. a changed job is refused unless --force-new; a second run on an output
#     being written is refused;
#  4. a failing unit aborts the job naming the rank and the unit, leaving a
#     valid file.
. "$(dirname "$0")/../lib.sh"
cat > "$WORK/job.yaml" <<'YAML'
name: resume
seed: 5
runtime: {flush_units: 4, flush_interval: 0.05, progress_interval: 100}
experiments:
  - kind: selftest
    units: 300
    rows: 2
    cols: 6
    sleep_ms: 8
    cost_variation: 1
YAML
$MPIRUN -np 3 "$MECHDIFF" run "$WORK/job.yaml" -o "$WORK/ref.h5" --quiet || fail "reference run: status $?"

# 1. kill -9 at random points
OUT="$WORK/out.h5"
RANDOM=$$
for i in 1 2 3 4 5 6; do
    if [ $((i % 2)) = 0 ]; then cmd=("$MECHDIFF" run "$WORK/job.yaml" -o "$OUT" --quiet)
    else cmd=($MPIRUN -np 3 "$MECHDIFF" run "$WORK/job.yaml" -o "$OUT" --quiet); fi
    setsid "${cmd[@]}" >"$WORK/log$i" 2>&1 &
    pid=$!
    sleep "$((RANDOM % 2)).$((RANDOM % 10))$((RANDOM % 10))"; sleep 0.3
    kill_job "$pid"
    wait "$pid" 2>/dev/null
    sleep 0.2
    [ -e "$OUT" ] && readable "$OUT"
    "$MECHDIFF" status "$OUT" 2>/dev/null | grep -E "stage|journal" | tr -s ' ' | tr '\n' ' '; echo
done
$MPIRUN -np 3 "$MECHDIFF" run "$WORK/job.yaml" -o "$OUT" --quiet || fail "final resume: status $?"
same_results "$WORK/ref.h5" "$OUT"
echo "ok: 6 kill -9 + resume cycles give the uninterrupted result"

# 2. SIGTERM (one rank) and SIGUSR1 (mpirun): status 75 within 10 s, then resume
for mode in term usr1; do
    OUT="$WORK/sig-$mode.h5"
    if [ $mode = term ]; then "$MECHDIFF" run "$WORK/job.yaml" -o "$OUT" --quiet & pid=$!; sig=TERM
    else $MPIRUN -np 3 "$MECHDIFF" run "$WORK/job.yaml" -o "$OUT" --quiet 2>/dev/null & pid=$!; sig=USR1; fi
    sleep 1
    if [ $mode = usr1 ]; then # one writer per output: a second run is refused while this one runs
        "$MECHDIFF" run "$WORK/job.yaml" -o "$OUT" --quiet 2>"$WORK/locked" && fail "a second run on a busy output was not refused"
        grep -q "being written by another run" "$WORK/locked" || fail "busy-output message: $(cat "$WORK/locked")"
    fi
    kill -$sig $pid
    t0=$(date +%s%N)
    wait $pid; st=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    [ $st = 75 ] || fail "SIG$sig: exit status $st, expected 75"
    [ $ms -lt 10000 ] || fail "SIG$sig: took $ms ms to exit"
    readable "$OUT"
    $MPIRUN -np 3 "$MECHDIFF" run "$WORK/job.yaml" -o "$OUT" --quiet || fail "resume after SIG$sig: status $?"
    same_results "$WORK/ref.h5" "$OUT"
    echo "ok: SIG$sig -> status 75 in $ms ms, resumed to the same result"
done

# 3. a changed job is refused; --force-new replaces
sed 's/seed: 5/seed: 6/' "$WORK/job.yaml" > "$WORK/job2.yaml"
if "$MECHDIFF" run "$WORK/job2.yaml" -o "$WORK/ref.h5" --quiet 2>"$WORK/refused"; then fail "a changed job was not refused"; fi
grep -q "different job" "$WORK/refused" || fail "refusal message: $(cat "$WORK/refused")"
"$MECHDIFF" run "$WORK/job2.yaml" -o "$WORK/ref.h5" --quiet --force-new 2>/dev/null || fail "--force-new"
echo "ok: changed job refused, --force-new accepted"

# 4. a failing unit names the rank and the unit
sed 's/cost_variation: 1/fail_unit: 17/' "$WORK/job.yaml" > "$WORK/fail.yaml"
$MPIRUN -np 3 "$MECHDIFF" run "$WORK/fail.yaml" -o "$WORK/fail.h5" --quiet 2>"$WORK/err"; st=$?
[ $st = 1 ] || fail "failing unit: status $st"
grep -Eq "rank [12], unit selftest/stage 0/unit 17: selftest: injected failure" "$WORK/err" || fail "error message: $(cat "$WORK/err")"
readable "$WORK/fail.h5"
echo "ok: failing unit -> $(grep -o 'rank [12], unit [^:]*' "$WORK/err")"
echo "PASS"
