#!/usr/bin/env python3
"""The knowledge grid in a Hugging Face forward-hook loop, batched per pair
(dev-only peer of bench/bench_paper_cpu.sh; needs torch + transformers).

    hf_peer_grid.py --model DIR --pairs PAIRS.json --n-toks N --ids TRUE_ID FALSE_ID
                    [--threads 1] [--out RESULT.json]

PAIRS.json: [{"true_ids": [...], "false_ids": [...]}, ...] (full prompts,
BOS included, as mechdiff tokenised them). For each pair: one run of the TRUE
prompt with forward hooks on the decoder layers caching each layer's output
(resid_post) at the last N positions, then ONE batch of n_layers x N copies
of the FALSE prompt, copy l*N + j getting the TRUE state of layer l at window
position j put into layer l's output by a forward hook; the metric is
logit(TRUE_ID) - logit(FALSE_ID) at the last position (logits_to_keep=1).
This is the usual way to do activation patching with transformers: every
cell is a full forward. Computed in float32 (weights upcast), torch threads
as given.

Prints and writes {"load_s", "grid_s", "grid_cpu_s", "pairs", "effect":
[pair][layer][pos], "flops"}: grid_s (wall) and grid_cpu_s (process CPU time)
cover the pairs' runs only (model load excluded); flops
counts the GEMM FLOPs of those runs (projections, MLP, the kept logits row).
"""
import argparse
import json
import time


def layer_output(output):
    """The hidden states in a decoder layer's output (a tensor or a tuple)."""
    return output[0] if isinstance(output, tuple) else output


def pair_grid(model, layers, pair, n_toks, tid, fid, torch):
    true_ids, false_ids = pair["true_ids"], pair["false_ids"]
    T, L, N = len(true_ids), len(layers), n_toks
    src = [None] * L

    def reader(l):
        def hook(_mod, _inp, output):
            src[l] = layer_output(output)[0, T - N:].clone()
        return hook

    handles = [layer.register_forward_hook(reader(l)) for l, layer in enumerate(layers)]
    try:
        model(torch.tensor([true_ids]), use_cache=False, logits_to_keep=1)
    finally:
        for h in handles:
            h.remove()
    cols = torch.arange(T - N, T)

    def patcher(l):
        def hook(_mod, _inp, output):
            h = layer_output(output)
            h[l * N + torch.arange(N), cols] = src[l]  # copy l*N + j: layer l, position j
            return output
        return hook

    handles = [layer.register_forward_hook(patcher(l)) for l, layer in enumerate(layers)]
    try:
        logits = model(torch.tensor([false_ids] * (L * N)), use_cache=False, logits_to_keep=1).logits[:, -1]
    finally:
        for h in handles:
            h.remove()
    return (logits[:, tid] - logits[:, fid]).reshape(L, N).tolist()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--n-toks", type=int, required=True)
    ap.add_argument("--ids", type=int, nargs=2, required=True, metavar=("TRUE_ID", "FALSE_ID"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out")
    a = ap.parse_args()
    import torch
    from transformers import AutoModelForCausalLM
    torch.set_num_threads(a.threads)
    pairs = json.load(open(a.pairs))
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
    load_s = time.perf_counter() - t0
    layers = model.model.layers
    c = model.config
    d, ff, V, L = c.hidden_size, c.intermediate_size, c.vocab_size, c.num_hidden_layers
    hd = getattr(c, "head_dim", None) or d // c.num_attention_heads
    qd, kvd = c.num_attention_heads * hd, c.num_key_value_heads * hd
    row = 2 * (d * qd + 2 * d * kvd + qd * d + 3 * d * ff)
    t0, c0 = time.perf_counter(), time.process_time()
    effect, flops = [], 0
    with torch.inference_mode():
        for p in pairs:
            effect.append(pair_grid(model, layers, p, a.n_toks, a.ids[0], a.ids[1], torch))
            runs = 1 + L * a.n_toks
            flops += runs * (len(p["true_ids"]) * L * row + 2 * d * V)
    grid_s, grid_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    res = {"load_s": load_s, "grid_s": grid_s, "grid_cpu_s": grid_cpu_s, "pairs": len(pairs), "effect": effect,
           "flops": flops,
           "threads": torch.get_num_threads()}
    print(f"hf peer: {len(pairs)} pairs, load {load_s:.1f} s, grid {grid_s:.1f} s ({grid_cpu_s:.1f} CPU s), "
          f"{flops / grid_s / 1e9:.1f} GFLOP/s ({torch.get_num_threads()} thread(s))")
    if a.out:
        json.dump(res, open(a.out, "w"))


if __name__ == "__main__":
    main()
