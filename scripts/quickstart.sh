#!/usr/bin/env bash
# One command on a fresh Debian machine: install the Debian packages, build,
# run the quickstart job on the shipped model pair with 3 MPI ranks, and
# write the report of all four findings.
#   scripts/quickstart.sh            (as root, or with sudo)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps-ok.sh || scripts/install-deps.sh
scripts/build.sh build
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
mkdir -p out
echo "== mechdiff: quickstart sweep on models/organism-base vs models/organism-instruct (3 MPI ranks)"
mpirun --oversubscribe -np 3 build/mechdiff run jobs/quickstart.yaml -o out/quickstart.h5
build/mechdiff status out/quickstart.h5
echo "== report"
/usr/bin/python3 analysis/report.py out/quickstart.h5 -o report/
echo "quickstart done: results in out/quickstart.h5, report in report/report.md (and report.html)"
