#!/bin/bash
# slurm.sh — a one-node Slurm on localhost runs the shipped templates as
# shipped (only counts are passed on the sbatch line: -n, --mem, --time):
#  1. slurm/cpu.sbatch from a clone whose build/mechdiff is the binary
#     (MECHDIFF unset, mechdiff not on PATH): a selftest job; midway the batch
#     script gets the time-limit warning (scancel --signal=USR1 --batch, what
#     --signal=B:USR1@120 delivers), mechdiff saves and exits 75, the script
#     requeues the job, the job resumes; the file must equal an uninterrupted run.
#     While it runs, `status` names the units in flight as the live run's.
# 1b. the same, cancelled midway with a plain `scancel`: the job must stay
#     CANCELLED (not requeued by the template) and the same sbatch again
#     must resume to the uninterrupted result.
#  2. slurm/gpu.sbatch (its --gpus-per-node=4 met by 4 declared GPUs of the
#     test node; MECHDIFF set, MECHDIFF_BACKEND=cpu because there is no GPU
#     here) as a 2-task array on a knowledge job of the shipped pair, then
#     slurm/merge.sbatch after it (--dependency=afterok): equal to one run;
#     merge.sbatch's run counts the units already in the file once.
# munged, slurmctld and slurmd are started by this script (as root, config in
# a temp dir) and stopped at the end. The node is declared with 8 CPUs
# whatever the hardware (config_overrides) so that the jobs fit on 2 cores.
# Exit 77 (skip) with a message when Slurm cannot start here.
. "$(dirname "$0")/../lib.sh"
skip() { echo "SKIP: $*"; exit 77; }

# Without Slurm: a template that finds no binary says how to point at one
# (exit 2; before, `mechdiff` was looked up on PATH only and srun failed with
# "processes failed to start", exit 134).
mkdir -p "$WORK/nobin"
cp -r "$ROOT/slurm" "$WORK/nobin/"
env -u MECHDIFF PATH=/usr/bin:/bin SLURM_SUBMIT_DIR="$WORK/nobin" bash "$WORK/nobin/slurm/cpu.sbatch" x.yaml \
    >"$WORK/nobin.out" 2>&1 && fail "cpu.sbatch ran without a binary"
grep -q "MECHDIFF=/path/to/mechdiff sbatch" "$WORK/nobin.out" || { cat "$WORK/nobin.out"; fail "no hint at MECHDIFF"; }
[ "$(id -u)" = 0 ] || skip "needs root to start slurmctld/slurmd"
for b in munged slurmctld slurmd sbatch scontrol squeue; do
    command -v $b >/dev/null || [ -x /usr/sbin/$b ] || skip "$b not installed (scripts/install-deps.sh)"
done
export PATH=$PATH:/usr/sbin
S="$WORK/slurm"
mkdir -p "$S/state" "$S/spool" "$S/log"
HOST=$(hostname -s)
CPUS=$(nproc)
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PCTL=$(port); PD=$(port)

