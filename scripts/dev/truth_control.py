#!/usr/bin/env python3
"""Random-direction control for the truth intervention (dev-only; torch).

    truth_control.py MODEL_DIR THETA.npy [COEF=10] [N=150]

THETA.npy: a truth direction as mechdiff writes it (truth/direction/<model>
of a truth job's output, saved with numpy). For N true city statements in
the study's few-shot prompt (models/organism/train.py's prompt), subtracts
COEF * theta from the residual stream after decoder layers 0 and 1 at the
statement's last two tokens and reports the true->false intervention effect
IE = (PD_int - PD) / (-1 - PD), PD = P(" TRUE") - P(" FALSE"); then the same
for five random vectors of the same norm. An effect the random vectors match
is not evidence that the model uses the direction.

Needs the dev venv (torch, transformers): /tmp/venv/bin/python.
"""
import json
import os
import sys

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "models", "organism"))
import train  # noqa: E402  (prompt format and hook helper of the organism)
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402


def main():
    mdir, theta_path = sys.argv[1], sys.argv[2]
    coef = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 150
    torch.set_grad_enabled(False)
    theta = torch.tensor(np.load(theta_path), dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(mdir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(mdir)
    world = json.load(open(os.path.join(train.DATA, "world.json")))
    rows = train.read_csv("cities")
    prefix, used = train.fewshot_prefix(world, rows)
    stmts = [s for s, label in rows if label == 1 and s not in used][:n]
    t_id = tok.encode(" TRUE", add_special_tokens=False)[0]
    f_id = tok.encode(" FALSE", add_special_tokens=False)[0]

    def mean_pd(vec):
        pds = []
        for s in stmts:
            end = len(tok(prefix + s, add_special_tokens=True)["input_ids"])
            ids = tok(prefix + s + " This statement is:", add_special_tokens=True)["input_ids"]
            hooks = []
            if vec is not None:
                def sub(h, pos=(end - 2, end - 1)):
                    h = h.clone()
                    h[0, list(pos)] -= vec
                    return h
                hooks = [train.hook_layer(model, layer, sub) for layer in (0, 1)]
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
            for h in hooks:
                h.remove()
            p = torch.softmax(logits, -1)
            pds.append(float(p[t_id] - p[f_id]))
        return float(np.mean(pds))

    clean = mean_pd(None)
    ie = lambda pd: (pd - clean) / (-1 - clean)  # noqa: E731
    norm = coef * float(theta.norm())
    print(f"{mdir}: {len(stmts)} true city statements, clean PD {clean:+.4f}")
    print(f"  minus {coef:g} x theta (norm {norm:.1f}) at layers 0-1, last two statement tokens: "
          f"IE true->false {ie(mean_pd(coef * theta)):.3f}")
    g = torch.Generator().manual_seed(0)
    for k in range(5):
        r = torch.randn(theta.shape, generator=g)
        print(f"  minus random vector #{k} of the same norm: IE {ie(mean_pd(r / r.norm() * norm)):.3f}")


if __name__ == "__main__":
    main()
