#include "config/model_file.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "io/expr.h"
#include "nn/layers.h"

namespace lowbit::config {

using namespace io;  // the leaf formats (YAML, HDF5, expressions) this folder reads and writes

LayerArgs::LayerArgs(const YAML::Node& node, const YamlSource& src, std::string key,
                     const std::map<std::string, double>& params, std::vector<Shape> in_shapes, Rng& rng)
    : node_(node), src_(src), key_(std::move(key)), params_(params), in_shapes_(std::move(in_shapes)), rng_(rng) {}

std::string LayerArgs::where(const std::string& k) const {
  YAML::Node v = node_[k];
  return src_.where(v.IsDefined() ? v : node_, key_ + "." + k);
}

void LayerArgs::fail(const std::string& k, const std::string& msg) const {
  LB_FAIL(where(k), ": ", key_, (k.empty() ? "" : "." + k), ": ", msg);
}

bool LayerArgs::has(const std::string& k) const { return node_[k].IsDefined() && !node_[k].IsNull(); }

double LayerArgs::eval(const YAML::Node& v, const std::string& k) {
  if (!v.IsScalar()) fail(k, "expected a number or an expression");
  const std::string& s = v.Scalar();
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (!s.empty() && *end == '\0') return d;
  try {
    return eval_expr(s, params_);
  } catch (const Error& e) {
    fail(k, e.what());
  }
}

double LayerArgs::number(const std::string& k, double def) {
  used_.push_back(k);
  return has(k) ? eval(node_[k], k) : def;
}

double LayerArgs::number(const std::string& k) {
  used_.push_back(k);
  if (!has(k)) fail("", "missing required argument '" + k + "'");
  return eval(node_[k], k);
}

static int64_t to_int(double v, const LayerArgs& a, const std::string& k) {
  if (v != std::floor(v)) a.fail(k, "expected an integer, got " + std::to_string(v) + " (use int(...) in expressions)");
  return static_cast<int64_t>(v);
}

int64_t LayerArgs::integer(const std::string& k, int64_t def) {
  return has(k) ? to_int(number(k, 0), *this, k) : (used_.push_back(k), def);
}

int64_t LayerArgs::integer(const std::string& k) { return to_int(number(k), *this, k); }

std::pair<int64_t, int64_t> LayerArgs::pair(const std::string& k, std::pair<int64_t, int64_t> def) {
  used_.push_back(k);
  if (!has(k)) return def;
  YAML::Node v = node_[k];
  if (v.IsSequence()) {
    if (v.size() != 2) fail(k, "expected one integer or a [h, w] pair");
    return {to_int(eval(v[0], k), *this, k), to_int(eval(v[1], k), *this, k)};
  }
  int64_t x = to_int(eval(v, k), *this, k);
  return {x, x};
}

bool LayerArgs::boolean(const std::string& k, bool def) {
  used_.push_back(k);
  return has(k) ? yaml_bool(node_[k], src_, key_ + "." + k) : def;
}

std::string LayerArgs::string(const std::string& k, const std::string& def) {
  used_.push_back(k);
  return has(k) ? yaml_string(node_[k], src_, key_ + "." + k) : def;
}

void LayerArgs::finish(const std::string& type) {
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    std::string k = it->first.as<std::string>();
    if (std::find(used_.begin(), used_.end(), k) == used_.end()) {
      std::vector<std::string> valid(used_.begin() + 3, used_.end());
      LB_FAIL(src_.where(it->first, key_ + "." + k), ": ", key_, ": unknown argument '", k, "' for ", type,
              " (arguments: ", valid.empty() ? std::string("none") : closest_names(k, valid), ")");
    }
  }
}

