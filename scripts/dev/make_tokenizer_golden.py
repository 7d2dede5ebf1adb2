#!/usr/bin/env python3
"""make_tokenizer_golden.py — dev-only generator of the tokenizer goldens.

Builds small tokenizer.json files with the Hugging Face `tokenizers` library
and records, for a few hundred tricky strings, the ids HF produces (with and
without special tokens) and the decoded texts. tests/unit/test_tokenizer.c
checks mechdiff's C tokenizer against them.

Needs the dev venv (tokenizers); CI never runs this, the outputs are committed.

    /tmp/venv/bin/python scripts/dev/make_tokenizer_golden.py
    # also pin a real model's tokenizer (files are not copied; the C test
    # skips the set when the directory is absent or its tokenizer.json no
    # longer has the recorded sha256):
    /tmp/venv/bin/python scripts/dev/make_tokenizer_golden.py \
        --model-dir models/organism-base --model-name organism-base

Outputs (deterministic):
    tests/golden/tokenizers/bytelevel/      Llama-3-style byte-level BPE
    tests/golden/tokenizers/bytelevel-qwen2/  Qwen2 style: NFC, Qwen2 split regex
    tests/golden/tokenizers/bytelevel-neox/   GPT-NeoX / OLMo-2 style: NFC, ByteLevel regex
    tests/golden/tokenizers/bytelevel-digits/ SmolLM2 style: Digits + ByteLevel
    tests/golden/tokenizers/gemma/          Gemma style: Replace normaliser, Split
                                            MergedWithPrevious, byte fallback
    tests/golden/tokenizers/split-*/        the other Split behaviours and invert
    tests/golden/tokenizers/sentencepiece/  Llama-2-style BPE, byte fallback,
                                            Prepend/Replace normalizer
    tests/golden/tokenizers/metaspace/      same model, Metaspace pre-tokenizer
                                            and decoder (newer SP files)
each with tokenizer.json, tokenizer_config.json and cases.json.
"""
import argparse
import hashlib
import json
import os
import random
import sys

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from tokenizers import AddedToken

LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

LLAMA3_TEMPLATE = ("{% set loop_messages = messages %}{% for message in loop_messages %}"
                   "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
                   "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
                   "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
                   "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")
LLAMA2_TEMPLATE = ("{% if messages[0]['role'] == 'system' %}{% set system_message = '<<SYS>>\\n' + "
                   "messages[0]['content'] | trim + '\\n<</SYS>>\\n\\n' %}{% endif %}"
                   "{% for message in messages %}{% if message['role'] == 'user' %}"
                   "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% endif %}{% endfor %}")

WORDS = {
    "en": "the quick brown fox jumps over lazy dog it's they're we'll I'm you've she'd don't "
          "model language training data weights layer attention truth refusal because however "
          "Hello World THE TRUE FALSE answer question statement is was are were".split(),
    "de": "der die das Straße Größe Mädchen über schön Fußball Äpfel Öl müssen".split(),
    "fr": "le la les être à côté élève garçon où déjà français naïve".split(),
    "ru": "привет мир это модель язык правда ложь Москва хорошо".split(),
    "el": "γειά σου κόσμε αλήθεια ψέμα Αθήνα".split(),
    "zh": "你好 世界 模型 语言 真 假 北京 中文 训练".split(),
    "ja": "こんにちは 世界 東京 カタカナ ひらがな 日本語".split(),
    "ar": "مرحبا بالعالم صحيح خطأ".split(),
    "hi": "नमस्ते दुनिया सत्य".split(),
    "ko": "안녕하세요 세계 한국어".split(),
    "sym": "123 4567 2025 3.14 1,000 $5 100% #tag @user (a) [b] {c} a+b=c x*y -> <= >= == != ; : ! ? ... -- 🙂 👍 🎉".split(),
}

