# common.sh — sourced by tests/mpi/*.sh and tests/e2e/*.sh (lib/ is outside
# the ctest glob, so this is not a test itself).
# Provides: $MECHDIFF, $WORK (scratch dir, removed at exit), mpirun settings,
# same_results A B (h5diff of everything but /provenance), fail MSG.
set -u
BUILD=${1:-build}
MECHDIFF=${MECHDIFF:-$BUILD/mechdiff}
[ -x "$MECHDIFF" ] || { echo "SKIP: $MECHDIFF not built"; exit 77; }
MECHDIFF=$(realpath "$MECHDIFF")
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
export HDF5_USE_FILE_LOCKING=FALSE
export OMPI_MCA_rmaps_base_oversubscribe=1
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mechdiff-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
MPIRUN="mpirun --oversubscribe"
fail() { echo "FAIL: $*" >&2; exit 1; }
# h5diff of all results. Excluded: /provenance (times, host, ranks) and the
# REFERENCE_LIST/DIMENSION_LIST attributes of dimension scales, which hold
# object addresses that depend on the order a file was built in, not results.
same_results() {
    local ex
    ex=$(/usr/bin/python3 - "$1" <<'PY'
import sys, h5py
out = []
def visit(name, obj):
    if isinstance(obj, h5py.Dataset) and ("REFERENCE_LIST" in obj.attrs or "DIMENSION_LIST" in obj.attrs):
        out.append("--exclude-attribute /" + name)
with h5py.File(sys.argv[1], "r") as f:
    f.visititems(visit)
print(" ".join(out))
PY
) || fail "cannot list $1"
    h5diff --exclude-path /provenance $ex "$1" "$2" >/dev/null || { h5diff --exclude-path /provenance $ex "$1" "$2" | head -20; fail "$1 and $2 differ"; }
}
# kill -9 of a whole job: the process group of $1 and every descendant (mpirun
# puts its ranks in process groups of their own).
kill_job() {
    local pids="$1" more
    more=$1
    while [ -n "$more" ]; do
        more=$(for p in $more; do ps -o pid= --ppid "$p" 2>/dev/null; done | tr -d ' ')
        pids="$pids $more"
    done
    kill -9 -- -"$1" $pids 2>/dev/null
}
readable() { h5dump -H "$1" >/dev/null 2>&1 || fail "$1 is not a readable HDF5 file"; }
