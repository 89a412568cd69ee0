// Optimizers against torch.optim (1.13, foreach=False): SGD, Adam, AdamW, parameter groups,
// skipped gradients, argument errors, and checkpoint state round trips.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <iostream>
#include <memory>

#include "core/threads.h"
#include "optim/adam.h"
#include "optim/sgd.h"
#include "util/gradcheck.h"
#include "util/torch_oracle.h"

namespace lowbit::optim {
namespace {

using testing::max_abs_diff;
using testing::max_rel_diff;
using testing::random_tensor;

constexpr int kSteps = 10;
// Steps at which one parameter gets no gradient (zero_grad leaves it undefined): step -> param.
constexpr int kSkipStep0 = 3, kSkipParam0 = 1;
constexpr int kSkipStep1 = 6, kSkipParam1 = 0;

bool skipped(int step, int param) {
  return (step == kSkipStep0 && param == kSkipParam0) || (step == kSkipStep1 && param == kSkipParam1);
}

// Two parameters, [4, 5] and [7], and kSteps fixed gradients for each ([kSteps, ...shape]).
struct Problem {
  Tensor p0, p1, g0, g1;
  Problem() {
    Rng rng(1234);
    p0 = random_tensor({4, 5}, rng);
    p1 = random_tensor({7}, rng, -2.f, 2.f);
    g0 = random_tensor({kSteps, 4, 5}, rng);
    g1 = random_tensor({kSteps, 7}, rng, -0.5f, 3.f);
  }
  Tensor grad(int param, int step) const {
    const Tensor& g = param == 0 ? g0 : g1;
    const Tensor& p = param == 0 ? p0 : p1;
    return g.slice0(step, step + 1).reshape(p.shape()).clone();
  }
};

using Factory = std::function<std::unique_ptr<Optimizer>(Variable, Variable)>;

struct Case {
  std::string name;
  std::string torch_make;  // Python lambda body over p0, p1 returning a torch optimizer
  Factory make;
  std::vector<std::string> keys;  // state buffers to compare
  std::vector<std::string> prefix = {"group0.param0", "group0.param1"};  // state name of p0, p1
};

// Applies steps [from, to) of the problem's gradients.
void run_steps(Optimizer& opt, std::vector<Variable>& ps, const Problem& pr, int from, int to) {
  for (int k = from; k < to; ++k) {
    opt.zero_grad();
    for (int j = 0; j < 2; ++j)
      if (!skipped(k, j)) ps[j].grad() = pr.grad(j, k);
    opt.step();
  }
}

Tensor find_state(const StateList& st, const std::string& name) {
  for (const auto& [n, t] : st)
    if (n == name) return t;
  return Tensor();
}

// Runs every case here and in torch (one Python process) and compares parameters and state.
void compare_with_torch(const std::vector<Case>& cases) {
  Problem pr;
  std::string script = R"PY(
P0, P1, G0, G1 = load('p0'), load('p1'), load('g0'), load('g1')
SKIP = {)PY" + std::to_string(kSkipStep0) + ": " + std::to_string(kSkipParam0) + ", " +
                       std::to_string(kSkipStep1) + ": " + std::to_string(kSkipParam1) + R"PY(}
def run(name, make, keys):
    p0 = P0.clone().requires_grad_(True)
    p1 = P1.clone().requires_grad_(True)
    opt = make(p0, p1)
    for k in range()PY" + std::to_string(kSteps) + R"PY():
        opt.zero_grad(set_to_none=True)
        if SKIP.get(k) != 0: p0.grad = G0[k].clone()
        if SKIP.get(k) != 1: p1.grad = G1[k].clone()
        opt.step()
    for j, p in enumerate((p0, p1)):
        save(f'{name}_p{j}', p)
        st = opt.state[p]
        for key in keys: save(f'{name}_p{j}_{key}', st[key])
        save(f'{name}_p{j}_step', torch.tensor([float(st['step']) if 'step' in st else -1.0]))
)PY";
  std::vector<std::string> outputs;
  for (const auto& c : cases) {
    script += "run('" + c.name + "', lambda p0, p1: " + c.torch_make + ", [";
    for (const auto& k : c.keys) script += "'" + k + "', ";
    script += "])\n";
    for (int j = 0; j < 2; ++j) {
      std::string base = c.name + "_p" + std::to_string(j);
      outputs.push_back(base);
      outputs.push_back(base + "_step");
      for (const auto& k : c.keys) outputs.push_back(base + "_" + k);
    }
  }
  auto ref = testing::run_torch(script, {{"p0", pr.p0}, {"p1", pr.p1}, {"g0", pr.g0}, {"g1", pr.g1}}, outputs);

  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<Variable> ps = {Variable(pr.p0.clone(), true), Variable(pr.p1.clone(), true)};
    auto opt = c.make(ps[0], ps[1]);
    run_steps(*opt, ps, pr, 0, kSteps);
    StateList st = opt->state_tensors();
    float worst = 0.f;
    for (int j = 0; j < 2; ++j) {
      std::string base = c.name + "_p" + std::to_string(j);
      float d = max_rel_diff(ps[j].data(), ref.at(base));
      worst = std::max(worst, d);
      EXPECT_LE(d, 1e-6f) << base;
      for (const auto& k : c.keys) {
        Tensor mine = find_state(st, c.prefix[j] + "." + k);
        ASSERT_TRUE(mine.defined()) << "no state " << c.prefix[j] << "." << k;
        float ds = max_rel_diff(mine, ref.at(base + "_" + k));
        worst = std::max(worst, ds);
        EXPECT_LE(ds, 1e-6f) << base << " " << k;
      }
      // torch keeps a step count only for Adam-like optimizers.
      float torch_step = ref.at(base + "_step").f32()[0];
      if (torch_step >= 0) {
        Tensor step = find_state(st, c.prefix[j] + ".step");
        ASSERT_TRUE(step.defined());
        EXPECT_EQ(step.data<int32_t>()[0], static_cast<int32_t>(torch_step)) << base;
      }
    }
    std::cout << "[ torch    ] " << c.name << ": max rel diff " << worst << "\n";
  }
}

