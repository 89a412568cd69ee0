// Graph: a model as a list of named nodes in execution order. Each node applies one module to
// the outputs of earlier nodes (or the graph input); a chain where every node takes the previous
// one is a Sequential. Parameters are named "<node name>.<param>" ("conv1.weight").
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/module.h"

namespace lowbit::nn {

struct GraphNode {
  std::string name;
  std::shared_ptr<Module> module;
  std::vector<int> inputs;  // indices of earlier nodes; -1 = the graph input
};

class Graph : public Module {
 public:
  Graph() = default;
  // Appends a node; `inputs` empty means "the previous node" (or the graph input for the first).
  // Returns the node index.
  int add(const std::string& name, std::shared_ptr<Module> module, std::vector<int> inputs = {});
  // Inserts a node that reads the graph input in front of all others; nodes that read the
  // graph input read it instead (e.g. an input quantizer).
  void prepend(const std::string& name, std::shared_ptr<Module> module);
  // Replaces the module of node `index`, keeping its name (a quantized layer for a float one).
  void replace(int index, std::shared_ptr<Module> module);
  Variable forward(const Variable& x) override;
  // Every node's output (in node order), for per-layer comparisons; keeps them all alive.
  std::vector<Variable> forward_all(const Variable& x);
  Shape infer_shape(const std::vector<Shape>& in) const override;
  LayerKind kind() const override { return LayerKind::graph; }

  const std::vector<GraphNode>& nodes() const { return nodes_; }
  int find(const std::string& name) const;  // -1 when absent
  // Shapes of every node's output for the given input shape (N, C, H, W).
  std::vector<Shape> node_shapes(const Shape& input) const;

 private:
  std::vector<Variable> run(const Variable& x, bool keep_all);
  std::vector<GraphNode> nodes_;
  std::vector<int> last_use_;  // last node that reads each node's output (free after it)
};

// Sequential{a, b, c}: a Graph whose nodes are named "0", "1", ... like torch.nn.Sequential.
std::shared_ptr<Graph> Sequential(std::vector<std::shared_ptr<Module>> modules);

}  // namespace lowbit::nn
