// Inference throughput of one model: Lowbit's integer engine on the lowered QAT model, and the
// float model's eval forward, on a fixed random batch after warm-up. Prints one line:
//   model=NAME int_img_s=X float_img_s=Y batch=B threads=T input=C,H,W
// bench/run.sh (MODES=int8) runs it next to PyTorch's int8 engine and prints the ratio.
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "config/model_file.h"
#include "core/threads.h"
#include "deploy/lower.h"
#include "intnet/engine.h"
#include "quant/recipe.h"

namespace po = boost::program_options;
using namespace lowbit;

namespace {

template <typename F>
double images_per_s(F&& run, int64_t batch, int64_t iters, int64_t warmup) {
  for (int64_t i = 0; i < warmup; ++i) run();
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < iters; ++i) run();
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return static_cast<double>(batch * iters) / sec;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_path, name, recipe_path;
  std::vector<std::string> params;
  int64_t batch = 128, iters = 20, warmup = 3;
  int threads = 2;
  po::options_description opts("lowbit-bench-infer options");
  opts.add_options()("help,h", "help")("model", po::value(&model_path)->required(), "model YAML file")(
      "name", po::value(&name), "name printed (default: the model's)")(
      "param", po::value(&params)->composing(), "model parameter k=v (repeatable)")(
      "recipe", po::value(&recipe_path)->required(), "YAML file with a `quant:` recipe")(
      "batch", po::value(&batch), "batch size")("iters", po::value(&iters), "timed batches")(
      "warmup", po::value(&warmup), "untimed batches first")("threads", po::value(&threads), "threads");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    if (vm.count("help")) { std::cout << opts; return 0; }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "lowbit-bench-infer: " << e.what() << "\n" << opts;
    return 2;
  }
  try {
    set_num_threads(threads);
    std::map<std::string, config::ModelParamOverride> ov;
    for (const auto& p : params) {
      const auto eq = p.find('=');
      LB_CHECK(eq != std::string::npos, "--param ", p, ": expected k=v");
      ov[p.substr(0, eq)] = {std::stod(p.substr(eq + 1)), "--param " + p};
    }
    config::BuiltModel fm = config::build_model(model_path, ov, 0);
    config::BuiltModel qm = config::build_model(model_path, ov, 0);
    const YAML::Node doc = io::load_yaml_file(recipe_path);
    quant::apply_recipe(*qm.graph, quant::parse_recipe(doc["quant"], io::YamlSource{recipe_path, {}}), qm.input);
    quant::start_epoch(*qm.graph, 0);  // batch-norm folding (bn_fold delay 0) on from the start
    if (name.empty()) name = fm.name;
    Rng rng(7);
    Tensor x = Tensor::empty({batch, fm.input[0], fm.input[1], fm.input[2]});
    for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = rng.normal();
    {  // statistics for the activation quantizers, then the metadata forward
      NoGradGuard ng;
      qm.graph->train();
      for (int i = 0; i < 3; ++i) qm.graph->forward(Variable(x));
      qm.graph->eval();
      qm.graph->forward(Variable(x));
    }
    const deploy::LoweredModel low = deploy::lower(*qm.graph, qm.input, name);
    intnet::Engine engine(low.net);
    const double int_s = images_per_s([&] { engine.run(x.f32(), batch); }, batch, iters, warmup);
    NoGradGuard ng;
    fm.graph->eval();
    const double float_s = images_per_s([&] { fm.graph->forward(Variable(x)); }, batch, iters, warmup);
    std::printf("model=%s int_img_s=%.1f float_img_s=%.1f batch=%lld threads=%d input=%lld,%lld,%lld\n", name.c_str(),
                int_s, float_s, static_cast<long long>(batch), threads, static_cast<long long>(fm.input[0]),
                static_cast<long long>(fm.input[1]), static_cast<long long>(fm.input[2]));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lowbit-bench-infer: %s\n", e.what());
    return 1;
  }
  return 0;
}
