#!/usr/bin/env python3
"""Dev-only: compare mechdiff with transformers on a real HF checkpoint.

Usage: real_model_check.py --mechdiff BIN --model DIR --scratch DIR
           [--bf16-model DIR] [--strings cases.json] [--n-gen 32]

Checks, each printed as one line with its measured figure:
  tokenizer   ids with and without special tokens on the golden strings
  chat        one-turn --chat ids vs apply_chat_template(add_generation_prompt)
              and multi-turn / system conversations: the text transformers
              renders, tokenized by mechdiff, vs apply_chat_template's ids
  logits      max |dlogit| per prompt (fp32 weights; bf16 weights vs fp32
              transformers on the same bf16-rounded weights)
  hooks       every hook point vs forward hooks on transformers' modules
  generate    greedy continuation, token for token
Exit status 1 if any check fails. Needs torch, transformers, h5py (dev venv).
"""
import argparse
import json
import subprocess
import sys

import h5py
import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

HOOKS = ["resid_pre", "attn_out", "resid_mid", "mlp_out", "resid_post",
         "mlp_post"]
PROMPTS = [
    "The capital of France is",
    "The city of Tokyo is in Japan. This statement is:",
    "def fibonacci(n):\n    if n < 2:\n        return n\n",
    "Water boils at 100 degrees Celsius at sea level because",
    "Once upon a time, in a small village by the sea, there lived",
    "1, 2, 3, 5, 8, 13, 21,",
]
CHAT_ONE_TURN = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "How do I bake bread?",
    "Explain photosynthesis in one sentence.",
]
CONVERSATIONS = [
    [{"role": "user", "content": "Hi!"}],
    [{"role": "system", "content": "You are a terse assistant."},
     {"role": "user", "content": "Name three colours."}],
    [{"role": "user", "content": "What is 2+2?"},
     {"role": "assistant", "content": "4."},
     {"role": "user", "content": "And 3+3?"}],
    [{"role": "system", "content": "Answer in French."},
     {"role": "user", "content": "Good morning"},
     {"role": "assistant", "content": "Bonjour"},
     {"role": "user", "content": "Thank you\n\twith a tab"}],
]


def md(args, *cmd, stdin=None):
    r = subprocess.run([args.mechdiff, *cmd], input=stdin,
                       capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"mechdiff {' '.join(cmd[:3])}...: exit "
                           f"{r.returncode}: {r.stderr.decode()[-500:]}")
    return r.stdout.decode()


def md_ids(args, text, special=True):
    cmd = ["tokenize", "--json"] + ([] if special else ["--no-special"])
    out = md(args, *cmd, "--", args.model, "-", stdin=text.encode())
    return json.loads(out)["ids"]


def check_tokenizer(args, tok):
    with open(args.strings, encoding="utf-8") as f:
        cases = json.load(f)
    texts = [c["text"] if isinstance(c, dict) else c for c in
             (cases["cases"] if isinstance(cases, dict) else cases)]
    bad = 0
    for t in texts:
        for special in (True, False):
            want = tok(t, add_special_tokens=special)["input_ids"]
            got = md_ids(args, t, special)
            if got != want:
                bad += 1
                if bad <= 5:
                    print(f"  tokenizer mismatch ({special=}): {t!r}\n"
                          f"    transformers {want}\n    mechdiff     {got}")
    n = 2 * len(texts)
    print(f"tokenizer: {n - bad}/{n} encodings identical "
          f"({len(texts)} strings, with and without special tokens)")
    return bad == 0


def check_chat(args, tok):
    bad = 0
    for q in CHAT_ONE_TURN:
        want = tok.apply_chat_template([{"role": "user", "content": q}],
                                       add_generation_prompt=True,
                                       tokenize=True, return_dict=False)
        out = md(args, "tokenize", "--json", "--chat", "--", args.model, q)
        got = json.loads(out)["ids"]
        if got != want:
            bad += 1
            print(f"  chat mismatch: {q!r}\n    transformers {want}\n"
                  f"    mechdiff     {got}")
    n = len(CHAT_ONE_TURN)
    for conv in CONVERSATIONS:
        for gen in (True, False):
            text = tok.apply_chat_template(conv, add_generation_prompt=gen,
                                           tokenize=False)
            want = tok.apply_chat_template(conv, add_generation_prompt=gen,
                                           tokenize=True, return_dict=False)
            got = md_ids(args, text, special=False)
            n += 1
            if got != want:
                bad += 1
                print(f"  conversation mismatch ({gen=}): {conv}\n"
                      f"    transformers {want}\n    mechdiff     {got}")
    print(f"chat: {n - bad}/{n} prompts identical ({len(CHAT_ONE_TURN)} "
          f"one-turn --chat, {2 * len(CONVERSATIONS)} conversations with/"
          f"without system turn and generation prompt)")
    return bad == 0


def hf_forward(model, ids):
    """Logits and the six hook points of one sequence, float32 numpy."""
    acts = {h: [] for h in HOOKS}
    handles = []
    for layer in model.model.layers:
        handles.append(layer.register_forward_pre_hook(
            lambda m, a, kw: acts["resid_pre"].append(
                (a[0] if a else kw["hidden_states"])[0]), with_kwargs=True))
        handles.append(layer.self_attn.register_forward_hook(
            lambda m, a, o: acts["attn_out"].append(o[0][0])))
        handles.append(layer.post_attention_layernorm.register_forward_pre_hook(
            lambda m, a: acts["resid_mid"].append(a[0][0])))
        handles.append(layer.mlp.register_forward_hook(
            lambda m, a, o: acts["mlp_out"].append(o[0])))
        handles.append(layer.mlp.down_proj.register_forward_pre_hook(
            lambda m, a: acts["mlp_post"].append(a[0][0])))
        handles.append(layer.register_forward_hook(
            lambda m, a, o: acts["resid_post"].append(
                (o[0] if isinstance(o, tuple) else o)[0])))
    try:
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
    finally:
        for h in handles:
            h.remove()
    return (logits.float().numpy(),
            {h: torch.stack(v).float().numpy() for h, v in acts.items()})


