#!/usr/bin/env python3
"""truth.py — tables and plots of the `truth` kind (docs/methods.md, Truthfulness).

    python3 analysis/truth.py RESULTS.h5 [-o OUTDIR] [--boot 1000] [--seed 0]

Prints the section of every truth experiment as Markdown and writes (OUTDIR
default: truth/ beside RESULTS.h5; <name> = the experiment's name)
OUTDIR/<name>_transfer.csv and .md (per source → target model and test
dataset: probe accuracy of the source's direction + probe on the target's
activations, clean PD of false / true statements, IE(false→true),
IE(true→false) and their average beside the study's numbers, ≈0.83, 0.90,
0.82, 0.88 for base→base, base→inst, inst→base, inst→inst on its intervention
metric; every accuracy and IE with a 95 % bootstrap interval over the test
statements, recomputed from the stored activations and probabilities),
<name>_cosine.md, <name>_ie.png (IE and probe accuracy bars with their
intervals, the paper's value as a marker beside each bar, the random control
directions as a dashed line) and <name>_pca.png (the centred test activations
of every model on their first two principal components, true vs false, with
each model's direction drawn). The first model of the experiment is taken as
the base model when the rows are matched to the paper's cells.
report_sections(h5, outdir[, opts]) gives the same as sections for
analysis/report.py; opts: boot (resamples, default 1000), seed (default 0).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mdread  # noqa: E402
import stats  # noqa: E402
from common import (PAPER, attr_str, experiment_groups, md_table, open_results, pyplot,  # noqa: E402
                    run_cli, write_csv)


def paper_cell(src, tgt, roles):
    """The study's number for source → target (base = the first role), or ''."""
    if len(roles) < 2:
        return ""
    k = lambda r: "base" if r == roles[0] else "inst"  # noqa: E731
    return PAPER["truth_transfer"].get(f"{k(src)}→{k(tgt)}", "")


def probe_correct(g, src, tgt, ds):
    """Per test statement: does source's direction + probe classify the
    target's centred activation correctly? (None when the data is absent.)"""
    if f"acts/{tgt}/{ds}" not in g or f"direction/{src}" not in g or f"probe/{src}" not in g:
        return None
    x = g[f"acts/{tgt}/{ds}"][...].astype(np.float64)
    x -= x.mean(axis=0)
    w, b = g[f"probe/{src}"][...]
    lab = g[f"labels/{ds}"][...] != 0
    return ((w * (x @ g[f"direction/{src}"][...]) + b) > 0) == lab


def ie_samples(g, ds, a_cond, b, opts, salt):
    """IE(false→true), IE(true→false), average for target b and condition
    index a_cond, each (value, ci): statements resampled within each class,
    clean and intervened runs resampled together."""
    grp = g[f"interv/{ds}"]
    lab = g[f"labels/{ds}"][...][grp["index"][...]] != 0
    pt, pf = grp["p_true"][...].astype(np.float64), grp["p_false"][...].astype(np.float64)
    clean, inter = pt[b, 0] - pf[b, 0], pt[b, a_cond] - pf[b, a_cond]
    ok = np.isfinite(clean) & np.isfinite(inter)
    o = stats.options(opts)
    gen = stats.rng(opts, "truth", salt)
    out = []
    for cls, target in ((False, 1.0), (True, -1.0)):
        rows = np.nonzero(ok & (lab == cls))[0]
        if rows.size == 0:
            out.append((np.nan, np.full(max(o["boot"], 1), np.nan)))
            continue
        ie = lambda c, i: (i - c) / (target - c)  # noqa: E731
        value = ie(clean[rows].mean(), inter[rows].mean())
        idx = rows[stats.bootstrap_indices(gen, rows.size, max(o["boot"], 1))]
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append((value, ie(clean[idx].mean(axis=1), inter[idx].mean(axis=1))))
    (v0, s0), (v1, s1) = out
    res = [(v0, stats.percentile_ci(s0)), (v1, stats.percentile_ci(s1)),
           ((v0 + v1) / 2, stats.percentile_ci((s0 + s1) / 2))]
    if o["boot"] <= 0:
        res = [(v, (np.nan, np.nan)) for v, _ in res]
    return res


