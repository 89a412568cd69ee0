// Post-training calibration: the activation quantizers collect their range statistics over N
// batches without training (no gradients, no optimizer, batch norm in eval mode), then hand
// them to their learned scales, so a model can be evaluated quantized right away.
#pragma once
#include <string>

#include "data/loader.h"
#include "nn/module.h"

namespace lowbit::train {

struct CalibrationResult {
  int64_t batches = 0;      // batches run
  int64_t quantizers = 0;   // quantizers whose scale comes from the collected statistics
};

// Runs up to `batches` batches of `loader` (from its first) through `model` in eval mode with
// every statistic-based quantizer collecting; leaves the model in eval mode.
CalibrationResult calibrate(nn::Module& model, data::DataLoader& loader, int64_t batches);

// Loads a checkpoint's weights into a (quantized) model: every tensor of the model that the
// checkpoint has is loaded; quantizer state missing from it (a float model's checkpoint) keeps
// its initial value. Every other model tensor must be present. Returns how many quantizer
// tensors were missing.
int64_t load_weights_for_calibration(const std::string& path, nn::Module& model);

}  // namespace lowbit::train
