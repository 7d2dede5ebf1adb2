#!/usr/bin/env python3
"""Knowledge (activation patching) analysis of a mechdiff output file.

    analysis/knowledge.py OUT.h5 [-o DIR] [--boot N] [--seed S]

For every knowledge experiment and dataset in OUT.h5 (read through
mdread.py): the mean patching map (layer x position) of every target/source
model combination, normalised as the study does (20 equal bins over
[min - 1e-5, max + 1e-5]; the lower 10 bins map to 0, the upper 10 to
0.1 ... 1.0), and for every pair of maps the Pearson correlation over
normalised cells with a bootstrap interval over pairs (both maps recomputed
from the same resampled pairs), and the max |difference| overall and over the
subject and object columns. Difference maps: for every compared pair, the
two mean maps and their difference (post - base; cross-model - within-model)
on one colour scale. Writes knowledge_table.csv, knowledge_table.md, one
heatmap PNG per map into DIR (default: knowledge/ beside OUT.h5), the
difference maps and the correlation plot into DIR/figures, and prints the
table.

Needs numpy, h5py, matplotlib and xarray (Debian packages); no mechdiff code.
Unfinished units are NaN in the file and are left out of the means.
"""
import argparse
import itertools
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import knowledge_heads  # noqa: E402
import mdread  # noqa: E402
import stats  # noqa: E402
from common import add_resampling_args, default_outdir, pyplot  # noqa: E402

PAPER_CORRELATION = "0.98-0.99"  # docs/methods.md: base vs post-trained maps
PAPER_CORRELATION_RANGE = (0.98, 0.99)


def normalise(m):
    """The study's normalisation of a mean patching map (last two axes; leading axes batch)."""
    m = np.asarray(m, dtype=float)
    flat = m.reshape(m.shape[:-2] + (-1,))
    lo = np.nanmin(flat, axis=-1)[..., None, None] - 1e-5
    hi = np.nanmax(flat, axis=-1)[..., None, None] + 1e-5
    bins = np.clip(np.floor((m - lo) / ((hi - lo) / 20.0)), 0, 19)
    return np.where(bins < 10, 0.0, (bins - 9) / 10.0)


def _pearson_rows(a, b):
    """Pearson correlation of the flattened last two axes of a and b (batched)."""
    a = a.reshape(a.shape[:-2] + (-1,))
    b = b.reshape(b.shape[:-2] + (-1,))
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    den = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(-1) / np.where(den > 0, den, 1), np.nan)


def label(target, source):
    return target if target == source else f"{source}->{target}"


def load(eff):
    """{(target, source): (effect [pair, layer, position] of the done pairs' rows, done mask)}."""
    out = {}
    for t in eff.coords["target"].values:
        for s in eff.coords["source"].values:
            e = eff.sel(target=t, source=s).values
            done = ~np.all(np.isnan(e.reshape(e.shape[0], -1)), axis=1)
            if done.any():
                out[(str(t), str(s))] = (e, done)
    return out


def columns(first, last, n_toks, suffix_tokens):
    """Subject columns (window positions inside the subject span for at least
    half of the pairs) and the object column (the token before the period)."""
    counts = np.zeros(n_toks)
    for a, b in zip(first, last):
        if b >= 0:
            counts[max(a, 0):b + 1] += 1
    subj = np.where(counts >= 0.5 * len(first))[0]
    obj = np.array([n_toks - suffix_tokens - 2]) if n_toks - suffix_tokens - 2 >= 0 else np.array([], dtype=int)
    return subj, obj


def ordered(ka, kb, roles):
    """(first, second) so that differences read post - base and cross - within."""
    cross_a, cross_b = ka[0] != ka[1], kb[0] != kb[1]
    if cross_a != cross_b:
        return (kb, ka) if cross_a else (ka, kb)
    ra = roles.index(ka[0]) if ka[0] in roles else 0
    rb = roles.index(kb[0]) if kb[0] in roles else 0
    return (ka, kb) if (ra, ka[1]) <= (rb, kb[1]) else (kb, ka)


