#!/usr/bin/env python3
"""Compare two mechdiff result files dataset by dataset (dev tool).

    compare_h5.py REFERENCE.h5 OTHER.h5 [--rtol 1e-4] [--rename REGEX=REPLACEMENT ...]

For every dataset present in both files: numeric ones get the maximum
absolute difference, that difference relative to the reference's largest
magnitude, and the NMSE (sum (o - r)^2 / sum r^2, as llama.cpp's
test-backend-ops); string / byte ones get the number of differing elements.
Used to check a sweep run on the CUDA backend against the CPU reference
(scripts/dev/gpu_checks.sh). Exit status 1 when a numeric dataset's relative
difference exceeds --rtol or any string differs, else 0; the table is printed
either way. --rename rewrites the reference's dataset paths (re.sub, in the
order given) before they are matched with OTHER's, to compare files across a
change of the layout (e.g. 'knowledge/(\w+)/(\w+)/(\w+)/=knowledge/\1/\3->\2/').
Needs numpy and h5py only.
"""
import argparse
import re
import sys

import h5py
import numpy as np


def walk(f):
    out = {}
    f.visititems(lambda name, obj: out.__setitem__(name, obj) if isinstance(obj, h5py.Dataset) else None)
    return out


def compare(ref, oth):
    a, b = ref[...], oth[...]
    if a.shape != b.shape:
        return "shape", f"{a.shape} vs {b.shape}", None
    if a.dtype.kind in "fiu" and b.dtype.kind in "fiu":
        a = a.astype(np.float64)
        b = b.astype(np.float64)
        both_nan = np.isnan(a) & np.isnan(b)
        d = np.where(both_nan, 0.0, np.abs(a - b))
        if np.isnan(d).any():
            return "nan", "NaN in one file only", float("inf")
        scale = float(np.nanmax(np.abs(a))) if a.size else 0.0
        maxabs = float(d.max()) if d.size else 0.0
        rel = maxabs / scale if scale > 0 else maxabs
        den = float(np.nansum(a * a))
        nmse = float(np.sum(d * d)) / den if den > 0 else float(np.sum(d * d))
        return "num", f"max|d| {maxabs:.3e}  rel {rel:.3e}  nmse {nmse:.3e}", rel
    flat_a, flat_b = a.reshape(-1), b.reshape(-1)
    ndiff = int(sum(1 for x, y in zip(flat_a, flat_b) if x != y))
    return "str", f"{ndiff} of {flat_a.size} differ", None if ndiff == 0 else float(ndiff)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reference")
    ap.add_argument("other")
    ap.add_argument("--rtol", type=float, default=1e-4)
    ap.add_argument("--rename", action="append", default=[], metavar="REGEX=REPLACEMENT",
                    help="rewrite the reference's paths before matching (repeatable)")
    args = ap.parse_args()
    renames = [r.split("=", 1) for r in args.rename]
    bad = 0
    with h5py.File(args.reference, "r") as fr, h5py.File(args.other, "r") as fo:
        dr, do = walk(fr), walk(fo)
        for pattern, repl in renames:
            dr = {re.sub(pattern, repl, name): d for name, d in dr.items()}
        only = sorted(set(dr) ^ set(do))
        for name in only:
            print(f"{name}: only in {'reference' if name in dr else 'other'}")
            bad += 1
        worst = (0.0, "")
        for name in sorted(set(dr) & set(do)):
            kind, text, score = compare(dr[name], do[name])
            flag = ""
            if kind in ("shape", "nan") or (kind == "str" and score) or (kind == "num" and score > args.rtol):
                flag = "  <-- differs"
                bad += 1
            if kind == "num" and score > worst[0]:
                worst = (score, name)
            print(f"{name}: {text}{flag}")
        print(f"compared {len(set(dr) & set(do))} datasets; worst relative difference "
              f"{worst[0]:.3e} ({worst[1] or '-'}); {bad} over tolerance (rtol {args.rtol:g})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
