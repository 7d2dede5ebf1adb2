#!/bin/bash
# user_mistakes.sh — the mistakes a new user makes in a job, each answered
# by one line that names the file and key (or the output) and says what to
# do, with the exit status the docs give; and docs/own-job.md's table
# ("Mistakes and what mechdiff says") quotes each of those lines as they
# are: a typo in a key, a wrong type, a model folder that does not exist, a
# folder without tokenizer.json, a CSV without a needed column (knowledge;
# refusal, which has a `column` key), an answer word of several tokens, a
# prompt longer than the model's context, two runs on one output, and a
# resume after the job changed (the refusal names the first changed key
# and its experiment, or says that only a model or dataset file changed),
# and an output that is some other program's HDF5 file (never replaced).
# On the shipped pair; validate only, except the last two (selftest jobs).
. "$(dirname "$0")/../lib.sh"
need_pair
DOC=$ROOT/docs/own-job.md
D=$ROOT/data
cd "$WORK"

# doc_has TEXT: the table of docs/own-job.md quotes TEXT.
doc_has() { grep -qF -- "$1" "$DOC" || fail "docs/own-job.md does not quote: $1"; }
# mistake NAME STATUS TEXT...: `mechdiff validate NAME.yaml` exits STATUS,
# its first line names NAME.yaml, and every TEXT is in it and in the doc.
mistake() {
    local job=$1 want=$2
    shift 2
    expect_status "$want" "^$job.yaml:[0-9]*:[0-9]*: " "$MD" validate "$job.yaml"
    for t in "$@"; do
        grep -qF -- "$t" "$WORK/err" || fail "$job: the message lacks '$t': $(head -c 800 "$WORK/err")"
        doc_has "$t"
    done
}
good() {
    cat <<EOF
models:
  base: $ROOT/models/organism-base
  instruct: $ROOT/models/organism-instruct
datasets: {cities: ${1:-$D/cities.csv}, harmful: ${2:-$D/harmful.csv}, harmless: $D/harmless.csv}
experiments:
  - kind: knowledge
    datasets: [cities]
    max_pairs: 4
  - kind: refusal
    n_test: 40
EOF
}
good >ok.yaml
"$MD" validate ok.yaml >/dev/null 2>&1 || fail "the unchanged job does not validate"

good | sed 's/max_pairs: 4/max_pair: 4/' >typo.yaml
mistake typo 2 "key 'max_pair': unknown key in experiments[0] (kind knowledge) (known: kind, name, datasets"

good | sed 's/max_pairs: 4/max_pairs: four/' >type.yaml
mistake type 2 "key 'max_pairs': expected int, got 'four'"

good | sed 's|organism-base$|organism-bas|' >nofolder.yaml
mistake nofolder 2 "key 'models.base': folder '" \
    "does not exist (relative paths are relative to the job file's folder)"

mkdir notok
ln -s "$ROOT/models/organism-base/config.json" "$ROOT/models/organism-base/model.safetensors" notok/
good | sed "s|$ROOT/models/organism-base\$|notok|" >notok.yaml
mistake notok 2 "model 'base': " "tokenizer.json: no such file: the model folder needs the tokenizer.json of its Hugging Face repository"
grep -qF "make-model\` writes none" "$WORK/err" || fail "notok: the message does not say make-model writes no tokenizer"

sed '1s/^statement,label$/statement,lab/' "$D/cities.csv" >lab.csv
good "$WORK/lab.csv" >column.yaml
mistake column 2 "dataset 'cities': " "no column 'label' (columns: statement, lab)"

sed '1s/^instruction$/instr/' "$D/harmful.csv" >instr.csv
good "" "$WORK/instr.csv" >refcolumn.yaml
mistake refcolumn 2 "experiment 'refusal': key 'harmful': " \
    "set the experiment's \`column\` key to the one that holds the instructions"

good | sed "s|    max_pairs: 4|    max_pairs: 4\n    true_word: ' TRUEISH'|" >word.yaml
mistake word 2 "answer words that are not one token: true_word ' TRUEISH' (" \
    "set true_word and false_word in this experiment to words that are one token of every model's tokenizer"

"$PY" - "$D/harmful.csv" long.csv <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
for r in rows[1:]:
    r[0] = "Please explain " + "very " * 600 + r[0]
csv.writer(open(sys.argv[2], "w", newline="")).writerows(rows)
PY
good "" "$WORK/long.csv" >long.yaml
mistake long 2 "key 'harmful': the train prompt of the harmful CSV's row " \
    "more than the max_position_embeddings 512 of model 'base' (leave such long instructions out of the CSV)"

# two runs on one output; a resume after the job changed
cat >run.yaml <<'EOF'
output: run.h5
experiments:
  - {kind: selftest, units: 40, sleep_ms: 150}
EOF
"$MD" run run.yaml --quiet 2>first.err &
pid=$!
for _ in $(seq 100); do [ -e run.h5.lock ] && break; sleep 0.1; done
expect_status 73 "is being written by another run (pid" "$MD" run run.yaml --quiet
grep -qF "wait for it to end or stop it first" "$WORK/err" || fail "lock: no 'wait for it': $(cat "$WORK/err")"
doc_has "is being written by another run (pid N on HOST): wait for it to end or stop it first"
wait $pid || fail "the first run failed: $(cat first.err)"
sed 's/units: 40/units: 30/' run.yaml >changed.yaml
expect_status 1 "was written by a different job (job hash" "$MD" run changed.yaml -o run.h5 --quiet
grep -qF "refusing to resume; use another -o, or --force-new to start over" "$WORK/err" \
    || fail "changed job: no remedy: $(cat "$WORK/err")"
grep -qF "the first difference (experiment 'selftest'): 'units: 40' in the file, 'units: 30' in this job" "$WORK/err" \
    || fail "changed job: the changed key is not named: $(cat "$WORK/err")"
doc_has "was written by a different job (job hash"
doc_has "refusing to resume; use another -o, or --force-new to start over"
doc_has "the first difference (experiment 'knowledge'): 'max_pairs: 4' in the file, 'max_pairs: 3' in this job"
# the same keys, a dataset file changed: said so (before: only 'parameters, models or datasets changed')
printf 'statement,label\na,1\n' >x.csv
printf 'output: ds.h5\ndatasets: {x: x.csv}\nexperiments:\n  - {kind: selftest, units: 4}\n' >ds.yaml
"$MD" run ds.yaml --quiet || fail "the dataset job failed"
echo 'b,0' >>x.csv
expect_status 1 "the job's keys are the same, so a model's weights or config.json or a dataset file changed" \
    "$MD" run ds.yaml --quiet
doc_has "the job's keys are the same, so a model's weights or config.json or a dataset file changed"
# an output path that names some other HDF5 file: left as it is, even with --force-new, and said so
"$PY" -c "import h5py, sys; h5py.File(sys.argv[1], 'w').create_dataset('mine', data=[1, 2])" other.h5 \
    || fail "cannot write other.h5"
sum=$(sha256sum <other.h5)
expect_status 1 "not a mechdiff results file (run leaves it as it is, also with --force-new: use another -o, or move it away)" \
    "$MD" run ds.yaml -o other.h5 --quiet --force-new
[ "$(sha256sum <other.h5)" = "$sum" ] || fail "run changed another program's HDF5 file"
doc_has "not a mechdiff results file (run leaves it as it is, also with --force-new: use another -o, or move it away)"
echo "PASS: every mistake of docs/own-job.md's table gets its line"