def compare(maps, subj, obj, roles, opts, tag):
    """Rows of the comparison table for every pair of maps, with a bootstrap
    interval of the Pearson correlation over pairs (pairs computed in both)."""
    o = stats.options(opts)
    rows = []
    for ka, kb in itertools.combinations(sorted(maps), 2):
        ka, kb = ordered(ka, kb, roles)
        (ea, da), (eb, db) = maps[ka], maps[kb]
        both = da & db
        ma, mb = np.nanmean(ea[both], axis=0), np.nanmean(eb[both], axis=0)
        na, nb = normalise(ma), normalise(mb)
        r = float(_pearson_rows(na, nb))
        idx = np.nonzero(both)[0]
        gen = stats.rng(opts, "knowledge", tag, label(*ka), label(*kb))
        ci = (float("nan"), float("nan"))
        if len(idx) > 1 and o["boot"] > 0:
            w = stats.bootstrap_counts(gen, len(idx), o["boot"]) / len(idx)  # [boot, pairs]
            xa = np.nan_to_num(ea[idx].reshape(len(idx), -1))
            xb = np.nan_to_num(eb[idx].reshape(len(idx), -1))
            ci = stats.percentile_ci(_pearson_rows(normalise((w @ xa).reshape((-1,) + ma.shape)),
                                                   normalise((w @ xb).reshape((-1,) + mb.shape))))
        diff = np.abs(na - nb)
        rows.append({
            "map_a": label(*ka), "map_b": label(*kb), "key_a": ka, "key_b": kb, "pairs": int(both.sum()),
            "pearson": r, "pearson_low": ci[0], "pearson_high": ci[1],
            "max_abs_diff": float(diff.max()),
            "max_abs_diff_subject": float(diff[:, subj].max()) if len(subj) else float("nan"),
            "max_abs_diff_object": float(diff[:, obj].max()) if len(obj) else float("nan"),
            "mean_a": ma, "mean_b": mb,
        })
    return rows


def heatmap(m, toks, title, path):
    plt = pyplot()
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


