// Run configs (configs/*.yaml): model + data + optimizer + schedule + training settings.
// Every key has a default (kRunConfigDefaults, printed by `lowbit train --help-config`);
// unknown keys and overrides of keys that do not exist are errors with file:line:column.
#pragma once
#include <map>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/model_file.h"
#include "io/yaml_util.h"

namespace lowbit::config {

enum class DatasetKind { fashion_mnist, cifar10 };
// What the trained network must lower to; checked before training (train/trainer.h). The MCU,
// FPGA and ONNX targets arrive with their exporters.
enum class DeployTarget { none, integer };
enum class OptimizerKind { sgd, adam, adamw };
enum class ScheduleKind { constant, step, multistep, cosine };

struct DataConfig {
  DatasetKind dataset = DatasetKind::fashion_mnist;
  std::string path;
  std::vector<float> mean, std;  // per channel, applied after scaling pixels to [0, 1]
  int64_t random_crop = 0;       // crop size (0 = off)
  int64_t crop_padding = 0;
  bool hflip = false;
  int64_t train_limit = 0;  // first N training samples (0 = all)
  int64_t test_limit = 0;
};

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::sgd;
  double lr = 0.01, momentum = 0, dampening = 0, weight_decay = 0, eps = 1e-8;
  bool nesterov = false;
  double beta1 = 0.9, beta2 = 0.999;
  bool no_decay_bn_bias = false;  // weight decay 0 for biases and batch-norm parameters
};

struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::constant;
  int64_t step_size = 30;
  double gamma = 0.1;
  std::vector<int64_t> milestones;
  double eta_min = 0;
  int64_t warmup_epochs = 0;
  double warmup_start_factor = 0.1;
  bool per_iteration = false;  // cosine/warmup evaluated per iteration instead of per epoch
};

struct TrainConfig {
  int64_t epochs = 10;
  int64_t batch_size = 128;
  int64_t eval_batch_size = 1000;
  uint64_t seed = 0;
  int64_t threads = 0;  // 0 = runtime default
  int64_t save_every_steps = 0;  // also write last.h5 every N optimizer steps (0 = only per epoch)
};

struct RunConfig {
  std::string file;                  // the config file
  std::string model_path;            // resolved path of the model file
  std::map<std::string, ModelParamOverride> model_params;
  DataConfig data;
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  TrainConfig train;
  YAML::Node resolved;               // defaults + file + overrides, as saved in the run folder
  YAML::Node quant;                  // the `quant:` recipe (parsed by quant::parse_recipe)
  DeployTarget deploy_target = DeployTarget::none;
  io::YamlSource source;                 // for messages about nodes of `resolved`
};

// The default document: every valid key with its default value.
extern const char* const kRunConfigDefaults;

// Loads `path`, applies `overrides` ("train.epochs=3", "model.params.width=0.5"), validates.
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides);
// The same from YAML text (e.g. the resolved config stored in a checkpoint); `source` names it
// in messages and relative paths resolve against `base_dir`.
RunConfig load_run_config_text(const std::string& text, const std::string& source, const std::string& base_dir,
                               const std::vector<std::string>& overrides);

// YAML text of the resolved config (for config.yaml in the run folder).
std::string to_yaml(const YAML::Node& n);

}  // namespace lowbit::config
