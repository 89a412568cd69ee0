#include "persist/weights_export.h"

#include <utility>

#include <yaml-cpp/yaml.h>

#include "core/error.h"
#include "persist/checkpoint.h"
#include "io/h5_file.h"

namespace lowbit::persist {

using namespace io;  // the leaf formats (YAML, HDF5, expressions) this folder reads and writes

namespace {

bool is_counter(const std::string& name, const Tensor& t) {
  const std::string suffix = ".num_batches_tracked";
  const bool named = name == "num_batches_tracked" ||
                     (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0);
  return named && t.dtype() == DType::s32 && t.numel() == 1;
}

}  // namespace

bool is_quant_state(const std::string& name) {
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    const std::string part = name.substr(start, dot - start);
    if (part == "bn_folded" || (part.size() > 6 && part.compare(part.size() - 6, 6, "_quant") == 0)) return true;
    start = dot + 1;
  }
  return false;
}

TorchExportResult export_torch_h5(const std::string& checkpoint, const std::string& out, bool with_quant_state) {
  const CheckpointParts info = read_checkpoint_info(checkpoint);  // format name and version
  // Only a quantization-aware run has quantizer state (a float model may name a layer "x_quant").
  const YAML::Node quant = YAML::Load(info.config_yaml.empty() ? std::string("{}") : info.config_yaml)["quant"];
  if (!quant || !quant.IsMap() || quant.size() == 0) with_quant_state = true;
  TorchExportResult res;
  std::vector<std::pair<std::string, Tensor>> tensors;
  {
    H5Reader r(checkpoint);
    for (const auto& p : r.datasets())
      if (p.compare(0, 7, "/model/") == 0) {
        const std::string name = H5Reader::dotted(p.substr(6));
        if (!with_quant_state && is_quant_state(name)) {
          res.skipped.push_back(name);
          continue;
        }
        tensors.emplace_back(name, r.read_tensor(p));
      }
  }
  LB_CHECK(!tensors.empty(), checkpoint, ": the checkpoint holds no model tensors");

  // H5Writer stages the file and renames it over `out` only on commit (fsync'd): on any error
  // an existing `out` is untouched.
  H5Writer w(out);
  w.set_attr("/", "exported_by", std::string("lowbit ") + LOWBIT_VERSION + " (lowbit export torch-h5)");
  w.set_attr("/", "source", checkpoint);
  for (const auto& [name, t] : tensors) {
    res.names.push_back(name);
    if (is_counter(name, t)) {
      w.write_int64_scalar(name, static_cast<int64_t>(t.contiguous().data<int32_t>()[0]));
      ++res.int64_scalars;
    } else {
      w.write_tensor(name, t);
    }
  }
  w.commit();
  return res;
}

}  // namespace lowbit::persist
