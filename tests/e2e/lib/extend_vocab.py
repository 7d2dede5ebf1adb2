#!/usr/bin/env python3
"""extend_vocab.py — sourced by tests (lib/ is outside the ctest glob): a
post-trained-like copy of a model folder whose vocabulary has tokens
appended, as fine-tuning recipes do (a pad token, ChatML markers): the
added_tokens of tokenizer.json get the new tokens after the last id, the
embedding and lm_head rows grow to config.json's new vocab_size (rounded up
to a multiple of --pad-to, the rows past the tokenizer being padding, as
resize_token_embeddings(pad_to_multiple_of=...) leaves them), and every
other file is copied.

    extend_vocab.py SRC OUT [--tokens A,B,...] [--pad-to M]

New rows hold the mean of the existing rows (what transformers' mean
resizing starts from), in the checkpoint's dtype (F32, F16 or BF16). One
model.safetensors only (the shipped organism and make-model folders)."""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np


def to_f32(raw, dtype, shape):
    if dtype == "F32":
        return np.frombuffer(raw, "<f4").reshape(shape)
    if dtype == "F16":
        return np.frombuffer(raw, "<f2").astype(np.float32).reshape(shape)
    if dtype == "BF16":
        return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)
    sys.exit(f"extend_vocab: dtype {dtype} is not handled")


def from_f32(x, dtype):
    x = np.ascontiguousarray(x, np.float32)
    if dtype == "F32":
        return x.astype("<f4").tobytes()
    if dtype == "F16":
        return x.astype("<f2").tobytes()
    u = x.view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2").tobytes()  # round to nearest even


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--tokens", default="<|im_start|>,<|im_end|>,<pad>")
    ap.add_argument("--pad-to", type=int, default=1)
    a = ap.parse_args()
    tokens = [t for t in a.tokens.split(",") if t]
    os.makedirs(a.out, exist_ok=True)
    for name in os.listdir(a.src):
        if name not in ("tokenizer.json", "config.json", "model.safetensors"):
            shutil.copy(os.path.join(a.src, name), a.out)

    tok = json.load(open(os.path.join(a.src, "tokenizer.json")))
    n_tok = 1 + max(list(tok["model"]["vocab"].values()) + [t["id"] for t in tok["added_tokens"]])
    for k, content in enumerate(tokens):
        tok["added_tokens"].append(dict(id=n_tok + k, content=content, single_word=False, lstrip=False,
                                        rstrip=False, normalized=False, special=True))
    json.dump(tok, open(os.path.join(a.out, "tokenizer.json"), "w"), ensure_ascii=False)

    cfg = json.load(open(os.path.join(a.src, "config.json")))
    old_v = cfg["vocab_size"]
    new_v = max(old_v, n_tok + len(tokens))
    new_v = -(-new_v // a.pad_to) * a.pad_to
    cfg["vocab_size"] = new_v
    json.dump(cfg, open(os.path.join(a.out, "config.json"), "w"), indent=2)

    raw = open(os.path.join(a.src, "model.safetensors"), "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr, base = json.loads(raw[8:8 + n]), 8 + n
    out, blobs, off = {}, [], 0
    for name, v in hdr.items():
        if name == "__metadata__":
            out[name] = v
            continue
        b = raw[base + v["data_offsets"][0]:base + v["data_offsets"][1]]
        shape = list(v["shape"])
        if name in ("model.embed_tokens.weight", "lm_head.weight"):
            assert shape[0] == old_v, (name, shape, old_v)
            w = to_f32(b, v["dtype"], shape)
            rows = np.repeat(w.mean(axis=0, keepdims=True), new_v - old_v, axis=0)
            b += from_f32(rows, v["dtype"])
            shape[0] = new_v
        out[name] = dict(dtype=v["dtype"], shape=shape, data_offsets=[off, off + len(b)])
        blobs.append(b)
        off += len(b)
    h = json.dumps(out).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


if __name__ == "__main__":
    main()
