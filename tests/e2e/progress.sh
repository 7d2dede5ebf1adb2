#!/usr/bin/env bash
# Progress of a run (issue 16 item 7), on a small job with every multi-stage
# kind on the shipped pair:
#  - the first line says what is starting: job name, each model with its
#    folder, ranks, output file; every line of the run has a UTC timestamp;
#  - the plan line gives every experiment's units per stage from the start,
#    and they are exactly the units each stage had in the end (the file's
#    /completion/<exp>/stage<s>/done lengths): every kind's estimate says
#    the planned count;
#  - progress lines keep that total, their percentages never fall, the last
#    one is 100 %; the last line says what was written (file, datasets,
#    units, wall time);
#  - the work (unit costs, progress.h "ETA by cost"): the plan line gives its
#    total, each progress line the share done, which never falls (every
#    kind's estimated cost is what its plans declare, so the total does not
#    move) and ends at 100 % with ETA 0s; before, an ETA or "unknown";
#  - with 3 ranks (mpirun): the same plan and lines, no bar;
#  - a resumed finished job says all units are already in the file;
#  - --part 0/2 counts only the part's units of the current stages;
#  - the live bar (MECHDIFF_PROGRESS=bar, and a real terminal by `script`)
#    redraws one line with \r and ends it.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
need_pair
cat > "$T/job.yaml" <<YAML
name: progress-check
seed: 1
$(job_pair cities sp_en_trans harmful harmless)
runtime: {progress_interval: 0.2}
experiments:
  - {kind: selftest, units: 7, stages: 2, sleep_ms: 20}
  - {kind: knowledge, datasets: [cities], max_pairs: 2}
  - {kind: truth, train_datasets: [sp_en_trans], test_datasets: [cities], max_statements: 24, control_directions: 1}
  - {kind: refusal, n_train: 8, n_test: 4, templates: {base: base, instruct: chat}, coefficients: {base: 4.0, instruct: 4.0}}
  - {kind: refusal_sweep, n_train: 8, n_test: 4, templates: {base: base, instruct: chat}, layers: [0, 1], positions: [-1]}
  - {kind: confidence, prompts: cities, max_prompts: 6}
  - {kind: confidence, name: confidence_static}
YAML

# check LOG OUT RANKS: the assertions on one finished run's stderr
check() {
  "$PY" - "$1" "$2" "$3" "$ROOT" <<'PY'
import re, sys, h5py
log, out, ranks, root = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
lines = open(log).read().splitlines()
def fail(msg):
    print("FAIL:", msg, "\n--- log:\n" + "\n".join(lines)); sys.exit(1)
TS = r"mechdiff: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "
first = lines[0]
if not re.match(TS + r"starting job 'progress-check' \(.*job\.yaml\) on %d rank" % ranks, first):
    fail("first line: " + first)
for m in ("base", "instruct"):
    if f" {m}={root}/models/organism-{m}" not in first: fail(f"model {m} and its folder not in the first line")
if not first.endswith("output " + out): fail("output not in the first line")
for l in lines:
    if l.startswith("mechdiff: ") and not re.match(TS, l):
        fail("line without a UTC timestamp: " + l)
if any("note:" in l for l in lines): fail("an estimate differed from the plan")
plan = [l for l in lines if "units per experiment and stage:" in l]
if len(plan) != 1: fail("no plan line")
if "?" in plan[0]: fail("a stage not sized at the start: " + plan[0])
est = {name: [int(x) for x in counts.split("+")] for name, counts in re.findall(r" (\w+)=([\d+]+)", plan[0])}
total = int(re.search(r"total (\d+) units", plan[0]).group(1))
with h5py.File(out, "r") as f:
    real = {e: [f[f"completion/{e}/stage{s}/done"].shape[0] for s in range(len(f[f"completion/{e}"]))]
            for e in f["completion"]}
if est != real: fail(f"estimated {est}, planned {real}")
if total != sum(map(sum, real.values())): fail("total is not the sum")
prog = [re.search(r"(\d+)/(\d+) units \(([\d.]+)%\)", l) for l in lines if re.match(TS + r"progress-check: \d+/", l)]
if len(prog) < 2: fail("fewer than 2 progress lines")
pct = [float(m.group(3)) for m in prog]
if any(int(m.group(2)) != total for m in prog): fail("the total changed while running")
if any(b < a for a, b in zip(pct, pct[1:])): fail(f"percentage fell: {pct}")
if pct[-1] != 100.0: fail("last progress line is not 100 %")
if not re.search(r"total \d+ units \(\d+ already in the file\), work [\d.e+]+ token passes \([\d.]+% done\)", plan[0]):
    fail("no work total in the plan line: " + plan[0])
work = [re.search(r"units \([\d.]+%\)[^,]*, ([\d.]+)% of the work, [\d.]+ units/(s|min|h), ETA (\S+)", l)
        for l in lines if re.match(TS + r"progress-check: \d+/", l)]
if not all(work): fail("a progress line without its work share or ETA")
wpct = [float(m.group(1)) for m in work]
if any(b < a for a, b in zip(wpct, wpct[1:])): fail(f"work share fell: {wpct}")
if wpct[-1] != 100.0 or work[-1].group(3) != "0s": fail("last progress line: work not 100 % or ETA not 0s")
if not all(re.fullmatch(r"(\d+h)?(\d+m)?\d+s|unknown", m.group(3)) for m in work): fail("an ETA is not a duration")
last = lines[-1]
m = re.match(TS + r"progress-check: finished: wrote (\S+) \((\d+) datasets, [\d.]+ MB\); (\d+)/(\d+) units done "
             r"\((\d+) in this run\); wall time \d", last)
if not m or m.group(1) != out or int(m.group(3)) != total or int(m.group(4)) != total: fail("last line: " + last)
print(f"{ranks} rank(s): {total} units known from the start {est}, {len(prog)} progress lines {pct[0]}..{pct[-1]} %,"
      f" work {wpct[0]}..{wpct[-1]} %")
PY
}

