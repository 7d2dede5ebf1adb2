#!/usr/bin/env python3
"""Knowledge (activation patching) analysis of a mechdiff output file.

    analysis/knowledge.py OUT.h5 [-o DIR]

For every knowledge experiment and dataset in OUT.h5: the mean patching map
(layer x position) of every target/source model combination, normalised as
the study does (20 equal bins over [min - 1e-5, max + 1e-5]; the lower 10 bins
map to 0, the upper 10 to 0.1 ... 1.0), and for every pair of maps the
Pearson correlation over normalised cells and the max |difference| overall
and over the subject and object columns. Writes knowledge_table.csv,
knowledge_table.md and one heatmap PNG per map into DIR (default: next to
OUT.h5), and prints the table.

Needs only numpy, h5py and matplotlib (Debian packages); no mechdiff code.
Unfinished units are NaN in the file and are left out of the means.
"""
import argparse
import itertools
import json
import os
import sys

import h5py
import numpy as np

PAPER_CORRELATION = "0.98-0.99"  # docs/methods.md: base vs post-trained maps


def normalise(m):
    """The study's normalisation of a mean patching map."""
    lo, hi = np.nanmin(m), np.nanmax(m)
    a, w = lo - 1e-5, (hi + 1e-5 - (lo - 1e-5)) / 20.0
    bins = np.clip(np.floor((m - a) / w), 0, 19)
    return np.where(bins < 10, 0.0, (bins - 9) / 10.0)


def _attr(obj, name, default=None):
    v = obj.attrs.get(name, default)
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v.item()
    return v


def find_datasets(f):
    """Yields (experiment, dataset, group) for every knowledge dataset group:
    a group holding pairs/true_statement and model subgroups with effect."""
    for exp_name, exp in f.items():
        if not isinstance(exp, h5py.Group):
            continue
        for ds_name, ds in exp.items():
            if isinstance(ds, h5py.Group) and "pairs" in ds and "true_statement" in ds["pairs"]:
                yield exp_name, ds_name, ds


def load_maps(group):
    """{(target, source): (mean map [layer, position], pairs done)}."""
    maps = {}
    for target, tg in group.items():
        if target == "pairs" or not isinstance(tg, h5py.Group):
            continue
        for source, sg in tg.items():
            if not isinstance(sg, h5py.Group) or "effect" not in sg:
                continue
            eff = sg["effect"][...]
            done = ~np.all(np.isnan(eff.reshape(eff.shape[0], -1)), axis=1)
            if done.sum() == 0:
                continue
            maps[(target, source)] = (np.nanmean(eff[done], axis=0), int(done.sum()))
    return maps


def columns(group, n_toks):
    """Subject columns (window positions inside the subject span for at least
    half of the pairs) and the object column (the token before the period)."""
    pairs = group["pairs"]
    first, last = pairs["subject_first"][...], pairs["subject_last"][...]
    counts = np.zeros(n_toks)
    for a, b in zip(first, last):
        if b >= 0:
            counts[max(a, 0):b + 1] += 1
    subj = np.where(counts >= 0.5 * len(first))[0]
    suffix = int(_attr(pairs["true_statement"], "suffix_tokens", 4))
    obj = np.array([n_toks - suffix - 2]) if n_toks - suffix - 2 >= 0 else np.array([], dtype=int)
    return subj, obj


def token_labels(group, n_toks):
    raw = _attr(group["pairs"]["true_statement"], "window_tokens_json")
    try:
        toks = json.loads(raw) if raw else []
    except ValueError:
        toks = []
    if len(toks) != n_toks:
        toks = [str(i - n_toks) for i in range(n_toks)]
    return [t.replace("\n", "\\n") for t in toks]


def label(target, source):
    return target if target == source else f"{source}->{target}"


def compare(maps, subj, obj):
    """Rows of the comparison table for every pair of maps."""
    rows = []
    for (ka, (ma, _)), (kb, (mb, _)) in itertools.combinations(sorted(maps.items()), 2):
        na, nb = normalise(ma), normalise(mb)
        a, b = na.ravel(), nb.ravel()
        r = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")
        diff = np.abs(na - nb)
        rows.append({
            "map_a": label(*ka), "map_b": label(*kb), "pearson": r,
            "max_abs_diff": float(diff.max()),
            "max_abs_diff_subject": float(diff[:, subj].max()) if len(subj) else float("nan"),
            "max_abs_diff_object": float(diff[:, obj].max()) if len(obj) else float("nan"),
        })
    return rows


