// `lowbit inspect FILE.h5`: what a checkpoint (or any HDF5 weight file) holds.
#include <boost/program_options.hpp>
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <iostream>

#include "cli_args.h"
#include "commands.h"
#include "core/error.h"
#include "persist/checkpoint.h"
#include "io/h5_file.h"

namespace po = boost::program_options;

namespace lowbit::cli {

namespace {

// FNV-1a over the bytes of every tensor under `prefix`, in name order.
uint64_t checksum(const io::H5Reader& r, const std::string& prefix) {
  uint64_t h = 1469598103934665603ULL;
  for (const auto& p : r.datasets()) {
    if (p.compare(0, prefix.size(), prefix) != 0 || r.info(p).is_string) continue;
    Tensor t = r.read_tensor(p).contiguous();
    const auto* b = static_cast<const unsigned char*>(t.raw_data());
    for (char c : p) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    for (int64_t i = 0; i < t.numel() * static_cast<int64_t>(dtype_size(t.dtype())); ++i) h = (h ^ b[i]) * 1099511628211ULL;
  }
  return h;
}

}  // namespace

int cmd_inspect(const std::vector<std::string>& args) {
  std::string file;
  bool sum = false, show_config = false, integer = false;
  std::string rounding = "single";
  po::options_description opts("lowbit inspect options");
  opts.add_options()("help,h", "show this help")("checksum", po::bool_switch(&sum),
                                                 "print only a checksum of the model tensors (compare runs bit for bit)")(
      "config", po::bool_switch(&show_config), "print the stored run config too")(
      "integer", po::bool_switch(&integer),
      "a quantization-aware run (folder or checkpoint) as its integer network: per node the integer grid, "
      "weights, M0/shift, accumulator bits and bytes")("rounding", po::value(&rounding),
                                                       "with --integer: single (default), tflm or floor requantization");
  po::variables_map vm;
  std::vector<std::string> positional;
  if (!parse_command_line(args, "inspect", opts, vm, positional)) return 2;
  if (positional.size() > 1) {
    std::fprintf(stderr, "lowbit inspect: unexpected argument '%s'\n", positional[1].c_str());
    return 2;
  }
  if (!positional.empty()) file = positional[0];
  if (vm.count("help")) {
    std::cout << "usage: lowbit inspect FILE.h5 [--checksum] [--config]\n"
                 "       lowbit inspect RUN_DIR|FILE.h5 --integer [--rounding tflm|floor]\n"
                 "Lists what a Lowbit checkpoint or an HDF5 weight file holds: format, progress, and every\n"
                 "tensor with its shape, dtype, min and max.\n\n"
              << opts << "\nexamples:\n  lowbit inspect runs/lenet5_fmnist_fp32/last.h5\n"
                         "  lowbit inspect --checksum runs/a/last.h5\n"
                         "  lowbit inspect runs/lenet5_fmnist_w4a4 --integer\n";
    return 0;
  }
  if (file.empty()) {
    std::fprintf(stderr, "lowbit inspect: missing FILE.h5 (or RUN_DIR with --integer)\n");
    return 2;
  }
  if (integer) return inspect_integer(file, rounding);
  io::H5Reader r(file);
  const bool is_ckpt = r.has_attr("/", "format") && r.attr_string("/", "format") == persist::kCheckpointFormat;
  if (sum) {
    std::printf("%016" PRIx64 "\n", checksum(r, is_ckpt ? "/model/" : "/"));
    return 0;
  }
  if (is_ckpt) {
    persist::CheckpointParts c = persist::read_checkpoint_info(file);
    std::printf("format: %s v%lld (written by lowbit %s)\n", persist::kCheckpointFormat,
                static_cast<long long>(r.attr_int("/", "format_version")), r.attr_string("/", "lowbit_version").c_str());
    char best[32] = "none";  // no evaluation yet (a checkpoint written mid-epoch, or by import / calibrate)
    if (c.progress.best_test_acc >= 0) std::snprintf(best, sizeof best, "%.4f", c.progress.best_test_acc);
    std::printf("progress: epoch %lld, step %lld, batches into the next epoch %lld, best test_acc %s, threads %lld\n",
                static_cast<long long>(c.progress.epoch), static_cast<long long>(c.progress.step),
                static_cast<long long>(c.progress.batches_done), best, static_cast<long long>(c.progress.threads));
    if (r.has_attr("/", "optimizer")) std::printf("optimizer: %s\n", r.attr_string("/", "optimizer").c_str());
    if (show_config) std::printf("config:\n%s\n", c.config_yaml.c_str());
  } else {
    std::printf("format: plain HDF5 (not a Lowbit checkpoint)\n");
  }
  std::printf("%-48s %-18s %-6s %14s %14s\n", "tensor", "shape", "dtype", "min", "max");
  int64_t total = 0;
  for (const auto& p : r.datasets()) {
    io::H5DatasetInfo info = r.info(p);
    if (info.is_string) {
      std::printf("%-48s %-18s %-6s\n", p.c_str(), "(text)", "str");
      continue;
    }
    Tensor t = r.read_tensor(p).contiguous();
    double lo = 0, hi = 0;
    for (int64_t i = 0; i < t.numel(); ++i) {
      double v = t.dtype() == DType::f32 ? t.f32()[i]
                 : t.dtype() == DType::s32 ? t.data<int32_t>()[i]
                 : t.dtype() == DType::s8  ? t.data<int8_t>()[i]
                                           : t.data<uint8_t>()[i];
      lo = i ? std::min(lo, v) : v;
      hi = i ? std::max(hi, v) : v;
    }
    if (p.rfind("/model/", 0) == 0 || !is_ckpt) total += t.numel();
    std::printf("%-48s %-18s %-6s %14.6g %14.6g\n", p.c_str(), t.shape().str().c_str(), dtype_name(t.dtype()), lo, hi);
  }
  std::printf("model elements: %lld\n", static_cast<long long>(total));
  return 0;
}

}  // namespace lowbit::cli
