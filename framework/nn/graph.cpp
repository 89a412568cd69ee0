#include "nn/graph.h"

namespace lowbit::nn {

int Graph::add(const std::string& name, std::shared_ptr<Module> module, std::vector<int> inputs) {
  LB_CHECK(find(name) < 0, "graph: node name '", name, "' is used twice");
  const int idx = static_cast<int>(nodes_.size());
  if (inputs.empty()) inputs.push_back(idx - 1);
  for (int i : inputs) LB_CHECK(i >= -1 && i < idx, "graph: node '", name, "' reads node ", i, ", which is not before it");
  LB_CHECK(module->multi_input() || inputs.size() == 1, "graph: node '", name, "' (", module->type_name(),
           ") takes one input, got ", inputs.size());
  LB_CHECK(!module->multi_input() || inputs.size() >= 2, "graph: node '", name, "' (", module->type_name(),
           ") needs at least two inputs (from: [...])");
  register_module(name, module);
  nodes_.push_back({name, std::move(module), std::move(inputs)});
  last_use_.assign(nodes_.size(), -1);
  for (size_t k = 0; k < nodes_.size(); ++k)
    for (int i : nodes_[k].inputs)
      if (i >= 0) last_use_[i] = static_cast<int>(k);
  return idx;
}

void Graph::prepend(const std::string& name, std::shared_ptr<Module> module) {
  LB_CHECK(find(name) < 0, "graph: node name '", name, "' is used twice");
  LB_CHECK(!module->multi_input(), "graph: a prepended node takes the graph input only");
  std::vector<GraphNode> old = std::move(nodes_);
  nodes_.clear();
  nodes_.push_back({name, module, {-1}});
  for (auto& n : old) {
    for (int& i : n.inputs) i = i + 1;  // -1 (graph input) becomes 0 (the new node)
    nodes_.push_back(std::move(n));
  }
  prepend_child(name, std::move(module));
  last_use_.assign(nodes_.size(), -1);
  for (size_t k = 0; k < nodes_.size(); ++k)
    for (int i : nodes_[k].inputs)
      if (i >= 0) last_use_[i] = static_cast<int>(k);
}

void Graph::replace(int index, std::shared_ptr<Module> module) {
  LB_CHECK(index >= 0 && index < static_cast<int>(nodes_.size()), "graph: no node ", index);
  GraphNode& n = nodes_[index];
  LB_CHECK(module->multi_input() == n.module->multi_input(), "graph: replacing '", n.name, "' changes its input count");
  replace_child(n.name, module);
  n.module = std::move(module);
}

int Graph::find(const std::string& name) const {
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i].name == name) return static_cast<int>(i);
  return -1;
}

std::vector<Variable> Graph::run(const Variable& x, bool keep_all) {
  LB_CHECK(!nodes_.empty(), "graph: forward of an empty model");
  std::vector<Variable> outs(nodes_.size());
  std::vector<Variable> args;
  for (size_t k = 0; k < nodes_.size(); ++k) {
    const GraphNode& n = nodes_[k];
    args.clear();
    for (int i : n.inputs) args.push_back(i < 0 ? x : outs[i]);
    outs[k] = n.module->multi_input() ? n.module->forward_multi(args) : n.module->forward(args[0]);
    if (keep_all) continue;
    // Drop outputs nobody reads any more (the autograd graph keeps what backward needs).
    for (int i : n.inputs)
      if (i >= 0 && last_use_[i] == static_cast<int>(k)) outs[i] = Variable();
  }
  return outs;
}

Variable Graph::forward(const Variable& x) { return run(x, false).back(); }

std::vector<Variable> Graph::forward_all(const Variable& x) { return run(x, true); }

std::vector<Shape> Graph::node_shapes(const Shape& input) const {
  std::vector<Shape> shapes;
  std::vector<Shape> args;
  for (const GraphNode& n : nodes_) {
    args.clear();
    for (int i : n.inputs) args.push_back(i < 0 ? input : shapes[i]);
    shapes.push_back(n.module->infer_shape(args));
  }
  return shapes;
}

Shape Graph::infer_shape(const std::vector<Shape>& in) const {
  LB_CHECK(!nodes_.empty(), "graph: empty model");
  return node_shapes(in.at(0)).back();
}

std::shared_ptr<Graph> Sequential(std::vector<std::shared_ptr<Module>> modules) {
  auto g = std::make_shared<Graph>();
  for (size_t i = 0; i < modules.size(); ++i) g->add(std::to_string(i), std::move(modules[i]));
  return g;
}

}  // namespace lowbit::nn
