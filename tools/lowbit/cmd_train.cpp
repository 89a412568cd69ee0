#include <boost/program_options.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "cli_args.h"
#include "commands.h"
#include "core/error.h"
#include <filesystem>

#include "core/threads.h"
#include "persist/checkpoint.h"
#include "io/h5_file.h"
#include "config/run_config.h"
#include "train/trainer.h"

namespace po = boost::program_options;

namespace lowbit::cli {

namespace {

const char* kTrainExamples = R"(
examples:
  lowbit train configs/lenet5_fmnist_fp32.yaml
  lowbit train configs/lenet5_fmnist_fp32.yaml train.epochs=3 optimizer.lr=0.1 --out runs/try1
  lowbit train configs/mobilenet_v1_fmnist_fp32.yaml model.params.width=0.25 --threads 2
  lowbit train --resume runs/lenet5_fmnist_fp32          (continue an interrupted run)
  lowbit train --resume runs/lenet5_fmnist_fp32 train.epochs=20   (extend a finished run)
  lowbit train configs/lenet5_fmnist_fp32.yaml --init imported.h5   (start from `lowbit import`ed weights)
  lowbit train configs/lenet5_fmnist_fp32.yaml --force   (start over: the earlier run moves aside)
  lowbit train --help-config          (every config key with its default)

The run folder gets config.yaml (resolved), metrics.csv, metrics.jsonl, last.h5 (each epoch,
atomic), best.h5 (best test accuracy) and run_info.yaml (command, version, commit, host). A
folder that already holds a run is refused: --resume it, --force (moves it to FOLDER.old-<time>)
or choose another --out. The last line on stdout is `test_acc=<value>`.
)";

const char* kEvalExamples = R"(
examples:
  lowbit eval runs/lenet5_fmnist_fp32                       (its best.h5, else last.h5)
  lowbit eval --weights runs/lenet5_fmnist_fp32/last.h5
  lowbit eval configs/lenet5_fmnist_fp32.yaml --weights my.h5 data.test_limit=1000
  lowbit eval --weights my.h5 --dump-logits logits.h5   (/logits (N, classes) f32, /labels (N) s32)

Prints test_loss=<value> and, last, test_acc=<value>.
)";

