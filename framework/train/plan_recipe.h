// quant.plan: the bit widths of a `lowbit plan` file applied over a QAT recipe, so the planned
// network is the one trained (docs/mixed-precision.md, "Training the planned network").
#pragma once
#include <string>

#include "core/shape.h"
#include "nn/graph.h"
#include "quant/recipe.h"

namespace lowbit::train {

// Reads recipe.plan (relative to the config file's folder, else the working folder), matches it
// with the float model (deploy::apply_plan: every conv/linear named once, tied bits consistent,
// the closest name on a typo) and appends per-layer overrides to the recipe:
//   each conv/linear: weights {bits: weight_bits, per_channel: weight_scaling == per_channel};
//   each activation layer: activations {bits: out_bits of the conv/linear whose output it reads};
//   the input quantizer: input_bits. first_last_bits no longer applies (the plan sets them).
// `config_file` locates relative plan paths. Throws lowbit::Error naming the plan entry.
void apply_plan_to_recipe(quant::QuantRecipe& recipe, const nn::Graph& float_model, const Shape& input,
                          const std::string& model_name, const std::string& config_file);

}  // namespace lowbit::train
