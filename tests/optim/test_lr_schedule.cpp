// LR schedules against torch.optim.lr_scheduler and the documented closed forms.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <numbers>

#include "optim/schedule.h"
#include "optim/sgd.h"
#include "util/torch_oracle.h"

namespace lowbit::optim {
namespace {

constexpr int kEpochs = 30;
constexpr int kItersPerEpoch = 4;

// An optimizer with two groups, base lrs 0.1 and 0.03 (the same in the torch script).
struct TwoGroups {
  Variable a{Tensor::zeros({1}), true}, b{Tensor::zeros({1}), true};
  SGD opt{std::vector<ParamGroup>{SgdOptions{.lr = 0.1}.group({a}), SgdOptions{.lr = 0.03}.group({b})}};
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(LrSchedule, MatchesTorch) {
  LB_REQUIRE_TORCH();
  // Each scheduler steps once per recorded value: per epoch, or per iteration for "_iter".
  const char* script = R"PY(
from torch.optim import lr_scheduler as S
def lrs(make, n):
    p = torch.zeros(1, requires_grad=True); q = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([{'params': [p], 'lr': 0.1}, {'params': [q], 'lr': 0.03}], lr=0.1)
    s = make(opt)
    out = []
    for _ in range(n):
        out.append([g['lr'] for g in opt.param_groups])
        opt.step()
        s.step()
    return torch.tensor(out, dtype=torch.float64)
E = 30
save('step', lrs(lambda o: S.StepLR(o, step_size=7, gamma=0.5), E))
save('multistep', lrs(lambda o: S.MultiStepLR(o, milestones=[5, 12, 20], gamma=0.3), E))
save('cosine', lrs(lambda o: S.CosineAnnealingLR(o, T_max=E, eta_min=1e-3), E))
save('cosine_periodic', lrs(lambda o: S.CosineAnnealingLR(o, T_max=8, eta_min=1e-3), E))
save('warmup_multistep', lrs(lambda o: S.ChainedScheduler([S.LinearLR(o, start_factor=0.25, total_iters=4),
                                                        S.MultiStepLR(o, milestones=[5, 12], gamma=0.3)]), E))
save('step_iter', lrs(lambda o: S.StepLR(o, step_size=10, gamma=0.7), E * 4))
save('cosine_iter', lrs(lambda o: S.CosineAnnealingLR(o, T_max=E * 4, eta_min=0.0), E * 4))
)PY";
  struct Case {
    std::string name;
    LrScheduleConfig cfg;
  };
  std::vector<Case> cases = {
      {"step", {.kind = LrKind::step, .step_size = 7, .gamma = 0.5}},
      {"multistep", {.kind = LrKind::multistep, .gamma = 0.3, .milestones = {12, 5, 20}}},
      {"cosine", {.kind = LrKind::cosine, .t_max = kEpochs, .eta_min = 1e-3}},
      {"cosine_periodic", {.kind = LrKind::cosine, .t_max = 8, .eta_min = 1e-3}},
      {"warmup_multistep",
       {.kind = LrKind::multistep, .gamma = 0.3, .milestones = {5, 12}, .warmup = 4, .warmup_unit = LrUnit::epoch,
        .warmup_start_factor = 0.25}},
      {"step_iter", {.kind = LrKind::step, .unit = LrUnit::iteration, .step_size = 10, .gamma = 0.7}},
      {"cosine_iter", {.kind = LrKind::cosine, .unit = LrUnit::iteration, .t_max = kEpochs * kItersPerEpoch}},
  };
  std::vector<std::string> names;
  for (const auto& c : cases) names.push_back(c.name);
  auto ref = testing::run_torch(script, {}, names);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    TwoGroups t;
    LrSchedule sched(t.opt, c.cfg);
    const bool per_iter = c.name.ends_with("_iter");
    const Tensor& r = ref.at(c.name);
    const int n = per_iter ? kEpochs * kItersPerEpoch : kEpochs;
    ASSERT_EQ(r.shape(), Shape({n, 2}));
    double worst = 0;
    for (int k = 0; k < n; ++k) {
      if (per_iter) sched.set_epoch(k / kItersPerEpoch, k % kItersPerEpoch, kItersPerEpoch);
      else sched.set_epoch(k);
      for (size_t g = 0; g < 2; ++g) {
        const double want = r.f32()[k * 2 + g];
        const double rel = std::fabs(t.opt.lr(g) - want) / std::max(std::fabs(want), 1e-12);
        worst = std::max(worst, rel);
        EXPECT_LE(rel, 1e-6) << "k " << k << " group " << g << ": " << t.opt.lr(g) << " vs torch " << want;
      }
    }
    std::cout << "[ torch    ] " << c.name << ": max rel diff " << worst << "\n";
  }
}

// Per-iteration linear warmup on a per-epoch cosine: the documented closed form.
TEST(LrSchedule, WarmupClosedForm) {
  TwoGroups t;
  const LrScheduleConfig cfg{.kind = LrKind::cosine, .unit = LrUnit::epoch, .t_max = kEpochs, .eta_min = 1e-4,
                             .warmup = 6, .warmup_unit = LrUnit::iteration, .warmup_start_factor = 0.1};
  LrSchedule sched(t.opt, cfg);
  const double base[2] = {0.1, 0.03};
  for (int e = 0; e < kEpochs; ++e) {
    for (int i = 0; i < kItersPerEpoch; ++i) {
      sched.set_epoch(e, i, kItersPerEpoch);
      const double it = e * kItersPerEpoch + i;
      const double w = it >= 6 ? 1.0 : 0.1 + 0.9 * it / 6.0;
      for (int g = 0; g < 2; ++g) {
        const double main = 1e-4 + (base[g] - 1e-4) * (1 + std::cos(std::numbers::pi * e / kEpochs)) / 2;
        EXPECT_NEAR(t.opt.lr(g), main * w, 1e-15) << e << " " << i;
      }
    }
  }
  // The first step uses start_factor * base; the warmup ends continuously.
  EXPECT_NEAR(sched.lr_at(0, 0, 0, kItersPerEpoch), 0.01, 1e-15);
  EXPECT_DOUBLE_EQ(sched.lr_at(0, 1, 2, kItersPerEpoch), sched.lr_at(0, 1, 3, kItersPerEpoch));
  // Constant + warmup in epochs.
  const LrScheduleConfig c2{.warmup = 4, .warmup_unit = LrUnit::epoch, .warmup_start_factor = 0.0};
  EXPECT_DOUBLE_EQ(scheduled_lr(c2, 0.2, 0), 0.0);
  EXPECT_DOUBLE_EQ(scheduled_lr(c2, 0.2, 1, 3, 4), 0.05);
  EXPECT_DOUBLE_EQ(scheduled_lr(c2, 0.2, 4), 0.2);
  EXPECT_DOUBLE_EQ(scheduled_lr(c2, 0.2, 100), 0.2);
}

TEST(LrSchedule, StateRoundTrip) {
  TwoGroups t;
  const LrScheduleConfig cfg{.kind = LrKind::step, .unit = LrUnit::iteration, .step_size = 5, .gamma = 0.5};
  LrSchedule sched(t.opt, cfg);
  EXPECT_EQ(sched.epoch(), -1);
  sched.set_epoch(3, 2, 4);  // iteration 14 -> 0.1 * 0.25
  StateList st = sched.state_tensors();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].first, "lr_schedule.position");

  TwoGroups u;
  LrSchedule resumed(u.opt, cfg);
  resumed.load_state(st);
  EXPECT_EQ(resumed.epoch(), 3);
  EXPECT_EQ(resumed.iter_in_epoch(), 2);
  EXPECT_EQ(resumed.iters_per_epoch(), 4);
  EXPECT_DOUBLE_EQ(u.opt.lr(0), 0.025);  // re-applied
  EXPECT_DOUBLE_EQ(u.opt.lr(1), 0.03 * 0.25);
  // Base lrs stay those of the configuration (not the decayed lrs).
  EXPECT_DOUBLE_EQ(resumed.base_lrs()[0], 0.1);

  // A schedule that never ran round-trips as "no position".
  TwoGroups v;
  LrSchedule idle(v.opt, cfg);
  LrSchedule idle2(v.opt, cfg);
  idle2.load_state(idle.state_tensors());
  EXPECT_EQ(idle2.epoch(), -1);
  EXPECT_DOUBLE_EQ(v.opt.lr(0), 0.1);

  EXPECT_NE(error_of([&] { resumed.load_state({}); }).find("'lr_schedule.position' is missing"), std::string::npos);
  EXPECT_NE(error_of([&] { resumed.load_state({{"lr_schedule.epoch", st[0].second}}); }).find("unknown entry"),
            std::string::npos);
  EXPECT_NE(error_of([&] { resumed.load_state({{"lr_schedule.position", Tensor::zeros({3})}}); }).find("must be int32 [3]"),
            std::string::npos);
  Tensor bad = st[0].second.clone();
  bad.data<int32_t>()[1] = 9;  // iter 9 of 4
  EXPECT_NE(error_of([&] { resumed.load_state({{"lr_schedule.position", bad}}); }).find("iter_in_epoch 9 outside [0, 4)"),
            std::string::npos);
  EXPECT_EQ(resumed.epoch(), 3);  // unchanged by failed loads
}

