"""common.py — shared helpers of the analysis scripts: the study's published
numbers (docs/methods.md), finding experiment groups in a results file, and a
small Markdown -> HTML converter (headings, paragraphs, lists, pipe tables,
images, `code`, **bold**) so the report needs no extra package.

The report contract (analysis/report.py): a module exposes
    report_sections(h5file, outdir, opts=None) -> list of dict(title=str,
        markdown=str, figures=[png paths relative to outdir], headline=[optional rows])
where h5file is an open, read-only h5py.File, figures are written under
outdir and opts holds the resampling options (boot, seed; stats.options). `headline` rows are (finding, ours, paper) strings collected into the
report's "at a glance" table. run_cli is the command line of a kind's script
(RESULTS.h5 [-o OUTDIR], the sections printed as Markdown; OUTDIR defaults
to a folder beside RESULTS.h5 named after the kind).
"""
import argparse
import csv
import html
import os
import re
import sys

# Published numbers (Du et al. 2025 via docs/methods.md); text as a reader sees it.
PAPER = {
    "knowledge_corr": "0.98–0.99 (Pearson, normalised maps, base vs post-trained)",
    "truth_transfer": {"base→base": 0.83, "base→inst": 0.90, "inst→base": 0.82, "inst→inst": 0.88},
    "refusal_harmful": {"base": 0.21, "base, base dir. ablated": 0.17, "instruct": 0.98,
                        "instruct, instruct dir. ablated": 0.01, "instruct, base dir. ablated": 0.95},
    "refusal_harmless": {"base": 0.01, "base + base dir.": 0.59, "instruct": 0.00,
                         "instruct + instruct dir.": 1.00, "instruct + base dir.": 0.08},
    "refusal_cos": 0.25,
    "entropy_overlap": "8–10 of 10 (Llama-3.1: 8/10)",
}


def experiment_groups(h5, kind):
    """Top-level groups of the file whose attribute kind == `kind` (mdread.py knows the layout)."""
    import mdread
    return mdread.experiment_groups(h5, kind)


def open_results(h5file):
    """An h5py.File opened read-only from a path, or h5file itself when it is already open."""
    import h5py
    return h5py.File(h5file, "r") if isinstance(h5file, str) else h5file


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (imported on first use)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def write_csv(path, rows):
    """rows (dicts with the same keys, at least one) as a CSV file with a header."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)


def add_resampling_args(ap):
    """--boot and --seed: the bootstrap of the report's intervals (docs/methods.md#uncertainty)."""
    ap.add_argument("--boot", type=int, default=1000, help="bootstrap resamples per interval (0 = none; default 1000)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")


def default_outdir(h5path, name):
    """Where a script writes without -o: the folder `name` beside the results file."""
    return os.path.join(os.path.dirname(os.path.abspath(h5path)), name)


def run_cli(doc, report_sections, name, missing=None):
    """The command line of a kind's script: RESULTS.h5 [-o OUTDIR] [--boot N]
    [--seed S] (OUTDIR default: default_outdir(RESULTS.h5, name)); prints every
    section of report_sections(h5, outdir, opts) as Markdown. With `missing`
    (a message with {h5}), no section at all is an error exit with that
    message."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("h5", metavar="RESULTS.h5", help="a mechdiff results file")
    ap.add_argument("-o", "--outdir", help="folder for the tables and figures (default: %s/ beside RESULTS.h5)" % name)
    add_resampling_args(ap)
    a = ap.parse_args()
    outdir = a.outdir or default_outdir(a.h5, name)
    secs = report_sections(a.h5, outdir, {"boot": a.boot, "seed": a.seed})
    if not secs and missing:
        sys.exit(missing.format(h5=a.h5))
    for s in secs:
        print("## " + s["title"] + "\n\n" + s["markdown"])


def attr_str(obj, name, default=""):
    v = obj.attrs.get(name, default)
    return v.decode() if isinstance(v, bytes) else str(v)


def md_table(header, rows):
    """A Markdown pipe table."""
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _inline(text):
    t = html.escape(text, quote=False)
    t = re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", r'<img alt="\1" src="\2">', t)
    t = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', t)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    t = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", t)
    return t


def markdown_to_html(md, title="report"):
    """Converts the subset of Markdown the report writes into one HTML page."""
    out, para, lines, i = [], [], md.splitlines(), 0

    def flush():
        if para:
            out.append("<p>" + _inline(" ".join(para)) + "</p>")
            para.clear()

    while i < len(lines):
        line = lines[i]
        m = re.match(r"^(#{1,6})\s+(.*)$", line)
        if m:
            flush()
            n = len(m.group(1))
            out.append("<h%d>%s</h%d>" % (n, _inline(m.group(2)), n))
        elif line.startswith("|"):
            flush()
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            i -= 1
            out.append("<table>")
            for j, r in enumerate(rows):
                if j == 1 and all(re.fullmatch(r":?-+:?", c or "-") for c in r):
                    continue
                tag = "th" if j == 0 else "td"
                out.append("<tr>" + "".join("<%s>%s</%s>" % (tag, _inline(c), tag) for c in r) + "</tr>")
            out.append("</table>")
        elif re.match(r"^\s*[-*]\s+", line):
            flush()
            out.append("<ul>")
            while i < len(lines) and re.match(r"^\s*[-*]\s+", lines[i]):
                out.append("<li>" + _inline(re.sub(r"^\s*[-*]\s+", "", lines[i])) + "</li>")
                i += 1
            i -= 1
            out.append("</ul>")
        elif not line.strip():
            flush()
        else:
            para.append(line.strip())
        i += 1
    flush()
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
             "table{border-collapse:collapse;margin:0.5em 0;max-width:100%;font-size:90%}"
             "td,th{border:1px solid #bbb;padding:2px 6px;text-align:right}th{background:#eee}img{max-width:100%}code{background:#f4f4f4}")
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s</title><style>%s</style></head>"
            "<body>\n%s\n</body></html>\n" % (html.escape(title), style, "\n".join(out)))
