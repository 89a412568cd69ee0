// Lowbit checkpoints (HDF5; the layout is documented in docs/checkpoint-format.md).
//
//   /                      attrs: format = "lowbit-checkpoint", format_version = 1,
//                          lowbit_version, epoch, step, batches_done, best_test_acc,
//                          epoch_loss_sum, epoch_correct, epoch_seen, wall_time, threads
//   /config                the resolved run config (YAML text)
//   /metrics               metrics.jsonl of the epochs completed so far (text)
//   /model/<name>          parameters and buffers by dotted module name, PyTorch layouts
//   /optimizer/<name>      optimizer state ("group0.param3.exp_avg"); attr optimizer = "SGD" ...
//   /schedule/<name>       LR schedule clock
//   /rng/<module>          random streams owned by modules (dropout): s32[8] = xoshiro state
#pragma once
#include <cstdint>
#include <string>

#include "nn/module.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"

namespace lowbit::persist {

inline constexpr const char* kCheckpointFormat = "lowbit-checkpoint";
inline constexpr int64_t kCheckpointVersion = 1;

// Where training stands when a checkpoint is written.
struct TrainProgress {
  int64_t epoch = 0;          // epochs completed
  int64_t step = 0;           // optimizer steps taken
  int64_t batches_done = 0;   // batches of epoch `epoch` already trained (mid-epoch save)
  double best_test_acc = -1;  // best evaluation so far (-1 = none)
  double epoch_loss_sum = 0, epoch_correct = 0, epoch_seen = 0;  // running sums of the partial epoch
  double wall_time = 0;       // seconds trained so far
  int64_t threads = 0;        // thread count the run used (resume must match for bit-identity)
};

struct CheckpointParts {
  std::string config_yaml;
  std::string metrics_jsonl;
  TrainProgress progress;
};

// Writes `path` atomically (temporary file, fsync, rename). opt/schedule may be null.
void save_checkpoint(const std::string& path, nn::Module& model, const optim::Optimizer* opt,
                     const optim::LrSchedule* schedule, const CheckpointParts& parts);

// Opens a checkpoint and checks format name and version (clear errors for other HDF5 files,
// newer versions, truncation). Reads the text parts and progress.
CheckpointParts read_checkpoint_info(const std::string& path);

// Loads parameters and buffers into `model`: every model tensor must be present with the same
// shape; extra tensors in the file are an error (names listed, with the closest matches).
// Nothing in `model` changes when an error is raised. With `quantizers_may_be_missing` (--init
// of a quantization-aware run from a float checkpoint), tensors of the model's quantizers that the
// file lacks keep their initial values (the quantizers start fresh) and their names are appended
// to `left_fresh`.
void load_model_state(const std::string& path, nn::Module& model, bool quantizers_may_be_missing = false,
                      std::vector<std::string>* left_fresh = nullptr);
// Loads optimizer, schedule and module random streams (for resume).
void load_training_state(const std::string& path, nn::Module& model, optim::Optimizer& opt,
                         optim::LrSchedule& schedule);

}  // namespace lowbit::persist
