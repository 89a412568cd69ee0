#include "quant/quant_layers.h"

namespace lowbit::quant {

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
  wq_ = std::make_shared<Quantizer>(weight_quant, out_channels);
  register_module("weight_quant", wq_);
  if (bias_quant && bias_.defined()) {
    QuantizerConfig bc = *bias_quant;
    bc.channel_axis = 0;
    bq_ = std::make_shared<Quantizer>(bc, out_channels);
    register_module("bias_quant", bq_);
  }
}

Variable QuantWeightLayer::forward(const Variable& x) {
  Variable w = wq_->forward(weight_);
  Variable b = bq_ ? bq_->forward(bias_) : bias_;
  if (conv_) return ops::conv2d(x, w, b, conv_->options().op());
  return ops::linear(x, w, b);
}

QuantAct::QuantAct(std::shared_ptr<nn::Module> act, const QuantizerConfig& quant, int64_t channels)
    : act_(std::move(act)), q_(std::make_shared<Quantizer>(quant, channels)) {
  register_module("act_quant", q_);
}

Variable QuantAct::forward(const Variable& x) { return q_->forward(act_ ? act_->forward(x) : x); }

}  // namespace lowbit::quant
