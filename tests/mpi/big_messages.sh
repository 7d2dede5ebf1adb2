#!/usr/bin/env bash
# Large stage inputs and large results at once: rank 0 hands out stage-1
# units carrying a 32 KB stage blob (rendezvous-sized) while workers send
# 2 MB results back. A blocking send on both sides deadlocked here once;
# rank 0 now sends units non-blocking. Must finish, and equal one rank.
. "$(dirname "$0")/../lib.sh"
printf 'name: big\nexperiments:\n  - {kind: selftest, units: 24, rows: 64, cols: 4096, stages: 2}\n' > "$WORK/big.yaml"
timeout 120 $MPIRUN -np 3 "$MECHDIFF" run "$WORK/big.yaml" -o "$WORK/three.h5" 2>/dev/null || fail "3 ranks did not finish (deadlock?)"
"$MECHDIFF" run "$WORK/big.yaml" -o "$WORK/one.h5" 2>/dev/null
same_results "$WORK/one.h5" "$WORK/three.h5"
echo "big messages: ok"
