// Helpers shared by the QAT feature tests (test_qat_features, test_quant_meta, test_bn_fold):
// models built with a `quant:` recipe, small run configs, temporary folders, parameters by name.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "config/model_file.h"
#include "config/run_config.h"
#include "core/error.h"
#include "nn/module.h"
#include "quant/recipe.h"

namespace lowbit::quant::qat_test {

inline const std::string kSrc = LOWBIT_SOURCE_DIR;

// Runs f and returns the lowbit::Error message ("" when nothing is thrown).
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A model file with a `quant:` recipe given as YAML text.
struct Built {
  lowbit::config::BuiltModel m;
  QuantRecipe recipe;
};

// The model file at `path` with the recipe applied.
inline Built build_abs(const std::string& path, const std::string& recipe_yaml, uint64_t seed = 1) {
  Built b;
  b.m = lowbit::config::build_model(path, {}, seed);
  lowbit::io::YamlSource src;
  src.file = "recipe.yaml";
  b.recipe = parse_recipe(YAML::Load(recipe_yaml), src);
  apply_recipe(*b.m.graph, b.recipe, b.m.input);
  return b;
}

// The same for a model file of the source tree ("models/lenet5.yaml").
inline Built build(const std::string& model_file, const std::string& recipe_yaml, uint64_t seed = 1) {
  return build_abs(kSrc + "/" + model_file, recipe_yaml, seed);
}

// A run config from YAML text, paths relative to the source tree.
inline lowbit::config::RunConfig run_config(const std::string& text, const std::vector<std::string>& overrides = {}) {
  return lowbit::config::load_run_config_text(text, "test.yaml", kSrc, overrides);
}

// A fresh, empty temporary folder for this process.
inline std::string temp_dir(const std::string& name) {
  const auto d = std::filesystem::temp_directory_path() / ("lowbit_qat_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

// A module's parameter by its full name (a test failure and an undefined Variable when missing).
inline Variable param(nn::Module& m, const std::string& name) {
  for (auto& [n, p] : m.named_parameters())
    if (n == name) return p;
  ADD_FAILURE() << "no parameter " << name;
  return Variable();
}

// Element i of a float tensor.
inline float f(const Tensor& t, int64_t i = 0) { return t.contiguous().f32()[i]; }

}  // namespace lowbit::quant::qat_test
