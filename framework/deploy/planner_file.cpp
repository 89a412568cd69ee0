#include "deploy/planner_file.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "io/yaml_util.h"

namespace lowbit::deploy {

namespace {

// A YAML scalar for a name: plain when safe, double-quoted otherwise ("0", names with spaces).
std::string yaml_key(const std::string& s) {
  bool plain = !s.empty() && (std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_');
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == '/')) plain = false;
  static const std::set<std::string> reserved{"true", "false", "yes", "no", "on", "off", "null", "True", "False",
                                              "Yes", "No", "On", "Off", "Null", "NULL", "TRUE", "FALSE", "y", "n"};
  if (plain && !reserved.count(s)) return s;
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') q += '\\';
    q += c;
  }
  return q + "\"";
}

// Shortest text that reads back as the same double.
std::string number(double v) {
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
    return buf;
  }
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

int read_bits(const YAML::Node& n, const io::YamlSource& src, const std::string& key) {
  const int64_t b = io::yaml_int(n, src, key);
  LB_CHECK(b == 2 || b == 4 || b == 8, src.where(n, key), ": ", key, ": bit widths are 2, 4 or 8, got ", b);
  return static_cast<int>(b);
}

void check_keys(const YAML::Node& map, const io::YamlSource& src, const std::string& prefix,
                const std::vector<std::string>& keys) {
  for (auto it = map.begin(); it != map.end(); ++it) {
    const std::string k = it->first.as<std::string>();
    if (std::find(keys.begin(), keys.end(), k) == keys.end())
      LB_FAIL(src.where(it->first, prefix + k), ": unknown key '", prefix + k, "' in a plan file (valid here: ",
              io::closest_names(k, keys), ")");
  }
}

}  // namespace

std::string plan_to_yaml(const Plan& p, const PlanSource& src) {
  LB_CHECK(p.ok, "plan_to_yaml: the plan failed (", p.message, ")");
  const Network& net = p.net;
  std::ostringstream os;
  os << "# Mixed-precision plan written by `lowbit plan` (schema: docs/mixed-precision.md, \"Plan file\").\n"
     << "# A run config includes it as `quant.plan: <this file>` to train these bit widths.\n"
     << "lowbit_plan: 1\n"
     << "model: " << yaml_key(net.name) << "\n";
  if (!src.model_file.empty()) os << "model_file: " << yaml_key(src.model_file) << "\n";
  os << "params: {";
  bool first = true;
  for (const auto& [k, v] : src.params) {
    os << (first ? "" : ", ") << yaml_key(k) << ": " << number(v);
    first = false;
  }
  os << "}\n"
     << "method: " << method_name(p.options.scaling) << "\n"
     << "weight_scaling: " << to_string(p.options.scaling) << "\n"
     << "accounting: " << to_string(p.options.accounting) << "\n"
     << "input_bits: 8\n"
     << "limits: {flash: " << p.options.flash_limit << ", ram: " << p.options.ram_limit << "}\n"
     << "totals: {flash: " << p.flash_bytes << ", weights: " << p.weight_bytes << ", ram: " << p.ram_bytes
     << ", ram_layer: " << yaml_key(net.layers[p.ram_peak_layer].name) << "}\n"
     << "layers:\n";
  size_t width = 0;
  for (const PlanLayer& l : net.layers) width = std::max(width, yaml_key(l.name).size());
  for (size_t i = 0; i < net.layers.size(); ++i) {
    const PlanLayer& l = net.layers[i];
    const LayerPlan& lp = p.layers[i];
    const std::string key = yaml_key(l.name) + ":";
    os << "  " << key << std::string(width + 2 - key.size(), ' ') << "{kind: " << l.kind << ", weights: " << l.weights
       << ", weight_bits: " << lp.weight_bits << ", in_bits: " << lp.in_bits << ", out_bits: " << lp.out_bits
       << ", flash: " << lp.cost.flash_bytes() << ", ram: " << lp.cost.ram_bytes() << "}\n";
  }
  return os.str();
}

void write_plan_file(const std::string& path, const Plan& p, const PlanSource& src) {
  const std::string text = plan_to_yaml(p, src);
  std::ofstream f(path, std::ios::binary);
  LB_CHECK(f.good(), "cannot write the plan file '", path, "'");
  f << text;
  f.close();
  LB_CHECK(f.good(), "cannot write the plan file '", path, "' (disk full?)");
}

