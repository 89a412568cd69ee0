// Exporting a Lowbit checkpoint's weights for PyTorch (`lowbit export torch-h5`).
//
// The output is what tools/torch_to_h5.py writes for a state dict: one flat root dataset per
// tensor under its dotted name ("conv1.weight", "bn1.running_mean"), in PyTorch layouts (which
// are Lowbit's: conv OIHW, linear (out, in)), float32, and BatchNorm num_batches_tracked as a
// 0-d int64 like PyTorch's (Lowbit keeps an s32 [1]). Root attributes: exported_by (lowbit
// version) and source (the checkpoint). tools/h5_to_torch.py loads it into the PyTorch twin;
// `lowbit import` reads it back.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::persist {

struct TorchExportResult {
  std::vector<std::string> names;  // tensors written, in checkpoint order
  int64_t int64_scalars = 0;       // of which num_batches_tracked counters written as 0-d int64
  std::vector<std::string> skipped;  // quantizer state left out (without with_quant_state)
};

// Whether a checkpoint tensor is quantization state that a float PyTorch model has no place for:
// a quantizer's parameters and buffers (a path component ending in "_quant": conv1.weight_quant.value,
// input_quant.act_quant.stat_buffer) and the batch-norm folding flag (conv1.bn_folded).
bool is_quant_state(const std::string& dotted_name);

// Reads the /model tensors of the Lowbit checkpoint `checkpoint` (format and version checked)
// and writes `out` atomically: nothing appears at `out` (and an existing file there is left as
// it was) unless every tensor was written. A QAT checkpoint's quantizer state is left out unless
// `with_quant_state`: the float weights load into the PyTorch twin as they are. Uses libhdf5
// directly for the int64 counters, which io::H5Writer cannot write: no other thread may use
// libhdf5 during the call.
TorchExportResult export_torch_h5(const std::string& checkpoint, const std::string& out, bool with_quant_state = false);

}  // namespace lowbit::persist
