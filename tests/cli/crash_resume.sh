#!/usr/bin/env bash
# Crash safety: SIGKILL `lowbit train` at random moments (checkpoints are written every 2 steps,
# so many kills land inside a write) at least 20 times, resuming after each. After every kill
# the last checkpoint must load; the resumed run must end with weights bit-identical to an
# uninterrupted run with the same seed and thread count.
# Usage: crash_resume.sh path/to/lowbit   (run from the repository root)
set -u
LOWBIT=${1:?usage: crash_resume.sh path/to/lowbit}
source "$(dirname "$0")/needs.bash"
need_fmnist
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
ARGS=(configs/lenet5_fmnist_fp32.yaml train.epochs=4 data.train_limit=5120 data.test_limit=500 train.batch_size=64
      train.save_every_steps=2 --threads 1 -q)

"$LOWBIT" train "${ARGS[@]}" --out "$T/ref" > /dev/null || { echo "FAIL: reference run failed"; exit 1; }
want=$("$LOWBIT" inspect --checksum "$T/ref/last.h5")

kills=0; loads=0; fails=0; finished=0; round=1
RANDOM=12345
# Each round kills and resumes one run until it finishes; rounds repeat until 20 kills happened.
while [ $kills -lt 20 ] || [ -d "$T/run$round" ]; do
  R="$T/run$round"
  if [ -f "$R/last.h5" ]; then
    "$LOWBIT" train --resume "$R" --threads 1 -q > /dev/null 2> "$T/err" &
  else
    # --force: a run killed before its first checkpoint left a folder without last.h5.
    "$LOWBIT" train "${ARGS[@]}" --out "$R" --force > /dev/null 2> "$T/err" &
  fi
  pid=$!
  sleep "$(( RANDOM % 2 + 1 )).$(( RANDOM % 10 ))$(( RANDOM % 10 ))"  # 1.00 .. 2.99 s (start-up reads the data set)
  if ! kill -9 $pid 2>/dev/null; then
    wait $pid; rc=$?
    if [ $rc -ne 0 ]; then echo "FAIL: run exited $rc before the kill:"; cat "$T/err"; fails=$((fails + 1)); break; fi
    got=$("$LOWBIT" inspect --checksum "$R/last.h5")
    lines=$(($(wc -l < "$R/metrics.csv") - 1))
    echo "round $round finished after $kills kills in total: checksum $got (reference $want), $lines epochs in metrics.csv"
    [ "$got" = "$want" ] || { echo "FAIL: resumed weights differ from the uninterrupted run"; fails=$((fails + 1)); }
    [ "$lines" -eq 4 ] || { echo "FAIL: metrics.csv has $lines epochs, want 4"; fails=$((fails + 1)); }
    finished=$((finished + 1)); round=$((round + 1))
    continue
  fi
  wait $pid 2>/dev/null
  kills=$((kills + 1))
  if [ -f "$R/last.h5" ]; then
    if "$LOWBIT" inspect "$R/last.h5" > /dev/null 2> "$T/ierr"; then
      loads=$((loads + 1))
    else
      echo "FAIL: last.h5 does not load after kill $kills:"; cat "$T/ierr"; fails=$((fails + 1))
    fi
  fi
done
echo "kills=$kills checkpoint_loads_after_kill=$loads finished_runs=$finished"
[ $finished -ge 1 ] || { echo "FAIL: no run finished"; fails=$((fails + 1)); }
[ $loads -ge 10 ] || { echo "FAIL: a checkpoint existed after only $loads kills"; fails=$((fails + 1)); }
if [ $fails -eq 0 ]; then echo "1 passed, 0 failed"; else echo "0 passed, $fails failed"; exit 1; fi