PlanFile read_plan_file(const std::string& path) {
  YAML::Node root = io::load_yaml_file(path);
  io::YamlSource src{path, {}};
  LB_CHECK(root.IsMap(), path, ": a plan file is a map (lowbit_plan: 1, layers: ...; see docs/mixed-precision.md)");
  check_keys(root, src, "",
             {"lowbit_plan", "model", "model_file", "params", "method", "weight_scaling", "accounting", "input_bits",
              "limits", "totals", "layers"});
  PlanFile pf;
  pf.file = path;
  LB_CHECK(root["lowbit_plan"], path, ": missing `lowbit_plan: 1` (is this a plan file written by `lowbit plan`?)");
  pf.version = static_cast<int>(io::yaml_int(root["lowbit_plan"], src, "lowbit_plan"));
  LB_CHECK(pf.version == 1, src.where(root["lowbit_plan"], "lowbit_plan"), ": plan file version ", pf.version,
           " is not supported (this Lowbit reads version 1)");
  if (root["model"]) pf.model = io::yaml_string(root["model"], src, "model");
  if (root["model_file"]) pf.model_file = io::yaml_string(root["model_file"], src, "model_file");
  if (YAML::Node ps = root["params"]) {
    LB_CHECK(ps.IsMap() || ps.IsNull(), src.where(ps, "params"), ": params must be a map of name: number");
    for (auto it = ps.begin(); it != ps.end(); ++it) {
      const std::string k = it->first.as<std::string>();
      pf.params[k] = io::yaml_number(it->second, src, "params." + k);
    }
  }
  LB_CHECK(root["weight_scaling"], path, ": missing `weight_scaling: per_layer | per_channel`");
  {
    const std::string s = io::yaml_string(root["weight_scaling"], src, "weight_scaling");
    LB_CHECK(s == "per_layer" || s == "per_channel", src.where(root["weight_scaling"], "weight_scaling"),
             ": weight_scaling is per_layer or per_channel, got '", s, "'");
    pf.scaling = s == "per_layer" ? Scaling::per_layer : Scaling::per_channel;
  }
  if (YAML::Node m = root["method"]) {
    const std::string s = io::yaml_string(m, src, "method");
    LB_CHECK(s == "MixPL" || s == "MixPC", src.where(m, "method"), ": method is MixPL or MixPC, got '", s, "'");
    LB_CHECK((s == "MixPL") == (pf.scaling == Scaling::per_layer), src.where(m, "method"), ": method ", s,
             " contradicts weight_scaling ", to_string(pf.scaling));
  }
  if (YAML::Node a = root["accounting"]) {
    const std::string s = io::yaml_string(a, src, "accounting");
    LB_CHECK(s == "paper" || s == "exact", src.where(a, "accounting"), ": accounting is paper or exact, got '", s, "'");
    pf.accounting = s == "paper" ? Accounting::paper : Accounting::exact;
  }
  if (root["input_bits"]) {
    pf.input_bits = static_cast<int>(io::yaml_int(root["input_bits"], src, "input_bits"));
    LB_CHECK(pf.input_bits == 8, src.where(root["input_bits"], "input_bits"),
             ": input_bits must be 8 (the planner never cuts the network input)");
  }
  if (YAML::Node lim = root["limits"]) {
    LB_CHECK(lim.IsMap(), src.where(lim, "limits"), ": limits must be {flash: bytes, ram: bytes}");
    check_keys(lim, src, "limits.", {"flash", "ram"});
    if (lim["flash"]) pf.flash_limit = io::yaml_int(lim["flash"], src, "limits.flash");
    if (lim["ram"]) pf.ram_limit = io::yaml_int(lim["ram"], src, "limits.ram");
  }
  if (YAML::Node t = root["totals"]) {
    LB_CHECK(t.IsMap(), src.where(t, "totals"), ": totals must be a map");
    check_keys(t, src, "totals.", {"flash", "weights", "ram", "ram_layer"});
  }
  YAML::Node layers = root["layers"];
  LB_CHECK(layers && layers.IsMap() && layers.size() > 0, src.where(layers ? layers : root, "layers"),
           ": layers must be a non-empty map of layer name: {weight_bits, in_bits, out_bits}");
  std::set<std::string> seen;
  for (auto it = layers.begin(); it != layers.end(); ++it) {
    PlanFileLayer l;
    l.name = it->first.as<std::string>();
    const std::string key = "layers." + l.name;
    l.where = src.where(it->first, key);
    LB_CHECK(seen.insert(l.name).second, l.where, ": layer '", l.name, "' appears twice");
    const YAML::Node e = it->second;
    LB_CHECK(e.IsMap(), src.where(e, key), ": ", key, " must be a map {weight_bits, in_bits, out_bits}");
    check_keys(e, src, key + ".", {"kind", "weights", "weight_bits", "in_bits", "out_bits", "flash", "ram"});
    for (const char* k : {"weight_bits", "in_bits", "out_bits"})
      LB_CHECK(e[k], src.where(e, key), ": ", key, ": missing ", k);
    l.weight_bits = read_bits(e["weight_bits"], src, key + ".weight_bits");
    l.in_bits = read_bits(e["in_bits"], src, key + ".in_bits");
    l.out_bits = read_bits(e["out_bits"], src, key + ".out_bits");
    if (e["kind"]) l.kind = io::yaml_string(e["kind"], src, key + ".kind");
    for (const char* k : {"weights", "flash", "ram"})
      if (e[k]) io::yaml_int(e[k], src, key + "." + k);
    pf.layers.push_back(l);
  }
  return pf;
}

