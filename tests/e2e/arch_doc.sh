#!/usr/bin/env bash
# The module tables stay complete: every .c, .cu and .h under src/ is named in
# docs/architecture.md, docs/architecture-model.md or docs/cuda.md, and every
# src/ or include/ file those three name exists. Needs no build ($1 unused).
set -euo pipefail
cd "$(dirname "$0")/../.."
docs="docs/architecture.md docs/architecture-model.md docs/cuda.md"
bad=0 n=0
for f in $(find src -name '*.c' -o -name '*.h' -o -name '*.cu' | sort); do
    n=$((n + 1))
    grep -qF "$(basename "$f")" $docs || { echo "FAIL: $f is not named in $docs"; bad=1; }
done
for p in $(grep -ohE '\b(src|include)/[A-Za-z0-9_/.]+\.(c|h|cu)\b' $docs | sort -u); do
    [ -e "$p" ] || { echo "FAIL: $p is named in $docs but does not exist"; bad=1; }
done
[ "$bad" = 0 ] || exit 1
echo "arch_doc: the $n source files of src/ are in the architecture notes; every file they name exists"
