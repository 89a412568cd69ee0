// Learning-rate schedules.
//
// Clock. The trainer calls set_epoch(epoch, iter_in_epoch, iters_per_epoch) before every
// optimizer step (iter_in_epoch = 0 .. iters_per_epoch - 1; epochs count from 0). A schedule
// that only changes between epochs may instead be called once per epoch as set_epoch(epoch).
// Each part of the schedule reads that position in its own unit:
//   LrUnit::epoch      t = epoch                                  (the lr is constant within an
//                      epoch: torch's scheduler.step() called once per epoch)
//   LrUnit::iteration  t = epoch * iters_per_epoch + iter_in_epoch (the global step: torch's
//                      scheduler.step() called after every batch)
// so step_size, milestones and t_max are in `unit`, and warmup in `warmup_unit`.
//
// Value for a group whose base lr is B (its lr when the LrSchedule was constructed), closed form:
//   constant   B
//   step       B * gamma^floor(t / step_size)                            (StepLR)
//   multistep  B * gamma^(number of milestones <= t)                      (MultiStepLR)
//   cosine     eta_min + (B - eta_min) * (1 + cos(pi * t / t_max)) / 2   (CosineAnnealingLR;
//              like torch it is periodic past t_max: it rises again until 2 * t_max)
// Warmup (warmup > 0) multiplies that value by
//   w = s + (1 - s) * min(tw, warmup) / warmup,   s = warmup_start_factor, tw in warmup_unit
// i.e. torch's ChainedScheduler([LinearLR(s, 1, warmup), main]): the main schedule's clock is
// not delayed by the warmup, and the lr is continuous where the warmup ends.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "optim/optimizer.h"

namespace lowbit::optim {

enum class LrKind { constant, step, multistep, cosine };
enum class LrUnit { epoch, iteration };

// "constant" | "step" | "multistep" | "cosine"; throws listing the valid names.
LrKind lr_kind_from_string(const std::string& s);
// "epoch" | "iteration"
LrUnit lr_unit_from_string(const std::string& s);
const char* lr_kind_name(LrKind k);
const char* lr_unit_name(LrUnit u);

struct LrScheduleConfig {
  LrKind kind = LrKind::constant;
  LrUnit unit = LrUnit::epoch;
  int64_t step_size = 1;           // step: >= 1
  double gamma = 0.1;              // step, multistep: >= 0
  std::vector<int64_t> milestones = {};  // multistep: each >= 0, any order, repeats count twice (as torch)
  int64_t t_max = 1;               // cosine: >= 1
  double eta_min = 0.0;            // cosine: >= 0
  int64_t warmup = 0;              // 0 = no warmup
  LrUnit warmup_unit = LrUnit::iteration;
  double warmup_start_factor = 0.1;  // in [0, 1]
};

// Throws lowbit::Error naming the bad field.
void check_config(const LrScheduleConfig& cfg);

// The lr for base lr `base` at a position (checked as in set_epoch). Pure function.
double scheduled_lr(const LrScheduleConfig& cfg, double base, int64_t epoch, int64_t iter_in_epoch = 0,
                    int64_t iters_per_epoch = 1);

class LrSchedule {
 public:
  // Records each group's current lr as its base lr. The optimizer must outlive the schedule.
  LrSchedule(Optimizer& optimizer, LrScheduleConfig cfg);

  // Sets every group's lr for this position and remembers the position. Errors: epoch < 0,
  // iters_per_epoch < 1, iter_in_epoch outside [0, iters_per_epoch).
  void set_epoch(int64_t epoch, int64_t iter_in_epoch = 0, int64_t iters_per_epoch = 1);

  // The lr group g gets at a position, without changing anything.
  double lr_at(size_t g, int64_t epoch, int64_t iter_in_epoch = 0, int64_t iters_per_epoch = 1) const;

  const LrScheduleConfig& config() const { return cfg_; }
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  // Last position given to set_epoch (epoch == -1 before the first call).
  int64_t epoch() const { return epoch_; }
  int64_t iter_in_epoch() const { return iter_; }
  int64_t iters_per_epoch() const { return iters_per_epoch_; }

  // Checkpoint state: just the clock, {"lr_schedule.position": int32 [3] = epoch,
  // iter_in_epoch, iters_per_epoch}. Base lrs come from the configuration.
  StateList state_tensors() const;
  // Restores the clock and, when a position had been set, re-applies its lrs to the optimizer.
  // Throws (changing nothing) on unknown or missing names and bad shapes or values.
  void load_state(const StateList& state);

 private:
  Optimizer* opt_;
  LrScheduleConfig cfg_;
  std::vector<double> base_lrs_;
  int64_t epoch_ = -1, iter_ = 0, iters_per_epoch_ = 1;
};

}  // namespace lowbit::optim
