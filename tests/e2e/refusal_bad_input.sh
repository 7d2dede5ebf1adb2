#!/usr/bin/env bash
# refusal kind, bad input is a clear error with a non-zero exit:
#  1. a template for a role that is neither a name nor a format string with
#     {instruction} (names the key, the role and the file:line:col);
#  2. an instruction set with too few rows for the split (names the counts
#     and says what to change);
#  3. a role with no recognised chat template and no override.
# The models are tiny random checkpoints (validate checks the weights too)
# with a golden tokenizer and no chat template.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
for r in base instruct; do
  tiny_model "$T/$r" 1 "$ROOT/tests/golden/tokenizers/bytelevel/tokenizer.json"
done
printf 'instruction\n' > "$T/small.csv"
for i in 1 2 3 4 5 6 7 8 9 10; do echo "Explain thing number $i." >> "$T/small.csv"; done
job() { # $1 file, $2 extra keys (YAML lines, indented 4)
  cat > "$1" <<YAML
name: refusal-bad
models: {base: $T/base, instruct: $T/instruct}
datasets: {harmful: $ROOT/data/harmful.csv, harmless: $ROOT/data/harmless.csv, small: $T/small.csv}
experiments:
  - kind: refusal
    n_test: 2
$2
YAML
}
expect_fail() { # $1 job, $2 grep pattern
  if "$MD" validate "$1" > "$T/out" 2> "$T/err"; then echo "FAIL: $1 accepted"; cat "$T/out"; exit 1; fi
  grep -q -- "$2" "$T/err" || { echo "FAIL: message does not match '$2':"; cat "$T/err"; exit 1; }
  echo "ok: $(head -c 300 "$T/err")"
}
job "$T/good.yaml" "    n_train: 8
    templates: {instruct: \"<|user|>\\\\n{instruction}\\\\n<|assistant|>\\\\n\"}"
"$MD" validate "$T/good.yaml" > /dev/null
job "$T/tmpl.yaml" "    n_train: 8
    templates: {instruct: \"Question without a slot\"}"
expect_fail "$T/tmpl.yaml" "tmpl.yaml:[0-9]*:[0-9]*: .*key 'templates'.*instruct.*{instruction}"
job "$T/rows.yaml" "    harmful: small
    n_train: 9
    templates: {instruct: tulu}"
expect_fail "$T/rows.yaml" "rows.yaml:[0-9]*:[0-9]*: .*key 'harmful'.*small.csv.*10 rows.*n_train = 9"
job "$T/chat.yaml" "    n_train: 8"
expect_fail "$T/chat.yaml" "key 'templates': model 'instruct' has no chat template"
echo "refusal bad input: ok"
