#include "quant/bn_fold.h"

#include <cmath>

#include "core/error.h"
#include "quant/quant_layers.h"
#include "quant/quant_meta.h"

namespace lowbit::quant {

namespace {

// Copies every parameter and buffer of `from` into the same-named ones of `to`.
void copy_state(nn::Module& from, nn::Module& to) {
  auto to_params = to.named_parameters();
  for (auto& [n, p] : from.named_parameters())
    for (auto& [m, q] : to_params)
      if (m == n && q.shape() == p.shape()) q.data().copy_from(p.data());
  auto to_bufs = to.named_buffers();
  for (auto& [n, b] : from.named_buffers())
    for (auto& [m, q] : to_bufs)
      if (m == n && q->shape() == b->shape() && q->dtype() == b->dtype()) q->copy_from(*b);
}

// A float conv2d/linear like `f` but with a bias, holding weight w and bias b.
std::shared_ptr<nn::Module> float_with(nn::Module& f, const Tensor& w, const Tensor& b) {
  Rng rng(0);
  std::shared_ptr<nn::Module> out;
  if (auto* c = dynamic_cast<nn::Conv2d*>(&f)) {
    nn::Conv2dOptions o = c->options();
    o.bias = true;
    auto n = std::make_shared<nn::Conv2d>(o, rng);
    n->weight().data().copy_from(w);
    n->bias().data().copy_from(b);
    out = n;
  } else {
    auto& l = dynamic_cast<nn::Linear&>(f);
    nn::LinearOptions o = l.options();
    o.bias = true;
    auto n = std::make_shared<nn::Linear>(o, rng);
    n->weight().data().copy_from(w);
    n->bias().data().copy_from(b);
    out = n;
  }
  out->train(f.training());
  return out;
}

// W * g / sqrt(v + eps) and (b - m) * g / sqrt(v + eps) + beta, in the order the QAT fold uses.
void fold_values(const Tensor& w, const Tensor& bias, nn::BatchNorm2d& bn, Tensor& w_out, Tensor& b_out) {
  FoldableBatchNorm fb(bn);
  const int64_t c = bn.options().num_features;
  const float eps = bn.options().eps;
  const Tensor& mean = fb.running_mean();
  const Tensor& var = fb.running_var();
  Variable g = fb.gamma(), beta = fb.beta();
  const Tensor wc = w.contiguous();
  w_out = Tensor::empty(wc.shape());
  b_out = Tensor::empty({c});
  const int64_t inner = wc.numel() / c;
  for (int64_t k = 0; k < c; ++k) {
    const float inv = 1.f / std::sqrt(var.f32()[k] + eps);
    const float f = g.defined() ? g.data().f32()[k] * inv : inv;
    for (int64_t i = k * inner; i < (k + 1) * inner; ++i) w_out.f32()[i] = wc.f32()[i] * f;
    const float centered = (bias.defined() ? bias.contiguous().f32()[k] : 0.f) + (-mean.f32()[k]);
    const float shifted = centered * f;
    b_out.f32()[k] = beta.defined() ? beta.data().f32()[k] + shifted : shifted;
  }
}

std::shared_ptr<nn::Module> identity() {
  nn::ActivationOptions o;
  o.kind = nn::ActivationKind::identity;
  return std::make_shared<nn::Activation>(o);
}

}  // namespace

int merge_batchnorm(nn::Graph& model) {
  NoGradGuard ng;
  const auto& nodes = model.nodes();
  std::vector<int> readers(nodes.size(), 0);
  for (const auto& n : nodes)
    for (int i : n.inputs)
      if (i >= 0) ++readers[i];
  int merged = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    auto* bn = dynamic_cast<nn::BatchNorm2d*>(nodes[i].module.get());
    if (!bn || nodes[i].inputs.size() != 1 || nodes[i].inputs[0] < 0) continue;
    const int src = nodes[i].inputs[0];
    nn::Module* layer = nodes[src].module.get();
    auto* qw = dynamic_cast<QuantWeightLayer*>(layer);
    const bool attached = qw && qw->batchnorm() == bn;
    if (!attached && readers[src] != 1) continue;
    if (qw && qw->batchnorm() && !attached) continue;
    Tensor w, b;
    if (qw) {
      w = qw->weight().data();
      b = qw->bias().defined() ? qw->bias().data() : Tensor();
    } else if (auto* c = dynamic_cast<nn::Conv2d*>(layer)) {
      w = c->weight().data();
      b = c->bias().defined() ? c->bias().data() : Tensor();
    } else if (auto* l = dynamic_cast<nn::Linear*>(layer)) {
      w = l->weight().data();
      b = l->bias().defined() ? l->bias().data() : Tensor();
    } else {
      continue;
    }
    LB_CHECK(bn->options().num_features == w.size(0), "merge_batchnorm: ", nodes[i].name, " has ",
             bn->options().num_features, " features but ", nodes[src].name, " has ", w.size(0), " outputs");
    Tensor wf, bf;
    fold_values(w, b, *bn, wf, bf);
    std::shared_ptr<nn::Module> fresh = float_with(qw ? qw->float_layer() : *layer, wf, bf);
    if (qw) {
      std::optional<QuantizerConfig> bias_cfg;
      if (qw->bias_quant()) bias_cfg = qw->bias_quant()->config();
      auto nq = std::make_shared<QuantWeightLayer>(fresh, qw->weight_quant().config(), bias_cfg);
      copy_state(qw->weight_quant(), nq->weight_quant());
      if (qw->bias_quant() && nq->bias_quant()) copy_state(*qw->bias_quant(), *nq->bias_quant());
      nq->set_accumulator(qw->accumulator());
      nq->train(qw->training());
      model.replace(src, nq);
    } else {
      model.replace(src, fresh);
    }
    auto id = identity();
    id->train(bn->training());
    model.replace(static_cast<int>(i), id);
    ++merged;
  }
  assign_quantizer_paths(model);
  connect_meta_sources(model);
  return merged;
}

int convert_batchnorm_to_scale_bias(nn::Graph& model, const std::optional<QuantizerConfig>& weight_quant,
                                    const std::optional<QuantizerConfig>& output_quant) {
  NoGradGuard ng;
  int n = 0;
  for (size_t i = 0; i < model.nodes().size(); ++i) {
    auto* bn = dynamic_cast<nn::BatchNorm2d*>(model.nodes()[i].module.get());
    if (!bn) continue;
    if (auto* fb = dynamic_cast<FoldableBatchNorm*>(bn))
      LB_CHECK(!fb->folded(), "batch norm ", model.nodes()[i].name, " is folded into its conv: merge it (merge_batchnorm)");
    model.replace(static_cast<int>(i), batchnorm_to_scale_bias(*bn, weight_quant, output_quant));
    ++n;
  }
  assign_quantizer_paths(model);
  connect_meta_sources(model);
  return n;
}

}  // namespace lowbit::quant
