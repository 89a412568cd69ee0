#include "optim/schedule.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <numbers>

namespace lowbit::optim {

LrKind lr_kind_from_string(const std::string& s) {
  if (s == "constant") return LrKind::constant;
  if (s == "step") return LrKind::step;
  if (s == "multistep") return LrKind::multistep;
  if (s == "cosine") return LrKind::cosine;
  LB_FAIL("unknown lr schedule '", s, "' (expected constant, step, multistep or cosine)");
}

LrUnit lr_unit_from_string(const std::string& s) {
  if (s == "epoch") return LrUnit::epoch;
  if (s == "iteration") return LrUnit::iteration;
  LB_FAIL("unknown lr schedule unit '", s, "' (expected epoch or iteration)");
}

const char* lr_kind_name(LrKind k) {
  switch (k) {
    case LrKind::constant: return "constant";
    case LrKind::step: return "step";
    case LrKind::multistep: return "multistep";
    case LrKind::cosine: return "cosine";
  }
  return "?";
}

const char* lr_unit_name(LrUnit u) { return u == LrUnit::epoch ? "epoch" : "iteration"; }

void check_config(const LrScheduleConfig& c) {
  switch (c.kind) {
    case LrKind::constant: break;
    case LrKind::step:
      LB_CHECK(c.step_size >= 1, "lr schedule step: step_size must be >= 1, got ", c.step_size);
      LB_CHECK(c.gamma >= 0.0 && std::isfinite(c.gamma), "lr schedule step: gamma must be >= 0, got ", c.gamma);
      break;
    case LrKind::multistep:
      LB_CHECK(c.gamma >= 0.0 && std::isfinite(c.gamma), "lr schedule multistep: gamma must be >= 0, got ", c.gamma);
      for (int64_t m : c.milestones) LB_CHECK(m >= 0, "lr schedule multistep: milestone ", m, " is negative");
      break;
    case LrKind::cosine:
      LB_CHECK(c.t_max >= 1, "lr schedule cosine: t_max must be >= 1, got ", c.t_max);
      LB_CHECK(c.eta_min >= 0.0 && std::isfinite(c.eta_min), "lr schedule cosine: eta_min must be >= 0, got ", c.eta_min);
      break;
  }
  LB_CHECK(c.warmup >= 0, "lr schedule: warmup must be >= 0, got ", c.warmup);
  LB_CHECK(c.warmup_start_factor >= 0.0 && c.warmup_start_factor <= 1.0,
           "lr schedule: warmup_start_factor must be in [0, 1], got ", c.warmup_start_factor);
}

namespace {

void check_position(int64_t epoch, int64_t iter, int64_t per_epoch) {
  LB_CHECK(epoch >= 0, "lr schedule: epoch must be >= 0, got ", epoch);
  LB_CHECK(per_epoch >= 1, "lr schedule: iters_per_epoch must be >= 1, got ", per_epoch);
  LB_CHECK(iter >= 0 && iter < per_epoch, "lr schedule: iter_in_epoch ", iter, " outside [0, ", per_epoch, ")");
}

int64_t clock(LrUnit u, int64_t epoch, int64_t iter, int64_t per_epoch) {
  return u == LrUnit::epoch ? epoch : epoch * per_epoch + iter;
}

}  // namespace

double scheduled_lr(const LrScheduleConfig& c, double base, int64_t epoch, int64_t iter, int64_t per_epoch) {
  check_position(epoch, iter, per_epoch);
  const int64_t t = clock(c.unit, epoch, iter, per_epoch);
  double lr = base;
  switch (c.kind) {
    case LrKind::constant: break;
    case LrKind::step: lr = base * std::pow(c.gamma, static_cast<double>(t / c.step_size)); break;
    case LrKind::multistep: {
      int64_t passed = 0;
      for (int64_t m : c.milestones) passed += m <= t;
      lr = base * std::pow(c.gamma, static_cast<double>(passed));
      break;
    }
    case LrKind::cosine:
      lr = c.eta_min + (base - c.eta_min) * (1.0 + std::cos(std::numbers::pi * static_cast<double>(t) /
                                                             static_cast<double>(c.t_max))) / 2.0;
      break;
  }
  if (c.warmup > 0) {
    const int64_t tw = std::min(clock(c.warmup_unit, epoch, iter, per_epoch), c.warmup);
    const double s = c.warmup_start_factor;
    lr *= s + (1.0 - s) * static_cast<double>(tw) / static_cast<double>(c.warmup);
  }
  return lr;
}

LrSchedule::LrSchedule(Optimizer& optimizer, LrScheduleConfig cfg) : opt_(&optimizer), cfg_(std::move(cfg)) {
  check_config(cfg_);
  for (size_t g = 0; g < opt_->num_groups(); ++g) base_lrs_.push_back(opt_->lr(g));
}

double LrSchedule::lr_at(size_t g, int64_t epoch, int64_t iter, int64_t per_epoch) const {
  LB_CHECK(g < base_lrs_.size(), "lr schedule: group ", g, " out of range (", base_lrs_.size(), " groups)");
  return scheduled_lr(cfg_, base_lrs_[g], epoch, iter, per_epoch);
}

void LrSchedule::set_epoch(int64_t epoch, int64_t iter, int64_t per_epoch) {
  check_position(epoch, iter, per_epoch);
  LB_CHECK(opt_->num_groups() == base_lrs_.size(), "lr schedule: the optimizer has ", opt_->num_groups(),
           " parameter groups but the schedule was made for ", base_lrs_.size());
  for (size_t g = 0; g < base_lrs_.size(); ++g) opt_->set_lr(g, lr_at(g, epoch, iter, per_epoch));
  epoch_ = epoch;
  iter_ = iter;
  iters_per_epoch_ = per_epoch;
}

StateList LrSchedule::state_tensors() const {
  Tensor pos = Tensor::empty(Shape{3}, DType::s32);
  LB_CHECK(epoch_ <= INT32_MAX && iters_per_epoch_ <= INT32_MAX, "lr schedule: position exceeds int32");
  int32_t* d = pos.data<int32_t>();
  d[0] = static_cast<int32_t>(epoch_);
  d[1] = static_cast<int32_t>(iter_);
  d[2] = static_cast<int32_t>(iters_per_epoch_);
  return {{"lr_schedule.position", pos}};
}

void LrSchedule::load_state(const StateList& state) {
  const Tensor* pos = nullptr;
  for (const auto& [name, t] : state) {
    LB_CHECK(name == "lr_schedule.position", "lr schedule load_state: unknown entry '", name,
             "' (expected lr_schedule.position)");
    LB_CHECK(pos == nullptr, "lr schedule load_state: duplicate entry '", name, "'");
    pos = &t;
  }
  LB_CHECK(pos != nullptr, "lr schedule load_state: 'lr_schedule.position' is missing");
  LB_CHECK(pos->defined() && pos->dtype() == DType::s32 && pos->shape() == Shape{3},
           "lr schedule load_state: 'lr_schedule.position' must be int32 [3], got ",
           pos->defined() ? pos->str() : std::string("an undefined tensor"));
  Tensor c = pos->contiguous();
  const int32_t* d = c.data<int32_t>();
  if (d[0] == -1) {
    epoch_ = -1;
    iter_ = 0;
    iters_per_epoch_ = 1;
    return;
  }
  set_epoch(d[0], d[1], d[2]);  // checks the values before changing anything
}

}  // namespace lowbit::optim
