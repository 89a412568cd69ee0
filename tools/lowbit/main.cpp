// `lowbit`: train, evaluate and (later) quantize, plan and export networks.
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "commands.h"
#include "core/error.h"

namespace {

const char* kUsage = R"(usage: lowbit <command> [options]

commands:
  train CONFIG [key.sub=value ...]   train a model from a run config (configs/*.yaml)
  eval  [CONFIG] --weights FILE.h5   evaluate trained weights on the config's test set
  inspect FILE.h5                    list a checkpoint's tensors, progress and config
  inspect RUN_DIR --integer          the run's integer network: ints, scales, M0/shift, bytes
  plan  MODEL --flash B --ram B      choose per-layer bit widths that fit a device's flash and RAM
  import CONFIG --from W.h5 -o C.h5  PyTorch/Keras HDF5 weights -> a checkpoint of the config's model
  export torch-h5 --weights C.h5 -o OUT.h5
                                     a checkpoint's weights as a PyTorch state dict in HDF5
  quantize MODEL RECIPE -o Q.yaml    write the resolved quantized model (every layer's quantizers)
  calibrate CONFIG --batches N       post-training calibration of activation ranges, then eval
  verify RUN_DIR                     fake-quant model vs its integer-only network, layer by layer

Run `lowbit <command> --help` for the options and examples of each command.
--debug (or LOWBIT_DEBUG=1) adds the source location (file.cpp:line) to every error message.
)";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::printf("lowbit %s\n", LOWBIT_VERSION);
    return 0;
  }
  const std::string cmd = argv[1];
  std::vector<std::string> args;
  const char* env_debug = std::getenv("LOWBIT_DEBUG");
  bool debug = env_debug && std::strcmp(env_debug, "1") == 0;
  for (int i = 2; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--debug")) {
      debug = true;
      continue;
    }
    args.emplace_back(argv[i]);
  }
  try {
    if (cmd == "train") return lowbit::cli::cmd_train(args);
    if (cmd == "eval") return lowbit::cli::cmd_eval(args);
    if (cmd == "inspect") return lowbit::cli::cmd_inspect(args);
    if (cmd == "plan") return lowbit::cli::cmd_plan(args);
    if (cmd == "import") return lowbit::cli::cmd_import(args);
    if (cmd == "export") return lowbit::cli::cmd_export(args);
    if (cmd == "quantize") return lowbit::cli::cmd_quantize(args);
    if (cmd == "calibrate") return lowbit::cli::cmd_calibrate(args);
    if (cmd == "verify") return lowbit::cli::cmd_verify(args);
    std::fprintf(stderr, "lowbit: unknown command '%s'\n\n%s", cmd.c_str(), kUsage);
    return 2;
  } catch (const lowbit::Error& e) {
    std::fprintf(stderr, "lowbit %s: error: %s\n", cmd.c_str(), (debug ? std::string(e.what()) : lowbit::without_source_locations(e.what())).c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lowbit %s: internal error: %s\n", cmd.c_str(), e.what());
    return 3;
  }
}
