#!/usr/bin/env bash
# Exit 0 when every build/test dependency is already installed (so the
# install step can be skipped), 1 otherwise.
for cmd in cmake mpicc mpirun h5dump ncdump pkg-config clang; do command -v "$cmd" >/dev/null || exit 1; done
for pc in openblas jansson libpcre2-8 yaml-0.1 libcrypto libutf8proc; do pkg-config --exists "$pc" || exit 1; done
[ -f /usr/include/hdf5/serial/hdf5.h ] || exit 1
# libFuzzer and the sanitizer runtimes of clang (libclang-rt-dev)
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || exit 1
/usr/bin/python3 -c "import numpy, h5py, matplotlib, xarray, h5netcdf" 2>/dev/null || exit 1
if [ "${1:-}" = "--slurm" ]; then command -v slurmctld >/dev/null && command -v munged >/dev/null || exit 1; fi
exit 0
