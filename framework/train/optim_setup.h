// Optimizer and LR schedule built from a run config's `optimizer:` and `schedule:` sections.
#pragma once
#include <memory>

#include "config/run_config.h"
#include "nn/module.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"

namespace lowbit::train {

// One parameter group, a second when no_decay_bn_bias is set (biases and 1-D parameters, i.e.
// batch-norm weights, get weight_decay 0), and one more per distinct `weight_decay` of the
// model's quantizers (their learned parameters: PACT alpha, thresholds, bit offsets), in order
// of first appearance.
std::unique_ptr<optim::Optimizer> make_optimizer(const config::OptimizerConfig& cfg, nn::Module& model);

// The run config's schedule in optim::LrSchedule terms. Config values are in epochs; with
// per_iteration they are converted to iterations (so the curve is evaluated every step).
// Cosine uses T_max = epochs. Warmup is chained as torch's ChainedScheduler([LinearLR, main]).
optim::LrScheduleConfig schedule_config(const config::ScheduleConfig& cfg, int64_t epochs, int64_t iters_per_epoch);

}  // namespace lowbit::train
