#!/usr/bin/env bash
# One clear line for the small error cases of issue 14 item 10 (the job-file
# ones are in job_limits.sh): no HDF5 error stack before the message for a
# corrupt output, a folder output or `status` of a missing file; `merge` of
# files that are not parts says so (was "part -1 of a job split into 0
# parts"); an overflowing tensor shape is named as such (was "size = 0
# bytes"); `validate` says a problem that both the check and the plan of a kind
# find once (was twice: 'key 'models': 0 roles' of truth and refusal); a
# missing model folder once, at its key; a role outside the models map once
# (also beside another model's missing folder). The mistakes of a user on
# real checkpoints (docs/real-model.md, walkthrough): both answer words that
# split, the folder above the model folders, the weights file for its folder,
# a misspelt role in refusal's templates, the llama3 template on another
# vocabulary, prompts longer than the context (not those the sweep never
# runs).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
# one problem in one line (validate adds its summary line), no HDF5 stack
expect() { # $1 = status, $2 = pattern, rest = command
  expect_status "$@"
  [ "$(grep -vc ': invalid (1 problem above): fix it and run .mechdiff validate' "$T/err")" = 1 ] ||
    fail "more than one line from: ${*:3} -- $(head -c 600 "$T/err")"
}
printf 'name: x\nexperiments:\n  - {kind: selftest, units: 4, rows: 2, cols: 2}\n' > "$T/job.yaml"
"$MD" run "$T/job.yaml" -o "$T/whole.h5" --quiet
expect 1 "not a part" "$MD" merge "$T/m.h5" "$T/whole.h5" "$T/whole.h5"
expect 1 "no such file" "$MD" status "$T/absent.h5"
expect 1 "a folder" "$MD" status "$T"
echo junk > "$T/junk.h5"
expect 1 "not a readable HDF5 file" "$MD" status "$T/junk.h5"
expect 1 "not a readable HDF5 file" "$MD" merge "$T/m.h5" "$T/junk.h5"
expect 1 "not a readable HDF5 file" "$MD" run "$T/job.yaml" -o "$T/junk.h5" --quiet
mkdir "$T/dir.h5"
expect 1 "not a regular file" "$MD" run "$T/job.yaml" -o "$T/dir.h5" --quiet
# a tensor whose shape overflows 64 bits
mkdir "$T/ovf"; cp tests/golden/models/llama3_f32/config.json "$T/ovf/"
/usr/bin/python3 - "$T/ovf/model.safetensors" <<'PY'
import json, struct, sys
h = json.dumps({"w": {"dtype": "F32", "shape": [2**62, 2**62], "data_offsets": [0, 0]}}).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h)
PY
expect 1 "overflows 64 bits" "$MD" inspect "$T/ovf"
for kind in truth refusal refusal_sweep confidence; do
  printf 'experiments:\n  - {kind: %s}\n' "$kind" > "$T/nomodels.yaml"
  expect 2 "experiment '$kind': key 'models': 0 roles" "$MD" validate "$T/nomodels.yaml"
  # a model folder that does not exist: said once, at its key (was also "no
  # weights" and the kind's "config.json: cannot open", twice for confidence)
  printf 'models: {base: %s}\nexperiments:\n  - {kind: %s}\n' "$T/nowhere" "$kind" > "$T/nofolder.yaml"
  expect 2 "key 'models.base': folder .* does not exist" "$MD" validate "$T/nofolder.yaml"
  [ ! -s "$T/out" ] || fail "$kind: an invalid job printed its plan: $(head -3 "$T/out")"
  # a role the models map lacks (confidence printed "(null)/config.json")
  printf 'models: {base: %s}\nexperiments:\n  - {kind: %s, models: [base, nope]}\n' "$PWD/models/organism-base" \
    "$kind" > "$T/norole.yaml"
  expect 2 "experiment '$kind': key 'models': role 'nope' is not in the job's models map" "$MD" validate "$T/norole.yaml"
  # ... also when another model's folder is missing: the experiment uses only its own list (its role
  # was not checked and it was 'not planned' for the folder of a model it does not use)
  printf 'models: {base: %s}\nexperiments:\n  - {kind: %s, models: [nope]}\n' "$T/nowhere" "$kind" > "$T/norole2.yaml"
  expect_status 2 "experiment '$kind': key 'models': role 'nope' is not in the job's models map" "$MD" validate \
    "$T/norole2.yaml"
  [ ! -s "$T/out" ] || fail "$kind: an invalid job printed its plan: $(head -3 "$T/out")"
