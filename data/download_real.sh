#!/bin/sh
# Fetch the study's real datasets into DEST (default data/real), the files the
# example jobs jobs/*_llama31.yaml, jobs/*_mistral7b.yaml and
# jobs/knowledge_*.yaml read. Never used by the tests' results (tests run it
# with --from on files of the same headers, tests/e2e/jobs_validate.sh).
#
#   sh data/download_real.sh [DEST]
#   sh data/download_real.sh [DEST] --from DIR   # copy the raw files from DIR
#                                                 # (same names) instead of curl
#
# What it writes (every file a CSV with a header):
#   geometry-of-truth (Marks & Tegmark), header statement,label[,...]:
#     cities, neg_cities (+ city,country,correct_country), sp_en_trans,
#     neg_sp_en_trans, larger_than, smaller_than (+ n1,n2,diff,abs_diff)
#   Truth is Universal (Bürger et al.; the study's other truth datasets),
#   header statement,label: animal_class, element_symb, inventors, facts and
#     their neg_ versions
#   harmful.csv  (column `instruction`): AdvBench harmful_behaviors.csv's
#     `goal` column (520 rows); the raw file is kept as harmful_behaviors.csv
#   harmless.csv (column `instruction`): the Alpaca rows (alpaca_data.json)
#     with an empty `input` field
# The jobs read `statement,label` and the `instruction` column (refusal:
# `column: instruction`); extra columns are ignored.
# Sources are pinned to commits so that a rerun gives the same files.
set -eu
DEST=$(dirname "$0")/real
FROM=""
while [ $# -gt 0 ]; do
    case "$1" in
        --from) FROM=${2:?--from needs a folder}; shift 2 ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) DEST=$1; shift ;;
    esac
done
mkdir -p "$DEST"
GOT=https://raw.githubusercontent.com/saprmarks/geometry-of-truth/5d1c630c44f7e50bda7ad86d601ccadf9abc5ddb/datasets
TIU=https://raw.githubusercontent.com/sciai-lab/Truth_is_Universal/605ef00514415deb4806969a172f6e13e0798df7/datasets
ADV=https://raw.githubusercontent.com/llm-attacks/llm-attacks/main/data/advbench
ALP=https://raw.githubusercontent.com/tatsu-lab/stanford_alpaca/main

# get URL FILE: download (or copy from --from) into DEST/FILE.
get() {
    if [ -n "$FROM" ]; then
        cp "$FROM/$2" "$DEST/$2" || { echo "download_real.sh: $FROM/$2 is missing" >&2; exit 1; }
    else
        curl -fsSL "$1/$2" -o "$DEST/$2" || { echo "download_real.sh: cannot fetch $1/$2" >&2; exit 1; }
    fi
}
for f in cities neg_cities sp_en_trans neg_sp_en_trans larger_than smaller_than; do
    get "$GOT" "$f.csv"
done
for f in animal_class neg_animal_class element_symb neg_element_symb inventors neg_inventors facts neg_facts; do
    get "$TIU" "$f.csv"
done
get "$ADV" harmful_behaviors.csv
get "$ALP" alpaca_data.json

# Convert to mechdiff's `instruction` CSVs: harmful = AdvBench goals,
# harmless = Alpaca rows with an empty input field.
python3 - "$DEST" <<'PY'
import csv, json, os, sys
d = sys.argv[1]
with open(os.path.join(d, "harmful_behaviors.csv"), newline="") as f:
    goals = [r["goal"] for r in csv.DictReader(f)]
with open(os.path.join(d, "alpaca_data.json")) as f:
    rows = [r["instruction"] for r in json.load(f) if not r.get("input", "").strip()]
for name, items in (("harmful.csv", goals), ("harmless.csv", rows)):
    with open(os.path.join(d, name), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["instruction"])
        for g in items:
            w.writerow([g])
print("wrote", len(goals), "harmful and", len(rows), "harmless instructions to", d)
PY
