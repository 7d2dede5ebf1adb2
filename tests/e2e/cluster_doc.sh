#!/bin/bash
# cluster_doc.sh — runs every block of docs/cluster.md marked *(tested)*,
# exactly as written and in order, in one shell on a copy of the repository,
# with stand-ins for what needs a cluster or the network:
#   module           no-op (the test machine has the libraries installed)
#   cmake --build    links the already-built binary (the configure step runs
#                    for real with the doc's hints; CI builds the code itself)
#   pip              no-op
#   huggingface-cli  `download ORG/NAME` writes a Hugging Face cache repo
#                    folder (refs/main, snapshots/<sha> -> blobs) holding a
#                    generated checkpoint of the family's real widths and
#                    layer count (tests/e2e/lib/real_like.sh); `login` no-op
#   curl             copies raw files with the real headers (fake_downloads)
#   sbatch           runs the template in place, as Slurm would (its env:
#                    SLURM_JOB_ID, SLURM_SUBMIT_DIR, array variables),
#                    launching with mpirun; arrays run task by task and
#                    --dependency is met by running in order
#   scontrol         fails (no controller), so the templates find the clone
#                    from SLURM_SUBMIT_DIR
# The templates under a real Slurm: tests/e2e/slurm.sh.
. "$(dirname "$0")/../lib.sh"
need_pair
command -v h5ls >/dev/null || { echo "SKIP: h5ls not installed"; exit 77; }

# the doc's blocks
/usr/bin/python3 - "$ROOT/docs/cluster.md" "$WORK/doc.sh" <<'PY' || fail "cannot extract the tested blocks"
import re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r"^\*\(tested\)\*\n```sh\n(.*?)^```", text, re.S | re.M)
assert len(blocks) >= 8, f"only {len(blocks)} tested blocks"
with open(sys.argv[2], "w") as f:
    for i, b in enumerate(blocks):
        f.write(f"echo '=== docs/cluster.md tested block {i + 1}'\n{b}")
print(len(blocks), "tested blocks")
PY

# the clone
C=$WORK/clone
mkdir -p "$C"
for d in CMakeLists.txt cmake src include tests bench jobs data slurm analysis models scripts; do
    cp -r "$ROOT/$d" "$C/"
done
rm -rf "$C/data/real" "$C/out" "$C/report"

# stand-ins
B=$WORK/bin
mkdir -p "$B" "$WORK/raw" "$WORK/scratch" "$WORK/fam"
ln -s /usr/bin/python3 "$B/python3"
fake_raw() { . "$ROOT/tests/e2e/lib/real_like.sh"; fake_downloads "$WORK/raw"; }
fake_raw || fail "fake_downloads"
cat > "$B/cmake" <<EOF
#!/bin/bash
if [ "\$1" = --build ]; then mkdir -p "\$2" && ln -sf "$MECHDIFF" "\$2/mechdiff"; exit 0; fi
exec /usr/bin/cmake "\$@" -DPython3_EXECUTABLE=/usr/bin/python3
EOF
printf '#!/bin/sh\necho "pip (stand-in): $*"\n' > "$B/pip"
printf '#!/bin/sh\nexit 1\n' > "$B/scontrol"
cat > "$B/curl" <<EOF
#!/bin/bash
out=""; url=""
while [ \$# -gt 0 ]; do case "\$1" in -o) out=\$2; shift 2 ;; -*) shift ;; *) url=\$1; shift ;; esac; done
cp "$WORK/raw/\$(basename "\$url")" "\$out"
EOF
cat > "$B/huggingface-cli" <<EOF
#!/bin/bash
[ "\$1" = download ] || { echo "huggingface-cli (stand-in): \$*"; exit 0; }
export MECHDIFF="$MECHDIFF" ROOT="$ROOT"
. "$ROOT/tests/e2e/lib/real_like.sh"
repo=\$2
case "\$repo" in
    meta-llama/Llama-3.1-8B) fam=llama3-8b; tmpl=none ;;
    meta-llama/Llama-3.1-8B-Instruct) fam=llama3-8b; tmpl=llama3 ;;
    allenai/Llama-3.1-Tulu-3-8B-SFT) fam=llama3-8b; tmpl=tulu ;;
    *) echo "huggingface-cli (stand-in): no stand-in for \$repo" >&2; exit 1 ;;
