"""knowledge_heads.py — attention-head maps of knowledge experiments run with
`component: head` (effect_head[pair, layer, head, position]: logit(TRUE) −
logit(FALSE) of the target's FALSE run with one head's TRUE output z patched
in; docs/methods.md, Knowledge).

    python3 analysis/knowledge_heads.py OUT.h5 -o DIR

One head moves the logit difference far less than a whole residual state, so
the maps show the change it causes: Δ = effect_head − clean_false (the
target's unpatched FALSE run), averaged over the computed pairs. Per (target,
source): a heatmap layer × head of Δ at the last window position and at the
position where each head's |Δ| is largest, and a table of the cells with the
largest |Δ|. knowledge.py adds these to the report.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mdread  # noqa: E402
from common import default_outdir, pyplot  # noqa: E402

TOP = 5


def head_effects(path):
    """[(experiment, dataset, target, source, mean Δ [layer, head, position], pairs)] of every effect_head."""
    out = []
    with mdread.open_results(path) as res:
        for exp_name, kind in res.experiments().items():
            if kind != "knowledge":
                continue
            for ds_name in res.knowledge_datasets(exp_name):
                for source, target, sg in res.knowledge_groups(exp_name, ds_name):
                    if "effect_head" not in sg:
                        continue
                    e = sg["effect_head"][()] - sg["clean_false"][()][:, None, None, None]
                    done = ~np.all(np.isnan(e.reshape(e.shape[0], -1)), axis=1)
                    if done.any():
                        out.append((exp_name, ds_name, target, source, np.nanmean(e[done], axis=0),
                                    int(done.sum())))
    return out


def figure(mean, title, path):
    plt = pyplot()
    last = mean[:, :, -1]
    peak = np.take_along_axis(mean, np.abs(mean).argmax(axis=2)[:, :, None], axis=2)[:, :, 0]
    lim = float(max(np.abs(last).max(), np.abs(peak).max(), 1e-9))
    L, H = last.shape
    fig, axes = plt.subplots(1, 2, figsize=(max(7.0, 0.5 * H * 2 + 4), max(3.2, 0.3 * L + 1.8)),
                             constrained_layout=True)
    for ax, m, sub in ((axes[0], last, "last position"), (axes[1], peak, "position of largest |Δ|")):
        im = ax.imshow(m, aspect="auto", cmap="RdBu_r", origin="lower", vmin=-lim, vmax=lim)
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_xticks(range(H))
        ax.set_yticks(range(L))
        ax.set_title(sub, fontsize=9)
    fig.suptitle(title, fontsize=9)
    fig.colorbar(im, ax=list(axes), label="mean Δ logit(TRUE) − logit(FALSE)", shrink=0.9)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def analyse(path, outdir):
    """Returns ([figure paths], markdown table of the top heads)."""
    os.makedirs(outdir, exist_ok=True)
    figs, lines = [], ["| dataset | map | layer | head | position | mean Δ | pairs |", "|---|---|---|---|---|---|---|"]
    for exp_name, ds_name, target, source, mean, n in head_effects(path):
        name = target if target == source else f"{source}->{target}"
        fig = os.path.join(outdir, f"knowledge_heads_{exp_name}_{ds_name}_{source}_to_{target}.png")
        figure(mean, f"{ds_name}: {name}, one head's z patched ({n} pairs)", fig)
        figs.append(fig)
        flat = np.argsort(-np.abs(mean).reshape(-1))[:TOP]
        for i in flat:
            layer, head, pos = np.unravel_index(i, mean.shape)
            lines.append(f"| {ds_name} | {name} | {layer} | {head} | {int(pos) - mean.shape[2]} | "
                         f"{mean[layer, head, pos]:.3f} | {n} |")
    return figs, "\n".join(lines) + "\n"


def report_sections(path, outdir):
    figs, table = analyse(path, outdir)
    if not figs:
        return []
    return [{
        "title": "Knowledge: attention heads",
        "markdown": ("Patching one attention head's output z (the input of o_proj) of the TRUE run into the "
                     "FALSE run (`component: head`): the change Δ of logit(TRUE) − logit(FALSE) against the "
                     "unpatched FALSE run, mean over pairs, layer × head, at the last window position and at "
                     "each head's strongest position; the %d strongest cells per map (position counted from "
                     "the end):\n\n" % TOP + table),
        "figures": [os.path.relpath(p, outdir) for p in figs],
    }]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("h5", metavar="OUT.h5", help="a mechdiff results file")
    ap.add_argument("-o", "--outdir", help="folder for the head maps (default: knowledge/ beside OUT.h5)")
    a = ap.parse_args()
    outdir = a.outdir or default_outdir(a.h5, "knowledge")
    figs, table = analyse(a.h5, outdir)
    if not figs:
        print(f"{a.h5}: no effect_head results found", file=sys.stderr)
        return 1
    print(table)
    print(f"wrote {len(figs)} head maps to {outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
