#include "verify/integer_model.h"

#include <filesystem>

#include "autograd/variable.h"
#include "core/error.h"
#include "persist/checkpoint.h"
#include "quant/recipe.h"
#include "train/trainer.h"

namespace lowbit::verify {

std::string checkpoint_of(const std::string& run_dir_or_file) {
  std::error_code ec;
  if (std::filesystem::is_directory(run_dir_or_file, ec)) {
    const auto best = std::filesystem::path(run_dir_or_file) / "best.h5";
    return std::filesystem::exists(best) ? best.string() : train::resolve_checkpoint(run_dir_or_file);
  }
  LB_CHECK(std::filesystem::exists(run_dir_or_file), "no run folder or checkpoint at ", run_dir_or_file,
           ": give a run folder made by `lowbit train` (runs/NAME) or one of its .h5 files");
  return run_dir_or_file;
}

IntegerModel load_integer_model(const std::string& run_dir_or_file, const std::vector<std::string>& overrides,
                                const deploy::LowerOptions& opt) {
  IntegerModel m;
  m.checkpoint = checkpoint_of(run_dir_or_file);
  const persist::CheckpointParts parts = persist::read_checkpoint_info(m.checkpoint);
  m.cfg = config::load_run_config_text(parts.config_yaml, m.checkpoint + " (stored config)", ".", overrides);
  LB_CHECK(quant::parse_recipe(m.cfg.quant, m.cfg.source).enabled, run_dir_or_file, " is a float run (its config has no quant: recipe): only a ",
           "quantization-aware run has an integer network. Train one, e.g. lowbit train configs/lenet5_fmnist_w4a4.yaml");
  m.model = train::build_model(m.cfg);
  persist::load_model_state(m.checkpoint, *m.model.graph);
  // One eval batch sets every quantizer's metadata (scales from learned values or running
  // statistics: the batch does not change them in eval mode).
  m.test = train::load_dataset(m.cfg.data, false);
  data::DataLoader loader(m.test, train::eval_loader_options(m.cfg));
  LB_CHECK(loader.sample_shape() == m.model.input, "the model expects inputs ", m.model.input.str(),
           " but the data gives ", loader.sample_shape().str());
  loader.start_epoch(0);
  data::Batch b;
  LB_CHECK(loader.next(b), "the test set of ", run_dir_or_file, " is empty");
  {
    NoGradGuard no_grad;
    m.model.graph->eval();
    m.model.graph->forward(Variable(b.x));
  }
  m.lowered = deploy::lower(*m.model.graph, m.model.input, m.model.name, opt);
  return m;
}

}  // namespace lowbit::verify
