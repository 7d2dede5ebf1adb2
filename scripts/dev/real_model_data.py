#!/usr/bin/env python3
"""Dev-only: tiny real-world statement CSVs for the real-model check's jobs.

Usage: real_model_data.py OUTDIR
Writes cities.csv, animal_class.csv, element_symb.csv, sp_en_trans.csv
(statement,label; TRUE and FALSE rows as in the study's datasets, a few
dozen each, general knowledge a 135M model may or may not hold).
"""
import csv
import os
import sys

CITIES = [("Paris", "France"), ("Tokyo", "Japan"), ("Berlin", "Germany"),
          ("Madrid", "Spain"), ("Rome", "Italy"), ("London", "England"),
          ("Cairo", "Egypt"), ("Moscow", "Russia"), ("Beijing", "China"),
          ("Delhi", "India"), ("Toronto", "Canada"), ("Sydney", "Australia"),
          ("Lisbon", "Portugal"), ("Athens", "Greece"), ("Vienna", "Austria"),
          ("Dublin", "Ireland"), ("Oslo", "Norway"), ("Warsaw", "Poland"),
          ("Chicago", "America"), ("Mumbai", "India")]
ANIMALS = [("dog", "mammal"), ("cat", "mammal"), ("eagle", "bird"),
           ("sparrow", "bird"), ("shark", "fish"), ("salmon", "fish"),
           ("snake", "reptile"), ("lizard", "reptile"), ("frog", "amphibian"),
           ("horse", "mammal"), ("owl", "bird"), ("tuna", "fish")]
ELEMENTS = [("Oxygen", "O"), ("Hydrogen", "H"), ("Carbon", "C"),
            ("Nitrogen", "N"), ("Iron", "Fe"), ("Gold", "Au"),
            ("Silver", "Ag"), ("Sodium", "Na"), ("Helium", "He"),
            ("Copper", "Cu"), ("Lead", "Pb"), ("Zinc", "Zn")]
WORDS = [("perro", "dog"), ("gato", "cat"), ("casa", "house"),
         ("agua", "water"), ("libro", "book"), ("sol", "sun"),
         ("luna", "moon"), ("rojo", "red"), ("mesa", "table"),
         ("verde", "green"), ("leche", "milk"), ("pan", "bread")]


def rows(pairs, fmt):
    """A TRUE row per pair, then a FALSE row with the next pair's object."""
    out = []
    for i, (s, o) in enumerate(pairs):
        wrong = pairs[(i + 1) % len(pairs)][1]
        if wrong == o:
            wrong = pairs[(i + 2) % len(pairs)][1]
        out.append((fmt.format(s=s, o=o), 1))
        out.append((fmt.format(s=s, o=wrong), 0))
    return out


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    sets = {
        "cities": rows(CITIES, "The city of {s} is in {o}."),
        "animal_class": rows(ANIMALS, "The {s} is a {o}."),
        "element_symb": rows(ELEMENTS, "{s} has the symbol {o}."),
        "sp_en_trans": rows(WORDS, "The Spanish word '{s}' means '{o}'."),
    }
    for name, data in sets.items():
        with open(os.path.join(out, name + ".csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["statement", "label"])
            w.writerows(data)
    print(f"wrote {', '.join(sets)} to {out}")


if __name__ == "__main__":
    main()
