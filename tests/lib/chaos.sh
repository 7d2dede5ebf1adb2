# chaos.sh — sourced by tests/mpi/chaos.sh and tests/mpi/chaos_disk.sh after
# tests/lib.sh (it is outside the ctest globs). Provides:
#   chaos_job FILE: a small job of all four kinds on the shipped model pair
#     (74 units; a few seconds on 1 rank), runtime tuned for many journal
#     flushes and snapshots;
#   launch LOG RANKS OUT, then wait_end (the run's status; a run that does
#   not end within 120 s is a hang: fail);
#   now_ms; known OUT (units in OUT and its journal, `mechdiff status`; 0
#   before the first snapshot); finished OUT; alive PID;
#   gone SID (every process of a run's session ended, within 30 s);
#   lock_free OUT (OUT.lock is not held);
#   left_behind OUT (fails on any OUT.tmp/.prev/.journal/.journal.prev/
#     .inflight/.lock or digest-cache temporary left by a finished job);
#   CHECK (tests/lib/chaos_check.py); an EXIT trap that ends a run still
#   going (PID) and unmounts MNT.
CHECK="$ROOT/tests/lib/chaos_check.py"
# at exit also a run still going (a failed check) and the tmpfs of chaos_disk.sh
chaos_cleanup() {
    if [ -n "${PID:-}" ] && alive "$PID"; then
        kill -CONT $(ps -o pid= -s "$PID") 2>/dev/null
        kill_job "$PID"
        sleep 0.5
    fi
    [ -z "${MNT:-}" ] || umount "$MNT" 2>/dev/null
    rm -rf "$WORK"
}
trap chaos_cleanup EXIT
export MECHDIFF_DIGEST_CACHE=$WORK/digests

chaos_job() {
    cat > "$1" <<YAML
name: chaos
seed: 3
$(job_pair cities sp_en_trans facts harmful harmless)
runtime: {flush_units: 1, flush_interval: 0.05, snapshot_interval: 1, progress_interval: 1000}
experiments:
  - kind: knowledge
    datasets: [cities]
    cross: [all]
    max_pairs: 12
  - kind: truth
    train_datasets: [sp_en_trans, facts]
    test_datasets: [cities]
    max_statements: 40
    control_directions: 1
  - kind: refusal
    n_train: 16
    n_test: 8
    templates: {base: base, instruct: chat}
    coefficients: {base: 4.0, instruct: 4.0}
  - kind: confidence
    prompts: cities
    max_prompts: 8
YAML
}

# launch LOG RANKS OUT: starts a run of $WORK/job.yaml on OUT in a session
# of its own, inside a subshell (whose wait takes the shell's "Killed"
# notice); sets PID (the run: mechdiff or mpirun, also the session id, as
# setsid execs in the background child) and WRAP (the subshell, whose
# status is the run's).
launch() {
    local cmd=("$MECHDIFF" run "$WORK/job.yaml" -o "$3")
    [ "$2" = 1 ] || cmd=($MPIRUN -np "$2" "${cmd[@]}")
    rm -f "$WORK/pid"
    (setsid "${cmd[@]}" >"$1" 2>&1 & echo $! >"$WORK/pid"; wait $!) 2>/dev/null &
    WRAP=$!
    until [ -s "$WORK/pid" ]; do sleep 0.01; done
    PID=$(cat "$WORK/pid")
}

# wait_end: the run's exit status, within 120 s of its signal (else a hang: fail)
wait_end() {
    local i
    for i in $(seq 2400); do
        alive "$PID" || break
        sleep 0.05
    done
    if alive "$PID"; then
        ps -o pid,stat,etime,args -s "$PID" >&2
        kill_job "$PID"
        fail "the run did not end within 120 s of its signal (a hang)"
    fi
    wait "$WRAP"
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

known() {
    [ -e "$1" ] || { echo 0; return; }
    "$MECHDIFF" status "$1" | sed -n 's/.*total (stages planned so far): \([0-9]*\) .*/\1/p'
}

finished() { [ -e "$1" ] && "$MECHDIFF" status "$1" >/dev/null 2>&1; }

alive() { case "$(ps -o stat= -p "$1")" in "" | Z*) return 1 ;; esac; }

gone() {
    local i
    for i in $(seq 300); do
        [ -z "$(ps -o pid= -s "$1")" ] && return 0
        sleep 0.1
    done
    ps -o pid,stat,etime,args -s "$1" >&2
    fail "processes of the interrupted run still alive 30 s after it ended"
}

lock_free() {
    [ -e "$1.lock" ] || return 0
    /usr/bin/python3 -c 'import fcntl, sys
f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)' "$1.lock" 2>/dev/null ||
        fail "$1.lock is still held after the run ended"
}

left_behind() {
    local f left
    for f in "$1.tmp" "$1.prev" "$1.journal" "$1.journal.prev" "$1.inflight" "$1.lock"; do
        [ ! -e "$f" ] || fail "the finished job left $f"
    done
    left=$(find "$(dirname "$1")" "$WORK/digests" -name '*.tmp.*' 2>/dev/null | head -3)
    [ -z "$left" ] || fail "temporary files left: $left"
}