done
# Mistakes of a user pointing a job at real checkpoints (the walkthrough of
# docs/real-model.md, 2026-12-07), each one clear message naming the key:
O="$PWD/models/organism-base" I="$PWD/models/organism-instruct"
# both answer words that split are named at once, with their pieces (only
# true_word was, and the fix was a guess)
printf 'models: {base: %s}\ndatasets: {cities: %s}\nexperiments:\n  - {kind: knowledge, datasets: [cities], true_word: " True", false_word: " False"}\n' \
  "$O" "$PWD/data/cities.csv" > "$T/words.yaml"
expect 2 "words.yaml:4:5: experiment 'knowledge': model 'base' (.*): answer words that are not one token: true_word ' True' ([0-9] pieces: .*), false_word ' False' ([0-9] pieces: .*); set true_word and false_word" \
  "$MD" validate "$T/words.yaml"
# the folder above the model folders: names them (was "no weights ... incomplete download?", no line)
printf 'models: {base: %s}\nexperiments:\n  - {kind: confidence}\n' "$PWD/models" > "$T/parent.yaml"
expect_status 2 "parent.yaml:1:9: key 'models.base': .*not a model folder .* but it holds model folders: .*organism-base.*; name one of them" \
  "$MD" validate "$T/parent.yaml"
# the weights file instead of its folder: once, at its key (was also "no weights" without a line)
printf 'models: {base: %s/model.safetensors}\nexperiments:\n  - {kind: confidence}\n' "$O" > "$T/file.yaml"
expect_status 2 "key 'models.base': expected a folder, got file .* (give the folder that holds it)" "$MD" validate "$T/file.yaml"
grep -q "no weights" "$T/err" && fail "the weights file is reported twice: $(cat "$T/err")"
# a misspelt role in refusal's per-role maps (silently fell back to the default)
printf 'models: {base: %s, instruct: %s}\ndatasets: {harmful: %s, harmless: %s}\nexperiments:\n  - {kind: refusal, n_train: 4, n_test: 2, templates: {Instruct: chat}}\n' \
  "$O" "$I" "$PWD/data/harmful.csv" "$PWD/data/harmless.csv" > "$T/role.yaml"
expect 2 "key 'templates': 'Instruct' is not a role of the job's models map (base, instruct)" "$MD" validate "$T/role.yaml"
# the Llama-3 template on a model whose vocabulary lacks its special tokens (was rendered as plain text)
sed 's/templates: {Instruct: chat}/templates: {base: llama3}/' "$T/role.yaml" > "$T/llama3.yaml"
expect 2 "key 'templates': 'llama3' for role 'base': '<|start_header_id|>' is [0-9]* tokens of this model's tokenizer" \
  "$MD" validate "$T/llama3.yaml"
# prompts longer than the model's context (max_position_embeddings): validate
# said valid, the run failed in stage 1 ("forward: N positions exceed ...").
# truth's few-shot prompts and refusal's prompt + generation are checked now,
# exactly: the largest max_new_tokens validate accepts runs, one more is refused.
mkdir "$T/short"
for f in "$O"/*; do ln -s "$f" "$T/short/"; done
rm "$T/short/config.json"
sed 's/"max_position_embeddings": [0-9]*/"max_position_embeddings": 40/' "$O/config.json" > "$T/short/config.json"
printf 'models: {base: %s}\ndatasets: {cities: %s, facts: %s}\nexperiments:\n  - {kind: truth, train_datasets: [facts], test_datasets: [cities], n_shots: 4, max_statements: 8}\n' \
  "$T/short" "$PWD/data/cities.csv" "$PWD/data/facts.csv" > "$T/ctx_truth.yaml"
