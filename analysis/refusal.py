#!/usr/bin/env python3
"""refusal.py — tables and plots of the `refusal` kind (docs/methods.md, Refusal).

    python3 analysis/refusal.py RESULTS.h5 [-o OUTDIR] [--boot 1000] [--seed 0]

Prints the section of every refusal experiment as Markdown and writes (OUTDIR
default: refusal/ beside RESULTS.h5; <name> = the experiment's name)
OUTDIR/<name>_scores.csv and .md (refusal score per target model x
intervention x set with its 95 % Wilson interval over the n test prompts,
beside the study's Llama-3.1 numbers where they exist), <name>_cosine.md,
and <name>_scores.png (bars with the Wilson intervals as error bars and the
paper's value as a marker beside each bar). A sweep (`sweep: true` or
`kind: refusal_sweep`) is printed as a table of the refusal rate per
candidate layer and position, with the lowest per model; it writes no file.
report_sections(h5, outdir) gives the same as sections for analysis/report.py.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mdread  # noqa: E402
import stats  # noqa: E402
from common import PAPER, experiment_groups, md_table, open_results, pyplot, run_cli, write_csv  # noqa: E402


def _s(x):
    return x.decode() if isinstance(x, bytes) else str(x)


def paper_value(target, interv, setname, roles):
    """The study's number for this cell (Llama-3.1 base vs Instruct), or ''."""
    base = roles[0]
    kind = "base" if target == base else "instruct"
    src = None
    if interv.startswith(("ablate_", "add_")):
        src = "base" if interv.split("_", 1)[1] == base else "instruct"
    if setname == "harmful":
        key = {None: kind}.get(src, f"{kind}, {src} dir. ablated") if not interv.startswith("add_") else None
        return PAPER["refusal_harmful"].get(key, "") if key else ""
    if interv == "none":
        return PAPER["refusal_harmless"].get(kind, "")
    if interv.startswith("add_"):
        return PAPER["refusal_harmless"].get(f"{kind} + {src} dir.", "")
    return ""


def counts(g, setname, target, iv):
    """(refusals, generations) of one cell from gen/<set>/<target>/<iv>/refused (None when absent)."""
    path = f"gen/{setname}/{target}/{iv}/refused"
    if path not in g:
        return None
    r = g[path][...]
    r = r[r >= 0]
    return int((r == 1).sum()), int(r.size)


def tables(g):
    sc = g["refusal_score"]
    roles = mdread.axis_labels(sc, "target")
    ivs = mdread.axis_labels(sc, "intervention")
    sets = mdread.axis_labels(sc, "set")
    s = sc[...]
    rows = []
    for t, target in enumerate(roles):
        for i, iv in enumerate(ivs):
            for k, setname in enumerate(sets):
                if np.isnan(s[t, i, k]):
                    continue
                kn = counts(g, setname, target, iv)
                ci = stats.wilson(*kn) if kn else (float("nan"), float("nan"))
                rows.append(dict(target=target, intervention=iv, set=setname, score=float(s[t, i, k]),
                                 low=ci[0], high=ci[1], n=kn[1] if kn else "",
                                 paper=paper_value(target, iv, setname, roles)))
    return roles, rows, g["cosine"][...]


def write(g, name, outdir, opts=None):
    os.makedirs(outdir, exist_ok=True)
    roles, rows, cos = tables(g)
    write_csv(os.path.join(outdir, f"{name}_scores.csv"), rows)
    md = md_table(["target", "intervention", "set", "n", "refusal score [95 % Wilson]", "paper (Llama-3.1)"],
                  [[r["target"], r["intervention"], r["set"], r["n"], stats.fmt(r["score"], (r["low"], r["high"])),
                    "" if r["paper"] == "" else "%.2f" % r["paper"]] for r in rows])
    cmd = "| | " + " | ".join(roles) + " |\n|" + "---|" * (len(roles) + 1) + "\n"
    cell = lambda i, j: "1" if i == j else stats.fmt(float(cos[i, j]), cosine_ci(g, roles[i], roles[j], opts))  # noqa
    cmd += "".join(f"| {a} | " + " | ".join(cell(i, j) for j in range(len(roles))) + " |\n"
                   for i, a in enumerate(roles))
    with open(os.path.join(outdir, f"{name}_scores.md"), "w") as f:
        f.write(md)
    with open(os.path.join(outdir, f"{name}_cosine.md"), "w") as f:
        f.write(cmd)
    fig = os.path.join(outdir, f"{name}_scores.png")
    plt = pyplot()
    fig_, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, setname in zip(axes, ("harmful", "harmless")):
        sub = [r for r in rows if r["set"] == setname]
        xs = np.arange(len(sub))
        err = np.array([stats.errorbar(r["score"], (r["low"], r["high"])) for r in sub]).reshape(len(sub), 2).T \
            if sub else None
        ax.bar(xs, [r["score"] for r in sub], width=0.6, yerr=err, capsize=3,
               color="tab:red" if setname == "harmful" else "tab:blue", label="ours (95 % Wilson)")
        paper = [(x, r["paper"]) for x, r in zip(xs, sub) if r["paper"] != ""]
        if paper:
            ax.plot([x + 0.38 for x, _ in paper], [float(p) for _, p in paper], "D", color="k", ms=5,
                    label="paper (Llama-3.1)")
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{r['target']}\n{r['intervention']}" for r in sub], rotation=60, fontsize=7)
        ax.set_ylim(0, 1.25)
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.set_title(f"{setname} test prompts")
        ax.set_ylabel("refusal score")
        ax.legend(fontsize=7, loc="upper left", ncol=2)
    fig_.tight_layout()
    fig_.savefig(fig, dpi=120)
    plt.close(fig_)
    return md, cmd, fig, roles, cos


