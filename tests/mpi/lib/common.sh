# common.sh — the old name of tests/lib.sh, for the scripts that still source
# it (tests/mpi/snapshot_kill.sh); new tests source tests/lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/../../lib.sh"
