#!/usr/bin/env python3
"""truth.py — tables and plots of the `truth` kind (docs/methods.md, Truthfulness).

    python3 analysis/truth.py RESULTS.h5 [-o OUTDIR]

Writes OUTDIR/<name>_transfer.csv and .md (per source → target model and test
dataset: probe accuracy of the source's direction + probe on the target's
activations, clean PD of false / true statements, IE(false→true),
IE(true→false) and their average beside the study's numbers, ≈0.83, 0.90,
0.82, 0.88 for base→base, base→inst, inst→base, inst→inst on its intervention
metric), <name>_cosine.md, and <name>_pca.png (the centred test activations
of every model on their first two principal components, true vs false, with
each model's direction drawn). The first model of the experiment is taken as
the base model when the rows are matched to the paper's cells.
report_sections(h5, outdir) gives the same as sections for analysis/report.py.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (PAPER, attr_str, experiment_groups, md_table, open_results, pyplot,  # noqa: E402
                    run_cli, write_csv)


def _split(s):
    return [x for x in s.split(",") if x]


def paper_cell(src, tgt, roles):
    """The study's number for source → target (base = the first role), or ''."""
    if len(roles) < 2:
        return ""
    k = lambda r: "base" if r == roles[0] else "inst"  # noqa: E731
    return PAPER["truth_transfer"].get(f"{k(src)}→{k(tgt)}", "")


def tables(g):
    """Rows of the transfer table (one per source, target, test dataset)."""
    roles = _split(attr_str(g, "models"))
    tests = _split(attr_str(g, "test_datasets"))
    acc = g["accuracy"][...]
    have_ie = "ie" in g
    ie = g["ie"][...] if have_ie else None
    pd = g["pd"][...] if "pd" in g else None
    fa = g["fewshot_accuracy"][...] if "fewshot_accuracy" in g else None
    rows = []
    for a, src in enumerate(roles):
        for b, tgt in enumerate(roles):
            for j, ds in enumerate(tests):
                r = dict(source=src, target=tgt, dataset=ds, probe_accuracy=float(acc[a, b, j]))
                if have_ie:
                    r.update(clean_pd_false=float(pd[b, j, 0, 0]), clean_pd_true=float(pd[b, j, 0, 1]),
                             fewshot_accuracy=float(fa[b, j]), ie_false_to_true=float(ie[a, b, j, 0]),
                             ie_true_to_false=float(ie[a, b, j, 1]), ie_average=float(ie[a, b, j, 2]))
                r["paper_ie_average"] = paper_cell(src, tgt, roles)
                rows.append(r)
    return roles, tests, rows


def _f(x):
    return "" if x == "" else f"{x:.3f}" if isinstance(x, float) else str(x)