template <class O, class Opt>
Factory one_group(const Opt& o) {
  return [o](Variable a, Variable b) { return std::make_unique<O>(std::vector<Variable>{a, b}, o); };
}

TEST(Optim, SgdMatchesTorch) {
  LB_REQUIRE_TORCH();
  compare_with_torch({
      {"sgd_plain", "torch.optim.SGD([p0, p1], lr=0.1, foreach=False)", one_group<SGD>(SgdOptions{.lr = 0.1}), {}},
      {"sgd_wd", "torch.optim.SGD([p0, p1], lr=0.1, weight_decay=0.01, foreach=False)",
       one_group<SGD>(SgdOptions{.lr = 0.1, .weight_decay = 0.01}), {}},
      {"sgd_momentum", "torch.optim.SGD([p0, p1], lr=0.1, momentum=0.9, weight_decay=5e-4, foreach=False)",
       one_group<SGD>(SgdOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4}), {"momentum_buffer"}},
      {"sgd_dampening", "torch.optim.SGD([p0, p1], lr=0.05, momentum=0.8, dampening=0.3, foreach=False)",
       one_group<SGD>(SgdOptions{.lr = 0.05, .momentum = 0.8, .dampening = 0.3}), {"momentum_buffer"}},
      {"sgd_nesterov", "torch.optim.SGD([p0, p1], lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True, foreach=False)",
       one_group<SGD>(SgdOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4, .nesterov = true}),
       {"momentum_buffer"}},
  });
}

TEST(Optim, AdamMatchesTorch) {
  LB_REQUIRE_TORCH();
  compare_with_torch({
      {"adam", "torch.optim.Adam([p0, p1], lr=0.01, foreach=False)", one_group<Adam>(AdamOptions{.lr = 0.01}),
       {"exp_avg", "exp_avg_sq"}},
      {"adam_wd", "torch.optim.Adam([p0, p1], lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05, foreach=False)",
       one_group<Adam>(AdamOptions{.lr = 0.01, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-6, .weight_decay = 0.05}),
       {"exp_avg", "exp_avg_sq"}},
      {"adam_amsgrad", "torch.optim.Adam([p0, p1], lr=0.02, weight_decay=1e-3, amsgrad=True, foreach=False)",
       one_group<Adam>(AdamOptions{.lr = 0.02, .weight_decay = 1e-3, .amsgrad = true}),
       {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}},
  });
}

