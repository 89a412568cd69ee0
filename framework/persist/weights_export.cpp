#include "persist/weights_export.h"

#include <utility>

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

TorchExportResult export_torch_h5(const std::string& checkpoint, const std::string& out) {
  read_checkpoint_info(checkpoint);  // format name and version
  TorchExportResult res;
  std::vector<std::pair<std::string, Tensor>> tensors;
  {
    H5Reader r(checkpoint);
    for (const auto& p : r.datasets())
      if (p.compare(0, 7, "/model/") == 0) tensors.emplace_back(H5Reader::dotted(p.substr(6)), r.read_tensor(p));
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
