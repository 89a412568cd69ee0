// Optimizer and LR schedule built from a run config's `optimizer:` and `schedule:` sections.
#pragma once
#include <memory>

#include "io/run_config.h"
#include "nn/module.h"
#include "optim/optimizer.h"

namespace lowbit::train {

// One parameter group, or two when no_decay_bn_bias is set (biases and 1-D parameters, i.e.
// batch-norm weights, get weight_decay 0).
std::unique_ptr<optim::Optimizer> make_optimizer(const io::OptimizerConfig& cfg, const nn::Module& model);

// Sets each group's learning rate from its base value at (epoch, iteration).
// Per-epoch schedules change lr only at epoch boundaries (torch's scheduler.step() per epoch);
// per_iteration evaluates the same curve at fractional epochs epoch + it / iters_per_epoch.
// Warmup multiplies by a factor rising linearly from warmup_start_factor to 1 over
// warmup_epochs (per iteration when per_iteration is set, else per epoch).
class LrSchedule {
 public:
  LrSchedule(const io::ScheduleConfig& cfg, optim::Optimizer& opt, int64_t epochs, int64_t iters_per_epoch);
  void apply(int64_t epoch, int64_t iteration);
  // Learning rate for base value `base` at a (possibly fractional) epoch.
  double lr_at(double base, double epoch) const;

 private:
  io::ScheduleConfig cfg_;
  optim::Optimizer& opt_;
  int64_t epochs_, iters_;
  std::vector<double> base_;
};

}  // namespace lowbit::train