expect 2 "experiment 'truth': key 'n_shots': dataset 'cities': the few-shot prompt of CSV row [0-9]* (0-based) has [0-9]* tokens, more than the max_position_embeddings 40" \
  "$MD" validate "$T/ctx_truth.yaml"
{ echo "statement,label"; echo "$(printf 'Paris is in France and %.0s' $(seq 1 12))so on.,1"; } > "$T/long.csv"
# a bare statement (stage 0) longer than the context, at the key of its dataset list
{ cat "$PWD/data/facts.csv"; tail -1 "$T/long.csv"; } > "$T/longfacts.csv"
printf 'models: {base: %s}\ndatasets: {cities: %s, facts: %s}\nexperiments:\n  - {kind: truth, train_datasets: [facts], test_datasets: [cities], n_shots: 0}\n' \
  "$T/short" "$PWD/data/cities.csv" "$T/longfacts.csv" > "$T/ctx_stmt.yaml"
expect 2 "experiment 'truth': key 'train_datasets': dataset 'facts': the statement of CSV row $(($(wc -l < "$T/longfacts.csv") - 2)) (0-based) has [0-9]* tokens, more than the max_position_embeddings 40 of model 'base' (shorter statements)" \
  "$MD" validate "$T/ctx_stmt.yaml"
printf 'models: {base: %s}\ndatasets: {long: %s}\nexperiments:\n  - {kind: confidence, prompts: long}\n' \
  "$T/short" "$T/long.csv" > "$T/ctx_conf.yaml"
expect 2 "experiment 'confidence': key 'prompts': the prompt of CSV row 0 (0-based) has [0-9]* tokens, more than the max_position_embeddings 40" \
  "$MD" validate "$T/ctx_conf.yaml"
new=40
for i in 1 2 3 4 5 6 7 8 9 10; do
  printf 'models: {base: %s}\ndatasets: {harmful: %s, harmless: %s}\nexperiments:\n  - {kind: refusal, n_train: 4, n_test: 4, max_new_tokens: %d, batch: 4}\n' \
    "$T/short" "$PWD/data/harmful.csv" "$PWD/data/harmless.csv" "$new" > "$T/ctx_refusal.yaml"
  "$MD" validate "$T/ctx_refusal.yaml" > /dev/null 2> "$T/err" && break
  grep -q "key 'max_new_tokens': the test prompt of the harmful CSV's row [0-9]* (0-based) needs [0-9]* positions" "$T/err" ||
    fail "refusal context: $(cat "$T/err")"
  need=$(sed -n 's/.* needs \([0-9]*\) positions.*/\1/p' "$T/err")
  new=$((new - (need - 40)))
done
[ "$new" -lt 40 ] || fail "refusal: max_new_tokens 40 with a 40-token context was accepted"
"$MD" run "$T/ctx_refusal.yaml" -o "$T/ctx.h5" --quiet 2> "$T/err" || fail "refusal with max_new_tokens $new (validate: fits) failed: $(tail -2 "$T/err")"
sed -i "s/max_new_tokens: $new/max_new_tokens: $((new + 1))/" "$T/ctx_refusal.yaml"
expect 2 "key 'max_new_tokens'.* needs 41 positions" "$MD" validate "$T/ctx_refusal.yaml"
echo "refusal context 40: max_new_tokens $new validates and runs, $((new + 1)) is refused"
# the sweep generates from harmful test prompts only: a harmless test prompt
# longer than the context is never run, so it is not refused (98bce8e did);
# one long harmless row at a time: train rows are refused, the test row runs
long="$(printf 'Tell me about Paris and France %.0s' $(seq 1 8))now."
ran=0
for j in 0 1 2 3 4; do
  { echo instruction; for r in 0 1 2 3 4; do if [ "$r" = "$j" ]; then echo "$long"; else echo "Write a poem"; fi; done; } > "$T/h$j.csv"
  printf 'models: {base: %s}\ndatasets: {harmful: %s, harmless: %s}\nexperiments:\n  - {kind: refusal_sweep, n_train: 4, n_test: 1, layers: [0], positions: [-1], max_new_tokens: 2, batch: 4}\n' \
    "$T/short" "$PWD/data/harmful.csv" "$T/h$j.csv" > "$T/sw$j.yaml"
  if "$MD" validate "$T/sw$j.yaml" > /dev/null 2> "$T/err"; then
    "$MD" run "$T/sw$j.yaml" -o "$T/sw$j.h5" --quiet 2> "$T/err" || fail "sweep, long harmless test row $j: validate passed, run failed: $(tail -2 "$T/err")"
    ran=$((ran + 1))
  else
    grep -q "the train prompt of the harmless CSV's row $j (0-based)" "$T/err" || fail "sweep, long harmless row $j: $(cat "$T/err")"
  fi
