// The resolved quantized model (`lowbit quantize`): every layer of a model after the `quant:`
// recipe, with its quantizers' options all spelled out, as YAML a user can read.
#pragma once
#include <string>

#include <yaml-cpp/yaml.h>

#include "config/model_file.h"
#include "quant/quantizer.h"

namespace lowbit::quant {

// Every option of a quantizer under the keys a recipe uses ({preset: ..., bits: ..., ...}).
YAML::Node quantizer_yaml(const QuantizerConfig& c);

// YAML text of the quantized model `m` (built from the model file `model_file`, whose layer
// entries are echoed under `float:`); `header` lines go first as comments. Runs one forward of
// zeros in eval mode (no state changes) to report each layer's output metadata.
std::string resolved_model_yaml(config::BuiltModel& m, const std::string& model_file, const std::string& header);

}  // namespace lowbit::quant
