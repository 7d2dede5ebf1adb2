#!/usr/bin/env bash
# Dev-only: pack what a bare GPU machine (the `device` tool's image: CUDA
# toolkit + driver, but no OpenBLAS / HDF5 / Open MPI / libyaml ...) needs to
# run the CUDA build of mechdiff, its GPU tests and benchmark, and mpirun
# (scripts/dev/gpu_checks.sh; docs/cuda.md, "The next GPU session").
#   scripts/dev/pack_gpu_carry.sh BUILD_DIR OUT_DIR
# BUILD_DIR: a build configured with -DMECHDIFF_CUDA=ON -DMECHDIFF_NATIVE=OFF
# in which mechdiff_cmd, test_backend_ops, test_backend_attn,
# test_backend_forward, test_profile, test_hook_batch, test_cuda_sync and
# bench_gpu are built. OUT_DIR gets bin/ (the eight programs + libmechdiff), rt.tar.xz (every
# shared library they and Open MPI's plugins need, except glibc and the CUDA
# driver/cuBLAS which the GPU machine has, plus Open MPI's own tree at its
# Debian paths). scripts/dev/gpu_checks.sh unpacks and uses it.
set -euo pipefail
BUILD=${1:?build dir}; OUT=${2:?output dir}
rm -rf "$OUT"; mkdir -p "$OUT/bin" "$OUT/stage/lib"
cp "$BUILD/mechdiff" "$BUILD/tests/test_backend_ops" "$BUILD/tests/test_backend_attn" "$BUILD/tests/test_backend_forward" \
   "$BUILD/tests/test_profile" "$BUILD/tests/test_hook_batch" "$BUILD/tests/test_cuda_sync" "$BUILD/bench/bench_gpu" "$OUT/bin/"
cp -P "$BUILD"/libmechdiff.so* "$OUT/bin/" 2>/dev/null || true

# Open MPI (Debian packages) at their absolute paths, docs and headers left out.
dpkg -L libopenmpi3 openmpi-bin openmpi-common libpmix2 2>/dev/null |
  grep -v -E '/(doc|man|lintian|include)/' |
  while read -r f; do [ -f "$f" ] || [ -L "$f" ] && echo "$f"; done > "$OUT/stage/ompi.list"
tar -cf - -T "$OUT/stage/ompi.list" 2>/dev/null | tar -xf - -C "$OUT/stage"

# Every shared library needed by the programs, mpirun/orted and the plugins.
{ ldd "$OUT"/bin/* /usr/bin/orted /usr/bin/orterun 2>/dev/null
  find /usr/lib/x86_64-linux-gnu/openmpi /usr/lib/x86_64-linux-gnu/pmix2 -name '*.so' \
       -exec ldd {} \; 2>/dev/null; } |
  awk '/=> \//{print $3}' | sort -u |
  grep -v -E '/(libc|libm|libpthread|libdl|librt|libresolv|ld-linux[^/]*|libcuda|libcublas|libcublasLt|libmechdiff)\.so' |
  while read -r l; do cp -L "$l" "$OUT/stage/lib/"; done

tar -C "$OUT/stage" -cJf "$OUT/rt.tar.xz" .
rm -rf "$OUT/stage"
du -sh "$OUT"/bin "$OUT/rt.tar.xz"
