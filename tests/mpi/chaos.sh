#!/bin/bash
# chaos.sh — randomized interruptions of the real path: a small job of all
# four kinds (knowledge, truth, refusal, confidence) on the shipped model
# pair, run once uninterrupted (the reference, 1 rank), then into another
# output as a sequence of runs, each interrupted at a random moment by one of
#   kill9-coord   SIGKILL of rank 0 (the coordinator and writer),
#   kill9-worker  SIGKILL of one worker rank (2 or 3 ranks),
#   term, int     SIGTERM / SIGINT of mpirun (of the one process on 1 rank),
#   usr1          SIGUSR1 (Slurm's warning before the time limit),
# on 1, 2 or 3 ranks: every kind on every rank count it applies to (14
# runs) in an order drawn from a seed (printed; CHAOS_SEED=N reproduces it,
# CHAOS_RUNS=N runs N, in further drawn passes). The moments are random
# within the time the rest of the work takes (the reference run's wall time
# times the share of units left). Once the job is done (a run ends it before
# its signal, or the runs are used up) a plain resume on a drawn rank count
# ends it and the next runs start a new output.
# After every interrupted run:
#   - its exit status is the documented one (`mechdiff run --help`: 75 after
#     a stop signal; 137 when a rank was SIGKILLed; mpirun's own 1 after
#     SIGTERM/SIGINT of mpirun; the signal's 128+N only when it came before
#     mechdiff had started, i.e. before its first line; 0 only when the job
#     was done by then);
#   - no process of it is left, and its OUT.h5.lock is free;
#   - OUT.h5 opens with plain h5py, no unit done after the previous run is
#     undone, every done unit's hyperslabs hold the reference's bytes
#     (tests/lib/chaos_check.py), the units known (file + journal, `mechdiff
#     status`) never decrease, and `mechdiff verify` says valid (0 or 1).
# After the resume of each output: compare_h5.py --rtol 0 and h5diff
# (attributes too; not /provenance, which records the runs) equal to the
# reference, verify exit 0, and no OUT.h5.tmp/.prev/.journal/.journal.prev/
# .inflight/.lock, digest-cache temporaries or processes left behind.
# A full disk: tests/mpi/chaos_disk.sh.
. "$(dirname "$0")/../lib.sh"
need_pair
SEED=${CHAOS_SEED:-20261207}
RANDOM=$SEED
. "$ROOT/tests/lib/chaos.sh"
chaos_job "$WORK/job.yaml"

t0=$(now_ms)
"$MECHDIFF" run "$WORK/job.yaml" -o "$WORK/ref.h5" --quiet || fail "reference run: status $?"
T_REF=$(($(now_ms) - t0))
TOTAL=$(known "$WORK/ref.h5")
echo "chaos: reference: $TOTAL units in $T_REF ms on 1 rank"

STARTED="starting job 'chaos'"

# rank_pid PID RANKS R: the pid of rank R of the run PID ("" once it ended);
# waits until the rank is up.
rank_pid() {
    local c i
    if [ "$2" = 1 ]; then echo "$1"; return; fi
    for i in $(seq 600); do
        alive "$1" || return 0
        for c in $(ps -o pid= --ppid "$1"); do
            tr '\0' '\n' </proc/"$c"/environ 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$3" && { echo "$c"; return; }
        done
        sleep 0.05
    done
}

# expect_exit KIND RANKS STATUS LOG
expect_exit() {
    local kind=$1 st=$3 sig want
    case $kind in
        kill9-*) want=137 ;;
        term) sig=15 ;;
        int) sig=2 ;;
        usr1) sig=10 ;;
    esac
    if [ -z "${want:-}" ]; then want=75; [ "$2" != 1 ] && [ $kind != usr1 ] && want=1; fi
    [ "$st" = "$want" ] && return 0
    [ "$st" = 0 ] && finished "$OUT" && return 0 # the signal came after the work was done
    if [ -n "${sig:-}" ] && [ "$st" = $((128 + sig)) ] && ! grep -q "$STARTED" "$4"; then
        return 0 # before mechdiff installed its handlers (its first line comes after)
    fi
    tail -20 "$4" >&2
    fail "$kind on $2 rank(s): exit status $st, expected $want"
}

# every kind on every rank count it applies to (14 pairs; CHAOS_RUNS more:
# further passes), each pass in an order drawn from the seed
pairs=()
for k in kill9-coord kill9-worker term int usr1; do
    for r in 1 2 3; do [ $k = kill9-worker ] && [ $r = 1 ] || pairs+=("$k:$r"); done
