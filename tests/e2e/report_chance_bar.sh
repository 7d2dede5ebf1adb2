#!/usr/bin/env bash
# report_chance_bar.sh — the confidence section's overlap figure at real
# widths. Its grey bar is the chance overlap of two random top-k sets of the
# kept neurons: the hypergeometric mean with its central 95 % range. From
# about 3700 kept neurons on (k 10) the mean lies above that range (Qwen2.5-7B:
# 18944 neurons, 4736 above the 75th percentile: mean 0.021, range [0, 0];
# Llama-3.1-70B, 28672 neurons, too), and matplotlib refused the negative
# error bar, so analysis/report.py skipped the whole confidence section of
# such models ("'yerr' must not contain negative values"; found running the
# report on two make-model checkpoints of Qwen2.5-7B widths). The figure must be written, its bar clipped at the
# mean.
set -euo pipefail
PY=${PYTHON:-/usr/bin/python3}
"$PY" -c "import numpy, matplotlib" 2>/dev/null || { echo "SKIP: $PY lacks numpy/matplotlib"; exit 77; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$PY" - "$TMP" <<'PY'
import os, sys
sys.path.insert(0, "analysis")
import confidence, stats
out = sys.argv[1]
pairs = []
for pool, k in ((4736, 10), (7168, 10), (3584, 10), (40, 10)):   # Qwen2.5-7B, Llama-3.1-70B, -8B, a small model
    chance, crange = stats.chance_overlap(pool, k)
    pairs.append(dict(a="base", b="instruct%d" % pool, overlap=3, chance=chance, chance_range=crange))
mean, (lo, hi) = pairs[0]["chance"], pairs[0]["chance_range"]
if not (hi < mean):
    sys.exit("FAIL: the Qwen2.5-7B case no longer has its mean %g above its range [%d, %d]" % (mean, lo, hi))
rel = confidence._overlap_figure(pairs, 10, "confidence", out)
if not os.path.getsize(os.path.join(out, rel)):
    sys.exit("FAIL: empty overlap figure")
print("PASS: overlap figure with chance %.3f [%d, %d] written" % (mean, lo, hi))
PY
