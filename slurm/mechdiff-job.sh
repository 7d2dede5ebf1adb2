# mechdiff-job.sh — functions shared by slurm/cpu.sbatch, slurm/gpu.sbatch and
# slurm/merge.sbatch (sourced by them after they found the repository,
# MD_REPO; not a batch script itself).
#   md_find_binary   sets MECHDIFF: $MECHDIFF, else MD_REPO/build/mechdiff,
#                    else `mechdiff` on PATH; exits 2 naming the fix if none
#   md_run JOB [mechdiff run options]
#                    runs or resumes `mechdiff run` on the allocation, passes
#                    the time-limit warning on, requeues the job when mechdiff
#                    saved and stopped (exit 75) after that warning (USR1 to
#                    this script), never after a scancel (TERM); exits with
#                    mechdiff's status
# Env: MECHDIFF_LAUNCH srun | mpirun (default: srun --mpi=pmix when this Slurm
#      has the pmix plugin, else mpirun); MECHDIFF_BACKEND cpu | cuda (set by
#      the template; overrides the job's runtime.backend).

md_find_binary() {
    if [ -z "${MECHDIFF:-}" ]; then
        if [ -n "${MD_REPO:-}" ] && [ -x "$MD_REPO/build/mechdiff" ]; then
            MECHDIFF=$MD_REPO/build/mechdiff
        elif command -v mechdiff >/dev/null 2>&1; then
            MECHDIFF=$(command -v mechdiff)
        else
            echo "mechdiff-job: no mechdiff binary: not in ${MD_REPO:-<repository not found>}/build/ and not on PATH;" \
                 "submit with MECHDIFF=/path/to/mechdiff sbatch ... (docs/cluster.md)" >&2
            exit 2
        fi
    fi
    [ -x "$MECHDIFF" ] || { echo "mechdiff-job: MECHDIFF=$MECHDIFF is not an executable file" >&2; exit 2; }
    export MECHDIFF
}

md_run() {
    local JOB=${1:?usage: sbatch slurm/cpu.sbatch|gpu.sbatch JOB.yaml [mechdiff run options]}
    shift
    md_find_binary
    # The launcher: srun --mpi=pmix where this Slurm has PMIx, else mpirun.
    local LAUNCH=${MECHDIFF_LAUNCH:-} status out i
    if [ -z "$LAUNCH" ]; then
        LAUNCH=mpirun
        srun --mpi=list 2>&1 | grep -qw pmix && LAUNCH=srun
    fi

    local ARGS=("$@")
    if [ -n "${SLURM_ARRAY_TASK_ID:-}" ] && [ -n "${SLURM_ARRAY_TASK_COUNT:-}" ]; then
        # One part per array task: units u with u % N == I; outputs
        # OUT.partIofN.h5 (an explicit -o OUT.h5 becomes that too).
        local part=$((SLURM_ARRAY_TASK_ID - ${SLURM_ARRAY_TASK_MIN:-0})) count=$SLURM_ARRAY_TASK_COUNT
        for ((i = 0; i + 1 < ${#ARGS[@]}; i++)); do
            [ "${ARGS[$i]}" = "-o" ] && ARGS[$((i + 1))]="${ARGS[$((i + 1))]%.h5}.part${part}of${count}.h5"
        done
        ARGS+=(--part "$part/$count")
    fi

    echo "mechdiff-job: job ${SLURM_JOB_ID:-?} (restart ${SLURM_RESTART_COUNT:-0}) on ${SLURM_JOB_NODELIST:-$(hostname)}:" \
         "$JOB${ARGS[*]:+ ${ARGS[*]}}; $MECHDIFF via $LAUNCH, backend ${MECHDIFF_BACKEND:-as in the job}," \
         "${SLURM_NTASKS:-?} ranks x ${SLURM_CPUS_PER_TASK:-1} threads"
    case "$LAUNCH" in
        srun) srun --mpi=pmix --kill-on-bad-exit=1 "$MECHDIFF" run "$JOB" "${ARGS[@]}" & ;;
        mpirun) mpirun "$MECHDIFF" run "$JOB" "${ARGS[@]}" & ;;
        *) echo "mechdiff-job: MECHDIFF_LAUNCH must be srun or mpirun, not '$LAUNCH'" >&2; exit 2 ;;
    esac
    MD_CHILD=$!

    # The time-limit warning (--signal=B:USR1@120, or scancel --signal=USR1
    # --batch): pass it on, and requeue once mechdiff saved (below). srun and
    # mpirun both forward SIGUSR1 to every rank. A TERM (scancel, preemption)
    # also saves, but the job then stays cancelled: never requeue it.
    MD_STOP=""
    trap 'MD_STOP=${MD_STOP:-USR1}; echo "mechdiff-job: time-limit warning (USR1): saving, then requeueing"; kill -USR1 "$MD_CHILD" 2>/dev/null' USR1
    trap 'MD_STOP=TERM; echo "mechdiff-job: TERM (scancel?): saving, not requeueing"; kill -USR1 "$MD_CHILD" 2>/dev/null' TERM
    while :; do
        wait "$MD_CHILD"
        status=$?
        kill -0 "$MD_CHILD" 2>/dev/null || break # wait was interrupted by the trap: wait again
    done

    if [ "$status" -eq 75 ]; then
        # Requeue only for the time-limit warning this script received, and
        # not when the job is being cancelled (state CANCELLED or COMPLETING):
        # `scancel JOBID` signals the ranks (they save and exit 75), this
        # script not always, and Slurm lets a cancelled job be requeued.
        local state
        state=$(scontrol show job "${SLURM_JOB_ID:-none}" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -1)
        if [ "$MD_STOP" = USR1 ] && { [ "$state" = RUNNING ] || [ -z "$state" ]; }; then
            echo "mechdiff-job: stopped and saved; requeueing ${SLURM_JOB_ID:-}"
            scontrol requeue "${SLURM_JOB_ID}" && exit 0
            echo "mechdiff-job: scontrol requeue failed; resubmit the same command to resume" >&2
        else
            echo "mechdiff-job: stopped by a signal (${MD_STOP:-to the ranks: scancel or preemption}; job ${state:-?})" \
                 "and saved; not requeued: submit the same command again to resume"
        fi
    fi
    echo "mechdiff-job: exit status $status"
    if [ "$status" -ne 0 ]; then
        # Name what was lost: the units each rank held when the job ended (a rank
        # that died was computing these); the results already written are safe.
        out=""
        for ((i = 0; i < ${#ARGS[@]}; i++)); do [ "${ARGS[$i]}" = "-o" ] && out=${ARGS[$((i + 1))]:-}; done
        [ -n "$out" ] || out=$("$MECHDIFF" validate "$JOB" 2>/dev/null | sed -n 's/.*valid; output \(.*\)$/\1/p' | head -1)
        [ -n "$out" ] && [ -e "$out" ] && "$MECHDIFF" status "$out"
    fi
    exit "$status"
}
