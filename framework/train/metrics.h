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

class MetricsLog {
 public:
  explicit MetricsLog(const std::string& run_dir);
  void append(const EpochMetrics& m);

 private:
  std::string csv_, jsonl_;
};

}  // namespace lowbit::train