TRICKY = [
    "", " ", "  ", "\t", "\n", "\n\n", "\n\n\n\n", "\r\n", "\r\n\r\n", " \n ", "a\tb", "a \t b",
    "Hello world", " Hello world", "  Hello  world  ", "Hello world ", "hello\nworld", "hello\r\nworld",
    "The answer is: TRUE", "The answer is: FALSE", " TRUE", " FALSE", "TRUE", "true", "True",
    "it's", "It'S", "they're here", "THEY'RE HERE", "we'll", "WE'LL", "I'm", "you've", "she'd", "don't",
    "it 's", "'s", "''", "'", "\"quoted\"", "rock 'n' roll",
    "1", "12", "123", "1234", "12345", "123456789", "3.14159", "1,000,000", "0x1F", "v2.0.1", "2025-01-31",
    "a1b2c3", "abc123def", "   123", "x = 42;", "if (x) { return y; }", "def f(x):\n    return x * 2\n",
    "    indented", "\tdeep\t\ttabs", "trailing spaces   ", "spaces   \n   newline",
    "Straße", "Größe über schön", "côté élève déjà", "naïve café", "привет, мир!", "Привет Мир",
    "γειά σου κόσμε", "你好，世界！", "北京是中国的首都。", "こんにちは世界", "カタカナとひらがな",
    "مرحبا بالعالم", "नमस्ते दुनिया", "안녕하세요 세계", "עברית", "ไทย", "Ελληνικά και English",
    "🙂", "👍🏽", "🎉🎉🎉", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "family: 👨‍👩‍👧", "flags 🇩🇪🇫🇷", "a🙂b",
    "ꙮ rare", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "ᚠᚢᚦᚨᚱᚲ", "Ω≈ç√∫", "∑∏∆", "\u00a0nbsp\u00a0", "zero\u200bwidth", "\u3000ideographic space",
    "mixedCASEword", "camelCaseIdentifier", "SHOUTING WORDS", "ALLCAPS123", "snake_case_name",
    "https://example.com/path?q=1&r=2", "user@example.com", "C:\\Windows\\path", "<html><body>x</body></html>",
    "!!!", "???", "...", "----", "====", "a--b", "(((nested)))", "#!/bin/sh", "$$$", "%d %s",
    "User: Is the sky blue?\nAssistant:", "[INST] What is 2+2? [/INST]", "<|user|>\nhi\n<|assistant|>\n",
    "<s>", "</s>", "<unk>", "<s>hello</s>", "a <s> b", "<0x41>", "▁", "▁▁x", "▁hello",
    "<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
    "text<|eot_id|>more", " <|eot_id|> ", "<|eot_id|><|eot_id|>", "<|notatoken|>", "<|eot_id",
    "<custom>", "x<custom>y", " <custom> ", "<custom><custom>",
    # NUL bytes (U+0000) are ordinary characters (issue 14): never cut the text there.
    "\0null", "\0", "a\0b", "x \0 y", "\0\0", "end\0",
    # Unicode normalisation (NFC in Qwen2 / GPT-NeoX files): decomposed, compatibility, Hangul jamo.
    "cafe\u0301", "A\u030angstro\u0308m", "\ufb01ne \u2460 \uff21", "\u1100\u1161\u11a8", "e\u0301\u0301",
    # digits and separators for Digits and the Split behaviours
    "call 555-0199 now", "v1.2.3-rc4", "a, b. c! d? e", ",,..", "  lead, trail.  ",
]


def gen_text(rng, n_lines):
    langs = list(WORDS)
    lines = []
    for _ in range(n_lines):
        lang = rng.choice(langs)
        ws = [rng.choice(WORDS[lang] if rng.random() < 0.8 else WORDS[rng.choice(langs)])
              for _ in range(rng.randint(3, 14))]
        sep = rng.choice([" ", " ", " ", "  ", "\t", "\n", ", "])
        s = sep.join(ws)
        if rng.random() < 0.3:
            s = s.capitalize() + rng.choice([".", "!", "?", ":", ""])
        lines.append(s)
    return lines


def random_tricky(rng, n):
    pool = [w for ws in WORDS.values() for w in ws] + ["<|eot_id|>", "<s>", "<custom>", "\n", "\r\n", "\t", " ", "'s", "'LL", "ꙮ", "𝔘"]
    out = []
    for _ in range(n):
        k = rng.randint(1, 8)
        s = "".join(rng.choice(pool) + rng.choice(["", " ", " ", "  ", "\n", ""]) for _ in range(k))
        if rng.random() < 0.2:
            s = " " + s
        out.append(s)
    return out


def train_bytelevel(lines):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    trainer = trainers.BpeTrainer(vocab_size=1500, min_frequency=2, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(lines, trainer=trainer)
    tok.add_tokens([AddedToken("<custom>", special=False, normalized=False)])
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))]),
    ])
    # Make sure ignore_merges survives training (it is a model flag).
    j = json.loads(tok.to_str())
    j["model"]["ignore_merges"] = True
    return Tokenizer.from_str(json.dumps(j))


