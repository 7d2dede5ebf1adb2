"""report.py — one report of every finding present in a results file.

    python3 analysis/report.py OUT.h5 -o report/ [--boot 1000] [--seed 0]

Writes report/report.md and report/report.html, their figures beside them
and under report/figures/ (-o default: report/ in the current folder).
Each finding comes from its module's report_sections(h5file, outdir) (see
common.py for the contract): knowledge.py (patching maps and correlations,
cross-model patching), truth.py (truth transfer and IE), refusal.py (refusal
scores), confidence.py (entropy-neuron overlap). A module that is missing,
that finds nothing in the file, or that fails is skipped with a note under its
heading: every finding has a heading (one section per experiment with
results, a "Skipped" note under the finding's heading without). Published numbers
(docs/methods.md) sit beside ours, in the tables and as markers in the
figures; the "at a glance" table collects them. Every correlation, accuracy,
IE and rate carries a 95 % interval (bootstrap over pairs / statements /
prompts with --boot resamples and --seed, Wilson for refusal rates; see
docs/methods.md#uncertainty), shown as `0.93 [0.90, 0.95]` and as error bars.
The modules read the file through mdread.py.
"""
import argparse
import importlib
import os
import sys
import traceback

import h5py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stats  # noqa: E402
from common import PAPER, add_resampling_args, markdown_to_html, md_table  # noqa: E402

# (module, heading used when the module gives nothing, what it covers, paper)
FINDINGS = [
    ("knowledge", "Knowledge: patching maps and correlations", "knowledge maps and their correlations",
     PAPER["knowledge_corr"]),
    ("knowledge", "Knowledge: cross-model patching", "cross-model patching (base→instruct, instruct→base)",
     PAPER["knowledge_corr"]),
    ("truth", "Truthfulness: truth-direction transfer and IE", "truth-direction transfer and intervention effect",
     ", ".join("%s %.2f" % kv for kv in PAPER["truth_transfer"].items())),
    ("refusal", "Refusal: refusal scores", "refusal scores with ablation and activation addition",
     "harmful: instruct %.2f → %.2f ablated; cos(base, instruct) ≈ %.2f" % (
         PAPER["refusal_harmful"]["instruct"], PAPER["refusal_harmful"]["instruct, instruct dir. ablated"],
         PAPER["refusal_cos"])),
    ("confidence", "Confidence: entropy-neuron overlap", "entropy neurons and their overlap",
     PAPER["entropy_overlap"]),
]


def collect(h5, outdir, opts=None):
    """Returns (sections, notes) in FINDINGS order; one call per module."""
    results, notes = {}, []
    for mod in dict.fromkeys(m for m, _, _, _ in FINDINGS):
        try:
            m = importlib.import_module(mod)
        except ImportError as e:
            results[mod] = (None, "analysis/%s.py is not available (%s)" % (mod, e))
            continue
        if not hasattr(m, "report_sections"):
            results[mod] = (None, "analysis/%s.py has no report_sections yet" % mod)
            continue
        try:
            results[mod] = (m.report_sections(h5, outdir, opts) or [], None)
        except Exception as e:  # a broken section must not sink the report
            traceback.print_exc()
            results[mod] = (None, "analysis/%s.py failed: %s: %s (`mechdiff verify %s` checks the file)"
                            % (mod, type(e).__name__, e, h5.filename))
    out, used = [], set()
    for mod, heading, what, paper in FINDINGS:
        secs, err = results[mod]
        if err:
            notes.append(err)
        if mod in used:
            continue
        if secs:
            out.extend(secs)
            used.add(mod)
            continue
        why = err or "no %s in this file" % what
        # One placeholder per expected heading of a module that gave nothing.
        out.append({"title": heading, "markdown": "*Skipped: %s.* Paper: %s.\n" % (why, paper), "figures": [],
                    "skipped": True})
    return out, notes


def build(h5path, outdir, opts=None):
    os.makedirs(outdir, exist_ok=True)
    opts = stats.options(opts)
    with h5py.File(h5path, "r") as h5:
        sections, notes = collect(h5, outdir, opts)
        prov = {}
        if "provenance" in h5:
            prov = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in h5["provenance"].attrs.items()}
    md = ["# mechdiff report", "",
          "Results file: `%s`. Reproduction of Du et al. 2025 (arXiv 2504.02904); published numbers from "
          "docs/methods.md are shown beside ours. Intervals are 95 %%: bootstrap over pairs, statements or prompts "
          "(%d resamples, seed %d) and Wilson intervals for refusal rates (docs/methods.md#uncertainty)."
          % (os.path.abspath(h5path), opts["boot"], opts["seed"]), ""]
    for k in ("git_revision", "job_name", "created"):
        if k in prov:
            md.append("- %s: `%s`" % (k, prov[k]))
    head = [r for s in sections for r in s.get("headline", [])]
    md += ["", "## At a glance", ""]
    if head:
        md.append(md_table(["finding", "ours", "paper"], [list(map(str, r)) for r in head]))
    else:
        md.append("No headline numbers in this file.\n")
    present = [s["title"] for s in sections if not s.get("skipped")]
    skipped = [s["title"] for s in sections if s.get("skipped")]
    md.append("Sections with results: %s. Skipped: %s.\n" % (", ".join(present) or "none", ", ".join(skipped) or "none"))
    for s in sections:
        md += ["## " + s["title"], "", s["markdown"].rstrip(), ""]
        for fig in s.get("figures", []):
            if "(%s)" % fig not in s["markdown"]:
                md += ["![%s](%s)" % (os.path.basename(fig), fig), ""]
    if notes:
        md += ["## Notes", ""] + ["- " + n for n in notes] + [""]
    text = "\n".join(md)
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write(text)
    with open(os.path.join(outdir, "report.html"), "w") as f:
        f.write(markdown_to_html(text, "mechdiff report"))
    return sections


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("h5", metavar="OUT.h5", help="a mechdiff results file")
    ap.add_argument("-o", "--outdir", default="report", help="folder of the report (default: report)")
    add_resampling_args(ap)
    a = ap.parse_args()
    try:  # a truncated or half-copied file: one line, not h5py's traceback
        h5py.File(a.h5, "r").close()
    except OSError as e:
        sys.exit("report.py: %s: not a readable HDF5 file (%s): truncated or not a results file; "
                 "restore it from a copy or rerun the job (`mechdiff verify FILE` checks a results file)" % (a.h5, e))
    secs = build(a.h5, a.outdir, {"boot": a.boot, "seed": a.seed})
    print("wrote %s and report.html: %d sections (%d skipped)"
          % (os.path.join(a.outdir, "report.md"), len(secs), sum(1 for s in secs if s.get("skipped"))))


if __name__ == "__main__":
    main()
