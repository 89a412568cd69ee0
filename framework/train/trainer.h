// The training loop behind `lowbit train` and `lowbit eval`.
#pragma once
#include <memory>
#include <string>

#include "data/loader.h"
#include "config/model_file.h"
#include "config/run_config.h"

namespace lowbit::train {

struct TrainOptions {
  std::string out_dir;   // run folder (created); "" = runs/<config name>
  bool quiet = false;    // no progress output
  std::string resume;    // checkpoint to continue from ("" = fresh run)
  // Fresh run whose model starts from this checkpoint's weights (e.g. from `lowbit import`):
  // parameters and buffers only; optimizer, schedule and epoch start anew. Excludes resume.
  std::string init_weights;
  // A fresh run into a folder that holds a run: refused unless `force`, which moves the old run
  // to <folder>.old-<time> first (train/run_folder.h).
  bool force = false;
  std::string command_line;  // recorded in the run folder's run_info.yaml
};

struct TrainResult {
  double test_acc = 0, test_loss = 0;
  double train_img_per_s = 0;  // mean over epochs
  int64_t weight_bits = 0;     // quantized runs: sum of weights * bits over conv2d/linear layers
  std::string run_dir;
  // SIGINT / SIGTERM stopped the run (the signal; 0: it ran to the end). last.h5 then holds the
  // state after the last finished step; --resume continues from there.
  int interrupted_by = 0;
  int64_t stopped_epoch = 0, stopped_step = 0;  // where it stopped (1-based epoch, global step)
};

// Loads the data, builds the model, trains for cfg.train.epochs with evaluation after each epoch,
// writes config.yaml, metrics.csv, metrics.jsonl, last.h5 (every epoch, and every
// train.save_every_steps steps) and best.h5 (best test accuracy) into the run folder.
// With opt.resume, continues from that checkpoint: the final weights equal an uninterrupted
// run's bit for bit (same seed and thread count), and the metrics files are rewritten to the
// checkpoint's history before new epochs are appended.
TrainResult run_training(const config::RunConfig& cfg, const TrainOptions& opt);

struct EvalResult {
  double loss = 0, acc = 0;
  int64_t samples = 0;
};

// Mean cross-entropy and accuracy of `model` (put in eval mode) over every sample of `loader`.
// With `logits`, also returns every sample's logits in loader order: (samples, classes) f32.
EvalResult evaluate(nn::Module& model, data::DataLoader& loader, Tensor* logits = nullptr);

// deploy.target: refuses (lowbit::Error naming the layer, the reason and the fix) a recipe whose
// model has no integer form, using a freshly built model and random inputs. Nothing for `none`.
void check_deploy_target(const config::RunConfig& cfg);

// The model of a run config: the model file with its params, then the `quant:` recipe.
config::BuiltModel build_model(const config::RunConfig& cfg);

// The checkpoint a --resume argument names: a file, or a run folder's last.h5.
std::string resolve_checkpoint(const std::string& file_or_run_dir);

// Training/test data sets as the config describes them (limits applied).
data::Dataset load_dataset(const config::DataConfig& cfg, bool train);
data::Transforms make_transforms(const config::DataConfig& cfg, bool train);
// Loader options for evaluation (and calibration): in order, eval transforms, eval batch size.
data::LoaderOptions eval_loader_options(const config::RunConfig& cfg);

}  // namespace lowbit::train
