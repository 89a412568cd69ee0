#include "config/run_config.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"

namespace lowbit::config {

using namespace io;  // the leaf formats (YAML, HDF5, expressions) this folder reads and writes

const char* const kRunConfigDefaults = R"YAML(
model:
  path: ""            # model file (models/*.yaml); relative to the config file or the working folder
  params: {}          # values for the model file's params (e.g. {width: 0.5})
quant: {}             # quantization recipe (docs/quantizers.md); {} = float training
deploy:
  target: none        # none | integer: `lowbit train` checks before step 1 that the recipe lowers to integers
data:
  dataset: fashion_mnist   # fashion_mnist | cifar10
  path: ""            # "" = the dataset's own: fashion_mnist /usr/share/datasets/fashion-mnist, cifar10 data/cifar-10-batches-bin
  mean: [0.0]         # per-channel normalization after scaling pixels to [0, 1]
  std: [1.0]
  random_crop: 0      # random crop size with zero padding (0 = off)
  crop_padding: 0
  hflip: false        # random horizontal flip
  train_limit: 0      # use only the first N training samples (0 = all)
  test_limit: 0       # use only the first N test samples (0 = all)
optimizer:
  name: sgd           # sgd | adam | adamw
  lr: 0.01
  momentum: 0.0
  dampening: 0.0
  nesterov: false
  weight_decay: 0.0
  betas: [0.9, 0.999]
  eps: 1.0e-8
  no_decay_bn_bias: false
schedule:
  name: constant      # constant | step | multistep | cosine
  step_size: 30       # step: epochs between decays
  gamma: 0.1          # step/multistep decay factor
  milestones: []      # multistep: epochs at which to decay
  eta_min: 0.0        # cosine: final learning rate
  warmup_epochs: 0    # linear warmup before the schedule
  warmup_start_factor: 0.1
  per_iteration: false  # evaluate the schedule every iteration instead of every epoch
train:
  epochs: 10
  batch_size: 128
  eval_batch_size: 1000
  seed: 0
  threads: 0          # 0 = runtime default (OMP_NUM_THREADS)
  save_every_steps: 0 # also write last.h5 every N steps (0 = once per epoch)
)YAML";

namespace {

// Keys whose value is a free map (not checked against the defaults).
bool is_free_map(const std::string& key) { return key == "model.params" || key == "quant"; }

std::vector<std::string> child_keys(const YAML::Node& n) {
  std::vector<std::string> ks;
  for (auto it = n.begin(); it != n.end(); ++it) ks.push_back(it->first.as<std::string>());
  return ks;
}

// Keys named `leaf` in other sections of the defaults ("data.train_limit" for "train_limit" asked
// under "train"), comma-separated; "" when none.
std::string same_key_elsewhere(const YAML::Node& defaults, const std::string& leaf, const std::string& section) {
  std::string out;
  for (auto it = defaults.begin(); it != defaults.end(); ++it) {
    const std::string sec = it->first.as<std::string>();
    if (sec == section || !it->second.IsMap() || is_free_map(sec)) continue;
    if (it->second[leaf]) out += (out.empty() ? "" : ", ") + sec + "." + leaf;
  }
  return out;
}

// Copies user values into `out` (a clone of the defaults), checking every key exists there.
void merge_checked(YAML::Node out, const YAML::Node& user, const YamlSource& src, const std::string& prefix) {
  LB_CHECK(user.IsMap(), src.where(user, prefix.empty() ? "config" : prefix), ": ",
           prefix.empty() ? std::string("the config") : prefix, " must be a map of keys");
  for (auto it = user.begin(); it != user.end(); ++it) {
    const std::string k = it->first.as<std::string>();
    const std::string key = prefix.empty() ? k : prefix + "." + k;
    const std::vector<std::string> known = child_keys(out);
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      const std::string elsewhere = same_key_elsewhere(YAML::Load(kRunConfigDefaults), k, prefix);
      LB_FAIL(src.where(it->first, key), ": unknown config key '", key, "'",
              elsewhere.empty() ? std::string("") : ": did you mean " + elsewhere + "?", " (valid keys here: ",
              closest_names(k, known), "; `lowbit train --help-config` lists all)");
    }
    YAML::Node def = out[k];
    if (def.IsMap() && !is_free_map(key)) {
      merge_checked(def, it->second, src, key);
    } else {
      out[k] = it->second;
    }
  }
}

