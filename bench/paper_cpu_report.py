#!/usr/bin/env python3
"""The figures of bench/bench_paper_cpu.sh (read its header): called by it as
    paper_cpu_report.py WORK_DIR MODEL_DIR PEER_OK
WORK_DIR holds `times` (name seconds), startup.h5, batched.h5 [, perpair.h5]
[, peer.json]. FLOPs are the GEMM FLOPs of the useful rows (the left padding
of a block's shorter prompts is not counted: the rate is a lower bound).
The FLOP formulas and the study's sizes: bench/study_cost.py."""
import json
import sys
import time

import h5py
import numpy as np

import study_cost

t, model, peer_ok = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
wall, cpu = {}, {}
for line in open(f"{t}/times"):
    k, w, u, sy = line.split()
    wall[k], cpu[k] = float(w), float(u) + float(sy)
w = study_cost.widths(model)
d, ff, L, V = w["d"], w["ff"], w["L"], w["V"]
qd, kvd, ROW = w["qd"], w["kvd"], w["row"]   # ROW: GEMM FLOPs of one row through one layer


def grid_flops(T, layers, N):
    return study_cost.grid_flops(w, T, layers, N)


def naive_flops(T, layers, N):
    return study_cost.naive_flops(w, T, layers, N)


def read(name):
    with h5py.File(f"{t}/{name}.h5") as f:
        return f["knowledge/cities/base->base/effect"][...], f["knowledge/cities/pairs/prompt_len"][...]


eff, lens = read("batched")
_, lens1 = read("startup")
P, _, N = eff.shape
F = sum(grid_flops(int(T), L, N) for T in lens)
F1 = grid_flops(int(lens1[0]), L, 1)
cells = P * L * N


def net_of(times, name):
    """seconds of the grid without the start-up, and the GEMM rate: the
    start-up run (1 pair, 1 position) costs S + F1 / rate, the grid S + F / rate."""
    rate = (F - F1) / (times[name] - times["startup"])
    startup = times["startup"] - F1 / rate
    return times[name] - startup, rate, startup


net, rate, startup = net_of(cpu, "batched")
net_w, rate_w, startup_w = net_of(wall, "batched")
pad = sum(max(lens[i:i + 16]) - lens[i + k] for i in range(0, P, 16) for k in range(min(16, P - i)))
print(f"model {model}: {L} layers, d {d}, ff {ff}, vocab {V}; cities, 4 shots: prompts {lens.min()}-{lens.max()} "
      f"tokens (mean {lens.mean():.0f}), last {N} positions, every layer; 1 rank, 1 thread. "
      f"Seconds are CPU seconds (wall-clock in brackets)")
print(f"start-up (MPI, load, fp32 cache, curation) {startup:.1f} s [{startup_w:.1f}] (from a 1-pair, 1-position run "
      f"of {cpu['startup']:.1f} s [{wall['startup']:.1f}])")
print(f"grid, pair_block default: {P} pairs = {cells} cells in {cpu['batched']:.1f} s [{wall['batched']:.1f}]; net "
      f"of start-up {net:.1f} s [{net_w:.1f}] = {cells / net:.2f} cells/s [{cells / net_w:.2f}], {net / P:.1f} s per "
      f"pair; {F / 1e9:.0f} GFLOP (left padding adds {100 * pad / lens.sum():.1f} % rows to the clean runs, not counted)")
if "perpair" in cpu:
    net1, _, _ = net_of(cpu, "perpair")
    net1_w, _, _ = net_of(wall, "perpair")
    print(f"grid, pair_block 1 (one pair per unit): {cpu['perpair']:.1f} s [{wall['perpair']:.1f}]; net {net1:.1f} s "
          f"[{net1_w:.1f}] = {cells / net1:.2f} cells/s -> batching across pairs: {net1 / net:.2f}x "
          f"[{net1_w / net_w:.2f}x]")
    e1, _ = read("perpair")
    print(f"  max |effect(pair_block default) - effect(pair_block 1)| {np.abs(eff - e1).max():.2e} "
          f"(max |effect| {np.abs(e1).max():.2f})")

