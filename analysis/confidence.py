"""confidence.py — entropy neurons (the `confidence` kind's output): overlap
table across models beside the study's number, the entropy neurons of each
model, norm vs LogitVar scatter per model with the entropy neurons marked, and
(when the job measured them) activations, entropy and mean-ablation effects.

    python3 analysis/confidence.py OUT.h5 [-o OUTDIR] [--boot 1000] [--seed 0]

Prints the section of every confidence experiment as Markdown and writes its
figures, OUTDIR/figures/confidence_<name>_overlap.png and _scatter.png
(OUTDIR default: confidence/ beside OUT.h5; <name> = the experiment's name).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stats  # noqa: E402
from common import PAPER, attr_str, experiment_groups, md_table, open_results, pyplot, run_cli  # noqa: E402

PAPER_OVERLAP = (8, 10, 10)  # low, high of the study's shared entropy neurons, of top_k = 10 (Llama-3.1: 8)


def _kept(g, role):
    """Neurons above the norm threshold (the pool the entropy neurons are drawn from)."""
    r = g[role]
    return int((r["norm"][()] > float(r["norm_threshold"][0])).sum()) if "norm_threshold" in r else len(r["norm"])


def _overlap_figure(pairs, k, name, outdir):
    """Shared entropy neurons per pair of models, the chance range of two random
    top-k sets of the kept neurons as an error bar, the study's range beside it."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 1.5 * len(pairs) + 2), 3.4))
    xs = np.arange(len(pairs))
    ax.bar(xs, [p["overlap"] for p in pairs], width=0.5, color="tab:orange", label="ours")
    # the hypergeometric mean need not lie inside its 95 % range: 10 of Qwen2.5-7B's
    # 4736 kept neurons have a mean of 0.021 and a range [0, 0] (tests/e2e/report_chance_bar.sh)
    bars = [stats.errorbar(p["chance"], p["chance_range"]) for p in pairs]
    ax.errorbar(xs - 0.35, [p["chance"] for p in pairs],
                yerr=[[b[0][0] for b in bars], [b[1][0] for b in bars]], fmt="o", color="0.4", ms=4, capsize=3,
                label="chance (random top-%d, 95 %%)" % int(k))
    if int(k) == PAPER_OVERLAP[2]:
        lo, hi, _ = PAPER_OVERLAP
        ax.errorbar(xs + 0.35, [(lo + hi) / 2] * len(pairs), yerr=[[(hi - lo) / 2] * len(pairs)] * 2, fmt="D",
                    color="k", ms=5, capsize=3, label="paper (8–10 of 10)")
    ax.set_xticks(xs)
    ax.set_xticklabels(["%s vs %s" % (p["a"], p["b"]) for p in pairs], fontsize=8)
    ax.set_ylim(0, int(k) * 1.3)
    ax.set_ylabel("shared entropy neurons (of %s)" % k)
    ax.legend(fontsize=7, loc="upper left", ncol=2)
    fig.tight_layout()
    rel = os.path.join("figures", "confidence_%s_overlap.png" % name)
    os.makedirs(os.path.join(outdir, "figures"), exist_ok=True)
    fig.savefig(os.path.join(outdir, rel), dpi=110)
    plt.close(fig)
    return rel


def _roles(g):
    roles = [r for r in attr_str(g, "roles").split(",") if r]
    return roles or [k for k in g if k not in ("pairs", "prompts") and hasattr(g[k], "keys") and "norm" in g[k]]


def _scatter(g, name, roles, outdir):
    plt = pyplot()
    fig, axes = plt.subplots(1, len(roles), figsize=(4.5 * len(roles), 4), squeeze=False)
    for ax, role in zip(axes[0], roles):
        r = g[role]
        norm, lv = r["norm"][()], r["logitvar"][()]
        sel = [int(i) for i in r["selected"][()] if i >= 0] if "selected" in r else []
        ax.scatter(norm, lv, s=4, c="0.6", label="neurons")
        if sel:
            ax.scatter(norm[sel], lv[sel], s=30, c="red", marker="x", label="entropy neurons")
        if "norm_threshold" in r:
            ax.axvline(float(r["norm_threshold"][0]), ls="--", c="k", lw=0.8,
                       label="%s%% percentile" % attr_str(g, "percentile", "75"))
        ax.set_yscale("log")
        ax.set_xlabel("||w_out||")
        ax.set_ylabel("LogitVar")
        ax.set_title(role)
        ax.legend(fontsize=7)
    fig.tight_layout()
    rel = os.path.join("figures", "confidence_%s_scatter.png" % name)
    os.makedirs(os.path.join(outdir, "figures"), exist_ok=True)
    fig.savefig(os.path.join(outdir, rel), dpi=110)
    plt.close(fig)
    return rel


