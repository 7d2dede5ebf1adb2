#!/usr/bin/env bash
# knowledge with `component: head` on the shipped model pair (issue 18):
#  1. effect_head [pair, layer, head, position] is written (no effect), for
#     every (target, source) combination;
#  2. the batched path (per layer one partial forward of n_heads sequences
#     from the FALSE cache's prefix) equals the naive path (one full forward
#     per cell) within 1e-4 logits (fp32 math, different GEMM row counts);
#  3. `component: resid_post` writes what `hook: resid_post` writes, bit for bit;
#  4. analysis/report.py puts the head maps (one per combination) and the
#     top-heads table into the report.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
need_pair
job() { # $1 = file, $2 = naive, $3 = component line
  cat > "$1" <<YAML
name: knowledge-heads-test
$(job_pair cities)
experiments:
  - kind: knowledge
    datasets: [cities]
    cross: [all]
    max_pairs: 3
    n_toks: 4
    naive: $2
    $3
YAML
}
job "$T/fast.yaml" false "component: head"
job "$T/naive.yaml" true "component: head"
job "$T/comp.yaml" false "component: resid_post"
job "$T/hook.yaml" false "hook: resid_post"
for j in fast naive comp hook; do "$MD" run "$T/$j.yaml" -o "$T/$j.h5" > /dev/null; done
h5diff "$T/comp.h5" "$T/hook.h5" /knowledge/cities /knowledge/cities
echo "component: resid_post == hook: resid_post (h5diff)"
"${PYTHON:-/usr/bin/python3}" - "$T/fast.h5" "$T/naive.h5" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
L = H = None
for target in ("base", "instruct"):
    for source in ("base", "instruct"):
        k = f"knowledge/cities/{source}->{target}"
        assert "effect" not in a[k], k
        ea, eb = a[k + "/effect_head"][...], b[k + "/effect_head"][...]
        assert ea.ndim == 4 and ea.shape[0] == 3 and ea.shape[3] == 4, ea.shape
        dims = [a[k + "/effect_head"].dims[i][0].name.rsplit("/", 1)[-1] for i in range(4)]
        assert dims == ["pair", "layer", "head", "position"], dims
        assert not np.isnan(ea).any(), k
        d = np.abs(ea - eb).max()
        assert d <= 1e-4, f"{k}: fast vs naive differ by {d}"
        # heads differ from one another (each patch is its own)
        assert np.abs(ea - ea[:, :, :1, :]).max() > 1e-3, k
        print(f"{k}: effect_head {ea.shape}, fast vs naive max |d| {d:.2e}, |effect| max {np.abs(ea).max():.2f}")
PY
"${PYTHON:-/usr/bin/python3}" analysis/report.py "$T/fast.h5" -o "$T/report" --boot 0 > /dev/null
grep -q "## Knowledge: attention heads" "$T/report/report.md" || { echo "no head section"; exit 1; }
[ "$(grep -c 'knowledge_heads_.*png' "$T/report/report.md")" -eq 4 ] || { grep png "$T/report/report.md"; exit 1; }
grep -q "| cities | base | " "$T/report/report.md" || { echo "no top-heads table"; exit 1; }
echo "report: head section with 4 maps"
