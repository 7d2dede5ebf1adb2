"""report_stats.py RESULTS.h5 — the report's intervals are intervals of the
numbers mechdiff wrote: the statistics the bootstrap resamples, recomputed
from the stored per-statement / per-prompt data, equal the file's values
(truth: IE per direction and probe accuracy; refusal: the score as
refusals / n; refusal and truth cosines), each interval brackets its value,
and the same seed gives the same interval. Run by tests/e2e/quickstart.sh."""
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "analysis"))
import mdread  # noqa: E402
import refusal  # noqa: E402
import stats  # noqa: E402
import truth  # noqa: E402

f = h5py.File(sys.argv[1], "r")
fails = []
opts = {"boot": 300, "seed": 7}
for name, g in mdread.experiment_groups(f, "truth"):
    roles = mdread.axis_labels(g["accuracy"], "source")
    conds = mdread.axis_labels(g["pd"], "condition")
    for a, src in enumerate(roles):
        for b, tgt in enumerate(roles):
            ok = truth.probe_correct(g, src, tgt, "cities")
            if abs(ok.mean() - g["accuracy"][a, b, 0]) > 1e-12:
                fails.append(f"{name} probe {src}->{tgt}: {ok.mean()} vs {g['accuracy'][a, b, 0]}")
            res = truth.ie_samples(g, "cities", conds.index("dir_" + src), b, opts, "t")
            for k, (v, (lo, hi)) in enumerate(res):
                if abs(v - g["ie"][a, b, 0, k]) > 1e-9:   # PD sums in float64 vs the C code's double: 1e-9
                    fails.append(f"{name} IE {src}->{tgt} [{k}]: {v} vs {g['ie'][a, b, 0, k]}")
                if not (lo - 1e-9 <= v <= hi + 1e-9):
                    fails.append(f"{name} IE {src}->{tgt} [{k}]: {v} outside [{lo}, {hi}]")
            if res != truth.ie_samples(g, "cities", conds.index("dir_" + src), b, opts, "t"):
                fails.append(f"{name}: the same seed gave another interval")
    lo, hi = truth.cosine_ci(g, roles[0], roles[1], opts)
    if not lo <= g["cosine"][0, 1] <= hi:
        fails.append(f"{name} cosine {g['cosine'][0, 1]} outside [{lo}, {hi}]")
for name, g in mdread.experiment_groups(f, "refusal"):
    roles, rows, cos = refusal.tables(g)
    for r in rows:
        k, n = refusal.counts(g, r["set"], r["target"], r["intervention"])
        if abs(k / n - r["score"]) > 1e-12 or not r["low"] <= r["score"] <= r["high"]:
            fails.append(f"refusal {r}: {k}/{n}")
    lo, hi = refusal.cosine_ci(g, roles[0], roles[1], opts)
    if not lo <= cos[0, 1] <= hi:
        fails.append(f"refusal cosine {cos[0, 1]} outside [{lo}, {hi}]")
lo, hi = stats.wilson(0, 40)
if abs(hi - 0.0876) > 1e-3 or lo != 0.0:   # Wilson 95 % for 0/40: [0, 0.0876]
    fails.append(f"wilson(0, 40) = {lo, hi}")
if fails:
    sys.exit("FAIL: " + "; ".join(fails))
print("report_stats: the report's statistics recomputed from the stored data equal the file's values")
