#!/usr/bin/env bash
# The "## Environment variables" table of README.md lists exactly the MECHDIFF_*
# variables the program reads (string literals "MECHDIFF_..." in src/: getenv
# and its wrappers) and those the Slurm scripts read (${MECHDIFF...} in
# slurm/), and every variable named anywhere in README.md or docs/*.md is one
# of them. Needs no build ($1 unused).
set -euo pipefail
PY=${PYTHON:-/usr/bin/python3}
cd "$(dirname "$0")/../.."
"$PY" - <<'PY'
import glob, os, re, sys
read = set()
for path in glob.glob("src/**/*.[ch]", recursive=True) + glob.glob("src/**/*.cu", recursive=True):
    read |= set(re.findall(r'"(MECHDIFF_[A-Z0-9_]+)"', open(path, encoding="utf-8").read()))
for path in glob.glob("slurm/*.sh") + glob.glob("slurm/*.sbatch"):
    read |= set(re.findall(r'\$\{(MECHDIFF[A-Z0-9_]*)[:}]', open(path, encoding="utf-8").read()))
if len(read) < 10:
    sys.exit(f"FAIL: found only {sorted(read)} in src/ and slurm/")
readme = open("README.md", encoding="utf-8").read()
m = re.search(r"^## Environment variables\n(.*?)(?=^## |\Z)", readme, re.S | re.M)
if not m:
    sys.exit("FAIL: README.md has no '## Environment variables' section")
table = set()
for row in re.findall(r"^\| (.+?) \|", m.group(1), re.M):
    table |= set(re.findall(r"`(MECHDIFF[A-Z0-9_]*)`", row))
bad = [f"README.md's table lacks {v}, which the code reads" for v in sorted(read - table)]
bad += [f"README.md's table lists {v}, which nothing in src/ or slurm/ reads" for v in sorted(table - read)]
# Build options (-DMECHDIFF_CUDA=ON ...) are CMake's, not the environment's.
cmake = set(re.findall(r"option\((MECHDIFF_[A-Z0-9_]+)", open("CMakeLists.txt", encoding="utf-8").read()))
for path in ["README.md"] + sorted(glob.glob("docs/*.md")) + ["jobs/README.md", "slurm/README.md"]:
    text = open(path, encoding="utf-8").read()
    for m in re.finditer(r"(?<![\w-])\$?\{?(MECHDIFF_[A-Z0-9_]+)", text):
        v = m.group(1)
        if v not in read and v not in cmake and text[m.start() - 2:m.start()] != "-D":
            line = text.count("\n", 0, m.start()) + 1
            bad.append(f"{path}:{line}: names {v}, which is neither read by the code nor a CMake option")
if bad:
    sys.exit("FAIL:\n" + "\n".join(bad))
print(f"env_doc: {len(read)} variables, all in README.md's table; no doc names an unknown one")
PY
echo "env_doc: ok"
