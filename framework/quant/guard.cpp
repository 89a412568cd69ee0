#include "quant/guard.h"

#include <cmath>
#include <map>
#include <sstream>

#include "core/error.h"
#include "quant/quantizer.h"

namespace lowbit::quant {

bool all_finite(const Tensor& t) {
  if (!t.defined() || t.dtype() != DType::f32) return true;
  const Tensor c = t.contiguous();
  const float* p = c.f32();
  const int64_t n = c.numel();
  float acc = 0.f;  // x - x is NaN exactly for NaN and +-Inf
  for (int64_t i = 0; i < n; ++i) acc += p[i] - p[i];
  return acc == 0.f;
}

namespace {

int64_t first_bad(const Tensor& t) {
  const Tensor c = t.contiguous();
  for (int64_t i = 0; i < c.numel(); ++i)
    if (!std::isfinite(c.f32()[i])) return i;
  return -1;
}

std::string values_str(const Tensor& t, int64_t max_n = 8) {
  if (!t.defined()) return "-";
  const Tensor c = t.contiguous();
  std::ostringstream os;
  os << "[";
  for (int64_t i = 0; i < c.numel() && i < max_n; ++i) os << (i ? ", " : "") << c.f32()[i];
  if (c.numel() > max_n) os << ", ...";
  os << "]";
  return os.str();
}

std::string layer_of(const std::string& name) {
  const size_t dot = name.find('.');
  return dot == std::string::npos ? name : name.substr(0, dot);
}

}  // namespace

std::string describe_parameter(nn::Module& model, const std::string& name) {
  std::map<std::string, nn::Module*> mods;
  for (auto& [n, m] : model.named_modules()) mods[n] = m;
  const std::string layer = layer_of(name);
  std::string out = "layer " + layer;
  auto lit = mods.find(layer);
  if (lit != mods.end()) out += " (" + lit->second->type_name() + ")";
  // The innermost quantizer module whose name prefixes the parameter.
  std::string prefix = name;
  while (true) {
    const size_t dot = prefix.rfind('.');
    if (dot == std::string::npos) break;
    prefix = prefix.substr(0, dot);
    auto it = mods.find(prefix);
    if (it != mods.end())
      if (auto* q = dynamic_cast<Quantizer*>(it->second)) return out + ", " + q->describe();
  }
  if (lit != mods.end()) {
    std::string qs;
    for (auto& [qn, q] : quantizers_of(*lit->second)) {
      (void)qn;
      qs += (qs.empty() ? "" : ", ") + q->describe();
    }
    out += qs.empty() ? ", not quantized" : ", " + qs;
  }
  return out;
}

std::string check_gradients(nn::Module& model) {
  for (auto& [name, p] : model.named_parameters()) {
    if (!p.grad().defined() || all_finite(p.grad())) continue;
    const int64_t i = first_bad(p.grad());
    std::ostringstream os;
    os << "the gradient of " << name << " is " << p.grad().contiguous().f32()[i] << " at element " << i << " ("
       << describe_parameter(model, name) << ")";
    return os.str();
  }
  return "";
}

std::string check_quantizer_state(nn::Module& model) {
  for (auto& [qname, q] : quantizers_of(model)) {
    for (auto& [pname, p] : q->named_parameters(qname)) {
      if (all_finite(p.data())) continue;
      return pname + " = " + values_str(p.data()) + " (" + describe_parameter(model, pname) + ")";
    }
    for (auto& [bname, b] : q->named_buffers(qname)) {
      if (all_finite(*b)) continue;
      return bname + " = " + values_str(*b) + " (" + describe_parameter(model, bname) + ")";
    }
  }
  return "";
}

std::string locate_nonfinite(nn::Graph& model, const Tensor& x) {
  NoGradGuard ng;
  if (!all_finite(x)) return "the input batch itself holds NaN/Inf";
  const auto& nodes = model.nodes();
  std::vector<Variable> outs(nodes.size());
  std::vector<Variable> args;
  for (size_t k = 0; k < nodes.size(); ++k) {
    const nn::GraphNode& n = nodes[k];
    args.clear();
    for (int i : n.inputs) args.push_back(i < 0 ? Variable(x) : outs[i]);
    const std::string where = "layer " + n.name + " (" + n.module->type_name() + ")";
    try {
      outs[k] = n.module->multi_input() ? n.module->forward_multi(args) : n.module->forward(args[0]);
    } catch (const Error& e) {
      return where + ": " + e.what();
    }
    if (all_finite(outs[k].data())) continue;
    std::string msg = where + " is the first to output NaN/Inf (its inputs are finite)";
    for (auto& [pname, p] : n.module->named_parameters(n.name))
      if (!all_finite(p.data())) msg += "; parameter " + pname + " holds NaN/Inf";
    for (auto& [qname, q] : quantizers_of(*n.module)) {
      (void)qname;
      const QuantMeta& m = q->meta();
      msg += "; " + q->describe() + ": scale " + values_str(m.scale) + (all_finite(m.scale) ? "" : " (not finite)");
    }
    return msg;
  }
  return "";
}

}  // namespace lowbit::quant
