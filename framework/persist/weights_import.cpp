#include "persist/weights_import.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "core/error.h"
#include "core/strings.h"
#include "persist/checkpoint.h"
#include "io/h5_file.h"
#include "nn/layers.h"
#include "quant/quant_layers.h"
#include "quant/quantizer.h"

namespace lowbit::persist {

using namespace io;  // the leaf formats (YAML, HDF5, expressions) this folder reads and writes

namespace {

// A tensor of the weight file, before matching.
struct FileTensor {
  std::string file_name;  // path or dotted name the reader resolves
  std::string name;       // after source-specific naming and renames: looked up in the model
  Shape shape;            // as stored
  std::string keras_var;  // Keras weight variable ("kernel", "depthwise_kernel", ...); "" otherwise
};

// What the model says about the module owning a tensor (for layout conversions).
struct LayerInfo {
  nn::Weights weights = nn::Weights::none;  // the layer-kind table's weight layout
  Shape flatten_chw;  // linear only: (C, H, W) of the Flatten feeding it, when H*W > 1
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) break;
    start = p + 1;
  }
  return out;
}

bool has_prefix(const std::string& name, const std::string& prefix) {
  if (prefix.empty()) return true;
  return name == prefix || (name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0 &&
                            name[prefix.size()] == '.');
}

std::string rename(const std::string& name, const NameMap& m) {
  std::string rest = name.substr(m.from.size());  // "" or ".x.y"
  if (m.to.empty()) return rest.empty() ? rest : rest.substr(1);
  return m.to + rest;
}

// ---- Keras legacy files ------------------------------------------------------------------

// A string-array attribute that Keras may split into name0, name1, ... when over 64 KB.
std::optional<std::vector<std::string>> split_attr(const H5Reader& r, const std::string& obj, const std::string& name) {
  if (r.has_attr(obj, name)) return r.attr_strings(obj, name);
  if (!r.has_attr(obj, name + "0")) return std::nullopt;
  std::vector<std::string> all;
  for (int i = 0; r.has_attr(obj, name + std::to_string(i)); ++i) {
    auto part = r.attr_strings(obj, name + std::to_string(i));
    all.insert(all.end(), part.begin(), part.end());
  }
  return all;
}

// The group holding the layer groups: "/" (save_weights) or "/model_weights" (model.save).
std::optional<std::string> keras_base(const H5Reader& r) {
  if (r.has_attr("/", "layer_names") || r.has_attr("/", "layer_names0")) return std::string("/");
  if (r.has_group("/model_weights") &&
      (r.has_attr("/model_weights", "layer_names") || r.has_attr("/model_weights", "layer_names0")))
    return std::string("/model_weights");
  return std::nullopt;
}

std::string keras_to_lowbit_var(const std::string& var) {
  static const std::map<std::string, std::string> names = {
      {"kernel", "weight"},         {"depthwise_kernel", "weight"},     {"gamma", "weight"},
      {"beta", "bias"},             {"bias", "bias"},                   {"moving_mean", "running_mean"},
      {"moving_variance", "running_var"}};
  auto it = names.find(var);
  return it == names.end() ? var : it->second;
}

// "kernel:0" -> "kernel".
std::string strip_var_index(const std::string& v) {
  const size_t c = v.rfind(':');
  if (c == std::string::npos || c + 1 == v.size()) return v;
  for (size_t i = c + 1; i < v.size(); ++i)
    if (v[i] < '0' || v[i] > '9') return v;
  return v.substr(0, c);
}

std::string join(const std::vector<std::string>& parts, size_t begin, size_t end, char sep) {
  std::string s;
  for (size_t i = begin; i < end; ++i) s += (i > begin ? std::string(1, sep) : std::string()) + parts[i];
  return s;
}

