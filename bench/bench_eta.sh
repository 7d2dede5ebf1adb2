#!/usr/bin/env bash
# How well a run's ETA predicts its end: one job with every costly kind on
# the shipped pair (knowledge, truth, refusal, confidence; about 40 s on one
# CPU rank), run once with progress lines every second. For every line but
# the last, the time really left (the last line's stamp minus this line's)
# against the ETA the line printed (cost left / cost per second of the last
# 32 units, src/runner/progress.c) and the ETA a unit rate gives from the
# same line ((total - done) units / its units per second, what progress
# printed before unit costs). Prints each line and the mean |ETA - real| of
# both; one run, so the two are measured on the same units and timings.
# Stamps have 1 s resolution, and the organism's units are small (start-up
# and per-call overheads weigh more than at 8B widths, where the costs'
# FLOP counts hold better).
#   bench/bench_eta.sh BUILD_DIR [WORK_DIR=mktemp]
set -euo pipefail
BUILD=${1:?build dir}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=${2:-$(mktemp -d)}; trap 'rm -rf "$T"' EXIT
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 MECHDIFF_PROGRESS=lines
cat > "$T/job.yaml" <<YAML
name: bench-eta
seed: 1
models: {base: $ROOT/models/organism-base, instruct: $ROOT/models/organism-instruct}
datasets: {cities: $ROOT/data/cities.csv, sp_en_trans: $ROOT/data/sp_en_trans.csv,
           harmful: $ROOT/data/harmful.csv, harmless: $ROOT/data/harmless.csv}
runtime: {progress_interval: 1}
experiments:
  - {kind: knowledge, datasets: [cities], max_pairs: 96, pair_block: 4}
  - {kind: truth, train_datasets: [sp_en_trans], test_datasets: [cities], max_statements: 320}
  - {kind: refusal, n_train: 64, n_test: 48, templates: {base: base, instruct: chat}}
  - {kind: confidence, prompts: cities, max_prompts: 256}
YAML
echo "machine load: $(cut -d' ' -f1-3 /proc/loadavg) (wall-clock ETAs: compare runs at the same load)"
"$BUILD/mechdiff" run "$T/job.yaml" -o "$T/out.h5" 2> "$T/log"
grep "units per experiment" "$T/log"
/usr/bin/python3 - "$T/log" <<'PY'
import datetime, re, sys
def secs(t):
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(\d+)s", t)
    return None if not m else int(m.group(1) or 0) * 3600 + int(m.group(2) or 0) * 60 + int(m.group(3))
LINE = (r"mechdiff: (\S+) bench-eta: (\d+)/(\d+) units \(([\d.]+)%\), ([\d.]+)% of the work, ([\d.]+) "
        r"units/(s|min|h), ETA (.*)$")
rows = []
for l in open(sys.argv[1]):
    m = re.match(LINE, l.strip())
    if not m: continue
    t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%SZ").timestamp()
    rate = float(m.group(6)) / {"s": 1, "min": 60, "h": 3600}[m.group(7)]
    left = int(m.group(3)) - int(m.group(2))
    rows.append((t, secs(m.group(8)), left / rate if rate > 0 else None, m.group(4), m.group(5)))
end = rows[-1][0]
err = {"cost": [], "unit": []}
print(" real left  units done  work done  ETA by cost  ETA by unit rate")
for t, by_cost, by_unit, up, wp in rows[:-1]:
    if by_cost is None or by_unit is None: continue
    err["cost"].append(abs(by_cost - (end - t)))
    err["unit"].append(abs(by_unit - (end - t)))
    print(f"{end - t:9.0f}s  {up:>9}%  {wp:>8}%  {by_cost:10.0f}s  {by_unit:15.0f}s")
n = len(err["cost"])
mc, mu = sum(err["cost"]) / n, sum(err["unit"]) / n
print(f"{n} progress lines over {end - rows[0][0]:.0f} s: mean |ETA - real| by cost {mc:.1f} s, by unit rate "
      f"{mu:.1f} s (ratio {mu / mc if mc else float('inf'):.2f})")
PY
