#!/usr/bin/env python3
"""State of a results file after a kill, for tests/mpi/chaos.sh.

    chaos_check.py REF.h5 OUT.h5 PREV.json NEW.json

Opens OUT.h5 with plain h5py (no SWMR, no h5clear), reads every stage's done
flags and regions (/completion/<exp>/stage<k>/done, regions: 'dataset[off+cnt,
...];...', paths below /<exp>) and checks that
  - every unit done in PREV.json (the state after the previous kill) is still
    done: results written are never lost;
  - every hyperslab of every done unit holds exactly REF.h5's bytes there (the
    uninterrupted run's): a done flag never shows without its data, and the
    data never differs, whatever was killed when;
then writes the done units to NEW.json and prints 'DONE_UNITS N'. An absent
OUT.h5 is the state of no unit (a kill before the first snapshot); a
PREV.json with units then fails. Exit 1 with a line per defect.
"""
import json
import os
import re
import sys

import h5py
import numpy as np

SLAB = re.compile(r"^(.+)\[([0-9+,]+)\]$")


def done_units(f):
    """{'exp/stage/unit': region text} of every done unit in f."""
    out = {}
    comp = f.get("completion")
    if comp is None:
        return out
    for exp in comp:
        for stage in comp[exp]:
            done = comp[exp][stage]["done"][...]
            regions = comp[exp][stage]["regions"]
            for u in np.flatnonzero(done):
                text = regions[u]
                out[f"{exp}/{stage}/{u}"] = text.decode() if isinstance(text, bytes) else str(text)
    return out


def same_bytes(a, b):
    if a.dtype.kind in "OSU" or b.dtype.kind in "OSU":
        return a.shape == b.shape and all(x == y for x, y in zip(a.reshape(-1), b.reshape(-1)))
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def check_unit(ref, out, key, region, bad):
    exp = key.split("/")[0]
    for slab in filter(None, region.split(";")):
        m = SLAB.match(slab)
        if not m:
            bad.append(f"{key}: region '{slab}' is not dataset[offset+count,...]")
            continue
        path = f"{exp}/{m.group(1)}"
        sel = tuple(slice(int(o), int(o) + int(c)) for o, c in (d.split("+") for d in m.group(2).split(",")))
        if path not in out:
            bad.append(f"{key}: its dataset {path} is not in the file")
            continue
        if not same_bytes(ref[path][sel], out[path][sel]):
            bad.append(f"{key}: {path}{list(sel)} differs from the uninterrupted run")


def main():
    ref_path, out_path, prev_path, new_path = sys.argv[1:5]
    prev = set(json.load(open(prev_path))) if os.path.exists(prev_path) else set()
    bad = []
    units = {}
    if os.path.exists(out_path):
        with h5py.File(ref_path, "r") as ref, h5py.File(out_path, "r") as out:
            units = done_units(out)
            for key, region in units.items():
                check_unit(ref, out, key, region, bad)
    lost = sorted(prev - set(units))
    if lost:
        bad.append(f"{len(lost)} units done after the previous kill are not done now: {', '.join(lost[:8])}")
    for line in bad[:20]:
        print(f"chaos_check: {out_path}: {line}")
    json.dump(sorted(units), open(new_path, "w"))
    print(f"DONE_UNITS {len(units)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
