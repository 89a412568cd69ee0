// Quantized layers, built from float layers by the converter (quant/recipe.h). They keep the
// float layer's parameters (the same Variables, the same names: "conv1.weight"), and add
// quantizers as children ("conv1.weight_quant", "relu1.act_quant"), as Brevitas' QuantConv2d,
// QuantLinear, QuantReLU, QuantHardTanh and QuantIdentity do.
#pragma once
#include <memory>
#include <optional>

#include "nn/layers.h"
#include "quant/quantizer.h"

namespace lowbit::quant {

// QuantConv2d / QuantLinear: weight (and optionally bias) fake-quantized before the op.
class QuantWeightLayer : public nn::Module {
 public:
  // float_layer: an nn::Conv2d or nn::Linear.
  QuantWeightLayer(std::shared_ptr<nn::Module> float_layer, const QuantizerConfig& weight_quant,
                   const std::optional<QuantizerConfig>& bias_quant);
  Variable forward(const Variable& x) override;
  Shape infer_shape(const std::vector<Shape>& in) const override { return float_->infer_shape(in); }
  std::string type_name() const override { return conv_ ? "quant_conv2d" : "quant_linear"; }
  Quantizer& weight_quant() { return *wq_; }
  Quantizer* bias_quant() { return bq_.get(); }
  nn::Module& float_layer() { return *float_; }

 private:
  std::shared_ptr<nn::Module> float_;
  nn::Conv2d* conv_ = nullptr;
  nn::Linear* linear_ = nullptr;
  Variable weight_, bias_;
  std::shared_ptr<Quantizer> wq_, bq_;
};

// QuantReLU / QuantHardTanh / QuantIdentity: an activation (or none) followed by a quantizer.
class QuantAct : public nn::Module {
 public:
  // act may be null (QuantIdentity: input quantization).
  QuantAct(std::shared_ptr<nn::Module> act, const QuantizerConfig& quant, int64_t channels = 1);
  Variable forward(const Variable& x) override;
  Shape infer_shape(const std::vector<Shape>& in) const override { return act_ ? act_->infer_shape(in) : in.at(0); }
  std::string type_name() const override { return act_ ? "quant_" + act_->type_name() : "quant_identity"; }
  Quantizer& act_quant() { return *q_; }

 private:
  std::shared_ptr<nn::Module> act_;
  std::shared_ptr<Quantizer> q_;
};

}  // namespace lowbit::quant