struct Parsed {
  std::string config;
  std::vector<std::string> overrides;
  std::string out;
  int threads = -1;
  long long seed = -1;
  bool quiet = false;
  std::string checkpoint;  // --resume / --weights
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
  std::vector<std::string> positional;
  if (!parse_command_line(args, name, opts, vm, positional)) return 2;
  if (vm.count("help")) {
    std::cout << "usage: lowbit " << name << " [CONFIG] [key.sub=value ...] [options]\n" << summary << "\n\n" << opts << examples;
    return 0;
  }
  if (vm.count("help-config")) {
    std::cout << "# every run-config key with its default\n" << config::kRunConfigDefaults;
    return 0;
  }
  size_t first_override = 0;
  if (!positional.empty() && positional[0].find('=') == std::string::npos) {
    std::error_code ec;
    if (p.checkpoint.empty() && std::filesystem::is_directory(positional[0], ec)) {
      p.checkpoint = positional[0];  // `lowbit eval RUN_DIR`
    } else {
      p.config = positional[0];
    }
    first_override = 1;
  }
  if (p.config.empty() && p.checkpoint.empty()) {
    std::fprintf(stderr, "lowbit %s: missing CONFIG (a run config such as configs/lenet5_fmnist_fp32.yaml)\n", name);
    return 2;
  }
  for (size_t i = first_override; i < positional.size(); ++i) {
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

// The run config: CONFIG when given, else the resolved config stored in the checkpoint.
config::RunConfig config_for(const Parsed& p, const std::string& ckpt) {
  if (!p.config.empty()) return config::load_run_config(p.config, p.overrides);
  persist::CheckpointParts parts = persist::read_checkpoint_info(ckpt);
  return config::load_run_config_text(parts.config_yaml, ckpt + " (stored config)", ".", p.overrides);
}

}  // namespace

std::string weights_file(const std::string& file_or_run_dir) {
  std::error_code ec;
  if (std::filesystem::is_directory(file_or_run_dir, ec)) {
    const auto best = std::filesystem::path(file_or_run_dir) / "best.h5";
    return std::filesystem::exists(best) ? best.string() : train::resolve_checkpoint(file_or_run_dir);
  }
  LB_CHECK(std::filesystem::exists(file_or_run_dir), "no checkpoint at ", file_or_run_dir);
  return file_or_run_dir;
}

int cmd_train(const std::vector<std::string>& args) {
  Parsed p;
  po::variables_map vm;
  po::options_description extra;
  std::string init;
  bool force = false;
  extra.add_options()("help-config", "print every config key with its default")(
      "force", po::bool_switch(&force),
      "train into a run folder that holds an earlier run: the earlier run is moved to FOLDER.old-<time> first")(
      "resume", po::value<std::string>(&p.checkpoint), "continue from a run folder (its last.h5) or a checkpoint file")(
      "init", po::value<std::string>(&init),
      "start a fresh run from the model weights of a checkpoint (e.g. made by `lowbit import`) or a run folder");
  int rc = parse(args, "train", "Trains the model of a run config and evaluates it after every epoch.", kTrainExamples,
                 extra, p, vm);
  if (rc >= 0) return rc;
  if (!init.empty() && !p.checkpoint.empty()) {
    std::fprintf(stderr, "lowbit train: --init starts a fresh run and --resume continues one: give only one\n");
    return 2;
  }
  if (force && !p.checkpoint.empty()) {
    std::fprintf(stderr, "lowbit train: --force starts over and --resume continues the run: give only one\n");
    return 2;
  }
  train::TrainOptions opt;
  opt.force = force;
  opt.command_line = "lowbit train";
  for (const std::string& a : args) {  // single-quoted where a shell would change it, so it can be rerun
    if (a.find_first_of(" \t'\"$[]*?\\") == std::string::npos) {
      opt.command_line += " " + a;
      continue;
    }
    std::string q = " '";
    for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    opt.command_line += q + "'";
  }
  if (!p.checkpoint.empty()) opt.resume = train::resolve_checkpoint(p.checkpoint);
  if (!init.empty()) opt.init_weights = weights_file(init);
  config::RunConfig cfg = config_for(p, opt.resume);
  opt.out_dir = p.out;
  if (opt.out_dir.empty() && !opt.resume.empty()) opt.out_dir = std::filesystem::path(opt.resume).parent_path().string();
  if (opt.out_dir.empty() && !opt.resume.empty()) opt.out_dir = ".";
  opt.quiet = p.quiet;
  train::TrainResult r = train::run_training(cfg, opt);
  if (r.interrupted_by) {
    std::fprintf(stderr,
                 "lowbit train: stopped by %s in epoch %lld after step %lld; %s/last.h5 holds that state.\n"
                 "continue with: lowbit train --resume %s\n",
                 r.interrupted_by == SIGINT ? "Ctrl-C (SIGINT)" : "SIGTERM", static_cast<long long>(r.stopped_epoch),
                 static_cast<long long>(r.stopped_step), r.run_dir.c_str(), r.run_dir.c_str());
    std::printf("run_dir=%s\n", r.run_dir.c_str());
    return 128 + r.interrupted_by;  // 130 for SIGINT, 143 for SIGTERM, as a shell reports them
  }
  std::printf("run_dir=%s\n", r.run_dir.c_str());
  std::printf("test_acc=%.4f\n", r.test_acc);
  return 0;
}

int cmd_eval(const std::vector<std::string>& args) {
  Parsed p;
  po::variables_map vm;
  po::options_description extra;
  std::string dump_logits;
  extra.add_options()("weights,w", po::value<std::string>(&p.checkpoint),
                      "checkpoint file, or a run folder (its best.h5, else last.h5)")(
      "dump-logits", po::value<std::string>(&dump_logits),
      "also write every test sample's logits to this HDF5 file (/logits (N, classes) f32, /labels (N) s32)");
  int rc = parse(args, "eval", "Evaluates trained weights on the config's test set.", kEvalExamples, extra, p, vm);
  if (rc >= 0) return rc;
  if (p.checkpoint.empty()) {
    std::fprintf(stderr, "lowbit eval: give --weights FILE.h5 or a run folder\n");
    return 2;
  }
  const std::string ckpt = weights_file(p.checkpoint);
  config::RunConfig cfg = config_for(p, ckpt);
  set_num_threads(static_cast<int>(cfg.train.threads));
  config::BuiltModel m = train::build_model(cfg);
  persist::load_model_state(ckpt, *m.graph);
  data::Dataset test = train::load_dataset(cfg.data, false);
  data::DataLoader loader(test, train::eval_loader_options(cfg));
  LB_CHECK(loader.sample_shape() == m.input, "the model expects inputs ", m.input.str(), " but the data gives ",
           loader.sample_shape().str());
  Tensor logits;
  train::EvalResult r = train::evaluate(*m.graph, loader, dump_logits.empty() ? nullptr : &logits);
  if (!dump_logits.empty()) {
    io::H5Writer w(dump_logits);
    w.write_tensor("logits", logits);
    w.write_tensor("labels", test.labels.slice0(0, r.samples));
    w.set_attr("/", "weights", ckpt);
    w.commit();
  }
  std::printf("weights=%s\nsamples=%lld\ntest_loss=%.6f\ntest_acc=%.4f\n", ckpt.c_str(), static_cast<long long>(r.samples),
              r.loss, r.acc);
  return 0;
}

}  // namespace lowbit::cli