def heatmap(m, toks, title, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * m.shape[1] + 1.5), max(3.0, 0.3 * m.shape[0] + 1.2)))
    im = ax.imshow(m, aspect="auto", cmap="viridis", origin="lower", vmin=0, vmax=1)
    ax.set_xticks(range(len(toks)))
    ax.set_xticklabels(toks, rotation=60, ha="right", fontsize=8)
    ax.set_xlabel("token (patched position)")
    ax.set_ylabel("layer")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="normalised effect")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def analyse(path, outdir, quiet=False):
    """Returns (table rows, [(is_within_model, figure path)], per-dataset notes)."""
    os.makedirs(outdir, exist_ok=True)
    table, figures, notes = [], [], []
    with h5py.File(path, "r") as f:
        for exp_name, ds_name, group in find_datasets(f):
            maps = load_maps(group)
            if not maps:
                continue
            n_toks = next(iter(maps.values()))[0].shape[1]
            subj, obj = columns(group, n_toks)
            toks = token_labels(group, n_toks)
            kept = _attr(group["pairs"]["true_statement"], "pairs_kept", "?")
            notes.append(f"{exp_name}/{ds_name}: {kept} pairs kept, "
                         f"{_attr(group['pairs']['true_statement'], 'dropped_no_partner', '?')} TRUE statements "
                         "without a partner of the same template")
            for (target, source), (m, done) in sorted(maps.items()):
                fig = os.path.join(outdir, f"knowledge_{exp_name}_{ds_name}_{source}_to_{target}.png")
                heatmap(normalise(m), toks, f"{ds_name}: {label(target, source)} ({done} pairs)", fig)
                figures.append((target == source, fig))
            for row in compare(maps, subj, obj):
                row.update({"experiment": exp_name, "dataset": ds_name})
                table.append(row)
    cols = ["experiment", "dataset", "map_a", "map_b", "pearson", "max_abs_diff", "max_abs_diff_subject",
            "max_abs_diff_object"]
    with open(os.path.join(outdir, "knowledge_table.csv"), "w") as fh:
        fh.write(",".join(cols) + "\n")
        for r in table:
            fh.write(",".join(f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c]) for c in cols) + "\n")
    md = markdown_table(table)
    with open(os.path.join(outdir, "knowledge_table.md"), "w") as fh:
        fh.write(md)
    if not quiet:
        print(md)
        for n in notes:
            print(n)
    return table, figures, notes


def markdown_table(table):
    lines = ["| dataset | map A | map B | Pearson (paper base vs post: %s) | max abs diff | subject | object |"
             % PAPER_CORRELATION, "|---|---|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r['dataset']} | {r['map_a']} | {r['map_b']} | {r['pearson']:.3f} | "
                     f"{r['max_abs_diff']:.2f} | {r['max_abs_diff_subject']:.2f} | {r['max_abs_diff_object']:.2f} |")
    return "\n".join(lines) + "\n"


def report_sections(h5file, outdir):
    """Sections for analysis/report.py: knowledge maps and cross-model patching."""
    path = h5file if isinstance(h5file, str) else h5file.filename
    table, figures, notes = analyse(path, outdir, quiet=True)
    if not figures:
        return []
    self_rows = [r for r in table if "->" not in r["map_a"] and "->" not in r["map_b"]]
    cross_rows = [r for r in table if r not in self_rows]
    headline = [(f"knowledge map {r['map_a']} vs {r['map_b']} ({r['dataset']}), Pearson", f"{r['pearson']:.2f}",
                 PAPER_CORRELATION) for r in self_rows]
    def same_target(r):  # "t" vs "s->t": the target's own map against the cross-patched one
        a, b = r["map_a"], r["map_b"]
        return ("->" in b and "->" not in a and b.split("->")[1] == a) or \
               ("->" in a and "->" not in b and a.split("->")[1] == b)
    headline += [(f"cross-model patching: {r['map_a']} vs {r['map_b']} ({r['dataset']}), Pearson",
                  f"{r['pearson']:.2f}", "works (maps close)") for r in cross_rows if same_target(r)]
    sections = [{
        "headline": headline,
        "title": "Knowledge: activation patching maps",
        "markdown": ("Mean effect of patching the TRUE run's state into the FALSE run, normalised as in the "
                     "study; Pearson correlation of the normalised maps (paper, base vs post-trained: "
                     f"{PAPER_CORRELATION}).\n\n" + markdown_table(self_rows) + "\n" +
                     "\n".join(f"- {n}" for n in notes) + "\n"),
        "figures": [os.path.relpath(p, outdir) for within, p in figures if within],
    }]
    if cross_rows:
        sections.append({
            "title": "Knowledge: cross-model patching",
            "markdown": ("States of one model patched into the other (source->target) compared with the "
                         "within-model maps; the study finds cross-model patching works (maps close to the "
                         "within-model ones).\n\n" + markdown_table(cross_rows)),
            "figures": [os.path.relpath(p, outdir) for within, p in figures if not within],
        })
    return sections


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("h5")
    ap.add_argument("-o", "--outdir", default=None)
    a = ap.parse_args()
    outdir = a.outdir or os.path.join(os.path.dirname(os.path.abspath(a.h5)), "knowledge")
    table, figures, _ = analyse(a.h5, outdir)
    if not figures:
        print(f"{a.h5}: no knowledge results found", file=sys.stderr)
        return 1
    print(f"wrote {len(figures)} heatmaps and knowledge_table.csv/.md to {outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