namespace {

std::shared_ptr<nn::Module> make_conv2d(LayerArgs& a) {
  nn::Conv2dOptions o;
  const Shape& in = a.in();
  if (in.rank() != 4) a.fail("", "conv2d needs a (N, C, H, W) input, the previous layer gives " + in.str());
  o.in_channels = a.integer("in_channels", in[1]);
  o.out_channels = a.integer("out_channels");
  std::tie(o.kernel_h, o.kernel_w) = a.pair("kernel_size", {3, 3});
  std::tie(o.stride_h, o.stride_w) = a.pair("stride", {1, 1});
  if (a.has("padding") && a.string("padding", "") == "same") {
    o.pad_same = true;
  } else {
    std::tie(o.pad_h, o.pad_w) = a.pair("padding", {0, 0});
  }
  std::tie(o.dil_h, o.dil_w) = a.pair("dilation", {1, 1});
  o.groups = a.integer("groups", 1);
  o.bias = a.boolean("bias", true);
  a.finish("conv2d");
  if (o.in_channels != in[1])
    a.fail("in_channels", "the input " + in.str() + " has " + std::to_string(in[1]) + " channels but in_channels is " +
                              std::to_string(o.in_channels));
  return std::make_shared<nn::Conv2d>(o, a.rng());
}

std::shared_ptr<nn::Module> make_linear(LayerArgs& a) {
  nn::LinearOptions o;
  const Shape& in = a.in();
  if (in.rank() != 2) a.fail("", "linear needs a (N, features) input, the previous layer gives " + in.str() + ": add a flatten layer");
  o.in_features = a.integer("in_features", in[1]);
  o.out_features = a.integer("out_features");
  o.bias = a.boolean("bias", true);
  a.finish("linear");
  if (o.in_features != in[1])
    a.fail("in_features", "the input " + in.str() + " has " + std::to_string(in[1]) + " features but in_features is " +
                              std::to_string(o.in_features));
  return std::make_shared<nn::Linear>(o, a.rng());
}

std::shared_ptr<nn::Module> make_bn(LayerArgs& a, bool one_d) {
  nn::BatchNorm2dOptions o;
  const Shape& in = a.in();
  const char* type = one_d ? "batch_norm1d" : "batch_norm2d";
  if (in.rank() != (one_d ? 2u : 4u))
    a.fail("", std::string(type) + (one_d ? " needs a (N, features) input" : " needs a (N, C, H, W) input") +
                   ", the previous layer gives " + in.str());
  o.num_features = a.integer("num_features", in[1]);
  o.eps = static_cast<float>(a.number("eps", 1e-5));
  o.momentum = static_cast<float>(a.number("momentum", 0.1));
  o.affine = a.boolean("affine", true);
  a.finish(type);
  if (o.num_features != in[1])
    a.fail("num_features", "the input " + in.str() + " has " + std::to_string(in[1]) + " channels but num_features is " +
                               std::to_string(o.num_features));
  return std::make_shared<nn::BatchNorm2d>(o, one_d);
}

LayerFactory activation(nn::ActivationKind kind, nn::LayerKind layer) {
  return [kind, layer](LayerArgs& a) -> std::shared_ptr<nn::Module> {
    const std::string type(nn::traits(layer).name);
    nn::ActivationOptions o;
    o.kind = kind;
    if (kind == nn::ActivationKind::hardtanh) {
      o.min_val = static_cast<float>(a.number("min_val", -1.0));
      o.max_val = static_cast<float>(a.number("max_val", 1.0));
      if (!(o.min_val < o.max_val)) a.fail("max_val", "max_val must be greater than min_val");
    }
    if (kind == nn::ActivationKind::leaky_relu) o.negative_slope = static_cast<float>(a.number("negative_slope", 0.01));
    a.finish(type);
    return std::make_shared<nn::Activation>(o);
  };
}

LayerFactory pool(nn::PoolKind kind, nn::LayerKind layer) {
  return [kind, layer](LayerArgs& a) -> std::shared_ptr<nn::Module> {
    const std::string type(nn::traits(layer).name);
    ops::Pool2dOptions o;
    if (a.in().rank() != 4) a.fail("", type + " needs a (N, C, H, W) input, the previous layer gives " + a.in().str());
    if (kind != nn::PoolKind::global_avg) {
      std::tie(o.kernel_h, o.kernel_w) = a.pair("kernel_size", {2, 2});
      std::tie(o.stride_h, o.stride_w) = a.pair("stride", {o.kernel_h, o.kernel_w});
      std::tie(o.pad_h, o.pad_w) = a.pair("padding", {0, 0});
      if (kind == nn::PoolKind::avg) o.count_include_pad = a.boolean("count_include_pad", true);
      if (o.kernel_h <= 0 || o.kernel_w <= 0 || o.stride_h <= 0 || o.stride_w <= 0)
        a.fail("kernel_size", "kernel_size and stride must be positive");
    }
    a.finish(type);
    return std::make_shared<nn::Pool2d>(kind, o);
  };
}


// How a model file builds each kind. No default: a new LayerKind is a -Wswitch error here until
// it has a factory (or says that model files cannot name it).
LayerFactory factory_for(nn::LayerKind kind) {
  using K = nn::LayerKind;
  using A = nn::ActivationKind;
  switch (kind) {
    case K::conv2d: return make_conv2d;
    case K::linear: return make_linear;
    case K::batch_norm2d: return [](LayerArgs& a) { return make_bn(a, false); };
    case K::batch_norm1d: return [](LayerArgs& a) { return make_bn(a, true); };
    case K::relu: return activation(A::relu, kind);
    case K::relu6: return activation(A::relu6, kind);
    case K::hardtanh: return activation(A::hardtanh, kind);
    case K::leaky_relu: return activation(A::leaky_relu, kind);
    case K::hardswish: return activation(A::hardswish, kind);
    case K::tanh: return activation(A::tanh, kind);
    case K::sigmoid: return activation(A::sigmoid, kind);
    case K::identity: return activation(A::identity, kind);
    case K::max_pool2d: return pool(nn::PoolKind::max, kind);
    case K::avg_pool2d: return pool(nn::PoolKind::avg, kind);
    case K::global_avg_pool2d: return pool(nn::PoolKind::global_avg, kind);
    case K::flatten:
      return [](LayerArgs& a) -> std::shared_ptr<nn::Module> { a.finish("flatten"); return std::make_shared<nn::Flatten>(); };
    case K::dropout:
      return [](LayerArgs& a) -> std::shared_ptr<nn::Module> {
        double p = a.number("p", 0.5);
        if (!(p >= 0 && p < 1)) a.fail("p", "dropout probability must be in [0, 1)");
        a.finish("dropout");
        return std::make_shared<nn::Dropout>(static_cast<float>(p), a.rng().next_u64());
      };
    case K::add: return [](LayerArgs& a) -> std::shared_ptr<nn::Module> { a.finish("add"); return std::make_shared<nn::Add>(); };
    case K::concat:
      return [](LayerArgs& a) -> std::shared_ptr<nn::Module> { a.finish("concat"); return std::make_shared<nn::Concat>(); };
    // Not named by model files: nested graphs and what a quant: recipe makes.
    case K::graph: case K::quant_conv2d: case K::quant_linear: case K::quant_act: case K::quant_add:
    case K::quant_concat: case K::quant_avg_pool2d: case K::quant_scale_bias: case K::foldable_batch_norm:
    case K::quantizer:
      return nullptr;
  }
  return nullptr;
}

}  // namespace