TEST(Optim, AdamWMatchesTorch) {
  LB_REQUIRE_TORCH();
  compare_with_torch({
      {"adamw", "torch.optim.AdamW([p0, p1], lr=0.01, foreach=False)",
       one_group<AdamW>(AdamOptions{.lr = 0.01, .weight_decay = 1e-2}), {"exp_avg", "exp_avg_sq"}},
      {"adamw_wd", "torch.optim.AdamW([p0, p1], lr=0.03, weight_decay=0.1, betas=(0.85, 0.995), foreach=False)",
       one_group<AdamW>(AdamOptions{.lr = 0.03, .beta1 = 0.85, .beta2 = 0.995, .weight_decay = 0.1}),
       {"exp_avg", "exp_avg_sq"}},
      {"adamw_amsgrad", "torch.optim.AdamW([p0, p1], lr=0.01, weight_decay=0.02, amsgrad=True, foreach=False)",
       one_group<AdamW>(AdamOptions{.lr = 0.01, .weight_decay = 0.02, .amsgrad = true}),
       {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}},
  });
}

TEST(Optim, ParamGroupsMatchTorch) {
  LB_REQUIRE_TORCH();
  const std::vector<std::string> two_groups = {"group0.param0", "group1.param0"};
  compare_with_torch({
      {"sgd_groups",
       "torch.optim.SGD([{'params': [p0], 'lr': 0.05, 'weight_decay': 1e-3}, {'params': [p1]}], lr=0.1, "
       "momentum=0.9, foreach=False)",
       [](Variable a, Variable b) {
         SgdOptions o{.lr = 0.1, .momentum = 0.9};
         ParamGroup g0 = o.group({a});
         g0.lr = 0.05;
         g0.weight_decay = 1e-3;
         return std::make_unique<SGD>(std::vector<ParamGroup>{g0, o.group({b})});
       },
       {"momentum_buffer"},
       two_groups},
      {"adam_groups",
       "torch.optim.Adam([{'params': [p0]}, {'params': [p1], 'lr': 0.003, 'weight_decay': 0.1, 'betas': (0.5, 0.9)}], "
       "lr=0.01, foreach=False)",
       [](Variable a, Variable b) {
         return std::make_unique<Adam>(std::vector<ParamGroup>{
             AdamOptions{.lr = 0.01}.group({a}),
             AdamOptions{.lr = 0.003, .beta1 = 0.5, .beta2 = 0.9, .weight_decay = 0.1}.group({b})});
       },
       {"exp_avg", "exp_avg_sq"},
       two_groups},
      {"adamw_groups",
       "torch.optim.AdamW([{'params': [p0], 'weight_decay': 0.0}, {'params': [p1], 'lr': 0.02}], lr=0.01, "
       "weight_decay=0.05, foreach=False)",
       [](Variable a, Variable b) {
         return std::make_unique<AdamW>(
             std::vector<ParamGroup>{AdamOptions{.lr = 0.01, .weight_decay = 0.0}.group({a}),
                                     AdamOptions{.lr = 0.02, .weight_decay = 0.05}.group({b})});
       },
       {"exp_avg", "exp_avg_sq"},
       two_groups},
  });
}

// ---- behaviour without torch ----

