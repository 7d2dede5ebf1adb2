"""mdread.py — read a mechdiff results file into labelled NumPy / xarray objects.

    import mdread
    res = mdread.open_results("out/quickstart.h5")
    res.experiments()                       # {'knowledge': 'knowledge', 'truth': 'truth', ...}
    eff = res.knowledge_effect("knowledge", "cities")   # [target, source, pair, layer, position]
    eff.sel(target="base", source="instruct").mean("pair")
    mdread.at_token(eff, " Fenwick")        # the positions whose token is ' Fenwick'
    pd = res.array("truth/pd")              # [target, test_dataset, condition, class]
    pd.sel(target="instruct", condition="dir_base", **{"class": "false"})
    res.array("refusal/refusal_score").sel(target="instruct", intervention="ablate_instruct", set="harmful")

Every HDF5 dataset becomes an xarray.DataArray whose dimensions are the
file's dimension names and whose coordinates are what a reader selects by:
role names, condition / intervention / set / effect / class names, dataset
names, and (knowledge) the window's relative positions with their tokens.
Attributes (units, description, ...) are kept on the DataArray.

Everything this module knows about the file layout is in the section
"Layout" below (where the labels of a category axis are found, how the
knowledge groups are named): when the layout changes, only that section
changes. Needs h5py and numpy; xarray for the labelled objects (Debian:
python3-xarray); `res.numpy(path)` gives (array, {dim: labels}, attributes)
without it.

    python3 analysis/mdread.py OUT.h5

lists every experiment (kind, roles) and every result dataset in it with its
named dimensions, sizes and units: the paths res.array() takes.
"""
import fcntl
import json

import h5py
import numpy as np

# --------------------------------------------------------------------- Layout
# Labels of category axes, where the file gives them as integer dimension
# scales: the first of these attributes found on the dataset or one of its
# parent groups (up to the experiment group) that has as many names as the
# axis is long. A dimension scale of strings is used as is (the newer layout).
AXIS_LABEL_ATTRS = {
    "model": ("models", "roles"),
    "model_b": ("models", "roles"),
    "source": ("models", "roles"),
    "target": ("models", "roles"),
    "role": ("models", "roles"),
    "test_dataset": ("test_datasets",),
    "dataset": ("datasets",),
    "effect": ("effects",),
    "condition": ("conditions",),
    "class": ("classes",),
    "intervention": ("interventions",),
    "set": ("sets",),
    "param": ("params",),
}


def _knowledge_children(ds_group):
    """(source, target, group holding `effect`) of a knowledge dataset group:
    /<exp>/<dataset>/<source>-><target>/effect (the group's attributes
    `source` and `target` say the same); files of mechdiff before 2026-12-07
    used /<exp>/<dataset>/<target>/<source>/effect, read too."""
    for name, g in ds_group.items():
        if name == "pairs" or not isinstance(g, h5py.Group):
            continue
        if "->" in name:
            source, target = name.split("->", 1)
            source, target = _text(g.attrs.get("source", source)), _text(g.attrs.get("target", target))
            if "effect" in g or "effect_head" in g:
                yield source, target, g
            continue
        for source, sg in g.items():
            if isinstance(sg, h5py.Group) and "effect" in sg:
                yield source, name, sg


def _window_tokens(ds_group, n):
    """Tokens of the knowledge window (the first pair's TRUE prompt), or None:
    pairs/true_tokens[0] (pairs/true_tokens[pair, position] has every pair's),
    else the older attribute window_tokens_json."""
    pairs = ds_group.get("pairs")
    if pairs is None:
        return None
    if "true_tokens" in pairs and pairs["true_tokens"].shape[1:] == (n,):
        return [_text(x) for x in pairs["true_tokens"][0]]
    for holder in (pairs, pairs.get("true_statement")):
        raw = holder.attrs.get("window_tokens_json") if holder is not None else None
        if raw is not None:
            try:
                toks = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
            except ValueError:
                return None
            return toks if len(toks) == n else None
    return None
# ----------------------------------------------------------------- end Layout


def _text(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray) and v.shape == ():
        return _text(v.item())
    return v


def _names(v):
    v = _text(v)
    if isinstance(v, str):
        return [s for s in v.split(",")] if v else []
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_text(x) for x in v]
    return None


def _dim_names(d):
    names = []
    for i in range(d.ndim):
        lab = d.dims[i].label
        if not lab and len(d.dims[i]):
            lab = d.dims[i][0].name.rsplit("/", 1)[-1]
        names.append(lab or "dim_%d" % i)
    return names


