#include "persist/checkpoint.h"

#include <cstring>
#include <map>
#include <set>

#include "core/error.h"
#include "io/h5_file.h"
#include "io/yaml_util.h"
#include "quant/quantizer.h"

namespace lowbit::persist {

using namespace io;  // the leaf formats (YAML, HDF5, expressions) this folder reads and writes

namespace {

Tensor rng_to_tensor(const Rng& r) {
  Rng::State st = r.state();
  Tensor t = Tensor::empty({8}, DType::s32);
  std::memcpy(t.raw_data(), st.s, sizeof st.s);
  return t;
}

void check_format(const H5Reader& r) {
  LB_CHECK(r.has_attr("/", "format"), r.path(), ": not a Lowbit checkpoint (no 'format' attribute on the root group); ",
           "PyTorch or Keras weight files are read with `lowbit import`");
  const std::string fmt = r.attr_string("/", "format");
  LB_CHECK(fmt == kCheckpointFormat, r.path(), ": format '", fmt, "' is not ", kCheckpointFormat);
  const int64_t v = r.attr_int("/", "format_version");
  LB_CHECK(v >= 1 && v <= kCheckpointVersion, r.path(), ": checkpoint format version ", v,
           " is not supported by this lowbit (", LOWBIT_VERSION, " reads versions 1..", kCheckpointVersion,
           "): use a newer lowbit");
}

std::vector<std::string> names_under(const H5Reader& r, const std::string& group) {
  std::vector<std::string> out;
  const std::string prefix = "/" + group + "/";
  for (const auto& p : r.datasets())
    if (p.compare(0, prefix.size(), prefix) == 0) out.push_back(p.substr(prefix.size()));
  return out;
}

}  // namespace

void save_checkpoint(const std::string& path, nn::Module& model, const optim::Optimizer* opt,
                     const optim::LrSchedule* schedule, const CheckpointParts& parts) {
  H5Writer w(path);
  w.set_attr("/", "format", kCheckpointFormat);
  w.set_attr("/", "format_version", kCheckpointVersion);
  w.set_attr("/", "lowbit_version", LOWBIT_VERSION);
  const TrainProgress& p = parts.progress;
  w.set_attr("/", "epoch", p.epoch);
  w.set_attr("/", "step", p.step);
  w.set_attr("/", "batches_done", p.batches_done);
  w.set_attr("/", "best_test_acc", p.best_test_acc);
  w.set_attr("/", "epoch_loss_sum", p.epoch_loss_sum);
  w.set_attr("/", "epoch_correct", p.epoch_correct);
  w.set_attr("/", "epoch_seen", p.epoch_seen);
  w.set_attr("/", "wall_time", p.wall_time);
  w.set_attr("/", "threads", p.threads);
  w.write_string("config", parts.config_yaml);
  w.write_string("metrics", parts.metrics_jsonl);
  for (auto& [name, v] : model.named_parameters()) w.write_tensor("model/" + name, v.data());
  for (auto& [name, t] : model.named_buffers()) w.write_tensor("model/" + name, *t);
  if (opt) {
    w.set_attr("/", "optimizer", opt->name());
    for (auto& [name, t] : opt->state_tensors()) w.write_tensor("optimizer/" + name, t);
  }
  if (schedule)
    for (auto& [name, t] : schedule->state_tensors()) w.write_tensor("schedule/" + name, t);
  for (auto& [name, m] : model.named_modules())
    if (Rng* r = m->rng_state()) w.write_tensor("rng/" + (name.empty() ? std::string("model") : name), rng_to_tensor(*r));
  w.commit();
}

CheckpointParts read_checkpoint_info(const std::string& path) {
  H5Reader r(path);
  check_format(r);
  CheckpointParts c;
  c.config_yaml = r.read_string("/config");
  c.metrics_jsonl = r.has("/metrics") ? r.read_string("/metrics") : "";
  TrainProgress& p = c.progress;
  p.epoch = r.attr_int("/", "epoch");
  p.step = r.attr_int("/", "step");
  p.batches_done = r.attr_int("/", "batches_done");
  p.best_test_acc = r.attr_double("/", "best_test_acc");
  p.epoch_loss_sum = r.attr_double("/", "epoch_loss_sum");
  p.epoch_correct = r.attr_double("/", "epoch_correct");
  p.epoch_seen = r.attr_double("/", "epoch_seen");
  p.wall_time = r.attr_double("/", "wall_time");
  p.threads = r.attr_int("/", "threads");
  LB_CHECK(p.epoch >= 0 && p.step >= 0 && p.batches_done >= 0, path, ": corrupt progress (epoch ", p.epoch, ", step ",
           p.step, ", batches_done ", p.batches_done, ")");
  return c;
}

void load_model_state(const std::string& path, nn::Module& model, bool quantizers_may_be_missing,
                      std::vector<std::string>* left_fresh) {
  H5Reader r(path);
  check_format(r);
  const std::vector<std::string> stored = names_under(r, "model");
  std::set<std::string> stored_set(stored.begin(), stored.end());
  std::vector<std::pair<Tensor*, Tensor>> loaded;
  std::set<std::string> used;
  std::vector<std::string> quantizer_paths;
  if (quantizers_may_be_missing)
    for (const auto& [qpath, q] : quant::quantizers_of(model)) quantizer_paths.push_back(qpath + ".");
  auto of_a_quantizer = [&](const std::string& name) {
    for (const std::string& q : quantizer_paths)
      if (name.rfind(q, 0) == 0) return true;
    return false;
  };
  std::vector<std::string> fresh;
  auto load_one = [&](const std::string& name, Tensor& dst) {
    if (!stored_set.count(name) && of_a_quantizer(name)) {
      fresh.push_back(name);
      return;
    }
    if (!stored_set.count(name))
      LB_FAIL(path, ": the model has '", name, "' ", dst.shape().str(), " but the checkpoint does not (closest: ",
              stored.empty() ? std::string("none") : closest_names(name, stored), ")");
    Tensor t = r.read_tensor("/model/" + name);
    LB_CHECK(t.numel() == dst.numel() && (t.shape() == dst.shape() || t.numel() == 1), path, ": '", name, "' is ",
             t.shape().str(), " in the checkpoint but ", dst.shape().str(), " in the model");
    LB_CHECK(t.dtype() == dst.dtype(), path, ": '", name, "' is ", dtype_name(t.dtype()), " in the checkpoint but ",
             dtype_name(dst.dtype()), " in the model");
    loaded.emplace_back(&dst, t.reshape(dst.shape()));
    used.insert(name);
  };
  for (auto& [name, v] : model.named_parameters()) load_one(name, v.data());
  for (auto& [name, t] : model.named_buffers()) load_one(name, *t);
  std::vector<std::string> extra;
  for (const auto& n : stored)
    if (!used.count(n)) extra.push_back(n);
  if (!extra.empty()) {
    std::string list;
    for (size_t i = 0; i < extra.size() && i < 5; ++i) list += (i ? ", " : "") + extra[i];
    LB_FAIL(path, ": the checkpoint has ", extra.size(), " tensor(s) the model does not: ", list,
            extra.size() > 5 ? ", ..." : "", " (is it from a different model config?)");
  }
  for (auto& [dst, t] : loaded) dst->copy_from(t);  // all checks passed: now change the model
  if (left_fresh) left_fresh->insert(left_fresh->end(), fresh.begin(), fresh.end());
}

void load_training_state(const std::string& path, nn::Module& model, optim::Optimizer& opt,
                         optim::LrSchedule& schedule) {
  H5Reader r(path);
  check_format(r);
  if (r.has_attr("/", "optimizer")) {
    const std::string name = r.attr_string("/", "optimizer");
    LB_CHECK(name == opt.name(), path, ": the checkpoint's optimizer is ", name, " but the config builds ", opt.name());
  }
  optim::StateList os, ss;
  for (const auto& n : names_under(r, "optimizer")) os.emplace_back(n, r.read_tensor("/optimizer/" + n));
  for (const auto& n : names_under(r, "schedule")) ss.emplace_back(n, r.read_tensor("/schedule/" + n));
  std::map<Rng*, Rng::State> rngs;
  for (auto& [name, m] : model.named_modules()) {
    if (Rng* rng = m->rng_state()) {
      const std::string key = "/rng/" + (name.empty() ? std::string("model") : name);
      LB_CHECK(r.has(key), path, ": no random-stream state for module '", name, "'");
      Tensor t = r.read_tensor(key);
      LB_CHECK(t.dtype() == DType::s32 && t.numel() == 8, path, ": bad random-stream state for '", name, "'");
      Rng::State st;
      std::memcpy(st.s, t.raw_data(), sizeof st.s);
      rngs[rng] = st;
    }
  }
  opt.load_state(os);
  if (!ss.empty()) schedule.load_state(ss);
  for (auto& [rng, st] : rngs) rng->set_state(st);
}

}  // namespace lowbit::persist