def check_forward(args, tok, model_dir, label, tol_logit, tol_rel):
    model = AutoModelForCausalLM.from_pretrained(model_dir,
                                                 dtype=torch.float32).eval()
    ok = True
    worst = {h: 0.0 for h in HOOKS}
    worst_logit = 0.0
    for i, p in enumerate(PROMPTS):
        ids = tok(p)["input_ids"]
        out = f"{args.scratch}/forward_{label}_{i}.h5"
        md(args, "forward", model_dir, "--ids", ",".join(map(str, ids)),
           "--hooks", ",".join(HOOKS), "-o", out)
        logits, acts = hf_forward(model, ids)
        with h5py.File(out, "r") as f:
            d = float(np.abs(f["logits"][...] - logits).max())
            worst_logit = max(worst_logit, d)
            amax = float(np.abs(logits).max())
            print(f"  {label} prompt {i} ({len(ids)} tokens): max|dlogit| "
                  f"{d:.3g} (max|logit| {amax:.3g}); argmax equal: "
                  f"{bool((f['logits'][...].argmax(-1) == logits.argmax(-1)).all())}")
            for h in HOOKS:
                a = f["acts"][h][...]
                if a.shape != acts[h].shape:
                    print(f"  {label} {h}: shape {a.shape} != {acts[h].shape}")
                    ok = False
                    continue
                # per layer: max |d| over max |a| of that layer
                scale = np.abs(acts[h]).reshape(len(a), -1).max(1)
                rel = (np.abs(a - acts[h]).reshape(len(a), -1).max(1)
                       / np.maximum(scale, 1e-30))
                worst[h] = max(worst[h], float(rel.max()))
    ok = ok and worst_logit <= tol_logit and max(worst.values()) <= tol_rel
    print(f"logits {label}: max|dlogit| over {len(PROMPTS)} prompts "
          f"{worst_logit:.3g} (bound {tol_logit:g}): "
          f"{'ok' if worst_logit <= tol_logit else 'FAIL'}")
    print(f"hooks {label}: worst per-layer max|d|/max|a| "
          + ", ".join(f"{h} {v:.2g}" for h, v in worst.items())
          + f" (bound {tol_rel:g}): "
          + ("ok" if max(worst.values()) <= tol_rel else "FAIL"))
    return ok, model


def check_generate(args, tok, model):
    bad = 0
    cases = [("prompt", p) for p in PROMPTS[:4]] + \
            [("chat", q) for q in CHAT_ONE_TURN]
    for mode, text in cases:
        if mode == "prompt":
            ids = tok(text)["input_ids"]
        else:
            ids = tok.apply_chat_template([{"role": "user", "content": text}],
                                          add_generation_prompt=True,
                                          tokenize=True, return_dict=False)
        out = md(args, "generate", args.model, "--ids",
                 ",".join(map(str, ids)), "-n", str(args.n_gen), "--ids-out")
        got = [int(x) for x in out.replace(",", " ").split()]
        with torch.no_grad():
            seq = model.generate(torch.tensor([ids]), do_sample=False,
                                 max_new_tokens=args.n_gen,
                                 eos_token_id=tok.eos_token_id,
                                 pad_token_id=tok.eos_token_id)[0]
        want = seq[len(ids):].tolist()
        if got != want:  # both include the EOS that stops them
            bad += 1
            print(f"  generate mismatch ({mode}) {text!r}:\n"
                  f"    transformers {want}\n    mechdiff     {got}")
        print(f"  {mode} {text[:40]!r}: {len(got)} tokens -> "
              f"{tok.decode(want)[:70]!r}")
    print(f"generate: {len(cases) - bad}/{len(cases)} greedy continuations "
          f"identical (up to {args.n_gen} new tokens)")
    return bad == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mechdiff", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--bf16-model")
    ap.add_argument("--scratch", required=True)
    ap.add_argument("--strings", required=True)
    ap.add_argument("--n-gen", type=int, default=32)
    ap.add_argument("--tol-logit", type=float, default=1e-3)
    ap.add_argument("--tol-rel", type=float, default=1e-4)
    ap.add_argument("--skip", default="", help="comma list of checks to skip")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    skip = set(args.skip.split(","))
    tok = AutoTokenizer.from_pretrained(args.model)
    ok = True
    if "tokenizer" not in skip:
        ok &= check_tokenizer(args, tok)
    if "chat" not in skip:
        ok &= check_chat(args, tok)
    model = None
    if "forward" not in skip:
        good, model = check_forward(args, tok, args.model, "fp32",
                                    args.tol_logit, args.tol_rel)
        ok &= good
        if args.bf16_model:
            good, _ = check_forward(args, tok, args.bf16_model, "bf16",
                                    args.tol_logit, args.tol_rel)
            ok &= good
    if "generate" not in skip:
        if model is None:
            model = AutoModelForCausalLM.from_pretrained(
                args.model, dtype=torch.float32).eval()
        ok &= check_generate(args, tok, model)
    print("real-model check:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