std::vector<FileTensor> keras_tensors(const H5Reader& r, const std::string& base, std::string* detail) {
  const std::string root = base == "/" ? "" : base;
  detail->clear();
  for (const char* a : {"keras_version", "backend"})
    for (const std::string& obj : {std::string("/"), base})
      if (r.has_attr(obj, a)) {
        *detail += (detail->empty() ? "" : ", ") + std::string(a) + " " + r.attr_string(obj, a);
        break;
      }
  if (!detail->empty()) *detail = "(" + *detail + ")";

  std::vector<FileTensor> out;
  const std::vector<std::string> layers = *split_attr(r, base, "layer_names");
  for (const std::string& layer : layers) {
    const std::string group = root + "/" + layer;
    LB_CHECK(r.has_group(group), r.path(), ": Keras file lists layer '", layer, "' in layer_names but has no group ", group);
    std::vector<std::string> weights;
    if (auto wn = split_attr(r, group, "weight_names")) {
      weights = *wn;
    } else {  // no weight_names: every dataset under the layer's group
      for (const auto& p : r.datasets())
        if (p.compare(0, group.size() + 1, group + "/") == 0) weights.push_back(p.substr(group.size() + 1));
    }
    // "<layer>/<var>:0" -> "<layer>.<lowbit var>"; deeper scopes keep their inner components.
    std::vector<FileTensor> mine;
    for (const std::string& w : weights) {
      const std::string path = group + "/" + w;
      LB_CHECK(r.has(path), r.path(), ": Keras layer '", layer, "' lists weight '", w, "' but there is no dataset ", path);
      std::vector<std::string> comps = split(w, '/');
      FileTensor t;
      t.file_name = path;
      t.keras_var = strip_var_index(comps.back());
      const std::string var = keras_to_lowbit_var(t.keras_var);
      t.name = comps.size() <= 2 ? layer + "." + var : layer + "." + join(comps, 1, comps.size() - 1, '.') + "." + var;
      t.shape = Shape(r.info(path).shape);
      mine.push_back(std::move(t));
    }
    std::set<std::string> seen;
    bool clash = false;
    for (const auto& t : mine) clash |= !seen.insert(t.name).second;
    if (clash) {  // e.g. a nested model stored as one layer: keep every scope
      for (size_t i = 0; i < mine.size(); ++i) {
        std::vector<std::string> comps = split(weights[i], '/');
        mine[i].name = layer + "." + join(comps, 0, comps.size() - 1, '.') + "." + keras_to_lowbit_var(mine[i].keras_var);
      }
    }
    out.insert(out.end(), mine.begin(), mine.end());
  }
  return out;
}

// ---- layouts ---------------------------------------------------------------------------------

