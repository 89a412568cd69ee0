// Quantized layers, built from float layers by the converter (quant/recipe.h). They keep the
// float layer's parameters (the same Variables, the same names: "conv1.weight"), and add
// quantizers as children ("conv1.weight_quant", "relu1.act_quant"), as Brevitas' QuantConv2d,
// QuantLinear, QuantReLU, QuantHardTanh, QuantIdentity, QuantEltwiseAdd, QuantCat,
// TruncAvgPool2d and QuantScaleBias do.
#pragma once
#include <functional>
#include <memory>
#include <optional>

#include "nn/layers.h"
#include "quant/quantizer.h"

namespace lowbit::quant {

// Optional re-gridding of a conv/linear accumulator to a fixed width (Brevitas' accumulator
// saturation / TruncIntQuant): saturate clamps the integer accumulator to `bits` signed bits;
// truncate drops the least significant (natural width - bits) bits (floor) first, then clamps.
struct AccumulatorConfig {
  int bits = 0;          // 0 = off
  bool truncate = false;
};

// Batch norm that turns into the identity once its conv/linear folds it into the weights
// (batch-norm folding during QAT). Same parameter and buffer names as nn::BatchNorm2d.
class FoldableBatchNorm : public nn::BatchNorm2d {
 public:
  explicit FoldableBatchNorm(nn::BatchNorm2d& src);  // copies src's options, parameters and statistics
  nn::LayerKind kind() const override { return nn::LayerKind::foldable_batch_norm; }
  // Named like the batch norm it replaces (checkpoints and messages do not change when folding).
  std::string type_name() const override { return one_d() ? "batch_norm1d" : "batch_norm2d"; }
  Variable forward(const Variable& x) override { return folded_ ? x : nn::BatchNorm2d::forward(x); }
  void set_folded(bool f) { folded_ = f; }
  bool folded() const { return folded_; }
  Variable gamma();  // undefined when not affine
  Variable beta();
  Tensor& running_mean();
  Tensor& running_var();

 private:
  bool folded_ = false;
};

// QuantConv2d / QuantLinear: weight (and optionally bias) fake-quantized before the op.
class QuantWeightLayer : public nn::Module {
 public:
  // float_layer: an nn::Conv2d or nn::Linear.
  QuantWeightLayer(std::shared_ptr<nn::Module> float_layer, const QuantizerConfig& weight_quant,
                   const std::optional<QuantizerConfig>& bias_quant);
  Variable forward(const Variable& x) override;
  Shape infer_shape(const std::vector<Shape>& in) const override { return float_->infer_shape(in); }
  nn::LayerKind kind() const override { return conv_ ? nn::LayerKind::quant_conv2d : nn::LayerKind::quant_linear; }
  Quantizer& weight_quant() { return *wq_; }
  Quantizer* bias_quant() { return bq_.get(); }
  nn::Module& float_layer() { return *float_; }
  std::shared_ptr<nn::Module> float_layer_ptr() { return float_; }
  Variable& weight() { return weight_; }
  Variable& bias() { return bias_; }
  bool is_conv() const { return conv_ != nullptr; }
  // Products summed per output value: K_h * K_w * C_in / groups (conv), in_features (linear).
  int64_t dot_terms() const;

  // Metadata of the output for input metadata `in` and the weight/bias quantizers' last forward
  // (see quant_meta.h).
  QuantMeta output_meta(const QuantMeta& in) const;
  // Where the input's metadata comes from during the forward (set by connect_meta_sources).
  void set_input_meta(std::function<QuantMeta()> f) { input_meta_ = std::move(f); }
  void set_accumulator(const AccumulatorConfig& a);
  const AccumulatorConfig& accumulator() const { return acc_; }

  // Batch-norm folding during QAT (Rusci et al. "folding_weights"): the batch norm trains
  // normally until epoch `delay_epochs`; from then on its statistics are frozen and it is folded
  // into the weights before quantization in every forward (W*g/sqrt(v+eps), beta + (b-m)*g/sqrt(v+eps)).
  void attach_batchnorm(std::shared_ptr<FoldableBatchNorm> bn, int64_t delay_epochs);
  // Switches to folding when `epoch` (0-based) reaches the delay; the weight quantizer's learned
  // threshold (if any) is reset to the folded weights' range at the switch.
  void start_epoch(int64_t epoch);
  bool folded() const { return folded_buf_ && folded_buf_->data<int32_t>()[0] != 0; }
  FoldableBatchNorm* batchnorm() { return bn_.get(); }
  int64_t fold_delay() const { return fold_delay_; }
  // The weight and bias the op uses before quantization (folded when folding is on).
  void effective_weight_bias(Variable& w, Variable& b);

