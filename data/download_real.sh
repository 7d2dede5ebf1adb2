#!/bin/sh
# Fetch the study's real datasets (optional; never used by tests).
#   sh data/download_real.sh [DEST]      (default DEST: data/real)
# Sources: geometry-of-truth (Marks & Tegmark) statement,label CSVs,
# AdvBench harmful_behaviors.csv, Alpaca (tatsu-lab) alpaca_data.json.
set -eu
DEST=${1:-$(dirname "$0")/real}
mkdir -p "$DEST"
GOT=https://raw.githubusercontent.com/saprmarks/geometry-of-truth/main/datasets
for f in cities neg_cities sp_en_trans neg_sp_en_trans larger_than smaller_than \
         animal_class neg_animal_class element_symb neg_element_symb inventors \
         neg_inventors facts neg_facts; do
  curl -fsSL "$GOT/$f.csv" -o "$DEST/$f.csv"
done
curl -fsSL https://raw.githubusercontent.com/llm-attacks/llm-attacks/main/data/advbench/harmful_behaviors.csv \
  -o "$DEST/harmful_behaviors.csv"
curl -fsSL https://raw.githubusercontent.com/tatsu-lab/stanford_alpaca/main/alpaca_data.json \
  -o "$DEST/alpaca_data.json"
# Convert to mechdiff's `instruction` CSVs: harmful = AdvBench goals,
# harmless = Alpaca rows with an empty input field.
python3 - "$DEST" <<'PY'
import csv, json, sys, os
d = sys.argv[1]
with open(os.path.join(d, "harmful_behaviors.csv")) as f:
    goals = [r["goal"] for r in csv.DictReader(f)]
with open(os.path.join(d, "harmful.csv"), "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n"); w.writerow(["instruction"])
    for g in goals: w.writerow([g])
rows = [r["instruction"] for r in json.load(open(os.path.join(d, "alpaca_data.json")))
        if not r.get("input", "").strip()]
with open(os.path.join(d, "harmless.csv"), "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n"); w.writerow(["instruction"])
    for g in rows: w.writerow([g])
print("wrote", len(goals), "harmful and", len(rows), "harmless instructions to", d)
PY
