#!/usr/bin/env bash
# Run-folder safety: a second fresh `lowbit train` into a folder holding a run is refused (nothing
# changes there), --force moves the earlier run aside (never deletes it) and only once everything
# has loaded, --force with --resume is a usage error, and run_info.yaml records each invocation.
# Usage: run_folder.sh path/to/lowbit   (run from the repository root)
set -u
LOWBIT=${1:?usage: run_folder.sh path/to/lowbit}
source "$(dirname "$0")/common.bash"
source "$(dirname "$0")/needs.bash"
need_fmnist
EXPECT_IN=all
SMALL=(data.train_limit=256 data.test_limit=100 train.epochs=1 train.batch_size=64 -q)
CFG=configs/lenet5_fmnist_fp32.yaml
RUN="$T/run"

expect first_run 0 "test_acc=" -- train "$CFG" --out "$RUN" "${SMALL[@]}"
sum_before=$(md5sum "$RUN/metrics.csv" "$RUN/last.h5" | cut -d' ' -f1 | tr '\n' ' ')

# run_info.yaml: the command, version, commit and host of the run.
ok=1
for pat in "command: \"lowbit train $CFG --out $RUN" "kind: fresh" "lowbit: \"[0-9]+\.[0-9]+\.[0-9]+\"" "commit: \"[0-9a-z-]+\"" "host: \"" "started: \"20"; do
  grep -qE -- "$pat" "$RUN/run_info.yaml" || { echo "FAIL run_info: lacks /$pat/"; ok=0; }
done
report run_info_records_the_invocation $ok

expect second_run_refused 1 "run folder '$RUN' already holds a run" "lowbit train --resume $RUN" "--force" "--out DIR" -- \
  train "$CFG" --out "$RUN" "${SMALL[@]}"
sum_after=$(md5sum "$RUN/metrics.csv" "$RUN/last.h5" | cut -d' ' -f1 | tr '\n' ' ')
ok=1
[ "$sum_before" = "$sum_after" ] || { echo "FAIL the refused run changed the folder"; ok=0; }
ls "$RUN".old-* >/dev/null 2>&1 && { echo "FAIL the refused run moved the folder"; ok=0; }
report refused_run_changes_nothing $ok

expect force_with_resume 2 "--force starts over and --resume continues" -- train --resume "$RUN" --force -q

# A run that fails while loading (here: no data set at data.path) moves nothing, even with --force.
expect force_failing_run 1 "cannot open" -- train "$CFG" --out "$RUN" --force "${SMALL[@]}" data.path="$T/no_data"
ok=1
ls "$RUN".old-* >/dev/null 2>&1 && { echo "FAIL the old run moved although the new one never started"; ok=0; }
[ "$(md5sum "$RUN/metrics.csv" | cut -d' ' -f1)" = "$(echo "$sum_before" | cut -d' ' -f1)" ] || { echo "FAIL metrics.csv changed"; ok=0; }
report failed_force_moves_nothing $ok

expect force_moves_old_run_aside 0 "moved to $RUN.old-[0-9]{8}-[0-9]{6}" "test_acc=" -- \
  train "$CFG" --out "$RUN" --force "${SMALL[@]}" train.seed=7
ok=1
old=$(ls -d "$RUN".old-* 2>/dev/null | head -1)
[ -n "$old" ] || { echo "FAIL no $RUN.old-* folder"; ok=0; }
[ -n "$old" ] && [ "$(md5sum "$old/metrics.csv" "$old/last.h5" | cut -d' ' -f1 | tr '\n' ' ')" = "$sum_before" ] ||
  { echo "FAIL the old run's files changed when moved"; ok=0; }
[ "$(grep -c '^1,' "$RUN/metrics.csv")" = 1 ] || { echo "FAIL the new metrics.csv mixes runs"; ok=0; }
report old_run_kept_intact $ok

# A resume adds an entry of its own.
expect resume_runs 0 "test_acc=" -- train --resume "$RUN" train.epochs=2 -q
grep -q "kind: resume" "$RUN/run_info.yaml" && ok=1 || { echo "FAIL run_info.yaml lacks the resume"; ok=0; }
report resume_recorded $ok

# Resuming a finished run says so (and exits 0: the metrics are rewritten from the checkpoint).
expect resume_finished_run_says_so 0 "already finished all 2 epochs; nothing to train" "train.epochs=12" -- \
  train --resume "$RUN" -q

# One mean/std value for 3-channel images is applied to every channel, and said (a small fake
# CIFAR-10 in the binary format: 1 label byte + 3x32x32 pixels per record).
mkdir -p "$T/cifar"
for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
  head -c $((20 * 3073)) /dev/urandom | od -An -v -tu1 -w3073 |
    LC_ALL=C awk '{ printf "%c", $1 % 10; for (i = 2; i <= NF; ++i) printf "%c", $i }' > "$T/cifar/$f.bin"
done
expect one_mean_for_three_channels 0 "data.mean and data.std have one value each; it is applied to all 3 input channels" -- \
  train configs/resnet8_fmnist_fp32.yaml --out "$T/cifar_run" data.dataset=cifar10 data.path="$T/cifar" \
  model.params.in_channels=3 model.params.input_size=32 "data.mean=[0.5]" "data.std=[0.25]" train.epochs=1 \
  train.batch_size=10

# Piped progress: a line every LOWBIT_PROGRESS_SECONDS, and the final line's img/s is training
# time only, the same figure as metrics.csv's img_per_s (evaluation excluded).
PROG="$T/progress"
LOWBIT_PROGRESS_SECONDS=0.01 "$LOWBIT" train "$CFG" --out "$PROG" data.train_limit=4096 data.test_limit=2000 train.epochs=1 \
  train.batch_size=32 > "$T/out" 2> "$T/all"
ok=1
lines=$(grep -cE "^epoch 1/1: +[0-9]+%\|" "$T/all")
[ "$lines" -ge 3 ] || { echo "FAIL piped progress: $lines lines, wanted a line every 0.01 s"; ok=0; }
final=$(grep -E "^epoch 1/1: 100%" "$T/all" | tail -1 | sed -E 's/.*, ([0-9]+) img\/s.*/\1/')
csv=$(tail -1 "$PROG/metrics.csv" | cut -d, -f8 | awk '{ printf "%.0f", $1 }')
# (metrics.csv keeps one decimal: allow the last digit to round either way)
[ -n "$final" ] && awk -v a="$final" -v b="$csv" 'BEGIN { exit !(a - b <= 1 && b - a <= 1) }' ||
  { echo "FAIL final img/s '$final' vs metrics.csv '$csv'"; ok=0; }
report piped_progress_and_training_rate $ok

finish
