// Model files (models/*.yaml) -> nn::Graph. The file lists layers in order; each has a `type`
// from the layer registry, arguments named as in PyTorch, an optional `name` (default: its
// index, as torch.nn.Sequential) and an optional `from:` (earlier layer names or negative
// offsets, `input` for the model input) for multi-input layers. Channel counts of the input
// are inferred when omitted; numbers may be expressions over the file's `params:`.
//
//   name: lenet5
//   params: {in_channels: 1, input_size: 28, num_classes: 10}
//   input: [in_channels, input_size, input_size]        # (C, H, W)
//   layers:
//     - {name: conv1, type: conv2d, out_channels: 6, kernel_size: 5, padding: 2}
//     - {name: relu1, type: relu}
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "io/yaml_util.h"
#include "nn/graph.h"

namespace lowbit::config {

struct ModelParamOverride {
  double value;
  std::string source;  // "model.params.width=0.5" or "configs/x.yaml:3:5", for messages
};

struct BuiltModel {
  std::string name;
  std::string file;
  std::shared_ptr<nn::Graph> graph;
  Shape input;                             // (C, H, W)
  std::map<std::string, double> params;    // resolved parameter values
  std::vector<std::string> layer_locations;  // "file:line:col" of each node, for later messages
};

BuiltModel build_model(const std::string& path, const std::map<std::string, ModelParamOverride>& overrides,
                       uint64_t seed);

// Arguments of one layer entry: typed reads with defaults; unknown keys are an error.
class LayerArgs {
 public:
  LayerArgs(const YAML::Node& node, const io::YamlSource& src, std::string key, const std::map<std::string, double>& params,
            std::vector<Shape> in_shapes, Rng& rng);
  bool has(const std::string& k) const;
  double number(const std::string& k, double def);
  double number(const std::string& k);  // required
  int64_t integer(const std::string& k, int64_t def);
  int64_t integer(const std::string& k);  // required
  // An int or a [h, w] pair.
  std::pair<int64_t, int64_t> pair(const std::string& k, std::pair<int64_t, int64_t> def);
  bool boolean(const std::string& k, bool def);
  std::string string(const std::string& k, const std::string& def);
  // Throws for keys not read by the factory ("unknown argument 'x' for conv2d").
  void finish(const std::string& type);
  const Shape& in(size_t i = 0) const { return in_shapes_.at(i); }
  const std::vector<Shape>& in_shapes() const { return in_shapes_; }
  Rng& rng() { return rng_; }
  [[noreturn]] void fail(const std::string& k, const std::string& msg) const;
  std::string where(const std::string& k) const;

 private:
  double eval(const YAML::Node& v, const std::string& k);
  YAML::Node node_;
  const io::YamlSource& src_;
  std::string key_;
  const std::map<std::string, double>& params_;
  std::vector<Shape> in_shapes_;
  Rng& rng_;
  std::vector<std::string> used_{"name", "type", "from"};
};

using LayerFactory = std::function<std::shared_ptr<nn::Module>(LayerArgs&)>;
// The registry of layer types; later issues (quant layers) add to it.
std::map<std::string, LayerFactory>& layer_registry();

}  // namespace lowbit::config