cleanup() {
    for p in slurmd slurmctld munged; do
        [ -f "$S/$p.pid" ] && kill "$(cat "$S/$p.pid")" 2>/dev/null
    done
    sleep 0.5
    for p in slurmd slurmctld munged; do
        [ -f "$S/$p.pid" ] && kill -9 "$(cat "$S/$p.pid")" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# munge with a private key and socket
dd if=/dev/urandom of="$S/munge.key" bs=1024 count=1 status=none
chmod 600 "$S/munge.key"
munged -f --key-file="$S/munge.key" --socket="$S/munge.sock" --pid-file="$S/munged.pid" \
    --log-file="$S/log/munged.log" --seed-file="$S/munge.seed" 2>"$S/log/munged.err" ||
    skip "munged does not start: $(cat "$S/log/munged.err")"

cat > "$S/slurm.conf" <<CONF
ClusterName=mdtest
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$PCTL
SlurmdPort=$PD
AuthType=auth/munge
AuthInfo=socket=$S/munge.sock
CredType=cred/munge
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
MpiDefault=none
ReturnToService=2
JobRequeue=1
MinJobAge=600
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName=$HOST CPUs=8 RealMemory=8000 Gres=gpu:4 State=UNKNOWN
PartitionName=test Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
# four GPUs without device files: enough for the scheduler to grant
# --gpus-per-node=4 (nothing here touches them: MECHDIFF_BACKEND=cpu)
for f in /dev/null /dev/zero /dev/full /dev/urandom; do echo "NodeName=$HOST Name=gpu File=$f"; done > "$S/gres.conf"
export SLURM_CONF="$S/slurm.conf"
slurmctld -i -f "$SLURM_CONF" 2>"$S/log/slurmctld.err" || skip "slurmctld does not start: $(tail -3 "$S/log/slurmctld.err")"
slurmd -f "$SLURM_CONF" -N "$HOST" 2>"$S/log/slurmd.err" || skip "slurmd does not start: $(tail -3 "$S/log/slurmd.err")"
for i in $(seq 1 60); do
    sinfo -h -o %T 2>/dev/null | grep -Eq '^idle' && break
    sleep 0.5
done
sinfo -h -o %T 2>/dev/null | grep -Eq '^idle' || skip "the Slurm node does not come up: $(tail -3 "$S/log/slurmd.log" 2>/dev/null)"
echo "slurm up on $HOST ($CPUS CPUs)"

cat > "$WORK/job.yaml" <<'YAML'
name: slurm-e2e
seed: 9
runtime: {progress_interval: 1, flush_units: 4, flush_interval: 0.1}
experiments:
  - kind: selftest
    units: 300
    sleep_ms: 20
    cost_variation: 1
YAML
$MPIRUN -np 3 "$MECHDIFF" run "$WORK/job.yaml" -o "$WORK/ref.h5" --quiet || fail "reference run"

# 1. the CPU template from a clone: the binary is found next to it
mkdir -p "$WORK/clone/build"
cp -r "$ROOT/slurm" "$WORK/clone/"
ln -s "$MECHDIFF" "$WORK/clone/build/mechdiff"
cd "$WORK"
ID=$(env -u MECHDIFF PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin sbatch --parsable -n 3 --mem-per-cpu=200M --time=10 \
    --chdir="$WORK" --output="$WORK/slurm-%j.out" "$WORK/clone/slurm/cpu.sbatch" "$WORK/job.yaml" -o "$WORK/out.h5") ||
    fail "sbatch"
echo "submitted job $ID"
# wait for real progress, then send the time-limit warning to the batch script
for i in $(seq 1 120); do
    scontrol show job "$ID" | grep -q "Reason=PartitionConfig" && { scontrol show job "$ID"; fail "job $ID cannot be scheduled"; }
    scontrol show job "$ID" | grep -Eq "JobState=(COMPLETED|FAILED)" && { cat "$WORK"/slurm-*.out; fail "job $ID ended before the signal"; }
    "$MECHDIFF" status "$WORK/out.h5" > "$WORK/status.txt" 2>/dev/null
    grep -Eq 'stage 0: +[0-9]*[1-9][0-9]* /' "$WORK/status.txt" && break
    sleep 0.25
done
# while the run goes on, status names the units in flight as the live run's
# (it said "when the last run stopped (a rank that died ...)" of a running job)
if grep -q "in flight" "$WORK/status.txt"; then
    grep -q "in flight now (the run pid [0-9]* on " "$WORK/status.txt" || { cat "$WORK/status.txt"; fail "status of a running job: in flight not 'now'"; }
fi
scancel --signal=USR1 --batch "$ID" || { scontrol show job "$ID"; cat "$WORK"/slurm-*.out; tail "$S"/log/*.log; fail "scancel --signal"; }
echo "sent USR1 to the batch script"
state=""
for i in $(seq 1 240); do
    state=$(scontrol show job "$ID" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
    restarts=$(scontrol show job "$ID" 2>/dev/null | sed -n 's/.*Restarts=\([0-9]*\).*/\1/p')
    [ "$state" = COMPLETED ] && break
    # a requeued job waits for a begin time (Slurm's requeue delay, ~2 min):
    # release it once the previous run's step is cleaned up on the node
    if [ "$state" = PENDING ] && [ "${restarts:-0}" -ge 1 ] && scontrol show job "$ID" | grep -q "Reason=BeginTime"; then
        for k in $(seq 1 40); do grep -q "\[$ID.0\] done with job" "$S/log/slurmd.log" && break; sleep 0.25; done
        sleep 2
        scontrol update JobId="$ID" StartTime=now 2>/dev/null
    fi
    case "$state" in FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) break ;; esac
    sleep 0.5
done
cat "$WORK"/slurm-"$ID".out
[ "$state" = COMPLETED ] || { scontrol show job "$ID" | grep -E "JobState|Reason"; fail "job $ID ended $state"; }
[ "${restarts:-0}" -ge 1 ] || fail "job $ID was not requeued (Restarts=${restarts:-0})"
grep -q "requeueing" "$WORK"/slurm-"$ID".out || fail "the batch script did not requeue"
grep -q "$WORK/clone/build/mechdiff via" "$WORK"/slurm-"$ID".out || fail "cpu.sbatch did not use the clone's build/mechdiff"
grep -q "backend cpu" "$WORK"/slurm-"$ID".out || fail "cpu.sbatch did not set the cpu backend"
same_results "$WORK/ref.h5" "$WORK/out.h5"
"$MECHDIFF" status "$WORK/out.h5"
echo "ok: cpu.sbatch job $ID requeued $restarts time(s) and finished with the uninterrupted result"

# 1b. a plain `scancel` midway (docs/cluster.md: "After a node failure or
# scancel, submit the same command again"): the ranks save and exit 75, and
# the job stays cancelled (the template requeued it, undoing the scancel);
# the same command again resumes to the uninterrupted result.
job_state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }
submit_cpu() {
    env -u MECHDIFF PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin sbatch --parsable -n 3 --mem-per-cpu=200M --time=10 \
        --chdir="$WORK" --output="$WORK/cancel-%j.out" "$WORK/clone/slurm/cpu.sbatch" "$WORK/job.yaml" -o "$WORK/cancel.h5"
}
ID=$(submit_cpu) || fail "sbatch (scancel case)"
for i in $(seq 1 120); do
    "$MECHDIFF" status "$WORK/cancel.h5" 2>/dev/null | grep -Eq 'stage 0: +[0-9]*[1-9][0-9]* /' && break
    case "$(job_state "$ID")" in COMPLETED|FAILED) cat "$WORK/cancel-$ID.out"; fail "job $ID ended before scancel" ;; esac
    sleep 0.25
