#!/usr/bin/env bash
# Every citation of docs/methods.md in src/, include/, jobs/, analysis/,
# README.md and docs/ resolves: the file exists; a cited section
# ('docs/methods.md, Refusal', 'docs/methods.md "Knowledge"',
# 'docs/methods.md#truthfulness') is a heading or anchor of it; a cited value
# ('docs/methods.md: test fraction 0.2, seed 42') has each of its numbers (or,
# without numbers, its word) in the document. The four kinds have their
# stable anchors. And what it states of the code stays true:
# - every default it gives as "`key` (value)" in a kind's section is that
#   kind's default in the key reference of jobs/README.md (which e2e.docs
#   keeps equal to `mechdiff validate --keys`);
# - its refusal prefixes are md_dir_refusal_prefixes (src/exp/directions.c),
#   in order;
# - every published number the report prints (analysis/common.py, PAPER) is
#   in its "Published numbers" section.
# $1: build dir (unused).
set -euo pipefail
PY=${PYTHON:-/usr/bin/python3}
[ -f docs/methods.md ] || { echo "FAIL: docs/methods.md does not exist"; exit 1; }
"$PY" - <<'PY'
import os, re, sys
doc = open("docs/methods.md", encoding="utf-8").read()
headings = [h.strip() for h in re.findall(r"^#{1,6}\s+(.+)$", doc, re.M)]
anchors = set(re.findall(r'<a id="([^"]+)"', doc))
anchors |= {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
for need in ("knowledge", "truthfulness", "refusal", "confidence"):
    if need not in anchors:
        sys.exit(f"FAIL: docs/methods.md lacks the anchor #{need}")
cite = re.compile(r'docs/methods\.md(#[\w-]+|,?\s*"[^"\n]+"|,\s*[A-Z][\w.-]*(?=[)",.;]|$)(?!\.\d)|(?:,\s*[A-Z][\w.-]*)?:\s*[^)"\n]+)?')
bad, n_sections, n_values, n_plain = [], 0, 0, 0
roots = ["src", "include", "jobs", "analysis", "docs", "README.md"]
files = []
for r in roots:
    if os.path.isfile(r):
        files.append(r)
    for d, _, fs in os.walk(r):
        files += [os.path.join(d, f) for f in fs if not f.endswith((".png", ".h5"))]
for path in sorted(set(files)):
    if path == "docs/methods.md":
        continue
    try:
        text = open(path, encoding="utf-8").read()
    except (UnicodeDecodeError, OSError):
        continue
    if path.endswith((".c", ".h")):  # join adjacent C string literals split over lines
        text = re.sub(r'"\s*\n\s*"', "", text)
    for m in cite.finditer(text):
        tail = (m.group(1) or "").strip()
        line = text.count("\n", 0, m.start()) + 1
        where = f"{path}:{line}: {m.group(0)[:80]!r}"
        if not tail:
            n_plain += 1
        elif tail.startswith("#"):
            n_sections += 1
            if tail[1:] not in anchors:
                bad.append(f"{where}: no anchor {tail}")
        elif ":" not in tail:
            n_sections += 1
            name = tail.lstrip(", ").strip('"').strip()
            if not any(h == name or h.startswith(name + " ") for h in headings):
                bad.append(f"{where}: no section '{name}' (headings: {', '.join(headings)})")
        else:
            n_values += 1
            value = tail.split(":", 1)[1]
            nums = re.findall(r"-?\d+(?:\.\d+)?", value)
            words = [] if nums else [value.strip().split()[0].strip(".,")] if value.strip() else []
            missing = [x for x in nums + words if x not in doc]
            if missing:
                bad.append(f"{where}: the value(s) {missing} are not in docs/methods.md")
if bad:
    sys.exit("FAIL:\n" + "\n".join(bad))
print(f"methods_doc: {n_sections} section and {n_values} value citations resolve ({n_plain} plain)")
PY
"$PY" - <<'PY'
import re, sys
sys.path.insert(0, "analysis")
from common import PAPER
doc = open("docs/methods.md", encoding="utf-8").read()
keys = open("jobs/README.md", encoding="utf-8").read()
bad = []

# defaults: "`key` (4)" or "`key`) (0.2)" in the section of a kind
defaults = {}
for kind, body in re.findall(r"^### `kind: (\w+)`\n(.*?)(?=^### |\Z)", keys, re.S | re.M):
    defaults[kind] = dict(re.findall(r"^\| `(\w+)` \| \w+ \| `([^`]*)` \|", body, re.M))
sections = {"Knowledge": "knowledge", "Truthfulness": "truth", "Refusal": "refusal", "Confidence": "confidence"}
n_defaults = 0
for title, body in re.findall(r"^## (\w+)\n(.*?)(?=^## |\Z)", doc, re.S | re.M):
    kind = sections.get(title)
    if not kind:
        continue
    for key, value in re.findall(r"`(\w+)`\)? \((-?\d+(?:\.\d+)?)\)", body):
        n_defaults += 1
        have = defaults.get(kind, {}).get(key)
        if have is None:
            bad.append(f"docs/methods.md, {title}: `{key}` is not a key of kind {kind} (jobs/README.md)")
        elif float(have) != float(value):
            bad.append(f"docs/methods.md, {title}: `{key}` ({value}), but its default is {have} (jobs/README.md)")
if n_defaults < 8:
    bad.append(f"only {n_defaults} '`key` (default)' statements found in docs/methods.md")

# refusal prefixes, in the code's order
src = open("src/exp/directions.c", encoding="utf-8").read()
m = re.search(r"md_dir_refusal_prefixes\[\] = \{(.*?)NULL\}", src, re.S)
code = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1)) if m else []
m = re.search(r"starts with one of the study's prefixes \((.*?)\)\.", doc, re.S)
text = re.findall(r'"([^"]*)"', m.group(1)) if m else []
if not code or code != text:
    bad.append(f"docs/methods.md's refusal prefixes {text} are not md_dir_refusal_prefixes {code}")

# published numbers
m = re.search(r"^## Published numbers\n(.*?)(?=^## |\Z)", doc, re.S | re.M)
pub = m.group(1) if m else ""
def numbers(v):
    if isinstance(v, dict):
        return [x for w in v.values() for x in numbers(w)]
    if isinstance(v, float):
        return ["%.2f" % v]
    return re.findall(r"\d+(?:[.,/–-]\d+)*", str(v))
n_pub = 0
for name, v in PAPER.items():
    for x in numbers(v):
        n_pub += 1
        if x not in pub:
            bad.append(f"analysis/common.py PAPER['{name}'] has {x}, which docs/methods.md's Published numbers lack")
if bad:
    sys.exit("FAIL:\n" + "\n".join(bad))
print(f"methods_doc: {n_defaults} defaults equal jobs/README.md's, {len(code)} refusal prefixes equal the code's, "
      f"{n_pub} published numbers of the report in the doc")
PY
echo "methods_doc: ok"
