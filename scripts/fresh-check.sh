#!/usr/bin/env bash
# The fresh-machine check: proves that the README's two set-up commands work on a bare Debian 12.
#
#   scripts/fresh-check.sh                      # or: make fresh-check
#   scripts/fresh-check.sh --drop-package P     # the same with P taken out of install-deps: must fail
#   scripts/fresh-check.sh --demo-only          # stop after `make demo`
#   scripts/fresh-check.sh --keep               # keep the root file system (to look around in it)
#
# It builds a minimal Debian 12 root with mmdebstrap (variant "apt": the Essential packages, apt,
# and `make`, the one tool the README's commands need before they can install anything), copies a
# clean clone of HEAD into it (uncommitted changes are NOT part of the check), and runs inside it,
# under chroot in a private mount namespace:
#   make demo DEMO_ARGS=train.epochs=1
#   make test
# printing the wall time and the last lines of each. Logs stay in $FRESH_DIR (default
# /var/tmp/lowbit-fresh-check). Needs root and Debian's apt sources; not part of .ci/run (slow:
# everything is downloaded and compiled from nothing).
set -euo pipefail

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "fresh-check: $*" >&2; exit 1; }

DROP=""; DEMO_ONLY=0; KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --drop-package) [ $# -ge 2 ] || die "--drop-package needs a package name"; DROP="$2"; shift 2 ;;
    --demo-only) DEMO_ONLY=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

REPO="$(cd "$(dirname "$0")/.." && pwd)"
FRESH_DIR="${FRESH_DIR:-/var/tmp/lowbit-fresh-check}"
MIRROR="${MIRROR:-http://deb.debian.org}"
ROOT="$FRESH_DIR/root"
TAIL_LINES="${TAIL_LINES:-15}"

[ "$(id -u)" -eq 0 ] || die "needs root (mmdebstrap --mode=root, chroot, mount); run it with sudo"
command -v git >/dev/null || die "git not found (apt-get install git)"
git -C "$REPO" rev-parse HEAD >/dev/null 2>&1 || die "$REPO is not a git checkout: the check clones HEAD"
if ! command -v mmdebstrap >/dev/null; then
  echo "fresh-check: installing mmdebstrap (apt)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null ||
    die "could not apt-get install mmdebstrap"
fi
if [ -n "$(git -C "$REPO" status --porcelain --untracked-files=no)" ]; then
  echo "fresh-check: note: uncommitted changes in $REPO are not checked (the check clones HEAD)"
fi

# Start from nothing: a root left by an earlier run would hide a missing package.
if [ -e "$FRESH_DIR" ]; then
  grep -q " $FRESH_DIR/" /proc/self/mounts && die "$FRESH_DIR has mounts left by an earlier run; unmount them first"
  rm -rf --one-file-system "$FRESH_DIR"
fi
mkdir -p "$FRESH_DIR"

SECONDS=0
echo "fresh-check: creating a minimal Debian 12 root in $ROOT (mmdebstrap, variant apt, + make)"
mmdebstrap --mode=root --variant=apt --include=make bookworm "$ROOT" \
  "deb $MIRROR/debian bookworm main" \
  "deb $MIRROR/debian bookworm-updates main" \
  "deb $MIRROR/debian-security bookworm-security main" >"$FRESH_DIR/mmdebstrap.log" 2>&1 ||
  { tail -n "$TAIL_LINES" "$FRESH_DIR/mmdebstrap.log" >&2; die "mmdebstrap failed (log: $FRESH_DIR/mmdebstrap.log)"; }
echo "fresh-check: root ready in ${SECONDS}s ($(du -sh "$ROOT" | cut -f1))"

HEAD_ID="$(git -C "$REPO" rev-parse --short HEAD)"
git clone -q --no-local --no-hardlinks "$REPO" "$ROOT/root/lowbit"
git -C "$ROOT/root/lowbit" checkout -q "$HEAD_ID"
echo "fresh-check: clean clone of $HEAD_ID in /root/lowbit"
if [ -n "$DROP" ]; then
  deps="$ROOT/root/lowbit/scripts/install-deps.sh"
  grep -qE "(^|[[:space:](])$DROP([[:space:])]|$)" "$deps" || die "--drop-package: '$DROP' is not in install-deps.sh"
  sed -i -E "s/(^|[[:space:](])$DROP([[:space:])]|$)/\1\2/" "$deps"
  echo "fresh-check: removed '$DROP' from install-deps.sh in the clone (this run is expected to fail)"
fi
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true

# Runs one README command inside the root, in a private mount namespace (the mounts vanish with it).
run_in_root() {  # name, command
  local name="$1" cmd="$2" log="$FRESH_DIR/$1.log" rc=0 start=$SECONDS
  echo "fresh-check: [$name] $cmd"
  unshare --mount --propagation private bash -c '
      set -e; root="$1"
      mount -t proc proc "$root/proc"
      mount --rbind /sys "$root/sys"
      mount --rbind /dev "$root/dev"
      exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        bash -c "cd /root/lowbit && $2"' _ "$ROOT" "$cmd" >"$log" 2>&1 || rc=$?
  local took=$((SECONDS - start))
  echo "---- last $TAIL_LINES lines of $name ($log) ----"
  tail -n "$TAIL_LINES" "$log"
  echo "----"
  printf 'fresh-check: %s: exit %d, wall %dm%02ds\n' "$name" "$rc" $((took / 60)) $((took % 60))
  return "$rc"
}

cleanup() {
  if [ "$KEEP" -eq 0 ] && ! grep -q " $ROOT/" /proc/self/mounts; then rm -rf --one-file-system "$ROOT"; fi
}
trap cleanup EXIT

status=0
run_in_root demo "make demo DEMO_ARGS=train.epochs=1" || status=$?
if [ "$status" -eq 0 ] && [ "$DEMO_ONLY" -eq 0 ]; then
  run_in_root test "make test" || status=$?
fi
total=$SECONDS
if [ "$status" -ne 0 ]; then
  echo "fresh-check: FAILED (exit $status) after ${total}s; logs in $FRESH_DIR" >&2
  exit "$status"
fi
echo "fresh-check: PASSED in $((total / 60))m$((total % 60))s (commit $HEAD_ID); logs in $FRESH_DIR"
