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

static std::string csv_row(const EpochMetrics& m) {
  char row[512];
  std::snprintf(row, sizeof row, "%lld,%lld,%.9g,%.6f,%.6f,%.6f,%.6f,%.1f,%.3f,%.3f", static_cast<long long>(m.epoch),
                static_cast<long long>(m.step), m.lr, m.train_loss, m.train_acc, m.test_loss, m.test_acc, m.img_per_s,
                m.epoch_time, m.wall_time);
  return row;
}

std::string to_json(const EpochMetrics& m) {
  char js[640];
  std::snprintf(js, sizeof js,
                "{\"epoch\": %lld, \"step\": %lld, \"lr\": %.9g, \"train_loss\": %.6f, \"train_acc\": %.6f, "
                "\"test_loss\": %.6f, \"test_acc\": %.6f, \"img_per_s\": %.1f, \"epoch_time\": %.3f, \"wall_time\": %.3f}",
                static_cast<long long>(m.epoch), static_cast<long long>(m.step), m.lr, m.train_loss, m.train_acc,
                m.test_loss, m.test_acc, m.img_per_s, m.epoch_time, m.wall_time);
  return js;
}

std::vector<EpochMetrics> parse_jsonl(const std::string& text) {
  std::vector<EpochMetrics> out;
  size_t b = 0;
  while (b < text.size()) {
    size_t e = text.find('\n', b);
    if (e == std::string::npos) e = text.size();
    const std::string line = text.substr(b, e - b);
    b = e + 1;
    if (line.empty()) continue;
    EpochMetrics m;
    long long ep = 0, st = 0;
    const int n = std::sscanf(line.c_str(),
                              "{\"epoch\": %lld, \"step\": %lld, \"lr\": %lf, \"train_loss\": %lf, \"train_acc\": %lf, "
                              "\"test_loss\": %lf, \"test_acc\": %lf, \"img_per_s\": %lf, \"epoch_time\": %lf, \"wall_time\": %lf}",
                              &ep, &st, &m.lr, &m.train_loss, &m.train_acc, &m.test_loss, &m.test_acc, &m.img_per_s,
                              &m.epoch_time, &m.wall_time);
    LB_CHECK(n == 10, "metrics history: malformed line '", line.substr(0, 80), "'");
    m.epoch = ep;
    m.step = st;
    out.push_back(m);
  }
  return out;
}

void MetricsLog::append(const EpochMetrics& m) {
  std::ofstream csv(csv_, std::ios::app);
  csv << csv_row(m) << "\n";
  std::ofstream jl(jsonl_, std::ios::app);
  jl << to_json(m) << "\n";
  LB_CHECK(csv.good() && jl.good(), "cannot append to the metrics files in ", std::filesystem::path(csv_).parent_path().string());
}

void MetricsLog::reset(const std::vector<EpochMetrics>& history) {
  std::ofstream csv(csv_, std::ios::trunc);
  csv << kHeader << "\n";
  std::ofstream jl(jsonl_, std::ios::trunc);
  for (const auto& m : history) {
    csv << csv_row(m) << "\n";
    jl << to_json(m) << "\n";
  }
  LB_CHECK(csv.good() && jl.good(), "cannot rewrite the metrics files in ", std::filesystem::path(csv_).parent_path().string());
}

}  // namespace lowbit::train
