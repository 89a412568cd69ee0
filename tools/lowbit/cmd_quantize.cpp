// `lowbit quantize MODEL.yaml RECIPE.yaml -o quantized.yaml`: the resolved quantized model.
// `lowbit calibrate CONFIG --batches N [--weights CKPT]`: post-training calibration, then eval.
#include <boost/program_options.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli_args.h"
#include "commands.h"
#include "core/error.h"
#include "deploy/lower.h"
#include "core/threads.h"
#include "persist/checkpoint.h"
#include "config/run_config.h"
#include "train/calibration.h"
#include "quant/qat.h"
#include "quant/recipe.h"
#include "quant/resolved_model.h"
#include "train/trainer.h"

namespace po = boost::program_options;

namespace lowbit::cli {

namespace {

// Parses args with the given options and positional names; returns -1 to go on, else an exit code.
int parse_args(const std::vector<std::string>& args, const char* name, po::options_description& opts,
               const char* usage, const char* help, std::vector<std::string>& positional, po::variables_map& vm) {
  if (!parse_command_line(args, name, opts, vm, positional)) return 2;
  if (vm.count("help")) {
    std::cout << "usage: " << usage << "\n" << help << "\n\n" << opts;
    return 0;
  }
  return -1;
}

const char* kQuantizeHelp = R"(Applies a quantization recipe to a float model and writes the resolved quantized model:
every layer with its quantizers' options spelled out (preset, bits, signedness, range,
scale policy, rounding, gradient), bias and accumulator handling, batch-norm folding, each
layer's output shape and quantization metadata, and the weight-bit count. Nothing is trained.

RECIPE is a run config with a `quant:` map (configs/*.yaml; its model.params apply to MODEL)
or a file that is the `quant:` map itself.

examples:
  lowbit quantize models/lenet5.yaml configs/lenet5_fmnist_w4a4.yaml -o lenet5_w4a4.yaml
  lowbit quantize models/resnet8.yaml configs/resnet8_fmnist_w4a4.yaml     (to stdout))";

const char* kCalibrateHelp = R"(Post-training calibration: runs N training batches (no augmentation, in order) through the
quantized model of CONFIG without training, so every statistic-based activation quantizer
collects its range and hands it to its scale; then evaluates on the test set. Prints
calibrated=<quantizers>, test_loss=<value> and, last, test_acc=<value>.

--weights loads trained weights first: a checkpoint of the same config, or of its float
model (quantizer state missing from it starts fresh).

examples:
  lowbit calibrate configs/lenet5_fmnist_w8a8.yaml --batches 20 --weights runs/lenet5_fmnist_fp32
  lowbit calibrate configs/lenet5_fmnist_w4a4.yaml --batches 50 --weights fp32.h5 -o calibrated.h5)";

}  // namespace

int cmd_quantize(const std::vector<std::string>& args) {
  std::string out;
  int64_t seed = 0;
  po::options_description opts("lowbit quantize options");
  opts.add_options()("help,h", "show this help")("out,o", po::value<std::string>(&out), "write to this file (default: stdout)")(
      "seed", po::value<int64_t>(&seed), "weight initialization seed (default 0)");
  std::vector<std::string> pos;
  po::variables_map vm;
  const int rc = parse_args(args, "quantize", opts, "lowbit quantize MODEL.yaml RECIPE.yaml [-o quantized.yaml]",
                            kQuantizeHelp, pos, vm);
  if (rc >= 0) return rc;
  if (pos.size() != 2) {
    std::fprintf(stderr, "lowbit quantize: give MODEL.yaml and RECIPE.yaml (got %zu arguments)\n", pos.size());
    return 2;
  }
  const std::string model_path = pos[0], recipe_path = pos[1];
  YAML::Node doc = io::load_yaml_file(recipe_path);
  io::YamlSource src;
  src.file = recipe_path;
  YAML::Node quant;  // (yaml-cpp: reset() rebinds, = would overwrite the node it refers to)
  quant.reset(doc);
  std::map<std::string, config::ModelParamOverride> params;
  if (doc.IsMap() && (doc["quant"] || doc["model"])) {  // a run config
    quant.reset(doc["quant"]);
    LB_CHECK(quant && !quant.IsNull() && !(quant.IsMap() && quant.size() == 0), recipe_path,
             ": the run config has no `quant:` recipe (nothing to quantize)");
    if (YAML::Node p = doc["model"]["params"]) {
      LB_CHECK(p.IsMap(), src.where(p, "model.params"), ": model.params must be a map of name: number");
      for (auto it = p.begin(); it != p.end(); ++it)
        params[it->first.as<std::string>()] = {io::yaml_number(it->second, src, "model.params." + it->first.as<std::string>()),
                                               src.where(it->second, "model.params." + it->first.as<std::string>())};
    }
  }
  config::BuiltModel m = config::build_model(model_path, params, static_cast<uint64_t>(seed));
  quant::QuantRecipe recipe = quant::parse_recipe(quant, src);
  LB_CHECK(recipe.enabled, recipe_path, ": the recipe is empty (nothing to quantize)");
  quant::apply_recipe(*m.graph, recipe, m.input);
  const std::string text = quant::resolved_model_yaml(
      m, model_path,
      "Resolved quantized model: " + model_path + " with the recipe of " + recipe_path +
          "\nWritten by `lowbit quantize`; every layer as `lowbit train` will train it.");
  const quant::WeightBits wb = quant::weight_bits(*m.graph);
  // Whether it has an integer form (after the text: the check runs forwards that move the
  // quantizers' statistics).
  const std::string refusal = deploy::lowering_refusal(*m.graph, m.input, m.name);
  const std::string summary = refusal.empty() ? "integer-deployable: yes (lowbit verify checks a trained run)"
                                              : "integer-deployable: no: " + refusal;
  if (out.empty()) {
    std::cout << text << "# " << summary << "\n";
  } else {
    std::ofstream f(out);
    LB_CHECK(f.good(), "cannot write ", out);
    f << text;
    LB_CHECK(f.good(), "cannot write ", out);
    std::printf("wrote %s (%zu layers, %lld weight bits)\n", out.c_str(), m.graph->nodes().size(),
                static_cast<long long>(wb.total_bits));
    std::printf("%s\n", summary.c_str());
  }
  return 0;
}

int cmd_calibrate(const std::vector<std::string>& args) {
  int64_t batches = 0;
  std::string weights, out;
  int threads = -1;
  po::options_description opts("lowbit calibrate options");
  opts.add_options()("help,h", "show this help")("batches,n", po::value<int64_t>(&batches),
                                                 "training batches to collect statistics over (required)")(
      "weights,w", po::value<std::string>(&weights), "start from these weights (checkpoint or run folder)")(
      "out,o", po::value<std::string>(&out), "write the calibrated model as a checkpoint")(
      "threads", po::value<int>(&threads), "threads (overrides train.threads)");
  std::vector<std::string> pos;
  po::variables_map vm;
  const int rc = parse_args(args, "calibrate", opts,
                            "lowbit calibrate CONFIG --batches N [--weights CKPT] [-o OUT.h5] [key.sub=value ...]",
                            kCalibrateHelp, pos, vm);
  if (rc >= 0) return rc;
  if (pos.empty()) {
    std::fprintf(stderr, "lowbit calibrate: missing CONFIG (a run config with a quant: recipe)\n");
    return 2;
  }
  if (!vm.count("batches") || batches < 1) {
    std::fprintf(stderr, "lowbit calibrate: give --batches N (N >= 1)\n");
    return 2;
  }
  std::vector<std::string> overrides(pos.begin() + 1, pos.end());
  for (const auto& o : overrides)
    if (o.find('=') == std::string::npos) {
      std::fprintf(stderr, "lowbit calibrate: unexpected argument '%s' (overrides look like key.sub=value)\n", o.c_str());
      return 2;
    }
  if (threads >= 0) overrides.push_back("train.threads=" + std::to_string(threads));
  config::RunConfig cfg = config::load_run_config(pos[0], overrides);
  LB_CHECK(quant::parse_recipe(cfg.quant, cfg.source).enabled, pos[0],
           ": the config has no quant: recipe (calibration sets quantizer scales)");
  set_num_threads(static_cast<int>(cfg.train.threads));
  config::BuiltModel m = train::build_model(cfg);
  if (!weights.empty()) {
    const std::string ckpt = weights_file(weights);
    const int64_t fresh = train::load_weights_for_calibration(ckpt, *m.graph);
    std::fprintf(stderr, "loaded %s (%lld quantizer tensors start fresh)\n", ckpt.c_str(), static_cast<long long>(fresh));
  }
  data::Dataset train_ds = train::load_dataset(cfg.data, true);
  data::LoaderOptions lo = train::eval_loader_options(cfg);
  lo.batch_size = cfg.train.batch_size;  // calibration batches are training batches, in order
  data::DataLoader loader(train_ds, lo);
  LB_CHECK(loader.sample_shape() == m.input, "the model expects inputs ", m.input.str(), " but the data gives ",
           loader.sample_shape().str());
  const train::CalibrationResult cr = train::calibrate(*m.graph, loader, batches);
  data::Dataset test = train::load_dataset(cfg.data, false);
  data::DataLoader test_loader(test, train::eval_loader_options(cfg));
  const train::EvalResult r = train::evaluate(*m.graph, test_loader);
  if (!out.empty()) {
    persist::CheckpointParts parts;
    parts.config_yaml = config::to_yaml(cfg.resolved);
    persist::save_checkpoint(out, *m.graph, nullptr, nullptr, parts);
  }
  std::printf("batches=%lld\ncalibrated=%lld\nsamples=%lld\ntest_loss=%.6f\ntest_acc=%.4f\n",
              static_cast<long long>(cr.batches), static_cast<long long>(cr.quantizers),
              static_cast<long long>(r.samples), r.loss, r.acc);
  return 0;
}

}  // namespace lowbit::cli
