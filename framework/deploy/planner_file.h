// The plan file written by `lowbit plan -o plan.yaml`: per-layer weight and activation bit widths
// by layer name, which a run config includes (the intended key is `quant.plan: plan.yaml`) so the
// QAT recipes train exactly the planned network. Schema (version 1) in docs/mixed-precision.md:
//
//   lowbit_plan: 1
//   model: mobilenet_v1
//   model_file: models/mobilenet_v1.yaml
//   params: {in_channels: 3, input_size: 224, num_classes: 1000, width: 0.75}
//   method: MixPL                   # MixPL | MixPC
//   weight_scaling: per_layer       # per_layer | per_channel   (normative)
//   accounting: paper               # paper | exact
//   input_bits: 8                   # the network input (normative)
//   limits: {flash: 2048000, ram: 512000}
//   totals: {flash: 2040000, weights: 1900000, ram: 501760, ram_layer: conv_pw_1}
//   layers:                         # every conv2d / linear layer, in forward order
//     conv1: {kind: conv2d, weights: 648, weight_bits: 8, in_bits: 8, out_bits: 4, flash: 1436, ram: 752640}
//
// Normative for training: weight_scaling, input_bits, and per layer weight_bits, in_bits, out_bits.
// Everything else is information (and is ignored when reading, apart from type checks).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "deploy/planner.h"

namespace lowbit::deploy {

struct PlanFileLayer {
  std::string name;
  std::string kind;                 // informational
  int weight_bits = 8, in_bits = 8, out_bits = 8;
  std::string where;                // file:line:col of the entry, for messages
};

struct PlanFile {
  std::string file;
  int version = 1;
  std::string model;                // informational
  std::string model_file;           // informational
  std::map<std::string, double> params;  // informational
  Scaling scaling = Scaling::per_layer;
  Accounting accounting = Accounting::exact;
  int input_bits = 8;
  int64_t flash_limit = 0, ram_limit = 0;
  std::vector<PlanFileLayer> layers;  // file order
};

// Where the plan came from (for the informational keys).
struct PlanSource {
  std::string model_file;
  std::map<std::string, double> params;
};

// The plan file text for a successful plan.
std::string plan_to_yaml(const Plan& p, const PlanSource& src);
void write_plan_file(const std::string& path, const Plan& p, const PlanSource& src);

// Reads and validates a plan file (keys, types, bit widths in {2, 4, 8}, unique names). Errors
// name file:line:column.
PlanFile read_plan_file(const std::string& path);

// Matches a plan with a network: the same conv/linear layer names (each exactly once), the input
// at `input_bits`, and every tensor's bit width the same wherever it is read or written (in_bits
// of a layer = out_bits of the layer that produces its input). Returns the bit widths; throws
// lowbit::Error naming the layer otherwise.
Bits apply_plan(const PlanFile& plan, const Network& net);

}  // namespace lowbit::deploy