TEST(Optim, ZeroGradAndSkippedParams) {
  Variable a(Tensor::full({3}, 1.f), true), b(Tensor::full({2}, 1.f), true);
  Adam opt({a, b}, AdamOptions{.lr = 0.1});
  a.grad() = Tensor::full({3}, 1.f);
  opt.step();  // b has no gradient: untouched, no state
  EXPECT_LT(a.data().f32()[0], 1.f);
  EXPECT_EQ(b.data().f32()[0], 1.f);
  StateList st = opt.state_tensors();
  EXPECT_EQ(st.size(), 3u);  // exp_avg, exp_avg_sq, step of param0
  EXPECT_FALSE(find_state(st, "group0.param1.step").defined());
  opt.zero_grad();
  EXPECT_FALSE(a.grad().defined());
  EXPECT_FALSE(b.grad().defined());
  Tensor before = a.data().clone();
  opt.step();  // nothing has a gradient
  EXPECT_EQ(max_abs_diff(a.data(), before), 0.f);
  EXPECT_EQ(find_state(opt.state_tensors(), "group0.param0.step").data<int32_t>()[0], 1);
}

TEST(Optim, LrAccessors) {
  Variable a(Tensor::full({3}, 1.f), true), b(Tensor::full({2}, 1.f), true);
  SGD opt(std::vector<ParamGroup>{SgdOptions{.lr = 0.1}.group({a}), SgdOptions{.lr = 0.2}.group({b})});
  EXPECT_EQ(opt.num_groups(), 2u);
  EXPECT_DOUBLE_EQ(opt.lr(1), 0.2);
  opt.set_lr(1, 0.5);
  EXPECT_DOUBLE_EQ(opt.lr(1), 0.5);
  opt.set_lr(0.3);
  EXPECT_DOUBLE_EQ(opt.lr(0), 0.3);
  EXPECT_DOUBLE_EQ(opt.lr(1), 0.3);
  a.grad() = Tensor::full({3}, 1.f);
  opt.step();
  EXPECT_FLOAT_EQ(a.data().f32()[0], 0.7f);
  Variable c(Tensor::full({1}, 0.f), true);
  opt.add_param_group(SgdOptions{.lr = 1.0}.group({c}));
  EXPECT_EQ(opt.num_groups(), 3u);
  c.grad() = Tensor::full({1}, 2.f);
  opt.step();
  EXPECT_FLOAT_EQ(c.data().f32()[0], -2.f);
}

// Elementwise updates must not depend on the thread count (the OpenMP branch is taken above
// 65536 elements).
TEST(Optim, LargeTensorsIndependentOfThreads) {
  Rng rng(7);
  Tensor p = random_tensor({100003}, rng);
  std::vector<Tensor> grads;
  for (int k = 0; k < 3; ++k) grads.push_back(random_tensor({100003}, rng));
  auto run = [&](int threads, bool adam) {
    set_num_threads(threads);
    Variable v(p.clone(), true);
    std::unique_ptr<Optimizer> opt;
    if (adam) opt = std::make_unique<AdamW>(std::vector<Variable>{v}, AdamOptions{.lr = 0.01, .weight_decay = 0.1, .amsgrad = true});
    else opt = std::make_unique<SGD>(std::vector<Variable>{v}, SgdOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 1e-3, .nesterov = true});
    for (const auto& g : grads) {
      v.grad() = g.clone();
      opt->step();
    }
    return v.data();
  };
  const int saved = num_threads();
  for (bool adam : {false, true}) {
    Tensor one = run(1, adam), two = run(2, adam);
    EXPECT_EQ(max_abs_diff(one, two), 0.f) << (adam ? "AdamW" : "SGD");
    EXPECT_GT(max_abs_diff(one, p), 0.f);
  }
  set_num_threads(saved);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_ERROR(stmt, text)                                          \
  do {                                                                    \
    std::string msg_ = error_of([&] { stmt; });                           \
    EXPECT_NE(msg_.find(text), std::string::npos) << "error was: '" << msg_ << "'"; \
  } while (0)

