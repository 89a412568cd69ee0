// `lowbit import CONFIG --from WEIGHTS.h5 -o CKPT.h5`: PyTorch / Keras / Lowbit weights ->
// a Lowbit checkpoint of the config's model (docs/pytorch-interop.md).
#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>

#include "cli_args.h"
#include "commands.h"
#include "core/error.h"
#include "core/threads.h"
#include "persist/checkpoint.h"
#include "config/run_config.h"
#include "persist/weights_import.h"
#include "train/trainer.h"

namespace po = boost::program_options;

namespace lowbit::cli {

namespace {

const char* kImportHelp = R"(usage: lowbit import CONFIG --from WEIGHTS.h5 -o CKPT.h5 [--map OLD=NEW ...] [--strict | --allow-missing]
                     [key.sub=value ...]
Builds the model of a run config, loads the tensors of an HDF5 weight file into it by name and
writes a Lowbit checkpoint (epoch 0) for `lowbit eval` and `lowbit train --init`.

Weight files: PyTorch state dicts dumped with tools/torch_to_h5.py (flat dotted names such as
conv1.weight, or nested groups /conv1/weight), Lowbit checkpoints (their /model tensors), and
Keras legacy .h5 weights (layer_names / weight_names; conv kernels HWIO -> OIHW, Dense
(in, out) -> (out, in)). A table lists every model tensor: ok, MISSING, SHAPE (wrong shape),
default (a num_batches_tracked the file lacks, or quantizer state), and file tensors the model
does not use (UNUSED). A quantized config (with `quant:`) takes float weights: learned weight
scales start from the imported weights, activation quantizers as the recipe sets them up.
)";

const char* kImportExamples = R"(
examples:
  /usr/bin/python3 tools/torch_to_h5.py lenet5.pt -o lenet5_weights.h5
  lowbit import configs/lenet5_fmnist_fp32.yaml --from lenet5_weights.h5 -o lenet5_imported.h5
  lowbit eval --weights lenet5_imported.h5
  lowbit train configs/lenet5_fmnist_fp32.yaml --init lenet5_imported.h5
  lowbit import configs/lenet5_fmnist_fp32.yaml --from torchvision_style.h5 --map features.0=conv1 \
      --map features.3=conv2 --map classifier.0=fc1 -o out.h5
  lowbit import configs/lenet5_fmnist_fp32.yaml --from keras_weights.h5 --map conv2d=conv1 --map conv2d_1=conv2 \
      --map dense=fc1 --map dense_1=fc2 --map dense_2=fc3 -o out.h5
  lowbit import configs/resnet8_fmnist_fp32.yaml --from partial.h5 --allow-missing -o out.h5
  lowbit import configs/lenet5_fmnist_w4a4.yaml --from lenet5_weights.h5 -o lenet5_w4a4_init.h5

Without --allow-missing every model tensor must be in the file; with --strict every file tensor
must also be used. Nothing is written on an error (the output file is replaced atomically).
)";

}  // namespace

int cmd_import(const std::vector<std::string>& args) {
  std::string from, out;
  std::vector<std::string> maps;
  bool strict = false, allow_missing = false, problems_only = false;
  po::options_description opts("lowbit import options");
  opts.add_options()("help,h", "show this help")(
      "from,f", po::value(&from), "weight file (HDF5): PyTorch state dict, Lowbit checkpoint or Keras legacy weights")(
      "out,o", po::value(&out), "checkpoint to write")(
      "map,m", po::value(&maps)->composing(),
      "OLD=NEW: rename file names starting with the dotted prefix OLD (repeatable; the first that applies wins)")(
      "strict", po::bool_switch(&strict), "also fail when the file has tensors the model does not use")(
      "allow-missing", po::bool_switch(&allow_missing), "model tensors the file lacks keep their initial values")(
      "problems-only", po::bool_switch(&problems_only), "list only tensors that did not match in the table");
  po::variables_map vm;
  std::vector<std::string> positional;
  if (!parse_command_line(args, "import", opts, vm, positional)) return 2;
  if (vm.count("help")) {
    std::cout << kImportHelp << "\n" << opts << kImportExamples;
    return 0;
  }
  if (positional.empty() || positional[0].find('=') != std::string::npos) {
    std::fprintf(stderr, "lowbit import: missing CONFIG (a run config such as configs/lenet5_fmnist_fp32.yaml)\n");
    return 2;
  }
  std::vector<std::string> overrides;
  for (size_t i = 1; i < positional.size(); ++i) {
    if (positional[i].find('=') == std::string::npos) {
      std::fprintf(stderr, "lowbit import: unexpected argument '%s' (overrides look like key.sub=value)\n",
                   positional[i].c_str());
      return 2;
    }
    overrides.push_back(positional[i]);
  }
  if (from.empty() || out.empty()) {
    std::fprintf(stderr, "lowbit import: give --from WEIGHTS.h5 and -o CKPT.h5\n");
    return 2;
  }
  if (strict && allow_missing) {
    std::fprintf(stderr, "lowbit import: --strict and --allow-missing exclude each other\n");
    return 2;
  }
  persist::ImportOptions opt;
  opt.strict = strict;
  opt.allow_missing = allow_missing;
  for (const auto& m : maps) opt.maps.push_back(persist::parse_name_map(m));

  config::RunConfig cfg = config::load_run_config(positional[0], overrides);
  set_num_threads(static_cast<int>(cfg.train.threads));
  config::BuiltModel model = train::build_model(cfg);  // with the config's quantization recipe, if any
  persist::ImportPlan plan = persist::plan_import(from, model, opt);
  std::fputs(persist::format_import_table(plan, !problems_only).c_str(), stdout);
  std::fflush(stdout);
  persist::check_import(plan, opt);
  const std::vector<std::string> initialized = persist::apply_import(plan, model);
  for (const auto& q : initialized) std::printf("note: %s: scale initialized from the imported weights\n", q.c_str());

  persist::CheckpointParts parts;
  parts.config_yaml = config::to_yaml(cfg.resolved);
  parts.progress.threads = num_threads();  // epoch 0, step 0: a fresh start
  persist::save_checkpoint(out, *model.graph, nullptr, nullptr, parts);
  const int64_t kept = plan.count(persist::MatchStatus::missing);
  if (kept > 0)
    std::printf("note: %lld model tensor(s) were not in the file and keep their initial values (train.seed=%llu)\n",
                static_cast<long long>(kept), static_cast<unsigned long long>(cfg.train.seed));
  std::printf("wrote %s (%lld tensors from %s)\n", out.c_str(),
              static_cast<long long>(plan.count(persist::MatchStatus::matched)), from.c_str());
  std::string train_cmd = positional[0];
  for (const auto& o : overrides) train_cmd += " " + o;
  std::printf("next: lowbit eval --weights %s   or   lowbit train %s --init %s\n", out.c_str(), train_cmd.c_str(),
              out.c_str());
  return 0;
}

}  // namespace lowbit::cli