def pca_plot(g, roles, tests, path):
    plt = pyplot()
    ds = tests[0]
    lab = g[f"labels/{ds}"][...]
    fig, axes = plt.subplots(1, len(roles), figsize=(4.5 * len(roles), 4), squeeze=False)
    for ax, m in zip(axes[0], roles):
        x = g[f"acts/{m}/{ds}"][...].astype(np.float64)
        x -= x.mean(0)
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        pc = vt[:2]
        y = x @ pc.T
        ax.scatter(y[lab == 1, 0], y[lab == 1, 1], s=6, c="tab:blue", label="true", alpha=0.6)
        ax.scatter(y[lab == 0, 0], y[lab == 0, 1], s=6, c="tab:red", label="false", alpha=0.6)
        if f"direction/{m}" in g:
            th = g[f"direction/{m}"][...]
            u = pc @ th  # the direction in the PC plane (full length of mean(true) - mean(false))
            c0 = y.mean(0)
            ax.annotate("", xy=(c0[0] + u[0] / 2, c0[1] + u[1] / 2), xytext=(c0[0] - u[0] / 2, c0[1] - u[1] / 2),
                        arrowprops=dict(arrowstyle="->", color="k", lw=1.5))
            for b, tgt in enumerate(roles):
                if tgt != m and f"direction/{tgt}" in g:
                    u2 = pc @ g[f"direction/{tgt}"][...]
                    ax.annotate("", xy=(c0[0] + u2[0] / 2, c0[1] + u2[1] / 2),
                                xytext=(c0[0] - u2[0] / 2, c0[1] - u2[1] / 2),
                                arrowprops=dict(arrowstyle="->", color="gray", lw=1, ls="--"))
        ax.set_title(f"{m}: {ds} (layer {attr_str(g, 'layer')})")
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
        ax.legend(fontsize=7, loc="best")
    fig.suptitle("centred activations, true vs false; arrow = own direction (dashed: the other models')", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write(g, name, outdir):
    os.makedirs(outdir, exist_ok=True)
    roles, tests, rows = tables(g)
    write_csv(os.path.join(outdir, f"{name}_transfer.csv"), rows)
    keys = list(rows[0].keys())
    md = md_table(keys, [[_f(r[k]) for k in keys] for r in rows])
    cos = g["cosine"][...]
    cmd = md_table([""] + roles, [[a] + [f"{cos[i, j]:.3f}" for j in range(len(roles))] for i, a in enumerate(roles)])
    with open(os.path.join(outdir, f"{name}_transfer.md"), "w") as f:
        f.write(md)
    with open(os.path.join(outdir, f"{name}_cosine.md"), "w") as f:
        f.write(cmd)
    fig = os.path.join(outdir, f"{name}_pca.png")
    pca_plot(g, roles, tests, fig)
    return roles, tests, rows, md, cmd, fig


def report_sections(h5file, outdir):
    f = open_results(h5file)
    out = []
    for name, g in experiment_groups(f, "truth"):
        if "accuracy" not in g:
            continue
        roles, tests, rows, md, cmd, fig = write(g, name, outdir)
        headline = []
        for r in rows:
            if r["dataset"] != tests[0] or r["paper_ie_average"] == "":
                continue
            ours = f"IE {r['ie_average']:.2f}, probe {r['probe_accuracy']:.2f}" if "ie_average" in r \
                else f"probe {r['probe_accuracy']:.2f}"
            where = tests[0] if name == "truth" else f"{tests[0]}, {name}"
            headline.append((f"truth direction {r['source']}→{r['target']} ({where})", ours,
                             f"IE {r['paper_ie_average']:.2f}"))
        tr = g["train_accuracy"][...]
        note = "" if "ie" in g else "\n**The intervention stage has not finished: IE columns are missing.**\n"
        control = ""
        if "ie_control" in g:  # random directions of the target's direction norm (truth kind: control_directions)
            ct = g["ie_control"][...]
            control = ("\n\nRandom control directions (%d, each scaled to the target model's own direction norm), "
                       "IE false→true / true→false / average, mean over the controls:\n\n"
                       "| target | dataset | false→true | true→false | average |\n|---|---|---|---|---|\n"
                       % ct.shape[2] +
                       "".join(f"| {m} | {ds} | {ct[b, j, :, 0].mean():.3f} | {ct[b, j, :, 1].mean():.3f} | "
                               f"{ct[b, j, :, 2].mean():.3f} |\n"
                               for b, m in enumerate(roles) for j, ds in enumerate(tests)) +
                       "\nAn IE the controls match is not evidence that the model uses the truth direction.\n")
        out.append(dict(
            title=f"Truthfulness: truth-direction transfer and IE ({name})",
            markdown=("Direction = mean(true) − mean(false) of per-dataset centred activations (hook %s, layer %s, "
                      "token %s) trained on %s; probe = 1-D logistic regression on x·θ. probe_accuracy = the source "
                      "model's direction + probe applied to the target model's activations. IE = effect of adding "
                      "(false→true) / subtracting (true→false) the source direction at layers %s, statement "
                      "positions %s, in the target's few-shot prompt (PD = P(TRUE) − P(FALSE)). Paper column: the "
                      "study's average IE (Llama-3.1; first model = base).\n%s\n"
                      % (attr_str(g, "hook"), attr_str(g, "layer"), attr_str(g, "token"),
                         attr_str(g, "train_datasets"), attr_str(g, "intervention_layers"),
                         attr_str(g, "intervention_positions"), note) + md +
                      "\nProbe accuracy on the pooled train sets: " +
                      ", ".join(f"{m} {tr[i]:.3f}" for i, m in enumerate(roles)) +
                      "\n\nCosine between the models' truth directions:\n\n" + cmd + control),
            figures=[os.path.relpath(fig, outdir)], headline=headline))
    return out


def main():
    run_cli(__doc__, report_sections, "truth_out", "{h5}: no finished truth experiment (no accuracy dataset)")


if __name__ == "__main__":
    main()
