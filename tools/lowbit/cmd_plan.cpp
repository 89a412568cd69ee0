// `lowbit plan`: the memory-driven mixed-precision planner (docs/mixed-precision.md).
#include <boost/program_options.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "cli_args.h"
#include "commands.h"
#include "core/error.h"
#include "deploy/planner.h"
#include "deploy/planner_file.h"
#include "config/model_file.h"
#include "config/run_config.h"
#include "io/yaml_util.h"

namespace po = boost::program_options;

namespace lowbit::cli {

namespace {

const char* kPlanExamples = R"(
MODEL_OR_RUN_CONFIG is a model file (models/*.yaml) or a run config (configs/*.yaml, whose
model.path and model.params are used). Sizes: plain bytes, or with a unit: kB/KB, MB, GB
(powers of 1000) or KiB, MiB, GiB (powers of 1024).

examples:
  # the paper's setting: MobileNetV1 0.75/224 on a 2 MB flash / 512 kB RAM microcontroller
  lowbit plan models/mobilenet_v1.yaml --param width=0.75 --flash 2048000 --ram 512000 --accounting paper
  lowbit plan models/mobilenet_v1.yaml --param width=0.75 --flash 2MB --ram 512kB --per-channel -o plan.yaml
  lowbit plan configs/mobilenet_v1_fmnist_fp32.yaml --flash 256KiB --ram 64KiB

The table lists every conv/linear layer: weight count, weight bits, input/output activation
bits, flash bytes (weights + quantization parameters) and RAM bytes (input + output buffers, and
with exact accounting the residual shortcuts alive across the layer).
-o writes the plan (per-layer bit widths by layer name) for a run config's `quant.plan:`.
Exit status: 0 planned, 1 error or limits that cannot be met, 2 usage error.
)";

double parse_number(const std::string& s, const std::string& what) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  LB_CHECK(!s.empty() && end && *end == '\0' && std::isfinite(v), what, ": '", s, "' is not a number");
  return v;
}

// "848 B" or "1,234,567 B (1.18 MiB)".
std::string sized(int64_t b) {
  return deploy::group_digits(b) + " B" + (b < 1024 ? std::string() : " (" + deploy::human_bytes(b) + ")");
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::string pct(int64_t a, int64_t b) {
  char buf[32];
  // Rounded down: 99.97% must not read as 100.0%.
  std::snprintf(buf, sizeof buf, "%.1f%%", std::floor(1000.0 * static_cast<double>(a) / static_cast<double>(b)) / 10.0);
  return buf;
}

void print_table(const deploy::Plan& p) {
  using deploy::group_digits;
  const deploy::Network& net = p.net;
  size_t nw = 5;
  for (const auto& l : net.layers) nw = std::max(nw, l.name.size());
  const int w = static_cast<int>(nw);
  std::printf("%3s  %-*s  %-9s  %11s  %2s  %2s  %3s  %12s  %12s\n", "#", w, "layer", "kind", "weights", "w", "in", "out",
              "flash B", "RAM B");
  int64_t weights = 0;
  for (size_t i = 0; i < net.layers.size(); ++i) {
    const deploy::PlanLayer& l = net.layers[i];
    const deploy::LayerPlan& lp = p.layers[i];
    weights += l.weights;
    std::printf("%3zu  %-*s  %-9s  %11s  %2d  %2d  %3d  %12s  %12s%s\n", i, w, l.name.c_str(), l.kind.c_str(),
                group_digits(l.weights).c_str(), lp.weight_bits, lp.in_bits, lp.out_bits,
                group_digits(lp.cost.flash_bytes()).c_str(), group_digits(lp.cost.ram_bytes()).c_str(),
                static_cast<int>(i) == p.ram_peak_layer ? "  <- RAM peak" : "");
  }
  std::printf("%3s  %-*s  %-9s  %11s  %2s  %2s  %3s  %12s  %12s\n", "", w, "total", "", group_digits(weights).c_str(), "",
              "", "", group_digits(p.flash_bytes).c_str(), group_digits(p.ram_bytes).c_str());
}

}  // namespace

int cmd_plan(const std::vector<std::string>& args_in) {
  // "--ram -5": hand a negative value to the size parser (which explains) instead of Boost.
  std::vector<std::string> args;
  for (size_t i = 0; i < args_in.size(); ++i) {
    if ((args_in[i] == "--flash" || args_in[i] == "--ram") && i + 1 < args_in.size() && args_in[i + 1].size() > 1 &&
        args_in[i + 1][0] == '-' && (std::isdigit(static_cast<unsigned char>(args_in[i + 1][1])) || args_in[i + 1][1] == '.')) {
      args.push_back(args_in[i] + "=" + args_in[i + 1]);
      ++i;
    } else {
      args.push_back(args_in[i]);
    }
  }

  std::string flash_s, ram_s, accounting_s = "exact", out;
  std::vector<std::string> params;
  bool per_channel = false, verbose = false;
  po::options_description opts("lowbit plan options");
  opts.add_options()("help,h", "show this help")
      ("flash", po::value<std::string>(&flash_s), "read-only memory for weights + quantization parameters (required)")
      ("ram", po::value<std::string>(&ram_s), "read-write memory for activations (required)")
      ("per-channel", po::bool_switch(&per_channel), "per-channel weight scales (MixPC; default per layer, MixPL)")
      ("accounting", po::value<std::string>(&accounting_s), "exact (default: the bytes Lowbit's integer export "
                                                            "emits) or paper (the method's overhead model)")
      ("param", po::value<std::vector<std::string>>(&params)->composing(), "model parameter NAME=VALUE (repeatable), "
                                                                          "e.g. --param width=0.75")
      ("out,o", po::value<std::string>(&out), "write the plan file (YAML) here")
      ("verbose,v", po::bool_switch(&verbose), "print every cut the method makes");
  po::variables_map vm;
  std::vector<std::string> positional;
  if (!parse_command_line(args, "plan", opts, vm, positional)) return 2;
  if (vm.count("help")) {
    std::cout << "usage: lowbit plan MODEL_OR_RUN_CONFIG --flash BYTES --ram BYTES [options]\n"
              << "Chooses per-layer weight and activation bit widths (8/4/2) so the integer network fits the "
                 "given flash and RAM\n(Rusci et al. 2019, MixPL/MixPC).\n\n"
              << opts << kPlanExamples;
    return 0;
  }
  if (positional.empty()) {
    std::fprintf(stderr, "lowbit plan: missing MODEL_OR_RUN_CONFIG (a model file such as models/mobilenet_v1.yaml or a run config)\n");
    return 2;
  }
  if (positional.size() > 1) {
    std::fprintf(stderr, "lowbit plan: unexpected argument '%s' (model parameters are given as --param NAME=VALUE)\n",
                 positional[1].c_str());
    return 2;
  }
  if (!vm.count("flash") || !vm.count("ram")) {
    std::fprintf(stderr, "lowbit plan: missing %s (the device's %s size, e.g. %s)\n",
                 !vm.count("flash") ? "--flash" : "--ram", !vm.count("flash") ? "flash" : "RAM",
                 !vm.count("flash") ? "--flash 2MB" : "--ram 512kB");
    return 2;
  }

  deploy::PlanOptions opt;
  opt.flash_limit = deploy::parse_byte_size(flash_s, "--flash");
  opt.ram_limit = deploy::parse_byte_size(ram_s, "--ram");
  opt.scaling = per_channel ? deploy::Scaling::per_channel : deploy::Scaling::per_layer;
  LB_CHECK(accounting_s == "paper" || accounting_s == "exact", "--accounting: '", accounting_s,
           "' is not an accounting mode (paper | exact)");
  opt.accounting = accounting_s == "paper" ? deploy::Accounting::paper : deploy::Accounting::exact;

  // Model file or run config?
  const std::string input = positional[0];
  YAML::Node root = io::load_yaml_file(input);
  std::string model_path;
  std::map<std::string, config::ModelParamOverride> overrides;
  if (root.IsMap() && root["layers"]) {
    model_path = input;
  } else if (root.IsMap() && root["model"]) {
    config::RunConfig cfg = config::load_run_config(input, {});
    model_path = cfg.model_path;
    overrides = cfg.model_params;
  } else {
    LB_FAIL(input, ": neither a model file (with `layers:`) nor a run config (with `model:`)");
  }
  for (const std::string& kv : params) {
    const auto eq = kv.find('=');
    LB_CHECK(eq != std::string::npos && eq > 0, "--param '", kv, "': expected NAME=VALUE, e.g. --param width=0.75");
    const std::string k = kv.substr(0, eq);
    overrides[k] = {parse_number(kv.substr(eq + 1), "--param " + k), "--param " + kv};
  }

  const auto t0 = std::chrono::steady_clock::now();
  config::BuiltModel m;
  try {
    m = config::build_model(model_path, overrides, 0);
  } catch (const Error& e) {
    const std::string msg = e.what();
    if (msg.find(": input") == std::string::npos) throw;
    throw Error(msg + " (the planner needs the input size (C, H, W) to size the activations: set the model file's "
                      "`input:` or its params, e.g. --param input_size=224)");
  }
  const double build_ms = ms_since(t0);
  const auto t1 = std::chrono::steady_clock::now();
  deploy::Network net = deploy::describe(*m.graph, m.input, m.name);
  deploy::Plan p = deploy::plan(net, opt);
  const double plan_ms = ms_since(t1);

  std::string params_txt;
  for (const auto& [k, v] : m.params) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s%s=%g", params_txt.empty() ? "" : " ", k.c_str(), v);
    params_txt += buf;
  }
  std::printf("model %s (%s%s%s), input %lldx%lldx%lld\n", m.name.c_str(), model_path.c_str(),
              params_txt.empty() ? "" : ": ", params_txt.c_str(), static_cast<long long>(m.input[0]),
              static_cast<long long>(m.input[1]), static_cast<long long>(m.input[2]));
  std::printf("method %s (%s weight scales), %s accounting; limits: flash %s, RAM %s\n", deploy::method_name(opt.scaling),
              per_channel ? "per-channel" : "per-layer", deploy::to_string(opt.accounting), sized(opt.flash_limit).c_str(),
              sized(opt.ram_limit).c_str());
  if (verbose)
    for (const std::string& s : p.steps) std::printf("  %s\n", s.c_str());
  if (!p.ok) {
    std::fflush(stdout);
    std::fprintf(stderr, "lowbit plan: error: %s\n", p.message.c_str());
    std::fprintf(stderr, "lowbit plan: gave up after %.2f ms (model built in %.1f ms)\n", plan_ms, build_ms);
    return 1;
  }
  std::printf("\n");
  print_table(p);
  std::printf("\nflash %s of %s: %s used\n", sized(p.flash_bytes).c_str(), sized(opt.flash_limit).c_str(),
              pct(p.flash_bytes, opt.flash_limit).c_str());
  std::printf("      (weights %s B + quantization parameters %s B)\n", deploy::group_digits(p.weight_bytes).c_str(),
              deploy::group_digits(p.flash_bytes - p.weight_bytes).c_str());
  const bool shortcut = opt.accounting == deploy::Accounting::exact && !net.layers[p.ram_peak_layer].live.empty();
  std::printf("RAM   %s of %s: %s used (peak: layer %d '%s', input + output buffers%s)\n", sized(p.ram_bytes).c_str(),
              sized(opt.ram_limit).c_str(), pct(p.ram_bytes, opt.ram_limit).c_str(), p.ram_peak_layer,
              net.layers[p.ram_peak_layer].name.c_str(), shortcut ? " + the shortcuts alive across it" : "");
  std::printf("cuts: %d activation, %d weight; smallest limits that work for this model: --ram %s, --flash %s\n",
              p.act_cuts, p.weight_cuts, deploy::group_digits(p.min_ram).c_str(), deploy::group_digits(p.min_flash).c_str());
  if (!out.empty()) {
    std::map<std::string, double> used_params = m.params;
    deploy::write_plan_file(out, p, {model_path, used_params});
    std::printf("wrote %s\n", out.c_str());
  }
  std::printf("planned in %.2f ms (model built in %.1f ms)\n", plan_ms, build_ms);
  return 0;
}

}  // namespace lowbit::cli
