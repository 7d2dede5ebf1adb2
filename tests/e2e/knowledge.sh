#!/usr/bin/env bash
# knowledge kind on the shipped model pair:
#  1. the prefix-reuse batched path equals the naive path (one full forward
#     per cell) within 1e-4 logits (fp32 math, different GEMM row counts);
#  2. pair_block (pairs per unit, batched through the weights together):
#     blocks of 4 (+ a last block of 2) and of 16 (one block of 6) against
#     blocks of 1: the hidden states (acts_*) are bit-identical and the
#     logit differences agree within 1e-5 x max |effect|: only the rounding
#     of fp32 sums changes with the GEMM's row count (measured: <= 6.6e-7
#     relative, a few float32 ulps); naive is computed pair by pair, so its
#     results do not depend on pair_block at all; the same with left padding
#     (larger_than: a block whose prompts differ in length), and against naive;
#     1 rank and 3 MPI ranks give bit-identical datasets; runtime.fp32_cache_mb
#     0 (every bf16 weight converted on the fly, in row blocks) agrees with
#     the default cache within 1e-4 logits (fp32 GEMMs of different shapes);
#  3. patching the last position at the last layer reproduces the TRUE run
#     exactly (a check of where the patch lands); analysis/knowledge.py
#     writes its table and heatmaps;
#  4. a target word that is not one token, and a model pair whose tokenizers
#     differ, are errors at file:line:col.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
need_pair
job() { # $1 = file, $2 = naive, $3 = fp32_cache_mb, $4 = pair_block
  cat > "$1" <<YAML
name: knowledge-test
$(job_pair cities)
runtime: {fp32_cache_mb: ${3:-256}}
experiments:
  - kind: knowledge
    datasets: [cities]
    cross: [all]
    max_pairs: 6
    naive: $2
    store_activations: true
    pair_block: ${4:-0}
YAML
}
job "$T/fast.yaml" false
job "$T/naive.yaml" true
job "$T/nocache.yaml" false 0
job "$T/block1.yaml" false 256 1
job "$T/block4.yaml" false 256 4
"$MD" validate "$T/fast.yaml"
"$MD" run "$T/fast.yaml" -o "$T/fast.h5"
"$MD" run "$T/naive.yaml" -o "$T/naive.h5"
"$MD" run "$T/nocache.yaml" -o "$T/nocache.h5"
"$MD" run "$T/block1.yaml" -o "$T/block1.h5"
"$MD" run "$T/block4.yaml" -o "$T/block4.h5"
mpirun --oversubscribe -np 3 "$MD" run "$T/block4.yaml" -o "$T/block4r3.h5"
h5diff "$T/block4.h5" "$T/block4r3.h5" /knowledge /knowledge
echo "1 rank == 3 ranks (h5diff)"
"${PYTHON:-/usr/bin/python3}" - "$T/block1.h5" "$T/block4.h5" "$T/fast.h5" <<'PY'
import sys, h5py, numpy as np
ref, *others = (h5py.File(p, "r") for p in sys.argv[1:4])
for o, name in zip(others, ("pair_block 4", "pair_block 16")):
    for k in ("base->base", "instruct->base", "base->instruct", "instruct->instruct"):
        g = f"knowledge/cities/{k}"
        for a in ("acts_true", "acts_false") if k in ("base->base", "instruct->instruct") else ():
            assert np.array_equal(ref[f"{g}/{a}"][...], o[f"{g}/{a}"][...]), f"{name}: {g}/{a} not bit-identical"
        for ds in ("effect", "clean_true", "clean_false"):
            r, x = ref[f"{g}/{ds}"][...], o[f"{g}/{ds}"][...]
            tol = 1e-5 * np.abs(ref[f"{g}/effect"][...]).max()
            assert np.abs(r - x).max() <= tol, f"{name}: {g}/{ds} differs by {np.abs(r - x).max()} > {tol}"
    print(f"{name} vs pair_block 1: activations identical, effects within 1e-5 x max|effect|")
PY
# left padding inside a block: larger_than's pairs 17 and 22 are one token
# shorter than the others, so the block of pairs 16-23 is padded
for v in "pad8:pair_block: 8" "pad1:pair_block: 1" "padnaive:naive: true"; do
  cat > "$T/${v%%:*}.yaml" <<YAML
