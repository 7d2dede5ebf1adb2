#!/usr/bin/env bash
# A new user's mistakes on the command line (the walkthrough of every
# subcommand, 2026-12-07), each answered on stderr with a line that starts
# "mechdiff SUB: " and says what is wrong and what to give, nothing on
# stdout, and the exit status of README.md's "Exit status of every command":
# 2 for a bad command line (missing or extra arguments, an option without
# its value, a value out of range: checked before a model loads, the usage
# follows), 1 for a file that is missing, of the wrong kind or unreadable
# (one line). Before: a bare usage without a reason (inspect, tokenize,
# forward, generate, status), "'--x' needs a value" for an unknown option,
# exit 1 for a missing --prompt/--ids, "make-model: make-model: ...",
# --chat-template ignored without --chat, "writing /tmp failed" for -o
# FOLDER, status's and merge's "another -o, or --force-new" for a forward
# output, merge's "not a readable HDF5 file" for a part that does not exist.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
O=$ROOT/models/organism-base
printf 'name: x\nexperiments:\n  - {kind: selftest, units: 4}\n' > "$T/job.yaml"
mkdir "$T/empty"
# $1 = status, $2 = pattern of stderr's first line (after "mechdiff SUB: "), rest = mechdiff's arguments
check() {
  local want=$1 pat=$2 rc=0
  shift 2
  "$MD" "$@" > "$T/out" 2> "$T/err" || rc=$?
  local what="mechdiff $*"
  [ "$rc" = "$want" ] || fail "$what: status $rc (want $want): $(head -c 400 "$T/err")"
  [ ! -s "$T/out" ] || fail "$what: wrote to stdout: $(head -c 200 "$T/out")"
  head -1 "$T/err" | grep -q -- "^mechdiff ${1}: $pat" || fail "$what: first line: $(head -1 "$T/err") (want 'mechdiff $1: $pat')"
  if [ "$want" = 2 ]; then grep -q "^usage: " "$T/err" || [ "$1" = make-model ] || fail "$what: no usage after the reason"
  else [ "$(wc -l < "$T/err")" = 1 ] || fail "$what: more than one line: $(head -c 600 "$T/err")"; fi
}
rc=0; "$MD" > "$T/out" 2> "$T/err" || rc=$?
[ "$rc" = 2 ] && head -1 "$T/err" | grep -q "^mechdiff: no command given" || fail "mechdiff alone: $rc $(head -1 "$T/err")"
rc=0; "$MD" nosuch 2> "$T/err" || rc=$?
[ "$rc" = 2 ] && head -1 "$T/err" | grep -q "^mechdiff: unknown command 'nosuch'" || fail "unknown command: $rc"

check 2 "no model folder given" inspect
check 2 "one model folder at a time ('x' is a second)" inspect "$O" x
check 1 "$T/nowhere: no such folder; give the folder of a Hugging Face checkpoint" inspect "$T/nowhere"
check 1 "$T/job.yaml: a file, not a folder; give the model folder that holds it" inspect "$T/job.yaml"
check 1 "$T/empty: not a model folder (no config.json)" inspect "$T/empty"

check 2 "no tokenizer folder and TEXT given" tokenize
check 2 "no TEXT given" tokenize "$O"
check 2 "--chat-template needs a value" tokenize "$O" hi --chat --chat-template
check 2 "--chat-template needs --chat" tokenize "$O" hi --chat-template llama3
check 2 "unknown option '--jsn'" tokenize "$O" hi --jsn
check 1 "$T/nowhere: no such folder" tokenize "$T/nowhere" hi

check 2 "no model folder given" forward
check 2 "no output file given: -o OUT.h5" forward "$O" --ids 1
check 2 "-o needs a value" forward "$O" --ids 1 -o
check 2 "--hooks needs a value" forward "$O" --ids 1 --hooks
check 2 "--ids needs a value" forward "$O" -o "$T/f.h5" --ids
check 2 "no prompt given: give one of --prompt TEXT, --chat TEXT, --ids 1,2,3" forward "$O" -o "$T/f.h5"
check 2 "give one of --prompt TEXT, --chat TEXT, --ids 1,2,3, not several" forward "$O" --ids 1 --prompt hi -o "$T/f.h5"
check 2 "--chat-template needs --chat" forward "$O" --ids 1 --chat-template llama3 -o "$T/f.h5"
check 2 "--hooks: unknown hook point 'resid'" forward "$O" --ids 1 --hooks resid -o "$T/f.h5"
check 2 "unknown option '-x'" forward "$O" --ids 1 -x -o "$T/f.h5"
check 1 "$T/empty: the output exists and is not a regular file (a folder)" forward "$O" --ids 1 -o "$T/empty"
check 1 "$T/nowhere: no such folder" forward "$T/nowhere" --ids 1 -o "$T/new/f.h5"
[ ! -e "$T/new" ] || fail "forward of a missing model created the output's folder"
"$MD" forward "$O" --ids 1,2 -o "$T/new/sub/f.h5" || fail "forward into a folder that does not exist yet"
[ -f "$T/new/sub/f.h5" ] && [ ! -e "$T/new/sub/f.h5.tmp" ] || fail "forward: no $T/new/sub/f.h5"