TEST(Optim, BadArguments) {
  Variable a(Tensor::full({3}, 1.f), true);
  std::vector<Variable> ps = {a};
  EXPECT_ERROR(SGD(ps, SgdOptions{.lr = -0.1}), "SGD: invalid learning rate -0.1");
  EXPECT_ERROR(SGD(ps, SgdOptions{.lr = 0.1, .momentum = -0.5}), "SGD: invalid momentum -0.5");
  EXPECT_ERROR(SGD(ps, SgdOptions{.lr = 0.1, .weight_decay = -1}), "SGD: invalid weight_decay");
  EXPECT_ERROR(SGD(ps, SgdOptions{.lr = 0.1, .nesterov = true}), "nesterov momentum requires momentum > 0");
  EXPECT_ERROR(SGD(ps, SgdOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .nesterov = true}),
               "dampening == 0");
  EXPECT_ERROR(Adam(ps, AdamOptions{.lr = -1e-3}), "Adam: invalid learning rate");
  EXPECT_ERROR(Adam(ps, AdamOptions{.beta1 = 1.0}), "Adam: invalid beta1 1 (must be in [0, 1))");
  EXPECT_ERROR(Adam(ps, AdamOptions{.beta1 = -0.1}), "invalid beta1");
  EXPECT_ERROR(Adam(ps, AdamOptions{.beta2 = 1.5}), "Adam: invalid beta2 1.5");
  EXPECT_ERROR(Adam(ps, AdamOptions{.eps = -1e-8}), "Adam: invalid eps");
  EXPECT_ERROR(AdamW(ps, AdamOptions{.weight_decay = -0.01}), "AdamW: invalid weight_decay");
  EXPECT_ERROR(AdamW(ps, AdamOptions{.lr = std::nan("")}), "AdamW: invalid learning rate");
  // Parameters.
  EXPECT_ERROR(SGD(std::vector<ParamGroup>{}), "no parameter groups");
  EXPECT_ERROR(SGD(std::vector<Variable>{Variable()}, SgdOptions{}), "undefined Variable");
  EXPECT_ERROR(SGD(std::vector<Variable>{Variable(Tensor::zeros({2}, DType::s32))}, SgdOptions{}),
               "only float32 parameters");
  EXPECT_ERROR(SGD(std::vector<Variable>{a, a}, SgdOptions{}), "appears more than once");
  // Hyperparameters changed through group() are checked at step().
  SGD sgd(ps, SgdOptions{.lr = 0.1});
  a.grad() = Tensor::full({3}, 1.f);
  sgd.group(0).momentum = -1;
  EXPECT_ERROR(sgd.step(), "SGD: invalid momentum -1");
  sgd.group(0).momentum = 0;
  EXPECT_ERROR(sgd.set_lr(0, -1), "invalid learning rate");
  a.grad() = Tensor::full({4}, 1.f);
  EXPECT_ERROR(sgd.step(), "gradient of group0.param0 has shape [4] but the parameter is [3]");
}

// ---- checkpoint state ----

// Runs half the steps, moves the state to a fresh optimizer over copies of the parameters,
// and checks both continue identically.
void check_round_trip(const Factory& make) {
  Problem pr;
  std::vector<Variable> ps = {Variable(pr.p0.clone(), true), Variable(pr.p1.clone(), true)};
  auto opt = make(ps[0], ps[1]);
  run_steps(*opt, ps, pr, 0, kSteps / 2);
  std::vector<Variable> qs = {Variable(ps[0].data().clone(), true), Variable(ps[1].data().clone(), true)};
  auto copy = make(qs[0], qs[1]);
  StateList st = opt->state_tensors();
  ASSERT_FALSE(st.empty());
  copy->load_state(st);
  run_steps(*opt, ps, pr, kSteps / 2, kSteps);
  run_steps(*copy, qs, pr, kSteps / 2, kSteps);
  for (int j = 0; j < 2; ++j) EXPECT_EQ(max_abs_diff(ps[j].data(), qs[j].data()), 0.f) << "param " << j;
  StateList a = opt->state_tensors(), b = copy->state_tensors();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    if (a[i].second.dtype() == DType::f32) EXPECT_EQ(max_abs_diff(a[i].second, b[i].second), 0.f) << a[i].first;
    else EXPECT_EQ(a[i].second.data<int32_t>()[0], b[i].second.data<int32_t>()[0]) << a[i].first;
  }
  // Without the state the continuation differs (the test above is not vacuous).
  std::vector<Variable> rs = {Variable(qs[0].data().clone(), true), Variable(qs[1].data().clone(), true)};
  auto fresh = make(rs[0], rs[1]);
  run_steps(*fresh, rs, pr, kSteps / 2, kSteps);
  EXPECT_GT(max_abs_diff(rs[0].data(), ps[0].data()), 0.f);
}