def _ancestors(obj):
    """obj, then its parent groups up to (not including) the root."""
    out, name = [obj], obj.name
    while name.count("/") > 1:
        name = name.rsplit("/", 1)[0]
        out.append(obj.file[name])
    return out


def _labels(d, axis, dim, n):
    """Coordinate values of one axis: a string dimension scale, else names
    from attributes (AXIS_LABEL_ATTRS), else the integer scale, else 0..n-1."""
    scale = d.dims[axis][0] if len(d.dims[axis]) else None
    if scale is not None and scale.dtype.kind in "OSU":
        return [_text(x) for x in scale[()]]
    for holder in _ancestors(d):
        for key in AXIS_LABEL_ATTRS.get(dim, ()):
            if key in holder.attrs:
                names = _names(holder.attrs[key])
                if names is not None and len(names) == n:
                    return names
    if scale is not None and scale.shape == (n,):
        return scale[()]
    return np.arange(n)


def _value(d):
    v = d[()]
    if d.dtype.kind == "O" or (isinstance(v, np.ndarray) and v.dtype.kind == "S"):
        v = np.array([_text(x) for x in np.ravel(v)], dtype=object).reshape(np.shape(v))
    return v


def _attrs(d):
    skip = ("DIMENSION_LIST", "DIMENSION_LABELS", "REFERENCE_LIST", "CLASS", "NAME", "_Netcdf4Dimid")
    return {k: _text(v) for k, v in d.attrs.items() if k not in skip}


def axis_labels(dataset, dim):
    """The labels (role, condition, intervention, set, dataset names, ...) of
    one named axis of an h5py dataset, as a list (see Layout)."""
    dims = _dim_names(dataset)
    if dim not in dims:
        raise KeyError("%s has no dimension %r (it has %s)" % (dataset.name, dim, dims))
    i = dims.index(dim)
    return [_text(x) if not isinstance(x, (np.integer, int)) else int(x)
            for x in _labels(dataset, i, dim, dataset.shape[i])]


def experiment_groups(h5, kind):
    """[(name, group)] of the experiments of one kind in an open h5py.File, in file order."""
    return [(name, g) for name, g in h5.items()
            if isinstance(g, h5py.Group) and _text(g.attrs.get("kind")) == kind]


def at_token(da, token):
    """The part of a DataArray with a `token` coordinate on `position` whose
    token equals `token` (exact string, leading space included)."""
    if "token" not in da.coords:
        raise KeyError("this array has no token coordinate")
    hit = np.asarray(da.coords["token"].values == token)
    if not hit.any():
        raise KeyError("no position with token %r (tokens: %s)" % (token, list(da.coords["token"].values)))
    return da.isel(position=np.nonzero(hit)[0])


def _hold_version(h5):
    """A shared lock on the open file while it is read, also with
    HDF5_USE_FILE_LOCKING=FALSE: a running job then never takes this version
    back to write the next snapshot into (src/runner/h5out.c). Best effort:
    file systems without flock simply do not get it."""
    try:
        fcntl.flock(h5.id.get_vfd_handle(), fcntl.LOCK_SH | fcntl.LOCK_NB)
    except (OSError, ValueError, TypeError):
        pass


