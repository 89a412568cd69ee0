#include "quant/quant_layers.h"

#include <cmath>

#include "core/error.h"
#include "quant/qat_ops.h"
#include "quant/quant_meta.h"

namespace lowbit::quant {

namespace {

bool has_nonzero(const Tensor& t) {
  if (!t.defined()) return false;
  const Tensor c = t.contiguous();
  for (int64_t i = 0; i < c.numel(); ++i)
    if (c.f32()[i] != 0.f) return true;
  return false;
}

Tensor scale_product(const Tensor& a, const Tensor& b) {  // (1) x (C) -> (C), float32 products
  const int64_t n = std::max(a.numel(), b.numel());
  Tensor out = Tensor::empty({n});
  const Tensor ac = a.contiguous(), bc = b.contiguous();
  for (int64_t i = 0; i < n; ++i) out.f32()[i] = ac.f32()[a.numel() == 1 ? 0 : i] * bc.f32()[b.numel() == 1 ? 0 : i];
  return out;
}

std::string layer_of(const Quantizer& q) {
  const std::string& p = q.path();
  const size_t dot = p.find('.');
  return dot == std::string::npos ? std::string("?") : p.substr(0, dot);
}

}  // namespace

// ---- FoldableBatchNorm --------------------------------------------------------------------

FoldableBatchNorm::FoldableBatchNorm(nn::BatchNorm2d& src) : nn::BatchNorm2d(src.options(), src.one_d()) {
  training_ = src.training();
  auto mine = named_parameters();
  for (auto& [name, p] : src.named_parameters())
    for (auto& [n2, q] : mine)
      if (n2 == name) q.data().copy_from(p.data());
  auto my_bufs = named_buffers();
  for (auto& [name, b] : src.named_buffers())
    for (auto& [n2, q] : my_bufs)
      if (n2 == name) q->copy_from(*b);
}

Variable FoldableBatchNorm::gamma() {
  for (auto& [n, p] : named_parameters())
    if (n == "weight") return p;
  return Variable();
}

Variable FoldableBatchNorm::beta() {
  for (auto& [n, p] : named_parameters())
    if (n == "bias") return p;
  return Variable();
}

Tensor& FoldableBatchNorm::running_mean() {
  for (auto& [n, b] : named_buffers())
    if (n == "running_mean") return *b;
  LB_FAIL("batch norm without running_mean");
}

Tensor& FoldableBatchNorm::running_var() {
  for (auto& [n, b] : named_buffers())
    if (n == "running_var") return *b;
  LB_FAIL("batch norm without running_var");
}

// ---- QuantWeightLayer ---------------------------------------------------------------------

QuantWeightLayer::QuantWeightLayer(std::shared_ptr<nn::Module> float_layer, const QuantizerConfig& weight_quant,
                                   const std::optional<QuantizerConfig>& bias_quant)
    : float_(std::move(float_layer)) {
  conv_ = dynamic_cast<nn::Conv2d*>(float_.get());
  linear_ = dynamic_cast<nn::Linear*>(float_.get());
  LB_CHECK(conv_ || linear_, "weight quantization applies to conv2d and linear layers, not ", float_->type_name());
  weight_ = conv_ ? conv_->weight() : linear_->weight();
  bias_ = conv_ ? conv_->bias() : linear_->bias();
  training_ = float_->training();
  // Same Variables under the same names: checkpoints and PyTorch names carry over.
  register_existing_parameter("weight", weight_);
  if (bias_.defined()) register_existing_parameter("bias", bias_);
  const int64_t out_channels = weight_.size(0);
  LB_CHECK(!weight_quant.external_scale, weight_quant.name, ": an external (input x weight) scale is for biases, not weights");
  QuantizerConfig wcfg = weight_quant;
  wcfg.runtime_stats = false;  // Brevitas' weight scaling: the value is set by the collecting call itself
  wq_ = std::make_shared<Quantizer>(wcfg, out_channels);
  register_module("weight_quant", wq_);
  if (bias_quant) {
    bias_cfg_ = *bias_quant;
    bias_cfg_->channel_axis = 0;
    validate(*bias_cfg_, bias_cfg_->name);
  }
  if (bias_cfg_ && bias_.defined()) {
    bq_ = std::make_shared<Quantizer>(*bias_cfg_, out_channels);
    register_module("bias_quant", bq_);
  }
}

int64_t QuantWeightLayer::dot_terms() const {
  if (conv_) {
    const auto& o = conv_->options();
    return o.kernel_h * o.kernel_w * (o.in_channels / o.groups);
  }
  return linear_->options().in_features;
}

QuantMeta QuantWeightLayer::input_meta() const {
  if (!input_meta_) return QuantMeta::none("the layer is not connected to a graph (connect_meta_sources)");
  return input_meta_();
}

void QuantWeightLayer::set_accumulator(const AccumulatorConfig& a) {
  LB_CHECK(a.bits == 0 || (a.bits >= 2 && a.bits <= 32), "accumulator bit width ", a.bits, " is outside 2..32");
  acc_ = a;
}

void QuantWeightLayer::attach_batchnorm(std::shared_ptr<FoldableBatchNorm> bn, int64_t delay_epochs) {
  LB_CHECK(bn->options().num_features == weight_.size(0), "batch-norm folding: ", bn->options().num_features,
           " batch-norm features for ", weight_.size(0), " output channels");
  LB_CHECK(delay_epochs >= 0, "batch-norm folding: the delay must be >= 0 epochs");
  bn_ = std::move(bn);
  fold_delay_ = delay_epochs;
  folded_buf_ = register_buffer("bn_folded", Tensor::zeros({1}, DType::s32));
  if (bias_cfg_ && !bq_) {  // the folded bias beta - mean * g / sqrt(v + eps) gets the bias quantizer
    bq_ = std::make_shared<Quantizer>(*bias_cfg_, weight_.size(0));
    register_module("bias_quant", bq_);
  }
}

void QuantWeightLayer::effective_weight_bias(Variable& w, Variable& b) {
  w = weight_;
  b = bias_;
  const bool fold = bn_ && folded();
  if (bn_) bn_->set_folded(fold);
  if (!fold) return;
  // Frozen statistics: f = gamma / sqrt(var + eps); W_f = W * f; b_f = beta + (b - mean) * f.
  const Tensor& mean = bn_->running_mean();
  const Tensor& var = bn_->running_var();
  const int64_t c = mean.numel();
  const float eps = bn_->options().eps;
  Tensor inv = Tensor::empty({c});
  for (int64_t i = 0; i < c; ++i) inv.f32()[i] = 1.f / std::sqrt(var.f32()[i] + eps);
  Variable gamma = bn_->gamma(), beta = bn_->beta();
  Variable f = gamma.defined() ? mul(gamma, Variable(inv)) : Variable(inv);
  w = scale_channels(weight_, f, 0);
  Tensor neg_mean = Tensor::empty({c});
  for (int64_t i = 0; i < c; ++i) neg_mean.f32()[i] = -mean.f32()[i];
  Variable centered = bias_.defined() ? ops::add(bias_, Variable(neg_mean)) : Variable(neg_mean);
  Variable shifted = mul(centered, f);
  b = beta.defined() ? ops::add(beta, shifted) : shifted;
}

void QuantWeightLayer::start_epoch(int64_t epoch) {
  if (!bn_ || folded() || epoch < fold_delay_) return;
  folded_buf_->data<int32_t>()[0] = 1;
  NoGradGuard ng;
  Variable w, b;
  effective_weight_bias(w, b);
  wq_->reset_from(w.data());  // thresholds restart from the folded weights' range
}

QuantMeta QuantWeightLayer::output_meta(const QuantMeta& in) const {
  QuantMeta m = natural_meta(in);
  if (!m.valid() || acc_.bits == 0) return m;
  const int shift = acc_.truncate ? std::max(0, m.bits - acc_.bits) : 0;
  if (shift > 0)
    for (int64_t i = 0; i < m.scale.numel(); ++i) m.scale.f32()[i] *= static_cast<float>(std::ldexp(1.0, shift));
  m.bits = std::min(m.bits, acc_.bits);
  return m;
}

QuantMeta QuantWeightLayer::natural_meta(const QuantMeta& in) const {
  const std::string layer = layer_of(*wq_);
  if (!in.valid()) return QuantMeta::none("the input of " + layer + " is not quantized (" + in.why + ")");
  if (has_nonzero(in.zero_point)) return QuantMeta::none("the input of " + layer + " has a zero point");
  if (in.scale.numel() != 1)
    return QuantMeta::none("the input of " + layer + " has per-channel scales, which do not factor out of a dot product");
  const QuantMeta& wm = wq_->meta();
  if (!wm.valid()) return QuantMeta::none("the weights of " + layer + " were not quantized yet (run a forward)");
  if (has_nonzero(wm.zero_point)) return QuantMeta::none("the weights of " + layer + " have a zero point");
  QuantMeta m;
  m.scale = scale_product(in.scale, wm.scale);
  m.axis = m.scale.numel() > 1 ? 1 : -1;
  m.is_signed = true;
  m.bits = accumulator_bits(in.bits, wm.bits, dot_terms());
  const bool has_bias = bias_.defined() || (bn_ && folded());
  if (has_bias) {
    if (!bq_ || !bq_->config().external_scale)
      return QuantMeta::none("the bias of " + layer + " is " + (bq_ ? "quantized with its own scale" : "float") +
                             ", so the output is not on the s_in * s_w grid (quantize it with Int32Bias)");
    m.bits = std::max(m.bits, bq_->current_bits()) + 1;  // Brevitas: max(acc, bias bits) + 1
  }
  if (in.shape.rank() > 0) m.shape = float_->infer_shape({in.shape});
  m.source = layer;
  return m;
}

Variable QuantWeightLayer::forward(const Variable& x) {
  Variable w, b;
  effective_weight_bias(w, b);
  Variable wq = wq_->forward(w);
  Variable bq = b;
  if (bq_ && b.defined()) {
    if (bq_->config().external_scale) {
      const QuantMeta in = input_meta();
      LB_CHECK(in.valid(), bq_->describe(), ": a bias with external scale is quantized with input scale x weight ",
               "scale, but the input of layer ", layer_of(*bq_), " has no quantization metadata (", in.why,
               "): quantize it upstream (quant.input / activations) or use Int8BiasPerTensorFloatInternalScaling");
      LB_CHECK(in.scale.numel() == 1 && !has_nonzero(in.zero_point), bq_->describe(),
               ": the input of layer ", layer_of(*bq_), " has per-channel scales or a zero point; a bias with external ",
               "scale needs one input scale and zero point 0");
      Variable s_in = in.scale_var.defined() ? in.scale_var : Variable(in.scale);
      const QuantMeta& wm = wq_->meta();
      Variable s_w = wm.scale_var.defined() ? wm.scale_var : Variable(wm.scale);
      bq = bq_->forward_with_scale(b, mul(s_in, s_w));  // s_b = s_in * s_w, rounded to float32 once
    } else {
      bq = bq_->forward(b);
    }
  }
  Variable y = conv_ ? ops::conv2d(x, wq, bq, conv_->options().op()) : ops::linear(x, wq, bq);
  if (acc_.bits > 0) {
    const QuantMeta nat = natural_meta(input_meta());
    LB_CHECK(nat.valid(), "layer ", layer_of(*wq_), ": an accumulator width needs the accumulator's integer grid, but ",
             nat.why);
    const int shift = acc_.truncate ? std::max(0, nat.bits - acc_.bits) : 0;
    const double hi = std::ldexp(1.0, acc_.bits - 1) - 1, lo = -std::ldexp(1.0, acc_.bits - 1);
    y = requantize_integer(y, nat.scale, nat.axis < 0 ? -1 : 1, shift, acc_.truncate, lo, hi);
  }
  return y;
}

// ---- QuantAct -----------------------------------------------------------------------------

QuantAct::QuantAct(std::shared_ptr<nn::Module> act, const QuantizerConfig& quant, int64_t channels)
    : act_(std::move(act)), q_(std::make_shared<Quantizer>(quant, channels)) {
  register_module("act_quant", q_);
}

Variable QuantAct::forward(const Variable& x) {
  // relu / relu6 / hardtanh and the quantizer in one pass when the quantizer allows it.
  if (auto* a = dynamic_cast<nn::Activation*>(act_.get()); a && fuse_ && q_->fuses_activation()) {
    const nn::ActivationOptions& o = a->options();
    switch (o.kind) {
      case nn::ActivationKind::relu: return q_->forward_after_activation(x, 0.f, INFINITY);
      case nn::ActivationKind::relu6: return q_->forward_after_activation(x, 0.f, 6.f);
      case nn::ActivationKind::hardtanh: return q_->forward_after_activation(x, o.min_val, o.max_val);
      default: break;
    }
  }
  return q_->forward(act_ ? act_->forward(x) : x);
}

// ---- QuantShared --------------------------------------------------------------------------

QuantShared::QuantShared(std::shared_ptr<nn::Module> op, const QuantizerConfig& quant)
    : op_(std::move(op)), q_(std::make_shared<Quantizer>(quant, 1)) {
  is_add_ = dynamic_cast<nn::Add*>(op_.get()) != nullptr;
  LB_CHECK(is_add_ || dynamic_cast<nn::Concat*>(op_.get()), "shared input quantization applies to add and concat, not ",
           op_->type_name());
  LB_CHECK(!quant.per_channel, quant.name, ": the inputs of an ", op_->type_name(),
           " cannot share a per-channel scale (their channels differ or are summed): use a per-tensor quantizer");
  register_module("input_quant", q_);
}

Variable QuantShared::forward_multi(const std::vector<Variable>& xs) {
  last_shapes_.clear();
  for (const auto& x : xs) last_shapes_.push_back(x.shape());
  return op_->forward_multi(q_->forward_shared(xs));
}

// ---- QuantAvgPool -------------------------------------------------------------------------

QuantAvgPool::QuantAvgPool(std::shared_ptr<nn::Pool2d> pool, int bits) : pool_(std::move(pool)), bits_(bits) {
  LB_CHECK(pool_->pool_kind() != nn::PoolKind::max, "a truncating average pool replaces an average pool, not a max pool");
  LB_CHECK(bits_ >= 0 && bits_ <= 32, "truncating average pool: bit width ", bits_, " is outside 1..32");
  if (pool_->pool_kind() == nn::PoolKind::avg) {
    const auto& o = pool_->options();
    LB_CHECK((o.pad_h == 0 && o.pad_w == 0) || o.count_include_pad, "truncating average pool: padding without ",
             "count_include_pad divides border windows by fewer than k*k values");
  }
}

int64_t QuantAvgPool::window(const Shape& s) const {
  if (pool_->pool_kind() == nn::PoolKind::global_avg) return s[2] * s[3];
  return pool_->options().kernel_h * pool_->options().kernel_w;
}

QuantMeta QuantAvgPool::output_meta(const QuantMeta& in) const {
  if (!in.valid()) return QuantMeta::none("the input of the average pool is not quantized (" + in.why + ")");
  if (has_nonzero(in.zero_point)) return QuantMeta::none("the input of the average pool has a zero point");
  if (in.shape.rank() != 4) return QuantMeta::none("the input of the average pool has no (N, C, H, W) shape");
  const int64_t k2 = window(in.shape);
  const int sum_bits = accumulator_bits(in.bits, 1, k2);  // ceil(log2((2^b - 1) * k*k))
  const int target = bits_ > 0 ? bits_ : in.bits;
  const int shift = std::max(0, sum_bits - target);
  QuantMeta m = in;
  m.scale = in.scale.clone();
  for (int64_t i = 0; i < m.scale.numel(); ++i)
    m.scale.f32()[i] = static_cast<float>(static_cast<double>(m.scale.f32()[i]) * std::ldexp(1.0, shift) / static_cast<double>(k2));
  m.scale_var = Variable();
  m.bits = std::min(target, sum_bits);
  m.shape = pool_->infer_shape({in.shape});
  return m;
}

Variable QuantAvgPool::forward(const Variable& x) {
  const QuantMeta in = input_meta_ ? input_meta_() : QuantMeta::none("not connected to a graph");
  LB_CHECK(in.valid(), "truncating average pool: the input has no quantization metadata (", in.why,
           "): quantize it upstream");
  LB_CHECK(!has_nonzero(in.zero_point), "truncating average pool: the input has a zero point");
  LB_CHECK(in.scale.numel() == 1 || in.axis == 1, "truncating average pool: the input scales must be per tensor or per channel (dim 1)");
  Variable avg = pool_->forward(x);
  const int64_t k2 = window(x.shape());
  const int sum_bits = accumulator_bits(in.bits, 1, k2);
  const int target = bits_ > 0 ? bits_ : in.bits;
  const int shift = std::max(0, sum_bits - target);
  Tensor sum_scale = in.scale.clone();  // scale of the integer window sum
  for (int64_t i = 0; i < sum_scale.numel(); ++i)
    sum_scale.f32()[i] = static_cast<float>(static_cast<double>(sum_scale.f32()[i]) / static_cast<double>(k2));
  const double lo = in.is_signed ? -std::ldexp(1.0, target - 1) : 0.0;
  const double hi = in.is_signed ? std::ldexp(1.0, target - 1) - 1 : std::ldexp(1.0, target) - 1;
  return requantize_integer(avg, sum_scale, in.scale.numel() == 1 ? -1 : 1, shift, true, lo, hi);
}

// ---- QuantScaleBias -----------------------------------------------------------------------

QuantScaleBias::QuantScaleBias(int64_t channels, const std::optional<QuantizerConfig>& weight_quant,
                               const std::optional<QuantizerConfig>& output_quant)
    : channels_(channels) {
  LB_CHECK(channels > 0, "scale_bias: the channel count must be positive");
  weight_ = register_parameter("weight", Tensor::full({channels}, 1.f));
  bias_ = register_parameter("bias", Tensor::zeros({channels}));
  if (weight_quant) {
    QuantizerConfig wc = *weight_quant;
    wc.channel_axis = 0;
    wc.runtime_stats = false;  // weights (see QuantWeightLayer)
    wq_ = std::make_shared<Quantizer>(wc, channels);
    register_module("weight_quant", wq_);
  }
  if (output_quant) {
    oq_ = std::make_shared<Quantizer>(*output_quant, channels);
    register_module("act_quant", oq_);
  }
}

Shape QuantScaleBias::infer_shape(const std::vector<Shape>& in) const {
  const Shape& s = in.at(0);
  LB_CHECK(s.rank() >= 2 && s[1] == channels_, "scale_bias: input ", s.str(), " does not have ", channels_, " channels");
  return s;
}

Variable QuantScaleBias::forward(const Variable& x) {
  Variable w = wq_ ? wq_->forward(weight_) : weight_;
  Variable y = add_channels(scale_channels(x, w, 1), bias_, 1);
  return oq_ ? oq_->forward(y) : y;
}

std::shared_ptr<QuantScaleBias> batchnorm_to_scale_bias(nn::BatchNorm2d& bn,
                                                        const std::optional<QuantizerConfig>& weight_quant,
                                                        const std::optional<QuantizerConfig>& output_quant) {
  const int64_t c = bn.options().num_features;
  auto sb = std::make_shared<QuantScaleBias>(c, weight_quant, output_quant);
  Tensor gamma = Tensor::full({c}, 1.f), beta = Tensor::zeros({c}), mean, var;
  for (auto& [n, p] : bn.named_parameters()) {
    if (n == "weight") gamma = p.data().contiguous();
    if (n == "bias") beta = p.data().contiguous();
  }
  for (auto& [n, b] : bn.named_buffers()) {
    if (n == "running_mean") mean = b->contiguous();
    if (n == "running_var") var = b->contiguous();
  }
  const float eps = bn.options().eps;
  for (int64_t i = 0; i < c; ++i) {
    const float w = gamma.f32()[i] / std::sqrt(var.f32()[i] + eps);
    sb->weight().data().f32()[i] = w;
    sb->bias().data().f32()[i] = beta.f32()[i] - mean.f32()[i] * w;
  }
  sb->train(bn.training());
  return sb;
}

}  // namespace lowbit::quant