"$MECHDIFF" run "$T/job.yaml" -o "$T/one.h5" 2> "$T/one.log" || { cat "$T/one.log"; fail "run"; }
check "$T/one.log" "$T/one.h5" 1
grep -q $'\r' "$T/one.log" && fail "a bar on a pipe"
# status of the finished file: all the work done, as much as the plan line said (the same estimates)
work=$(grep -o 'work [0-9.e+]* token passes' "$T/one.log" | head -1 | cut -d' ' -f2)
"$MECHDIFF" status "$T/one.h5" > "$T/status" || fail "status of the finished file"
grep -q "work (the kinds' unit costs, stages planned so far): $work of $work token passes, 100.0% done\$" "$T/status" ||
  { cat "$T/status"; fail "status: work not $work token passes, all done"; }

$MPIRUN -np 3 "$MECHDIFF" run "$T/job.yaml" -o "$T/three.h5" 2> "$T/three.log" || { cat "$T/three.log"; fail "mpirun"; }
grep -v '^\[' "$T/three.log" > "$T/three.clean"   # drop launcher noise, if any
check "$T/three.clean" "$T/three.h5" 3

# resume of a finished job: everything is already in the file
"$MECHDIFF" run "$T/job.yaml" -o "$T/one.h5" 2> "$T/again.log" || { cat "$T/again.log"; fail "rerun"; }
grep -Eq 'total ([0-9]+) units \(\1 already in the file\)' "$T/again.log" || { cat "$T/again.log"; fail "resume plan line"; }
grep -q '(0 in this run)' "$T/again.log" || fail "resume last line"

# part 0 of 2: stage 0 units u with u % 2 == 0 (selftest 7 -> 4, knowledge 2 pair blocks -> 1), no later stage
"$MECHDIFF" run "$T/job.yaml" -o "$T/part.h5" --part 0/2 2> "$T/part.log" || { cat "$T/part.log"; fail "part"; }
grep -q ' selftest=4 ' "$T/part.log" || { cat "$T/part.log"; fail "part plan line"; }
grep -q 'part done: wrote' "$T/part.log" || { cat "$T/part.log"; fail "part last line"; }
# its status: the part's share of stage 0's work (about half)
"$MECHDIFF" status "$T/part.h5" > "$T/status" || fail "status of a finished part"
grep -Eq "token passes, (4[0-9]|5[0-9])\.[0-9]% done" "$T/status" || { cat "$T/status"; fail "status: work of a part"; }

# the live bar: forced, and on a real terminal (script gives the run a pty)
MECHDIFF_PROGRESS=bar "$MECHDIFF" run "$T/job.yaml" -o "$T/bar.h5" 2> "$T/bar.log" || fail "bar run"
"$PY" - "$T/bar.log" <<'PY' || fail "bar"
import re, sys
t = open(sys.argv[1], newline="").read()  # keep the \r
bar = re.findall(r"\r\[[#.]{30}\] +([\d.]+)% (\d+)/(\d+) units", t)
assert len(bar) >= 2, t
pct = [float(b[0]) for b in bar]
assert pct == sorted(pct) and pct[-1] == 100.0, pct
assert len({b[2] for b in bar}) == 1, "total changed"
assert re.search(r"\r\[#{30}\] 100\.0%[^\r\n]*\n", t), "bar line not ended"
assert re.search(r"\r\[#{30}\] 100\.0% \d+/\d+ units  work 100\.0%  [^\r\n]* ETA 0s ", t), "bar: work or ETA"
assert re.search(r"\nmechdiff: \S+ progress-check: finished: wrote", t), "last line"
print(f"bar: {len(bar)} redraws, {pct[0]}..{pct[-1]} %")
PY
if command -v script >/dev/null; then
  rm -f "$T/bar.h5"
  script -qec "'$MECHDIFF' run '$T/job.yaml' -o '$T/bar.h5'" "$T/tty.log" >/dev/null || fail "run on a pty"
  grep -q $'\r\[' "$T/tty.log" || fail "no live bar on a terminal"
  echo "terminal: live bar"
fi
echo "OK"