TEST(LrSchedule, BadArguments) {
  TwoGroups t;
  auto err = [&](LrScheduleConfig c) { return error_of([&] { LrSchedule s(t.opt, c); }); };
  EXPECT_NE(err({.kind = LrKind::step, .step_size = 0}).find("step_size must be >= 1"), std::string::npos);
  EXPECT_NE(err({.kind = LrKind::step, .gamma = -0.5}).find("gamma must be >= 0"), std::string::npos);
  EXPECT_NE(err({.kind = LrKind::multistep, .milestones = {3, -1}}).find("milestone -1 is negative"), std::string::npos);
  EXPECT_NE(err({.kind = LrKind::cosine, .t_max = 0}).find("t_max must be >= 1"), std::string::npos);
  EXPECT_NE(err({.kind = LrKind::cosine, .eta_min = -1}).find("eta_min must be >= 0"), std::string::npos);
  EXPECT_NE(err({.warmup = -2}).find("warmup must be >= 0"), std::string::npos);
  EXPECT_NE(err({.warmup = 2, .warmup_start_factor = 1.5}).find("warmup_start_factor must be in [0, 1]"),
            std::string::npos);
  LrSchedule s(t.opt, {});
  EXPECT_NE(error_of([&] { s.set_epoch(-1); }).find("epoch must be >= 0"), std::string::npos);
  EXPECT_NE(error_of([&] { s.set_epoch(0, 0, 0); }).find("iters_per_epoch must be >= 1"), std::string::npos);
  EXPECT_NE(error_of([&] { s.set_epoch(0, 4, 4); }).find("iter_in_epoch 4 outside [0, 4)"), std::string::npos);
  EXPECT_NE(error_of([&] { lr_kind_from_string("linear"); }).find("expected constant, step, multistep or cosine"),
            std::string::npos);
  EXPECT_EQ(lr_kind_from_string("cosine"), LrKind::cosine);
  EXPECT_EQ(lr_unit_from_string("iteration"), LrUnit::iteration);
  EXPECT_STREQ(lr_kind_name(LrKind::multistep), "multistep");
  // Groups added after the schedule was made are reported.
  Variable c(Tensor::zeros({1}), true);
  t.opt.add_param_group(SgdOptions{}.group({c}));
  EXPECT_NE(error_of([&] { s.set_epoch(0); }).find("3 parameter groups but the schedule was made for 2"),
            std::string::npos);
}

}  // namespace
}  // namespace lowbit::optim
