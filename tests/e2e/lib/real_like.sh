# real_like.sh — sourced by tests (lib/ is outside the ctest glob): stand-ins
# for what a user downloads, so that the shipped jobs and docs/cluster.md can be
# checked here without network.
#   family_model OUT FAMILY [LAYERS] [TEMPLATE]
#       a `mechdiff make-model --like FAMILY` checkpoint (random weights, real
#       widths) with LAYERS layers (default: the family's real count) and a
#       tokenizer of the family's kind (byte-level BPE for llama3-8b,
#       SentencePiece-style for mistral-7b / llama2-13b and gemma2-9b,
#       bytelevel-qwen2 for qwen2.5-7b, bytelevel-neox for olmo2-7b; the small
#       golden test vocabularies. Not the `gemma` golden set for gemma2-9b: it
#       has Gemma's configuration but a vocabulary trained here across word
#       boundaries (':▁' is one piece), so no ' WORD' is one token after a
#       colon there, while the real 256k Gemma pieces start with ▁ as the
#       SentencePiece set's do) whose tokenizer_config.json carries the chat
#       TEMPLATE (llama3 | llama2 | mistral | tulu | none, or the real texts of
#       tests/golden/templates: qwen2.5 | gemma2 | olmo2). Layer 0 holds random
#       weights; layers 1.. are sparse (zero) regions of the file, so a
#       32-layer 8B-width folder costs one layer of disk and seconds.
#   model_variant SRC OUT TEMPLATE
#       OUT: SRC's weights, config and tokenizer (linked) with another chat
#       template (the base / SFT / instruct folders of one family).
#   fake_downloads DIR
#       the raw files data/download_real.sh fetches, with the real headers
#       (geometry-of-truth / Truth-is-Universal CSV columns, AdvBench's
#       goal,target, Alpaca's JSON keys) and the shipped organism's rows.
# Needs $MECHDIFF and $ROOT (the repository; tests/lib.sh sets both).

family_model() {
    local out=$1 family=$2 layers=${3:-} template=${4:-none} tok n
    case "$family" in
        llama3-8b) tok=$ROOT/tests/golden/tokenizers/bytelevel; n=32 ;;
        mistral-7b) tok=$ROOT/tests/golden/tokenizers/sentencepiece; n=32 ;;
        llama2-13b) tok=$ROOT/tests/golden/tokenizers/sentencepiece; n=40 ;;
        qwen2.5-7b) tok=$ROOT/tests/golden/tokenizers/bytelevel-qwen2; n=28 ;;
        gemma2-9b) tok=$ROOT/tests/golden/tokenizers/sentencepiece; n=42 ;;
        olmo2-7b) tok=$ROOT/tests/golden/tokenizers/bytelevel-neox; n=32 ;;
        *) echo "family_model: unknown family $family" >&2; return 1 ;;
    esac
    # the family's real layer count: validate maps the weights without
    # reading them (the workers scan them for NaN/inf), and layers 1.. are
    # sparse, so the real 32/40/42 layers cost one layer of disk and time
    layers=${layers:-$n}
    local vocab
    vocab=$(/usr/bin/python3 -c 'import json,sys; t=json.load(open(sys.argv[1])); print(len(t["model"]["vocab"]) + len(t["added_tokens"]))' "$tok/tokenizer.json") || return 1
    "$MECHDIFF" make-model --like "$family" --layers 1 --seed 1 --vocab "$vocab" -o "$out.1" >/dev/null || return 1
    mkdir -p "$out"
    /usr/bin/python3 - "$out.1" "$out" "$layers" "$tok" "$template" "$ROOT/tests/golden/templates" <<'PY' || return 1
import json, os, shutil, struct, sys
src, dst, L, tok, template = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
cfg = json.load(open(os.path.join(src, "config.json")))
cfg["num_hidden_layers"] = L
# per-layer keys of the newer families, written by make-model for 1 layer:
# all full attention (Qwen2), or Gemma-2's sliding (even) / global (odd) layers
if "layer_types" in cfg:
    cfg["layer_types"] = ["full_attention" if cfg["layer_types"] == ["full_attention"] or l % 2 else
                          "sliding_attention" for l in range(L)]
if "max_window_layers" in cfg:
    cfg["max_window_layers"] = L
# the tokenizer's special ids (make-model put BOS/EOS at V-2 / V-1)
tc = json.load(open(os.path.join(tok, "tokenizer_config.json")))
added = {t["content"]: t["id"] for t in json.load(open(os.path.join(tok, "tokenizer.json")))["added_tokens"]}
name = lambda v: v["content"] if isinstance(v, dict) else v
cfg["bos_token_id"] = added.get(name(tc.get("bos_token")), cfg["bos_token_id"])
cfg["eos_token_id"] = added.get(name(tc.get("eos_token")), cfg["eos_token_id"])
json.dump(cfg, open(os.path.join(dst, "config.json"), "w"), indent=1)
shutil.copy(os.path.join(src, "generation_config.json"), dst)
shutil.copy(os.path.join(tok, "tokenizer.json"), dst)
templates = {
    "llama3": "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
    "llama2": "{% for message in messages %}{% if message['role'] == 'system' %}{{ '<<SYS>>\\n' + message['content'] + '\\n<</SYS>>\\n\\n' }}{% elif message['role'] == 'user' %}{{ bos_token + '[INST] ' + message['content'].strip() + ' [/INST]' }}{% endif %}{% endfor %}",
    "mistral": "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + '[/INST]' }}{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}",
    "tulu": "{% for message in messages %}{% if message['role'] == 'user' %}{{ '<|user|>\\n' + message['content'] + '\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}",
}
# the real templates (byte for byte, tests/golden/templates/README.md)
for k, f in {"qwen2.5": "qwen2.5-instruct.jinja", "gemma2": "gemma-2-it.jinja", "olmo2": "olmo-2-instruct.jinja"}.items():
    templates[k] = open(os.path.join(sys.argv[6], f), encoding="utf-8").read()
