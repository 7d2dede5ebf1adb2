#!/usr/bin/env python3
"""Dev-only: check that transformers loads the shipped model folders and that
its logits match mechdiff's, and that both tokenizers agree.

    /tmp/venv/bin/python scripts/dev/check_organism.py [--mechdiff build/mechdiff] [MODEL_DIR ...]

For every folder (default: models/organism-base, models/organism-instruct)
and a handful of prompts (a few-shot TRUE/FALSE prompt, a chat turn, plain
text): transformers (weights loaded as float32 from the bf16 files, eager
attention) vs `mechdiff forward` (fp32 math on the same bf16-rounded
weights); prints max |d logit| per prompt (fp32 on both sides: expected
~1e-5) and whether the token ids are identical. Needs torch and transformers
(dev venv); CI never runs this — its output goes into models/organism/README.md.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROMPTS = [
    "The city of Bafai is in Dravia. This statement is: TRUE\nThe word baimeil means rain. This statement is:"
    " FALSE\nFifty-one is larger than fifty-three. This statement is:",
    "User: Explain how to bake bread.\nAssistant:",
    "<|user|>\nExplain how to steal a car.\n<|assistant|>\n",
    "Hello world, 12345 + 678 = ? caf\u00e9 \u00fcber",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=[os.path.join(ROOT, "models", "organism-base"),
                                                   os.path.join(ROOT, "models", "organism-instruct")])
    ap.add_argument("--mechdiff", default=os.path.join(ROOT, "build", "mechdiff"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    worst = 0.0
    for d in a.models:
        tok = AutoTokenizer.from_pretrained(d)
        model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
        for p in PROMPTS:
            ids = tok(p, return_tensors="pt").input_ids
            with torch.no_grad():
                ref = model(ids).logits[0].numpy()
            with tempfile.TemporaryDirectory() as t:
                out = os.path.join(t, "f.h5")
                subprocess.run([a.mechdiff, "forward", d, "--prompt", p, "-o", out], check=True)
                with h5py.File(out, "r") as f:
                    got, got_ids = f["logits"][...], f["token_ids"][...]
            same_ids = list(got_ids) == ids[0].tolist()
            diff = float(np.abs(got - ref).max()) if got.shape == ref.shape else float("inf")
            worst = max(worst, diff)
            print(f"{os.path.basename(d)}: {len(got_ids)} tokens, ids {'identical' if same_ids else 'DIFFER'}, "
                  f"max |d logit| {diff:.2e} (logit range {ref.max() - ref.min():.1f})")
    print(f"worst max |d logit| {worst:.2e}")
    return 0 if worst <= 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