name: knowledge-padding
models: {base: $ROOT/models/organism-base}
datasets: {larger_than: $ROOT/data/larger_than.csv}
experiments:
  - {kind: knowledge, datasets: [larger_than], max_pairs: 24, store_activations: true, ${v#*:}}
YAML
  "$MD" run "$T/${v%%:*}.yaml" -o "$T/${v%%:*}.h5" --quiet
done
"${PYTHON:-/usr/bin/python3}" - "$T/pad1.h5" "$T/pad8.h5" "$T/padnaive.h5" <<'PY'
import sys, h5py, numpy as np
one, eight, naive = (h5py.File(p, "r") for p in sys.argv[1:4])
g = "knowledge/larger_than/base->base"
lens = one["knowledge/larger_than/pairs/prompt_len"][...]
assert len(set(lens[16:24])) > 1, f"no padding in the block of pairs 16-23: lengths {lens[16:24]}"
for a in ("acts_true", "acts_false"):
    assert np.array_equal(one[f"{g}/{a}"][...], eight[f"{g}/{a}"][...]), f"padded block: {a} not bit-identical"
e1, e8, en = (f[f"{g}/effect"][...] for f in (one, eight, naive))
tol = 1e-5 * np.abs(e1).max()
assert np.abs(e8 - e1).max() <= tol, f"padded block: effects differ by {np.abs(e8 - e1).max()} > {tol}"
assert np.abs(e8 - en).max() <= 1e-4, f"padded block vs naive: {np.abs(e8 - en).max()}"
print(f"padded block (lengths {sorted(set(lens[16:24]))}): activations identical, effects within {np.abs(e8 - e1).max():.1e} "
      f"of pair_block 1 and {np.abs(e8 - en).max():.1e} of naive")
PY
"${PYTHON:-/usr/bin/python3}" - "$T/fast.h5" "$T/naive.h5" "$T/nocache.h5" <<'PY'
import sys, h5py, numpy as np
a, b, c = (h5py.File(p, "r") for p in sys.argv[1:4])
g = a["knowledge/cities"]
n = 0
for target in ("base", "instruct"):
    for source in ("base", "instruct"):
        k = f"knowledge/cities/{source}->{target}"
        ea, eb = a[k + "/effect"][...], b[k + "/effect"][...]
        assert not np.isnan(ea).any(), k
        d = np.abs(ea - eb).max()
        assert d <= 1e-4, f"{k}: fast vs naive differ by {d}"
        dc = np.abs(ea - c[k + "/effect"][...]).max()
        assert dc <= 1e-4, f"{k}: fp32 cache vs on-the-fly conversion differ by {dc}"
        # within a model, last layer and last position: the patched run is the TRUE run
        if target == source:
            ct = a[k + "/clean_true"][...]
            assert np.abs(ea[:, -1, -1] - ct).max() <= 1e-4, k
        n += 1
        print(f"{k}: fast vs naive max |d| {d:.2e}, |effect| max {np.abs(ea).max():.2f}")
assert n == 4
PY
# the analysis: normalised maps, correlation table, heatmaps
"${PYTHON:-/usr/bin/python3}" analysis/knowledge.py "$T/fast.h5" -o "$T/analysis" > "$T/analysis.txt"
for f in knowledge_table.csv knowledge_table.md; do [ -s "$T/analysis/$f" ] || { echo "missing $f"; exit 1; }; done
[ "$(ls "$T/analysis"/*.png | wc -l)" -eq 4 ] || { echo "expected 4 heatmaps"; ls "$T/analysis"; exit 1; }
grep -q "| cities | base | instruct |" "$T/analysis/knowledge_table.md" || { cat "$T/analysis/knowledge_table.md"; exit 1; }
sed 's/max_pairs: 6/max_pairs: 6\n    true_word: " MAYBE TRUE"/' "$T/fast.yaml" > "$T/bad.yaml"
if "$MD" validate "$T/bad.yaml" 2> "$T/err"; then echo "bad target word accepted"; exit 1; fi
grep -q "bad.yaml:[0-9]*:[0-9]*: .*true_word" "$T/err" || { cat "$T/err"; exit 1; }
# a pair whose tokenizers differ does not pair for cross-model patching
mkdir -p "$T/other"
cp models/organism-instruct/* "$T/other/"
cp tests/golden/tokenizers/bytelevel/tokenizer.json "$T/other/tokenizer.json"
sed "s#$ROOT/models/organism-instruct#$T/other#" "$T/fast.yaml" > "$T/unpaired.yaml"
if "$MD" validate "$T/unpaired.yaml" 2> "$T/err"; then echo "unpaired models accepted"; exit 1; fi
grep -q "unpaired.yaml:[0-9]*:[0-9]*: .*do not pair" "$T/err" || { cat "$T/err"; exit 1; }
echo "knowledge: ok"