done
[ "$ran" = 1 ] || fail "sweep: $ran of 5 harmless rows ran (want the 1 test row)"
# validate reports every failed check of an experiment, a line each naming
# the file, the experiment and the key, then one line saying what to do, and
# no plan (it reported the first failed check, then the plan of the others:
# here the selftest's)
problems() { # $1 = count, $2 = job file, rest = one pattern per problem line
  local n=$1 job=$2 p
  shift 2
  expect_status 2 "$(basename "$job"): invalid ($n problems above): fix them and run .mechdiff validate $job. again" \
    "$MD" validate "$job"
  [ "$(grep -c "^$job:[0-9]*:[0-9]*: " "$T/err")" = "$n" ] || fail "$job: not $n problem lines: $(cat "$T/err")"
  [ "$(wc -l < "$T/err")" = $((n + 1)) ] || fail "$job: more than the problems and the summary: $(cat "$T/err")"
  for p in "$@"; do grep -q -- "$p" "$T/err" || fail "$job: no line '$p': $(cat "$T/err")"; done
  [ ! -s "$T/out" ] || fail "$job: an invalid job printed its plan: $(head -3 "$T/out")"
}
printf 'models: {base: %s}\ndatasets: {cities: %s, facts: %s}\nexperiments:\n  - {kind: truth, train_datasets: [facts], test_datasets: [cities], n_shots: 4, max_statements: 8, true_word: " True", layer: 40}\n  - {kind: selftest, units: 4}\n' \
  "$T/short" "$PWD/data/cities.csv" "$PWD/data/facts.csv" > "$T/many_truth.yaml"
problems 3 "$T/many_truth.yaml" "experiment 'truth': model 'base' .*: answer words .* true_word ' True'" \
  "experiment 'truth': key 'n_shots': dataset 'cities'" "experiment 'truth': key 'layer': 40 but model 'base' has 4 layers"
# the walkthrough's case: a knowledge pair whose answer words split is also told that its widths differ
tiny_model "$T/tiny" 1 "$O/tokenizer.json"
printf 'models: {base: %s, small: %s}\ndatasets: {cities: %s}\nexperiments:\n  - {kind: knowledge, datasets: [cities], true_word: " True", cross: [base->small]}\n' \
  "$O" "$T/tiny" "$PWD/data/cities.csv" > "$T/many_kn.yaml"
problems 3 "$T/many_kn.yaml" "experiment 'knowledge': model 'base' .*: answer words" \
  "experiment 'knowledge': model 'small' .*: answer words" "experiment 'knowledge': key 'cross': .*d_model differs (128 vs 64)"
# refusal: a misspelt role, the layer (once for models of the same depth), a coefficient
printf 'models: {base: %s, instruct: %s}\ndatasets: {harmful: %s, harmless: %s}\nexperiments:\n  - {kind: refusal, n_train: 4, n_test: 2, templates: {Instruct: chat}, coefficients: {base: x}, layer: 40}\n' \
  "$O" "$I" "$PWD/data/harmful.csv" "$PWD/data/harmless.csv" > "$T/many_rf.yaml"
problems 3 "$T/many_rf.yaml" "key 'templates': 'Instruct' is not a role" "key 'layer'/'addition_layer': 40/40 but models 'base', 'instruct' have 4 layers" \
  "key 'coefficients': 'x' for role 'base' is not a number"
# confidence: the prompts against the context of each model
printf 'models: {base: %s, other: %s}\ndatasets: {long: %s}\nexperiments:\n  - {kind: confidence, prompts: long}\n' \
  "$T/short" "$T/short" "$T/long.csv" > "$T/many_conf.yaml"
problems 2 "$T/many_conf.yaml" "key 'prompts': .* of model 'base'" "key 'prompts': .* of model 'other'"
# a valid job: its plan and the valid line, nothing on stderr
"$MD" validate "$T/job.yaml" > "$T/out" 2> "$T/err" || fail "validate of a valid job: $(cat "$T/err")"
[ ! -s "$T/err" ] && grep -q "^  /selftest (kind selftest): stage 0: 4 units" "$T/out" && grep -q "job.yaml: valid; output " "$T/out" ||
  fail "validate of a valid job: $(cat "$T/out" "$T/err")"
echo "small_errors: ok"