class Results:
    """A results file opened read-only (a context manager; close() when done)."""

    def __init__(self, path):
        """path: a file name, or an open h5py.File (then close() leaves it open)."""
        self._own = not isinstance(path, h5py.File)
        self.h5 = h5py.File(path, "r") if self._own else path
        self.path = self.h5.filename
        if self._own:
            _hold_version(self.h5)

    def close(self):
        if self._own:
            self.h5.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def experiments(self):
        """{group name: kind} of every experiment in the file, in file order."""
        out = {}
        for name, g in self.h5.items():
            kind = _text(g.attrs.get("kind")) if isinstance(g, h5py.Group) else None
            if kind:
                out[name] = kind
        return out

    def roles(self, experiment):
        """The model roles an experiment involves, in the job's order."""
        g = self.h5[experiment]
        for key in ("models", "roles"):
            names = _names(g.attrs.get(key)) if key in g.attrs else None
            if names:
                return names
        return []

    def provenance(self):
        """The /provenance attributes (job YAML, hashes, versions, times) as a dict."""
        return _attrs(self.h5["provenance"]) if "provenance" in self.h5 else {}

    def numpy(self, path):
        """(values, {dim: labels}, attrs) of one dataset, without xarray."""
        d = self.h5[path]
        dims = _dim_names(d)
        coords = {dim: _labels(d, i, dim, d.shape[i]) for i, dim in enumerate(dims)}
        return _value(d), coords, _attrs(d)

    def array(self, path):
        """One dataset as an xarray.DataArray with labelled dimensions."""
        import xarray as xr
        values, coords, attrs = self.numpy(path)
        return xr.DataArray(values, dims=list(coords), coords={k: list(v) if not isinstance(v, np.ndarray) else v
                                                               for k, v in coords.items()},
                            name=path.rsplit("/", 1)[-1], attrs=attrs)

    def knowledge_datasets(self, experiment):
        """Names of the datasets patched by a knowledge experiment."""
        g = self.h5[experiment]
        return [n for n, x in g.items() if isinstance(x, h5py.Group) and "pairs" in x]

    def knowledge_groups(self, experiment, dataset):
        """[(source, target, h5py group)] of the patching results of one
        dataset of a knowledge experiment (the group /<exp>/<dataset>/<source>-><target>)."""
        return list(_knowledge_children(self.h5[experiment][dataset]))

    def knowledge_effect(self, experiment, dataset):
        """effect[target, source, pair, layer, position] of a knowledge
        experiment (NaN where a (target, source) was not patched or a pair not
        computed), with coordinates: role names, pair statements, layer,
        position (relative, -n..-1) and its token (the first pair's; every
        pair's in true_token / false_token [pair, position], the absolute
        index in window_position [pair, position])."""
        import xarray as xr
        g = self.h5[experiment][dataset]
        parts = {(t, s): sg["effect"] for s, t, sg in _knowledge_children(g) if "effect" in sg}
        if not parts:
            raise KeyError("%s/%s holds no patching results" % (experiment, dataset))
        roles = list(dict.fromkeys([t for t, _ in parts] + [s for _, s in parts]))
        shape = next(iter(parts.values())).shape
        out = np.full((len(roles), len(roles)) + shape, np.nan, dtype=np.float32)
        for (t, s), d in parts.items():
            out[roles.index(t), roles.index(s)] = d[()]
        n_pos = shape[2]
        coords = {"target": roles, "source": roles, "pair": np.arange(shape[0]),
                  "layer": np.arange(shape[1]), "position": np.arange(-n_pos, 0)}
        pairs = g.get("pairs")
        if pairs is not None:
            for key in ("true_statement", "false_statement"):
                if key in pairs and pairs[key].shape == (shape[0],):
                    coords[key] = ("pair", [_text(x) for x in pairs[key][()]])
        toks = _window_tokens(g, n_pos)
        if toks is not None:
            coords["token"] = ("position", toks)
        for key, coord in (("true_tokens", "true_token"), ("false_tokens", "false_token"),
                           ("window_position", "window_position")):
            if pairs is not None and key in pairs and pairs[key].shape == (shape[0], n_pos):
                coords[coord] = (("pair", "position"), _value(pairs[key]))
        first = next(iter(parts.values()))
        return xr.DataArray(out, dims=["target", "source", "pair", "layer", "position"], coords=coords,
                            name="effect", attrs=_attrs(first))

    def knowledge_subject(self, experiment, dataset):
        """(subject_first, subject_last) window indices per pair (-1 = before the window)."""
        p = self.h5[experiment][dataset]["pairs"]
        return p["subject_first"][()], p["subject_last"][()]


def open_results(path):
    """Opens a results file for reading (see Results)."""
    return Results(path)


def main(argv=None):
    """The command line: list what a results file holds, by names."""
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("h5", metavar="OUT.h5", help="a mechdiff results file")
    a = ap.parse_args(argv)
    with open_results(a.h5) as res:
        for name, kind in res.experiments().items():
            roles = res.roles(name)
            print("/%s (kind %s%s)" % (name, kind, "; roles " + ", ".join(roles) if roles else ""))

            def show(path, obj, name=name):
                if isinstance(obj, h5py.Dataset) and "units" in obj.attrs:
                    dims = ", ".join("%s=%d" % dn for dn in zip(_dim_names(obj), obj.shape))
                    print("  %s/%s [%s] %s" % (name, path, dims, _text(obj.attrs["units"])))
            res.h5[name].visititems(show)


if __name__ == "__main__":
    main()