YAML::Node lookup(YAML::Node root, const std::vector<std::string>& parts) {
  YAML::Node n = root;
  for (const auto& p : parts) n.reset(n[p]);  // reset(): operator= would overwrite the node itself
  return n;
}

std::vector<std::string> split(const std::string& s, char c) {
  std::vector<std::string> out;
  size_t b = 0;
  for (size_t e; (e = s.find(c, b)) != std::string::npos; b = e + 1) out.push_back(s.substr(b, e - b));
  out.push_back(s.substr(b));
  return out;
}

void apply_override(YAML::Node root, const YAML::Node& defaults, const std::string& text, YamlSource& src) {
  auto eq = text.find('=');
  LB_CHECK(eq != std::string::npos && eq > 0, "override '", text, "': expected key.sub=value (e.g. train.epochs=3)");
  const std::string key = text.substr(0, eq);
  const std::string value = text.substr(eq + 1);
  std::vector<std::string> parts = split(key, '.');
  // Walk the defaults to check the key exists (free maps accept any child).
  YAML::Node d = YAML::Clone(defaults);  // walked with reset(), never operator=
  std::string walked;
  bool in_free_map = false;  // keys below a free map are checked later (model params by the model file)
  for (size_t i = 0; i < parts.size(); ++i) {
    if (is_free_map(walked)) { in_free_map = true; break; }
    std::vector<std::string> ks = d.IsMap() ? child_keys(d) : std::vector<std::string>{};
    if (std::find(ks.begin(), ks.end(), parts[i]) == ks.end()) {
      const std::string elsewhere = same_key_elsewhere(defaults, parts[i], walked);
      LB_FAIL("override '", text, "': config key '", key, "' does not exist",
              elsewhere.empty() ? std::string("") : ": did you mean " + elsewhere + "?",
              ks.empty() ? std::string("") : " (closest under '" + (walked.empty() ? std::string("<top>") : walked) +
                                                 "': " + closest_names(parts[i], ks) + ")");
    }
    d.reset(d[parts[i]]);
    walked += (walked.empty() ? "" : ".") + parts[i];
  }
  LB_CHECK(in_free_map || !d.IsMap() || is_free_map(key), "override '", text, "': '", key, "' is a section; set one of its keys (",
           closest_names("", child_keys(d)), ")");
  YAML::Node v;
  try {
    v = YAML::Load(value);
  } catch (const YAML::Exception& e) {
    LB_FAIL("override '", text, "': value is not valid YAML: ", e.msg);
  }
  YAML::Node parent = lookup(root, std::vector<std::string>(parts.begin(), parts.end() - 1));
  parent[parts.back()] = v;
  src.overrides[key] = text;
}

template <typename E>
E parse_enum(const YAML::Node& n, const YamlSource& src, const std::string& key,
             const std::vector<std::pair<std::string, E>>& names) {
  std::string s = yaml_string(n, src, key);
  std::string all;
  for (const auto& [k, v] : names) {
    if (k == s) return v;
    all += (all.empty() ? "" : " | ") + k;
  }
  LB_FAIL(src.where(n, key), ": ", key, ": unknown value '", s, "' (choose ", all, ")");
}

}  // namespace

std::string to_yaml(const YAML::Node& n) {
  YAML::Emitter e;
  e << n;
  return std::string(e.c_str()) + "\n";
}

static RunConfig parse_run_config(const YAML::Node& user, const std::string& path, const std::string& base_dir,
                                  const std::vector<std::string>& overrides);

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
  return parse_run_config(load_yaml_file(path), path, std::filesystem::path(path).parent_path().string(), overrides);
}