check 2 "no model folder given" generate
check 2 "no prompt given" generate "$O"
check 2 "-n '0' must be an integer in 1..[0-9]*" generate "$O" --ids 1 -n 0
check 2 "-n 'ten' must be an integer" generate "$O" --ids 1 -n ten
check 2 "-n needs a value" generate "$O" --ids 1 -n
check 2 "--chat-template: neither a name (base, llama3, llama2, mistral, tulu, model) nor a format string with {instruction}" \
  generate "$O" --chat hi --chat-template lama3
check 2 "unexpected argument 'there' (one model folder; quote TEXT as one argument)" generate "$O" --prompt hi there
check 1 "$T/job.yaml: a file, not a folder" generate "$T/job.yaml" --ids 1

check 2 "--like, --layers, --seed and -o are required" make-model
check 2 "unknown option '--layer' (see --help)" make-model --layer 2
check 2 "unknown family 'llama3' for --like (use llama3-8b" make-model --like llama3 --layers 1 --seed 1 -o "$T/m"
check 2 "'--seed' needs a value" make-model --like llama3-8b --seed
check 1 "$T/job.yaml exists and is not a folder: -o names the folder" make-model --like llama3-8b --layers 1 --seed 1 \
  --vocab 16 -o "$T/job.yaml"

check 2 "no job file given" validate
check 2 "one job file at a time ('x' is a second)" validate "$T/job.yaml" x
check 2 "--keys takes nothing else" validate --keys "$T/job.yaml"
check 2 "unknown option '--keyz'" validate --keyz
# a job file that cannot be read is invalid (validate: 0 valid, 2 invalid), in one line
for bad in "$T/nowhere.yaml:cannot open job file" "$T/empty:is a folder; give the path of a job file" \
           "$T/new/sub/f.h5:contains NUL bytes: not a YAML text file"; do
  rc=0; "$MD" validate "${bad%%:*}" > "$T/out" 2> "$T/err" || rc=$?
  [ "$rc" = 2 ] && [ ! -s "$T/out" ] && [ "$(wc -l < "$T/err")" = 1 ] &&
    grep -q "^mechdiff validate: ${bad%%:*}: ${bad#*:}" "$T/err" || fail "validate ${bad%%:*}: $rc $(cat "$T/err")"
done

check 2 "no results file given" status
check 2 "one results file at a time ('x' is a second)" status "$T/new/sub/f.h5" x
check 1 "$T/nowhere.h5: no such file (no run has written this output yet)" status "$T/nowhere.h5"
check 1 "$T/empty: a folder, not a results file" status "$T/empty"
check 1 "$T/job.yaml: not a readable HDF5 file" status "$T/job.yaml"
check 1 "$T/new/sub/f.h5: the output of .mechdiff forward. (one forward pass: /logits, /token_ids), not the results file of a job" \
  status "$T/new/sub/f.h5"

check 2 "no output and part files given" merge
check 2 "no part files given" merge "$T/m.h5"
check 1 "$T/nowhere.h5: no such file" merge "$T/m.h5" "$T/nowhere.h5"
check 2 "no results file given" verify
check 2 "one results file at a time ('x' is a second)" verify "$T/f.h5" x
check 2 "unknown option '--quit'" verify "$T/f.h5" --quit
check 4 "$T/nowhere.h5: no such file; give the OUT.h5 a run wrote" verify "$T/nowhere.h5"
check 4 "$T/empty: a folder, not a results file" verify "$T/empty"
check 1 "$T/new/sub/f.h5: the output of .mechdiff forward., not\|$T/new/sub/f.h5: the output of .mechdiff forward. (one" \
  merge "$T/m.h5" "$T/new/sub/f.h5"
[ ! -e "$T/m.h5" ] || fail "a refused merge wrote its output"

# unreadable files (root reads them anyway: skipped as root)
if [ "$(id -u)" != 0 ]; then
  "$MD" run "$T/job.yaml" -o "$T/res.h5" --quiet
  chmod 000 "$T/res.h5"
  check 1 "$T/res.h5: .*ermission denied" status "$T/res.h5"
  mkdir "$T/locked"; cp "$O/config.json" "$T/locked/"; chmod 000 "$T/locked/config.json"
  check 1 ".*config.json.*ermission denied" inspect "$T/locked"
  chmod 000 "$T/job.yaml"
  rc=0; "$MD" validate "$T/job.yaml" 2> "$T/err" || rc=$?
  [ "$rc" = 2 ] && grep -q "ermission denied" "$T/err" || fail "validate of an unreadable job: $rc $(cat "$T/err")"
else
  echo "cli_errors: running as root: the unreadable-file cases are skipped (root reads them)"
fi
echo "cli_errors: ok"
