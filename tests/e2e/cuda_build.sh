#!/usr/bin/env bash
# cuda_build.sh BUILD_DIR — the CUDA backend compiles and links (issue 8).
#
# Configures -DMECHDIFF_CUDA=ON into BUILD_DIR/cuda-build and builds the
# library and every program a GPU session runs (scripts/dev/pack_gpu_carry.sh:
# mechdiff, test_backend_ops, test_backend_attn, test_backend_forward,
# test_profile, test_hook_batch, test_cuda_sync, bench_gpu; explicit architectures 80 and
# 90), then runs the three backend op tests: without a GPU each must do its
# CPU checks and print "cuda: skipped (no device)"; with one it compares
# every op with the CPU.
# Exits 77 (skipped) when nvcc is not installed.
set -u
BUILD=${1:?usage: cuda_build.sh BUILD_DIR}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
NVCC=$(command -v nvcc || true)
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
if [ -z "$NVCC" ]; then
    echo "cuda_build: SKIP: nvcc not found (install the CUDA Toolkit or put nvcc on PATH)"
    exit 77
fi
OUT="$BUILD/cuda-build"
mkdir -p "$OUT" || exit 1
JOBS=${MECHDIFF_BUILD_JOBS:-2}
PY=${PYTHON:-/usr/bin/python3}
start=$(date +%s)
echo "cuda_build: $("$NVCC" --version | tail -1) -> $OUT"
cmake -S "$SRC" -B "$OUT" -DMECHDIFF_CUDA=ON -DCMAKE_CUDA_COMPILER="$NVCC" \
      -DCMAKE_CUDA_ARCHITECTURES="80;90" -DPython3_EXECUTABLE="$PY" >"$OUT.configure.log" 2>&1 || {
    tail -30 "$OUT.configure.log"; echo "cuda_build: FAIL: configure (log: $OUT.configure.log)"; exit 1; }
cmake --build "$OUT" -j "$JOBS" --target mechdiff mechdiff_cmd \
      test_backend_ops test_backend_attn test_backend_forward test_profile test_hook_batch test_cuda_sync bench_gpu >"$OUT.build.log" 2>&1 || {
    grep -E "error|Error" "$OUT.build.log" | head -30; echo "cuda_build: FAIL: build (log: $OUT.build.log)"; exit 1; }
grep -q "backend_cuda.cu.o" "$OUT.build.log" || [ -f "$OUT/CMakeFiles/mechdiff.dir/src/backend/cuda/backend_cuda.cu.o" ] || {
    echo "cuda_build: FAIL: the CUDA source was not compiled"; exit 1; }
# The kernels are in the library for both architectures.
if command -v cuobjdump >/dev/null || [ -x /usr/local/cuda/bin/cuobjdump ]; then
    CUOBJ=$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)
    archs=$("$CUOBJ" --list-elf "$OUT/CMakeFiles/mechdiff.dir/src/backend/cuda/backend_cuda.cu.o" 2>/dev/null | grep -o 'sm_[0-9]*' | sort -u | tr '\n' ' ')
    echo "cuda_build: SASS in backend_cuda.cu.o: $archs"
    case "$archs" in *sm_80*sm_90*) ;; *) echo "cuda_build: FAIL: expected sm_80 and sm_90 code"; exit 1;; esac
fi
for t in test_backend_ops test_backend_attn test_backend_forward; do
    log="$OUT.$t.log"
    (cd "$SRC" && OPENBLAS_NUM_THREADS=1 "$OUT/tests/$t") >"$log" 2>&1
    rc=$?
    tail -2 "$log"
    [ $rc -eq 0 ] || { grep -E "FAIL|failed" "$log" | head -20; echo "cuda_build: FAIL: $t (log: $log)"; exit 1; }
    if grep -q "cuda: skipped (no device)" "$log"; then
        echo "cuda_build: $t built and linked; no GPU here, CUDA comparison skipped (run ctest -L gpu on a GPU machine)"
    else
        grep -q "^cuda (device" "$log" || { echo "cuda_build: FAIL: $t: neither a CUDA run nor the skip message"; exit 1; }
        echo "cuda_build: $t built, linked, and every op matched the CPU backend on the GPU"
    fi
done
echo "cuda_build: OK in $(( $(date +%s) - start )) s"