def diff_figure(row, toks, title, path):
    """Map A, map B and B - A (mean effect, logit(TRUE) - logit(FALSE)) on one
    diverging colour scale, so that a colour means the same number in all three."""
    plt = pyplot()
    a, b = row["mean_a"], row["mean_b"]
    d = b - a
    lim = float(np.nanmax(np.abs(np.stack([a, b, d])))) or 1.0
    w = max(3.2, 0.32 * a.shape[1] + 1.0)
    fig, axes = plt.subplots(1, 3, figsize=(3 * w + 1.2, max(2.8, 0.3 * a.shape[0] + 1.6)), sharey=True)
    panels = ((a, row["map_a"]), (b, row["map_b"]), (d, f"{row['map_b']} − {row['map_a']}"))
    for ax, (m, name) in zip(axes, panels):
        im = ax.imshow(m, aspect="auto", cmap="RdBu_r", origin="lower", vmin=-lim, vmax=lim)
        ax.set_xticks(range(len(toks)))
        ax.set_xticklabels(toks, rotation=60, ha="right", fontsize=7)
        ax.set_title(name, fontsize=9)
    axes[0].set_ylabel("layer")
    fig.colorbar(im, ax=list(axes), label="mean effect (logit TRUE − FALSE)", shrink=0.9)
    fig.suptitle(title, fontsize=9, y=1.04)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def correlation_figure(rows, path):
    """Pearson of every compared pair with its bootstrap interval, the study's range beside it."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * len(rows) + 1.5), 3.6))
    xs = np.arange(len(rows))
    for x, r in zip(xs, rows):
        lo, hi = stats.errorbar(r["pearson"], (r["pearson_low"], r["pearson_high"]))
        ax.bar(x, r["pearson"], color="tab:green" if "->" not in r["map_a"] + r["map_b"] else "tab:olive",
               yerr=[lo, hi], capsize=4, width=0.6)
    within = [x for x, r in zip(xs, rows) if "->" not in r["map_a"] + r["map_b"]]
    if within:  # the study's number is for base vs post-trained maps only
        half = (PAPER_CORRELATION_RANGE[1] - PAPER_CORRELATION_RANGE[0]) / 2
        ax.errorbar(np.array(within) + 0.38, [np.mean(PAPER_CORRELATION_RANGE)] * len(within),
                    yerr=[[half] * len(within)] * 2, fmt="D", color="k", ms=4,
                    label=f"paper, base vs post-trained ({PAPER_CORRELATION})")
        ax.legend(fontsize=7, loc="lower right")
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{r['dataset']}\n{r['map_a']} vs\n{r['map_b']}" for r in rows], fontsize=7)
    ax.set_ylim(min(0.0, min([r["pearson"] for r in rows] + [0])), 1.05)
    ax.set_ylabel("Pearson, normalised maps")
    ax.set_title("knowledge maps: correlation (95 % bootstrap over pairs)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def analyse(path, outdir, quiet=False, opts=None):
    """Returns (table rows, [(is_within_model, figure path)], per-dataset notes,
    [(row, difference figure path)], correlation figure path or None)."""
    os.makedirs(os.path.join(outdir, "figures"), exist_ok=True)
    table, figures, notes, diffs = [], [], [], []
    with mdread.open_results(path) as res:
        for exp_name, kind in res.experiments().items():
            if kind != "knowledge":
                continue
            roles = [r for r in (res.h5[exp_name].attrs.get("models", "") or "").split(",") if r]
            for ds_name in res.knowledge_datasets(exp_name):
                try:
                    eff = res.knowledge_effect(exp_name, ds_name)
                except KeyError:
                    continue
                maps = load(eff)
                if not maps:
                    continue
                roles = roles or [str(x) for x in eff.coords["target"].values]
                n_toks = eff.sizes["position"]
                ts = res.h5[exp_name][ds_name]["pairs"]["true_statement"]
                first, last = res.knowledge_subject(exp_name, ds_name)
                subj, obj = columns(first, last, n_toks, int(ts.attrs.get("suffix_tokens", 4)))
                toks = [t.replace("\n", "\\n") for t in eff.coords["token"].values] if "token" in eff.coords \
                    else [str(p) for p in eff.coords["position"].values]
                notes.append(f"{exp_name}/{ds_name}: {ts.attrs.get('pairs_kept', '?')} pairs kept, "
                             f"{ts.attrs.get('dropped_no_partner', '?')} TRUE statements without a partner of the "
                             "same template")
                if not len(subj) or not len(obj):
                    what = " and ".join(w for w, c in (("subject", subj), ("object", obj)) if not len(c))
                    plural = "s" if " and " in what else ""
                    notes.append(f"{exp_name}/{ds_name}: no {what} column{plural} (n/a in the table): the patched "
                                 f"window of the last {n_toks} positions does not reach the {what} token(s) of at "
                                 "least half of the pairs; a larger n_toks covers them (docs/methods.md)")
                for (target, source), (e, done) in sorted(maps.items()):
                    fig = os.path.join(outdir, f"knowledge_{exp_name}_{ds_name}_{source}_to_{target}.png")
                    heatmap(normalise(np.nanmean(e[done], axis=0)), toks,
                            f"{ds_name}: {label(target, source)} ({int(done.sum())} pairs)", fig)
                    figures.append((target == source, fig))
                for row in compare(maps, subj, obj, roles, opts, f"{exp_name}/{ds_name}"):
                    row.update({"experiment": exp_name, "dataset": ds_name})
                    table.append(row)
                    fig = os.path.join(outdir, "figures", "knowledge_diff_%s_%s_%s_vs_%s.png" % (
                        exp_name, ds_name, row["map_b"].replace("->", "_to_"), row["map_a"].replace("->", "_to_")))
                    diff_figure(row, toks, f"{ds_name}: {row['map_b']} − {row['map_a']} "
                                           f"({row['pairs']} pairs; one colour scale)", fig)
                    diffs.append((row, fig))
    corr = None
    if table:
        corr = os.path.join(outdir, "figures", "knowledge_correlation.png")
        correlation_figure(table, corr)
    cols = ["experiment", "dataset", "map_a", "map_b", "pairs", "pearson", "pearson_low", "pearson_high",
            "max_abs_diff", "max_abs_diff_subject", "max_abs_diff_object"]
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
    return table, figures, notes, diffs, corr


def _cell(x):
    """A table cell of 2 decimals, 'n/a' for a column the window does not reach."""
    return "n/a" if np.isnan(x) else f"{x:.2f}"


def markdown_table(table):
    lines = ["| dataset | map A | map B | Pearson [95 % CI] | max abs diff | subject | object |",
             "|---|---|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r['dataset']} | {r['map_a']} | {r['map_b']} | "
                     f"{stats.fmt(r['pearson'], (r['pearson_low'], r['pearson_high']))} | "
                     f"{r['max_abs_diff']:.2f} | {_cell(r['max_abs_diff_subject'])} | "
                     f"{_cell(r['max_abs_diff_object'])} |")
    return "\n".join(lines) + "\n"


def report_sections(h5file, outdir, opts=None):
    """Sections for analysis/report.py: knowledge maps and cross-model patching."""
    path = h5file if isinstance(h5file, str) else h5file.filename
    heads = knowledge_heads.report_sections(path, outdir)  # component: head runs
    table, figures, notes, diffs, corr = analyse(path, outdir, quiet=True, opts=opts)
    if not figures:
        return heads
    self_rows = [r for r in table if "->" not in r["map_a"] and "->" not in r["map_b"]]
    cross_rows = [r for r in table if r not in self_rows]
    ci = lambda r: stats.fmt(r["pearson"], (r["pearson_low"], r["pearson_high"]))  # noqa: E731
    headline = [(f"knowledge map {r['map_a']} vs {r['map_b']} ({r['dataset']}), Pearson", ci(r),
                 PAPER_CORRELATION) for r in self_rows]

    def same_target(r):  # "t" vs "s->t": the target's own map against the cross-patched one
        a, b = r["key_a"], r["key_b"]
        return a[0] == b[0] and (a[0] == a[1]) != (b[0] == b[1])
    headline += [(f"cross-model patching: {r['map_a']} vs {r['map_b']} ({r['dataset']}), Pearson",
                  ci(r), "works (maps close)") for r in cross_rows if same_target(r)]
    rel = lambda p: os.path.relpath(p, outdir)  # noqa: E731
    boot = stats.options(opts)["boot"]
    sections = [{
        "headline": headline,
        "title": "Knowledge: activation patching maps",
        "markdown": ("Mean effect of patching the TRUE run's state into the FALSE run, normalised as in the "
                     "study; Pearson correlation of the normalised maps with a 95 %% bootstrap interval over "
                     "pairs (%d resamples; paper, base vs post-trained: %s). Difference maps show both mean maps "
                     "and their difference on one colour scale (logit TRUE − FALSE).\n\n"
                     % (boot, PAPER_CORRELATION) + markdown_table(self_rows) + "\n" +
                     "\n".join(f"- {n}" for n in notes) + "\n"),
        "figures": [rel(p) for within, p in figures if within] + ([rel(corr)] if corr else []) +
                   [rel(p) for r, p in diffs if r in self_rows],
    }]
    if cross_rows:
        sections.append({
            "title": "Knowledge: cross-model patching",
            "markdown": ("States of one model patched into the other (source->target) compared with the "
                         "within-model maps; the study finds cross-model patching works (maps close to the "
                         "within-model ones). Difference maps: cross-model − within-model.\n\n" +
                         markdown_table(cross_rows)),
            "figures": [rel(p) for within, p in figures if not within] +
                       [rel(p) for r, p in diffs if r in cross_rows and same_target(r)],
        })
    return sections + heads


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("h5", metavar="OUT.h5", help="a mechdiff results file")
    ap.add_argument("-o", "--outdir", help="folder for the tables and figures (default: knowledge/ beside OUT.h5)")
    add_resampling_args(ap)
    a = ap.parse_args()
    outdir = a.outdir or default_outdir(a.h5, "knowledge")
    table, figures, _, diffs, _ = analyse(a.h5, outdir, opts={"boot": a.boot, "seed": a.seed})
    if not figures:
        print(f"{a.h5}: no knowledge results found", file=sys.stderr)
        return 1
    print(f"wrote {len(figures)} heatmaps, {len(diffs)} difference maps and knowledge_table.csv/.md to {outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