def train_sentencepiece(lines, metaspace):
    specials = ["<unk>", "<s>", "</s>"]
    bytes_ = ["<0x%02X>" % b for b in range(256)]
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=1800, min_frequency=2, special_tokens=specials + bytes_,
                                  limit_alphabet=300, show_progress=False)
    tok.train_from_iterator(lines, trainer=trainer)
    # Byte tokens are ordinary vocabulary entries in SentencePiece files, not added tokens.
    j = json.loads(tok.to_str())
    j["added_tokens"] = [a for a in j["added_tokens"] if a["content"] in specials]
    for a in j["added_tokens"]:
        a["normalized"] = False
    if metaspace:
        j["normalizer"] = None
        j["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
    else:
        j["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
        j["pre_tokenizer"] = None
    if True:
        # transformers' current Llama/Mistral conversions use this decoder with
        # both pre-tokenizer styles.
        j["decoder"] = {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    tok = Tokenizer.from_str(json.dumps(j))
    tok.add_tokens([AddedToken("<custom>", special=False, normalized=False)])
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", bos)])
    return tok


QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")


def train_bytelevel_style(lines, style):
    """Byte-level BPE in the configuration of a family's tokenizer.json:
    qwen2 (NFC + Qwen2 split regex + ByteLevel, as transformers' Qwen2Converter),
    neox (NFC + ByteLevel with the GPT-2 regex: GPT-NeoX / OLMo-2 style),
    digits (Digits(individual_digits) + ByteLevel: SmolLM2 / StarCoder style)."""
    tok = Tokenizer(models.BPE())
    if style == "qwen2":
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    elif style == "neox":
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
        specials = ["<|endoftext|>", "<|padding|>"]
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1500, min_frequency=2, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(lines, trainer=trainer)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def train_gemma(lines):
    """SentencePiece-style BPE as transformers' GemmaConverter writes it:
    Replace(" " -> "▁") normaliser, Split(" ", MergedWithPrevious)
    pre-tokenizer, byte fallback, decoder Replace/ByteFallback/Fuse, <bos>."""
    specials = ["<pad>", "<eos>", "<bos>", "<unk>"]
    bytes_ = ["<0x%02X>" % b for b in range(256)]
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.pre_tokenizer = pre_tokenizers.Split(" ", "merged_with_previous")
    trainer = trainers.BpeTrainer(vocab_size=1800, min_frequency=2, special_tokens=specials + bytes_,
                                  limit_alphabet=300, show_progress=False)
    tok.train_from_iterator(lines, trainer=trainer)
    j = json.loads(tok.to_str())
    j["added_tokens"] = [a for a in j["added_tokens"] if a["content"] in specials]
    for a in j["added_tokens"]:
        a["normalized"] = False
    j["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}]}
    tok = Tokenizer.from_str(json.dumps(j))
    tok.add_tokens([AddedToken("<start_of_turn>", special=True, normalized=False),
                    AddedToken("<end_of_turn>", special=True, normalized=False)])
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A <bos> $B",
                                                       special_tokens=[("<bos>", tok.token_to_id("<bos>"))])
    return tok


# Split behaviours (and invert) on top of the qwen2 model's vocabulary.
SPLIT_VARIANTS = {
    "split-removed": {"behavior": "Removed", "invert": False},
    "split-merged-next": {"behavior": "MergedWithNext", "invert": False},
    "split-contiguous": {"behavior": "Contiguous", "invert": False},
    "split-merged-previous-invert": {"behavior": "MergedWithPrevious", "invert": True},
}


def split_variant(base, spec):
    j = json.loads(base.to_str())
    j["normalizer"] = None
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": r"\s+|[,.!?]"}, "behavior": spec["behavior"], "invert": spec["invert"]},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    return Tokenizer.from_str(json.dumps(j))


def cases_for(tok, strings):
    out = []
    for s in strings:
        e0 = tok.encode(s, add_special_tokens=False)
        e1 = tok.encode(s, add_special_tokens=True)
        d0 = tok.decode(e0.ids, skip_special_tokens=False)
        out.append({
            "text": s,
            "ids": e0.ids,
            "ids_special": e1.ids,
            "tokens": e1.tokens,
            "decoded": tok.decode(e1.ids, skip_special_tokens=False),
            "decoded_skip": tok.decode(e1.ids, skip_special_tokens=True),
            "roundtrip": d0 == s,
        })
    return out


def decode_cases_for(tok):
    """Random id sequences (partial UTF-8 pieces, lone byte tokens, specials)
    and what HF decodes them to, with and without special tokens."""
    rng = random.Random(99)
    n = tok.get_vocab_size(with_added_tokens=True)
    out = []
    while len(out) < 120:
        ids = [rng.randrange(n) for _ in range(rng.randint(1, 6))]
        dec, dec_skip = tok.decode(ids, skip_special_tokens=False), tok.decode(ids, skip_special_tokens=True)
        if "\0" in dec or "\0" in dec_skip:
            continue  # a NUL byte cannot come back through a C string (md_tokenizer_decode)
        out.append({"ids": ids, "decoded": dec, "decoded_skip": dec_skip})
    return out


def write_set(root, name, tok, config, strings, tokenizer_dir=None):
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    if tok is not None and tokenizer_dir is None:
        # Compact, sorted-key-free output keeps the files small and stable.
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
            f.write(json.dumps(json.loads(tok.to_str()), ensure_ascii=False, separators=(",", ":")))
        with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, ensure_ascii=False, indent=1)
    doc = {"generator": "scripts/dev/make_tokenizer_golden.py", "cases": cases_for(tok, strings),
           "decode_cases": decode_cases_for(tok)}
    if tokenizer_dir is not None:
        doc["tokenizer_dir"] = tokenizer_dir
        with open(os.path.join(tokenizer_dir, "tokenizer.json"), "rb") as f:
            doc["tokenizer_sha256"] = hashlib.sha256(f.read()).hexdigest()
    with open(os.path.join(d, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    n_rt = sum(1 for c in doc["cases"] if not c["roundtrip"])
    print(f"{name}: {len(strings)} cases, {n_rt} without HF round trip", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="tests/golden/tokenizers")
    ap.add_argument("--model-dir", help="also write goldens for DIR/tokenizer.json (not copied)")
    ap.add_argument("--model-name", default="organism-base")
    ap.add_argument("--skip-synthetic", action="store_true")
    args = ap.parse_args()

    rng = random.Random(20250131)
    strings = list(TRICKY) + random_tricky(rng, 150)
    # Deduplicate, keep order.
    seen = set()
    strings = [s for s in strings if not (s in seen or seen.add(s))]

    if not args.skip_synthetic:
        lines = gen_text(random.Random(7), 4000)
        bl = train_bytelevel(lines)
        write_set(args.out, "bytelevel", bl, {
            "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "add_bos_token": True,
            "chat_template": LLAMA3_TEMPLATE}, strings)
        sp = train_sentencepiece(lines, metaspace=False)
        write_set(args.out, "sentencepiece", sp, {
            "bos_token": {"content": "<s>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
            "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True,
            "chat_template": [{"name": "default", "template": LLAMA2_TEMPLATE},
                              {"name": "tool_use", "template": "{{ 'unused' }}"}]}, strings)
        ms = train_sentencepiece(lines, metaspace=True)
        write_set(args.out, "metaspace", ms, {"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True}, strings)
        q2 = train_bytelevel_style(lines, "qwen2")
        write_set(args.out, "bytelevel-qwen2", q2, {"bos_token": None, "eos_token": "<|im_end|>"}, strings)
        write_set(args.out, "bytelevel-neox", train_bytelevel_style(lines, "neox"),
                  {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}, strings)
        write_set(args.out, "bytelevel-digits", train_bytelevel_style(lines, "digits"),
                  {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"}, strings)
        write_set(args.out, "gemma", train_gemma(lines), {"bos_token": "<bos>", "eos_token": "<eos>"}, strings)
        for name, spec in SPLIT_VARIANTS.items():
            write_set(args.out, name, split_variant(q2, spec), {"eos_token": "<|im_end|>"}, strings)
    if args.model_dir:
        tok = Tokenizer.from_file(os.path.join(args.model_dir, "tokenizer.json"))
        write_set(args.out, args.model_name, tok, None, strings, tokenizer_dir=args.model_dir)


if __name__ == "__main__":
    main()
