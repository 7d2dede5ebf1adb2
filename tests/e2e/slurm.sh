#!/bin/bash
# slurm.sh — a one-node Slurm on localhost runs a selftest job through
# slurm/sweep.sbatch; midway the batch script gets the time-limit warning
# (scancel --signal=USR1 --batch, what --signal=B:USR1@120 delivers), mechdiff
# saves and exits 75, the script requeues the job, the job resumes; the final
# file must equal an uninterrupted run. munged, slurmctld and slurmd are
# started by this script (as root, config in a temp dir) and stopped at the end.
# The node is declared with 8 CPUs whatever the hardware (config_overrides) so
# that a 3-rank job fits on a 2-core machine.
# Exit 77 (skip) with a message when Slurm cannot start here.
. "$(dirname "$0")/../mpi/lib/common.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
skip() { echo "SKIP: $*"; exit 77; }
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
NodeName=$HOST CPUs=8 RealMemory=8000 State=UNKNOWN
PartitionName=test Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
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

# srun --mpi=pmix when it works here, else mpirun inside the allocation
LAUNCH=mpirun
srun -n1 --mpi=pmix true 2>/dev/null && LAUNCH=srun
echo "launcher: $LAUNCH"
cd "$WORK"
ID=$(MECHDIFF="$MECHDIFF" MECHDIFF_LAUNCH=$LAUNCH sbatch --parsable -n 3 -c 1 --mem-per-cpu=200M --time=10 --chdir="$WORK" \
    --output="$WORK/slurm-%j.out" "$SRC/slurm/sweep.sbatch" "$WORK/job.yaml" -o "$WORK/out.h5") || fail "sbatch"
echo "submitted job $ID"
# wait for real progress, then send the time-limit warning to the batch script
for i in $(seq 1 120); do
    scontrol show job "$ID" | grep -q "Reason=PartitionConfig" && { scontrol show job "$ID"; fail "job $ID cannot be scheduled"; }
    scontrol show job "$ID" | grep -Eq "JobState=(COMPLETED|FAILED)" && { cat "$WORK"/slurm-*.out; fail "job $ID ended before the signal"; }
    "$MECHDIFF" status "$WORK/out.h5" 2>/dev/null | grep -Eq 'stage 0: +[0-9]*[1-9][0-9]* /' && break
    sleep 0.25
done
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
same_results "$WORK/ref.h5" "$WORK/out.h5"
"$MECHDIFF" status "$WORK/out.h5"
echo "PASS: Slurm job $ID requeued $restarts time(s) and finished with the uninterrupted result"
