#!/usr/bin/env bash
# Graceful stop: SIGINT (Ctrl-C) or SIGTERM during `lowbit train` finishes the step, writes
# last.h5, says how to resume and exits 130 / 143; the resumed run ends bit-identical to an
# uninterrupted one. (A second Ctrl-C stopping at once: tests/train/test_interrupt.cpp.)
# Usage: interrupt.sh path/to/lowbit   (run from the repository root)
set -u
LOWBIT=${1:?usage: interrupt.sh path/to/lowbit}
source "$(dirname "$0")/common.bash"
source "$(dirname "$0")/needs.bash"
need_fmnist
ARGS=(configs/lenet5_fmnist_fp32.yaml train.epochs=8 data.train_limit=6000 data.test_limit=500 train.batch_size=64
      train.save_every_steps=20 --threads 1 -q)

"$LOWBIT" train "${ARGS[@]}" --out "$T/ref" > /dev/null 2>&1 || { echo "FAIL: reference run failed"; exit 1; }
want=$("$LOWBIT" inspect --checksum "$T/ref/last.h5")

# Starts a run into $1, sends signal $2 once it has written a checkpoint, waits; sets rc.
# Returns 1 when the run ended before the signal could be sent.
interrupt_run() {
  local dir=$1 sig=$2 waited=0
  "$LOWBIT" train "${ARGS[@]}" --out "$dir" > "$T/out" 2> "$T/err" &
  local pid=$!
  while [ ! -f "$dir/last.h5" ] && [ $waited -lt 300 ]; do sleep 0.05; waited=$((waited + 1)); done
  kill -"$sig" $pid 2>/dev/null || { wait $pid; rc=$?; return 1; }
  wait $pid; rc=$?
  cat "$T/err" "$T/out" > "$T/all"
}

for sig in INT TERM; do
  want_rc=$([ $sig = INT ] && echo 130 || echo 143)
  dir="$T/run_$sig"
  if ! interrupt_run "$dir" $sig; then echo "FAIL $sig: the run finished before the signal (exit $rc)"; fails=$((fails + 1)); continue; fi
  ok=1
  [ $rc -eq $want_rc ] || { echo "FAIL $sig: exit $rc, wanted $want_rc"; ok=0; }
  grep -q "continue with: lowbit train --resume $dir" "$T/all" || { echo "FAIL $sig: no resume hint"; ok=0; }
  grep -qE "stopped by .* in epoch [0-9]+ after step [0-9]+" "$T/all" || { echo "FAIL $sig: no stop line"; ok=0; }
  "$LOWBIT" inspect "$dir/last.h5" > /dev/null 2>&1 || { echo "FAIL $sig: last.h5 does not load"; ok=0; }
  "$LOWBIT" train --resume "$dir" --threads 1 -q > /dev/null 2> "$T/err" || { echo "FAIL $sig: resume failed"; cat "$T/err"; ok=0; }
  got=$("$LOWBIT" inspect --checksum "$dir/last.h5")
  [ "$got" = "$want" ] || { echo "FAIL $sig: resumed weights $got differ from the uninterrupted run's $want"; ok=0; }
  report "graceful_$sig" $ok
done

finish
