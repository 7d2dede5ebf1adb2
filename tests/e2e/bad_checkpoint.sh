#!/usr/bin/env bash
# Checkpoints that lie (issue 14 items 5 and 6): config.json numbers outside
# their type's range, a config whose layer count disagrees with the tensors,
# and weights files that are not regular files. Each is refused with a
# message naming the key / tensor / file, and nothing hangs.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
G=tests/golden/models
expect_fail() { # $1 = pattern expected in stderr, rest = command
  local pat=$1; shift
  local rc=0
  timeout 20 "$@" > "$T/out" 2> "$T/err" || rc=$?
  [ "$rc" -ne 0 ] || fail "accepted: $*"
  [ "$rc" -ne 124 ] || fail "hung (killed after 20 s): $*"
  grep -q -- "$pat" "$T/err" || fail "message for '$*' lacks '$pat': $(cat "$T/err")"
  if grep -q "Sanitizer\|runtime error" "$T/err"; then cat "$T/err"; fail "sanitizer report on: $*"; fi
}
# edit KEY=JSON... : a copy of llama3_f32 with config.json keys replaced
edit() {
  local name=$1; shift
  rm -rf "$T/$name"; cp -r "$G/llama3_f32" "$T/$name"
  "$PY" - "$T/$name/config.json" "$@" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
for kv in sys.argv[2:]:
    k, v = kv.split("=", 1); obj = c; parts = k.split(".")
    for part in parts[:-1]: obj = obj[part]
    obj[parts[-1]] = json.loads(v)
json.dump(c, open(p, "w"))
PY
}

# item 5: numbers out of range
edit eps_tiny rms_norm_eps=1e-50;   expect_fail "rms_norm_eps" "$MD" inspect "$T/eps_tiny"
edit eps_huge rms_norm_eps=1e300;   expect_fail "rms_norm_eps" "$MD" inspect "$T/eps_huge"
edit orig rope_parameters.original_max_position_embeddings=1e30
expect_fail "original_max_position_embeddings" "$MD" forward "$T/orig" --ids 1,2 -o "$T/x.h5"
edit theta rope_parameters.rope_theta=1e300; expect_fail "rope_theta" "$MD" inspect "$T/theta"
# item 5: the config and the tensors disagree
edit fewer num_hidden_layers=1;     expect_fail "model.layers.1" "$MD" forward "$T/fewer" --ids 1,2 -o "$T/x.h5"
edit more num_hidden_layers=3;      expect_fail "layer 2" "$MD" inspect "$T/more"
[ ! -e "$T/x.h5" ] || fail "a refused checkpoint left an output file"

# item 6: a FIFO / a directory / a device as the weights file must not block
mkdir "$T/fifo"; cp "$G/llama3_f32/config.json" "$T/fifo/"
mkfifo "$T/fifo/model.safetensors"
expect_fail "not a regular file" "$MD" inspect "$T/fifo"
mkdir "$T/dirw"; cp "$G/llama3_f32/config.json" "$T/dirw/"; mkdir "$T/dirw/model.safetensors"
expect_fail "not a regular file" "$MD" inspect "$T/dirw"
mkdir "$T/dev"; cp "$G/llama3_f32/config.json" "$T/dev/"; ln -s /dev/zero "$T/dev/model.safetensors"
expect_fail "not a regular file" "$MD" inspect "$T/dev"
# a FIFO as config.json or as a shard named by the index
mkdir "$T/fifocfg"; mkfifo "$T/fifocfg/config.json"
expect_fail "not a regular file" "$MD" inspect "$T/fifocfg"
cp -r "$G/llama3_sharded_f32" "$T/fifoshard"
shard=$(ls "$T/fifoshard"/model-0000*-of-*.safetensors | tail -1)
rm "$shard"; mkfifo "$shard"
expect_fail "not a regular file" "$MD" inspect "$T/fifoshard"
# a FIFO as tokenizer.json, tokenizer_config.json or chat_template.jinja
# (read by tokenize, inspect and every job) is refused, never read
for f in tokenizer.json tokenizer_config.json chat_template.jinja; do
  rm -rf "$T/fifotok"; cp -r tests/golden/tokenizers/bytelevel "$T/fifotok"; rm -f "$T/fifotok/$f"; mkfifo "$T/fifotok/$f"
  expect_fail "$f.*not a regular file" "$MD" tokenize "$T/fifotok" hello
done
echo "bad_checkpoint: ok"
