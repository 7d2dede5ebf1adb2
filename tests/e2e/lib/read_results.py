"""read_results.py RESULTS.h5 — a results file reads correctly without
mechdiff: (1) plain xarray through h5netcdf opens the experiment groups with
named dimensions and .sel(pair=, layer=, position=) gives the h5py value;
(2) analysis/mdread.py selects by role names, condition / intervention / set
/ effect names and token strings, and every selected value equals the raw
HDF5 element it names; (3) `ncdump -h` reads the file (exit 0) and shows the
named dimensions. Run by tests/e2e/quickstart.sh on the quickstart output
(knowledge with cross-model patching, truth, refusal, confidence)."""
import os
import subprocess
import sys

import h5py
import numpy as np
import xarray as xr

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "analysis"))
import mdread  # noqa: E402

path = sys.argv[1]
raw = h5py.File(path, "r")
fails = []


def check(ok, what):
    if not ok:
        fails.append(what)


# (1) plain xarray / h5netcdf
ds = xr.open_dataset(path, engine="h5netcdf", group="knowledge/cities/instruct->base")
check(ds["effect"].dims == ("pair", "layer", "position"), "effect dims %s" % (ds["effect"].dims,))
n_pos = ds["effect"].shape[2]
v = float(ds["effect"].sel(pair=0, layer=2, position=5 - n_pos))  # positions count from the end: -n..-1
check(v == float(raw["knowledge/cities/instruct->base/effect"][0, 2, 5]), "xarray .sel value")
check((ds.attrs["source"], ds.attrs["target"]) == ("instruct", "base"), "group roles %s" % dict(ds.attrs))
tr = xr.open_dataset(path, engine="h5netcdf", group="truth")
check(tr["ie"].dims == ("source", "target", "test_dataset", "effect"), "truth ie dims %s" % (tr["ie"].dims,))
rf = xr.open_dataset(path, engine="h5netcdf", group="refusal")
check(rf["refusal_score"].dims == ("target", "intervention", "set"), "refusal dims")
# plain xarray selects by names too (the string-valued dimension scales), as in the README
roles0 = raw["truth"].attrs["models"].split(",")
conds0 = raw["truth/pd"].attrs["conditions"].split(",")
got = tr["pd"].sel(target="instruct", condition="dir_base", test_dataset="cities")
check(np.array_equal(got.values, raw["truth/pd"][roles0.index("instruct"), 0, conds0.index("dir_base")]),
      "plain xarray: truth pd by condition name")
iv0 = raw["refusal/refusal_score"].attrs["interventions"].split(",")
got = float(rf["refusal_score"].sel(target="instruct", intervention="ablate_instruct", set="harmful"))
check(got == float(raw["refusal/refusal_score"][roles0.index("instruct"), iv0.index("ablate_instruct"), 0]),
      "plain xarray: refusal score by names")
toks = xr.open_dataset(path, engine="h5netcdf", group="knowledge/cities/pairs")["true_tokens"]
at_colon = ds["effect"].where(toks == ":").mean(["pair", "position"])  # by token string, per layer
check(np.allclose(at_colon.values, raw["knowledge/cities/instruct->base/effect"][:, :, -1].mean(axis=0), rtol=1e-6),
      "plain xarray: effect at the token ':' (the last position)")

# (2) the reader: names, not indices
with mdread.open_results(path) as res:
    kinds = res.experiments()
    check(kinds.get("knowledge") == "knowledge" and kinds.get("truth") == "truth", "experiments() %s" % kinds)
    eff = res.knowledge_effect("knowledge", "cities")
    roles = list(raw["truth"].attrs["models"].split(","))
    check(list(eff.coords["target"].values) == roles, "knowledge roles %s" % list(eff.coords["target"].values))
    # cross-model cell: instruct's TRUE states patched into base (file: /<source>-><target>)
    x = eff.sel(target="base", source="instruct", pair=3, layer=1).values
    check(np.array_equal(x, raw["knowledge/cities/instruct->base/effect"][3, 1, :]), "reader cross-model cell")
    # token strings: the window's last token is ':' and the period sits 5 before the end
    colon = mdread.at_token(eff, ":")
    check(colon.sizes["position"] == 1 and int(colon.position) == -1, "token ':' is not at position -1")
    dot = mdread.at_token(eff, ".").sel(target="instruct", source="instruct")
    check(np.array_equal(dot.values[..., 0], raw["knowledge/cities/instruct->instruct/effect"][:, :, -5]),
          "token '.' column")
    check(eff.coords["true_statement"].values[0] == raw["knowledge/cities/pairs/true_statement"][0].decode(),
          "pair statements")
    # truth: condition and class names
    pd = res.array("truth/pd")
    conds = raw["truth/pd"].attrs["conditions"].split(",")
    ci = conds.index("dir_base")
    got = float(pd.sel(target="instruct", test_dataset="cities", condition="dir_base", **{"class": "false"}))
    check(got == float(raw["truth/pd"][roles.index("instruct"), 0, ci, 0]), "truth pd by condition name")
    ie = res.array("truth/ie").sel(source="base", target="instruct", effect="average", test_dataset="cities")
    check(float(ie) == float(raw["truth/ie"][0, roles.index("instruct"), 0, 2]), "truth ie by names")
    # refusal: intervention and set names
    rs = res.array("refusal/refusal_score")
    iv = raw["refusal/refusal_score"].attrs["interventions"].split(",")
    got = float(rs.sel(target="instruct", intervention="ablate_instruct", set="harmful"))
    check(got == float(raw["refusal/refusal_score"][roles.index("instruct"), iv.index("ablate_instruct"), 0]),
          "refusal score by names")
    check(float(res.array("refusal/cosine").sel(model="base", model_b="instruct")) ==
          float(raw["refusal/cosine"][0, 1]), "refusal cosine by role")
    check(res.array("confidence/base/norm").dims == ("neuron",), "confidence dims")
    check("job_yaml" in res.provenance(), "provenance")

# (3) ncdump -h
nc = subprocess.run(["ncdump", "-h", path], capture_output=True, text=True)
check(nc.returncode == 0, "ncdump -h failed: %s" % nc.stderr[-500:])
for want in ("float effect(pair, layer, position)", "double refusal_score(target, intervention, set)",
             "double pd(target, test_dataset, condition, class)"):
    check(want in nc.stdout, "ncdump -h lacks '%s'" % want)
phony = sorted({l.split("(")[0].split()[-1] for l in nc.stdout.splitlines() if "phony_dim" in l and "(" in l})
check(not phony, "variables without named dimensions (phony dims in ncdump -h): %s" % ", ".join(phony))
print("read_results: ncdump -h ok; every variable has named dimensions")

if fails:
    sys.exit("FAIL: " + "; ".join(fails))
print("read_results: xarray (h5netcdf), mdread and ncdump read %s correctly" % path)
