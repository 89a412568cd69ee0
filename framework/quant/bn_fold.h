// Batch-norm merging on a (trained) model: the static counterpart of folding during QAT
// (QuantWeightLayer::attach_batchnorm), and the batch-norm to scale-bias conversion.
#pragma once
#include <optional>

#include "nn/graph.h"
#include "quant/quantizer.h"

namespace lowbit::quant {

// Static merge: every batch norm that alone reads a conv2d/linear (float or quantized), and
// every batch norm a quantized layer folds during QAT, goes into that layer's weights:
//   W' = W * g / sqrt(v + eps),  b' = (b - m) * g / sqrt(v + eps) + beta
// (a layer without bias gets one); the batch-norm node becomes the identity. Quantizer state
// (learned scales, statistics) carries over. The model computes the same in eval mode. Returns
// how many batch norms were merged.
int merge_batchnorm(nn::Graph& model);

// Every remaining batch norm becomes a (Quant)ScaleBias with w = g / sqrt(v + eps),
// b = beta - m * w, optionally quantizing w and the output. Returns how many were converted.
int convert_batchnorm_to_scale_bias(nn::Graph& model, const std::optional<QuantizerConfig>& weight_quant,
                                    const std::optional<QuantizerConfig>& output_quant);

}  // namespace lowbit::quant