def tables(g, opts=None):
    """Rows of the transfer table (one per source, target, test dataset),
    with 95 % bootstrap intervals (keys *_low, *_high)."""
    roles = mdread.axis_labels(g["accuracy"], "source")
    tests = mdread.axis_labels(g["accuracy"], "test_dataset")
    acc = g["accuracy"][...]
    have_ie = "ie" in g
    ie = g["ie"][...] if have_ie else None
    pd = g["pd"][...] if "pd" in g else None
    fa = g["fewshot_accuracy"][...] if "fewshot_accuracy" in g else None
    conds = mdread.axis_labels(g["pd"], "condition") if pd is not None else []
    o = stats.options(opts)
    rows = []
    for a, src in enumerate(roles):
        for b, tgt in enumerate(roles):
            for j, ds in enumerate(tests):
                r = dict(source=src, target=tgt, dataset=ds, probe_accuracy=float(acc[a, b, j]),
                         probe_accuracy_low=np.nan, probe_accuracy_high=np.nan)
                ok = probe_correct(g, src, tgt, ds)
                if ok is not None and o["boot"] > 0:
                    _, ci = stats.bootstrap_mean(ok, o["boot"], stats.rng(opts, "probe", src, tgt, ds))
                    r.update(probe_accuracy_low=ci[0], probe_accuracy_high=ci[1])
                if have_ie:
                    r.update(clean_pd_false=float(pd[b, j, 0, 0]), clean_pd_true=float(pd[b, j, 0, 1]),
                             fewshot_accuracy=float(fa[b, j]), ie_false_to_true=float(ie[a, b, j, 0]),
                             ie_true_to_false=float(ie[a, b, j, 1]), ie_average=float(ie[a, b, j, 2]))
                    if f"dir_{src}" in conds and f"interv/{ds}" in g:
                        boot = ie_samples(g, ds, conds.index(f"dir_{src}"), b, opts, f"{src}/{tgt}/{ds}")
                        for key, (_, ci) in zip(("ie_false_to_true", "ie_true_to_false", "ie_average"), boot):
                            r[key + "_low"], r[key + "_high"] = ci
                r["paper_ie_average"] = paper_cell(src, tgt, roles)
                rows.append(r)
    return roles, tests, rows


def cosine_ci(g, a, b, opts):
    """95 % bootstrap interval of cos(θ_a, θ_b): the train statements
    resampled within each (dataset, class), the same rows for both models,
    both directions recomputed from the stored centred activations.
    (nan, nan) when the activations are not in the file."""
    o = stats.options(opts)
    train = [d for d in attr_str(g, "train_datasets").split(",") if d]
    if o["boot"] <= 0 or not train or not all(f"acts/{m}/{d}" in g for m in (a, b) for d in train):
        return float("nan"), float("nan")
    gen = stats.rng(opts, "truth_cosine", *sorted((a, b)))
    theta = {a: 0.0, b: 0.0}
    n_class = {c: sum(int(((g[f"labels/{d}"][...] != 0) == c).sum()) for d in train) for c in (True, False)}
    for d in train:
        lab = g[f"labels/{d}"][...] != 0
        for c in (True, False):
            rows = np.nonzero(lab == c)[0]
            if rows.size == 0:
                continue
            w = stats.bootstrap_counts(gen, rows.size, o["boot"]) / n_class[c]  # [boot, rows]: share of the pooled mean
            for m in (a, b):
                x = g[f"acts/{m}/{d}"][...].astype(np.float64)
                x -= x.mean(axis=0)
                theta[m] = theta[m] + (1 if c else -1) * (w @ x[rows])
    ta, tb = theta[a], theta[b]
    cos = (ta * tb).sum(-1) / np.sqrt((ta * ta).sum(-1) * (tb * tb).sum(-1))
    return stats.percentile_ci(cos)


def ci(r, key, digits=2):
    """'0.93 [0.90, 0.95]' of a row's value and its interval."""
    return stats.fmt(r.get(key, np.nan), (r.get(key + "_low", np.nan), r.get(key + "_high", np.nan)), digits)


