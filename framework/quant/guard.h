// Divergence guard of quantization-aware training: finds and names the layer and quantizer
// where a NaN/Inf appeared (loss, gradients, learned quantizer state), so that training stops
// with a message a user can act on instead of training on garbage.
#pragma once
#include <string>

#include "nn/graph.h"

namespace lowbit::quant {

// "layer conv1 (quant_conv2d), quantizer conv1.weight_quant (Int8WeightPerChannelFloat)" for a
// parameter or buffer name such as "conv1.weight_quant.value"; for a layer's own parameter
// ("conv1.weight") the quantizers of that layer are listed.
std::string describe_parameter(nn::Module& model, const std::string& name);

// First parameter with a NaN/Inf gradient: "" when all are finite, else a description of the
// parameter, its layer and quantizer(s) and the bad value.
std::string check_gradients(nn::Module& model);

// First learned quantizer parameter (scale, bit offset) or statistic buffer that holds a
// NaN/Inf, or "" when all are finite. Cheap: quantizer state is a few values per layer.
std::string check_quantizer_state(nn::Module& model);

// Runs `x` through the graph node by node (same mode as now, no gradients) and names the first
// node whose output holds a NaN/Inf, with the quantizers in it and their last scales; "" when
// the re-run stays finite. For diagnosing a non-finite loss.
std::string locate_nonfinite(nn::Graph& model, const Tensor& x);

// True when every element of a float tensor is finite.
bool all_finite(const Tensor& t);

}  // namespace lowbit::quant
