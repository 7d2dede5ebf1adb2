"""verify_variants.py SRC DIR NAME — writes DIR/out.h5, a copy of the valid
results file SRC with one defect (or none) of the kind `mechdiff verify` must
find: variant NAME (tests/e2e/verify.sh lists each with what verify must say).
`list` as NAME prints the names. Only h5py and numpy (Debian's python3-h5py)."""
import os
import shutil
import sys

import h5py
import numpy as np

EFFECT = "knowledge/cities/instruct->base/effect"
STR = h5py.string_dtype()


def attr(path, obj, name, value=None, dtype=None):
    """Sets attribute name of obj (None: deletes it)."""
    with h5py.File(path, "r+") as f:
        a = f[obj].attrs
        if name in a:
            del a[name]
        if value is not None:
            a.create(name, value, dtype=dtype or (STR if isinstance(value, str) else None))


def edit(path, name, index, value):
    """Writes one element in place (shape, type and attributes kept)."""
    with h5py.File(path, "r+") as f:
        d = f[name]
        v = d[...]
        v[index] = value
        d[...] = v


def strip_digests(path, only=None):
    with h5py.File(path, "r+") as f:
        def drop(name, obj):
            if isinstance(obj, h5py.Dataset) and "sha256" in obj.attrs and (only is None or name == only):
                del obj.attrs["sha256"]
        f.visititems(drop)


def scale_detached(path):
    with h5py.File(path, "r+") as f:
        f["truth/pd"].dims[2].detach_scale(f["truth/condition"])


def scale_longer(path):
    """refusal_score's set dimension labelled by a 3-entry scale."""
    with h5py.File(path, "r+") as f:
        d = f["refusal/refusal_score"]
        d.dims[2].detach_scale(f["refusal/set"])
        s = f["refusal"].create_dataset("set_3", data=np.array(["harmful", "harmless", "other"], dtype=object), dtype=STR)
        s.make_scale("set")
        d.dims[2].attach_scale(s)


def scale_renamed(path):
    with h5py.File(path, "r+") as f:
        f["truth/condition"].make_scale("cond")


def segment_renamed(path):
    with h5py.File(path, "r+") as f:
        f.move("provenance/segments/0000", "provenance/segments/0005")


def extra_dataset(path):
    with h5py.File(path, "r+") as f:
        f["truth"].create_dataset("extra", data=np.zeros(3))


def retyped(path):
    """truth/pd rewritten as float32 with its attributes (a user's script)."""
    with h5py.File(path, "r+") as f:
        old = f["truth/pd"]
        data, attrs = old[...], {k: v for k, v in old.attrs.items() if k not in ("DIMENSION_LIST",)}
        del f["truth/pd"]
        d = f["truth"].create_dataset("pd", data=data.astype("f4"))
        for k, v in attrs.items():
            if k != "DIMENSION_LABELS":
                d.attrs[k] = v


def region(path, text):
    with h5py.File(path, "r+") as f:
        d = f["completion/knowledge/stage0/regions"]
        v = d[...]
        v[0] = text
        d[...] = v


def experiment_deleted(path):
    """truth's results and bookkeeping both gone: only the stored job says so."""
    with h5py.File(path, "r+") as f:
        del f["truth"]
        del f["completion/truth"]


def partial(path):
    """A stopped run: units 3.. of truth's stage 1 not done, not finished."""
    with h5py.File(path, "r+") as f:
        d = f["completion/truth/stage1/done"]
        v = d[...]
        v[3:] = 0
        d[...] = v
        f["provenance"].attrs["finished"] = np.int64(0)


def done_flipped(path):
    """A stopped run whose undone unit was marked done by hand (finished set
    too): no results behind it, only NaN."""
    partial(path)
    with h5py.File(path, "r+") as f:
        d = f["completion/truth/stage1/done"]
        v = d[...]
        v[:] = 1
        d[...] = v
        r = f["completion/truth/stage1/regions"]
        rv = r[...]
        rv[5] = ""
        r[...] = rv
        f["provenance"].attrs["finished"] = np.int64(1)


