#include "optim/optimizer.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <set>
#include <string_view>

namespace lowbit::optim {

namespace {

std::string param_name(size_t g, size_t i) { return "group" + std::to_string(g) + ".param" + std::to_string(i); }

// Parses "<prefix><digits>" at the front of s; advances s past it.
bool parse_index(std::string_view& s, std::string_view prefix, size_t& out) {
  if (s.substr(0, prefix.size()) != prefix) return false;
  s.remove_prefix(prefix.size());
  size_t n = 0;
  while (n < s.size() && s[n] >= '0' && s[n] <= '9') ++n;
  if (n == 0 || n > 9) return false;
  out = static_cast<size_t>(std::strtoul(std::string(s.substr(0, n)).c_str(), nullptr, 10));
  s.remove_prefix(n);
  return true;
}

// "group<G>.param<I>.<key>" -> (G, I, key).
bool parse_state_name(const std::string& name, size_t& g, size_t& i, std::string& key) {
  std::string_view s(name);
  if (!parse_index(s, "group", g) || s.substr(0, 1) != ".") return false;
  s.remove_prefix(1);
  if (!parse_index(s, "param", i) || s.substr(0, 1) != ".") return false;
  s.remove_prefix(1);
  if (s.empty()) return false;
  key = std::string(s);
  return true;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "(none)" : out;
}

}  // namespace

Optimizer::Optimizer(std::vector<ParamGroup> groups) : groups_(std::move(groups)) {
  LB_CHECK(!groups_.empty(), "optimizer: no parameter groups given");
  std::set<const VariableImpl*> seen;
  for (size_t g = 0; g < groups_.size(); ++g) {
    check_params(groups_[g], g);
    for (size_t i = 0; i < groups_[g].params.size(); ++i) {
      bool fresh = seen.insert(groups_[g].params[i].impl().get()).second;
      LB_CHECK(fresh, "optimizer: ", param_name(g, i), " appears more than once in the parameter groups");
    }
  }
  sync_state_sizes();
}

void Optimizer::check_params(const ParamGroup& grp, size_t g) const {
  for (size_t i = 0; i < grp.params.size(); ++i) {
    const Variable& p = grp.params[i];
    LB_CHECK(p.defined(), "optimizer: ", param_name(g, i), " is an undefined Variable");
    const Tensor& d = p.data();
    LB_CHECK(d.defined(), "optimizer: ", param_name(g, i), " has no data");
    LB_CHECK(d.dtype() == DType::f32, "optimizer: ", param_name(g, i), " is ", dtype_name(d.dtype()),
             " (only float32 parameters can be optimized)");
    LB_CHECK(d.device() == Device::cpu, "optimizer: ", param_name(g, i), " is on ", device_name(d.device()),
             " (the optimizers run on CPU tensors)");
    LB_CHECK(d.is_contiguous(), "optimizer: ", param_name(g, i), " ", d.str(), " is not contiguous");
  }
}

void Optimizer::check_groups() const {
  for (const auto& g : groups_) check_group(g);
}

void Optimizer::sync_state_sizes() {
  state_.resize(groups_.size());
  for (size_t g = 0; g < groups_.size(); ++g) state_[g].resize(groups_[g].params.size());
}

const ParamGroup& Optimizer::group(size_t g) const {
  LB_CHECK(g < groups_.size(), "optimizer: group ", g, " out of range (", groups_.size(), " groups)");
  return groups_[g];
}

ParamGroup& Optimizer::group(size_t g) {
  LB_CHECK(g < groups_.size(), "optimizer: group ", g, " out of range (", groups_.size(), " groups)");
  return groups_[g];
}

void Optimizer::add_param_group(ParamGroup grp) {
  check_group(grp);
  check_params(grp, groups_.size());
  std::set<const VariableImpl*> seen;
  for (const auto& g : groups_)
    for (const auto& p : g.params) seen.insert(p.impl().get());
  for (size_t i = 0; i < grp.params.size(); ++i) {
    bool fresh = seen.insert(grp.params[i].impl().get()).second;
    LB_CHECK(fresh, name(), ": ", param_name(groups_.size(), i), " of the added group is already optimized");
  }
  groups_.push_back(std::move(grp));
  sync_state_sizes();
}

void Optimizer::set_lr(size_t g, double lr) {
  LB_CHECK(lr >= 0.0, name(), ": invalid learning rate ", lr, " for group ", g, " (must be >= 0)");
  group(g).lr = lr;
}

void Optimizer::set_lr(double lr) {
  for (size_t g = 0; g < groups_.size(); ++g) set_lr(g, lr);
}

void Optimizer::zero_grad() {
  for (auto& g : groups_)
    for (auto& p : g.params) p.clear_grad();
}

Tensor& Optimizer::buffer_or_zeros(ParamState& st, const std::string& key, const Tensor& param) {
  auto it = st.buffers.find(key);
  if (it == st.buffers.end()) it = st.buffers.emplace(key, Tensor::zeros(param.shape())).first;
  LB_CHECK(it->second.shape() == param.shape(), "optimizer: state '", key, "' has shape ", it->second.shape().str(),
           " but its parameter is ", param.shape().str(), " (was the parameter replaced?)");
  return it->second;
}

void Optimizer::step() {
  check_groups();
  sync_state_sizes();
  for (size_t g = 0; g < groups_.size(); ++g) {
    const ParamGroup& grp = groups_[g];
    check_params(grp, g);
    for (size_t i = 0; i < grp.params.size(); ++i) {
      Variable p = grp.params[i];
      if (!p.grad().defined()) continue;
      const Tensor& grad = p.grad();
      LB_CHECK(grad.dtype() == DType::f32 && grad.device() == Device::cpu, name(), ": gradient of ", param_name(g, i),
               " is ", grad.str(), " on ", device_name(grad.device()), " (expected float32 on cpu)");
      LB_CHECK(grad.shape() == p.data().shape(), name(), ": gradient of ", param_name(g, i), " has shape ",
               grad.shape().str(), " but the parameter is ", p.data().shape().str());
      Tensor gc = grad.contiguous();
      ParamState& st = state_[g][i];
      ++st.step;
      update(grp, p.data(), gc, st);
    }
  }
}

StateList Optimizer::state_tensors() const {
  StateList out;
  for (size_t g = 0; g < state_.size(); ++g) {
    for (size_t i = 0; i < state_[g].size(); ++i) {
      const ParamState& st = state_[g][i];
      if (st.step == 0 && st.buffers.empty()) continue;
      std::string base = param_name(g, i) + ".";
      for (const auto& [key, t] : st.buffers) out.emplace_back(base + key, t.clone());
      LB_CHECK(st.step <= INT32_MAX, name(), ": step count ", st.step, " of ", param_name(g, i), " exceeds int32");
      Tensor step = Tensor::empty(Shape{1}, DType::s32);
      step.data<int32_t>()[0] = static_cast<int32_t>(st.step);
      out.emplace_back(base + "step", step);
    }
  }
  return out;
}

void Optimizer::load_state(const StateList& state) {
  std::vector<std::vector<ParamState>> fresh(groups_.size());
  std::vector<std::vector<std::set<std::string>>> present(groups_.size());
  for (size_t g = 0; g < groups_.size(); ++g) {
    fresh[g].resize(groups_[g].params.size());
    present[g].resize(groups_[g].params.size());
  }
  const char* who = name();
  for (const auto& [full, t] : state) {
    size_t g = 0, i = 0;
    std::string key;
    LB_CHECK(parse_state_name(full, g, i, key), who, " load_state: malformed state name '", full,
             "' (expected group<G>.param<I>.<key>)");
    LB_CHECK(g < groups_.size(), who, " load_state: '", full, "' names group ", g, " but the optimizer has ",
             groups_.size(), " groups");
    LB_CHECK(i < groups_[g].params.size(), who, " load_state: '", full, "' names param ", i, " but group ", g,
             " has ", groups_[g].params.size(), " parameters");
    LB_CHECK(t.defined(), who, " load_state: '", full, "' is an undefined tensor");
    std::vector<std::string> keys = buffer_names(groups_[g]);
    bool known = key == "step" || std::find(keys.begin(), keys.end(), key) != keys.end();
    LB_CHECK(known, who, " load_state: unknown state '", full, "' (keys for group ", g, " are step, ", join(keys), ")");
    LB_CHECK(present[g][i].insert(key).second, who, " load_state: duplicate entry '", full, "'");
    ParamState& st = fresh[g][i];
    if (key == "step") {
      LB_CHECK(t.dtype() == DType::s32 && t.numel() == 1, who, " load_state: '", full, "' must be one int32, got ", t.str());
      int32_t v = t.contiguous().data<int32_t>()[0];
      LB_CHECK(v >= 0, who, " load_state: '", full, "' is negative (", v, ")");
      st.step = v;
    } else {
      const Shape& want = groups_[g].params[i].data().shape();
      LB_CHECK(t.dtype() == DType::f32, who, " load_state: '", full, "' must be float32, got ", t.str());
      LB_CHECK(t.shape() == want, who, " load_state: '", full, "' has shape ", t.shape().str(), " but ",
               param_name(g, i), " is ", want.str());
      st.buffers[key] = t.clone();
    }
  }
  // Each parameter has either no state or all of it.
  for (size_t g = 0; g < groups_.size(); ++g) {
    std::vector<std::string> keys = buffer_names(groups_[g]);
    keys.push_back("step");
    for (size_t i = 0; i < present[g].size(); ++i) {
      if (present[g][i].empty()) continue;
      for (const auto& k : keys)
        LB_CHECK(present[g][i].count(k), who, " load_state: state of ", param_name(g, i), " is incomplete: '", k,
                 "' is missing (expected ", join(keys), ")");
    }
  }
  state_ = std::move(fresh);
}

}  // namespace lowbit::optim
