"""hostile_variants.py SRC DIR NAME [ARG] — writes DIR/out.h5, a copy of the results
file SRC edited the way a user's script (h5py, R, Julia), a full disk or a
half-finished copy might leave it: variant NAME (tests/e2e/hostile_results.sh
lists them and what mechdiff must say about each). `list` as NAME prints the
names. Some variants also plant OUT.h5.journal / OUT.h5.prev / OUT.h5.inflight
beside it. Only h5py and numpy (Debian's python3-h5py)."""
import os
import shutil
import sys

import h5py
import numpy as np

EXP = "selftest"
S0 = "/completion/%s/stage0" % EXP


def attr_delete(path, obj, name):
    with h5py.File(path, "r+") as f:
        del f[obj].attrs[name]


def attr_set(path, obj, name, value, dtype=None):
    with h5py.File(path, "r+") as f:
        a = f[obj].attrs
        del a[name]
        if dtype is None:
            a[name] = value
        else:
            a.create(name, value, dtype=dtype)


def replace_dataset(path, name, data, dtype=None):
    """Replaces dataset `name` (its attributes dropped: a user's rewrite)."""
    with h5py.File(path, "r+") as f:
        del f[name]
        f.create_dataset(name, data=data, dtype=dtype)


def fill(path, name, value):
    """Overwrites every value of dataset `name` in place (shape, type and
    attributes kept: a bit flip or a user's edit of the numbers)."""
    with h5py.File(path, "r+") as f:
        d = f[name]
        d[...] = np.full(d.shape, value, dtype=d.dtype)


def huge(path, name, dtype):
    """Replaces dataset `name` by a chunked one declared 2^40 long, nothing
    written (a few bytes in the file: a reader must not allocate it)."""
    with h5py.File(path, "r+") as f:
        del f[name]
        f.create_dataset(name, shape=(1 << 40,), dtype=dtype, chunks=(1024,))


def delete(path, name):
    with h5py.File(path, "r+") as f:
        del f[name]


def done_values(path, value):
    with h5py.File(path, "r+") as f:
        d = f[S0 + "/done"]
        v = d[...]
        v[1] = value
        d[...] = v


def stage_resized(path, n):
    """done and regions of stage 0 both n long (a consistent, wrong stage)."""
    with h5py.File(path, "r+") as f:
        regions = [r if r is not None else "" for r in f[S0 + "/regions"][...]][:n]
        regions += [""] * (n - len(regions))
        for name in ("done", "regions", "unit"):
            del f[S0 + "/" + name]
        f[S0].create_dataset("done", data=np.ones(n, "u1"))
        f[S0].create_dataset("regions", data=np.array(regions, dtype=object), dtype=h5py.string_dtype())


def truncate(path, fraction):
    size = os.path.getsize(path)
    with open(path, "r+b") as fh:
        fh.truncate(int(size * fraction))


def garbage(path):
    with open(path, "wb") as fh:
        fh.write(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4)


def n_units(path):
    with h5py.File(path, "r") as f:
        return f[S0 + "/done"].shape[0]


def beside(path, ext, how):
    """Plants OUT.h5.<ext>: garbage, or the SRC's own one truncated."""
    if how == "garbage":
        garbage(path + "." + ext)
    else:
        src = SRC + "." + ext
        shutil.copyfile(src, path + "." + ext)
        truncate(path + "." + ext, how)