def ie_figure(g, roles, tests, rows, path):
    """IE (average) and probe accuracy per source → target with 95 % intervals,
    the paper's IE as a marker beside each bar, the controls as a dashed line."""
    plt = pyplot()
    sub = [r for r in rows if r["dataset"] == tests[0]]
    xs = np.arange(len(sub))
    fig, axes = plt.subplots(1, 2, figsize=(max(8.0, 1.6 * len(sub) + 3), 3.8))
    for ax, key, what in ((axes[0], "ie_average", "IE (average of both directions)"),
                          (axes[1], "probe_accuracy", "probe accuracy (transfer)")):
        vals = [r.get(key, np.nan) for r in sub]
        err = np.array([stats.errorbar(r.get(key, np.nan), (r.get(key + "_low", np.nan),
                                                            r.get(key + "_high", np.nan))) for r in sub])
        ax.bar(xs, vals, width=0.6, yerr=err.reshape(len(sub), 2).T, capsize=3, color="tab:purple",
               label="ours (95 % bootstrap)")
        if key == "ie_average":
            paper = [(x, r["paper_ie_average"]) for x, r in zip(xs, sub) if r["paper_ie_average"] != ""]
            if paper:
                ax.plot([x + 0.38 for x, _ in paper], [p for _, p in paper], "D", color="k", ms=5,
                        label="paper (Llama-3.1)")
            if "ie_control" in g:
                ct = g["ie_control"][...]
                for x, r in zip(xs, sub):
                    c = float(np.nanmean(ct[roles.index(r["target"]), 0, :, 2]))
                    ax.plot([x - 0.3, x + 0.3], [c, c], "--", color="0.3", lw=1)
                ax.plot([], [], "--", color="0.3", lw=1, label="random directions (mean)")
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{r['source']}→\n{r['target']}" for r in sub], fontsize=8)
        ax.set_ylim(min(0.0, np.nanmin(vals + [0.0]) - 0.05), 1.25)
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.set_title(f"{what}, {tests[0]}", fontsize=9)
        ax.legend(fontsize=7, loc="upper left", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


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


def write(g, name, outdir, opts=None):
    os.makedirs(outdir, exist_ok=True)
    roles, tests, rows = tables(g, opts)
    write_csv(os.path.join(outdir, f"{name}_transfer.csv"), rows)
    paper = lambda r: "" if r["paper_ie_average"] == "" else "%.2f" % r["paper_ie_average"]  # noqa: E731
    md = md_table(["source → target", "dataset", "probe accuracy", "IE average", "paper IE"],
                  [[f"{r['source']} → {r['target']}", r["dataset"], ci(r, "probe_accuracy"),
                    ci(r, "ie_average"), paper(r)] for r in rows])
    if "ie_average" in rows[0]:
        md += "\n" + md_table(["source → target", "dataset", "IE false→true", "IE true→false",
                               "clean PD false / true", "few-shot acc."],
                              [[f"{r['source']} → {r['target']}", r["dataset"], ci(r, "ie_false_to_true"),
                                ci(r, "ie_true_to_false"),
                                f"{r['clean_pd_false']:.2f} / {r['clean_pd_true']:.2f}",
                                f"{r['fewshot_accuracy']:.2f}"] for r in rows])
    cos = g["cosine"][...]
    cell = lambda i, j: "1" if i == j else stats.fmt(float(cos[i, j]), cosine_ci(g, roles[i], roles[j], opts), 3)  # noqa
    cmd = md_table([""] + roles, [[a] + [cell(i, j) for j in range(len(roles))] for i, a in enumerate(roles)])
    with open(os.path.join(outdir, f"{name}_transfer.md"), "w") as f:
        f.write(md)
    with open(os.path.join(outdir, f"{name}_cosine.md"), "w") as f:
        f.write(cmd)
    fig = os.path.join(outdir, f"{name}_pca.png")
    pca_plot(g, roles, tests, fig)
    figs = [fig]
    if "ie" in g:
        figs.insert(0, os.path.join(outdir, f"{name}_ie.png"))
        ie_figure(g, roles, tests, rows, figs[0])
    return roles, tests, rows, md, cmd, figs


def report_sections(h5file, outdir, opts=None):
    f = open_results(h5file)
    out = []
    for name, g in experiment_groups(f, "truth"):
        if "accuracy" not in g:
            continue
        roles, tests, rows, md, cmd, figs = write(g, name, outdir, opts)
        headline = []
        for r in rows:
            if r["dataset"] != tests[0] or r["paper_ie_average"] == "":
                continue
            ours = f"IE {ci(r, 'ie_average')}, probe {ci(r, 'probe_accuracy')}" if "ie_average" in r \
                else f"probe {ci(r, 'probe_accuracy')}"
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
                      "study's average IE (Llama-3.1; first model = base). Intervals: 95 %% bootstrap over the test "
                      "statements (%d resamples; IE: within each class).\n%s\n"
                      % (attr_str(g, "hook"), attr_str(g, "layer"), attr_str(g, "token"),
                         attr_str(g, "train_datasets"), attr_str(g, "intervention_layers"),
                         attr_str(g, "intervention_positions"), stats.options(opts)["boot"], note) + md +
                      "\nProbe accuracy on the pooled train sets: " +
                      ", ".join(f"{m} {tr[i]:.3f}" for i, m in enumerate(roles)) +
                      "\n\nCosine between the models' truth directions (95 % bootstrap interval over the train "
                      "statements):\n\n" + cmd + control),
            figures=[os.path.relpath(p, outdir) for p in figs], headline=headline))
    return out


def main():
    run_cli(__doc__, report_sections, "truth", "{h5}: no finished truth experiment (no accuracy dataset)")


if __name__ == "__main__":
    main()