esac
[ -d "$WORK/fam/\$fam" ] || family_model "$WORK/fam/\$fam" "\$fam" || exit 1
model_variant "$WORK/fam/\$fam" "$WORK/fam/\${repo//\//--}" "\$tmpl" || exit 1
R=\$HF_HOME/hub/models--\${repo//\//--}
sha=\$(printf '%s' "\$repo" | sha1sum | cut -c1-40)
mkdir -p "\$R/blobs" "\$R/refs" "\$R/snapshots/\$sha"
for f in "$WORK/fam/\${repo//\//--}"/*; do
    ln -sf "\$(readlink -f "\$f")" "\$R/blobs/\$(basename "\$f")"
    ln -sf "../../blobs/\$(basename "\$f")" "\$R/snapshots/\$sha/\$(basename "\$f")"
done
printf '%s' "\$sha" > "\$R/refs/main"
echo "downloaded \$repo to \$R/snapshots/\$sha"
EOF
cat > "$B/sbatch" <<'EOF'
#!/bin/bash
parsable=0 lo="" hi=""
while [[ "${1:-}" == -* ]]; do
    case "$1" in
        --parsable) parsable=1 ;;
        --array=*) r=${1#--array=}; lo=${r%-*}; hi=${r#*-} ;;
        *) ;;
    esac
    shift
done
script=$1; shift
id=$((RANDOM + 100))
run_task() {
    env SLURM_JOB_ID=$id SLURM_SUBMIT_DIR="$PWD" SLURM_NTASKS=2 MECHDIFF_LAUNCH=mpirun "$@" \
        bash "$script" "${ARGS[@]}" >>"mechdiff-sbatch-$id.out" 2>&1 || { cat "mechdiff-sbatch-$id.out" >&2; exit 1; }
}
ARGS=("$@")
if [ -n "$lo" ]; then
    for ((t = lo; t <= hi; t++)); do
        run_task SLURM_ARRAY_TASK_ID=$t SLURM_ARRAY_TASK_MIN=$lo SLURM_ARRAY_TASK_COUNT=$((hi - lo + 1))
    done
else
    run_task
fi
[ "$parsable" = 1 ] && echo "$id" || echo "Submitted batch job $id"
EOF
chmod +x "$B"/*

cd "$C"
env -u MECHDIFF PATH="$B:/usr/bin:/bin:/usr/sbin" HOME="$WORK/home" SCRATCH="$WORK/scratch" \
    HDF5_ROOT=/usr OPENBLAS_ROOT=/usr \
    bash -e -c 'module() { echo "module (stand-in): $*"; }; . "$0"' "$WORK/doc.sh" >"$WORK/doc.out" 2>&1 ||
    { tail -40 "$WORK/doc.out"; fail "a tested block of docs/cluster.md failed"; }
grep "^===\|valid; output\|FINISHED\|Submitted\|downloaded\|wrote " "$WORK/doc.out"

# what the blocks must have produced
[ -x "$C/build/mechdiff" ] || fail "no build/mechdiff"
grep -q "jobs/my_truth.yaml: valid" "$WORK/doc.out" || fail "the pointed job did not validate"
grep -q "snapshots/" "$C/jobs/my_truth.yaml" && fail "the doc's job should name the cache repo folder, not a snapshot"
"$MECHDIFF" status "$C/out/smoke_organism.h5" | grep -q FINISHED || fail "the smoke job did not finish"
# section 6: the resubmission of the finished smoke job ran nothing again, as the doc says
grep -h "smoke-organism: finished" "$C"/mechdiff-sbatch-*.out | grep -q "(0 in this run)" \
  || fail "the resubmitted smoke job's log lacks '(0 in this run)'"
"$MECHDIFF" status "$C/out/smoke_array.h5" | grep -q FINISHED || fail "the merged array job did not finish"
same_results "$C/out/smoke_organism.h5" "$C/out/smoke_array.h5"
[ -s "$C/report/smoke/report.md" ] || fail "no report"
echo "PASS: every tested block of docs/cluster.md ran; array + merge equal one run"
