// A trained run as an integer network: the run's config and checkpoint, the fake-quant model
// rebuilt from them (eval mode), and its lowering (deploy/lower.h). `lowbit verify`, `lowbit
// inspect --integer` and the exporters start here.
#pragma once
#include <string>
#include <vector>

#include "config/model_file.h"
#include "config/run_config.h"
#include "data/dataset.h"
#include "deploy/lower.h"

namespace lowbit::verify {

struct IntegerModel {
  config::RunConfig cfg;
  config::BuiltModel model;      // the fake-quant model with the checkpoint's weights, eval mode
  std::string checkpoint;        // the file the weights came from
  data::Dataset test;            // the config's test split (limits applied), read once
  deploy::LoweredModel lowered;  // lowered.net: the integer network
};

// The checkpoint a run folder stands for: its best.h5, else its last.h5; a file is itself.
// Throws a lowbit::Error when there is none.
std::string checkpoint_of(const std::string& run_dir_or_file);

// Loads a run folder (or a checkpoint file with its stored config), applies `overrides`
// ("data.test_limit=100") to the stored config, runs one test batch through the fake-quant model
// for its quantizers' metadata and lowers it. Errors name the run and, for layers without an
// integer form, the layer, the reason and the fix.
IntegerModel load_integer_model(const std::string& run_dir_or_file, const std::vector<std::string>& overrides,
                                const deploy::LowerOptions& opt);

}  // namespace lowbit::verify
