#!/usr/bin/env bash
# tokenize.sh — `mechdiff tokenize --json` reproduces the Hugging Face golden
# (tests/golden/tokenizers/*/cases.json) for a few strings, with and without
# special tokens; the TSV output and errors behave.
set -euo pipefail
BUILD=${1:?usage: tokenize.sh BUILD_DIR}
MECHDIFF=${MECHDIFF:-$BUILD/mechdiff}
PY=${PYTHON:-python3}
command -v "$PY" >/dev/null || { echo "no python3; skipping"; exit 77; }
G=tests/golden/tokenizers
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() { # set, index of the case in cases.json
    local set=$1 idx=$2 text
    text=$("$PY" -c 'import json,sys; sys.stdout.write(json.load(open(sys.argv[1]))["cases"][int(sys.argv[2])]["text"])' \
        "$G/$set/cases.json" "$idx")
    "$MECHDIFF" tokenize "$G/$set" "$text" --json >"$tmp/with.json"
    "$MECHDIFF" tokenize "$G/$set" "$text" --json --no-special >"$tmp/without.json"
    "$PY" - "$G/$set/cases.json" "$idx" "$tmp/with.json" "$tmp/without.json" <<'PYEOF'
import json, sys
case = json.load(open(sys.argv[1]))["cases"][int(sys.argv[2])]
got = json.load(open(sys.argv[3]))
got0 = json.load(open(sys.argv[4]))
raw = open(sys.argv[3], encoding="utf-8").read()
assert raw.startswith('{"ids": [') and '], "pieces": [' in raw, raw
assert got["ids"] == case["ids_special"], (case["text"], got["ids"], case["ids_special"])
assert got["pieces"] == case["tokens"], (case["text"], got["pieces"], case["tokens"])
assert got0["ids"] == case["ids"], (case["text"], got0["ids"], case["ids"])
print("ok:", repr(case["text"]))
PYEOF
}

# Pick cases by text so the test survives regenerating the goldens.
idx_of() {
    "$PY" -c 'import json,sys; c=json.load(open(sys.argv[1]))["cases"]; print([x["text"] for x in c].index(sys.argv[2]))' \
        "$G/$1/cases.json" "$2"
}
check bytelevel "$(idx_of bytelevel "text<|eot_id|>more")"
check bytelevel "$(idx_of bytelevel "family: 👨‍👩‍👧")"
check sentencepiece "$(idx_of sentencepiece "The answer is: TRUE")"
check metaspace "$(idx_of metaspace "ꙮ rare")"

# Standard input keeps NUL bytes (issue 14): "\0null" is not cut at the NUL.
for set in bytelevel sentencepiece; do
    printf '\0null' | "$MECHDIFF" tokenize "$G/$set" - --json --no-special >"$tmp/nul.json"
    "$PY" - "$G/$set/cases.json" "$tmp/nul.json" <<'PYEOF'
import json, sys
case = [c for c in json.load(open(sys.argv[1]))["cases"] if c["text"] == "\0null"][0]
got = json.load(open(sys.argv[2]))
assert got["ids"] == case["ids"] and len(got["ids"]) > 1, (got["ids"], case["ids"])
print("ok: NUL on stdin", got["ids"])
PYEOF
done

# --chat: the model's own template, rendered as transformers does (golden
# text of tests/golden/templates/cases.json through the same tokenizer).
"$MECHDIFF" tokenize "$G/bytelevel" "Is the sky blue?" --chat --json >"$tmp/chat.json"
"$PY" - "$G/bytelevel/tokenizer_config.json" "$tmp/chat.json" <<'PYEOF'
import json, sys
got = json.load(open(sys.argv[2]))
want = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nIs the sky blue?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
assert "".join(got["pieces"]).replace("\u010a", "\n").replace("\u0120", " ") == want, got["pieces"]
assert got["pieces"].count("<|begin_of_text|>") == 1, got["pieces"]
print("ok: --chat renders the template once with its BOS")
PYEOF
# A format string typed in a shell: \n is a newline, not two characters.
"$MECHDIFF" tokenize "$G/bytelevel" "hi" --chat --chat-template 'Q: {instruction}\nA:' >"$tmp/fmt.tsv"
grep -q $'\t\\\\n' "$tmp/fmt.tsv" || { echo "format string kept \\n literally:"; cat "$tmp/fmt.tsv"; exit 1; }
# No template: the error names the way out.
if "$MECHDIFF" tokenize "$G/metaspace" "hi" --chat 2>"$tmp/err"; then echo "chat without a template accepted"; exit 1; fi
grep -q "{instruction}" "$tmp/err" || { cat "$tmp/err"; exit 1; }

# TSV output: one id<TAB>text line per token, BOS first.
"$MECHDIFF" tokenize "$G/bytelevel" $'a\tb' >"$tmp/tsv"
[ "$(head -1 "$tmp/tsv")" = "$(printf '0\t<|begin_of_text|>')" ] || { echo "bad TSV:"; cat "$tmp/tsv"; exit 1; }
grep -q $'\t\\\\t' "$tmp/tsv" || { echo "tab not escaped:"; cat "$tmp/tsv"; exit 1; }

# Errors: missing directory names the file; usage errors exit 2.
if "$MECHDIFF" tokenize "$tmp/none" x 2>"$tmp/err"; then echo "missing dir accepted"; exit 1; fi
grep -q "none: no such folder" "$tmp/err" || { cat "$tmp/err"; exit 1; }
set +e
"$MECHDIFF" tokenize "$G/bytelevel" 2>/dev/null; rc=$?
set -e
[ "$rc" = 2 ] || { echo "missing TEXT gave rc=$rc"; exit 1; }
"$MECHDIFF" tokenize --help | grep -q -- "--no-special"
echo "tokenize.sh: ok"