done
scancel "$ID" || fail "scancel $ID"
for i in $(seq 1 120); do
    state=$(job_state "$ID")
    case "$state" in CANCELLED|PENDING|COMPLETED|FAILED) break ;; esac
    sleep 0.5
done
sleep 3 # a requeue (the defect) would turn CANCELLED into PENDING within this
state=$(job_state "$ID")
restarts=$(scontrol show job "$ID" 2>/dev/null | sed -n 's/.*Restarts=\([0-9]*\).*/\1/p')
cat "$WORK/cancel-$ID.out"
[ "$state" = CANCELLED ] && [ "${restarts:-0}" = 0 ] || { scancel "$ID"; fail "scancel: job $ID is $state with Restarts=$restarts (want CANCELLED, 0: not requeued)"; }
grep -q "not requeued: submit the same command again" "$WORK/cancel-$ID.out" || fail "the log does not say how to resume"
"$MECHDIFF" status "$WORK/cancel.h5" | grep -q "not finished" || fail "scancel: the job finished before it was cancelled"
ID2=$(submit_cpu) || fail "sbatch (resubmission)"
for i in $(seq 1 240); do
    state=$(job_state "$ID2")
    case "$state" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) break ;; esac
    sleep 0.5
done
[ "$state" = COMPLETED ] || { cat "$WORK/cancel-$ID2.out"; fail "resubmitted job $ID2 ended $state"; }
same_results "$WORK/ref.h5" "$WORK/cancel.h5"
echo "ok: scancel $ID left the job cancelled (not requeued); resubmitted as $ID2, resumed to the uninterrupted result"

# 2. the GPU template as an array of 2 parts, then merge.sbatch
cat > "$WORK/kn.yaml" <<YAML
name: slurm-gpu-template
models: {base: $ROOT/models/organism-base, instruct: $ROOT/models/organism-instruct}
datasets: {cities: $ROOT/data/cities.csv, harmful: $ROOT/data/harmful.csv, harmless: $ROOT/data/harmless.csv}
runtime: {backend: cuda, progress_interval: 1}
experiments:
  - kind: knowledge
    datasets: [cities]
    cross: [all]
    max_pairs: 2
  - kind: refusal          # stages 1-2 are computed by merge.sbatch's run
    n_train: 4
    n_test: 2
    max_new_tokens: 4