def stage_deleted(path):
    with h5py.File(path, "r+") as f:
        del f["completion/truth/stage1"]


def renamed(path, name, to):
    with h5py.File(path, "r+") as f:
        f.move(name, to)


def deleted(path, name):
    """`del f[name]` as h5py does it: the scales it was attached to (or the
    datasets a deleted scale labelled) keep references to it."""
    with h5py.File(path, "r+") as f:
        del f[name]


VARIANTS = {
    "untouched": lambda p: None,
    "digests_stripped": lambda p: strip_digests(p),
    "digest_one_stripped": lambda p: strip_digests(p, "truth/pd"),
    "partial": partial,
    "units_deleted": lambda p: attr(p, EFFECT, "units"),
    "units_changed": lambda p: attr(p, EFFECT, "units", "prob"),
    "description_deleted": lambda p: attr(p, "truth/pd", "description"),
    "scale_detached": scale_detached,
    "scale_longer": scale_longer,
    "scale_renamed": scale_renamed,
    "axis_attr_longer": lambda p: attr(p, "refusal/refusal_score", "sets", "harmful,harmless,other"),
    "axis_attr_order": lambda p: attr(p, "truth/pd", "conditions", "dir_base,clean,dir_instruct,random_0"),
    "pair_attrs": lambda p: attr(p, "knowledge/cities/instruct->base", "source", "base"),
    "segment_exit": lambda p: attr(p, "provenance/segments/0000", "exit", "bogus"),
    "segment_world_size": lambda p: attr(p, "provenance/segments/0000", "world_size", "3"),
    "segment_renamed": segment_renamed,
    "model_path_deleted": lambda p: attr(p, "provenance/models/base", "path"),
    "layout_deleted": lambda p: attr(p, "/", "layout_version"),
    "root_sha_differs": lambda p: attr(p, "/", "job_sha256", "0" * 64),
    "done_flipped": done_flipped,
    "finished_undone": lambda p: edit(p, "completion/truth/stage1/done", 1, 0),
    "stage_deleted": stage_deleted,
    "experiment_deleted": experiment_deleted,
    "experiment_index": lambda p: attr(p, "completion/truth/stage1", "experiment_index", np.int64(5)),
    "stage_kind": lambda p: attr(p, "completion/truth/stage0", "kind", "refusal"),
    "kind_unknown": lambda p: attr(p, "truth", "kind", "nope"),
    "extra_dataset": extra_dataset,
    "retyped": retyped,
    "effect_nan": lambda p: edit(p, EFFECT, (0, 0, 0), np.nan),
    "direction_norm_inf": lambda p: edit(p, "truth/direction_norm", 0, np.inf),
    "accuracy_range": lambda p: edit(p, "truth/accuracy", (0, 0, 0), 1.5),
    "refused_range": lambda p: edit(p, "refusal/gen/harmful/instruct/none/refused", 0, 2),
    "entropy_negative": lambda p: edit(p, "confidence/base/entropy", 0, -0.5),
    "value_edited": lambda p: edit(p, "truth/pd", (0, 0, 0, 0), 0.123),
    "label_edited": lambda p: edit(p, "truth/statements/cities", 0, "Paris is in Peru."),
    "stage_name_huge": lambda p: renamed(p, "completion/truth/stage1", "completion/truth/stage99999999999"),
    "dataset_deleted": lambda p: deleted(p, "truth/pd"),
    "scale_deleted": lambda p: deleted(p, "truth/condition"),
    "digest_int": lambda p: attr(p, "truth/pd", "sha256", np.int64(7)),
    "region_outside": lambda p: region(p, "cities/instruct->base/effect[99+1,0+4,0+12]"),
    "region_malformed": lambda p: region(p, "cities/instruct->base/effect[0+1"),
}


def main():
    if sys.argv[1:2] == ["list"]:
        print("\n".join(VARIANTS))
        return
    src, out_dir, name = sys.argv[1:4]
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, "out.h5")
    shutil.copyfile(src, out)
    VARIANTS[name](out)


if __name__ == "__main__":
    main()
