#!/usr/bin/env bash
# A base model paired with a post-trained copy whose vocabulary has tokens
# appended (docs/methods.md, "Pairs of models"): 'ext' is the shipped
# instruct model with <|im_start|>, <|im_end|> and <pad> appended and its
# embedding/lm_head padded to 7320 rows (tests/e2e/lib/extend_vocab.py).
# One job on 3 MPI ranks crosses base with both: knowledge cross patching,
# truth and refusal direction transfer. It runs (exit 0), says once at
# start-up which model has how many ids more, verifies, and every result of
# 'ext' that does not read the appended rows equals that of 'instruct' bit
# for bit (patching effects, activations, directions); the truth
# probabilities, a softmax over each model's own rows, move by little.
# Refused at validate: a knowledge prompt holding an appended token when
# 'ext' tokenises the prompts (the base model lacks it), naming the key,
# dataset, pair, token and model; and a copy whose shared ids disagree.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
need_pair
command -v mpirun >/dev/null || { echo "SKIP: no mpirun"; exit 77; }
$PY "$ROOT/tests/e2e/lib/extend_vocab.py" "$ROOT/models/organism-instruct" "$WORK/ext" --pad-to 8
grep -q '"vocab_size": 7320' "$WORK/ext/config.json" || fail "extended copy: vocab_size"
job() { # $1 file, $2 knowledge models, $3 extra knowledge keys, $4 cities CSV
  cat > "$1" <<YAML
name: vocabpair
models: {base: $ROOT/models/organism-base, instruct: $ROOT/models/organism-instruct, ext: $WORK/ext}
datasets: {cities: $4, animal_class: $ROOT/data/animal_class.csv,
           harmful: $ROOT/data/harmful.csv, harmless: $ROOT/data/harmless.csv}
experiments:
  - kind: knowledge
    models: $2
    datasets: [cities]
    cross: [instruct->base, ext->base, base->instruct, base->ext]
    max_pairs: 4
    $3
  - {kind: truth, train_datasets: [animal_class], test_datasets: [cities], max_statements: 24}
  - kind: refusal
    n_train: 8
    n_test: 4
    max_new_tokens: 8
    templates: {base: base, instruct: chat, ext: chat}
YAML
}
job "$WORK/job.yaml" "[ext, base, instruct]" "" "$ROOT/data/cities.csv"
"$MECHDIFF" validate "$WORK/job.yaml" > "$WORK/validate.out" || fail "validate refused the pair"
$MPIRUN -np 3 "$MECHDIFF" run "$WORK/job.yaml" -o "$WORK/r.h5" 2> "$WORK/run.err" || { cat "$WORK/run.err"; fail "run"; }
[ "$(grep -c "vocabularies differ" "$WORK/run.err")" = 1 ] || { cat "$WORK/run.err"; fail "no one start-up line on the vocabularies"; }
grep -q "'ext' has 10 ids more than 'base' (vocab_size 7320 vs 7310)" "$WORK/run.err" || fail "start-up line: $(grep vocabularies "$WORK/run.err")"
"$MECHDIFF" verify "$WORK/r.h5" > "$WORK/verify.out" || { cat "$WORK/verify.out"; fail "verify"; }
/usr/bin/python3 - "$WORK/r.h5" <<'PY'
import json, sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
def same(x, y, what):
    assert x.shape == y.shape and np.array_equal(x, y), what
def names(d):
    return [n.decode() if isinstance(n, bytes) else str(n) for n in f[d][...]]
k = "knowledge/cities"
for what in ("effect", "clean_true", "clean_false"):
    same(f[f"{k}/instruct->base/{what}"][...], f[f"{k}/ext->base/{what}"][...], f"ext->base {what}")
    same(f[f"{k}/base->instruct/{what}"][...], f[f"{k}/base->ext/{what}"][...], f"base->ext {what}")
    same(f[f"{k}/instruct->instruct/{what}"][...], f[f"{k}/ext->ext/{what}"][...], f"ext->ext {what}")
assert np.abs(f[f"{k}/base->ext/effect"][...]).max() > 0
for p in ("direction/%s", "acts/%s/cities", "acts/%s/animal_class", "probe/%s"):
    same(f["truth/" + p % "instruct"][...], f["truth/" + p % "ext"][...], "truth " + p)
m = names("truth/interv/cities/target")
pt = f["truth/interv/cities/p_true"][...]                 # [target, condition, statement]
d = np.abs(pt[m.index("instruct")] - pt[m.index("ext")]).max()
assert 0 < d < 0.05, f"truth P(TRUE) of instruct vs ext: {d}"
r = names("refusal/model")
same(f["refusal/direction"][r.index("instruct")], f["refusal/direction"][r.index("ext")], "refusal direction")
prov = {m: json.loads(f[f"provenance/models/{m}"].attrs["config_json"])["vocab_size"] for m in ("base", "ext")}
assert prov == {"base": 7310, "ext": 7320}, prov
print(f"vocab_pair: ext equals instruct bit for bit where no appended row is read; P(TRUE) moves by {d:.2e}")
PY
# refused: an appended token in the prompts when ext (the larger) tokenises them
sed 's/\./ <|im_start|>./' "$ROOT/data/cities.csv" > "$WORK/cities_im.csv"
job "$WORK/bad.yaml" "[ext, base]" "" "$WORK/cities_im.csv"
expect_status 2 "does not have" "$MECHDIFF" validate "$WORK/bad.yaml"
for want in "bad.yaml:[0-9]*:[0-9]*: experiment 'knowledge': key 'datasets': dataset 'cities': the TRUE prompt of pair 0 holds token 7310 '<|im_start|>'" \
            "which model 'base' ($ROOT/models/organism-base) does not have (its tokenizer has 7310 ids)" \
            "tokenised once, by model 'ext'"; do
  grep -qF -- "$want" "$WORK/err" 2>/dev/null || grep -q -- "$want" "$WORK/err" || fail "lacks: $want -- $(cat "$WORK/err")"
done
$MPIRUN -np 2 "$MECHDIFF" run "$WORK/bad.yaml" -o "$WORK/bad.h5" 2> "$WORK/err" && fail "run accepted the bad job"
grep -q "does not have" "$WORK/err" || fail "run: $(cat "$WORK/err")"
[ ! -e "$WORK/bad.h5" ] || fail "a refused job wrote results"
# the same text tokenised by the base model (first) is pieces both models have: accepted
job "$WORK/ok.yaml" "[base, ext]" "" "$WORK/cities_im.csv"
"$MECHDIFF" validate "$WORK/ok.yaml" > /dev/null || fail "base-first prompts with the marker's text refused"
# refused: a copy whose shared ids disagree (two model pieces swapped), naming the id and both tokens
mkdir "$WORK/swap"
cp "$WORK/ext"/* "$WORK/swap/"
$PY - "$WORK/swap/tokenizer.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
v = t["model"]["vocab"]
inv = {i: p for p, i in v.items()}
v[inv[500]], v[inv[501]] = 501, 500
json.dump(t, open(sys.argv[1], "w"), ensure_ascii=False)
PY
sed "s#ext: $WORK/ext#ext: $WORK/swap#" "$WORK/job.yaml" > "$WORK/swap.yaml"
expect_status 2 "do not pair" "$MECHDIFF" validate "$WORK/swap.yaml"
grep -q "token id 500 is '.*' in 'ext' and '.*' in 'base'\|token id 500 is '.*' in 'base' and '.*' in 'ext'" "$WORK/err" || fail "swap: $(cat "$WORK/err")"
grep -qF "$WORK/swap" "$WORK/err" || fail "swap: the folder is not named"
echo "vocab_pair: ok"