// out[i0..] = in[...] with out dims = in dims permuted: out.dim(k) = in.dim(perm[k]).
Tensor permute(const Tensor& in, const std::vector<int>& perm) {
  Tensor c = in.contiguous();
  const size_t rank = perm.size();
  std::vector<int64_t> od(rank);
  for (size_t k = 0; k < rank; ++k) od[k] = c.shape()[perm[k]];
  Tensor out = Tensor::empty(Shape(od), c.dtype());
  const std::vector<int64_t> is = contiguous_strides(c.shape());
  const size_t es = dtype_size(c.dtype());
  const auto* src = static_cast<const unsigned char*>(c.raw_data());
  auto* dst = static_cast<unsigned char*>(out.raw_data());
  std::vector<int64_t> idx(rank, 0);
  for (int64_t n = 0; n < out.numel(); ++n) {
    int64_t off = 0;
    for (size_t k = 0; k < rank; ++k) off += idx[k] * is[perm[k]];
    std::memcpy(dst + n * es, src + off * es, es);
    for (size_t k = rank; k-- > 0;) {
      if (++idx[k] < od[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

// A layout conversion: the shape it produces from a stored shape, and the values.
struct Conversion {
  std::string name;  // "" = none
  Shape shape;
  std::function<Tensor(const Tensor&)> apply;
};

Conversion keras_conversion(const FileTensor& f, const LayerInfo& layer, const std::string& model_name) {
  Conversion c{"", f.shape, [](const Tensor& t) { return t; }};
  const bool is_weight = model_name.size() >= 7 && model_name.compare(model_name.size() - 7, 7, ".weight") == 0;
  if (!is_weight) return c;
  const auto& d = f.shape.dims();
  if (layer.weights == nn::Weights::conv_oihw && d.size() == 4) {
    if (f.keras_var == "depthwise_kernel") {  // (kH, kW, C, M) -> (C*M, 1, kH, kW)
      const Shape s({d[2] * d[3], 1, d[0], d[1]});
      return {"depthwise (kH,kW,C,M)->(C*M,1,kH,kW)", s, [s](const Tensor& t) { return permute(t, {2, 3, 0, 1}).reshape(s); }};
    }
    return {"HWIO->OIHW", Shape({d[3], d[2], d[0], d[1]}), [](const Tensor& t) { return permute(t, {3, 2, 0, 1}); }};
  }
  if (layer.weights == nn::Weights::linear_oi && d.size() == 2) {
    const Shape& chw = layer.flatten_chw;
    if (chw.rank() == 3 && chw.numel() == d[0]) {  // rows in Keras' HWC order -> Lowbit's CHW
      const int64_t C = chw[0], H = chw[1], W = chw[2], out = d[1];
      return {"(in,out)->(out,in), inputs HWC->CHW", Shape({out, d[0]}), [=](const Tensor& t) {
                Tensor x = permute(t, {1, 0}).reshape(Shape({out, H, W, C}));
                return permute(x, {0, 3, 1, 2}).reshape(Shape({out, C * H * W}));
              }};
    }
    return {"(in,out)->(out,in)", Shape({d[1], d[0]}), [](const Tensor& t) { return permute(t, {1, 0}); }};
  }
  return c;
}


// A name to suggest, with its element count (a renamed tensor keeps its size).
struct Candidate {
  std::string name;
  int64_t numel;
};

// The (up to) three candidates closest to a tensor: those with the same number of elements
// first, then by edit distance of the names. Same-size ones are marked.
std::string closest3(const std::string& name, int64_t numel, const std::vector<Candidate>& candidates) {
  if (candidates.empty()) return "none";
  std::vector<std::tuple<bool, size_t, const Candidate*>> scored;
  for (const auto& c : candidates) scored.emplace_back(c.numel != numel, edit_distance(name, c.name), &c);
  const size_t n = std::min<size_t>(3, scored.size());
  std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(n), scored.end(),
                    [](const auto& a, const auto& b) {
                      return std::tie(std::get<0>(a), std::get<1>(a), std::get<2>(a)->name) <
                             std::tie(std::get<0>(b), std::get<1>(b), std::get<2>(b)->name);
                    });
  std::string out;
  for (size_t i = 0; i < n; ++i)
    out += (i ? ", " : "") + std::get<2>(scored[i])->name + (std::get<0>(scored[i]) ? "" : " (same size)");
  return out;
}

bool scalar_like(const Shape& s) { return s.rank() <= 1 && s.numel() == 1; }


std::map<std::string, LayerInfo> layer_infos(const config::BuiltModel& m) {
  std::map<std::string, LayerInfo> out;
  nn::Graph& g = *m.graph;
  for (auto& [name, mod] : g.named_modules())
    // Conv or linear, float or quantized (a quantized layer keeps the float layer's names).
    if (mod->traits().weights != nn::Weights::none) out[name].weights = mod->traits().weights;
  // A linear node fed (through parameter-free single-input nodes such as dropout) by a flatten
  // of a 4-d map.
  const auto& nodes = g.nodes();
  std::vector<int64_t> dims{1};
  dims.insert(dims.end(), m.input.dims().begin(), m.input.dims().end());  // (1, C, H, W)
  const Shape in(dims);
  std::vector<Shape> shapes;
  try {
    shapes = g.node_shapes(in);
  } catch (const Error&) {
    return out;  // shapes unknown: no flatten reordering
  }
  auto is_flatten = [&](int j) { return nodes[j].module->kind() == nn::LayerKind::flatten; };
  for (size_t k = 0; k < nodes.size(); ++k) {
    if (nodes[k].module->traits().weights != nn::Weights::linear_oi) continue;
    int j = nodes[k].inputs.at(0);
    while (j >= 0 && !is_flatten(j) && !nodes[j].module->multi_input() && nodes[j].module->named_parameters().empty() &&
           shapes[j].rank() == 2)
      j = nodes[j].inputs.at(0);
    if (j < 0 || !is_flatten(j)) continue;
    const int src = nodes[j].inputs.at(0);
    const Shape s = src < 0 ? in : shapes[src];
    if (s.rank() == 4 && s[2] * s[3] > 1) out[nodes[k].name].flatten_chw = Shape({s[1], s[2], s[3]});
  }
  return out;
}

std::string module_of(const std::string& tensor_name) {
  const size_t p = tensor_name.rfind('.');
  return p == std::string::npos ? std::string() : tensor_name.substr(0, p);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string list_some(const std::vector<std::string>& items, size_t max_items = 8) {
  std::string s;
  for (size_t i = 0; i < items.size() && i < max_items; ++i) s += "\n  " + items[i];
  if (items.size() > max_items) s += "\n  ... (" + std::to_string(items.size() - max_items) + " more in the table)";
  return s;
}

std::string list_inline(const std::vector<std::string>& items, size_t max_items = 6) {
  std::string s;
  for (size_t i = 0; i < items.size() && i < max_items; ++i) s += (i ? ", " : "") + items[i];
  if (items.size() > max_items) s += ", ... (" + std::to_string(items.size()) + " in all)";
  return s;
}

}  // namespace

NameMap parse_name_map(const std::string& spec) {
  const size_t eq = spec.find('=');
  LB_CHECK(eq != std::string::npos, "--map '", spec, "': expected OLD=NEW (a dotted name prefix and its replacement, ",
           "e.g. --map features.0=conv1 or --map module.= to strip a prefix)");
  NameMap m{spec.substr(0, eq), spec.substr(eq + 1)};
  while (!m.from.empty() && m.from.back() == '.') m.from.pop_back();
  while (!m.to.empty() && m.to.back() == '.') m.to.pop_back();
  LB_CHECK(!m.from.empty(), "--map '", spec, "': OLD is empty");
  return m;
}

const char* weight_source_name(WeightSource s) {
  switch (s) {
    case WeightSource::torch_flat: return "flat dotted names (PyTorch state dict)";
    case WeightSource::torch_nested: return "nested groups (PyTorch layouts)";
    case WeightSource::lowbit_checkpoint: return "Lowbit checkpoint (/model)";
    case WeightSource::keras: return "Keras legacy weights";
  }
  return "?";
}

const char* match_status_name(MatchStatus s) {
  switch (s) {
    case MatchStatus::matched: return "ok";
    case MatchStatus::missing: return "MISSING";
    case MatchStatus::shape_mismatch: return "SHAPE";
    case MatchStatus::kept_default: return "default";
  }
  return "?";
}

int64_t ImportPlan::count(MatchStatus s) const {
  return std::count_if(entries.begin(), entries.end(), [s](const ImportEntry& e) { return e.status == s; });
}

namespace {

struct ModelTensor {
  std::string name;
  Shape shape;
  DType dtype;
};

// Step 1: the file's tensors under their source names; sets plan.source.
std::vector<FileTensor> list_file_tensors(const H5Reader& r, ImportPlan& plan) {
  std::vector<FileTensor> files;
  std::string fmt;
  if (r.has_attr("/", "format")) {
    try {
      fmt = r.attr_string("/", "format");
    } catch (const Error&) {
      fmt.clear();  // not a string: not ours
    }
  }
  if (fmt == kCheckpointFormat) {
    read_checkpoint_info(r.path());  // checks the format version
    plan.source = WeightSource::lowbit_checkpoint;
    for (const auto& p : r.datasets())
      if (p.compare(0, 7, "/model/") == 0) files.push_back({p, H5Reader::dotted(p.substr(6)), Shape(r.info(p).shape), ""});
  } else if (auto base = keras_base(r)) {
    plan.source = WeightSource::keras;
    files = keras_tensors(r, *base, &plan.source_detail);
  } else {
    plan.source = WeightSource::torch_flat;
    int64_t strings = 0;
    for (const auto& p : r.datasets()) {
      H5DatasetInfo info = r.info(p);
      if (info.is_string) {
        ++strings;
        continue;
      }
      const std::string dotted = H5Reader::dotted(p);
      const bool nested = p.find('/', 1) != std::string::npos;
      if (nested) plan.source = WeightSource::torch_nested;
      files.push_back({nested ? p : dotted, dotted, Shape(info.shape), ""});
    }
    if (strings) plan.notes.push_back("ignored " + std::to_string(strings) + " string dataset(s)");
  }
  LB_CHECK(!files.empty(), r.path(), ": no tensors found (", weight_source_name(plan.source),
           "); expected datasets named like 'conv1.weight' (see tools/torch_to_h5.py)");
  return files;
}

// Step 2: --map renames (the first that applies wins); without maps, a prefix that every file
// name has and no model name has ("module." from DataParallel) is stripped when that matches
// more tensors.
void rename_file_tensors(std::vector<FileTensor>& files, const ImportOptions& opt, const std::set<std::string>& model_names,
                         ImportPlan& plan) {
  std::vector<bool> map_used(opt.maps.size(), false);
  for (auto& f : files) {
    for (size_t i = 0; i < opt.maps.size(); ++i) {
      if (has_prefix(f.name, opt.maps[i].from)) {
        f.name = rename(f.name, opt.maps[i]);
        map_used[i] = true;
        break;
      }
    }
  }
  for (size_t i = 0; i < opt.maps.size(); ++i)
    if (!map_used[i]) plan.notes.push_back("--map " + opt.maps[i].from + "=" + opt.maps[i].to + " matched no file tensor");
  if (!opt.maps.empty() || plan.source == WeightSource::keras) return;

  const std::string first = files[0].name.substr(0, files[0].name.find('.'));
  bool common = files[0].name.find('.') != std::string::npos;
  for (const auto& f : files) common = common && has_prefix(f.name, first) && f.name != first;
  for (const auto& n : model_names) common = common && !has_prefix(n, first);
  if (!common) return;
  int64_t before = 0, after = 0;
  for (const auto& f : files) {
    before += static_cast<int64_t>(model_names.count(f.name));
    after += static_cast<int64_t>(model_names.count(f.name.substr(first.size() + 1)));
  }
  if (after <= before) return;
  for (auto& f : files) f.name = f.name.substr(first.size() + 1);
  plan.notes.push_back("every file name starts with '" + first + ".': stripped it (--map " + first + ".=NEW overrides)");
}

// Step 3 for one model tensor found in the file: converts (Keras layouts, 0-d <-> [1],
// dtype) and checks; `value` is set when it matched.
ImportEntry match_tensor(const H5Reader& r, const ModelTensor& mt, const FileTensor& f, const ImportPlan& plan,
                         const std::map<std::string, LayerInfo>& infos, Tensor& value) {
  ImportEntry e;
  e.model_name = mt.name;
  e.model_shape = mt.shape;
  e.file_name = f.file_name;
  e.file_shape = f.shape;
  Conversion conv{"", f.shape, [](const Tensor& t) { return t; }};
  if (plan.source == WeightSource::keras) {
    auto li = infos.find(module_of(mt.name));
    conv = keras_conversion(f, li == infos.end() ? LayerInfo{} : li->second, mt.name);
  }
  e.conversion = conv.name;
  const bool same = conv.shape == mt.shape;
  if (!same && !(scalar_like(conv.shape) && scalar_like(mt.shape))) {
    e.status = MatchStatus::shape_mismatch;
    e.detail = "file " + f.shape.str() + (conv.name.empty() ? "" : " (" + conv.name + " gives " + conv.shape.str() + ")") +
               ", model " + mt.shape.str();
    return e;
  }
  const std::string stored_type = r.info(f.file_name).type;
  Tensor v = conv.apply(r.read_tensor(f.file_name));
  if (v.dtype() != mt.dtype) {
    e.status = MatchStatus::shape_mismatch;
    e.detail = "file holds " + stored_type + ", model " + dtype_name(mt.dtype);
    return e;
  }
  auto add = [&e](const std::string& what) { e.conversion += (e.conversion.empty() ? "" : ", ") + what; };
  if (!same) {  // PyTorch's 0-d num_batches_tracked -> Lowbit's [1]
    add(stored_type + " " + conv.shape.str() + " -> " + dtype_name(mt.dtype) + " " + mt.shape.str());
    v = v.contiguous().reshape(mt.shape);
  } else if (stored_type != dtype_name(mt.dtype) && !(stored_type == "float32" && mt.dtype == DType::f32)) {
    add(stored_type + " -> " + dtype_name(mt.dtype));
  }
  e.status = MatchStatus::matched;
  value = v;
  return e;
}

// Step 4: closest names for missing and unused tensors, and likely renames. A missing model
// tensor is most likely one of the unused file tensors (and the other way round); names that
// already matched are offered only when nothing else is left.
void suggest_names(const std::vector<FileTensor>& files, const std::vector<bool>& used,
                   const std::vector<ModelTensor>& mts, ImportPlan& plan) {
  std::vector<Candidate> unused_files, all_files, missing_model, all_model;
  for (size_t i = 0; i < files.size(); ++i) {
    all_files.push_back({files[i].name, files[i].shape.numel()});
    if (!used[i]) unused_files.push_back(all_files.back());
  }
  for (size_t i = 0; i < mts.size(); ++i) {
    all_model.push_back({mts[i].name, mts[i].shape.numel()});
    if (plan.entries[i].status == MatchStatus::missing) missing_model.push_back(all_model.back());
  }
  for (size_t i = 0; i < mts.size(); ++i)
    if (plan.entries[i].status == MatchStatus::missing)
      plan.entries[i].detail = "closest in file: " + closest3(mts[i].name, mts[i].shape.numel(),
                                                               unused_files.empty() ? all_files : unused_files);
  for (size_t i = 0; i < files.size(); ++i)
    if (!used[i])
      plan.unused.push_back({files[i].file_name, files[i].name, files[i].shape,
                             closest3(files[i].name, files[i].shape.numel(), missing_model.empty() ? all_model : missing_model)});

  // Likely renames: missing model tensors paired with unused file tensors of the same size and
  // last name part, closest names first, each used once.
  auto leaf = [](const std::string& n) { return n.substr(n.rfind('.') + 1); };
  std::vector<std::tuple<size_t, size_t, size_t>> pairs;  // (distance, entry, unused file)
  for (size_t i = 0; i < mts.size(); ++i) {
    if (plan.entries[i].status != MatchStatus::missing) continue;
    for (size_t j = 0; j < unused_files.size(); ++j)
      if (unused_files[j].numel == mts[i].shape.numel() && leaf(unused_files[j].name) == leaf(mts[i].name))
        pairs.emplace_back(edit_distance(unused_files[j].name, mts[i].name), i, j);
  }
  std::sort(pairs.begin(), pairs.end());
  std::vector<bool> taken(unused_files.size(), false);
  for (const auto& [d, i, j] : pairs) {
    if (!plan.entries[i].likely.empty() || taken[j]) continue;
    plan.entries[i].likely = unused_files[j].name;
    taken[j] = true;
  }
}

}  // namespace

ImportPlan plan_import(const std::string& path, const config::BuiltModel& model, const ImportOptions& opt) {
  H5Reader r(path);
  ImportPlan plan;
  plan.file = path;
  std::vector<FileTensor> files = list_file_tensors(r, plan);

  std::vector<ModelTensor> mts;
  for (auto& [name, v] : model.graph->named_parameters()) mts.push_back({name, v.data().shape(), v.data().dtype()});
  for (auto& [name, t] : model.graph->named_buffers()) mts.push_back({name, t->shape(), t->dtype()});
  std::set<std::string> model_names;
  for (const auto& m : mts) model_names.insert(m.name);
  std::set<std::string> quantizers, weight_quantizers;  // modules whose state a float file cannot have
  for (auto& [name, m] : model.graph->named_modules()) {
    if (dynamic_cast<quant::Quantizer*>(m)) quantizers.insert(name);
    if (dynamic_cast<quant::QuantWeightLayer*>(m)) weight_quantizers.insert(name + ".weight_quant");
  }

  rename_file_tensors(files, opt, model_names, plan);
  std::map<std::string, size_t> by_name;
  for (size_t i = 0; i < files.size(); ++i) {
    auto [it, fresh] = by_name.emplace(files[i].name, i);
    LB_CHECK(fresh, path, ": two file tensors both load as '", files[i].name, "': ", files[it->second].file_name, " and ",
             files[i].file_name, " (check the --map renames)");
  }

  const std::map<std::string, LayerInfo> infos =
      plan.source == WeightSource::keras ? layer_infos(model) : std::map<std::string, LayerInfo>{};
  std::vector<bool> used(files.size(), false);
  for (const auto& mt : mts) {
    Tensor value;
    auto it = by_name.find(mt.name);
    if (it != by_name.end()) {
      used[it->second] = true;
      plan.entries.push_back(match_tensor(r, mt, files[it->second], plan, infos, value));
    } else {
      ImportEntry e;
      e.model_name = mt.name;
      e.model_shape = mt.shape;
      if (ends_with(mt.name, ".num_batches_tracked")) {  // Keras has none; only matters for momentum=None
        e.status = MatchStatus::kept_default;
        e.detail = "not in the file: keeps its initial value";
      } else if (quantizers.count(module_of(mt.name))) {
        e.status = MatchStatus::kept_default;
        e.detail = weight_quantizers.count(module_of(mt.name))
                       ? "weight quantizer state, not in the file: initialized from the imported weight"
                       : "quantizer state, not in the file: as the recipe initializes it (statistics from training data)";
      } else {
        e.status = MatchStatus::missing;
      }
      plan.entries.push_back(e);
    }
    plan.values.push_back(value);
  }
  suggest_names(files, used, mts, plan);
  return plan;
}

std::string format_import_table(const ImportPlan& plan, bool show_matched) {
  struct Row {
    std::string status, model, mshape, file, fshape, note;
  };
  std::vector<Row> rows;
  rows.push_back({"status", "model tensor", "shape", "file tensor", "file shape", "conversion / note"});
  for (const auto& e : plan.entries) {
    if (!show_matched && e.status == MatchStatus::matched) continue;
    const bool has_file = !e.file_name.empty();
    std::string note = e.conversion;
    if (!e.detail.empty()) note += (note.empty() ? "" : "; ") + e.detail;
    rows.push_back({match_status_name(e.status), e.model_name, e.model_shape.str(), has_file ? e.file_name : "-",
                    has_file ? e.file_shape.str() : "", note});
  }
  for (const auto& u : plan.unused)
    rows.push_back({"UNUSED", "-", "", u.file_name, u.shape.str(),
                    (u.name != u.file_name ? "as '" + u.name + "'; " : std::string()) + "closest in model: " + u.closest});
  size_t w[5] = {0, 0, 0, 0, 0};
  for (const auto& r : rows) {
    w[0] = std::max(w[0], r.status.size());
    w[1] = std::max(w[1], r.model.size());
    w[2] = std::max(w[2], r.mshape.size());
    w[3] = std::max(w[3], r.file.size());
    w[4] = std::max(w[4], r.fshape.size());
  }
  auto pad = [](const std::string& s, size_t n) { return s + std::string(n > s.size() ? n - s.size() : 0, ' '); };
  std::string out = std::string("source: ") + plan.file + ": " + weight_source_name(plan.source) +
                    (plan.source_detail.empty() ? "" : " " + plan.source_detail) + "\n";
  for (const auto& r : rows) {
    std::string line = "  " + pad(r.status, w[0]) + "  " + pad(r.model, w[1]) + "  " + pad(r.mshape, w[2]) + "  " +
                       pad(r.file, w[3]) + "  " + pad(r.fshape, w[4]) + "  " + r.note;
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  for (const auto& n : plan.notes) out += "note: " + n + "\n";
  out += "summary: " + std::to_string(plan.count(MatchStatus::matched)) + " matched, " +
         std::to_string(plan.count(MatchStatus::missing)) + " missing, " +
         std::to_string(plan.count(MatchStatus::shape_mismatch)) + " shape mismatch, " +
         std::to_string(plan.unused.size()) + " unused file tensor(s)";
  if (plan.count(MatchStatus::kept_default)) out += ", " + std::to_string(plan.count(MatchStatus::kept_default)) + " kept at default";
  return out + "\n";
}

void check_import(const ImportPlan& plan, const ImportOptions& opt) {
  std::vector<std::string> bad, missing, unused;
  for (const auto& e : plan.entries) {
    if (e.status == MatchStatus::shape_mismatch) bad.push_back("'" + e.model_name + "': " + e.detail);
    if (e.status == MatchStatus::missing) missing.push_back("'" + e.model_name + "' " + e.model_shape.str() + " (" + e.detail + ")");
  }
  for (const auto& u : plan.unused)
    unused.push_back("'" + u.file_name + "' " + u.shape.str() + (u.name != u.file_name ? " as '" + u.name + "'" : "") +
                     " (closest in model: " + u.closest + ")");
  // Renames that would explain the missing tensors: "--map features.c1=conv1".
  std::map<std::string, std::set<std::string>> renames;  // file module -> model modules
  for (const auto& e : plan.entries)
    if (e.status == MatchStatus::missing && !e.likely.empty() && module_of(e.likely) != module_of(e.model_name) &&
        !module_of(e.likely).empty() && !module_of(e.model_name).empty())
      renames[module_of(e.likely)].insert(module_of(e.model_name));
  std::string try_maps;
  bool suggested = false;
  for (const auto& [from, to] : renames)
    if (to.size() == 1) {  // only unambiguous ones
      try_maps += " --map " + from + "=" + *to.begin();
      suggested = true;
    }
  if (plan.count(MatchStatus::matched) == 0 && !missing.empty()) {
    std::vector<std::string> model_names, file_names;
    for (const auto& e : plan.entries)
      if (e.status == MatchStatus::missing) model_names.push_back(e.model_name);
    for (const auto& u : plan.unused) file_names.push_back(u.name);
    LB_FAIL(plan.file, ": no tensor name of the file matches the model (", weight_source_name(plan.source), ").\n  model: ",
            list_inline(model_names), "\n  file:  ", list_inline(file_names),
            "\nrename with --map OLD=NEW (name prefixes; ",
            !suggested ? "e.g. --map " + (file_names.empty() ? std::string("old") : module_of(file_names[0])) + "=" +
                                    module_of(model_names[0])
                              : "by sizes perhaps" + try_maps,
            "), or check that the file belongs to this model");
  }
  LB_CHECK(bad.empty(), plan.file, ": ", bad.size(), " tensor(s) have the wrong shape or type:", list_some(bad),
           "\n(is the file from a different model, or does the config need other model.params?)");
  LB_CHECK(missing.empty() || opt.allow_missing, plan.file, ": ", missing.size(), " model tensor(s) are not in the file:",
           list_some(missing), "\nrename file tensors with --map OLD=NEW", !suggested ? "" : " (perhaps" + try_maps + ")",
           ", or pass --allow-missing to keep their initial values");
  LB_CHECK(!opt.strict || unused.empty(), plan.file, ": ", unused.size(), " file tensor(s) are not used by the model (--strict):",
           list_some(unused), "\nrename them with --map OLD=NEW, or drop --strict to ignore them");
}

std::vector<std::string> apply_import(const ImportPlan& plan, config::BuiltModel& model) {
  std::map<std::string, Tensor*> dst;
  auto params = model.graph->named_parameters();  // Variables share their data with the model
  for (auto& [name, v] : params) dst[name] = &v.data();
  for (auto& [name, t] : model.graph->named_buffers()) dst[name] = t;
  for (size_t i = 0; i < plan.entries.size(); ++i) {
    if (plan.entries[i].status != MatchStatus::matched) continue;
    auto it = dst.find(plan.entries[i].model_name);
    LB_CHECK(it != dst.end(), "import: the model has no tensor '", plan.entries[i].model_name, "' (plan from another model?)");
    LB_CHECK(it->second->shape() == plan.values[i].shape(), "import: '", plan.entries[i].model_name, "' is ",
             it->second->shape().str(), " in the model but ", plan.values[i].shape().str(), " in the plan");
    it->second->copy_from(plan.values[i]);
  }
  // Quantized models: a weight quantizer with a learned or collected scale that the file did
  // not provide starts from the statistic of the imported weight.
  std::set<std::string> imported;
  for (const auto& e : plan.entries)
    if (e.status == MatchStatus::matched) imported.insert(e.model_name);
  std::vector<std::string> initialized;
  for (auto& [name, m] : model.graph->named_modules()) {
    auto* layer = dynamic_cast<quant::QuantWeightLayer*>(m);
    if (!layer || !imported.count(name + ".weight")) continue;
    const std::string qname = name + ".weight_quant";
    const bool has_state = std::any_of(imported.begin(), imported.end(),
                                       [&](const std::string& n) { return n.rfind(qname + ".", 0) == 0; });
    const quant::QuantizerConfig& qc = layer->weight_quant().config();
    if (has_state || qc.external_scale || qc.scale_impl == quant::ScaleImpl::stats ||
        qc.scale_impl == quant::ScaleImpl::constant)
      continue;
    layer->weight_quant().reset_from(layer->weight().data());
    initialized.push_back(qname);
  }
  return initialized;
}

ImportPlan import_weights(const std::string& path, config::BuiltModel& model, const ImportOptions& opt) {
  ImportPlan plan = plan_import(path, model, opt);
  check_import(plan, opt);
  apply_import(plan, model);
  return plan;
}

}  // namespace lowbit::persist
