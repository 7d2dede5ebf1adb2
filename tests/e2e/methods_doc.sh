#!/usr/bin/env bash
# Every citation of docs/methods.md in src/, include/, jobs/, analysis/,
# README.md and docs/ resolves: the file exists; a cited section
# ('docs/methods.md, Refusal', 'docs/methods.md "Knowledge"',
# 'docs/methods.md#truthfulness') is a heading or anchor of it; a cited value
# ('docs/methods.md: test fraction 0.2, seed 42') has each of its numbers (or,
# without numbers, its word) in the document. The four kinds have their
# stable anchors. $1: build dir (unused).
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
echo "methods_doc: ok"
