"""xarray_labels.py LABELS.h5 NOBOS.h5 — the checks of tests/e2e/xarray_labels.sh.

LABELS.h5: knowledge (cities, within each model and instruct->base), truth,
refusal and confidence on models/organism-{base,instruct} (roles base,
instruct in that order). NOBOS.h5: knowledge and confidence on a copy of
the instruct model whose tokenizer adds no BOS token. Reads with plain xarray
(h5netcdf engine) and h5py only; every value selected by names is compared
with the raw element at the index the job's order gives."""
import subprocess
import sys

import h5py
import numpy as np
import xarray as xr

path, nobos = sys.argv[1], sys.argv[2]
raw = h5py.File(path, "r")
fails = []
ROLES = ["base", "instruct"]
CATEGORY = {"source", "target", "model", "model_b", "role", "condition", "intervention", "effect", "set", "class",
            "test_dataset", "dataset", "param", "control"}


def check(ok, what):
    if not ok:
        fails.append(what)


def group(name, f=path):
    return xr.open_dataset(f, engine="h5netcdf", group=name)


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


# ---- every category dimension is a string scale, every dimension has one
def visit(name, obj):
    if not isinstance(obj, h5py.Dataset) or name.startswith("completion/") or obj.attrs.get("CLASS") == b"DIMENSION_SCALE":
        return
    for i, dim in enumerate(obj.dims):
        if not len(dim):
            fails.append("%s: dimension %d has no scale" % (name, i))
            continue
        label = dim.label or dim[0].name.rsplit("/", 1)[-1]
        if label in CATEGORY and dim[0].dtype.kind not in "OSU":
            fails.append("%s: category dimension '%s' has a %s scale" % (name, label, dim[0].dtype))


raw.visititems(visit)

# ---- knowledge: <source>-><target> groups, positions from the end, tokens
kn = group("knowledge/cities/instruct->base")
check((kn.attrs.get("source"), kn.attrs.get("target")) == ("instruct", "base"), "knowledge group roles %s" % kn.attrs)
eff = kn["effect"]
check(eff.dims == ("pair", "layer", "position"), "effect dims %s" % (eff.dims,))
n_pos = eff.sizes["position"]
check(list(eff["position"].values) == list(range(-n_pos, 0)), "positions %s" % eff["position"].values)
check(list(eff["layer"].values) == list(range(eff.sizes["layer"])), "layers %s" % eff["layer"].values)
r = raw["knowledge/cities/instruct->base/effect"]
check(float(eff.sel(pair=2, layer=1, position=-1)) == float(r[2, 1, n_pos - 1]), "effect by position -1")
pairs = group("knowledge/cities/pairs")
toks = pairs["true_tokens"]
check(toks.dims == ("pair", "position"), "true_tokens dims %s" % (toks.dims,))
check(bool((toks.sel(position=-1) == ":").all()), "last token is ':' in every pair")
dot = eff.where(toks == ".")  # the period's column, found by its token in each pair
for p in range(eff.sizes["pair"]):
    cols = [j for j in range(n_pos) if text(raw["knowledge/cities/pairs/true_tokens"][p, j]) == "."]
    got = dot.isel(pair=p).dropna("position", how="all")
    check(len(cols) >= 1 and got.sizes["position"] == len(cols) and
          np.array_equal(got.values, r[p][:, cols]), "pair %d: effect at the '.' token" % p)
ids = pairs["true_ids"].values
check(ids.shape == toks.shape, "ids and tokens aligned")
wp = pairs["window_position"]
check(bool((wp.sel(position=-1) == pairs["prompt_len"] - 1).all()), "window_position of -1 = prompt_len - 1")
check(bool((wp.diff("position") == 1).all()), "window_position consecutive")
check("BOS token" in pairs["prompt_len"].attrs["description"], "prompt_len: %s" % pairs["prompt_len"].attrs)
within = group("knowledge/cities/base->base")
check((within.attrs.get("source"), within.attrs.get("target")) == ("base", "base"), "within-model group roles")

