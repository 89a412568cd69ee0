// `lowbit verify RUN_DIR`: fake-quant model vs its integer network on the test split.
#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>

#include "cli_args.h"
#include "commands.h"
#include "core/error.h"
#include "core/threads.h"
#include "train/trainer.h"
#include "verify/layer_dump.h"
#include "verify/verify.h"

namespace po = boost::program_options;

namespace lowbit::cli {

namespace {

const char* kVerifyHelp = R"(usage: lowbit verify RUN_DIR|CKPT.h5 [key.sub=value ...] [options]
Builds the integer-only network of a quantization-aware run (integer weights, int32 biases,
requantization multipliers as Q31 M0 and shift, batch norm folded into them) and runs it next to
the fake-quant model on the test split. Prints, per layer, the fraction of identical integers on
that layer's grid and the largest difference in LSBs, then the first layer whose integers differ
(image, position, both values), and last a line that scripts read:
  agreement=A fake_quant_acc=F integer_acc=I images=N rounding=R
Exit status 1 when the top-1 agreement is below --min-agreement.
)";

const char* kVerifyExamples = R"(
examples:
  lowbit verify runs/lenet5_fmnist_w4a4
  lowbit verify runs/lenet5_fmnist_w4a4 --images 1000 --rounding floor
  lowbit verify runs/lenet5_fmnist_w4a4 --dump out/   (integer logits and per-layer integers)
  lowbit verify runs/lenet5_fmnist_w4a4 --against dump/   (an exported runner's per-layer integers:
      out/lenet5/host_runner --idx IMAGES --dump dump/; names the first layer and image that differ)
)";

}  // namespace

int cmd_verify(const std::vector<std::string>& args) {
  std::string rounding = "single", dump, against;
  long long images = 0;
  double min_agreement = 0.999;
  int threads = 0;
  po::options_description opts("lowbit verify options");
  opts.add_options()("help,h", "show this help")("images", po::value(&images),
                                                 "compare only the first N test images (default: all)")(
      "rounding", po::value(&rounding), "requantization rounding: single (x * M rounded once: CMSIS-NN / TFLite Micro single-rounding builds; default), tflm (their default double rounding) or floor (PULP / NEMO)")(
      "min-agreement", po::value(&min_agreement), "exit 1 when the top-1 agreement is below this (default 0.999)")(
      "dump", po::value(&dump), "write integer_logits.h5/.txt, layers.h5 and layers/ (first 16 images) into this folder")(
      "against", po::value(&against), "compare the integer engine with the per-layer integers in this folder "
      "(written by an exported runner's --dump) instead of with the fake-quant model")(
      "threads", po::value(&threads), "threads (default: the run's train.threads)");
  po::variables_map vm;
  std::vector<std::string> positional;
  if (!parse_command_line(args, "verify", opts, vm, positional)) return 2;
  if (vm.count("help")) {
    std::cout << kVerifyHelp << "\n" << opts << kVerifyExamples;
    return 0;
  }
  if (positional.empty()) {
    std::fprintf(stderr, "lowbit verify: missing RUN_DIR (a run folder made by `lowbit train` with a quant: recipe)\n");
    return 2;
  }
  std::vector<std::string> overrides;
  for (size_t i = 1; i < positional.size(); ++i) {
    if (positional[i].find('=') == std::string::npos) {
      std::fprintf(stderr, "lowbit verify: unexpected argument '%s' (overrides look like key.sub=value)\n",
                   positional[i].c_str());
      return 2;
    }
    overrides.push_back(positional[i]);
  }
  if (images < 0 || !(min_agreement >= 0 && min_agreement <= 1)) {
    std::fprintf(stderr, "lowbit verify: --images must be >= 0 and --min-agreement in [0, 1]\n");
    return 2;
  }
  if (images > 0) overrides.push_back("data.test_limit=" + std::to_string(images));
  deploy::LowerOptions lo;
  lo.rounding = intnet::parse_rounding(rounding);
  verify::IntegerModel m = verify::load_integer_model(positional[0], overrides, lo);
  set_num_threads(threads > 0 ? threads : static_cast<int>(m.cfg.train.threads));
  if (!against.empty()) {
    const verify::AgainstResult a = verify::compare_against(m, verify::read_layer_dump(against));
    if (!a.identical) {
      std::printf("%s\n", a.first.c_str());
      std::fprintf(stderr, "lowbit verify: %s differs from the integer engine (rounding %s)\n", against.c_str(),
                   intnet::rounding_name(lo.rounding));
      return 1;
    }
    std::printf("against=%s values=%lld images=%lld integers=%lld identical rounding=%s\n", against.c_str(),
                static_cast<long long>(a.values), static_cast<long long>(a.images), static_cast<long long>(a.integers),
                intnet::rounding_name(lo.rounding));
    return 0;
  }
  for (const std::string& note : m.lowered.notes) std::fprintf(stderr, "note: %s\n", note.c_str());
  data::DataLoader loader(m.test, train::eval_loader_options(m.cfg));
  verify::VerifyOptions vo;
  vo.dump_dir = dump;
  const verify::VerifyResult r = verify::run_verify(m, loader, vo);
  std::printf("weights=%s\n%s", m.checkpoint.c_str(), verify::format_report(m, r).c_str());
  if (!dump.empty()) std::printf("dump=%s (integer_logits.h5, integer_logits.txt, layers.h5, layers/)\n", dump.c_str());
  std::printf("agreement=%.4f fake_quant_acc=%.4f integer_acc=%.4f images=%lld rounding=%s\n", r.agreement(),
              static_cast<double>(r.fake_quant_correct) / static_cast<double>(r.images),
              static_cast<double>(r.integer_correct) / static_cast<double>(r.images), static_cast<long long>(r.images),
              intnet::rounding_name(lo.rounding));
  if (r.agreement() < min_agreement) {
    std::fprintf(stderr, "lowbit verify: top-1 agreement %.4f is below --min-agreement %.4f\n", r.agreement(),
                 min_agreement);
    return 1;
  }
  return 0;
}

}  // namespace lowbit::cli