 private:
  QuantMeta input_meta() const;
  QuantMeta natural_meta(const QuantMeta& in) const;  // output_meta without the accumulator re-gridding
  std::shared_ptr<nn::Module> float_;
  nn::Conv2d* conv_ = nullptr;
  nn::Linear* linear_ = nullptr;
  Variable weight_, bias_;
  std::shared_ptr<Quantizer> wq_, bq_;
  std::optional<QuantizerConfig> bias_cfg_;
  std::function<QuantMeta()> input_meta_;
  AccumulatorConfig acc_;
  std::shared_ptr<FoldableBatchNorm> bn_;
  int64_t fold_delay_ = -1;
  Tensor* folded_buf_ = nullptr;
};

// QuantReLU / QuantHardTanh / QuantIdentity: an activation (or none) followed by a quantizer.
class QuantAct : public nn::Module {
 public:
  // act may be null (QuantIdentity: input quantization).
  QuantAct(std::shared_ptr<nn::Module> act, const QuantizerConfig& quant, int64_t channels = 1);
  Variable forward(const Variable& x) override;
  Shape infer_shape(const std::vector<Shape>& in) const override { return act_ ? act_->infer_shape(in) : in.at(0); }
  nn::LayerKind kind() const override { return nn::LayerKind::quant_act; }
  std::string type_name() const override { return act_ ? "quant_" + act_->type_name() : "quant_identity"; }
  Quantizer& act_quant() { return *q_; }
  nn::Module* activation() { return act_.get(); }
  // Run relu / relu6 / hardtanh fused into the quantizer when it can (default on; off to check
  // the fused path against the unfused one).
  void set_fuse_activation(bool on) { fuse_ = on; }

 private:
  bool fuse_ = true;
  std::shared_ptr<nn::Module> act_;
  std::shared_ptr<Quantizer> q_;
};

// QuantEltwiseAdd / QuantCat: every input goes through one shared quantizer (one scale, computed
// over all inputs together while it is a statistic), so the sum / concatenation stays on one
// integer grid, as integer deployment needs.
class QuantShared : public nn::Module {
 public:
  // op: an nn::Add or nn::Concat.
  QuantShared(std::shared_ptr<nn::Module> op, const QuantizerConfig& quant);
  Variable forward(const Variable& x) override { return x; }
  Variable forward_multi(const std::vector<Variable>& xs) override;
  Shape infer_shape(const std::vector<Shape>& in) const override { return op_->infer_shape(in); }
  nn::LayerKind kind() const override { return is_add_ ? nn::LayerKind::quant_add : nn::LayerKind::quant_concat; }
  Quantizer& input_quant() { return *q_; }
  bool is_add() const { return is_add_; }
  // Input shapes of the last forward.
  const std::vector<Shape>& last_shapes() const { return last_shapes_; }
  nn::Module& op() { return *op_; }

 private:
  std::shared_ptr<nn::Module> op_;
  std::shared_ptr<Quantizer> q_;
  bool is_add_;
  std::vector<Shape> last_shapes_;
};

// Truncating average pool (Brevitas TruncAvgPool2d): the integer window sum (b + ceil(log2(k*k))
// bits) loses its low bits down to `bits` (floor), then is clamped:
//   n = sum of the window's integers; n' = clamp(floor(n / 2^shift), range of `bits`)
//   y = n' * s * 2^shift / (k*k),   shift = max(0, b + ceil(log2(k*k)) - bits)
// Needs quantized input (metadata); gradient straight through (as the float avg pool) where not
// clamped. bits = 0 keeps the input's bit width.
class QuantAvgPool : public nn::Module {
 public:
  QuantAvgPool(std::shared_ptr<nn::Pool2d> pool, int bits);
  Variable forward(const Variable& x) override;
  Shape infer_shape(const std::vector<Shape>& in) const override { return pool_->infer_shape(in); }
  nn::LayerKind kind() const override { return nn::LayerKind::quant_avg_pool2d; }
  void set_input_meta(std::function<QuantMeta()> f) { input_meta_ = std::move(f); }
  // Output metadata for input metadata `in` and input shape `shape` (N, C, H, W).
  QuantMeta output_meta(const QuantMeta& in) const;
  int64_t window(const Shape& in_shape) const;
  int bits() const { return bits_; }  // 0: the input's bit width
  nn::Pool2d& pool() { return *pool_; }

 private:
  std::shared_ptr<nn::Pool2d> pool_;
  int bits_;
  std::function<QuantMeta()> input_meta_;
};

// ScaleBias (Brevitas ScaleBias / QuantScaleBias): y = x * w[c] + b[c] over channels (dim 1), w
// quantized by a weight quantizer (per channel or per tensor) and the output optionally by an
// activation quantizer. batchnorm_to_scale_bias() turns a (trained) batch norm into one.
class QuantScaleBias : public nn::Module {
 public:
  QuantScaleBias(int64_t channels, const std::optional<QuantizerConfig>& weight_quant,
                 const std::optional<QuantizerConfig>& output_quant);
  Variable forward(const Variable& x) override;
  Shape infer_shape(const std::vector<Shape>& in) const override;
  nn::LayerKind kind() const override { return nn::LayerKind::quant_scale_bias; }
  Variable& weight() { return weight_; }
  Variable& bias() { return bias_; }
  Quantizer* weight_quant() { return wq_.get(); }
  Quantizer* output_quant() { return oq_.get(); }

 private:
  int64_t channels_;
  Variable weight_, bias_;
  std::shared_ptr<Quantizer> wq_, oq_;
};

// w = gamma / sqrt(running_var + eps), b = beta - running_mean * w (the batch norm in eval mode).
std::shared_ptr<QuantScaleBias> batchnorm_to_scale_bias(nn::BatchNorm2d& bn,
                                                        const std::optional<QuantizerConfig>& weight_quant,
                                                        const std::optional<QuantizerConfig>& output_quant);

}  // namespace lowbit::quant