# ---- truth: role, condition, class, effect and dataset names
tr = group("truth")
ie = tr["ie"]
check(ie.dims == ("source", "target", "test_dataset", "effect"), "truth ie dims %s" % (ie.dims,))
check(float(ie.sel(source="base", target="instruct", test_dataset="cities", effect="average")) ==
      float(raw["truth/ie"][0, 1, 0, 2]), "truth ie by names")
conds = [text(c) for c in tr["condition"].values]
check(conds[:3] == ["clean", "dir_base", "dir_instruct"] and conds[3] == "random_0", "truth conditions %s" % conds)
pd = tr["pd"].sel({"target": "instruct", "test_dataset": "cities", "condition": "dir_base", "class": "false"})
check(float(pd) == float(raw["truth/pd"][1, 0, 1, 0]), "truth pd by names")
check(float(tr["accuracy"].sel(source="instruct", target="base", test_dataset="cities")) ==
      float(raw["truth/accuracy"][1, 0, 0]), "truth accuracy by names")
check(float(tr["cosine"].sel(model="base", model_b="instruct")) == float(raw["truth/cosine"][0, 1]), "truth cosine")
check(float(tr["ie_control"].sel(target="base", test_dataset="cities", control="random_0", effect="true_to_false")) ==
      float(raw["truth/ie_control"][0, 0, 0, 1]), "truth ie_control by names")
iv = group("truth/interv/cities")
check(float(iv["p_true"].sel(target="instruct", condition="clean").isel(statement=3)) ==
      float(raw["truth/interv/cities/p_true"][1, 0, 3]), "truth p_true by names")
tk = group("truth/tokens/base/cities")
check(bool((tk["token"] == ".").all()), "truth reads the period (token -1) of every statement")
check(len(set(tk["token_id"].values.tolist())) == 1 and bool((tk["token_position"] >= 2).all()),
      "truth: one id for '.', after the BOS token and a word")
check(list(iv["statement"].values) == list(iv["index"].values), "truth interv statements by their index")
it = group("truth/interv/cities/tokens/instruct")
check(list(it["position"].values) == [-2, -1] and list(it["statement"].values) == list(iv["index"].values),
      "truth intervention token axes")
check(bool((it["token"].sel(position=-1) == ".").all()) and
      bool((it["token_position"].sel(position=-1) - it["token_position"].sel(position=-2) == 1).all()),
      "truth: the intervention adds at the period and the token before it")
acts = group("truth/acts/base")
check("BOS token" in acts["cities"].attrs["description"], "truth acts: %s" % acts["cities"].attrs["description"])

# ---- refusal: intervention and set names, generations beside their instructions
rf = group("refusal")
ivs = [text(v) for v in rf["intervention"].values]
check(ivs == ["none", "ablate_base", "ablate_instruct", "add_base", "add_instruct"], "interventions %s" % ivs)
check(float(rf["refusal_score"].sel(target="instruct", intervention="ablate_instruct", set="harmful")) ==
      float(raw["refusal/refusal_score"][1, 2, 0]), "refusal score by names")
check(float(rf["cosine"].sel(model="instruct", model_b="base")) == float(raw["refusal/cosine"][1, 0]),
      "refusal cosine by role")
g = group("refusal/gen/harmful/base/ablate_instruct")
check({k: g.attrs.get(k) for k in ("set", "target", "source", "operation", "intervention")} ==
      {"set": "harmful", "target": "base", "source": "instruct", "operation": "ablate",
       "intervention": "ablate_instruct"}, "refusal gen roles %s" % dict(g.attrs))
split = raw["refusal/split/harmful"]
n_train = int(text(split["instruction"].attrs["n_train"]))
inst = [text(s) for s in split["instruction"][n_train:]]
check([text(s) for s in g["instruction"].values] == inst, "refusal gen: instruction beside each completion")
check(list(g["csv_row"].values) == list(split["csv_row"][n_train:]), "refusal gen: csv_row beside each completion")
check(g["text"].sizes["row"] == len(inst), "refusal gen rows")
check(list(g["row"].values) == list(range(n_train, n_train + len(inst))), "refusal gen row = split row")
check(text(g["instruction"].sel(row=n_train + 2).values) == text(split["instruction"][n_train + 2]),
      "refusal gen: select a completion by its split row")
rt = group("refusal/tokens/instruct/harmful")
check(rt["token"].dims == ("row", "position") and list(rt["position"].values) == [-1],
      "refusal tokens dims %s" % (rt["token"].dims,))
