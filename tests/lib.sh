# lib.sh — sourced first by the shell tests (tests/e2e/*.sh, tests/mpi/*.sh),
# as `. "$(dirname "$0")/../lib.sh"`, with the build folder as $1 (ctest
# passes it; default build). It is outside the ctest globs, so not a test
# itself. Provides:
#   $BUILD, $ROOT (the repository, absolute), $MECHDIFF (the binary; exit 77
#   = skip when it is not built) and $MD (the same), $PY (python3, $PYTHON or
#   /usr/bin/python3), $WORK (a scratch folder removed at exit) and $T (the
#   same), $MPIRUN, and the environment every test runs in;
#   fail MSG; need_pair (skip unless the shipped model pair is there);
#   job_pair [DATASET...] (the models: and datasets: lines of a job on it);
#   expect_status STATUS PATTERN CMD... (exit status and stderr of CMD);
#   same_results A B; kill_job PID; readable FILE;
#   tiny_model DIR SEED [TOKENIZER] (a random-weight checkpoint).
set -u
BUILD=${1:-build}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MECHDIFF=${MECHDIFF:-$BUILD/mechdiff}
[ -x "$MECHDIFF" ] || { echo "SKIP: $MECHDIFF not built"; exit 77; }
MECHDIFF=$(realpath "$MECHDIFF")
MD=$MECHDIFF
PY=${PYTHON:-/usr/bin/python3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
export HDF5_USE_FILE_LOCKING=FALSE
export OMPI_MCA_rmaps_base_oversubscribe=1
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mechdiff-test.XXXXXX")
T=$WORK
trap 'rm -rf "$WORK"' EXIT
MPIRUN="mpirun --oversubscribe"
fail() { echo "FAIL: $*" >&2; exit 1; }
# need_pair: skip (exit 77) unless the shipped model pair is there.
need_pair() {
    local m
    for m in "$ROOT"/models/organism-base "$ROOT"/models/organism-instruct; do
        [ -f "$m/model.safetensors" ] || { echo "SKIP: $m is not there"; exit 77; }
    done
}
# job_pair [DATASET...]: the `models:` line of a job on the shipped pair
# (roles base and instruct) and, given datasets, its `datasets:` line
# (NAME: $ROOT/data/NAME.csv each), for a job's YAML heredoc.
job_pair() {
    echo "models: {base: $ROOT/models/organism-base, instruct: $ROOT/models/organism-instruct}"
    [ $# -gt 0 ] || return 0
    local d line=""
    for d in "$@"; do line="$line, $d: $ROOT/data/$d.csv"; done
    echo "datasets: {${line#, }}"
}
# expect_status STATUS PATTERN CMD...: CMD exits with STATUS and its stderr
# holds PATTERN (grep); its output is left in $WORK/out and $WORK/err.
expect_status() {
    local want=$1 pat=$2 rc=0
    shift 2
    "$@" > "$WORK/out" 2> "$WORK/err" || rc=$?
    [ "$rc" = "$want" ] || fail "status $rc (want $want) from: $* -- $(head -c 600 "$WORK/err")"
    grep -q -- "$pat" "$WORK/err" || fail "message of '$*' lacks '$pat': $(head -c 600 "$WORK/err")"
}
# h5diff of all results. Excluded: /provenance (times, host, ranks) and the
# REFERENCE_LIST/DIMENSION_LIST attributes of dimension scales, which hold
# object addresses that depend on the order a file was built in, not results.
same_results() {
    local ex
    ex=$(/usr/bin/python3 - "$1" <<'PY'
import sys, h5py
out = []
def visit(name, obj):
    if isinstance(obj, h5py.Dataset) and ("REFERENCE_LIST" in obj.attrs or "DIMENSION_LIST" in obj.attrs):
        out.append("--exclude-attribute /" + name)
with h5py.File(sys.argv[1], "r") as f:
    f.visititems(visit)
print(" ".join(out))
PY
) || fail "cannot list $1"
    h5diff --exclude-path /provenance $ex "$1" "$2" >/dev/null || { h5diff --exclude-path /provenance $ex "$1" "$2" | head -20; fail "$1 and $2 differ"; }
}
# kill -9 of a whole job: the process group of $1 and every descendant (mpirun
# puts its ranks in process groups of their own).
kill_job() {
    local pids="$1" more
    more=$1
    while [ -n "$more" ]; do
        more=$(for p in $more; do ps -o pid= --ppid "$p" 2>/dev/null; done | tr -d ' ')
        pids="$pids $more"
    done
    kill -9 -- -"$1" $pids 2>/dev/null
}
readable() { h5dump -H "$1" >/dev/null 2>&1 || fail "$1 is not a readable HDF5 file"; }
# tiny_model DIR SEED [TOKENIZER]: a 2-layer Llama (d 64) with random weights
# from SEED and the vocabulary of TOKENIZER (a tokenizer.json, copied in;
# default $TOK), for tests of the runner/unit design and the math without a
# trained model.
tiny_model() {
  /usr/bin/python3 - "$1" "$2" "${3:-$TOK}" <<'PY'
import json, os, shutil, struct, sys
import numpy as np
out, seed, tok = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.makedirs(out, exist_ok=True)
V = len(json.load(open(tok))["model"]["vocab"]) + 8
d, ff, L, H, KV = 64, 96, 2, 4, 2
hd = d // H
cfg = dict(architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=d, intermediate_size=ff,
           num_hidden_layers=L, num_attention_heads=H, num_key_value_heads=KV, head_dim=hd, vocab_size=V,
           rms_norm_eps=1e-5, rope_theta=10000.0, max_position_embeddings=512, bos_token_id=1,
           eos_token_id=2, tie_word_embeddings=False, torch_dtype="float32", hidden_act="silu")
json.dump(cfg, open(f"{out}/config.json", "w"))
rng = np.random.default_rng(seed)
t = {"model.embed_tokens.weight": rng.normal(0, 1, (V, d)), "model.norm.weight": np.ones(d),
     "lm_head.weight": rng.normal(0, 0.2, (V, d))}
for l in range(L):
    p = f"model.layers.{l}."
    t[p + "input_layernorm.weight"] = np.ones(d)
    t[p + "post_attention_layernorm.weight"] = np.ones(d)
    t[p + "self_attn.q_proj.weight"] = rng.normal(0, 0.1, (H * hd, d))
    t[p + "self_attn.k_proj.weight"] = rng.normal(0, 0.1, (KV * hd, d))
    t[p + "self_attn.v_proj.weight"] = rng.normal(0, 0.1, (KV * hd, d))
    t[p + "self_attn.o_proj.weight"] = rng.normal(0, 0.1, (d, H * hd))
    t[p + "mlp.gate_proj.weight"] = rng.normal(0, 0.1, (ff, d))
    t[p + "mlp.up_proj.weight"] = rng.normal(0, 0.1, (ff, d))
    t[p + "mlp.down_proj.weight"] = rng.normal(0, 0.1, (d, ff))
hdr, blobs, off = {}, [], 0
for k, v in t.items():
    b = v.astype("<f4").tobytes()
    hdr[k] = dict(dtype="F32", shape=list(v.shape), data_offsets=[off, off + len(b)])
    blobs.append(b)
    off += len(b)
h = json.dumps(hdr).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open(f"{out}/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
shutil.copy(tok, f"{out}/tokenizer.json")
PY
}
# strip_declared FILE: removes every stage's record of its declared datasets
# (attribute `datasets` of /completion/<experiment>/stage<k>): a results
# file as a build before the record wrote it.
strip_declared() {
  "$PY" - "$1" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    for e in f["completion"].values():
        for st in e.values():
            del st.attrs["datasets"]
PY
}