TEST(OptimState, RoundTripSgd) {
  check_round_trip(one_group<SGD>(SgdOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4, .nesterov = true}));
}
TEST(OptimState, RoundTripAdam) {
  check_round_trip(one_group<Adam>(AdamOptions{.lr = 0.01, .weight_decay = 1e-3, .amsgrad = true}));
}
TEST(OptimState, RoundTripAdamW) {
  check_round_trip(one_group<AdamW>(AdamOptions{.lr = 0.01, .weight_decay = 0.05}));
}

TEST(OptimState, NamesAndErrors) {
  Problem pr;
  std::vector<Variable> ps = {Variable(pr.p0.clone(), true), Variable(pr.p1.clone(), true)};
  Adam opt(ps, AdamOptions{.lr = 0.01});
  run_steps(opt, ps, pr, 0, 2);
  StateList st = opt.state_tensors();
  std::vector<std::string> names;
  for (const auto& [n, t] : st) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"group0.param0.exp_avg", "group0.param0.exp_avg_sq", "group0.param0.step",
                                             "group0.param1.exp_avg", "group0.param1.exp_avg_sq", "group0.param1.step"}));
  EXPECT_EQ(find_state(st, "group0.param0.exp_avg").shape(), Shape({4, 5}));
  EXPECT_EQ(find_state(st, "group0.param0.step").data<int32_t>()[0], 2);

  auto with = [&](size_t i, std::string name, Tensor t) {
    StateList s = st;
    s[i] = {std::move(name), std::move(t)};
    return s;
  };
  Tensor before = find_state(opt.state_tensors(), "group0.param0.exp_avg");
  EXPECT_ERROR(opt.load_state(with(0, "group0.param0.momentum_buffer", st[0].second)),
               "unknown state 'group0.param0.momentum_buffer' (keys for group 0 are step, exp_avg, exp_avg_sq)");
  EXPECT_ERROR(opt.load_state(with(0, "group0.param0.exp_avg", Tensor::zeros({5, 4}))),
               "'group0.param0.exp_avg' has shape [5, 4] but group0.param0 is [4, 5]");
  EXPECT_ERROR(opt.load_state(with(0, "group1.param0.exp_avg", st[0].second)), "names group 1 but the optimizer has 1");
  EXPECT_ERROR(opt.load_state(with(0, "group0.param2.exp_avg", st[0].second)), "names param 2 but group 0 has 2");
  EXPECT_ERROR(opt.load_state(with(0, "group0.exp_avg", st[0].second)), "malformed state name 'group0.exp_avg'");
  EXPECT_ERROR(opt.load_state(with(0, "group0.param0.exp_avg_sq", st[1].second)), "duplicate entry");
  EXPECT_ERROR(opt.load_state(with(2, "group0.param0.step", Tensor::full({1}, 2.f))), "must be one int32");
  EXPECT_ERROR(opt.load_state(with(0, "group0.param0.exp_avg", Tensor::zeros({4, 5}, DType::s32))),
               "must be float32");
  StateList partial(st.begin() + 1, st.end());
  EXPECT_ERROR(opt.load_state(partial), "state of group0.param0 is incomplete: 'exp_avg' is missing");
  // Failed loads changed nothing.
  EXPECT_EQ(max_abs_diff(find_state(opt.state_tensors(), "group0.param0.exp_avg"), before), 0.f);
  // An empty state resets.
  opt.load_state({});
  EXPECT_TRUE(opt.state_tensors().empty());
  // amsgrad needs its extra buffer.
  Adam ams(ps, AdamOptions{.lr = 0.01, .amsgrad = true});
  EXPECT_ERROR(ams.load_state(st), "'max_exp_avg_sq' is missing");
}

}  // namespace
}  // namespace lowbit::optim