std::map<std::string, LayerFactory>& layer_registry() {
  static std::map<std::string, LayerFactory> reg = [] {
    std::map<std::string, LayerFactory> r;
    for (const nn::LayerTraits& t : nn::kLayerTable) {
      LayerFactory f = factory_for(t.kind);
      LB_CHECK(t.model_file == static_cast<bool>(f), "layer table: '", t.name, "' is ", t.model_file ? "" : "not ",
               "a model-file type but has ", f ? "a" : "no", " factory (config/model_file.cpp)");
      if (f) r[std::string(t.name)] = std::move(f);
    }
    return r;
  }();
  return reg;
}

BuiltModel build_model(const std::string& path, const std::map<std::string, ModelParamOverride>& overrides,
                       uint64_t seed) {
  YAML::Node root = load_yaml_file(path);
  YamlSource src{path, {}};
  LB_CHECK(root.IsMap(), path, ": a model file must be a map with name, params, input and layers");
  for (auto it = root.begin(); it != root.end(); ++it) {
    std::string k = it->first.as<std::string>();
    static const std::vector<std::string> keys{"name", "description", "params", "input", "layers"};
    if (std::find(keys.begin(), keys.end(), k) == keys.end())
      LB_FAIL(src.where(it->first, k), ": unknown key '", k, "' in a model file (keys: name, description, params, input, layers)");
  }
  BuiltModel m;
  m.file = path;
  m.name = root["name"] ? yaml_string(root["name"], src, "name") : path;
  m.graph = std::make_shared<nn::Graph>();
  if (YAML::Node p = root["params"]) {
    LB_CHECK(p.IsMap(), src.where(p, "params"), ": params must be a map of name: number");
    for (auto it = p.begin(); it != p.end(); ++it) {
      std::string k = it->first.as<std::string>();
      m.params[k] = yaml_number(it->second, src, "params." + k);
    }
  }
  for (const auto& [k, ov] : overrides) {
    if (!m.params.count(k)) {
      std::vector<std::string> names;
      for (auto& [n, v] : m.params) names.push_back(n);
      LB_FAIL(ov.source, ": model parameter '", k, "' does not exist in ", path, " (parameters: ",
              names.empty() ? std::string("none") : closest_names(k, names), ")");
    }
    m.params[k] = ov.value;
  }
  YAML::Node input = root["input"];
  LB_CHECK(input && input.IsSequence() && input.size() == 3, src.where(input ? input : root, "input"),
           ": input must be [C, H, W] (numbers or expressions over params)");
  std::vector<int64_t> in_dims{1};
  for (size_t i = 0; i < 3; ++i) {
    double v;
    const std::string s = input[i].Scalar();
    char* end = nullptr;
    v = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0') {
      try { v = eval_expr(s, m.params); } catch (const Error& e) { LB_FAIL(src.where(input[i], "input"), ": input: ", e.what()); }
    }
    LB_CHECK(v >= 1 && v == std::floor(v), src.where(input[i], "input"), ": input dimension ", i, " must be a positive integer, got ", v);
    in_dims.push_back(static_cast<int64_t>(v));
  }
  m.input = Shape({in_dims[1], in_dims[2], in_dims[3]});
  YAML::Node layers = root["layers"];
  LB_CHECK(layers && layers.IsSequence() && layers.size() > 0, src.where(layers ? layers : root, "layers"),
           ": layers must be a non-empty list");
  Rng rng = Rng::derive(seed, 1);  // the "init" stream
  std::vector<Shape> shapes;
  const Shape batch_input(in_dims);
  for (size_t i = 0; i < layers.size(); ++i) {
    YAML::Node l = layers[i];
    const std::string key = "layers[" + std::to_string(i) + "]";
    LB_CHECK(l.IsMap(), src.where(l, key), ": ", key, ": each layer is a map with at least `type:`");
    LB_CHECK(l["type"], src.where(l, key), ": ", key, ": missing `type:`");
    const std::string type = yaml_string(l["type"], src, key + ".type");
    auto& reg = layer_registry();
    auto fit = reg.find(type);
    if (fit == reg.end()) {
      std::vector<std::string> names;
      for (auto& [n, f] : reg) names.push_back(n);
      LB_FAIL(src.where(l["type"], key + ".type"), ": ", key, ": unknown layer type '", type, "' (did you mean: ",
              closest_names(type, names), "?)");
    }
    std::string name = l["name"] ? yaml_string(l["name"], src, key + ".name") : std::to_string(i);
    LB_CHECK(m.graph->find(name) < 0, src.where(l["name"], key + ".name"), ": ", key, ": layer name '", name, "' is used twice");
    LB_CHECK(name != "input" && name.find('/') == std::string::npos, src.where(l, key), ": ", key, ": '", name,
             "' cannot be a layer name");
    std::vector<int> from;
    if (YAML::Node f = l["from"]) {
      std::vector<YAML::Node> items;
      if (f.IsSequence()) for (auto x : f) items.push_back(x); else items.push_back(f);
      for (auto& x : items) {
        const std::string s = x.Scalar();
        int idx;
        if (s == "input") {
          idx = -1;
        } else if (!s.empty() && (s[0] == '-' || std::isdigit(static_cast<unsigned char>(s[0])))) {
          int64_t v = yaml_int(x, src, key + ".from");
          idx = static_cast<int>(v < 0 ? static_cast<int64_t>(i) + v : v);
          LB_CHECK(idx >= 0 && idx < static_cast<int>(i), src.where(x, key + ".from"), ": ", key, ": from ", v,
                   " does not name an earlier layer");
        } else {
          idx = m.graph->find(s);
          if (idx < 0) {
            std::vector<std::string> names;
            for (auto& n : m.graph->nodes()) names.push_back(n.name);
            LB_FAIL(src.where(x, key + ".from"), ": ", key, ": from '", s, "' names no earlier layer (closest: ",
                    names.empty() ? std::string("none") : closest_names(s, names), ")");
          }
        }
        from.push_back(idx);
      }
    } else {
      from.push_back(static_cast<int>(i) - 1);
    }
    std::vector<Shape> in_shapes;
    for (int k : from) in_shapes.push_back(k < 0 ? batch_input : shapes[k]);
    LayerArgs args(l, src, key + " (" + name + ")", m.params, in_shapes, rng);
    std::shared_ptr<nn::Module> mod = fit->second(args);
    Shape out;
    try {
      if (!mod->multi_input() && in_shapes.size() != 1)
        LB_FAIL(type, " takes one input, `from:` gives ", in_shapes.size());
      if (mod->multi_input() && in_shapes.size() < 2)
        LB_FAIL(type, " needs at least two inputs: give `from: [a, b]`");
      out = mod->infer_shape(in_shapes);
    } catch (const Error& e) {
      std::string msg = e.what();
      auto pos = msg.find(": ");  // drop the C++ source location: the YAML location is what helps
      LB_FAIL(src.where(l, key), ": ", key, " (", name, ", ", type, "): ", pos == std::string::npos ? msg : msg.substr(pos + 2));
    }
    m.graph->add(name, mod, from);
    shapes.push_back(out);
    m.layer_locations.push_back(src.where(l, key));
  }
  return m;
}

}  // namespace lowbit::config
