#!/usr/bin/env bash
# A job split over a Slurm array: parts computed separately (one under MPI),
# merged with `mechdiff merge`, the later stage finished with `mechdiff run`
# on the merged file: the result equals a single uninterrupted run. Merging
# an incomplete set of parts is refused.
. "$(dirname "$0")/../lib.sh"
printf 'name: arr\nexperiments:\n  - {kind: selftest, units: 60, rows: 3, cols: 5, stages: 2, cost_variation: 2}\n' > "$WORK/job.yaml"
"$MECHDIFF" run "$WORK/job.yaml" -o "$WORK/whole.h5" --quiet
for i in 0 1 2; do
  if [ "$i" = 1 ]; then
    $MPIRUN -np 3 "$MECHDIFF" run "$WORK/job.yaml" --part "$i/3" -o "$WORK/part$i.h5" --quiet
  else
    "$MECHDIFF" run "$WORK/job.yaml" --part "$i/3" -o "$WORK/part$i.h5" --quiet
  fi
done
if "$MECHDIFF" merge "$WORK/bad.h5" "$WORK/part0.h5" "$WORK/part1.h5" 2> "$WORK/err"; then
  fail "merge of 2 of 3 parts accepted"
fi
cat "$WORK/err"
# a part of an older results layout (no layout_version) is not merged with this version
cp "$WORK/part2.h5" "$WORK/old2.h5"
/usr/bin/python3 -c 'import h5py, sys; del h5py.File(sys.argv[1], "a").attrs["layout_version"]' "$WORK/old2.h5"
if "$MECHDIFF" merge "$WORK/bad.h5" "$WORK/part0.h5" "$WORK/part1.h5" "$WORK/old2.h5" 2> "$WORK/err"; then
  fail "merge of a part of results layout 1 accepted"
fi
grep -q "old2.h5 was written in results layout 1" "$WORK/err" || { cat "$WORK/err"; fail "layout message"; }
"$MECHDIFF" merge "$WORK/merged.h5" "$WORK/part0.h5" "$WORK/part1.h5" "$WORK/part2.h5"
"$MECHDIFF" run "$WORK/job.yaml" -o "$WORK/merged.h5" --quiet   # the stage after the split
same_results "$WORK/whole.h5" "$WORK/merged.h5"
"$MECHDIFF" status "$WORK/merged.h5" | grep -q FINISHED || fail "merged + finished file is not FINISHED"
echo "merge: ok"
