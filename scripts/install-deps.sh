#!/usr/bin/env bash
# Installs (idempotently) every Debian package Lowbit needs to build, test and run its demo.
# Runs apt-get only when something is missing. Needs root (or sudo) for the install step.
set -euo pipefail
PKGS=(g++ cmake make pkg-config ccache zlib1g-dev libdnnl-dev libhdf5-dev
      libboost-program-options-dev libyaml-cpp-dev libgtest-dev
      dataset-fashion-mnist python3-torch python3-h5py python3-numpy)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to apt-get install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
