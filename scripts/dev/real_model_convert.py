#!/usr/bin/env python3
"""Dev-only: turn a GGUF checkpoint into a Hugging Face folder mechdiff loads.

Usage: real_model_convert.py MODEL.gguf OUTDIR [--dtype float32|bfloat16]
                             [--perturb SIGMA]

--perturb SIGMA multiplies every weight matrix of the transformer layers by
(1 + SIGMA * N(0, 1)) elementwise (torch seed 1): a "post-trained" stand-in
for the jobs of the real-model check.

transformers dequantises the GGUF tensors on load (Q4_1 -> float32 here), but
refuses to save_pretrained a GGUF-loaded model, so the weights are copied into
a fresh model built from the same config and that one is saved (safetensors).
The tokenizer transformers builds from the GGUF vocabulary is saved as
tokenizer.json + tokenizer_config.json (with the GGUF's chat template).
Needs torch, transformers, gguf (dev venv only; CI never runs this).
"""
import argparse
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("gguf")
    ap.add_argument("outdir")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--perturb", type=float, default=0.0)
    a = ap.parse_args()
    folder, name = os.path.split(os.path.abspath(a.gguf))
    dtype = getattr(torch, a.dtype)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name,
                                                  dtype=torch.float32)
    fresh = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    # A tied lm_head is the embedding; anything else missing is an error.
    missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        sys.exit(f"weights do not match the config: missing {missing}, "
                 f"unexpected {unexpected}")
    if a.perturb > 0:
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for name, p in fresh.named_parameters():
                if ".layers." in name and p.dim() == 2:
                    p.mul_(1 + a.perturb * torch.randn(p.shape, generator=gen))
    fresh = fresh.to(dtype)
    fresh.config.dtype = a.dtype
    # The saved weights are plain (dequantised) tensors: drop the GGUF
    # quantization_config the loaded config carries.
    if hasattr(fresh.config, "quantization_config"):
        delattr(fresh.config, "quantization_config")
    os.makedirs(a.outdir, exist_ok=True)
    fresh.save_pretrained(a.outdir, safe_serialization=True)
    tok.save_pretrained(a.outdir)
    print(f"wrote {a.outdir}: {type(fresh).__name__}, "
          f"{sum(p.numel() for p in fresh.parameters())} parameters, {a.dtype}, "
          f"tied embeddings: {fresh.config.tie_word_embeddings}, "
          f"perturbation sigma {a.perturb}")


if __name__ == "__main__":
    main()
