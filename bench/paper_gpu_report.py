#!/usr/bin/env python3
"""The figures of bench/bench_paper_gpu.sh (read its header), called by it
after every run (so a cut-off run still leaves the figures so far) as
    paper_gpu_report.py OUT_DIR MODEL_DIR
OUT_DIR holds `times` (one line per finished run: name rc wall_s pair_block
gemm_mode profiled pairs), NAME.h5 and NAME.log (the run's output with the
MECHDIFF_PROFILE summaries), peak.txt (bench_gpu --square) and
make_model.txt. Prints the figures and writes OUT_DIR/paper.json.
FLOP formulas and the study's sizes: bench/study_cost.py."""
import json
import os
import re
import sys

import h5py
import numpy as np

import study_cost

# Dense bf16 tensor-core peak of the datasheets (TFLOPS, without sparsity).
DATASHEET = (("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0), ("GH200", 989.0),
             ("A100", 312.0))

o, model = sys.argv[1], sys.argv[2]
w = study_cost.widths(model)
out = {"model": {k: w[k] for k in ("d", "ff", "L", "V")}}


def read_times():
    runs = {}
    if os.path.exists(f"{o}/times"):
        for line in open(f"{o}/times"):
            name, rc, wall, block, gemm, prof, pairs = line.split()
            runs[name] = {"rc": int(rc), "wall": float(wall), "block": int(block), "gemm": gemm,
                          "profiled": prof == "1", "pairs": int(pairs)}
    return runs


def read_peak():
    """(device name, measured TFLOPS or None, datasheet TFLOPS or None,
    the estimate from SMs x clock or None)."""
    name, measured, est = None, None, None
    if os.path.exists(f"{o}/peak.txt"):
        text = open(f"{o}/peak.txt").read()
        m = re.search(r"^GPU \d+: ([^,]+),", text, re.M)
        name = m.group(1) if m else None
        m = re.search(r"dense bf16 peak ([\d.]+) TFLOPS", text)
        est = float(m.group(1)) if m else None
        m = re.search(r"square bf16 GEMM best: ([\d.]+) TFLOPS at (\d+)", text)
        measured = float(m.group(1)) if m else None
    sheet = next((v for k, v in DATASHEET if name and k in name), None)
    return name, measured, sheet, est


def profile_of(log):
    """Totals over the run's profile json lines (one per worker backend)."""
    tot = {"window_s": 0.0, "classes": {}}
    for line in open(log, errors="replace"):
        if not line.startswith("mechdiff profile json: "):
            continue
        j = json.loads(line[len("mechdiff profile json: "):])
        tot["window_s"] = max(tot["window_s"], j["window_s"])
        tot["backend"] = j["backend"]
        for c, v in j["classes"].items():
            t = tot["classes"].setdefault(c, {"calls": 0, "seconds": 0.0, "flops": 0})
            for k in t:
                t[k] += v[k]
    return tot if tot["classes"] else None


def effects(name):
    """effect [pairs, layers, positions] and prompt_len of the run's one dataset."""
    with h5py.File(f"{o}/{name}.h5") as f:
        g = f["knowledge"][next(k for k in f["knowledge"] if "pairs" in f["knowledge"][k])]
        return g["base->base/effect"][...], g["pairs/prompt_len"][...]


runs = read_times()
dev, peak, sheet, est = read_peak()
out["device"], out["peak_measured_tflops"], out["peak_datasheet_tflops"] = dev, peak, sheet
out["peak_estimated_tflops"] = est
if os.path.exists(f"{o}/make_model.txt"):
    text = open(f"{o}/make_model.txt").read().strip()
    print(text)
    m = re.search(r" in ([\d.]+) s on (\d+) CPUs", text)
    if m:
        out["make_model_s"], out["make_model_cpus"] = float(m.group(1)), int(m.group(2))
if dev:
    print(f"device {dev}: bf16 peak measured (largest square bf16 GEMM, bench_gpu --square) "
          f"{peak if peak else float('nan'):.1f} TFLOPS; datasheet dense bf16 {sheet or float('nan'):.0f} TFLOPS"
          f"{' = ' + format(100 * peak / sheet, '.1f') + ' % of it' if peak and sheet else ''}; "
          f"estimated from SMs x clock {est or float('nan'):.0f} TFLOPS")
else:
    print("no GPU peak (BACKEND=cpu dry run, or bench_gpu --square did not run)")
res, lens_all = {}, None
for name, r in runs.items():
    if r["rc"]:
        print(f"{name}: exit {r['rc']} after {r['wall']:.1f} s (see {name}.log)")
        continue
    eff, lens = effects(name)
    P, L, N = eff.shape[0], eff.shape[1], eff.shape[-1]
    lens_all = lens if lens_all is None or len(lens) > len(lens_all) else lens_all
    cells = P * L * N
    useful = sum(study_cost.grid_flops(w, int(T), L, N) for T in lens)
    padded = study_cost.block_grid_flops(w, lens, L, N, r["block"])
    row = {"pairs": int(P), "layers": int(L), "positions": int(N), "cells": int(cells), "wall_s": r["wall"],
           "pair_block": r["block"], "gemm_mode": r["gemm"], "flops_useful": useful, "flops_padded": padded}
    head = (f"{name}: {P} pairs x {L} layers x {N} positions = {cells} cells, pair_block {r['block']}, GEMM "
            f"{r['gemm']}; prompts {lens.min()}-{lens.max()} tokens (mean {lens.mean():.1f}); {r['wall']:.1f} s wall incl. MPI start, "
            f"load and upload = {cells / r['wall']:.1f} cells/s")
    prof = profile_of(f"{o}/{name}.log") if r["profiled"] else None
    if not prof:
        print(head + ("" if not r["profiled"] else " (no profile summary in the log)"))
        res[name] = (eff, row)
        continue
    cl, win = prof["classes"], prof["window_s"]
    gemm_fl = sum(v["flops"] for k, v in cl.items() if k.startswith("gemm."))
    gemm_s = sum(v["seconds"] for k, v in cl.items() if k.startswith("gemm."))
    share = {k: v["seconds"] / win for k, v in cl.items() if k != "prepare" and win > 0}
    tf = gemm_fl / gemm_s / 1e12 if gemm_s > 0 else 0.0
    row.update({"window_s": win, "cells_per_s": cells / win if win else None, "gemm_flops": gemm_fl,
                "gemm_s": gemm_s, "gemm_tflops": tf, "share": share,
                "prepare_s": cl.get("prepare", {}).get("seconds", 0.0), "backend": prof.get("backend"),
                "grid_flops_per_s": useful / win if win else None})
    print(head)
    print(f"  grid window (first op to last op: {win:.2f} s) = {cells / win:.1f} cells/s; weight upload "
          f"{row['prepare_s']:.1f} s; time shares of the window: "
          + ", ".join(f"{k} {100 * v:.1f} %" for k, v in sorted(share.items(), key=lambda kv: -kv[1])))
    exact = "= the block formula exactly" if gemm_fl == padded else f"{gemm_fl / padded:.6f}x the block formula"
    print(f"  GEMM FLOPs counted {gemm_fl / 1e12:.4g} TFLOP {exact} (study_cost.block_grid_flops, padding rows "
          f"included; {useful / 1e12:.4g} TFLOP without the padding)")
    x3 = " useful (x3 runs 3x these on the tensor cores)" if r["gemm"] == "x3" else ""
    frac = (f" = {100 * tf / peak:.1f} % of the measured peak" if peak else "") + \
           (f", {100 * tf / sheet:.1f} % of the datasheet's" if sheet else "")
    print(f"  GEMM rate {tf:.4g} TFLOPS{x3} over {gemm_s:.2f} s of GEMMs{frac}")
    if peak:
        row["gemm_fraction_measured_peak"] = tf / peak
    if sheet:
        row["gemm_fraction_datasheet"] = tf / sheet
    res[name] = (eff, row)

if "bf16" in res and "gemm_tflops" in res["bf16"][1] and (peak or sheet):
    r = res["bf16"][1]
    f = r.get("gemm_fraction_measured_peak", r.get("gemm_fraction_datasheet"))
    print(f"goal (issue 19): GEMM fraction of bf16 peak >= 50 % in bf16 mode: {100 * f:.1f} % of the "
          f"{'measured' if peak else 'datasheet'} peak -> {'met' if f >= 0.5 else 'NOT met'}"
          + (f" ({100 * r['gemm_fraction_datasheet']:.1f} % of the datasheet's)" if peak and sheet else ""))
for a, b, what in (("bf16", "noprof", "MECHDIFF_PROFILE off vs on (bf16)"), ("bf16", "x3", "GEMM x3 vs bf16"),
                   ("bf16", "perpair", "pair_block 1 vs the default")):
    if a in res and b in res:
        ea, eb = res[a][0], res[b][0]
        n, k = min(ea.shape[0], eb.shape[0]), min(ea.shape[-1], eb.shape[-1])  # pairs; the last k positions
        ea, eb = ea[:n, ..., ea.shape[-1] - k:], eb[:n, ..., eb.shape[-1] - k:]
        d = float(np.abs(ea - eb).max())
        ra, rb = res[a][1], res[b][1]
        if "cells_per_s" in ra and "cells_per_s" in rb:
            speed = f"cells/s {rb['cells_per_s']:.1f} vs {ra['cells_per_s']:.1f} in the window"
        else:
            speed = f"wall {rb['wall_s']:.1f} s vs {ra['wall_s']:.1f} s for {rb['cells']} vs {ra['cells']} cells"
        print(f"{what}: {speed}; max |effect difference| over {n} pairs {d:.2e} (max |effect| "
              f"{float(np.abs(ea).max()):.2f})")
        out[f"{b}_vs_{a}_max_effect_diff"] = d
        out[f"{b}_vs_{a}_max_abs_effect"] = float(np.abs(ea).max())

if lens_all is not None:
    Tm, N = int(round(lens_all.mean())), res[next(iter(res))][1]["positions"]
    rows = study_cost.study(w, Tm, N, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data"))
    dry = "" if (w["d"], w["ff"]) == (4096, 14336) else " (NOT Llama-3-8B widths: a dry run of the arithmetic)"
    for name in ("bf16", "x3"):
        r = res.get(name, (None, {}))[1]
        if not r.get("grid_flops_per_s"):
            continue
        rate = r["grid_flops_per_s"]
        print(f"estimate, the whole study on one GPU in {name} GEMM mode (Llama-3.1-8B, 3 models) at this grid's "
              f"{rate / 1e12:.4g} TFLOP/s (useful GEMM FLOPs over the whole grid window); a knowledge cell at 32 "
              f"layers ~{1e3 * study_cost.cell_seconds(w, Tm, N, 1.0 / rate):.2f} ms{dry}:")
        hours = study_cost.print_study(rows, 1.0 / rate, "GPU-h", decimals=3)
        print(f" = {60 * hours:.1f} GPU-minutes")
        out[f"study_gpu_hours_{name}"] = hours
out["runs"] = {k: v[1] for k, v in res.items()}
with open(f"{o}/paper.json", "w") as f:
    json.dump(out, f, indent=1, default=float)
