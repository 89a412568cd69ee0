// `lowbit export FORMAT --weights CKPT.h5|RUN_DIR -o OUT`: trained weights for other tools.
#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>
#include <optional>

#include "cli_args.h"
#include "commands.h"
#include "core/error.h"
#include "persist/weights_export.h"

namespace po = boost::program_options;

namespace lowbit::cli {

namespace {

enum class ExportFormat { torch_h5, mcu };

std::optional<ExportFormat> parse_format(const std::string& s) {
  if (s == "torch-h5") return ExportFormat::torch_h5;
  if (s == "mcu") return ExportFormat::mcu;
  return std::nullopt;
}

const char* kExportHelp = R"(usage: lowbit export FORMAT --weights CKPT.h5|RUN_DIR -o OUT
       lowbit export mcu RUN_DIR -o DIR [--images N] [--rounding single|tflm|floor] [--no-measure]
Writes the weights of a Lowbit checkpoint (a run folder: its best.h5, else last.h5) for another tool,
or a quantization-aware run as integer-only C99 for a microcontroller.

formats:
  torch-h5   a PyTorch state dict in HDF5: flat dotted names (conv1.weight), PyTorch layouts,
             num_batches_tracked as 0-d int64; load it with tools/h5_to_torch.py. Of a
             quantization-aware run it writes the float weights (the twin is a float model);
             --with-quant-state adds the quantizers' tensors (conv1.weight_quant.value, ...)
  mcu        the run's integer network (as `lowbit verify` checks it) as a C99 folder: <name>.h/.c,
             a host runner, a Cortex-M4 program for QEMU (mps2-an386), Makefile, report.txt/json.
             With arm-none-eabi-gcc and qemu-system-arm installed it is built and run once, and
             report.txt holds the measured code size, stack and instructions (docs/mcu-export.md)
)";

const char* kExportExamples = R"(
examples:
  lowbit export torch-h5 --weights runs/lenet5_fmnist_fp32 -o lenet5_state.h5
  lowbit export mcu runs/lenet5_fmnist_w4a4 -o out/lenet5 && make -C out/lenet5 host qemu
  /usr/bin/python3 tools/h5_to_torch.py lenet5_state.h5 --model lenet5 --save lenet5.pt
)";

int export_torch(const std::string& weights, const std::string& out, bool with_quant_state) {
  const persist::TorchExportResult r = persist::export_torch_h5(weights, out, with_quant_state);
  std::printf("wrote %s: %zu tensors from %s (%lld num_batches_tracked as int64)\n", out.c_str(), r.names.size(),
              weights.c_str(), static_cast<long long>(r.int64_scalars));
  if (!r.skipped.empty())
    std::printf("left out %zu quantizer tensors (%s, ...): the float weights load into the PyTorch twin; "
                "--with-quant-state keeps them\n",
                r.skipped.size(), r.skipped[0].c_str());
  return 0;
}

}  // namespace

int cmd_export(const std::vector<std::string>& args) {
  std::string format, weights, out, rounding = "single", target = "cortex-m4";
  bool with_quant_state = false, no_measure = false;
  long long images = 100;
  po::options_description opts("lowbit export options");
  opts.add_options()("help,h", "show this help")("weights,w", po::value(&weights),
                                                 "checkpoint file, or a run folder (its best.h5, else last.h5)")(
      "out,o", po::value(&out), "file to write")(
      "with-quant-state", po::bool_switch(&with_quant_state),
      "torch-h5 of a QAT run: also write the quantizers' tensors (learned scales, statistics)")(
      "images", po::value(&images), "mcu: test images compiled into the QEMU program (default 100)")(
      "rounding", po::value(&rounding), "mcu: requantization rounding: single (default), tflm or floor")(
      "no-measure", po::bool_switch(&no_measure), "mcu: do not build and run the Cortex-M4 program")(
      "target", po::value(&target), "mcu: the processor (cortex-m4; the C also builds for any C99 target)");
  po::variables_map vm;
  std::vector<std::string> positional;
  if (!parse_command_line(args, "export", opts, vm, positional)) return 2;
  if (positional.size() == 2 && weights.empty()) {
    weights = positional[1];  // lowbit export mcu RUN_DIR
  } else if (positional.size() > 1) {
    std::fprintf(stderr, "lowbit export: unexpected argument '%s'\n", positional[1].c_str());
    return 2;
  }
  if (!positional.empty()) format = positional[0];
  if (vm.count("help")) {
    std::cout << kExportHelp << "\n" << opts << kExportExamples;
    return 0;
  }
  const std::optional<ExportFormat> fmt = parse_format(format);
  if (!fmt) {
    std::fprintf(stderr, "lowbit export: %s (formats: torch-h5, mcu)\n",
                 format.empty() ? "missing FORMAT" : ("unknown format '" + format + "'").c_str());
    return 2;
  }
  if (weights.empty() || out.empty()) {
    std::fprintf(stderr, "lowbit export: give --weights CKPT.h5 (or a run folder) and -o OUT\n");
    return 2;
  }
  const std::string ckpt = weights_file(weights);
  switch (*fmt) {
    case ExportFormat::torch_h5: return export_torch(ckpt, out, with_quant_state);
    case ExportFormat::mcu:
      if (target != "cortex-m4") {
        std::fprintf(stderr, "lowbit export: unknown --target '%s' for mcu (targets: cortex-m4)\n", target.c_str());
        return 1;
      }
      return export_mcu(weights, out, rounding, images, !no_measure);
  }
  return 2;
}

}  // namespace lowbit::cli
