#include "train/optim_setup.h"

#include <cmath>

#include "optim/adam.h"
#include "optim/sgd.h"

namespace lowbit::train {

std::unique_ptr<optim::Optimizer> make_optimizer(const io::OptimizerConfig& c, const nn::Module& model) {
  std::vector<Variable> decay, no_decay;
  for (auto& [name, p] : model.named_parameters()) {
    if (!p.requires_grad()) continue;
    (c.no_decay_bn_bias && p.data().rank() <= 1 ? no_decay : decay).push_back(p);
  }
  std::vector<optim::ParamGroup> groups;
  auto make_group = [&](std::vector<Variable> params, double wd) {
    optim::ParamGroup g;
    g.params = std::move(params);
    g.lr = c.lr;
    g.weight_decay = wd;
    g.momentum = c.momentum;
    g.dampening = c.dampening;
    g.nesterov = c.nesterov;
    g.beta1 = c.beta1;
    g.beta2 = c.beta2;
    g.eps = c.eps;
    return g;
  };
  groups.push_back(make_group(std::move(decay), c.weight_decay));
  if (!no_decay.empty()) groups.push_back(make_group(std::move(no_decay), 0.0));
  switch (c.kind) {
    case io::OptimizerKind::sgd: return std::make_unique<optim::SGD>(std::move(groups));
    case io::OptimizerKind::adam: return std::make_unique<optim::Adam>(std::move(groups));
    case io::OptimizerKind::adamw: return std::make_unique<optim::AdamW>(std::move(groups));
  }
  return nullptr;
}

LrSchedule::LrSchedule(const io::ScheduleConfig& cfg, optim::Optimizer& opt, int64_t epochs, int64_t iters_per_epoch)
    : cfg_(cfg), opt_(opt), epochs_(epochs), iters_(std::max<int64_t>(1, iters_per_epoch)) {
  for (size_t g = 0; g < opt.num_groups(); ++g) base_.push_back(opt.lr(g));
}

double LrSchedule::lr_at(double base, double e) const {
  const double w = static_cast<double>(cfg_.warmup_epochs);
  const double t = std::max(0.0, e - w);  // the main schedule starts after warmup
  double lr = base;
  switch (cfg_.kind) {
    case io::ScheduleKind::constant: break;
    case io::ScheduleKind::step: lr = base * std::pow(cfg_.gamma, std::floor(t / static_cast<double>(cfg_.step_size))); break;
    case io::ScheduleKind::multistep: {
      int passed = 0;
      for (int64_t m : cfg_.milestones) passed += t >= static_cast<double>(m);
      lr = base * std::pow(cfg_.gamma, passed);
      break;
    }
    case io::ScheduleKind::cosine: {  // torch CosineAnnealingLR closed form, T_max = epochs - warmup
      const double tmax = std::max(1.0, static_cast<double>(epochs_) - w);
      lr = cfg_.eta_min + (base - cfg_.eta_min) * (1 + std::cos(M_PI * std::min(t, tmax) / tmax)) / 2;
      break;
    }
  }
  if (e < w) lr *= cfg_.warmup_start_factor + (1.0 - cfg_.warmup_start_factor) * e / w;
  return lr;
}

void LrSchedule::apply(int64_t epoch, int64_t iteration) {
  const double e = cfg_.per_iteration ? static_cast<double>(epoch) + static_cast<double>(iteration) / static_cast<double>(iters_)
                                      : static_cast<double>(epoch);
  for (size_t g = 0; g < base_.size(); ++g) opt_.set_lr(g, lr_at(base_[g], e));
}

}  // namespace lowbit::train
