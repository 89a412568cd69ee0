// Per-epoch metrics in the run folder: metrics.csv (header + one row per epoch) and
// metrics.jsonl (one JSON object per epoch). Appends when the files exist (resume).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lowbit::train {

struct EpochMetrics {
  int64_t epoch = 0;      // 1-based
  int64_t step = 0;       // optimizer steps so far
  double lr = 0;          // learning rate at the end of the epoch
  double train_loss = 0, train_acc = 0;
  double test_loss = 0, test_acc = 0;
  double img_per_s = 0;   // training throughput of this epoch
  double epoch_time = 0;  // seconds
  double wall_time = 0;   // seconds since the run started
};

// One metrics.jsonl line (no newline).
std::string to_json(const EpochMetrics& m);
// Parses metrics.jsonl text written by to_json (throws on a malformed line).
std::vector<EpochMetrics> parse_jsonl(const std::string& text);

class MetricsLog {
 public:
  explicit MetricsLog(const std::string& run_dir);
  void append(const EpochMetrics& m);
  // Rewrites both files to hold exactly `history` (resume: the epochs in the checkpoint).
  void reset(const std::vector<EpochMetrics>& history);

 private:
  std::string csv_, jsonl_;
};

}  // namespace lowbit::train