def _section(name, g, outdir, opts=None):
    roles = _roles(g)
    k = attr_str(g, "top_k", "10")
    md, headline = [], []
    md.append("Last-layer MLP neurons: norm of the output weight and LogitVar (variance over the vocabulary of "
              "the cosine with the gain-folded, centred unembedding); entropy neurons = norm above the %sth "
              "percentile (%s), then the %s smallest LogitVar. Paper: overlap base vs post-trained %s.\n"
              % (attr_str(g, "percentile", "75"), attr_str(g, "percentile_method", "linear interpolation"), k,
                 PAPER["entropy_overlap"]))
    rows, pairs = [], []
    if "pairs" in g:
        for pname, p in g["pairs"].items():
            # pairs/<a>-><b> (group attributes source, target); files before 2026-12-07: pairs/<a>__<b>
            sep = "->" if "->" in pname else "__"
            a, b = attr_str(p, "source", pname.split(sep)[0]), attr_str(p, "target", pname.split(sep)[-1])
            ov, iou = int(p["overlap"][0]), float(p["iou"][0])
            nsel = sum(1 for i in g[a]["selected"][()] if i >= 0) if a in g and "selected" in g[a] else int(k)
            extra = ""
            if "d_norm" in p:
                extra = "%.3g / %.3g" % (float(np.mean(np.abs(p["d_norm"][()]))),
                                         float(np.mean(np.abs(p["d_logitvar"][()]))))
            pool = int(round((_kept(g, a) + _kept(g, b)) / 2)) if a in g and b in g else 0
            chance, crange = stats.chance_overlap(pool, nsel)
            pairs.append(dict(a=a, b=b, overlap=ov, chance=chance, chance_range=crange))
            headline.append(("Entropy-neuron overlap %s vs %s" % (a, b),
                             "%d/%d (chance %.1f [%d, %d])" % (ov, nsel, chance, crange[0], crange[1]),
                             PAPER["entropy_overlap"]))
            rows.append([a, b, "%d/%d" % (ov, nsel), "%.2f" % iou,
                         "%.1f [%d, %d] of %d kept" % (chance, crange[0], crange[1], pool), extra,
                         PAPER["entropy_overlap"]])

    if rows:
        md.append("### Overlap of the entropy-neuron sets\n")
        md.append("Chance: the overlap two random top-%s sets of the kept neurons (norm above the threshold) would "
                  "have (hypergeometric mean and 95 %% range); the sets are fixed by the weights, so there is no "
                  "sampling interval to give.\n" % k)
        md.append(md_table(["model A", "model B", "shared (A ∩ B)", "IoU", "chance", "mean abs Δnorm / ΔLogitVar",
                            "paper"], rows))
    else:
        md.append("Only one model: no overlap to compare.\n")
    md.append("### Entropy neurons per model\n")
    for role in roles:
        r = g[role]
        if "selected" not in r:
            continue
        sel = [int(i) for i in r["selected"][()] if i >= 0]
        norm, lv = r["norm"][()], r["logitvar"][()]
        rank = {int(i): j for j, i in enumerate(np.argsort(lv, kind="stable"))}
        others = [o for o in roles if o != role and "selected" in g[o]]
        trows = []
        for i in sel:
            row = [i, "%.4g" % norm[i], "%.4g" % lv[i], rank[i] + 1]
            for o in others:
                row.append("yes" if i in set(int(x) for x in g[o]["selected"][()]) else "no")
            trows.append(row)
        md.append("**%s** (norm threshold %.4g, %d neurons):\n" % (role, float(r["norm_threshold"][0]), len(norm)))
        md.append(md_table(["neuron", "norm", "LogitVar", "LogitVar rank (all)"] + ["in %s" % o for o in others],
                           trows))
    # Behaviour (beyond the study).
    brows = []
    for role in roles:
        r = g[role]
        if "entropy" not in r or "activation" not in r:
            continue
        ent, act = r["entropy"][()], r["activation"][()]
        abl = r["entropy_ablated"][()] if "entropy_ablated" in r else None
        for j, i in enumerate(int(x) for x in r["selected"][()]):
            if i < 0:
                continue
            d = ""
            if abl is not None:
                delta = abl[:, j] - ent
                v, c = stats.bootstrap_mean(delta, stats.options(opts)["boot"], stats.rng(opts, "entropy", role, i))
                d = stats.fmt(v, c if stats.options(opts)["boot"] > 0 else None, 4)
            brows.append([role, i, "%.4f" % float(np.mean(act[:, j])), "%.4f" % float(np.mean(ent)), d])
    if brows:
        n = len(g["prompts"]) if "prompts" in g else "?"
        md.append("### What the entropy neurons do (beyond the study)\n")
        md.append("Over %s prompts: mean activation (mlp_post, last token), mean next-token entropy (nats), and the "
                  "mean change of that entropy when the neuron is mean-ablated at the last token, with a 95 %% "
                  "bootstrap interval over the prompts.\n" % n)
        md.append(md_table(["model", "neuron", "mean activation", "entropy", "Δentropy (ablated) [95 % CI]"], brows))
    fig = _scatter(g, name, [r for r in roles if "norm" in g[r]], outdir) if roles else None
    md.append("![norm vs LogitVar](%s)\n" % fig if fig else "")
    figs = [fig] if fig else []
    if pairs:
        figs.append(_overlap_figure(pairs, k, name, outdir))
    return {"title": "Confidence: entropy-neuron overlap" + ("" if name == "confidence" else " (%s)" % name),
            "markdown": "\n".join(md), "figures": figs, "headline": headline}


def report_sections(h5file, outdir, opts=None):
    """Sections for analysis/report.py; h5file: open h5py.File or a path."""
    f = open_results(h5file)
    try:
        return [_section(name, g, outdir, opts) for name, g in experiment_groups(f, "confidence")]
    finally:
        if isinstance(h5file, str):
            f.close()


def main():
    run_cli(__doc__, report_sections, "confidence")


if __name__ == "__main__":
    main()
