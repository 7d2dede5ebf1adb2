#!/usr/bin/env bash
# forward_layout.sh — `mechdiff forward` writes the results-file convention:
# named dimensions (dimension scales) that xarray/h5netcdf and ncdump read,
# the prompt's tokens as strings on the position axis, units and
# descriptions, and /provenance with the weight hashes (equal to sha256sum)
# and the resolved numeric setup. $1: build dir.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
need_pair
"$MECHDIFF" forward models/organism-base --prompt "The city of Baibra is in Fenwick." --hooks resid_post,mlp_post \
  -o "$WORK/fwd.h5"
want_sha=$(sha256sum models/organism-base/model.safetensors | cut -d' ' -f1)
/usr/bin/python3 - "$WORK/fwd.h5" "$want_sha" <<'PY'
import sys, h5py, numpy as np, xarray as xr
path, sha = sys.argv[1], sys.argv[2]
ds = xr.open_dataset(path, engine="h5netcdf")
acts = xr.open_dataset(path, engine="h5netcdf", group="acts")
assert ds["logits"].dims == ("position", "vocab"), ds["logits"].dims
assert acts["resid_post"].dims == ("layer", "position", "hidden") and acts["mlp_post"].dims == ("layer", "position", "mlp")
toks = [str(t) for t in ds["token"].values]
assert toks[1:] == ["The", " city", " of", " Baibra", " is", " in", " Fenwick", "."], toks
# select by token string
pos = toks.index(" Fenwick")
raw = h5py.File(path, "r")
assert float(acts["resid_post"].sel(layer=1, position=pos, hidden=3)) == float(raw["acts/resid_post"][1, pos, 3])
for name in ("logits", "token", "token_ids", "acts/resid_post"):
    assert raw[name].attrs["description"], name
p = raw["provenance"]
assert p.attrs["numeric_setup"] == "backend=cpu weights=f32 gemm=f32", dict(p.attrs)
assert "forward" in p.attrs["command"] and p.attrs["git_revision"]
assert p["models/model"].attrs["weight_sha256"].split()[0] == sha
print("forward_layout: xarray dims, token strings, descriptions and provenance ok")
PY
ncdump -h "$WORK/fwd.h5" > "$WORK/ncdump.txt" || fail "ncdump -h cannot read the file"
grep -q "float resid_post(layer, position, hidden)" "$WORK/ncdump.txt" || fail "ncdump -h lacks the named dimensions"
echo "forward_layout: ok"