Bits apply_plan(const PlanFile& pf, const Network& net) {
  Bits b = all_8bit(net);
  std::vector<int> set_by(net.tensors.size(), -1);  // plan entry that fixed each tensor's bits
  std::vector<bool> used(pf.layers.size(), false);
  std::vector<std::string> net_names;
  for (const PlanLayer& l : net.layers) net_names.push_back(l.name);
  // The network input is read at input_bits.
  auto set_tensor = [&](int t, int bits, int entry, const char* role) {
    const PlanFileLayer& e = pf.layers[entry];
    if (net.tensors[t].fixed && bits != 8)
      LB_FAIL(e.where, ": layer '", e.name, "': ", role, " ", bits, ", but that activation ('", net.tensors[t].name,
              "') is the network's input or output, which stays at 8 bits");
    if (set_by[t] >= 0 && b.act[t] != bits) {
      const PlanFileLayer& o = pf.layers[set_by[t]];
      LB_FAIL(e.where, ": layer '", e.name, "': ", role, " ", bits, " disagrees with layer '", o.name, "' (", o.where,
              "), which gives the same activation tensor '", net.tensors[t].name, "' ", b.act[t],
              " bits (a layer's in_bits must equal the out_bits of the layer before it)");
    }
    b.act[t] = bits;
    set_by[t] = entry;
  };
  for (size_t i = 0; i < net.layers.size(); ++i) {
    const PlanLayer& l = net.layers[i];
    int entry = -1;
    for (size_t j = 0; j < pf.layers.size(); ++j)
      if (pf.layers[j].name == l.name) entry = static_cast<int>(j);
    if (entry < 0) {
      std::vector<std::string> names;
      for (const auto& e : pf.layers) names.push_back(e.name);
      LB_FAIL(pf.file, ": the plan has no entry for layer '", l.name, "' (", l.kind, ") of model '", net.name,
              "' (plan entries: ", io::closest_names(l.name, names), "); was the plan made for another model or other params?");
    }
    used[entry] = true;
    const PlanFileLayer& e = pf.layers[entry];
    b.weight[i] = e.weight_bits;
    set_tensor(l.in_tensor, e.in_bits, entry, "in_bits");
    set_tensor(l.out_tensor, e.out_bits, entry, "out_bits");
  }
  for (size_t j = 0; j < pf.layers.size(); ++j)
    LB_CHECK(used[j], pf.layers[j].where, ": plan entry '", pf.layers[j].name, "' names no conv2d or linear layer of model '",
             net.name, "' (layers: ", io::closest_names(pf.layers[j].name, net_names), ")");
  return b;
}

}  // namespace lowbit::deploy
