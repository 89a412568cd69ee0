#include "train/metrics.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace lowbit::train {

static const char* kHeader = "epoch,step,lr,train_loss,train_acc,test_loss,test_acc,img_per_s,epoch_time,wall_time";

MetricsLog::MetricsLog(const std::string& run_dir) : csv_(run_dir + "/metrics.csv"), jsonl_(run_dir + "/metrics.jsonl") {
  if (!std::filesystem::exists(csv_)) {
    std::ofstream f(csv_);
    LB_CHECK(f.good(), "cannot write ", csv_);
    f << kHeader << "\n";
  }
}

void MetricsLog::append(const EpochMetrics& m) {
  char row[512];
  std::snprintf(row, sizeof row, "%lld,%lld,%.9g,%.6f,%.6f,%.6f,%.6f,%.1f,%.3f,%.3f", static_cast<long long>(m.epoch),
                static_cast<long long>(m.step), m.lr, m.train_loss, m.train_acc, m.test_loss, m.test_acc, m.img_per_s,
                m.epoch_time, m.wall_time);
  std::ofstream csv(csv_, std::ios::app);
  csv << row << "\n";
  char js[640];
  std::snprintf(js, sizeof js,
                "{\"epoch\": %lld, \"step\": %lld, \"lr\": %.9g, \"train_loss\": %.6f, \"train_acc\": %.6f, "
                "\"test_loss\": %.6f, \"test_acc\": %.6f, \"img_per_s\": %.1f, \"epoch_time\": %.3f, \"wall_time\": %.3f}",
                static_cast<long long>(m.epoch), static_cast<long long>(m.step), m.lr, m.train_loss, m.train_acc,
                m.test_loss, m.test_acc, m.img_per_s, m.epoch_time, m.wall_time);
  std::ofstream jl(jsonl_, std::ios::app);
  jl << js << "\n";
  LB_CHECK(csv.good() && jl.good(), "cannot append to the metrics files in ", std::filesystem::path(csv_).parent_path().string());
}

}  // namespace lowbit::train