RunConfig load_run_config_text(const std::string& text, const std::string& source, const std::string& base_dir,
                               const std::vector<std::string>& overrides) {
  YAML::Node user;
  try {
    user = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    LB_FAIL(source, ":", e.mark.line + 1, ":", e.mark.column + 1, ": YAML syntax error: ", e.msg);
  }
  return parse_run_config(user, source, base_dir, overrides);
}

static RunConfig parse_run_config(const YAML::Node& user, const std::string& path, const std::string& base_dir,
                                  const std::vector<std::string>& overrides) {
  YamlSource src{path, {}};
  const YAML::Node defaults = YAML::Load(kRunConfigDefaults);
  YAML::Node root = YAML::Clone(defaults);
  if (!user.IsNull()) merge_checked(root, user, src, "");
  for (const auto& o : overrides) apply_override(root, defaults, o, src);

  RunConfig c;
  c.file = path;
  c.resolved = root;
  auto at = [&](const std::string& key) { return lookup(root, split(key, '.')); };
  auto num = [&](const std::string& key) { return yaml_number(at(key), src, key); };
  auto integer = [&](const std::string& key) { return yaml_int(at(key), src, key); };
  auto boolean = [&](const std::string& key) { return yaml_bool(at(key), src, key); };
  auto positive = [&](const std::string& key) {
    int64_t v = integer(key);
    LB_CHECK(v > 0, src.where(at(key), key), ": ", key, " must be positive, got ", v);
    return v;
  };
  auto non_negative = [&](const std::string& key) {
    double v = num(key);
    LB_CHECK(v >= 0, src.where(at(key), key), ": ", key, " must not be negative, got ", v);
    return v;
  };

  // model
  std::string model = yaml_string(at("model.path"), src, "model.path");
  LB_CHECK(!model.empty(), src.where(at("model.path"), "model.path"), ": model.path is required (e.g. models/lenet5.yaml)");
  namespace fs = std::filesystem;
  fs::path rel = fs::path(base_dir) / model;
  c.model_path = fs::exists(model) ? model : (fs::exists(rel) ? rel.string() : model);
  LB_CHECK(fs::exists(c.model_path), src.where(at("model.path"), "model.path"), ": model file '", model,
           "' not found (looked in the working folder and beside the config)");
  // The resolved config names the model file as found, so it stays valid from the run folder.
  std::error_code ec;
  fs::path abs = fs::absolute(c.model_path, ec);
  lookup(root, {"model"})["path"] = ec ? c.model_path : abs.lexically_normal().string();
  YAML::Node params = at("model.params");
  LB_CHECK(params.IsMap() || params.IsNull(), src.where(params, "model.params"), ": model.params must be a map");
  for (auto it = params.begin(); it != params.end(); ++it) {
    std::string k = it->first.as<std::string>();
    std::string key = "model.params." + k;
    c.model_params[k] = {yaml_number(it->second, src, key), src.where(it->second, key)};
  }

  // data
  c.data.dataset = parse_enum<DatasetKind>(at("data.dataset"), src, "data.dataset",
                                           {{"fashion_mnist", DatasetKind::fashion_mnist}, {"cifar10", DatasetKind::cifar10}});
  c.data.path = yaml_string(at("data.path"), src, "data.path");
  if (c.data.path.empty()) {  // each dataset its own default, recorded in the resolved config
    c.data.path = c.data.dataset == DatasetKind::cifar10 ? "data/cifar-10-batches-bin" : "/usr/share/datasets/fashion-mnist";
    lookup(root, {"data"})["path"] = c.data.path;
  }
  for (double v : yaml_numbers(at("data.mean"), src, "data.mean")) c.data.mean.push_back(static_cast<float>(v));
  for (double v : yaml_numbers(at("data.std"), src, "data.std")) {
    LB_CHECK(v > 0, src.where(at("data.std"), "data.std"), ": data.std values must be positive, got ", v);
    c.data.std.push_back(static_cast<float>(v));
  }
  LB_CHECK(c.data.mean.size() == c.data.std.size(), src.where(at("data.std"), "data.std"), ": data.mean has ",
           c.data.mean.size(), " values but data.std has ", c.data.std.size());
  c.data.random_crop = static_cast<int64_t>(non_negative("data.random_crop"));
  c.data.crop_padding = static_cast<int64_t>(non_negative("data.crop_padding"));
  c.data.hflip = boolean("data.hflip");
  c.data.train_limit = static_cast<int64_t>(non_negative("data.train_limit"));
  c.data.test_limit = static_cast<int64_t>(non_negative("data.test_limit"));

  // optimizer
  c.optimizer.kind = parse_enum<OptimizerKind>(at("optimizer.name"), src, "optimizer.name",
                                               {{"sgd", OptimizerKind::sgd}, {"adam", OptimizerKind::adam}, {"adamw", OptimizerKind::adamw}});
  c.optimizer.lr = non_negative("optimizer.lr");
  c.optimizer.momentum = non_negative("optimizer.momentum");
  c.optimizer.dampening = non_negative("optimizer.dampening");
  c.optimizer.nesterov = boolean("optimizer.nesterov");
  c.optimizer.weight_decay = non_negative("optimizer.weight_decay");
  c.optimizer.eps = non_negative("optimizer.eps");
  c.optimizer.no_decay_bn_bias = boolean("optimizer.no_decay_bn_bias");
  std::vector<double> betas = yaml_numbers(at("optimizer.betas"), src, "optimizer.betas");
  LB_CHECK(betas.size() == 2 && betas[0] >= 0 && betas[0] < 1 && betas[1] >= 0 && betas[1] < 1,
           src.where(at("optimizer.betas"), "optimizer.betas"), ": optimizer.betas must be two values in [0, 1)");
  c.optimizer.beta1 = betas[0];
  c.optimizer.beta2 = betas[1];
  LB_CHECK(!c.optimizer.nesterov || c.optimizer.momentum > 0, src.where(at("optimizer.nesterov"), "optimizer.nesterov"),
           ": nesterov needs optimizer.momentum > 0");

  // schedule
  c.schedule.kind = parse_enum<ScheduleKind>(at("schedule.name"), src, "schedule.name",
                                             {{"constant", ScheduleKind::constant}, {"step", ScheduleKind::step},
                                              {"multistep", ScheduleKind::multistep}, {"cosine", ScheduleKind::cosine}});
  c.schedule.step_size = positive("schedule.step_size");
  c.schedule.gamma = non_negative("schedule.gamma");
  for (double v : yaml_numbers(at("schedule.milestones"), src, "schedule.milestones")) c.schedule.milestones.push_back(static_cast<int64_t>(v));
  c.schedule.eta_min = non_negative("schedule.eta_min");
  c.schedule.warmup_epochs = static_cast<int64_t>(non_negative("schedule.warmup_epochs"));
  c.schedule.warmup_start_factor = non_negative("schedule.warmup_start_factor");
  c.schedule.per_iteration = boolean("schedule.per_iteration");

  // train
  c.train.epochs = positive("train.epochs");
  c.train.batch_size = positive("train.batch_size");
  c.train.eval_batch_size = positive("train.eval_batch_size");
  c.train.seed = static_cast<uint64_t>(non_negative("train.seed"));
  c.train.threads = static_cast<int64_t>(non_negative("train.threads"));
  c.train.save_every_steps = static_cast<int64_t>(non_negative("train.save_every_steps"));
  c.deploy_target = parse_enum<DeployTarget>(at("deploy.target"), src, "deploy.target",
                                             {{"none", DeployTarget::none}, {"integer", DeployTarget::integer}});
  c.quant = at("quant");
  // quant.plan as found (working folder, else beside the config), absolute like model.path, so
  // the stored config still finds it from the run folder.
  if (c.quant.IsMap() && c.quant["plan"] && c.quant["plan"].IsScalar()) {
    const std::string plan = c.quant["plan"].Scalar();
    const fs::path beside = fs::path(base_dir) / plan;
    const std::string found = fs::exists(plan) ? plan : (fs::exists(beside) ? beside.string() : "");
    if (!found.empty()) {
      fs::path p = fs::absolute(found, ec);
      c.quant["plan"] = ec ? found : p.lexically_normal().string();
    }
  }
  c.source = src;
  return c;
}

}  // namespace lowbit::config
