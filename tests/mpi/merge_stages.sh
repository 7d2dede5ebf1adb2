#!/usr/bin/env bash
# merge checks each part's datasets against part 0's once per experiment
# (cmd_merge.c), whatever number of stages the part carries: parts with
# several stages (made here by copying stage 0's completion, as a runner
# never writes them: a part stops at the first stage it cannot finish alone)
# merge to every stage complete, each stage's units the same as the plain
# merge's; a part whose dataset of the second experiment differs in shape is
# still refused, naming the part and the dataset.
. "$(dirname "$0")/../lib.sh"
printf 'name: st\nexperiments:\n  - {name: a, kind: selftest, units: 12, rows: 2, cols: 3, stages: 2}\n  - {name: b, kind: selftest, units: 12, rows: 2, cols: 3, stages: 2}\n' > "$WORK/job.yaml"
for i in 0 1 2; do
  "$MECHDIFF" run "$WORK/job.yaml" --part "$i/3" -o "$WORK/part$i.h5" --quiet
  cp "$WORK/part$i.h5" "$WORK/multi$i.h5"
done
"$MECHDIFF" merge "$WORK/plain.h5" "$WORK/part0.h5" "$WORK/part1.h5" "$WORK/part2.h5" > /dev/null
# stages 1..3 of every part: copies of its stage 0
$PY - "$WORK"/multi*.h5 <<'PY' || fail "cannot add stages"
import sys, h5py
for path in sys.argv[1:]:
    with h5py.File(path, "a") as f:
        for exp in f["completion"]:
            for s in (1, 2, 3):
                f["completion"][exp].copy("stage0", "stage%d" % s)
PY
"$MECHDIFF" merge "$WORK/multi.h5" "$WORK/multi0.h5" "$WORK/multi1.h5" "$WORK/multi2.h5" > "$WORK/out" \
  || fail "merge of parts with 4 stages: $(cat "$WORK/out")"
grep -q "then the 64 units of the other 2" "$WORK/out" || fail "units copied: $(cat "$WORK/out")"
$PY - "$WORK/plain.h5" "$WORK/multi.h5" <<'PY' || fail "merged stages differ"
import sys, h5py
import numpy as np
with h5py.File(sys.argv[1], "r") as plain, h5py.File(sys.argv[2], "r") as multi:
    for exp in ("a", "b"):
        want = plain["completion/%s/stage0/done" % exp][...]
        assert want.all(), "plain merge: %s stage 0 not complete" % exp
        for s in range(4):
            got = multi["completion/%s/stage%d/done" % (exp, s)][...]
            assert np.array_equal(got, want), "%s stage %d done flags %s" % (exp, s, got)
        for name in ("values", "checksum", "label"):
            assert np.array_equal(plain[exp][name][...], multi[exp][name][...]), "%s/%s" % (exp, name)
PY
# the check still runs for every part and experiment: part 2's b/checksum made shorter
$PY - "$WORK/multi2.h5" <<'PY' || fail "cannot edit part 2"
import sys, h5py
with h5py.File(sys.argv[1], "a") as f:
    del f["b/checksum"]
    f["b"].create_dataset("checksum", data=list(range(11)), dtype="i8")
PY
expect_status 1 "multi2.h5: dataset /b/checksum is missing or differs from the one of .*multi0.h5" \
  "$MECHDIFF" merge "$WORK/bad.h5" "$WORK/multi0.h5" "$WORK/multi1.h5" "$WORK/multi2.h5"
[ ! -e "$WORK/bad.h5" ] || fail "a refused merge left bad.h5"
echo "merge_stages: ok"
