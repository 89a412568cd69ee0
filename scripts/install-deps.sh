#!/usr/bin/env bash
# Installs (idempotently) every Debian package Lowbit needs to build, test, run its demo and its
# benchmarks on a bare Debian 12. Quiet when everything is present (one line); otherwise it runs
# `apt-get update` once and installs only what is missing. Needs root (or sudo) for that step.
#
# Nothing is assumed to be on the machine beyond `make` (the README's first command) and apt.
# Every package is named here, not pulled in through Recommends: apt runs with
# --no-install-recommends, so a package that a -dev package only recommends must be listed.
# Check the list on a clean root with `make fresh-check` whenever it changes.
set -euo pipefail

# One group per purpose; a package may be needed by several groups, it is listed once.
BUILD_PKGS=(
  g++ cmake make pkg-config ccache
  zlib1g-dev libhdf5-dev libboost-program-options-dev libyaml-cpp-dev
  libdnnl-dev
  # dnnl-config.cmake calls find_package(OpenCL); libdnnl-dev only Recommends these.
  ocl-icd-opencl-dev opencl-headers
)
TEST_PKGS=(
  libgtest-dev
  # The PyTorch/h5py oracles and the Python tools run Debian's /usr/bin/python3.
  python3 python3-torch python3-h5py python3-numpy
)
DATA_PKGS=(dataset-fashion-mnist)
# `lowbit export mcu`: Cortex-M4 builds of the exported C, run in QEMU (mps2-an386).
MCU_PKGS=(gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)

PKGS=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}" "${DATA_PKGS[@]}" "${MCU_PKGS[@]}")

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
  command -v sudo >/dev/null || {
    echo "install-deps: need root (or sudo) to apt-get install: ${missing[*]}" >&2
    echo "install-deps: run 'sudo bash scripts/install-deps.sh' once, then make again" >&2
    exit 1
  }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
  echo "install-deps: apt-get install failed for: ${missing[*]}" >&2
  echo "install-deps: check the apt sources (Debian 12 'bookworm', component main) and rerun" >&2
  exit 1
fi

# apt-get can succeed and still leave a package unconfigured (e.g. an interrupted dpkg run).
still=()
for p in "${missing[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || still+=("$p")
done
if [ ${#still[@]} -ne 0 ]; then
  echo "install-deps: still not installed after apt-get: ${still[*]} (try 'dpkg --configure -a')" >&2
  exit 1
fi
echo "install-deps: installed ${#missing[@]} packages"
