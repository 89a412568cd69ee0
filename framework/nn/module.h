// Module: the unit models are built from. Holds named parameters (Variables that train),
// buffers (state that is saved but not trained, e.g. BN running statistics) and child modules.
// Hierarchical names ("features.0.weight") are the checkpoint and PyTorch-import keys.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/variable.h"
#include "core/rng.h"
#include "nn/layer_kinds.h"

namespace lowbit::nn {

class Module {
 public:
  virtual ~Module() = default;

  // One input -> one output. Multi-input modules (add, concat) override forward_multi.
  virtual Variable forward(const Variable& x) = 0;
  virtual Variable forward_multi(const std::vector<Variable>& xs);
  // Output shape for the given input shapes, without computing (throws on mismatch).
  virtual Shape infer_shape(const std::vector<Shape>& in) const = 0;
  // What kind of layer this is: its row in the layer-kind table (nn/layer_kinds.h).
  virtual LayerKind kind() const = 0;
  const LayerTraits& traits() const { return nn::traits(kind()); }
  // Type name for messages and model files ("conv2d", "quant_relu", ...): the table's name unless
  // the layer refines it.
  virtual std::string type_name() const { return std::string(traits().name); }
  // Whether this module takes >= 2 inputs (add, concat) instead of one.
  bool multi_input() const { return traits().multi_input; }

  void train(bool on = true);
  void eval() { train(false); }
  bool training() const { return training_; }

  // All parameters/buffers of this module and its children, names joined with '.'.
  std::vector<std::pair<std::string, Variable>> named_parameters(const std::string& prefix = "") const;
  std::vector<std::pair<std::string, Tensor*>> named_buffers(const std::string& prefix = "");
  std::vector<Variable> parameters() const;
  // This module ("" or prefix) and all descendants, depth first.
  std::vector<std::pair<std::string, Module*>> named_modules(const std::string& prefix = "");
  // A random stream this module owns (dropout), saved in checkpoints; null when none.
  virtual Rng* rng_state() { return nullptr; }
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }

 protected:
  Variable register_parameter(const std::string& name, Tensor value, bool requires_grad = true);
  // Registers a Variable another module owns too (quantized layers share the float weights).
  void register_existing_parameter(const std::string& name, Variable v);
  Tensor* register_buffer(const std::string& name, Tensor value);
  void register_module(const std::string& name, std::shared_ptr<Module> m);
  void prepend_child(const std::string& name, std::shared_ptr<Module> m);  // first in name order
  void replace_child(const std::string& name, std::shared_ptr<Module> m);

  bool training_ = true;

 private:
  std::vector<std::pair<std::string, Variable>> params_;
  std::vector<std::pair<std::string, std::unique_ptr<Tensor>>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

}  // namespace lowbit::nn