done
RUNS=${CHAOS_RUNS:-${#pairs[@]}}
echo "chaos: seed $SEED, $RUNS interrupted runs (CHAOS_SEED=$SEED CHAOS_RUNS=$RUNS reproduce the choices)"

# resume_to_end: a plain run to the end on a drawn rank count, then the
# result against the reference and nothing left behind; a new output next
resume_to_end() {
    local ranks=$((RANDOM % 3 + 1)) st=0
    if [ $ranks = 1 ]; then "$MECHDIFF" run "$WORK/job.yaml" -o "$OUT" 2>"$WORK/last.log" || st=$?
    else $MPIRUN -np $ranks "$MECHDIFF" run "$WORK/job.yaml" -o "$OUT" 2>"$WORK/last.log" || st=$?; fi
    [ $st = 0 ] || { tail -20 "$WORK/last.log"; fail "output $n_out, the last resume ($ranks rank(s)): status $st"; }
    grep -q "$STARTED" "$WORK/last.log" || fail "output $n_out, the last resume printed no start"
    /usr/bin/python3 "$CHECK" "$WORK/ref.h5" "$OUT" "$WORK/state.json" "$WORK/state.new" >/dev/null ||
        fail "output $n_out: the last resume lost or changed results"
    /usr/bin/python3 scripts/dev/compare_h5.py "$WORK/ref.h5" "$OUT" --rtol 0 >"$WORK/compare" ||
        { grep differs "$WORK/compare" | head; fail "output $n_out differs from the uninterrupted run"; }
    same_results "$WORK/ref.h5" "$OUT"
    "$MECHDIFF" verify "$OUT" --quiet || fail "verify of output $n_out: status $?"
    left_behind "$OUT"
    echo "chaos: ok: output $n_out after $n_runs interrupted runs and a resume on $ranks rank(s): equal to the" \
        "uninterrupted run (compare_h5 --rtol 0, h5diff), verify 0, nothing left behind"
    n_out=$((n_out + 1))
    OUT=$WORK/out$n_out.h5
    prev_known=0
    n_runs=0
    rm -f "$WORK/state.json"
}

n_out=1
OUT=$WORK/out$n_out.h5
prev_known=0
n_runs=0
rm -f "$WORK/state.json"
for ((i = 1; i <= RUNS; i++)); do
    p=$(((i - 1) % ${#pairs[@]}))
    if [ $p = 0 ]; then # a new pass, in a drawn order
        for ((k = ${#pairs[@]} - 1; k > 0; k--)); do
            j=$((RANDOM % (k + 1))); t=${pairs[$k]}; pairs[$k]=${pairs[$j]}; pairs[$j]=$t
        done
    fi
    kind=${pairs[$p]%:*}
    ranks=${pairs[$p]#*:}
    victim=$((RANDOM % (ranks > 1 ? ranks - 1 : 1) + 1))
    frac=$((RANDOM % 1000))
    left=$((TOTAL - prev_known))
    delay=$((T_REF * frac / 2000 * (left > TOTAL / 4 ? left : TOTAL / 4) / TOTAL))
    log="$WORK/run$i.log"
    launch "$log" $ranks "$OUT"
    sleep "$((delay / 1000)).$(printf %03d $((delay % 1000)))"
    case $kind in
        kill9-coord) target=$(rank_pid $PID $ranks 0); [ -n "$target" ] && kill -KILL "$target" ;;
        kill9-worker) target=$(rank_pid $PID $ranks $victim); [ -n "$target" ] && kill -KILL "$target" ;;
        term) kill -TERM $PID 2>/dev/null ;;
        int) kill -INT $PID 2>/dev/null ;;
        usr1) kill -USR1 $PID 2>/dev/null ;;
    esac
    t1=$(now_ms)
    wait_end; st=$?
    t_end=$(($(now_ms) - t1))
    gone $PID
    n_runs=$((n_runs + 1))
    what="run $i (output $n_out): $ranks rank(s), $kind$([ $kind = kill9-worker ] && echo " (rank $victim)") after $delay ms"
    expect_exit $kind $ranks $st "$log"
    lock_free "$OUT"
    res=$(/usr/bin/python3 "$CHECK" "$WORK/ref.h5" "$OUT" "$WORK/state.json" "$WORK/state.new") ||
        { echo "$res"; tail -5 "$log"; fail "$what: results lost or wrong"; }
    mv "$WORK/state.new" "$WORK/state.json"
    now=$(known "$OUT")
    [ "$now" -ge "$prev_known" ] || fail "$what: $now units known, $prev_known after the run before"
    vst=0
    [ -e "$OUT" ] && { "$MECHDIFF" verify "$OUT" --quiet >"$WORK/verify$i" 2>&1 || vst=$?; }
    [ $vst -le 1 ] || { cat "$WORK/verify$i"; fail "$what: verify says invalid (status $vst)"; }
    echo "chaos: $what: status $st after $t_end ms; ${res#DONE_UNITS } units done in the file, $now with the journal"
    prev_known=$now
    finished "$OUT" && resume_to_end
done
[ $n_runs = 0 ] || resume_to_end
