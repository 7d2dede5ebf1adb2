#!/bin/bash
# chaos_disk.sh — the disk fills up while a run writes its output:
#  1. on 2 ranks, the journal reaches the file size limit (RLIMIT_FSIZE,
#     SIGXFSZ ignored: write() fails with EFBIG as on a full disk) while the
#     worker holds units with results too big to be sent eagerly: the run
#     ends with status 1 within 60 s and a message naming the file and what
#     to do. (It hung: rank 0 left its loop and waited to deliver a unit
#     message while the worker waited to deliver a result.) A 1-rank resume
#     completes it and leaves nothing beside OUT.h5 (OUT.h5.inflight of the
#     2-rank run was left, and reported by every later 1-rank run).
#  2. the real path (the job of tests/lib/chaos.sh, all four kinds on the
#     shipped pair) on a small tmpfs (root; else RLIMIT_FSIZE stands in,
#     1 rank): frozen (SIGSTOP of every process) after a random number of
#     units on 1, 2 or 3 ranks (seed printed; CHAOS_SEED=N reproduces it),
#     the tmpfs filled to the last byte, continued: status 1 within 120 s,
#     the message names the output and says what to do; OUT.h5 opens with
#     plain h5py, every unit done before the disk filled is still done and
#     every done unit holds the uninterrupted run's bytes
#     (tests/lib/chaos_check.py), the units known (file + journal) did not
#     decrease, verify says valid, no OUT.h5.tmp is left, the lock is free
#     (CHAOS_DISK=ulimit: the stand-in also as root);
#  3. a resume on the still full disk fails the same way and loses nothing;
#  4. once space is freed, a resume ends equal to an uninterrupted run
#     (compare_h5.py --rtol 0, h5diff), verify exit 0, nothing left behind.
. "$(dirname "$0")/../lib.sh"
need_pair
SEED=${CHAOS_SEED:-20261207}
echo "chaos_disk: seed $SEED (CHAOS_SEED=$SEED reproduces the choices)"
RANDOM=$SEED
. "$ROOT/tests/lib/chaos.sh"

# said_what_to_do LOG OUT: the error names the output and says how to go on
said_what_to_do() {
    grep -q "rank 0: $2" "$1" && grep -q "the disk is full or a size limit was reached" "$1" &&
        grep -q "run the same command again" "$1" ||
        { grep -v "^ \|^--\|^$" "$1" | tail -5; fail "the full disk's message does not name $2 and what to do"; }
}

# 1. the journal over the size limit on 2 ranks, the worker holding big results
# (no shared-memory transport or PMIx store: their files would hit the limit)
printf 'name: full\nruntime: {flush_units: 1}\nexperiments:\n  - {kind: selftest, units: 60, stages: 1, rows: 4, cols: 4000, sleep_ms: 20}\n' \
    >"$WORK/big.yaml"
st=0
(ulimit -f 1000; export OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=lo PMIX_MCA_gds=hash
 exec timeout -s KILL 60 $MPIRUN -np 2 sh -c 'trap "" XFSZ; exec "$0" "$@"' "$MECHDIFF" run "$WORK/big.yaml" \
     -o "$WORK/big.h5") >"$WORK/big.log" 2>&1 || st=$?
if ! grep -q "starting job 'full'" "$WORK/big.log"; then
    echo "chaos_disk: part 1 skipped: mpirun cannot start with the TCP transport here: $(head -3 "$WORK/big.log")"
else
    [ $st != 137 ] || fail "2 ranks, the journal over the size limit: the run hung (killed after 60 s)"
    [ $st = 1 ] || { tail -5 "$WORK/big.log"; fail "2 ranks, the journal over the size limit: status $st, expected 1"; }
    said_what_to_do "$WORK/big.log" "$WORK/big.h5"
    readable "$WORK/big.h5"
    [ -s "$WORK/big.h5.inflight" ] || fail "2 ranks, the journal over the size limit: no OUT.h5.inflight"
    echo "chaos_disk: ok: 2 ranks, the journal over the size limit with units out: status 1, the message says what to do"
    # a 1-rank resume reports the units in flight, then drops the list (every later run repeated it)
    "$MECHDIFF" run "$WORK/big.yaml" -o "$WORK/big.h5" 2>"$WORK/big2.log" || fail "the 1-rank resume: status $?"
    grep -q "stopped while these units were in flight" "$WORK/big2.log" || fail "the 1-rank resume did not report them"
    "$MECHDIFF" verify "$WORK/big.h5" --quiet || fail "verify after the 1-rank resume: status $?"
    left_behind "$WORK/big.h5"
    echo "chaos_disk: ok: a 1-rank resume completes it and leaves nothing beside OUT.h5"
fi

