// The quantization recipe of a run config (`quant:`), applied to an unchanged float model
// (the converter). Every conv2d/linear gets a weight quantizer, every activation layer an output
// quantizer, and the model input an input quantizer, unless the recipe says otherwise:
//
//   quant:
//     weights: {preset: Int8WeightPerChannelFloat, bits: 4}
//     activations: {preset: Uint8ActPerTensorFloat, bits: 4}   # relu, relu6, sigmoid (>= 0)
//     signed_activations: Int8ActPerTensorFloat                 # hardtanh, tanh, leaky_relu, hardswish, identity
//     input: {preset: Int8ActPerTensorFloat, bits: 8}
//     bias: null                        # or a bias quantizer (internal scaling)
//     bits: 4                           # one line: bit width of weights and activations
//     first_last_bits: 8                # first and last weight layers keep this weight width
//     float: [fc3]                      # layers left in float (names or globs)
//     layers:                           # per-layer overrides by name or glob
//       "conv*": {weights: {bits: 8}}
//     quantizers:                       # named quantizers of your own, usable as presets
//       w3: {preset: Int8WeightPerTensorFloat, bits: 3}
//     bit_cost: 0.01                    # loss += bit_cost * mean weight bit width (learned_bits)
//     accumulator: {bits: 16, mode: saturate}   # or truncate; conv/linear accumulators (per layer too)
//     add: shared                       # shared | require_equal | float: inputs of every add
//     concat: shared                    #   share one quantizer / must already share one / float
//     shared_quantizer: Int8ActPerTensorFloat   # the quantizer shared by add/concat inputs
//     avg_pool: {bits: 4}               # truncating average pools (bits 0: the input's width)
//     bn_fold: {delay_epochs: 2}        # fold batch norm into the conv/linear before it after 2 epochs
//     plan: plan.yaml                   # `lowbit plan -o` bit widths per layer (train/plan_recipe.h applies them)
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "io/yaml_util.h"
#include "nn/graph.h"
#include "quant/quant_layers.h"
#include "quant/quantizer.h"

namespace lowbit::quant {

struct LayerOverride {
  std::string pattern;  // layer name or glob (* and ?)
  std::string where;    // file:line:col, for messages
  YAML::Node weights, activations, bias;  // partial quantizer maps, merged over the defaults
  YAML::Node accumulator;                 // {bits: N, mode: saturate | truncate}
};

enum class SharedMode { none, shared, require_equal };

struct QuantRecipe {
  bool enabled = false;
  std::optional<QuantizerConfig> weights, activations, signed_activations, input, bias;
  int first_last_bits = 0;
  std::vector<std::string> float_layers;
  std::vector<LayerOverride> layers;
  std::map<std::string, QuantizerConfig> user_quantizers;
  double bit_cost = 0;  // coefficient of the weight bit-width regularizer (learned bit widths)
  AccumulatorConfig accumulator;
  SharedMode add = SharedMode::none, concat = SharedMode::none;
  std::optional<QuantizerConfig> shared_quantizer;  // default: signed_activations
  bool trunc_avg_pool = false;
  int avg_pool_bits = 0;
  int64_t bn_fold_delay = -1;  // -1: no folding during QAT
  std::string plan;            // quant.plan: a plan file (applied by train::build_model), "" for none
  std::string plan_where;      // file:line:col of quant.plan
  io::YamlSource src;
};

// Parses the `quant:` map of a run config (null or {} = no quantization).
QuantRecipe parse_recipe(const YAML::Node& quant, const io::YamlSource& src);

// Replaces the model's layers by quantized ones. Errors name the recipe position and, for
// overrides or float entries that match no layer, list the layer names. `input` is the model's
// input shape (C, H, W); per-channel activation quantizers need it for their channel counts.
void apply_recipe(nn::Graph& model, const QuantRecipe& recipe, const Shape& input = Shape());

// Shell-style glob: * (any run) and ? (one character).
bool glob_match(const std::string& pattern, const std::string& name);

// Per-epoch switches of the quantized model (batch-norm folding after its delay). The trainer
// calls it before every epoch (0-based).
void start_epoch(nn::Graph& model, int64_t epoch);

}  // namespace lowbit::quant
