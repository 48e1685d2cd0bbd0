#!/usr/bin/env bash
# Installs the system packages neurite's build, tests and demos need (Debian), as root or
# through sudo. Safe to run again.
set -euo pipefail
# libopenmpi-dev, openmpi-bin and libclang-dev: the `mpi` feature (rsmpi binds OpenMPI with bindgen).
packages=(libopenblas-dev dataset-fashion-mnist fortunes libopenmpi-dev openmpi-bin libclang-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt 2>/dev/null || true