check(bool((rt["token_position"] >= 0).all()) and rt.sizes["row"] == n_train, "refusal token positions")
none = group("refusal/gen/harmless/instruct/none")
check(none.attrs.get("operation") == "none" and none.attrs.get("source", "") == "", "refusal no-intervention roles")

# ---- refusal sweep: the candidates' real layer numbers and positions, instructions beside the rows
sw = group("sweep")
check(list(sw["layer"].values) == [1, 3] and list(sw["position"].values) == [-1, -3],
      "sweep candidates %s %s" % (sw["layer"].values, sw["position"].values))
check(float(sw["score"].sel(model="instruct", layer=3, position=-3)) == float(raw["sweep/score"][1, 1, 1]) or
      (np.isnan(float(sw["score"].sel(model="instruct", layer=3, position=-3))) and np.isnan(raw["sweep/score"][1, 1, 1])),
      "sweep score by layer number")
ntr = int(text(raw["sweep/split/harmful/instruction"].attrs["n_train"]))
check([text(x) for x in sw["test_instruction"].values] ==
      [text(x) for x in raw["sweep/split/harmful/instruction"][ntr:]], "sweep: instruction of each row")
check(sw["refused"].dims == ("model", "layer", "position", "row"), "sweep refused dims")
sg = group("sweep/gen/base/layer3_pos-3")
check((sg.attrs.get("target"), sg.attrs.get("source"), sg.attrs.get("layer"), sg.attrs.get("position")) ==
      ("base", "base", "3", "-3"), "sweep gen group %s" % dict(sg.attrs))
st = group("sweep/tokens/base/harmful")
check(list(st["position"].values) == [-1, -3] and st["token"].shape == (ntr, 2), "sweep tokens at the candidates")

# ---- confidence: pairs/<a>-><b>
cp = group("confidence/pairs/base->instruct")
check((cp.attrs.get("source"), cp.attrs.get("target")) == ("base", "instruct"), "confidence pair roles")
d = raw["confidence/instruct/norm"][()] - raw["confidence/base/norm"][()]
check(np.array_equal(cp["d_norm"].values, d), "confidence d_norm = target - source")
check("BOS token" in raw["confidence/prompts"].attrs["description"], "confidence prompts description")
cb = group("confidence/base")
check(cb["last_token"].dims == ("prompt",) and cb["last_token"].sizes["prompt"] == raw["confidence/prompts"].shape[0],
      "confidence last_token per prompt")
check("BOS token '" in cb["prompt_len"].attrs["description"], "confidence prompt_len description")

# ---- a tokenizer without BOS: descriptions say so
nb = h5py.File(nobos, "r")
for p in ("knowledge/cities/pairs/prompt_len", "confidence/prompts", "confidence/nobos/prompt_len"):
    desc = text(nb[p].attrs["description"])
    check("no BOS token" in desc and "BOS token '" not in desc, "%s (no BOS): %s" % (p, desc))
check(int(nb["knowledge/cities/pairs/window_position"][0, -1]) + 1 == int(nb["knowledge/cities/pairs/prompt_len"][0]),
      "no BOS: window_position")
check(int(nb["confidence/nobos/prompt_len"][0]) + 1 == int(raw["confidence/instruct/prompt_len"][0]) and
      text(nb["confidence/nobos/last_token"][0]) == text(raw["confidence/instruct/last_token"][0]),
      "no BOS: one token fewer, the same last token")

# ---- ncdump -h
nc = subprocess.run(["ncdump", "-h", path], capture_output=True, text=True)
check(nc.returncode == 0, "ncdump -h failed: %s" % nc.stderr[-500:])
for want in ("string condition(condition)", "string intervention(intervention)", "group: instruct-\\>base",
             "float effect(pair, layer, position)", "string true_tokens(pair, position)",
             "double refusal_score(target, intervention, set)"):
    check(want in nc.stdout, "ncdump -h lacks '%s'" % want)

if fails:
    sys.exit("FAIL: " + "\n  ".join(fails))
print("xarray_labels: roles, names and tokens select the right values through xarray/h5netcdf; ncdump -h ok")