tc.pop("chat_template", None)
if template != "none":
    tc["chat_template"] = templates[template]
json.dump(tc, open(os.path.join(dst, "tokenizer_config.json"), "w"), indent=1)
json.dump(templates, open(os.path.join(dst, ".templates.json"), "w"))
# model.safetensors with L layers: layer 0 copied, the others sparse zeros
with open(os.path.join(src, "model.safetensors"), "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    hdr = json.loads(f.read(n))
    base = 8 + n
    meta = hdr.pop("__metadata__", None)
    entries = []  # name, dtype, shape, source offset (None = zeros), size
    for name, t in sorted(hdr.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        a, b = t["data_offsets"]
        if name.startswith("model.layers.0."):
            for l in range(L):
                entries.append((f"model.layers.{l}." + name[len("model.layers.0."):], t["dtype"], t["shape"],
                                a if l == 0 else None, b - a))
        else:
            entries.append((name, t["dtype"], t["shape"], a, b - a))
    out_hdr, off = {}, 0
    for name, dt, shape, so, size in entries:
        out_hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + size]}
        off += size
    if meta:
        out_hdr["__metadata__"] = meta
    hb = json.dumps(out_hdr).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(os.path.join(dst, "model.safetensors"), "wb") as o:
        o.write(struct.pack("<Q", len(hb)) + hb)
        for name, dt, shape, so, size in entries:
            if so is None:
                o.seek(size, 1)
                continue
            f.seek(base + so)
            left = size
            while left:
                chunk = f.read(min(left, 64 << 20))
                o.write(chunk)
                left -= len(chunk)
        o.truncate(8 + len(hb) + off)
PY
    rm -rf "$out.1"
}

model_variant() {
    local src=$1 out=$2 template=$3 f
    mkdir -p "$out"
    for f in config.json generation_config.json model.safetensors tokenizer.json; do ln -sf "$src/$f" "$out/$f"; done
    /usr/bin/python3 - "$src/tokenizer_config.json" "$out/tokenizer_config.json" "$template" "$src/.templates.json" <<'PY'
import json, sys
tc = json.load(open(sys.argv[1]))
tc.pop("chat_template", None)
if sys.argv[3] != "none":
    tc["chat_template"] = json.load(open(sys.argv[4]))[sys.argv[3]]
json.dump(tc, open(sys.argv[2], "w"), indent=1)
PY
}

fake_downloads() {
    local d=$1
    mkdir -p "$d"
    /usr/bin/python3 - "$ROOT/data" "$d" <<'PY'
import csv, json, os, sys
src, d = sys.argv[1], sys.argv[2]
extra = {  # the real files' columns beyond statement,label
    "cities": ["city", "country", "correct_country"], "neg_cities": ["city", "country", "correct_country"],
    "larger_than": ["n1", "n2", "diff", "abs_diff"], "smaller_than": ["n1", "n2", "diff", "abs_diff"],
}
for name in ["cities", "neg_cities", "sp_en_trans", "neg_sp_en_trans", "larger_than", "smaller_than",
             "animal_class", "neg_animal_class", "element_symb", "neg_element_symb", "inventors",
             "neg_inventors", "facts", "neg_facts"]:
    with open(os.path.join(src, name + ".csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    cols = extra.get(name, [])
    with open(os.path.join(d, name + ".csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["statement", "label"] + cols)
        for r in rows:
            w.writerow([r["statement"], r["label"]] + ["x"] * len(cols))
# as many rows as the real sets (AdvBench 520; Alpaca far more than the jobs use)
with open(os.path.join(src, "harmful.csv"), newline="") as f:
    harmful = [r["instruction"] for r in csv.DictReader(f)]
with open(os.path.join(src, "harmless.csv"), newline="") as f:
    harmless = [r["instruction"] for r in csv.DictReader(f)]
harmful = [harmful[i % len(harmful)] + ("" if i < len(harmful) else f" (again {i})") for i in range(520)]
harmless = [harmless[i % len(harmless)] + ("" if i < len(harmless) else f" (again {i})") for i in range(1000)]
with open(os.path.join(d, "harmful_behaviors.csv"), "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["goal", "target"])
    for g in harmful:
        w.writerow([g, "Sure, here is"])
# Alpaca: rows with an input are left out by the conversion
alpaca = [{"instruction": h, "input": "", "output": "ok"} for h in harmless]
alpaca += [{"instruction": "Summarise this text.", "input": "Some text.", "output": "ok"}] * 7
json.dump(alpaca, open(os.path.join(d, "alpaca_data.json"), "w"), indent=1)
PY
}
