// Run configs, model files and expressions: typed parsing, defaults, overrides, and errors that
// name file:line:column and the key.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/expr.h"
#include "config/model_file.h"
#include "config/run_config.h"

using namespace lowbit;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path dir;
  TempDir() {
    char t[] = "/tmp/lowbit_cfg_XXXXXX";
    dir = mkdtemp(t);
  }
  ~TempDir() { fs::remove_all(dir); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(dir / name) << text;
    return (dir / name).string();
  }
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

const char* kModel = R"(name: tiny
params: {c: 1, size: 8, width: 1.0, classes: 10}
input: [c, size, size]
layers:
  - {name: conv, type: conv2d, out_channels: int(4*width), kernel_size: 3, padding: 1}
  - {name: bn, type: batch_norm2d}
  - {name: act, type: relu}
  - {name: pool, type: max_pool2d}
  - {name: flat, type: flatten}
  - {name: fc, type: linear, out_features: classes}
)";

}  // namespace

TEST(Expr, ArithmeticFunctionsAndNames) {
  std::map<std::string, double> v{{"width", 0.75}, {"n", 7}};
  EXPECT_DOUBLE_EQ(io::eval_expr("int(64*width)", v), 48);
  EXPECT_DOUBLE_EQ(io::eval_expr("n // 2 + -1", v), 2);
  EXPECT_DOUBLE_EQ(io::eval_expr("ceil(n / 2) * (1 + 1)", v), 8);
  EXPECT_DOUBLE_EQ(io::eval_expr("round(2.5) + floor(-0.5)", v), 2);
  EXPECT_NE(error_of([&] { io::eval_expr("widht * 2", v); }).find("unknown name 'widht'"), std::string::npos);
  EXPECT_NE(error_of([&] { io::eval_expr("(n + 1", v); }).find("missing ')'"), std::string::npos);
  EXPECT_NE(error_of([&] { io::eval_expr("n / 0", v); }).find("division by zero"), std::string::npos);
  EXPECT_NE(error_of([&] { io::eval_expr("sqrt(n)", v); }).find("unknown function"), std::string::npos);
}

TEST(ModelFile, BuildsNamedGraphWithInferredShapes) {
  TempDir t;
  auto path = t.write("m.yaml", kModel);
  config::BuiltModel m = config::build_model(path, {{"width", {2.0, "test"}}}, 0);
  EXPECT_EQ(m.input, Shape({1, 8, 8}));
  auto shapes = m.graph->node_shapes({3, 1, 8, 8});
  EXPECT_EQ(shapes[0], Shape({3, 8, 8, 8}));
  EXPECT_EQ(shapes.back(), Shape({3, 10}));
  std::vector<std::string> names;
  for (auto& [n, p] : m.graph->named_parameters()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"conv.weight", "conv.bias", "bn.weight", "bn.bias", "fc.weight", "fc.bias"}));
  std::vector<std::string> bufs;
  for (auto& [n, b] : m.graph->named_buffers()) bufs.push_back(n);
  EXPECT_EQ(bufs, (std::vector<std::string>{"bn.running_mean", "bn.running_var", "bn.num_batches_tracked"}));
  // Same seed -> same weights; different seed -> different weights.
  config::BuiltModel m2 = config::build_model(path, {{"width", {2.0, "test"}}}, 0);
  config::BuiltModel m3 = config::build_model(path, {{"width", {2.0, "test"}}}, 1);
  EXPECT_EQ(m.graph->parameters()[0].data().to_vector(), m2.graph->parameters()[0].data().to_vector());
  EXPECT_NE(m.graph->parameters()[0].data().to_vector(), m3.graph->parameters()[0].data().to_vector());
}

TEST(ModelFile, ErrorsNameFileLineAndShapes) {
  TempDir t;
  auto bad = [&](const std::string& layers) {
    auto p = t.write("bad.yaml", "name: b\ninput: [1, 8, 8]\nlayers:\n" + layers);
    return error_of([&] { config::build_model(p, {}, 0); });
  };
  std::string e = bad("  - {type: conv2d, out_channels: 4}\n  - {type: conv2d, in_channels: 3, out_channels: 4}\n");
  EXPECT_NE(e.find("bad.yaml:5:"), std::string::npos) << e;
  EXPECT_NE(e.find("[1, 4, 6, 6]"), std::string::npos) << e;
  e = bad("  - {type: conv2d, out_channels: 4, kernal_size: 3}\n");
  EXPECT_NE(e.find("unknown argument 'kernal_size'"), std::string::npos) << e;
  EXPECT_NE(e.find("kernel_size"), std::string::npos) << e;
  e = bad("  - {type: conv2d}\n");
  EXPECT_NE(e.find("missing required argument 'out_channels'"), std::string::npos) << e;
  e = bad("  - {type: conv2d, out_channels: 4, kernel_size: 9}\n");
  EXPECT_NE(e.find("too small"), std::string::npos) << e;
  e = bad("  - {type: relu}\n  - {type: add, from: [0, nothere]}\n");
  EXPECT_NE(e.find("from 'nothere'"), std::string::npos) << e;
  e = bad("  - {type: relu}\n  - {type: add}\n");
  EXPECT_NE(e.find("at least two inputs"), std::string::npos) << e;
  e = bad("  - {name: a, type: relu}\n  - {name: a, type: relu}\n");
  EXPECT_NE(e.find("used twice"), std::string::npos) << e;
  auto p = t.write("bad2.yaml", kModel);
  e = error_of([&] { config::build_model(p, {{"depth", {2.0, "model.params.depth=2"}}}, 0); });
  EXPECT_NE(e.find("model.params.depth=2"), std::string::npos) << e;
  EXPECT_NE(e.find("'depth' does not exist"), std::string::npos) << e;
}

