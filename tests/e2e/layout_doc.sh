#!/usr/bin/env bash
# The "## Output layout" table of jobs/README.md describes a real results file
# (a small knowledge + confidence job on the shipped pair): every top-level
# group of the file is documented (an experiment, /completion, /provenance);
# every attribute of /, /provenance, /provenance/models/<role>,
# /provenance/datasets/<name>, /provenance/segments/<k>, every dataset and
# attribute of /completion/<experiment>/stage<k>, and every experiment group's
# `kind` is named in its row; and every name the table gives as an attribute
# or dataset of those exists in the file (except the few written only in
# situations the job does not reach: listed below with the reason).
# README.md's promise that the file reads without mechdiff from any
# language: tests/e2e/lib/read_h5.c, the HDF5 C API alone, prints a
# numeric and a string dataset with their units, descriptions and dimension
# scales exactly as h5py reads them.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
need_pair

cat > "$T/job.yaml" <<EOF
name: layout
$(job_pair cities)
runtime: {progress_interval: 60}
experiments:
  - {kind: knowledge, datasets: [cities], max_pairs: 2, n_toks: 2}
  - {kind: confidence}
EOF
"$MD" run "$T/job.yaml" -o "$T/out.h5" --quiet || fail "the job did not run"

"$PY" - "$ROOT/jobs/README.md" "$T/out.h5" <<'PY'
import re, sys, h5py
doc, path = sys.argv[1], sys.argv[2]
text = open(doc, encoding="utf-8").read()
m = re.search(r"^## Output layout\n(.*?)^## ", text, re.S | re.M)
if not m:
    sys.exit("FAIL: jobs/README.md has no '## Output layout' section")
rows = {key: set(re.findall(r"`([A-Za-z_]\w*)`", what))
        for key, what in re.findall(r"^\| `([^`]+)`(?: attributes)? \| (.+) \|$", m.group(1), re.M)}
need = ["/", "/<experiment>/", "/completion/<experiment>/stage<k>/", "/provenance",
        "/provenance/models/<role>", "/provenance/datasets/<name>", "/provenance/segments/<k>"]
missing = [k for k in need if k not in rows]
if missing:
    sys.exit(f"FAIL: the layout table has no row for {missing} (rows: {sorted(rows)})")
# Names a row gives that this file cannot have, and why.
not_names = {
    "/<experiment>/": {"name"},                                           # the job key
    "/provenance/segments/<k>": {"running", "finished", "error", "recovered", "done",  # values of exit, done flags
                                 "mixed_with_setup", "done_at_start_means"},  # --allow-mixed-numerics only
}
skip = {"DIMENSION_LIST", "REFERENCE_LIST", "DIMENSION_LABELS", "CLASS", "NAME"}   # dimension-scale bookkeeping
bad, seen = [], {k: set() for k in need}
f = h5py.File(path, "r")

def names(row, obj, found):
    found = set(found) - skip
    for n in sorted(found - rows[row]):
        bad.append(f"{obj.name}: '{n}' is not named in the row {row}")
    seen[row] |= found

exps = {"knowledge", "confidence"}
for name in f:
    if name not in exps | {"completion", "provenance"}:
        bad.append(f"top-level group /{name} is not documented")
names("/", f, f.attrs)
names("/provenance", f["provenance"], f["provenance"].attrs)
for row, grp in [("/provenance/models/<role>", "provenance/models"),
                 ("/provenance/datasets/<name>", "provenance/datasets"),
                 ("/provenance/segments/<k>", "provenance/segments")]:
    for g in f[grp].values():
        names(row, g, set(g.attrs) | set(g.keys()))
for e in exps:
    names("/<experiment>/", f[e], {"kind"} & set(f[e].attrs))
    f[e].visititems(lambda n, o: seen["/<experiment>/"].update(
        {"units", "description", "sha256"} & set(o.attrs)) if isinstance(o, h5py.Dataset) and "units" in o.attrs else None)
    for st in f["completion"][e].values():
        names("/completion/<experiment>/stage<k>/", st, set(st.attrs) | set(st.keys()))
for row in need:
    for n in sorted(rows[row] - seen[row] - not_names.get(row, set())):
        bad.append(f"the row {row} names '{n}', which {path} does not have there")
if bad:
    sys.exit("FAIL:\n" + "\n".join(bad))
print(f"layout_doc: the {len(need)} rows of jobs/README.md's layout table match {path}")
PY
# From C: the HDF5 C API and its dimension-scale calls, nothing of mechdiff.
command -v h5cc >/dev/null || fail "h5cc not found (libhdf5-dev, scripts/install-deps.sh)"
# (in $T: h5cc leaves its object file in the current folder)
(cd "$T" && h5cc -std=c11 -Wall -Wextra -Werror -o read_h5 "$ROOT/tests/e2e/lib/read_h5.c" -lhdf5_hl > cc.log 2>&1) \
  || { cat "$T/cc.log"; fail "tests/e2e/lib/read_h5.c does not compile with h5cc"; }
for ds in "knowledge/cities/base->base/effect" "knowledge/cities/pairs/true_tokens" \
          "confidence/base/selected" "confidence/pairs/base->instruct/overlap"; do
  "$T/read_h5" "$T/out.h5" "$ds" > "$T/c.txt" || fail "read_h5 $ds"
  "$PY" - "$T/out.h5" "$ds" > "$T/py.txt" <<'PY'
import sys, h5py
d = h5py.File(sys.argv[1], "r")[sys.argv[2]]
def show(x):
    return x.decode() if isinstance(x, bytes) else "%.9g" % float(x)
for a in ("units", "description"):
    if a in d.attrs:
        v = d.attrs[a]
        print(f"{a}: {v.decode() if isinstance(v, bytes) else v}")
for k, dim in enumerate(d.dims):
    for s in dim.values():
        name = s.attrs["NAME"]
        print(f"dim {k} {name.decode() if isinstance(name, bytes) else name}:" + "".join(" " + show(x) for x in s[...].ravel()))
print("values:" + "".join(" " + show(x) for x in d[...].ravel()))
PY
  diff "$T/py.txt" "$T/c.txt" > "$T/diff.txt" || { cat "$T/diff.txt"; fail "the C API reads $ds differently from h5py"; }
done
echo "layout_doc: the HDF5 C API (tests/e2e/lib/read_h5.c) reads 4 datasets with their scales as h5py does"
echo "layout_doc: ok"