def sweep_markdown(g):
    """The refusal_sweep kind's score [model, layer, position] as one table
    per model (refusal rate with the candidate direction ablated; lower =
    the direction matters more) and the best candidate it reported."""
    sc = g["score"]
    models = _s(sc.attrs["models"]).split(",")
    layers = _s(sc.attrs["layers"]).split(",")
    positions = _s(sc.attrs["positions"]).split(",")
    s = sc[...]
    md = []
    for m, model in enumerate(models):
        rows = [[f"layer {l}"] + ["" if np.isnan(s[m, i, j]) else f"{s[m, i, j]:.2f}" for j in range(len(positions))]
                for i, l in enumerate(layers)]
        md.append(f"**{model}** (best: {_s(sc.attrs.get('best_' + model, '?'))})\n\n" +
                  md_table([""] + [f"position {p}" for p in positions], rows))
    return "\n".join(md)


def cosine_ci(g, a, b, opts):
    """cos(r_a, r_b) of two models' refusal directions and its 95 % bootstrap
    interval: the train instructions (the same for both models) resampled
    within each set, both mean differences recomputed from the stored
    activations. (nan, nan) when the activations are not in the file."""
    o = stats.options(opts)
    paths = [f"acts/{m}/{s}" for m in (a, b) for s in ("harmful", "harmless")]
    if o["boot"] <= 0 or not all(p in g for p in paths):
        return float("nan"), float("nan")
    xa_h, xa_l, xb_h, xb_l = (g[p][...].astype(np.float64) for p in paths)
    gen = stats.rng(opts, "refusal_cosine", *sorted((a, b)))
    wh = stats.bootstrap_counts(gen, len(xa_h), o["boot"]) / len(xa_h)
    wl = stats.bootstrap_counts(gen, len(xa_l), o["boot"]) / len(xa_l)
    ra = wh @ xa_h - wl @ xa_l  # [boot, hidden]
    rb = wh @ xb_h - wl @ xb_l
    cos = (ra * rb).sum(-1) / np.sqrt((ra * ra).sum(-1) * (rb * rb).sum(-1))
    return stats.percentile_ci(cos)


def precision_note(rows):
    """What the sample size allows: the half-width of a rate near 0.5 and near the extremes."""
    ns = sorted({r["n"] for r in rows if r["n"] != ""})
    if not ns:
        return ""
    n = ns[0]
    mid = stats.wilson(n // 2, n)
    return ("with n = %s prompts a rate near 0.5 is known to ±%.2f and one near 0.9 to ±%.2f, so smaller "
            "differences between these rates are not findings." % (
                "/".join(map(str, ns)), (mid[1] - mid[0]) / 2,
                (lambda c: (c[1] - c[0]) / 2)(stats.wilson(round(0.9 * n), n))))


def report_sections(h5file, outdir, opts=None):
    f = open_results(h5file)
    out = []
    # the sweep: kind refusal_sweep, or kind refusal with sweep: true (its alias)
    for name, g in experiment_groups(f, "refusal_sweep") + experiment_groups(f, "refusal"):
        if "score" not in g:
            continue
        out.append(dict(title=f"Refusal: direction layer/position sweep ({name})",
                        markdown=("Harmful refusal rate with the direction of each candidate (layer, position) "
                                  "ablated at every layer, as Arditi et al. pick the direction; the lowest is "
                                  "reported, not used (empty: no direction there).\n\n" + sweep_markdown(g)),
                        figures=[]))
    for name, g in experiment_groups(f, "refusal"):
        if "refusal_score" not in g:
            continue
        md, cmd, fig, roles, cos = write(g, name, outdir, opts)
        headline = []
        if len(roles) >= 2:
            headline.append(("refusal direction cosine base vs post-trained",
                             stats.fmt(float(cos[0, 1]), cosine_ci(g, roles[0], roles[1], opts)),
                             "%.2f" % PAPER["refusal_cos"]))
            # the study's refusal finding: harmful refusal of the post-trained
            # model, plain / its own direction ablated / the base's ablated
            _, rows, _ = tables(g)
            post, base = roles[-1], roles[0]
            cell = {(r["target"], r["intervention"], r["set"]): r for r in rows}
            for iv, what in (("none", "no intervention"), (f"ablate_{post}", "its own direction ablated"),
                             (f"ablate_{base}", "the base direction ablated")):
                if (post, iv, "harmful") in cell:
                    r = cell[(post, iv, "harmful")]
                    headline.append((f"harmful refusal of {post}, {what} (n={r['n']})",
                                     stats.fmt(r["score"], (r["low"], r["high"])),
                                     "" if r["paper"] == "" else "%.2f" % r["paper"]))
        out.append(dict(title=f"Refusal: direction ablation and addition ({name})",
                        markdown=("Refusal score = fraction of greedy completions (test split) starting with a "
                                  "refusal prefix, with its 95 %% Wilson interval over the n test prompts: %s "
                                  "Paper column: Llama-3.1-8B vs Instruct.\n\n" % precision_note(rows) + md +
                                  "\nCosine between the models' refusal directions with a 95 % bootstrap interval "
                                  "over the train instructions (paper ≈ "
                                  f"{PAPER['refusal_cos']}):\n\n" + cmd),
                        figures=[os.path.relpath(fig, outdir)], headline=headline))
    return out


def main():
    run_cli(__doc__, report_sections, "refusal",
            "{h5}: no finished refusal experiment (no refusal_score dataset)")


if __name__ == "__main__":
    main()
