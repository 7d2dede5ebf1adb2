#!/usr/bin/env bash
# Installs every Debian package mechdiff needs to build, test and run.
# Usage: scripts/install-deps.sh [--no-slurm]   (as root, or with sudo available)
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PKGS=(
  build-essential cmake pkg-config git
  libopenmpi-dev openmpi-bin
  libhdf5-dev hdf5-tools
  libopenblas-dev
  libyaml-dev libjansson-dev libpcre2-dev libssl-dev libutf8proc-dev
  python3 python3-numpy python3-h5py python3-matplotlib
  python3-xarray python3-h5netcdf netcdf-bin
  clang libclang-rt-dev
)
if [ "${1:-}" != "--no-slurm" ]; then
  PKGS+=(slurm-wlm munge)
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${PKGS[@]}"