TEST(RunConfig, DefaultsFileAndOverrides) {
  TempDir t;
  auto model = t.write("m.yaml", kModel);
  auto cfg = t.write("c.yaml", "model:\n  path: m.yaml\n  params: {width: 2}\noptimizer:\n  name: adamw\n  lr: 0.003\n");
  config::RunConfig c = config::load_run_config(cfg, {"train.epochs=3", "schedule.milestones=[2, 4]", "model.params.size=16"});
  EXPECT_EQ(c.model_path, model);  // resolved beside the config
  EXPECT_EQ(c.optimizer.kind, config::OptimizerKind::adamw);
  EXPECT_DOUBLE_EQ(c.optimizer.lr, 0.003);
  EXPECT_EQ(c.train.epochs, 3);
  EXPECT_EQ(c.train.batch_size, 128);  // default
  EXPECT_EQ(c.schedule.milestones, (std::vector<int64_t>{2, 4}));
  EXPECT_DOUBLE_EQ(c.model_params.at("width").value, 2.0);
  EXPECT_DOUBLE_EQ(c.model_params.at("size").value, 16.0);
  // The resolved tree holds every key (defaults included) and the overrides.
  EXPECT_EQ(c.resolved["train"]["epochs"].as<int>(), 3);
  EXPECT_EQ(c.resolved["train"]["seed"].as<int>(), 0);
  EXPECT_EQ(c.resolved["optimizer"]["name"].as<std::string>(), "adamw");
}

TEST(RunConfig, ErrorsNamePositionAndKey) {
  TempDir t;
  t.write("m.yaml", kModel);
  auto err = [&](const std::string& text, std::vector<std::string> ov = {}) {
    auto p = t.write("c.yaml", text);
    return error_of([&] { config::load_run_config(p, ov); });
  };
  std::string e = err("model: {path: m.yaml}\ntrain:\n  batch_size: -1\n");
  EXPECT_NE(e.find("c.yaml:3:15"), std::string::npos) << e;
  EXPECT_NE(e.find("train.batch_size must be positive"), std::string::npos) << e;
  e = err("model: {path: m.yaml}\ntrian: {epochs: 1}\n");
  EXPECT_NE(e.find("c.yaml:2:1"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown config key 'trian'"), std::string::npos) << e;
  EXPECT_NE(e.find("train"), std::string::npos) << e;
  e = err("model: {path: m.yaml}\n", {"optimizer.learning_rate=1"});
  EXPECT_NE(e.find("does not exist"), std::string::npos) << e;
  EXPECT_NE(e.find("lr"), std::string::npos) << e;
  e = err("model: {path: m.yaml}\n", {"optimizer=1"});
  EXPECT_NE(e.find("is a section"), std::string::npos) << e;
  e = err("model: {path: m.yaml}\n", {"train.epochs"});
  EXPECT_NE(e.find("key.sub=value"), std::string::npos) << e;
  e = err("model: {path: m.yaml}\n", {"train.epochs=abc"});
  EXPECT_NE(e.find("train.epochs=abc"), std::string::npos) << e;
  e = err("model: {path: nope.yaml}\n");
  EXPECT_NE(e.find("nope.yaml"), std::string::npos) << e;
  e = err("model: {path: m.yaml}\noptimizer: {nesterov: true}\n");
  EXPECT_NE(e.find("nesterov needs"), std::string::npos) << e;
  e = err("model: {path: m.yaml}\ndata: {mean: [0.1, 0.2], std: [0.3]}\n");
  EXPECT_NE(e.find("data.mean has 2 values"), std::string::npos) << e;
  e = err("model: {path: m.yaml\n");
  EXPECT_NE(e.find("YAML syntax error"), std::string::npos) << e;
}
