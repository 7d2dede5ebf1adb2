#!/bin/bash
# jobs_validate.sh — every shipped jobs/*.yaml validates against what a user
# has after following its comments: the datasets data/download_real.sh writes
# (run here with --from on raw files with the real headers) and model folders
# of the right family (`make-model --like`, the family's real layer count, a
# tokenizer of the family's kind, the chat template of that model). Each
# `/path/to/NAME` of a job is mapped to a family below; a job naming a model
# this test does not know fails the test. Also: the refusal data are the
# `instruction` CSVs, and a cuda job on a CPU-only build says how to proceed.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/e2e/lib/real_like.sh"

# A copy of the repository's layout: jobs/ copied, data/ and models/ of the
# organism linked, data/real/ written by the download script.
R=$WORK/repo
mkdir -p "$R/jobs" "$R/data" "$R/models"
cp "$ROOT"/jobs/*.yaml "$R/jobs/"
for f in "$ROOT"/data/*.csv; do ln -s "$f" "$R/data/"; done
for m in "$ROOT"/models/organism-*; do ln -s "$m" "$R/models/"; done
fake_downloads "$WORK/raw" || fail "fake_downloads"
sh "$ROOT/data/download_real.sh" "$R/data/real" --from "$WORK/raw" || fail "download_real.sh --from"
for f in harmful harmless; do
    [ "$(head -1 "$R/data/real/$f.csv")" = instruction ] || fail "data/real/$f.csv: header is not 'instruction'"
done
[ "$(wc -l <"$R/data/real/harmful.csv")" = 521 ] || fail "harmful.csv: not one row per AdvBench goal"
[ "$(wc -l <"$R/data/real/harmless.csv")" = 1001 ] || fail "harmless.csv: the Alpaca rows with an input were not left out"

# Model name in a job -> family and chat template of that model.
model_of() {
    case "$1" in
        Meta-Llama-3.1-8B) echo "llama3-8b none" ;;
        Llama-3.1-Tulu-3-8B-SFT) echo "llama3-8b tulu" ;;
        Meta-Llama-3.1-8B-Instruct) echo "llama3-8b llama3" ;;
        Mistral-7B-v0.3) echo "mistral-7b none" ;;
        Mistral-7B-v0.3-SFT) echo "mistral-7b none" ;;
        Mistral-7B-Instruct-v0.3) echo "mistral-7b mistral" ;;
        Llama-2-13b-hf) echo "llama2-13b none" ;;
        Llama-2-13b-chat-hf) echo "llama2-13b llama2" ;;
        OLMo-2-1124-7B) echo "olmo2-7b none" ;;
        OLMo-2-1124-7B-SFT | OLMo-2-1124-7B-DPO | OLMo-2-1124-7B-Instruct) echo "olmo2-7b olmo2" ;;
        Qwen2.5-7B) echo "qwen2.5-7b none" ;;
        Qwen2.5-7B-Instruct) echo "qwen2.5-7b qwen2.5" ;;
        gemma-2-9b) echo "gemma2-9b none" ;;
        gemma-2-9b-it) echo "gemma2-9b gemma2" ;;
        *) return 1 ;;
    esac
}
mkdir -p "$WORK/models"
n_models=0
for name in $(grep -ho '/path/to/[A-Za-z0-9._-]*' "$R"/jobs/*.yaml | sort -u | sed 's|/path/to/||'); do
    spec=$(model_of "$name") || fail "a shipped job names /path/to/$name: add its family to tests/e2e/jobs_validate.sh"
    set -- $spec
    [ -d "$WORK/models/.$1" ] || family_model "$WORK/models/.$1" "$1" || fail "family_model $1"
    model_variant "$WORK/models/.$1" "$WORK/models/$name" "$2" || fail "model_variant $name"
    n_models=$((n_models + 1))
done
echo "generated $n_models model folders"
sed -i "s|/path/to/|$WORK/models/|" "$R"/jobs/*.yaml

n=0
for job in "$R"/jobs/*.yaml; do
    MECHDIFF_BACKEND=cpu "$MECHDIFF" validate "$job" >"$WORK/out" 2>&1 || { cat "$WORK/out"; fail "$(basename "$job") does not validate"; }
    grep -q ": valid; output " "$WORK/out" || fail "$(basename "$job"): no 'valid' line"
    n=$((n + 1))
done
[ "$n" -ge 14 ] || fail "only $n job files"
echo "all $n shipped jobs validate"

# Without the override, a cuda job on this build (no CUDA) names the fixes.
if "$MECHDIFF" validate "$R/jobs/refusal_llama31.yaml" >/dev/null 2>"$WORK/err"; then
    grep -q "MECHDIFF_CUDA:BOOL=ON" "$BUILD/CMakeCache.txt" 2>/dev/null || fail "a cuda job validated on a build without CUDA"
else
    grep -q "MECHDIFF_BACKEND=cpu" "$WORK/err" || { cat "$WORK/err"; fail "the cuda error does not name MECHDIFF_BACKEND"; }
fi
MECHDIFF_BACKEND=gpu "$MECHDIFF" validate "$R/jobs/quickstart.yaml" 2>"$WORK/err" && fail "MECHDIFF_BACKEND=gpu accepted"
grep -q "MECHDIFF_BACKEND='gpu'" "$WORK/err" || { cat "$WORK/err"; fail "bad MECHDIFF_BACKEND not named"; }
echo "PASS: every shipped job validates on the download script's files and generated checkpoints"
