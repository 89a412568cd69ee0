#include "train/optim_setup.h"

#include <algorithm>
#include <map>
#include <string>

#include "optim/adam.h"
#include "optim/sgd.h"
#include "quant/quantizer.h"

namespace lowbit::train {

std::unique_ptr<optim::Optimizer> make_optimizer(const config::OptimizerConfig& c, nn::Module& model) {
  // Quantizers with their own weight decay: parameter name -> decay.
  std::map<std::string, double> own;
  for (auto& [qname, q] : quant::quantizers_of(model)) {
    if (q->config().weight_decay < 0) continue;
    for (auto& [pname, p] : q->named_parameters()) own[qname + "." + pname] = q->config().weight_decay;
  }
  std::vector<Variable> decay, no_decay;
  std::vector<std::pair<double, std::vector<Variable>>> by_decay;  // quantizer groups
  for (auto& [name, p] : model.named_parameters()) {
    if (!p.requires_grad()) continue;
    auto o = own.find(name);
    if (o != own.end()) {
      auto g = std::find_if(by_decay.begin(), by_decay.end(), [&](const auto& e) { return e.first == o->second; });
      if (g == by_decay.end()) g = by_decay.insert(by_decay.end(), {o->second, {}});
      g->second.push_back(p);
      continue;
    }
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
  for (auto& [wd, params] : by_decay) groups.push_back(make_group(std::move(params), wd));
  switch (c.kind) {
    case config::OptimizerKind::sgd: return std::make_unique<optim::SGD>(std::move(groups));
    case config::OptimizerKind::adam: return std::make_unique<optim::Adam>(std::move(groups));
    case config::OptimizerKind::adamw: return std::make_unique<optim::AdamW>(std::move(groups));
  }
  return nullptr;
}

optim::LrScheduleConfig schedule_config(const config::ScheduleConfig& c, int64_t epochs, int64_t iters_per_epoch) {
  optim::LrScheduleConfig o;
  const int64_t k = c.per_iteration ? std::max<int64_t>(1, iters_per_epoch) : 1;  // config epochs -> schedule units
  o.unit = o.warmup_unit = c.per_iteration ? optim::LrUnit::iteration : optim::LrUnit::epoch;
  switch (c.kind) {
    case config::ScheduleKind::constant: o.kind = optim::LrKind::constant; break;
    case config::ScheduleKind::step: o.kind = optim::LrKind::step; break;
    case config::ScheduleKind::multistep: o.kind = optim::LrKind::multistep; break;
    case config::ScheduleKind::cosine: o.kind = optim::LrKind::cosine; break;
  }
  o.step_size = c.step_size * k;
  o.gamma = c.gamma;
  for (int64_t m : c.milestones) o.milestones.push_back(m * k);
  o.t_max = std::max<int64_t>(1, epochs * k);
  o.eta_min = c.eta_min;
  o.warmup = c.warmup_epochs * k;
  o.warmup_start_factor = c.warmup_start_factor;
  optim::check_config(o);
  return o;
}

}  // namespace lowbit::train
