#include "train/plan_recipe.h"

#include <filesystem>

#include "core/error.h"
#include "deploy/planner_file.h"

namespace lowbit::train {

namespace {

std::string resolve_plan_path(const std::string& plan, const std::string& config_file, const std::string& where) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::path(plan).is_absolute()) {
    LB_CHECK(fs::exists(plan, ec), where, ": quant.plan: no plan file at ", plan);
    return plan;
  }
  const fs::path beside = fs::path(config_file).parent_path() / plan;
  if (!config_file.empty() && fs::exists(beside, ec)) return beside.string();
  LB_CHECK(fs::exists(plan, ec), where, ": quant.plan: no plan file '", plan, "' beside the config (", beside.string(),
           ") or in the working folder; write one with `lowbit plan MODEL --flash B --ram B -o ", plan, "`");
  return plan;
}

bool is_weight_layer(const nn::Module& m) { return m.traits().planner == nn::Planner::weight_layer; }

// Bits of the activation tensor node k writes: out_bits of the conv/linear it comes from through
// layers that keep the format (activation, batch norm, pooling, flatten, add, concat).
int tensor_bits(const nn::Graph& g, int k, const deploy::PlanFile& plan) {
  while (k >= 0) {
    const nn::GraphNode& n = g.nodes()[static_cast<size_t>(k)];
    if (is_weight_layer(*n.module))
      for (const auto& e : plan.layers)
        if (e.name == n.name) return e.out_bits;
    k = n.inputs.at(0);
  }
  return plan.input_bits;
}

}  // namespace

void apply_plan_to_recipe(quant::QuantRecipe& recipe, const nn::Graph& float_model, const Shape& input,
                          const std::string& model_name, const std::string& config_file) {
  if (recipe.plan.empty()) return;
  const std::string path = resolve_plan_path(recipe.plan, config_file, recipe.plan_where);
  const deploy::PlanFile plan = deploy::read_plan_file(path);
  const deploy::Network net = deploy::describe(float_model, input, model_name);
  deploy::apply_plan(plan, net);  // names, tied bits, input / output at 8 bits
  const bool per_channel = plan.scaling == deploy::Scaling::per_channel;
  auto entry = [&](const std::string& name, const char* kind, int bits) {
    quant::LayerOverride o;
    o.pattern = name;
    o.where = path + " (layer " + name + ")";
    YAML::Node q;
    q["bits"] = bits;
    if (std::string(kind) == "weights") {
      q["per_channel"] = per_channel;
      o.weights = q;
    } else {
      o.activations = q;
    }
    recipe.layers.push_back(o);
  };
  for (const nn::GraphNode& n : float_model.nodes()) {
    if (is_weight_layer(*n.module)) {
      for (const auto& e : plan.layers)
        if (e.name == n.name) entry(n.name, "weights", e.weight_bits);
      continue;
    }
    const nn::Lowering l = n.module->traits().lowering;
    if (l == nn::Lowering::clamp || l == nn::Lowering::lut || n.module->kind() == nn::LayerKind::identity)
      entry(n.name, "activations", tensor_bits(float_model, n.inputs.at(0), plan));
  }
  if (recipe.input) recipe.input->bits = plan.input_bits;
  recipe.first_last_bits = 0;
}

}  // namespace lowbit::train
