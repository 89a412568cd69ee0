#include "quant/qat.h"

#include <sstream>

#include "quant/qat_ops.h"
#include "quant/quant_layers.h"

namespace lowbit::quant {

WeightBits weight_bits(nn::Graph& model) {
  WeightBits out;
  for (const auto& n : model.nodes()) {
    LayerBits lb;
    lb.layer = n.name;
    if (auto* q = dynamic_cast<QuantWeightLayer*>(n.module.get())) {
      lb.weights = q->weight().numel();
      lb.bits = q->weight_quant().current_bits();
    } else if (auto* c = dynamic_cast<nn::Conv2d*>(n.module.get())) {
      lb.weights = c->weight().numel();
    } else if (auto* l = dynamic_cast<nn::Linear*>(n.module.get())) {
      lb.weights = l->weight().numel();
    } else {
      continue;
    }
    out.weights += lb.weights;
    out.total_bits += lb.weights * lb.bits;
    out.layers.push_back(lb);
  }
  return out;
}

Variable weight_bit_cost(nn::Graph& model) {
  int64_t total = 0;
  bool any_learned = false;
  for (const auto& n : model.nodes())
    if (auto* q = dynamic_cast<QuantWeightLayer*>(n.module.get())) {
      total += q->weight().numel();
      any_learned = any_learned || q->weight_quant().config().learned_bits;
    }
  if (!any_learned || total == 0) return Variable();
  Variable cost;
  double fixed = 0;
  for (const auto& n : model.nodes()) {
    auto* q = dynamic_cast<QuantWeightLayer*>(n.module.get());
    if (!q) continue;
    const float share = static_cast<float>(static_cast<double>(q->weight().numel()) / static_cast<double>(total));
    const Variable& bv = q->weight_quant().bits_variable();
    if (q->weight_quant().config().learned_bits && bv.defined()) {
      Variable term = affine(bv, share, 0.f);
      cost = cost.defined() ? ops::add(cost, term) : term;
    } else {
      fixed += static_cast<double>(share) * q->weight_quant().current_bits();
    }
  }
  if (!cost.defined()) return Variable();
  return affine(cost, 1.f, static_cast<float>(fixed));
}

std::string weight_bits_summary(const WeightBits& b) {
  std::ostringstream os;
  for (size_t i = 0; i < b.layers.size(); ++i) os << (i ? ", " : "") << b.layers[i].layer << " " << b.layers[i].bits;
  os << " = " << b.total_bits << " bits over " << b.weights << " weights";
  return os.str();
}

}  // namespace lowbit::quant