for name in sorted((k for k in cpu if k.startswith("block")), key=lambda k: int(k[5:])):
    nb, _, _ = net_of(cpu, name)
    eb, _ = read(name)
    print(f"grid, pair_block {name[5:]}: net {nb:.1f} s = {cells / nb:.2f} cells/s ({nb / net:.2f}x the default's "
          f"time); max |effect - effect(default)| {np.abs(eb - eff).max():.2e}")

res = {}
for rows in (64, 256, 1024):
    x = np.random.standard_normal((rows, d)).astype(np.float32)
    ws = [np.random.standard_normal((d, n)).astype(np.float32) for n in (qd, kvd, kvd, d, ff, ff)]
    wd = np.random.standard_normal((ff, d)).astype(np.float32)
    xf = np.random.standard_normal((rows, ff)).astype(np.float32)
    s, n = time.process_time(), 0
    while time.process_time() - s < 2.0:
        for w in ws:
            x @ w
        xf @ wd
        n += 1
    res[rows] = n * rows * ROW / (time.process_time() - s)
print(f"GEMM rate of the grid {rate / 1e9:.1f} GFLOP/s per CPU second [{rate_w / 1e9:.1f} per wall second] = {rate / res[64]:.2f} / {rate / res[256]:.2f} / "
      f"{rate / res[1024]:.2f} of plain sgemm on the layer's shapes at 64 / 256 / 1024 rows "
      f"({res[64] / 1e9:.1f} / {res[256] / 1e9:.1f} / {res[1024] / 1e9:.1f} GFLOP/s; goal >= 0.7 of 1024 rows: "
      f"{'met' if rate >= 0.7 * res[1024] else 'NOT met'})")
Fn = sum(naive_flops(int(T), L, N) for T in lens)
print(f"FLOPs naive / mechdiff: {Fn / F:.1f}x ({Fn / 1e12:.1f} vs {F / 1e12:.2f} TFLOP)")

if peer_ok:
    pj = json.load(open(f"{t}/peer.json"))
    n = pj["pairs"]
    pe = np.array(pj["effect"])
    per_peer, per_md = pj["grid_cpu_s"] / n, net / P
    per_peer_w, per_md_w = pj["grid_s"] / n, net_w / P
    d_eff = np.abs(pe - eff[:n]).max()
    print(f"hf peer (forward hooks, batched per pair, {pj['threads']} thread): {n} pairs, grid "
          f"{pj['grid_cpu_s']:.1f} s [{pj['grid_s']:.1f}] = {per_peer:.1f} s per pair, "
          f"{pj['flops'] / pj['grid_cpu_s'] / 1e9:.1f} GFLOP/s, "
          f"{pj['flops'] / n / 1e12:.2f} TFLOP per pair (load {pj['load_s']:.1f} s)")
    print(f"mechdiff vs peer per pair (start-up and load excluded): {per_peer / per_md:.1f}x "
          f"[wall {per_peer_w / per_md_w:.1f}x] (goal >= 10x: "
          f"{'met' if per_peer >= 10 * per_md else 'NOT met'}); max |effect difference| {d_eff:.2e} "
          f"over the {n} pairs (max |effect| {np.abs(pe).max():.2f})")

# The whole study on CPU at the measured rate (bench/study_cost.py).
Tm = int(round(lens.mean()))
s_per_flop = 1.0 / rate
cell_s = study_cost.cell_seconds(w, Tm, N, s_per_flop)
print(f"estimate, the whole study on CPU (Llama-3.1-8B, 3 models, at the grid's measured {rate / 1e9:.1f} GFLOP/s "
      f"per core; a knowledge cell at 32 layers ~{cell_s:.2f} core-s):")
core_h = study_cost.print_study(study_cost.study(w, Tm, N, f"{sys.path[0]}/../data"), s_per_flop, "core-h")
print(f" = {core_h / 15:.1f} h on a 16-core node (15 workers)")
