#!/usr/bin/env bash
# The command line, its --help and README.md agree:
# - `mechdiff --help` lists every subcommand of the dispatcher
#   (src/tools/mechdiff.c) and `--version`;
# - `mechdiff SUB --help` names every option SUB's parser accepts (the
#   string literals its src/tools file compares argv with, plus those of
#   src/tools/prompt_args.c where SUB calls prompt_args_parse) and no option
#   it does not accept (options of another subcommand it refers to, as in
#   "`mechdiff run --part I/N`", are not counted);
# - an unknown option is refused with exit status 2;
# - the "## Commands" block of README.md has a line for every subcommand, and
#   its options for SUB are exactly those of `mechdiff SUB --help`.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

subs=$(sed -n 's/^ *{"\([a-z-]*\)", cmd_[a-z_]*, ".*/\1/p' "$ROOT/src/tools/mechdiff.c")
[ "$(echo "$subs" | wc -w)" -ge 9 ] || fail "cannot read the subcommands of src/tools/mechdiff.c: '$subs'"
"$MD" --help > "$T/main.txt"
for sub in $subs; do
    grep -q "^  $sub " "$T/main.txt" || fail "mechdiff --help does not list '$sub'"
    "$MD" "$sub" --help > "$T/help.$sub"
    rc=0
    "$MD" "$sub" --no-such-option > /dev/null 2>&1 || rc=$?
    [ "$rc" = 2 ] || fail "mechdiff $sub --no-such-option: exit status $rc, want 2"
done
grep -q -- "--version" "$T/main.txt" || fail "mechdiff --help does not mention --version"
"$MD" --version | grep -q "^mechdiff " || fail "mechdiff --version"

"$PY" - "$ROOT" "$T" $subs <<'PY'
import os, re, sys
root, tmp, subs = sys.argv[1], sys.argv[2], sys.argv[3:]
tools = os.path.join(root, "src", "tools")
lit = re.compile(r'strcmp\(\s*[\w\[\]*]+\s*,\s*"(-{1,2}[A-Za-z][\w-]*)"\s*\)')
opt = re.compile(r'(?<![\w./-])(-{1,2}[A-Za-z][A-Za-z0-9-]*)')
common = {"-h", "--help"}            # cmd_wants_help, every subcommand
not_ours = {"run": {"-np"}}          # `mpirun -np N mechdiff run ...` in run's usage
bad = []

def parser_options(sub):
    src = open(os.path.join(tools, "cmd_" + sub.replace("-", "_") + ".c")).read()
    found = set(lit.findall(src))
    if "prompt_args_parse" in src:
        found |= set(lit.findall(open(os.path.join(tools, "prompt_args.c")).read()))
    return found

helps = {}
for sub in subs:
    accepted = parser_options(sub) | common
    text = open(os.path.join(tmp, "help." + sub)).read()
    # options of another subcommand the text refers to ("`mechdiff run --part I/N`",
    # "(e.g. forward --ids)") are that one's
    others = "|".join(re.escape(s) for s in subs if s != sub)
    text = re.sub(r"(?:mechdiff\s+)?\b(?:%s)\b[^`)\n]*" % others, "", text)
    shown = set(opt.findall(text)) - not_ours.get(sub, set())
    helps[sub] = shown
    for o in sorted((accepted - common) - shown):
        bad.append(f"mechdiff {sub} --help does not mention {o}, which its parser accepts")
    for o in sorted(shown - accepted):
        bad.append(f"mechdiff {sub} --help names {o}, which its parser does not accept")

readme = open(os.path.join(root, "README.md")).read()
m = re.search(r"^## Commands\n+```\n(.*?)^```", readme, re.S | re.M)
if not m:
    sys.exit("FAIL: README.md has no ## Commands block")
lines, cur = {}, None
for line in m.group(1).splitlines():
    w = line.split()
    if w and w[0] == "mechdiff" and len(w) > 1 and w[1] in subs:
        cur = w[1]
    elif w and w[0] == "mechdiff":
        cur = None
    if cur and line.strip():
        # the usage part: before the two-space gap of the description column
        usage = re.split(r"\s{3,}", line.strip())[0] if w[0] == "mechdiff" else line
        lines.setdefault(cur, set()).update(opt.findall(usage))
for sub in subs:
    if sub not in lines:
        bad.append(f"README.md's Commands block has no line for 'mechdiff {sub}'")
        continue
    doc, shown = lines[sub], helps[sub] - common
    for o in sorted(doc - shown):
        bad.append(f"README.md's Commands block gives mechdiff {sub} option {o}, which --help does not have")
    for o in sorted(shown - doc):
        bad.append(f"README.md's Commands block lacks mechdiff {sub} option {o} (in --help)")
if bad:
    sys.exit("FAIL:\n" + "\n".join(bad))
print(f"help_options: {len(subs)} subcommands; parsers, --help and README.md agree")
PY
echo "help_options: ok"
