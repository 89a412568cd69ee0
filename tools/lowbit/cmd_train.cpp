#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "core/error.h"
#include "io/run_config.h"
#include "train/trainer.h"

namespace po = boost::program_options;

namespace lowbit::cli {

namespace {

const char* kTrainExamples = R"(
examples:
  lowbit train configs/lenet5_fmnist_fp32.yaml
  lowbit train configs/lenet5_fmnist_fp32.yaml train.epochs=3 optimizer.lr=0.1 --out runs/try1
  lowbit train configs/mobilenet_v1_fmnist_fp32.yaml model.params.width=0.25 --threads 2
  lowbit train --help-config          (every config key with its default)

The run folder gets config.yaml (resolved), metrics.csv, metrics.jsonl and weights.h5.
The last line printed on stdout is `test_acc=<value>`.
)";

struct Parsed {
  std::string config;
  std::vector<std::string> overrides;
  std::string out;
  int threads = -1;
  long long seed = -1;
  bool quiet = false;
};

// Returns -1 to continue, or an exit code (help printed / usage error).
int parse(const std::vector<std::string>& args, const char* name, const char* summary, const char* examples,
          po::options_description extra, Parsed& p, po::variables_map& vm) {
  po::options_description opts(std::string("lowbit ") + name + " options");
  opts.add_options()("help,h", "show this help")
      ("out,o", po::value<std::string>(&p.out), "run folder (default runs/<config name>)")
      ("threads", po::value<int>(&p.threads), "threads for oneDNN and our kernels (overrides train.threads)")
      ("seed", po::value<long long>(&p.seed), "random seed (overrides train.seed)")
      ("quiet,q", po::bool_switch(&p.quiet), "no progress output");
  opts.add(extra);
  po::options_description hidden;
  hidden.add_options()("positional", po::value<std::vector<std::string>>(), "");
  po::options_description all;
  all.add(opts).add(hidden);
  po::positional_options_description pos;
  pos.add("positional", -1);
  try {
    po::store(po::command_line_parser(args).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "lowbit %s: %s\nRun `lowbit %s --help` for usage.\n", name, e.what(), name);
    return 2;
  }
  if (vm.count("help")) {
    std::cout << "usage: lowbit " << name << " CONFIG [key.sub=value ...] [options]\n" << summary << "\n\n" << opts << examples;
    return 0;
  }
  if (vm.count("help-config")) {
    std::cout << "# every run-config key with its default\n" << io::kRunConfigDefaults;
    return 0;
  }
  std::vector<std::string> positional;
  if (vm.count("positional")) positional = vm["positional"].as<std::vector<std::string>>();
  if (positional.empty()) {
    std::fprintf(stderr, "lowbit %s: missing CONFIG (a run config such as configs/lenet5_fmnist_fp32.yaml)\n", name);
    return 2;
  }
  p.config = positional[0];
  for (size_t i = 1; i < positional.size(); ++i) {
    if (positional[i].find('=') == std::string::npos) {
      std::fprintf(stderr, "lowbit %s: unexpected argument '%s' (overrides look like key.sub=value)\n", name,
                   positional[i].c_str());
      return 2;
    }
    p.overrides.push_back(positional[i]);
  }
  if (p.threads >= 0) p.overrides.push_back("train.threads=" + std::to_string(p.threads));
  if (p.seed >= 0) p.overrides.push_back("train.seed=" + std::to_string(p.seed));
  return -1;
}

}  // namespace

int cmd_train(const std::vector<std::string>& args) {
  Parsed p;
  po::variables_map vm;
  po::options_description extra;
  extra.add_options()("help-config", "print every config key with its default");
  int rc = parse(args, "train", "Trains the model of a run config and evaluates it after every epoch.", kTrainExamples,
                 extra, p, vm);
  if (rc >= 0) return rc;
  io::RunConfig cfg = io::load_run_config(p.config, p.overrides);
  train::TrainOptions opt;
  opt.out_dir = p.out;
  opt.quiet = p.quiet;
  train::TrainResult r = train::run_training(cfg, opt);
  std::printf("run_dir=%s\n", r.run_dir.c_str());
  std::printf("test_acc=%.4f\n", r.test_acc);
  return 0;
}

int cmd_eval(const std::vector<std::string>&) {
  LB_FAIL("lowbit eval: not implemented yet");
}

}  // namespace lowbit::cli