# 2. the real path on a full disk
chaos_job "$WORK/job.yaml"
"$MECHDIFF" run "$WORK/job.yaml" -o "$WORK/ref.h5" --quiet || fail "reference run: status $?"
TOTAL=$(known "$WORK/ref.h5")
DISK=$WORK/disk
mkdir -p "$DISK"
if [ "${CHAOS_DISK:-}" != ulimit ] && [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=24m tmpfs "$DISK" 2>/dev/null; then
    MNT=$DISK
    MODE=tmpfs
    ranks=$((RANDOM % 3 + 1))
else
    MODE=ulimit
    ranks=1
    echo "chaos_disk: no tmpfs (CHAOS_DISK=ulimit, not root, or no CAP_SYS_ADMIN): RLIMIT_FSIZE stands in for a full disk"
fi
OUT=$DISK/out.h5
at=$((TOTAL / 10 + RANDOM % (TOTAL / 2)))

# check_kept STEP: the results of before.json are all there, with the reference's bytes
check_kept() {
    readable "$OUT"
    /usr/bin/python3 "$CHECK" "$WORK/ref.h5" "$OUT" "$WORK/before.json" "$WORK/after.json" >"$WORK/check" ||
        { cat "$WORK/check"; fail "$1: results written before the disk filled were lost or changed"; }
    [ "$(known "$OUT")" -ge "$before" ] || fail "$1: $(known "$OUT") units known, $before before the disk filled"
    vst=0
    "$MECHDIFF" verify "$OUT" --quiet >"$WORK/verify" 2>&1 || vst=$?
    [ $vst -le 1 ] || { cat "$WORK/verify"; fail "$1: verify says invalid (status $vst)"; }
    [ ! -e "$OUT.tmp" ] || fail "$1: $OUT.tmp left behind"
    lock_free "$OUT"
}

if [ $MODE = tmpfs ]; then
    launch "$WORK/full.log" $ranks "$OUT"
    for _ in $(seq 2400); do
        [ "$(known "$OUT" 2>/dev/null)" -ge $at ] 2>/dev/null && break
        alive $PID || break
        sleep 0.05
    done
    pids=$(ps -o pid= -s $PID)
    kill -STOP $pids 2>/dev/null
    alive $PID || fail "the run ended before $at units were done"
    /usr/bin/python3 "$CHECK" "$WORK/ref.h5" "$OUT" "$WORK/none.json" "$WORK/before.json" >/dev/null ||
        fail "the results before the disk filled"
    before=$(known "$OUT")
    dd if=/dev/zero of="$DISK/filler" bs=4k 2>/dev/null
    [ "$(df --output=avail "$DISK" | tail -1 | tr -d ' ')" = 0 ] || fail "the tmpfs is not full: $(df "$DISK" | tail -1)"
    kill -CONT $pids 2>/dev/null
    wait_end; st=$?
    gone $PID
    what="$ranks rank(s), the tmpfs filled after $before units"
else # the output may grow to 2/3 of its final size
    limit=$(($(stat -c %s "$WORK/ref.h5") * 2 / 3 / 1024))
    st=0
    (ulimit -f $limit; trap '' XFSZ; export OMPI_MCA_btl=self PMIX_MCA_gds=hash
     exec timeout -s KILL 120 "$MECHDIFF" run "$WORK/job.yaml" -o "$OUT") >"$WORK/full.log" 2>&1 || st=$?
    echo '[]' >"$WORK/before.json"
    before=0
    what="1 rank, the output limited to $limit kB"
fi
[ $st = 1 ] || { grep -v "^ \|^--\|^$" "$WORK/full.log" | tail -5; fail "$what: status $st, expected 1"; }
said_what_to_do "$WORK/full.log" "$OUT"
check_kept "$what"
echo "chaos_disk: ok: $what: status 1, the message says what to do, $(known "$OUT") units kept"

# 3. a resume on the disk still full (filled again: the failed snapshot freed its OUT.h5.tmp)
if [ $MODE = tmpfs ]; then
    dd if=/dev/zero of="$DISK/filler" bs=4k oflag=append conv=notrunc 2>/dev/null
    [ "$(df --output=avail "$DISK" | tail -1 | tr -d ' ')" = 0 ] || fail "the tmpfs is not full: $(df "$DISK" | tail -1)"
    before=$(known "$OUT")
    cp "$WORK/after.json" "$WORK/before.json"
    launch "$WORK/again.log" $ranks "$OUT"
    wait_end; st=$?
    gone $PID
    [ $st = 1 ] || { grep -v "^ \|^--\|^$" "$WORK/again.log" | tail -5; fail "resume on the full disk: status $st"; }
    said_what_to_do "$WORK/again.log" "$OUT"
    check_kept "resume on the full disk"
    echo "chaos_disk: ok: a resume on the still full disk: status 1, the message says what to do, nothing lost"
    rm -f "$DISK/filler"
fi

# 4. space freed: the resume ends equal to the uninterrupted run
ranks=$((RANDOM % 3 + 1))
if [ $ranks = 1 ]; then "$MECHDIFF" run "$WORK/job.yaml" -o "$OUT" 2>"$WORK/last.log"
else $MPIRUN -np $ranks "$MECHDIFF" run "$WORK/job.yaml" -o "$OUT" 2>"$WORK/last.log"; fi
st=$?
[ $st = 0 ] || { tail -5 "$WORK/last.log"; fail "the resume after space was freed ($ranks rank(s)): status $st"; }
/usr/bin/python3 scripts/dev/compare_h5.py "$WORK/ref.h5" "$OUT" --rtol 0 >"$WORK/compare" ||
    { grep differs "$WORK/compare" | head; fail "the resumed result differs from the uninterrupted run"; }
same_results "$WORK/ref.h5" "$OUT"
"$MECHDIFF" verify "$OUT" --quiet || fail "verify of the resumed result: status $?"
left_behind "$OUT"
echo "chaos_disk: ok: space freed, a resume on $ranks rank(s) equals the uninterrupted run, nothing left behind"
