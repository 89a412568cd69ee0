// Importing weights from other frameworks' HDF5 files into a Lowbit model (`lowbit import`).
//
// Sources (detected from the file; docs/pytorch-interop.md has the whole road):
//   - PyTorch state dicts dumped with h5py (tools/torch_to_h5.py): flat root datasets with
//     dotted names ("conv1.weight"), or nested groups ("/conv1/weight"); both read as dotted
//     names. PyTorch layouts already are Lowbit's (conv OIHW, linear (out, in)).
//   - Lowbit checkpoints (root attribute format = "lowbit-checkpoint"): the tensors under /model
//     (e.g. a float model's weights into a quantized config).
//   - Keras legacy .h5 weight files (model.save_weights("x.h5") or model.save("x.h5")): root
//     attributes layer_names (or layer_names0, 1, ...), one group per layer with weight_names,
//     datasets at "/<layer>/<weight name>" ("/dense/dense/kernel:0"). Each weight becomes
//     "<layer>.<lowbit name>" with kernel/depthwise_kernel/gamma -> weight, beta -> bias,
//     moving_mean -> running_mean, moving_variance -> running_var; layouts are converted:
//     conv kernel HWIO -> OIHW, depthwise (kH, kW, C, M) -> (C*M, 1, kH, kW), Dense (in, out)
//     -> (out, in), and a Dense fed by Flatten of a (C, H, W) map gets its inputs reordered from
//     Keras' channels-last HWC order to Lowbit's CHW order.
//
// Matching is by name only, never by position: every model parameter and buffer is looked up
// under its dotted name after the renames (`--map OLD=NEW`, prefixes on dot boundaries, the
// first that applies wins). A BatchNorm num_batches_tracked the file lacks (Keras has none)
// keeps its initial value and is reported, never an error; PyTorch's 0-d int64 counter is
// loaded into Lowbit's s32 [1] one. Quantizer state (scales, statistics, counters of a
// quantized config) that a float file lacks is not an error either: see apply_import.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "config/model_file.h"
#include "tensor/tensor.h"

namespace lowbit::persist {

// A prefix rename: names equal to `from` or starting with `from` + "." get `to` instead of
// `from` ("module.=" strips "module.", "features.0=conv1" renames one layer).
struct NameMap {
  std::string from, to;
};
// Parses "OLD=NEW" (NEW may be empty; trailing dots are ignored). Throws on a missing '='.
NameMap parse_name_map(const std::string& spec);

struct ImportOptions {
  std::vector<NameMap> maps;
  bool allow_missing = false;  // model tensors absent from the file keep their initial values
  bool strict = false;         // file tensors no model tensor uses are an error too
};

enum class WeightSource { torch_flat, torch_nested, lowbit_checkpoint, keras };
const char* weight_source_name(WeightSource s);

enum class MatchStatus {
  matched,         // loaded (after the conversion named in `conversion`, if any)
  missing,         // no file tensor has this name
  shape_mismatch,  // a file tensor has the name but not a compatible shape or dtype
  kept_default,    // absent num_batches_tracked or quantizer state: keeps its initial value (not an error)
};
const char* match_status_name(MatchStatus s);

// One model tensor and what the file offers for it.
struct ImportEntry {
  std::string model_name;  // "conv1.weight"
  Shape model_shape;
  MatchStatus status = MatchStatus::missing;
  std::string file_name;   // the source as stored ("conv1.weight", "/conv2d/conv2d/kernel:0"); "" if none
  Shape file_shape;        // as stored
  std::string conversion;  // "" or e.g. "HWIO->OIHW", "(in,out)->(out,in)", "int64 [] -> s32 [1]"
  std::string detail;      // why it did not match, or the closest file names when missing
  std::string likely;      // missing only: an unused file tensor of the same size and last name part ("" if none)
};

// A file tensor that no model tensor took.
struct UnusedTensor {
  std::string file_name;   // as stored
  std::string name;        // after renames (what was looked up)
  Shape shape;
  std::string closest;     // closest model names
};

struct ImportPlan {
  std::string file;
  WeightSource source = WeightSource::torch_flat;
  std::string source_detail;             // e.g. "keras_version 2.11.0, backend tensorflow"
  std::vector<ImportEntry> entries;      // model order (parameters, then buffers)
  std::vector<UnusedTensor> unused;      // file order
  std::vector<std::string> notes;        // renames applied automatically, maps that matched nothing, ...
  std::vector<Tensor> values;            // per entry: the converted tensor (matched entries only)
  int64_t count(MatchStatus s) const;
};

// Reads `path` and matches its tensors with the model's; reads (and converts) every matched
// tensor but changes nothing in the model. Throws lowbit::Error for files that cannot be read
// (not HDF5, truncated, lzf-compressed, two file tensors renamed to the same name, ...).
ImportPlan plan_import(const std::string& path, const config::BuiltModel& model, const ImportOptions& opt);

// The table `lowbit import` prints: one row per model tensor, then unused file tensors, then a
// summary line.
std::string format_import_table(const ImportPlan& plan, bool show_matched = true);

// Throws lowbit::Error (summarizing the offending tensors with shapes and closest names) when
// the plan cannot be applied under `opt`: any shape mismatch, a missing tensor without
// allow_missing, an unused file tensor with strict.
void check_import(const ImportPlan& plan, const ImportOptions& opt);

// Copies the matched tensors into the model (after check_import). Quantized models (a config
// with `quant:`): weight quantizers with a learned or collected scale whose state the file does
// not hold are initialized from the imported weights (Quantizer::reset_from); their names are
// returned. Activation quantizers keep the recipe's initialization (they collect statistics
// in the first training steps, or need calibration).
std::vector<std::string> apply_import(const ImportPlan& plan, config::BuiltModel& model);

// plan_import + check_import + apply_import.
ImportPlan import_weights(const std::string& path, config::BuiltModel& model, const ImportOptions& opt);

}  // namespace lowbit::persist
