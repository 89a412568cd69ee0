# Sourced by the CLI tests: what a test needs from outside the project (Debian's /usr/bin/python3
# with torch/h5py, the Fashion-MNIST package). Without it the whole script skips with exit 77
# (ctest shows it as skipped, with the message), unless the environment requires it:
# LOWBIT_REQUIRE_TORCH=1 (Python modules) or LOWBIT_REQUIRE_DATA=1 (Fashion-MNIST), both set by
# .ci/run, make it fail instead. The C++ tests do the same through tests/util/needs.h.
LOWBIT_PY=/usr/bin/python3
FMNIST_DIR=/usr/share/datasets/fashion-mnist

missing_dependency() {  # ENV_VAR MESSAGE
  if [ "${!1:-0}" = 1 ]; then echo "FAIL: $2 [$1=1 requires it]"; exit 1; fi
  echo "SKIP: $2"; exit 77
}

fmnist_present() {
  local f
  for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    [ -f "$FMNIST_DIR/$f" ] || return 1
  done
}

need_python() {  # MODULE...: e.g. need_python torch h5py numpy
  local mods pkgs
  mods=$(IFS=,; echo "$*"); pkgs=$(printf 'python3-%s ' "$@")
  "$LOWBIT_PY" -c "import $mods" 2>/dev/null ||
    missing_dependency LOWBIT_REQUIRE_TORCH "$LOWBIT_PY cannot import $* (apt-get install ${pkgs% })"
}

need_fmnist() {
  fmnist_present || missing_dependency LOWBIT_REQUIRE_DATA "no Fashion-MNIST in $FMNIST_DIR (apt-get install dataset-fashion-mnist)"
}

# For a script whose other cases run without the data: true when present; when missing, fails the
# script under LOWBIT_REQUIRE_DATA=1, else prints which SECTION is skipped and returns false.
have_fmnist_for() {  # SECTION
  fmnist_present && return 0
  if [ "${LOWBIT_REQUIRE_DATA:-0}" = 1 ]; then
    echo "FAIL: $1 needs Fashion-MNIST in $FMNIST_DIR [LOWBIT_REQUIRE_DATA=1 requires it]"; exit 1
  fi
  echo "skip $1: no Fashion-MNIST in $FMNIST_DIR (apt-get install dataset-fashion-mnist)"
  return 1
}
