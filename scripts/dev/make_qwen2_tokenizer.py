#!/usr/bin/env python3
"""make_qwen2_tokenizer.py — dev-only: a real-vocabulary Qwen2 tokenizer.json
from a Qwen `qwen.tiktoken` rank file (151 643 byte-level BPE tokens, the
vocabulary Qwen2/2.5 share with Qwen-7B), in the configuration transformers'
Qwen2Converter writes (NFC, the Qwen2 split regex, ByteLevel), with merges
derived from the ranks as transformers' TikTokenConverter derives them and
Qwen2's special tokens <|endoftext|>, <|im_start|>, <|im_end|> (151643-5).

The file is not committed (third-party vocabulary, 7 MB); it serves to check
mechdiff on a real vocabulary:

    /tmp/venv/bin/python scripts/dev/make_qwen2_tokenizer.py QWEN_TIKTOKEN OUTDIR
    /tmp/venv/bin/python scripts/dev/make_tokenizer_golden.py --skip-synthetic \
        --model-dir OUTDIR --model-name qwen2-real --out /tmp/goldens
"""
import base64
import json
import os
import sys

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def main():
    src, out = sys.argv[1], sys.argv[2]
    ranks = {}
    for line in open(src, "rb"):
        if line.strip():
            tok, rank = line.split()
            ranks[base64.b64decode(tok)] = int(rank)
    enc = bytes_to_unicode()
    s = lambda b: "".join(enc[c] for c in b)  # noqa: E731
    vocab, merges = {}, []
    for token, rank in ranks.items():
        vocab[s(token)] = rank
        local = [(token[:i], token[i:], rank) for i in range(1, len(token))
                 if token[:i] in ranks and token[i:] in ranks]
        merges.extend(sorted(local, key=lambda x: (ranks[x[0]], ranks[x[1]])))
    merges.sort(key=lambda m: m[2])
    tok = Tokenizer(models.BPE(vocab, [(s(a), s(b)) for a, b, _ in merges], fuse_unk=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")])
    os.makedirs(out, exist_ok=True)
    tok.save(os.path.join(out, "tokenizer.json"))
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": None, "eos_token": "<|im_end|>"}, f)
    print(f"{out}/tokenizer.json: {tok.get_vocab_size()} tokens, {len(merges)} merges", file=sys.stderr)


if __name__ == "__main__":
    main()