YAML
MECHDIFF_BACKEND=cpu $MPIRUN -np 2 "$MECHDIFF" run "$WORK/kn.yaml" -o "$WORK/kn_ref.h5" --quiet || fail "reference knowledge run"
A=$(MECHDIFF="$MECHDIFF" MECHDIFF_BACKEND=cpu sbatch --parsable --array=0-1 -n 2 --mem=1G --time=10 --chdir="$WORK" \
    --output="$WORK/gpu-%A_%a.out" "$ROOT/slurm/gpu.sbatch" "$WORK/kn.yaml" -o "$WORK/kn.h5") || fail "sbatch gpu.sbatch"
M=$(MECHDIFF="$MECHDIFF" sbatch --parsable --dependency=afterok:"$A" --mem-per-cpu=500M --time=10 --chdir="$WORK" \
    --output="$WORK/merge-%j.out" "$ROOT/slurm/merge.sbatch" "$WORK/kn.yaml" 2 "$WORK/kn.h5") || fail "sbatch merge.sbatch"
echo "submitted array $A and merge $M"
for i in $(seq 1 480); do
    state=$(scontrol show job "$M" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
    case "$state" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) break ;; esac
    sleep 0.5
done
cat "$WORK"/gpu-*.out "$WORK"/merge-*.out
[ "$state" = COMPLETED ] || { scontrol show job "$A"; scontrol show job "$M"; fail "merge job $M ended ${state:-?}"; }
grep -q "backend cpu" "$WORK"/gpu-"$A"_0.out || fail "gpu.sbatch did not take MECHDIFF_BACKEND=cpu"
scontrol show job "${A}_0" | grep -q "TresPerNode=gres:gpu:4" || { scontrol show job "${A}_0"; fail "gpu.sbatch did not ask for its 4 GPUs"; }
grep -q -- "--part 1/2" "$WORK"/gpu-"$A"_1.out || fail "array task 1 did not run part 1/2"
# the run after the merge counts the units in the file once (it said "28
# already in the file", then "resuming ...: 4 units already done": the
# current stage's only)
in_file=$(sed -n 's/.*total [0-9]* units (\([0-9]*\) already in the file).*/\1/p' "$WORK"/merge-*.out)
resumed=$(sed -n 's/.*resuming .*: \([0-9]*\) units already done.*/\1/p' "$WORK"/merge-*.out)
[ -n "$in_file" ] && [ "$in_file" = "$resumed" ] || fail "after merge: '$in_file already in the file' but resuming with '$resumed units already done'"
same_results "$WORK/kn_ref.h5" "$WORK/kn.h5"
# 3. exit statuses through srun (issue 14 item 1): a bad job file (2) and an
# output locked by another run (73) come back as srun's status
MPIFLAG=--mpi=none
srun --mpi=list 2>&1 | grep -qw pmix && MPIFLAG=--mpi=pmix
printf 'name: x\nno_such_key: 1\nexperiments: []\n' > "$WORK/badkey.yaml"
rc=0; srun $MPIFLAG -n 2 --mem-per-cpu=200M --time=2 --chdir="$WORK" "$MECHDIFF" run "$WORK/badkey.yaml" \
    -o "$WORK/bad.h5" 2> "$WORK/srun.err" || rc=$?
[ "$rc" = 2 ] || fail "srun, bad job file: status $rc (want 2): $(tail -3 "$WORK/srun.err")"
/usr/bin/python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "w"); fcntl.flock(f, fcntl.LOCK_EX); time.sleep(60)' "$WORK/busy.h5.lock" & holder=$!
sleep 0.5
rc=0; srun $MPIFLAG -n 2 --mem-per-cpu=200M --time=2 --chdir="$WORK" "$MECHDIFF" run "$WORK/job.yaml" \
    -o "$WORK/busy.h5" --quiet 2> "$WORK/srun.err" || rc=$?
kill $holder; wait $holder 2>/dev/null || true
[ "$rc" = 73 ] || fail "srun, locked output: status $rc (want 73): $(tail -3 "$WORK/srun.err")"
echo "ok: srun returns status 2 for a bad job file and 73 for a locked output ($MPIFLAG)"
echo "PASS: cpu.sbatch requeued and resumed; gpu.sbatch array + merge.sbatch equal one run"
