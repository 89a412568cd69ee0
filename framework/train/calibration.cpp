#include "train/calibration.h"

#include <set>

#include "core/error.h"
#include "persist/checkpoint.h"
#include "io/h5_file.h"
#include "io/yaml_util.h"
#include "quant/quantizer.h"

namespace lowbit::train {

CalibrationResult calibrate(nn::Module& model, data::DataLoader& loader, int64_t batches) {
  LB_CHECK(batches >= 1, "calibration needs at least one batch, got ", batches);
  NoGradGuard ng;
  model.eval();
  CalibrationResult r;
  auto qs = quant::quantizers_of(model);
  for (auto& [name, q] : qs) {
    const quant::ScaleImpl s = q->config().scale_impl;
    if (!q->config().external_scale && (s == quant::ScaleImpl::running_stats || s == quant::ScaleImpl::parameter_from_stats)) {
      q->set_calibrating(true);
      ++r.quantizers;
    }
  }
  loader.start_epoch(0);
  data::Batch b;
  try {
    while (r.batches < batches && loader.next(b)) {
      model.forward(Variable(b.x));
      ++r.batches;
    }
  } catch (...) {
    for (auto& [name, q] : qs) q->set_calibrating(false);
    throw;
  }
  for (auto& [name, q] : qs) q->finish_calibration();
  model.eval();
  return r;
}

int64_t load_weights_for_calibration(const std::string& path, nn::Module& model) {
  persist::read_checkpoint_info(path);  // format checks with clear messages
  io::H5Reader r(path);
  std::set<std::string> quant_prefixes;
  for (auto& [name, q] : quant::quantizers_of(model)) quant_prefixes.insert(name + ".");
  auto is_quant = [&](const std::string& n) {
    for (const auto& p : quant_prefixes)
      if (n.compare(0, p.size(), p) == 0) return true;
    return false;
  };
  std::vector<std::pair<Tensor*, Tensor>> loaded;
  std::vector<std::string> missing;
  int64_t quant_missing = 0;
  std::vector<std::string> stored;
  for (const auto& n : r.names())
    if (n.compare(0, 6, "model.") == 0) stored.push_back(n.substr(6));
  std::set<std::string> stored_set(stored.begin(), stored.end());
  auto one = [&](const std::string& name, Tensor& dst) {
    if (!stored_set.count(name)) {
      if (is_quant(name)) ++quant_missing;
      else missing.push_back(name);
      return;
    }
    Tensor t = r.read_tensor("/model/" + name);
    LB_CHECK(t.numel() == dst.numel() && t.dtype() == dst.dtype(), path, ": '", name, "' is ", t.shape().str(),
             " in the checkpoint but ", dst.shape().str(), " in the model");
    loaded.emplace_back(&dst, t.reshape(dst.shape()));
  };
  for (auto& [name, v] : model.named_parameters()) one(name, v.data());
  for (auto& [name, t] : model.named_buffers()) one(name, *t);
  if (!missing.empty())
    LB_FAIL(path, ": the model has '", missing[0], "' but the checkpoint does not (closest: ",
            io::closest_names(missing[0], stored), "); ", missing.size(), " tensor(s) missing in all");
  for (auto& [dst, t] : loaded) dst->copy_from(t);
  return quant_missing;
}

}  // namespace lowbit::train