VARIANTS = {
    # root and provenance attributes
    "root_layout_deleted": lambda p: attr_delete(p, "/", "layout_version"),
    "layout_future": lambda p: attr_set(p, "/", "layout_version", 99, "i8"),
    "layout_string": lambda p: attr_set(p, "/", "layout_version", "2"),
    "layout_array": lambda p: attr_set(p, "/", "layout_version", np.array([2, 2], dtype="i8")),
    "job_sha256_deleted": lambda p: attr_delete(p, "/provenance", "job_sha256"),
    "job_sha256_int": lambda p: attr_set(p, "/provenance", "job_sha256", 12345, "i8"),
    "job_yaml_deleted": lambda p: attr_delete(p, "/provenance", "job_yaml"),
    "generation_string": lambda p: attr_set(p, "/provenance", "generation", "3"),
    "generation_float": lambda p: attr_set(p, "/provenance", "generation", 3.0, "f8"),
    "part_count_string": lambda p: attr_set(p, "/provenance", "part_count", "0"),
    "part_count_huge": lambda p: attr_set(p, "/provenance", "part_count", 1 << 32, "i8"),
    "n_units_string": lambda p: attr_set(p, S0, "n_units", "6"),
    # completion flags
    "done_longer": lambda p: replace_dataset(p, S0 + "/done", np.ones(n_units(p) + 3, "u1")),
    "done_shorter": lambda p: replace_dataset(p, S0 + "/done", np.ones(n_units(p) - 2, "u1")),
    "stage_resized": lambda p: stage_resized(p, n_units(p) - 2),
    "done_2d": lambda p: replace_dataset(p, S0 + "/done", np.ones((n_units(p), 2), "u1")),
    "done_float": lambda p: replace_dataset(p, S0 + "/done", np.ones(n_units(p), "f8")),
    "done_string": lambda p: replace_dataset(p, S0 + "/done", np.array(["1"] * n_units(p), dtype=object),
                                             h5py.string_dtype()),
    "done_value_2": lambda p: done_values(p, 2),
    "done_huge": lambda p: huge(p, S0 + "/done", "u1"),
    "done_value_0": lambda p: done_values(p, 0),
    # results datasets
    "values_shape": lambda p: replace_dataset(p, "/%s/values" % EXP, np.zeros((n_units(p) + 1, 2, 3))),
    "values_nan": lambda p: fill(p, "/%s/values" % EXP, np.nan),
    "values_rank": lambda p: replace_dataset(p, "/%s/values" % EXP, np.zeros((n_units(p), 6))),
    "values_f32": lambda p: replace_dataset(p, "/%s/values" % EXP, np.zeros((n_units(p), 2, 3), "f4")),
    "values_string": lambda p: replace_dataset(p, "/%s/values" % EXP, np.array(["x"] * n_units(p) * 6,
                                               dtype=object).reshape(n_units(p), 2, 3), h5py.string_dtype()),
    "centred_shape": lambda p: replace_dataset(p, "/%s/centred" % EXP, np.zeros((n_units(p), 4), "f4")),
    "values_deleted": lambda p: delete(p, "/%s/values" % EXP),
    "experiment_deleted": lambda p: delete(p, "/" + EXP),
    "regions_deleted": lambda p: delete(p, S0 + "/regions"),
    "stage_deleted": lambda p: delete(p, S0),
    "provenance_deleted": lambda p: delete(p, "/provenance"),
    "segments_deleted": lambda p: delete(p, "/provenance/segments"),
    # bytes
    "truncated_0": lambda p: truncate(p, 0),
    "truncated_1pct": lambda p: truncate(p, 0.01),
    "truncated_50pct": lambda p: truncate(p, 0.5),
    "truncated_90pct": lambda p: truncate(p, 0.9),
    "truncated_last_byte": lambda p: truncate(p, 1 - 1.0 / os.path.getsize(p)),
    # files beside it
    "journal_garbage": lambda p: beside(p, "journal", "garbage"),
    "journal_truncated": lambda p: beside(p, "journal", 0.6),
    "journal_header_only": lambda p: beside(p, "journal", 0.02),
    "prev_garbage": lambda p: beside(p, "prev", "garbage"),
    "prev_truncated": lambda p: beside(p, "prev", 0.5),
    "inflight_garbage": lambda p: beside(p, "inflight", "garbage"),
}


def region(path, text):
    """Sets the regions text of unit 1 of stage 0 (a done unit of part 1/2)."""
    with h5py.File(path, "r+") as f:
        f[S0 + "/regions"][1] = text


# parts of a split job (`run --part 1/2`), for merge
PART_VARIANTS = {
    "part_region_malformed": lambda p: region(p, "values[1+1,0+2"),
    "part_region_outside": lambda p: region(p, "values[9+1,0+2,0+3]"),
    "part_region_huge": lambda p: region(p, "values[0+9223372036854775807,0+2,0+3]"),
    "part_region_rank": lambda p: region(p, "values[1+1]"),
    "part_region_newline": lambda p: region(p, "val\nues[1+1,0+2,0+3]"),
    "part_region_nodataset": lambda p: region(p, "nope[1+1]"),
    "part_region_escape": lambda p: region(p, "../provenance[0+1]"),
    "part_values_f32": VARIANTS["values_f32"],
    "part_values_shape": VARIANTS["values_shape"],
    "part_done_2d": VARIANTS["done_2d"],
    "part_done_longer": VARIANTS["done_longer"],
    "part_regions_deleted": VARIANTS["regions_deleted"],
    "part_truncated": VARIANTS["truncated_90pct"],
    "part_index_string": lambda p: attr_set(p, "/provenance", "part_index", "1"),
    "part_index_7": lambda p: attr_set(p, "/provenance", "part_index", 7, "i8"),
}
VARIANTS.update(PART_VARIANTS)


def kn_partial(path):
    """A finished one-stage file with unit 1 marked undone (not finished)."""
    with h5py.File(path, "r+") as f:
        stage = f["/completion"][list(f["/completion"])[0]]["stage0"]
        stage["done"][1] = 0
        f["/provenance"].attrs["finished"] = 0


def dataset(path, how, name=""):
    """Dataset name retyped (retype: float32 <-> float64; int: int64 zeros), one longer in
    its last dimension (longer) or deleted; none: untouched."""
    with h5py.File(path, "r+") as f:
        if how == "none":
            return
        old = f[name][...]
        del f[name]
        if how == "retype":
            f[name] = old.astype("f8" if old.dtype == np.float32 else "f4")
        elif how == "int":
            f[name] = np.zeros(old.shape, "i8")
        elif how == "longer":
            f[name] = np.zeros(old.shape[:-1] + (old.shape[-1] + 1,))


if __name__ == "__main__":
    if sys.argv[1] == "list":
        print("\n".join(VARIANTS))
        sys.exit(0)
    SRC, DIR, NAME = sys.argv[1:4]
    os.makedirs(DIR, exist_ok=True)
    out = os.path.join(DIR, "out.h5")
    shutil.copyfile(SRC, out)
    if NAME == "kn_partial":
        kn_partial(out)
    elif NAME == "dataset":  # dataset "HOW [NAME]": any file's dataset
        dataset(out, *sys.argv[4].split(" ", 1))
    else:
        VARIANTS[NAME](out)
